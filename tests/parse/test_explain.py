"""Tests of the migration verdicts drawn from parsed dsregcmd, klist and nltest outputs."""

from __future__ import annotations

import pytest

from migrator.parse import parse_dsregcmd, parse_klist, parse_klist_cloud_debug, parse_nltest_dsgetdc
from migrator.parse.explain import explain_dsregcmd, explain_klist, explain_nltest
from tests.parse._samples import sample, variants

DSREG_VERDICTS = {
    "dsregcmd_domainjoined_hybridjoin_failed_system_ws2022.txt": "not-eligible",
    "dsregcmd_hybrid_certtrust_willnotprovision_qa591928.txt": "no-hello-container",
    "dsregcmd_hybrid_fragments_onpremtgt_no_corppc01.txt": "unknown",
    "dsregcmd_hybrid_head_partial_kolide873.txt": "unknown",
    "dsregcmd_msdocs_device_details.txt": "unknown",
    "dsregcmd_msdocs_device_state.txt": "unknown",
    "dsregcmd_msdocs_diag_postjoin.txt": "unknown",
    "dsregcmd_msdocs_diag_prejoin_0x801c03f2.txt": "unknown",
    "dsregcmd_msdocs_diag_prejoin_discover_fail.txt": "unknown",
    "dsregcmd_msdocs_ngc_prereq_certtrust.txt": "unknown",
    "dsregcmd_msdocs_sso_state_prt_failure.txt": "cloud-trust-active",
    "dsregcmd_msdocs_tenant_details.txt": "unknown",
    "dsregcmd_msdocs_user_state.txt": "key-or-cert-needs-migration",
    "dsregcmd_ngc_prereq_willnotprovision_msft_supportwiki.txt": "unknown",
    "dsregcmd_not_joined_issue48791.txt": "not-eligible",
    "dsregcmd_not_joined_workplacejoined_full.txt": "not-eligible",
    "dsregcmd_sso_state_onpremtgt_no_cloudtgt_yes_qa591928_answer.txt": "unknown",
    "dsregcmd_user_state_ngcset_nondestructive_issue36269.txt": "key-or-cert-needs-migration",
}


@pytest.mark.parametrize(("name", "verdict"), sorted(DSREG_VERDICTS.items()))
def test_dsregcmd_sample_verdicts(name: str, verdict: str) -> None:
    """Every published dsregcmd sample gets the verdict its content supports, with reasons."""
    explanation = explain_dsregcmd(parse_dsregcmd(sample(name)))
    assert explanation.verdict == verdict
    assert explanation.reasons


def test_not_joined_reason_cites_the_field() -> None:
    """The domain-only server's reasons cite AzureAdJoined and the join error code."""
    explanation = explain_dsregcmd(parse_dsregcmd(sample("dsregcmd_domainjoined_hybridjoin_failed_system_ws2022.txt")))
    assert explanation.reasons[0].startswith("AzureAdJoined : NO — the device is not Entra joined")
    assert any(
        reason.startswith("Client ErrorCode : 0x801c001d (Error Phase : discover)") for reason in explanation.reasons
    )


def test_cert_trust_reason_for_user_without_container() -> None:
    """The AD FS cert-trust device says the certificate policy must go before provisioning."""
    explanation = explain_dsregcmd(parse_dsregcmd(sample("dsregcmd_hybrid_certtrust_willnotprovision_qa591928.txt")))
    assert any(r.startswith("CertEnrollment : enrollment authority") for r in explanation.reasons)
    assert any(r.startswith("AdfsRefreshToken : NO") for r in explanation.reasons)


def test_cloud_trust_active_carries_display_bug_caveat() -> None:
    """OnPremTgt YES is cloud trust, with the KB5018410 display-bug caveat."""
    explanation = explain_dsregcmd(parse_dsregcmd(sample("dsregcmd_msdocs_sso_state_prt_failure.txt")))
    assert explanation.verdict == "cloud-trust-active"
    assert any("KB5018410" in r for r in explanation.reasons)


def _status(device: str, user: str, sso: str = "", ngc: str = "") -> str:
    def box(title: str, body: str) -> str:
        return f"+----------+\n| {title} |\n+----------+\n{body}\n" if body else ""

    return (
        box("Device State", device)
        + box("User State", user)
        + box("SSO State", sso)
        + box("Ngc Prerequisite Check", ngc)
    )


