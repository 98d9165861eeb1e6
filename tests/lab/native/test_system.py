"""gpupdate, whoami and hostname."""

from __future__ import annotations

from migrator.lab import policy
from tests.lab.native.conftest import Fleet, out_lines, sample_lines


def test_gpupdate_success_text_and_policy_applied(fleet: Fleet) -> None:
    """With a DC: the published success lines, and the domain's Hello GPO lands in the registry."""
    domain = fleet.lab.domain_of(fleet.domain_only)
    assert domain is not None
    domain.gpo_passport_policy = {"Enabled": 1, "UseCloudTrustForOnPremAuth": 1}
    result = fleet.run(fleet.domain_only, fleet.admin(fleet.domain_only), "gpupdate", "/force")
    assert out_lines(result) == [*sample_lines("gpupdate_force_success.txt")[:4], ""]
    assert result.exit_code == 0
    assert fleet.domain_only.registry.read(policy.GPO_KEY, "UseCloudTrustForOnPremAuth") == 1
    assert fleet.domain_only.counters.gpupdates == 1


def test_gpupdate_computer_target_only(fleet: Fleet) -> None:
    """/target:computer reports the computer policy only."""
    lines = out_lines(
        fleet.run(fleet.domain_only, fleet.admin(fleet.domain_only), "gpupdate", "/target:computer", "/force")
    )
    assert lines == ["Updating policy...", "", "Computer Policy update has completed successfully.", ""]


def test_gpupdate_without_dc_fails(fleet: Fleet) -> None:
    """No DC: Windows' connectivity failure paragraphs for both policies, the GPRESULT hint, exit code 1."""
    fleet.lab.set_dc_reachable(fleet.domain_only, False)
    result = fleet.run(fleet.domain_only, fleet.admin(fleet.domain_only), "gpupdate", "/force")
    lines = out_lines(result)
    assert result.exit_code == 1
    assert lines[2] == "Computer policy could not be updated successfully. The following errors were encountered:"
    assert lines[4].startswith("The processing of Group Policy failed because of lack of network connectivity")
    assert "User Policy could not be updated successfully. The following errors were encountered:" in lines
    assert lines[-2].startswith("To diagnose the failure, review the event log or run GPRESULT /H GPReport.html")


def test_whoami_variants(fleet: Fleet) -> None:
    """whoami prints the lowercase account; /user a SID table; /upn the user's UPN or an error for the admin."""
    alice = fleet.as_user(fleet.hybrid, fleet.alice)
    assert out_lines(fleet.run(fleet.hybrid, alice, "whoami")) == ["corp\\alice"]
    table = out_lines(fleet.run(fleet.hybrid, alice, "whoami", "/user"))
    assert table[1] == "USER INFORMATION" and table[-1].split() == ["corp\\alice", fleet.alice.sid]
    assert table[-2].split() == ["=" * len("corp\\alice"), "=" * len(fleet.alice.sid)]
    assert out_lines(fleet.run(fleet.hybrid, alice, "whoami", "/upn")) == ["alice@contoso.com"]
    admin_upn = fleet.run(fleet.hybrid, fleet.admin(fleet.hybrid), "whoami", "/upn")
    assert admin_upn.exit_code == 1 and "Unable to get User Principal Name" in admin_upn.stderr
    assert out_lines(fleet.run(fleet.hybrid, fleet.lab.system_principal(), "whoami")) == ["nt authority\\system"]


def test_hostname(fleet: Fleet) -> None:
    """hostname prints the computer name."""
    assert out_lines(fleet.run(fleet.entra, fleet.admin(fleet.entra), "hostname")) == ["PC-AAD"]
