"""dsregcmd /status: the published layout, and user-dependent sections that follow the caller."""

from __future__ import annotations

import re

import pytest

from migrator.lab.model import OsInfo
from tests.lab.native.conftest import Fleet, out_lines, sample_lines

FIELD = re.compile(r"^(?P<key>\s*\S.*?) : ?(?P<value>.*)$")
SAMPLE_FILES = [
    "dsregcmd_msdocs_device_state.txt",
    "dsregcmd_msdocs_device_details.txt",
    "dsregcmd_msdocs_tenant_details.txt",
    "dsregcmd_msdocs_user_state.txt",
    "dsregcmd_msdocs_sso_state_prt_failure.txt",
    "dsregcmd_msdocs_diag_postjoin.txt",
    "dsregcmd_msdocs_diag_prejoin_discover_fail.txt",
    "dsregcmd_msdocs_ngc_prereq_certtrust.txt",
    "dsregcmd_not_joined_workplacejoined_full.txt",
    "dsregcmd_domainjoined_hybridjoin_failed_system_ws2022.txt",
    "dsregcmd_hybrid_fragments_onpremtgt_no_corppc01.txt",
    "dsregcmd_sso_state_onpremtgt_no_cloudtgt_yes_qa591928_answer.txt",
    "dsregcmd_user_state_ngcset_nondestructive_issue36269.txt",
    "dsregcmd_hybrid_head_partial_kolide873.txt",
]
# Keys the samples do not happen to show but Windows prints: the cloud-trust Ngc prerequisite (named CloudTGT
# before Windows 11 23H2, OnPremTGT since; windows-facts §1).
EXTRA_KEYS = {"Ngc Prerequisite Check": {"OnPremTGT", "CloudTGT"}}


def sections(lines: list[str]) -> dict[str, list[tuple[str, str, int]]]:
    """Section title → [(key, value, colon column)] from dsregcmd text (real or ours)."""
    found: dict[str, list[tuple[str, str, int]]] = {}
    title = None
    for index, line in enumerate(lines):
        if line.startswith("| ") and line.rstrip().endswith("|") and index and lines[index - 1].startswith("+--"):
            title = line.strip("| ").strip()
            found.setdefault(title, [])
            continue
        match = FIELD.match(line)
        if title and match and not line.lstrip().startswith(("+", "|")):
            key = match.group("key").strip()
            found[title].append((key, match.group("value").strip(), line.index(" :") + 1 if " :" in line else -1))
    return found


def sample_sections() -> dict[str, set[str]]:
    keys: dict[str, set[str]] = {}
    for name in SAMPLE_FILES:
        for title, fields in sections(sample_lines(name)).items():
            keys.setdefault(title, set()).update(k for k, _, _ in fields)
    return keys


def test_boxes_and_alignment_match_the_published_layout(fleet: Fleet) -> None:
    """Boxes are the 72-column lines of the samples and every colon sits in the samples' column."""
    lines = out_lines(fleet.run(fleet.hybrid, fleet.as_user(fleet.hybrid, fleet.alice), "dsregcmd", "/status"))
    sample = sample_lines("dsregcmd_not_joined_workplacejoined_full.txt")
    title = sample.index("| Device State" + " " * 57 + "|")
    assert lines[0] == ""
    assert lines[1:4] == sample[title - 1 : title + 2]
    boxes = {line for line in lines if line.startswith(("+-", "| "))}
    assert {len(line) for line in boxes} == {72}
    sample_columns = {col for fields in sections(sample).values() for _, _, col in fields}
    assert sample_columns == {27}
    ours = sections(lines)
    assert {col for fields in ours.values() for _, _, col in fields} == sample_columns
    assert lines[-1] == "For more information, please visit https://www.microsoft.com/aadjerrors" or lines[-2] == (
        "For more information, please visit https://www.microsoft.com/aadjerrors"
    )


