"""nltest /dsgetdc and /sc_verify: DC line of sight, in the published layout, with Win32 exit codes."""

from __future__ import annotations

import pytest

from tests.lab.native.conftest import Fleet, out_lines, sample_lines


def _keys(lines: list[str]) -> list[str]:
    return [line.split(":", 1)[0].strip() for line in lines if ":" in line]


@pytest.mark.parametrize("name", ["corp.contoso.com", "CORP"])
def test_dsgetdc_success_layout(fleet: Fleet, name: str) -> None:
    """Same keys in the same order as the msdocs sample, right-aligned to 'Our Site Name'; exit code 0."""
    result = fleet.run(fleet.hybrid, fleet.admin(fleet.hybrid), "nltest", f"/dsgetdc:{name}", "/keylist", "/kdc")
    lines = out_lines(result)
    sample = sample_lines("nltest_dsgetdc_success_msdocs.txt")
    assert _keys(lines) == _keys(sample)
    assert lines[-1] == sample[-1] == "The command completed successfully"
    assert {line.index(":") for line in lines[:-1]} == {len("Our Site Name")}
    assert lines[0] == "           DC: \\\\DC01.corp.contoso.com"
    flags = lines[-2].split(": ", 1)[1].split()
    assert {"KDC", "WRITABLE", "KEYLIST", "PDC"} <= set(flags)
    dom_name = lines[3].split(": ", 1)[1]
    assert dom_name == ("CORP" if name == "CORP" else "corp.contoso.com")
    assert result.exit_code == 0


def test_dsgetdc_without_dc_fails_1355(fleet: Fleet) -> None:
    """No line of sight: the published one-line failure and exit code 1355."""
    fleet.lab.set_dc_reachable(fleet.hybrid, False)
    result = fleet.run(fleet.hybrid, fleet.admin(fleet.hybrid), "nltest", "/dsgetdc:corp.contoso.com", "/force")
    assert out_lines(result) == sample_lines("nltest_dsgetdc_failure_1355_variants.txt")[:1]
    assert result.exit_code == 1355


def test_dsgetdc_unknown_domain_fails_1355(fleet: Fleet) -> None:
    """A domain the device and its user do not belong to cannot be located."""
    result = fleet.run(fleet.hybrid, fleet.admin(fleet.hybrid), "nltest", "/dsgetdc:fabrikam.com")
    assert result.exit_code == 1355


def test_entra_joined_device_finds_the_users_domain(fleet: Fleet) -> None:
    """An Entra joined device locates the DC of its user's domain (cloud Kerberos trust needs it)."""
    dave = fleet.as_user(fleet.entra, fleet.dave)
    assert fleet.run(fleet.entra, dave, "nltest", "/dsgetdc:corp.contoso.com", "/kdc").exit_code == 0


def test_sc_verify_layout_and_failures(fleet: Fleet) -> None:
    """/sc_verify prints the msdocs lines; a non-admin user gets access denied; no DC → 1311 statuses."""
    admin = fleet.admin(fleet.hybrid)
    lines = out_lines(fleet.run(fleet.hybrid, admin, "nltest", "/sc_verify:corp.contoso.com"))
    sample = [
        line for line in sample_lines("nltest_sc_verify_success_msdocs.txt") if line and not line.startswith("PS ")
    ]
    assert [line.split("\\\\")[0] for line in lines] == [line.split("\\\\")[0] for line in sample]
    alice = fleet.as_user(fleet.hybrid, fleet.alice)
    denied = fleet.run(fleet.hybrid, alice, "nltest", "/sc_verify:corp.contoso.com")
    assert denied.exit_code == 5 and "ERROR_ACCESS_DENIED" in denied.stdout
    fleet.lab.set_dc_reachable(fleet.hybrid, False)
    offline = out_lines(fleet.run(fleet.hybrid, admin, "nltest", "/sc_verify:corp"))
    assert "Trust Verification Status = 1311 0x51f ERROR_NO_LOGON_SERVERS" in offline


def test_unknown_verb_prints_usage(fleet: Fleet) -> None:
    """Anything else: usage and ERROR_INVALID_PARAMETER."""
    result = fleet.run(fleet.hybrid, fleet.admin(fleet.hybrid), "nltest", "/frob")
    assert result.exit_code == 87 and result.stdout.startswith("Usage: nltest")