HYBRID = "AzureAdJoined : YES\nDomainJoined : YES"


def test_cert_trust_container_needs_migration_with_deletion_path() -> None:
    """NgcSet YES + CertEnrollment enrollment authority: migrate via container deletion."""
    text = _status(
        HYBRID,
        "NgcSet : YES\nNgcKeyId : {ABC}",
        "AzureAdPrt : YES\nOnPremTgt : NO\nCloudTgt : YES",
        "CertEnrollment : enrollment authority\nPreReqResult : WillProvision",
    )
    explanation = explain_dsregcmd(parse_dsregcmd(text))
    assert explanation.verdict == "key-or-cert-needs-migration"
    assert any("certutil -deletehellocontainer" in r for r in explanation.reasons)
    assert any(r.startswith("CloudTgt : YES with OnPremTgt : NO") for r in explanation.reasons)


def test_key_trust_container_needs_migration_by_sign_in() -> None:
    """NgcSet YES + CertEnrollment none: key trust, sign out and in with Hello."""
    text = _status(HYBRID, "NgcSet : YES", "AzureAdPrt : YES\nOnPremTgt : NO", "CertEnrollment : none")
    explanation = explain_dsregcmd(parse_dsregcmd(text))
    assert explanation.verdict == "key-or-cert-needs-migration"
    assert any(r.startswith("CertEnrollment : none — key trust") for r in explanation.reasons)


def test_cloud_trust_active_on_full_status() -> None:
    """NgcSet YES + OnPremTgt YES on a hybrid device is cloud trust in use."""
    text = _status(HYBRID, "NgcSet : YES", "AzureAdPrt : YES\nOnPremTgt : YES\nCloudTgt : YES")
    assert explain_dsregcmd(parse_dsregcmd(text)).verdict == "cloud-trust-active"


def test_no_prt_and_no_container_is_not_eligible() -> None:
    """NgcSet NO with AzureAdPrt NO: the user cannot provision Hello at all."""
    text = _status(HYBRID, "NgcSet : NO", "AzureAdPrt : NO\nAttempt Status : 0xc000006d")
    explanation = explain_dsregcmd(parse_dsregcmd(text))
    assert explanation.verdict == "not-eligible"
    assert any("STATUS_LOGON_FAILURE" in r for r in explanation.reasons)


def test_rdp_session_is_reported_for_user_without_container() -> None:
    """NgcSet NO over RDP: no container, and the RDP limitation is explained."""
    text = _status(HYBRID, "NgcSet : NO", "AzureAdPrt : YES", "SessionIsNotRemote : NO")
    explanation = explain_dsregcmd(parse_dsregcmd(text))
    assert explanation.verdict == "no-hello-container"
    assert any(r.startswith("SessionIsNotRemote : NO") for r in explanation.reasons)


def test_device_not_eligible_by_hardware() -> None:
    """DeviceEligible NO stops the device whatever the user state."""
    text = _status(HYBRID, "NgcSet : YES", "AzureAdPrt : YES", "DeviceEligible : NO")
    assert explain_dsregcmd(parse_dsregcmd(text)).verdict == "not-eligible"


def test_unparseable_is_unknown() -> None:
    """Text without dsregcmd fields is unknown with a reason."""
    explanation = explain_dsregcmd(parse_dsregcmd("just some words"))
    assert explanation.verdict == "unknown"
    assert "dsregcmd /status" in explanation.reasons[0]


def test_dsregcmd_json_contract_keys() -> None:
    """The JSON document has exactly the contract keys, YES/NO as booleans, absent as null."""
    document = explain_dsregcmd(parse_dsregcmd(sample("dsregcmd_not_joined_workplacejoined_full.txt"))).as_json()
    assert list(document) == [
        "azure_ad_joined",
        "domain_joined",
        "join_type",
        "device_id",
        "tenant_id",
        "tenant_name",
        "ngc_set",
        "ngc_key_id",
        "azure_ad_prt",
        "on_prem_tgt",
        "cloud_tgt",
        "kerb_top_level_names",
        "prerequisites",
        "unknown_fields",
        "verdict",
        "reasons",
    ]
    assert document["azure_ad_joined"] is False
    assert document["join_type"] == "workgroup"
    assert document["device_id"] is None
    assert document["kerb_top_level_names"] is None