def test_section_order_and_keys_are_those_windows_prints(fleet: Fleet) -> None:
    """Sections come in the documented order and every key appears in a published sample of that section."""
    lines = out_lines(fleet.run(fleet.hybrid, fleet.as_user(fleet.hybrid, fleet.alice), "dsregcmd", "/status"))
    ours = sections(lines)
    assert list(ours) == [
        "Device State",
        "Device Details",
        "Tenant Details",
        "User State",
        "SSO State",
        "Diagnostic Data",
        "IE Proxy Config for Current User",
        "WinHttp Default Proxy Config",
        "Ngc Prerequisite Check",
    ]
    known = sample_sections()
    for title, fields in ours.items():
        extra = {k for k, _, _ in fields} - known[title] - EXTRA_KEYS.get(title, set())
        assert not extra, (title, extra)


def test_device_and_tenant_details_only_when_entra_joined(fleet: Fleet) -> None:
    """A domain-only device shows no Device/Tenant Details but the pre-join diagnostics of a failed hybrid join."""
    dom = sections(out_lines(fleet.run(fleet.domain_only, fleet.admin(fleet.domain_only), "dsregcmd", "/status")))
    assert "Device Details" not in dom and "Tenant Details" not in dom
    state = {k: v for k, v, _ in dom["Device State"]}
    assert state["AzureAdJoined"] == "NO" and state["DomainJoined"] == "YES" and state["DomainName"] == "CORP"
    diag = {k: v for k, v, _ in dom["Diagnostic Data"]}
    assert diag["User Context"] == "ELEVATED User" and diag["Client ErrorCode"] == "0x801c001d"
    aad = sections(out_lines(fleet.run(fleet.entra, fleet.admin(fleet.entra), "dsregcmd", "/status")))
    details = {k: v for k, v, _ in aad["Device Details"]}
    tenant = {k: v for k, v, _ in aad["Tenant Details"]}
    assert details["DeviceId"] == "126cafbf-18e6-47a8-ad06-d5affe132b36" and details["TpmProtected"] == "YES"
    assert tenant["TenantId"] == fleet.lab.fleet.tenant.tenant_id and tenant["TenantName"] == "Contoso"
    assert {k: v for k, v, _ in aad["Device State"]}["DomainJoined"] == "NO"


def test_user_sees_their_container_prt_and_tickets(fleet: Fleet) -> None:
    """Run as the signed-in user: NgcSet/NgcKeyId of their container, their PRT, OnPremTgt/CloudTgt."""
    ours = sections(out_lines(fleet.run(fleet.hybrid, fleet.as_user(fleet.hybrid, fleet.alice), "dsregcmd", "/status")))
    user = {k: v for k, v, _ in ours["User State"]}
    sso = {k: v for k, v, _ in ours["SSO State"]}
    assert fleet.alice.container is not None
    assert user["NgcSet"] == "YES" and user["NgcKeyId"] == fleet.alice.container.key_id.upper()
    assert user["WamDefaultSet"] == "YES"
    assert sso["AzureAdPrt"] == "YES" and sso["OnPremTgt"] == "YES" and sso["CloudTgt"] == "YES"
    assert sso["AzureAdPrtUpdateTime"] == "2026-11-02 08:00:00.000 UTC"
    prereq = {k: v for k, v, _ in ours["Ngc Prerequisite Check"]}
    assert prereq["CertEnrollment"] == "none" and prereq["OnPremTGT"] == "YES"


@pytest.mark.parametrize("who", ["admin", "system"])
def test_admin_or_system_sees_no_user_container(fleet: Fleet, who: str) -> None:
    """The WinRM admin and SYSTEM see NgcSet NO, AzureAdPrt NO and WamDefaultSet ERROR (windows-facts §1)."""
    principal = fleet.admin(fleet.hybrid) if who == "admin" else fleet.lab.system_principal()
    ours = sections(out_lines(fleet.run(fleet.hybrid, principal, "dsregcmd", "/status")))
    user = {k: v for k, v, _ in ours["User State"]}
    sso = {k: v for k, v, _ in ours["SSO State"]}
    assert user == {"NgcSet": "NO", "WorkplaceJoined": "NO", "WamDefaultSet": "ERROR"}
    assert sso["AzureAdPrt"] == "NO" and sso["OnPremTgt"] == "NO"
    prereq = {k: v for k, v, _ in ours["Ngc Prerequisite Check"]}
    assert prereq["IsUserAzureAD"] == "NO" and prereq["PreReqResult"] == "WillNotProvision"


