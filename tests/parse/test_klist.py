"""Tests of parse_klist and parse_klist_cloud_debug on the published klist samples."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from migrator.parse import parse_klist, parse_klist_cloud_debug
from tests.parse._samples import sample, variants


def test_entra_joined_cloud_tgt_and_service_ticket() -> None:
    """The Azure Files capture: purge, then the cloud TGT and a cifs ticket from the KDC proxy."""
    result = parse_klist(sample("klist_get_cifs_cloud_tgt_entrajoined.txt"))
    assert result.logon_id == "0:0x14c5c3f"
    assert result.purged is True
    assert result.retrieved == "cifs/entraazfiles1.file.core.windows.net"
    assert result.declared_ticket_count == 2
    assert len(result.tickets) == 2
    assert result.has_cloud_tgt is True
    assert result.has_on_prem_tgt is False
    assert not result.failed
    tgt, cifs = result.tickets
    assert tgt.index == 0
    assert (tgt.client, tgt.client_realm) == ("ayan@<>", "AzureAD")
    assert (tgt.server, tgt.server_realm) == (
        "krbtgt/KERBEROS.MICROSOFTONLINE.COM",
        "KERBEROS.MICROSOFTONLINE.COM",
    )
    assert tgt.is_cloud_tgt and tgt.is_tgt
    assert tgt.encryption_type == "Unknown (-1)"
    assert tgt.ticket_flags == 0x40810000
    assert tgt.ticket_flag_names == ("forwardable", "renewable", "name_canonicalize")
    assert tgt.start_time == "2/7/2026 17:22:58 (local)"
    assert tgt.end_time == "2/8/2026 3:22:58 (local)"
    assert tgt.renew_time == "2/14/2026 17:22:58 (local)"
    assert tgt.session_key_type == "AES-256-CTS-HMAC-SHA1-96"
    assert tgt.cache_flags == 0x400
    assert tgt.kdc_called == "TicketSuppliedAtLogon"
    assert result.cloud_tgt == tgt
    assert cifs.server == "cifs/entraazfiles1.file.core.windows.net"
    assert not cifs.is_tgt
    assert cifs.ticket_flags == 0x40000000
    assert cifs.ticket_flag_names == ("forwardable",)
    assert cifs.renew_time == "0"
    assert cifs.cache_flags == 0
    assert cifs.cache_flag_names == ()
    assert cifs.kdc_called == "KdcProxy:login.microsoftonline.com"
    assert cifs.unknown_fields == {}


def test_on_premises_tgt_from_msdocs() -> None:
    """The gMSA doc capture: an on-prem TGT, no cloud TGT; the elided tail is kept as unknown."""
    result = parse_klist(sample("klist_get_krbtgt_onprem_success_msdocs.txt"))
    assert result.logon_id == "0:0xaa79ef8"
    assert result.retrieved == "krbtgt"
    assert result.declared_ticket_count == 2
    (ticket,) = result.tickets
    assert (ticket.client, ticket.client_realm) == ("webapp01$", "CONTOSO.COM")
    assert (ticket.server, ticket.server_realm) == ("krbtgt/webapp01", "CONTOSO.COM")
    assert ticket.ticket_flags == 0x40A10000
    assert ticket.ticket_flag_names == ("forwardable", "renewable", "pre_authent", "name_canonicalize")
    assert ticket.kdc_called == "dc01.contoso.com"
    assert result.has_on_prem_tgt is True
    assert result.has_cloud_tgt is False
    assert "[...]" in result.unknown_lines


def test_failure_variants() -> None:
    """Every published klist failure reads as a typed status with its name and message."""
    parts = variants("klist_failure_variants.txt")
    protected = parse_klist(parts["klist tgt, user in Protected Users (MS SupportArticles)"])
    assert protected.failure is not None
    assert protected.failure.code.value == 0x8009030E
    assert protected.failure.code.signed == -2146893042
    assert protected.failure.code.name == "SEC_E_NO_CREDENTIALS"
    assert protected.failure.message == "No credentials are available in the security package"
    assert protected.api_errors == ()

    winrm = parse_klist(parts["klist inside a PSSession / WinRM (network logon)"])
    assert winrm.logon_id == "0:0xc7fbc"
    (api,) = winrm.api_errors
    assert (api.api, api.operation, api.text) == ("LsaCallAuthenticationPackage", "ShowTickets", "1312")
    assert api.substatus is not None and api.substatus.name == "ERROR_NO_SUCH_LOGON_SESSION"
    assert winrm.failure is not None
    assert winrm.failure.code.hex == "0xc000005f"
    assert winrm.failure.code.name == "STATUS_NO_SUCH_LOGON_SESSION"
    assert winrm.failure.message == "A specified logon session does not exist. It may already have been terminated."

    truncated = parse_klist(parts["same, Evil-WinRM capture (message text truncated in that capture)"])
    assert truncated.logon_id == "0:0x1ae296c"
    assert truncated.failure is not None
    assert truncated.failure.code.value == 0xC000005F
    # The message the capture lost is filled in from the status table.
    assert truncated.failure.message == "A specified logon session does not exist. It may already have been terminated."

    no_kdc = parse_klist(parts["klist get krbtgt with no reachable KDC (STATUS_NO_LOGON_SERVERS)"])
    assert no_kdc.api_errors[0].operation == "GetTicket"
    assert no_kdc.api_errors[0].substatus is not None
    assert no_kdc.api_errors[0].substatus.value == 0x51F
    assert no_kdc.api_errors[0].substatus.name == "ERROR_NO_LOGON_SERVERS"
    assert no_kdc.failure is not None
    assert no_kdc.failure.code.name == "STATUS_NO_LOGON_SERVERS"

    realm = parse_klist(parts["klist get cifs/<host> where realm not registered"])
    assert realm.api_errors[0].text == "0x520"
    assert realm.failure is not None and realm.failure.code.name == "SEC_E_NO_CREDENTIALS"

    etype = parse_klist(parts["etype not supported (MS support wiki)"])
    assert etype.api_errors[0].substatus is not None
    assert etype.api_errors[0].substatus.name == "SEC_E_KDC_UNKNOWN_ETYPE"
    assert etype.failure is not None
    assert etype.failure.code.value == 0xC00002FD
    assert etype.failure.code.signed == -1073741059
    assert etype.failure.message == "The encryption type requested is not supported by the KDC."
    assert all(parse_klist(text).failed for text in parts.values())


def test_whole_failure_file_keeps_last_failure() -> None:
    """Parsed as one text, the variants file reports failures and no tickets."""
    result = parse_klist(sample("klist_failure_variants.txt"))
    assert result.failed
    assert result.tickets == ()
    assert len(result.api_errors) == 5


def test_cloud_debug_partial_listing() -> None:
    """The support-wiki cloud_debug listing: numbers become booleans, absent lines None."""
    debug = parse_klist_cloud_debug(sample("klist_cloud_debug_partial_tgt_present_msft_supportwiki.txt"))
    assert debug.cloud_kerberos_enabled_by_policy is False
    assert debug.as_rep_callback_received is True
    assert debug.as_rep_callback_used is True
    assert debug.cloud_referral_tgt_present is False
    assert debug.cloud_primary_tgt_available is True
    assert debug.spn_oracle_configured is None
    assert debug.as_rep_credential_type is None
    assert debug.unknown_fields == {}
    assert not debug.is_empty


def test_cloud_debug_full_listing() -> None:
    """All documented cloud_debug fields, the credential type as an int, extras kept as unknown."""
    text = """Current LogonId is 0:0x3e7
