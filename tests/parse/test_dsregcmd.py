"""Tests of parse_dsregcmd on every published dsregcmd sample and on mangled captures."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from migrator.parse import JoinType, decode_output, parse_dsregcmd
from migrator.parse.dsregcmd import NGC_PREREQUISITE_CHECK, NO_SECTION, SSO_STATE, USER_STATE
from tests.parse._samples import sample

KERB_NAMES = (
    ".windows.net",
    ".windows.net:1433",
    ".windows.net:3342",
    ".azure.net",
    ".azure.net:1433",
    ".azure.net:3342",
)


def test_domain_joined_server_with_failed_hybrid_join() -> None:
    """The WS2022 capture reads as domain-only, with the join error, SYSTEM context and RDP session."""
    status = parse_dsregcmd(sample("dsregcmd_domainjoined_hybridjoin_failed_system_ws2022.txt"))
    assert status.azure_ad_joined is False
    assert status.enterprise_joined is False
    assert status.domain_joined is True
    assert status.join_type is JoinType.DOMAIN
    assert status.domain_name == "RCMLAB"
    assert status.device_name == "rcmlab-ws2022-s.rcmlab.local"
    assert status.ngc_set is False
    assert status.azure_ad_prt is False
    assert status.get(SSO_STATE, "AzureAdPrtAuthority") == "NO"
    assert status.user_context == "SYSTEM"
    assert status.error_phase == "discover"
    assert status.client_error_code == "0x801c001d"
    assert status.get("Diagnostic Data", "AD Configuration Test") == "FAIL [0x80070002]"
    assert status.prerequisites == {
        "IsDeviceJoined": False,
        "IsUserAzureAD": False,
        "PolicyEnabled": False,
        "PostLogonEnabled": True,
        "DeviceEligible": False,
        "SessionIsNotRemote": False,
        "CertEnrollment": "none",
        "PreReqResult": "WillNotProvision",
    }
    assert status.pre_req_result == "WillNotProvision"
    assert [s.title for s in status.sections] == [
        NO_SECTION,
        "Device State",
        "User State",
        "SSO State",
        "Diagnostic Data",
        "IE Proxy Config for System Account",
        "URL Specific Proxy Config",
        "IE Proxy Config for Current User",
        "WinHttp Default Proxy Config",
        "Ngc Prerequisite Check",
    ]
    assert status.unknown_fields == {}


def test_console_wrapped_value_is_rejoined() -> None:
    """The PAC status value the console wrapped at its width is glued back into one value."""
    status = parse_dsregcmd(sample("dsregcmd_domainjoined_hybridjoin_failed_system_ws2022.txt"))
    assert status.get("URL Specific Proxy Config", "Auto Detect PAC Status") == (
        "Failed to auto detect the Proxy Auto-Configuration (PAC) script using WPAD. code: 0x80072f94"
    )
    assert status.get("URL Specific Proxy Config", "Executing Account Name") == (
        "RCMLAB\\RCMLAB-WS2022-S$, RCMLAB-WS2022-S$@rcmlab.local"
    )


def test_same_field_in_two_sections_is_kept_per_section() -> None:
    """Auto Detect Settings is read per proxy section; empty values stay empty strings."""
    status = parse_dsregcmd(sample("dsregcmd_domainjoined_hybridjoin_failed_system_ws2022.txt"))
    assert status.get("IE Proxy Config for System Account", "Auto Detect Settings") == "YES"
    assert status.get("IE Proxy Config for Current User", "Proxy Server List") == ""
    assert status.get("WinHttp Default Proxy Config", "Access Type") == "DIRECT"


def test_notes_keep_non_field_lines() -> None:
    """Prompt lines, the diagnostics wait line and the footer are notes, not fields."""
    status = parse_dsregcmd(sample("dsregcmd_domainjoined_hybridjoin_failed_system_ws2022.txt"))
    assert "Waiting for Diagnostics Task to complete. This could take a few minutes..." in status.notes
    assert "For more information, please visit https://www.microsoft.com/aadjerrors" in status.notes
    diagnostic = status.section("Diagnostic Data")
    assert diagnostic is not None
    assert diagnostic.notes == ("Waiting for Diagnostics Task to complete. This could take a few minutes...",)


def test_forum_copy_with_lost_indentation() -> None:
    """The Q&A 591928 copy, whose first line per block lost its spaces, parses like a clean one."""
    status = parse_dsregcmd(sample("dsregcmd_hybrid_certtrust_willnotprovision_qa591928.txt"))
    assert status.join_type is JoinType.HYBRID
    assert status.domain_name == "xxxxx"
    assert status.device_name == "MyPC.xxxx.com"
    assert status.device_auth_status == "SUCCESS"
    assert status.ngc_set is False
    assert status.get(USER_STATE, "WamDefaultGUID") == "{B16898C6-A148-4967-9171-64D755DA8520} (AzureAd)"
    assert status.azure_ad_prt is True
    assert status.get(SSO_STATE, "AzureAdPrtUpdateTime") == "2021-10-15 11:54:04.000 UTC"
    assert status.get(SSO_STATE, "AzureAdPrtAuthority") == (
        "https://login.microsoftonline.com/baaf30d9-bdd3-4de1-815f-59e774096377"
    )
    assert status.get(SSO_STATE, "EnterprisePrtAuthority") == "https://fs.xxxx.xxx:443/adfs"
    assert status.enterprise_prt is False
    assert status.executing_account == "***\\*******"
    assert status.cert_enrollment == "enrollment authority"
    assert status.prerequisites["AdfsRefreshToken"] is False
    assert status.prerequisites["LogonCertTemplateReady"] is True
    assert status.get(NGC_PREREQUISITE_CHECK, "LogonCertTemplateReady") == "YES ( StateReady )"
    assert status.on_prem_tgt is None
    assert status.unknown_fields == {}


def test_fragments_with_cloud_tgt_but_no_on_prem_tgt() -> None:
    """The CORPPC01 fragments give OnPremTgt NO, CloudTgt YES and the top-level names, no join state."""
    status = parse_dsregcmd(sample("dsregcmd_hybrid_fragments_onpremtgt_no_corppc01.txt"))
    assert status.azure_ad_prt is True
    assert status.on_prem_tgt is False
    assert status.cloud_tgt is True
    assert status.kerb_top_level_names == KERB_NAMES
    assert status.join_type is None
    assert status.ngc_set is None
    assert status.executing_account == "CORP\\user1, user1@Binhiemihotmail.onmicrosoft.com"
    assert status.get("Diagnostic Data", "HostNameUpdated") == "YES"
    assert status.prerequisites["PolicyEnabled"] is False
    assert status.prerequisites["IsDeviceJoined"] is True
    assert status.pre_req_result == "WillNotProvision"


def test_truncated_capture_with_blank_lines_holding_a_space() -> None:
    """The kolide capture (cut inside Tenant Details) yields device and tenant ids."""
    status = parse_dsregcmd(sample("dsregcmd_hybrid_head_partial_kolide873.txt"))
    assert status.join_type is JoinType.HYBRID
    assert status.domain_name == "CONTOSO"
    assert status.device_id == "126cafbf-18e6-47a8-ad06-d5affe132b36"
    assert status.tpm_protected is True
    assert status.get("Device Details", "DeviceCertificateValidity") == (
        "[ 2020-11-16 18:55:24.000 UTC -- 2030-11-16 19:25:24.000 UTC ]"
    )
    assert status.get("Device Details", "KeyProvider") == "Microsoft Platform Crypto Provider"
    assert status.tenant_name == "Contoso"
    assert status.tenant_id == "ad8e1d4f-5295-4df7-b18a-1d85b4195a17"


def test_msdocs_device_details() -> None:
    """The MS docs Device Details block."""
    status = parse_dsregcmd(sample("dsregcmd_msdocs_device_details.txt"))
    assert status.device_id == "e92325d0-xxxx-xxxx-xxxx-94ae875dxxxx"
    assert status.get("Device Details", "Thumbprint") == "D293213EF327483560EED8410CAE36BB67208179"
    assert status.tpm_protected is False
    assert status.device_auth_status == "SUCCESS"


def test_msdocs_device_state() -> None:
    """The MS docs Device State block is a hybrid join."""
    status = parse_dsregcmd(sample("dsregcmd_msdocs_device_state.txt"))
    assert (status.azure_ad_joined, status.enterprise_joined, status.domain_joined) == (True, False, True)
    assert status.join_type is JoinType.HYBRID
    assert status.domain_name == "HYBRIDADFS"


def test_msdocs_diagnostic_post_join_without_space_before_colon() -> None:
    """``AadRecoveryEnabled: NO`` (no space before the colon, as in the docs) still parses."""
    status = parse_dsregcmd(sample("dsregcmd_msdocs_diag_postjoin.txt"))
    assert status.get("Diagnostic Data", "AadRecoveryEnabled") == "NO"
    assert status.flag("Diagnostic Data", "AadRecoveryEnabled") is False
    assert status.get("Diagnostic Data", "KeySignTest") == "PASSED"


def test_msdocs_diagnostic_pre_join_directory_error() -> None:
    """The 0x801c03f2 pre-join diagnostics keep the server error and message."""
    status = parse_dsregcmd(sample("dsregcmd_msdocs_diag_prejoin_0x801c03f2.txt"))
    assert status.client_error_code == "0x801c03f2"
    assert status.server_error_code == "DirectoryError"
    assert status.error_phase == "join"
    assert status.get("Diagnostic Data", "Server Message") == (
        "The device object by the given id (e92325d0-7ac4-4714-88a1-94ae875d5245) isn't found."
    )
    assert status.get("Diagnostic Data", "Https Status") == "400"
    assert status.get("Diagnostic Data", "Fallback to Sync-Join") == "ENABLED"


def test_msdocs_diagnostic_discover_failure() -> None:
    """The discovery failure keeps the composite test result."""
    status = parse_dsregcmd(sample("dsregcmd_msdocs_diag_prejoin_discover_fail.txt"))
    assert status.get("Diagnostic Data", "DRS Discovery Test") == "FAIL [0x801c0021/0x801c000c]"
    assert status.client_error_code == "0x801c0021"
    assert status.error_phase == "discover"
    assert status.user_context == "SYSTEM"


def test_msdocs_ngc_prerequisites_cert_trust() -> None:
    """The cert-trust prerequisite block yields booleans and the enrolment method."""
    status = parse_dsregcmd(sample("dsregcmd_msdocs_ngc_prereq_certtrust.txt"))
    assert status.prerequisites == {
        "IsDeviceJoined": True,
        "IsUserAzureAD": True,
        "PolicyEnabled": True,
        "PostLogonEnabled": True,
        "DeviceEligible": True,
        "SessionIsNotRemote": True,
        "CertEnrollment": "enrollment authority",
        "AdfsRefreshToken": True,
        "AdfsRaIsReady": True,
        "LogonCertTemplateReady": True,
        "PreReqResult": "WillProvision",
    }


def test_msdocs_sso_state_with_prt_failure() -> None:
    """The SSO State block with PRT diagnostics: no PRT, both TGTs, the failed attempt."""
    status = parse_dsregcmd(sample("dsregcmd_msdocs_sso_state_prt_failure.txt"))
    assert status.azure_ad_prt is False
    assert status.enterprise_prt is True
    assert status.on_prem_tgt is True
    assert status.cloud_tgt is True
    assert status.kerb_top_level_names == KERB_NAMES
    assert status.prt_attempt_status == "0xc000006d"
    assert status.get(SSO_STATE, "Server Error Description") == (
        "AADSTS50126: Error validating credentials due to invalid username or password."
    )
    assert status.get(SSO_STATE, "HTTP status") == "400"


def test_msdocs_tenant_details() -> None:
    """Tenant Details give the tenant name and id and keep every service URL."""
    status = parse_dsregcmd(sample("dsregcmd_msdocs_tenant_details.txt"))
    assert status.tenant_name == "HybridADFS"
    assert status.tenant_id == "96fa76d0-xxxx-xxxx-xxxx-eb60cc22xxxx"
    assert (
        status.get("Tenant Details", "KeySrvUrl") == "https://enterpriseregistration.windows.net/EnrollmentServer/key/"
    )
    assert status.get("Tenant Details", "DeviceManagementSrvId") == "urn:ms-drs:enterpriseregistration.windows.net"
    assert status.unknown_fields == {}


def test_msdocs_user_state_with_container() -> None:
    """A provisioned user: NgcSet YES, the key id and CanReset."""
    status = parse_dsregcmd(sample("dsregcmd_msdocs_user_state.txt"))
    assert status.ngc_set is True
    assert status.ngc_key_id == "{FA0DB076-A5D7-4844-82D8-50A2FB42EC7B}"
    assert status.can_reset == "DestructiveAndNonDestructive"
    assert status.workplace_joined is False
    assert status.get(USER_STATE, "WamDefaultGUID") == "{ B16898C6-A148-4967-9171-64D755DA8520 } (AzureAd)"


def test_support_wiki_indented_prerequisite_block() -> None:
    """A block indented as a whole (support wiki) parses, including AadRecoveryNeeded."""
    status = parse_dsregcmd(sample("dsregcmd_ngc_prereq_willnotprovision_msft_supportwiki.txt"))
    assert status.prerequisites == {
        "IsUserAzureAD": False,
        "PolicyEnabled": False,
        "DeviceEligible": True,
        "SessionIsNotRemote": True,
        "CertEnrollment": "none",
        "AadRecoveryNeeded": False,
        "PreReqResult": "WillNotProvision",
    }


def test_not_joined_device_with_truncated_last_header() -> None:
    """A workgroup device; WamDefaultSet ERROR is no bool; a header cut before its ``|`` is no crash."""
    status = parse_dsregcmd(sample("dsregcmd_not_joined_issue48791.txt"))
    assert status.join_type is JoinType.WORKGROUP
    assert status.ngc_set is False
    assert status.get(USER_STATE, "WamDefaultSet") == "ERROR"
    assert status.flag(USER_STATE, "WamDefaultSet") is None
    assert status.azure_ad_prt is False
    assert status.prerequisites == {}


def test_workplace_joined_device_keeps_work_account_apart() -> None:
    """The Work Account 1 NgcSet never stands in for the user's; its fields stay readable."""
    status = parse_dsregcmd(sample("dsregcmd_not_joined_workplacejoined_full.txt"))
    assert status.join_type is JoinType.WORKGROUP
    assert status.device_name == "Vagabondo"
    assert status.get("Device State", "Virtual Desktop") == "NOT SET"
    assert status.workplace_joined is True
    assert status.get(USER_STATE, "WorkAccountCount") == "1"
    assert status.ngc_set is False
    assert status.get("Work Account 1", "WorkplaceTenantName") == "Almaviva SpA"
    assert status.get("Work Account 1", "WorkplaceMdmUrl") == ""
    assert status.tenant_id is None
    assert status.unknown_fields == {}
    work = status.section("work account 1")
    assert work is not None and work.known