KLIST_PARTS = variants("klist_failure_variants.txt")


def _klist(text: str) -> tuple[str, tuple[str, ...]]:
    explanation = explain_klist(parse_klist(text), parse_klist_cloud_debug(text))
    return explanation.verdict, explanation.reasons


def test_klist_cloud_tgt_present() -> None:
    """The Entra-joined capture has the cloud TGT."""
    verdict, reasons = _klist(sample("klist_get_cifs_cloud_tgt_entrajoined.txt"))
    assert verdict == "cloud-tgt-present"
    assert reasons[0].startswith("Server: krbtgt/KERBEROS.MICROSOFTONLINE.COM")


def test_klist_on_prem_only() -> None:
    """The on-prem TGT capture has no cloud TGT but shows DC line of sight."""
    verdict, reasons = _klist(sample("klist_get_krbtgt_onprem_success_msdocs.txt"))
    assert verdict == "cloud-tgt-absent"
    assert any("issued by dc01.contoso.com" in r for r in reasons)


def test_klist_cloud_debug_partial_tgt() -> None:
    """cloud_debug with the hybrid-logon TGT available counts as present, policy 0 explained."""
    verdict, reasons = _klist(sample("klist_cloud_debug_partial_tgt_present_msft_supportwiki.txt"))
    assert verdict == "cloud-tgt-present"
    assert any(r.startswith("Cloud Kerberos enabled by policy: 0") for r in reasons)


def test_klist_over_winrm_says_run_in_user_session() -> None:
    """0xc000005f is explained as the WinRM network-logon case."""
    verdict, reasons = _klist(KLIST_PARTS["klist inside a PSSession / WinRM (network logon)"])
    assert verdict == "klist-failed"
    assert reasons[0].startswith("klist failed with 0xc000005f (STATUS_NO_SUCH_LOGON_SESSION)")
    assert "not over WinRM" in reasons[0]


@pytest.mark.parametrize(
    ("heading", "needle"),
    [
        ("klist tgt, user in Protected Users (MS SupportArticles)", "Protected Users"),
        ("klist get krbtgt with no reachable KDC (STATUS_NO_LOGON_SERVERS)", "line of sight"),
        ("etype not supported (MS support wiki)", "AZUREADSSOACC"),
    ],
)
def test_klist_failure_meanings(heading: str, needle: str) -> None:
    """Each published failure gets its meaning for this migration."""
    verdict, reasons = _klist(KLIST_PARTS[heading])
    assert verdict == "klist-failed"
    assert needle in reasons[0]


def test_klist_unknown() -> None:
    """Unrelated text is unknown."""
    assert _klist("nothing here")[0] == "unknown"


def test_nltest_verdicts() -> None:
    """Success is line of sight; 1355 is none with the DNS/LDAP-ping explanation; sc_verify is unknown."""
    ok = explain_nltest(parse_nltest_dsgetdc(sample("nltest_dsgetdc_success_msdocs.txt")))
    assert ok.verdict == "dc-reachable"
    assert ok.facts["dc_line_of_sight"] is True
    failed = explain_nltest(parse_nltest_dsgetdc(sample("nltest_dsgetdc_failure_1355_variants.txt")))
    assert failed.verdict == "dc-unreachable"
    assert failed.facts["dc_line_of_sight"] is False
    assert failed.reasons[0].startswith("Getting DC name failed: Status = 1355 0x54b ERROR_NO_SUCH_DOMAIN")
    assert len(failed.reasons) == len(set(failed.reasons))
    other = explain_nltest(parse_nltest_dsgetdc(sample("nltest_sc_verify_success_msdocs.txt")))
    assert other.verdict == "unknown"
    assert other.facts["dc_line_of_sight"] is None


def test_nltest_read_only_dc_outside_site() -> None:
    """A DC without WRITABLE in another site is reachable, with both caveats."""
    text = "DC: \\\\rodc1.contoso.com\nDc Site Name: HQ\nOur Site Name: Branch\nFlags: GC DS LDAP KDC\n"
    explanation = explain_nltest(parse_nltest_dsgetdc(text))
    assert explanation.verdict == "dc-reachable"
    assert any(r.startswith("Flags lack WRITABLE") for r in explanation.reasons)
    assert any(r.startswith("Dc Site Name HQ differs") for r in explanation.reasons)