Dumping cloud kerberos debug info
Cloud Kerberos enabled by policy: 1
AS_REP callback received: 1
AS_REP callback used: 1
Cloud Referral TGT present in cache: 1
SPN oracle configured: 1
KDC proxy present in cache: 0
Public Key Credential Present: 1
Password-derived Keys Present: 0
Plaintext Password Present: 0
AS_REP Credential Type: 2
Cloud Primary (Hybrid logon) TGT available: 1
Some Future Field: 7
"""
    debug = parse_klist_cloud_debug(text)
    assert debug.logon_id == "0:0x3e7"
    assert debug.cloud_kerberos_enabled_by_policy is True
    assert debug.spn_oracle_configured is True
    assert debug.kdc_proxy_present is False
    assert debug.public_key_credential_present is True
    assert debug.password_derived_keys_present is False
    assert debug.plaintext_password_present is False
    assert debug.as_rep_credential_type == 2
    assert debug.cloud_primary_tgt_available is True
    assert debug.unknown_fields == {"Some Future Field": "7"}


def test_cloud_debug_over_winrm_fails() -> None:
    """cloud_debug run without a logon session reports the failure, no fields."""
    debug = parse_klist_cloud_debug(
        "Current LogonId is 0:0x1\nklist failed with 0xc000005f/-1073741729: A specified logon session"
        " does not exist. It may already have been terminated.\n"
    )
    assert debug.is_empty
    assert debug.failure is not None and debug.failure.code.name == "STATUS_NO_SUCH_LOGON_SESSION"


def test_ticket_lines_without_indentation() -> None:
    """A forum copy that lost the ticket indentation still yields the ticket."""
    text = "\n".join(line.lstrip() for line in sample("klist_get_cifs_cloud_tgt_entrajoined.txt").splitlines())
    result = parse_klist(text)
    assert len(result.tickets) == 2
    assert result.has_cloud_tgt


def test_unrelated_text() -> None:
    """Text with nothing klist prints yields an empty result."""
    result = parse_klist("hello\nworld")
    assert result.tickets == () and result.failure is None and not result.failed
    assert result.unknown_lines == ("hello", "world")


@settings(max_examples=150, deadline=None)
@given(st.text())
def test_never_raises(text: str) -> None:
    """Any text at all parses without an exception."""
    parse_klist(text)
    parse_klist_cloud_debug(text)