def test_sso_state_answer_with_adfs_error() -> None:
    """The Q&A answer SSO block: PRT yes, OnPremTgt NO, CloudTgt YES, the MSIS9682 description."""
    status = parse_dsregcmd(sample("dsregcmd_sso_state_onpremtgt_no_cloudtgt_yes_qa591928_answer.txt"))
    assert status.azure_ad_prt is True
    assert status.on_prem_tgt is False
    assert status.cloud_tgt is True
    assert status.kerb_top_level_names == KERB_NAMES
    assert status.get(SSO_STATE, "EnterprisePrtAuthority") == ""
    assert status.get(SSO_STATE, "Endpoint URI") == "https://[ADFS-Server]/adfs/oauth2/token/"
    assert (status.get(SSO_STATE, "Server Error Description") or "").startswith("MSIS9682: Received invalid")


def test_user_state_non_destructive_reset() -> None:
    """The issue 36269 User State: container present, NonDestructiveOnly."""
    status = parse_dsregcmd(sample("dsregcmd_user_state_ngcset_nondestructive_issue36269.txt"))
    assert status.ngc_set is True
    assert status.ngc_key_id == "{817E81F8-4866-4BE0-A8E0-A696810B6FA0}"
    assert status.can_reset == "NonDestructiveOnly"