def test_cert_trust_user_prerequisites_show_enrollment_authority(fleet: Fleet) -> None:
    """With the certificate trust policy the AD FS enrolment lines appear, as in the msdocs sample."""
    fleet.hybrid.registry.set_value(
        "HKLM\\SOFTWARE\\Policies\\Microsoft\\PassportForWork", "UseCertificateForOnPremAuth", 1
    )
    fleet.lab.sign_in(fleet.hybrid, fleet.bob)
    ours = sections(out_lines(fleet.run(fleet.hybrid, fleet.as_user(fleet.hybrid, fleet.bob), "dsregcmd", "/status")))
    keys = [k for k, _, _ in ours["Ngc Prerequisite Check"]]
    sample = [
        k for k, _, _ in sections(sample_lines("dsregcmd_msdocs_ngc_prereq_certtrust.txt"))["Ngc Prerequisite Check"]
    ]
    assert keys == sample
    assert dict((k, v) for k, v, _ in ours["Ngc Prerequisite Check"])["CertEnrollment"] == "enrollment authority"


def test_rdp_session_is_remote(fleet: Fleet) -> None:
    """A user on RDP sees SessionIsNotRemote NO and WillNotProvision."""
    fleet.lab.sign_out(fleet.hybrid, fleet.alice)
    fleet.lab.sign_in(fleet.hybrid, fleet.alice, "rdp")
    ours = sections(out_lines(fleet.run(fleet.hybrid, fleet.as_user(fleet.hybrid, fleet.alice), "dsregcmd", "/status")))
    prereq = {k: v for k, v, _ in ours["Ngc Prerequisite Check"]}
    assert prereq["SessionIsNotRemote"] == "NO" and prereq["PreReqResult"] == "WillNotProvision"


def test_display_bug_build_hides_the_partial_tgt_that_klist_shows(fleet: Fleet) -> None:
    """Windows 10 21H2 with KB5018410: dsregcmd says OnPremTgt NO while klist cloud_debug shows the partial TGT."""
    fleet.entra.os = OsInfo(
        product_name="Windows 10 Enterprise",
        caption="Microsoft Windows 10 Enterprise",
        edition_id="Enterprise",
        display_version="21H2",
        build=19044,
        ubr=2251,
    )
    assert fleet.entra.os.has_dsregcmd_display_bug
    dave = fleet.as_user(fleet.entra, fleet.dave)
    session = fleet.entra.session_of(fleet.dave)
    assert session is not None and session.partial_tgt
    sso = {k: v for k, v, _ in sections(out_lines(fleet.run(fleet.entra, dave, "dsregcmd", "/status")))["SSO State"]}
    assert sso["OnPremTgt"] == "NO" and sso["CloudTgt"] == "NO"
    debug = out_lines(fleet.run(fleet.entra, dave, "klist", "cloud_debug"))
    assert "Cloud Primary (Hybrid logon) TGT available: 1" in debug


def test_old_builds_have_no_kerberos_fields(fleet: Fleet) -> None:
    """Before KB5018410 (Windows 10 UBR < 2130) the SSO State has no OnPremTgt/CloudTgt lines."""
    fleet.entra.os = fleet.entra.os.model_copy(update={"build": 19044, "ubr": 1889})
    dave = fleet.as_user(fleet.entra, fleet.dave)
    sso = sections(out_lines(fleet.run(fleet.entra, dave, "dsregcmd", "/status")))["SSO State"]
    assert "OnPremTgt" not in {k for k, _, _ in sso}


def test_usage_and_exit_codes(fleet: Fleet) -> None:
    """/status exits 0; /? prints the switches; an unknown switch prints them and fails."""
    admin = fleet.admin(fleet.hybrid)
    assert fleet.run(fleet.hybrid, admin, "dsregcmd", "/status").exit_code == 0
    assert fleet.run(fleet.hybrid, admin, "dsregcmd", "/status", "/debug").exit_code == 0
    help_text = fleet.run(fleet.hybrid, admin, "dsregcmd", "/?")
    assert help_text.exit_code == 0 and "/status : Displays the device join status" in help_text.stdout
    assert fleet.run(fleet.hybrid, admin, "dsregcmd", "/bogus").exit_code == 1