@pytest.mark.parametrize(
    "name",
    [
        "dsregcmd_domainjoined_hybridjoin_failed_system_ws2022.txt",
        "dsregcmd_hybrid_certtrust_willnotprovision_qa591928.txt",
        "dsregcmd_not_joined_workplacejoined_full.txt",
        "dsregcmd_msdocs_sso_state_prt_failure.txt",
    ],
)
def test_stripped_indentation_and_extra_blank_lines_change_nothing(name: str) -> None:
    """Removing all leading spaces and doubling every line break gives the same sections."""
    text = sample(name)
    mangled = "\n\n".join(line.lstrip() for line in text.splitlines())
    original, parsed = parse_dsregcmd(text), parse_dsregcmd(mangled)
    assert [(s.title, dict(s.fields)) for s in parsed.sections] == [
        (s.title, dict(s.fields)) for s in original.sections
    ]
    assert parsed.join_type == original.join_type
    assert parsed.prerequisites == original.prerequisites


def test_crlf_and_utf16_capture() -> None:
    """A CRLF capture saved as UTF-16LE with BOM (PowerShell 5.1 redirection) decodes and parses."""
    text = sample("dsregcmd_msdocs_user_state.txt").replace("\n", "\r\n")
    status = parse_dsregcmd(decode_output(text.encode("utf-16")))
    assert status.ngc_set is True
    assert status.ngc_key_id == "{FA0DB076-A5D7-4844-82D8-50A2FB42EC7B}"


GERMAN = """
+----------------------------------------------------------------------+
| Gerätestatus                                                         |
+----------------------------------------------------------------------+

             AzureAdJoined : YES
              DomainJoined : YES
             Gerätekennung : Rechner01

+----------------------------------------------------------------------+
| User State                                                           |
+----------------------------------------------------------------------+

                    NgcSet : YES
               Zusatzfeld : etwas
"""


def test_localised_header_kept_as_unknown_and_still_read() -> None:
    """A German section header is kept with its fields as unknown; its join fields still count."""
    status = parse_dsregcmd(GERMAN)
    assert status.unknown_fields == {
        "Gerätestatus": {"AzureAdJoined": "YES", "DomainJoined": "YES", "Gerätekennung": "Rechner01"},
        "User State": {"Zusatzfeld": "etwas"},
    }
    section = status.section("Gerätestatus")
    assert section is not None and not section.known
    assert status.join_type is JoinType.HYBRID
    assert status.ngc_set is True


def test_known_section_is_not_overridden_by_unknown_one() -> None:
    """When Device State is present, an unknown section's AzureAdJoined is not used."""
    text = GERMAN.replace("| Gerätestatus ", "| Device State ") + "\n| Etwas |\n  AzureAdJoined : NO\n"
    status = parse_dsregcmd(text)
    assert status.azure_ad_joined is True
    assert status.unknown_fields["Etwas"] == {"AzureAdJoined": "NO"}


def test_empty_and_unrelated_text() -> None:
    """Text with no dsregcmd fields parses to an empty status, never an error."""
    for text in ("", "\n\n   \n", "hello world\nnothing here"):
        status = parse_dsregcmd(text)
        assert status.is_empty
        assert status.join_type is None
        assert status.prerequisites == {}


@settings(max_examples=150, deadline=None)
@given(st.text())
def test_never_raises(text: str) -> None:
    """Any text at all parses without an exception."""
    parse_dsregcmd(text)
