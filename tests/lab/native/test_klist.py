"""klist: the caller's logon session tickets, in the published layout."""

from __future__ import annotations

from tests.lab.native.conftest import Fleet, out_lines, sample_lines


def _labels(lines: list[str]) -> list[str]:
    """The label part of each ticket line (what precedes the value), tabs expanded as a console shows them."""
    labels = []
    for line in lines:
        expanded = line.expandtabs(8)
        if expanded.startswith("#"):
            labels.append(expanded.split(":")[0][3:])
        elif expanded.startswith("        "):
            labels.append(expanded.split(":")[0].split(" 0x")[0])
    return labels


def test_user_tickets_follow_the_cloud_tgt_sample(fleet: Fleet) -> None:
    """The Entra joined user's cloud TGT has the sample's lines, client ``upn @ AzureAD``, TicketSuppliedAtLogon."""
    lines = out_lines(fleet.run(fleet.entra, fleet.as_user(fleet.entra, fleet.dave), "klist"))
    session = fleet.entra.session_of(fleet.dave)
    assert session is not None
    assert lines[:4] == ["", f"Current LogonId is 0:{session.logon_id}", "", "Cached Tickets: (1)"]
    ticket = lines[5:15]
    sample = sample_lines("klist_get_cifs_cloud_tgt_entrajoined.txt")
    start = next(i for i, line in enumerate(sample) if line.startswith("#0>"))
    assert _labels(ticket) == _labels(sample[start : start + 10])
    assert [line.expandtabs(8) for line in ticket][1] == sample[start + 1]  # the Server line, verbatim
    assert ticket[0] == "#0>\tClient: dave@contoso.com @ AzureAD"
    assert ticket[-1] == "\tKdc Called: TicketSuppliedAtLogon"


def test_hybrid_user_has_on_prem_and_cloud_tgt(fleet: Fleet) -> None:
    """A cloud-trust Hello sign-in with a DC: the on-premises TGT (#0, from the DC) and the cloud TGT (#1)."""
    lines = out_lines(fleet.run(fleet.hybrid, fleet.as_user(fleet.hybrid, fleet.alice), "klist"))
    assert "Cached Tickets: (2)" in lines
    assert "\tServer: krbtgt/CORP.CONTOSO.COM @ CORP.CONTOSO.COM" in lines
    assert "\tKdc Called: DC01.corp.contoso.com" in lines
    assert "\tServer: krbtgt/KERBEROS.MICROSOFTONLINE.COM @ KERBEROS.MICROSOFTONLINE.COM" in lines


def test_network_logon_fails_as_over_winrm(fleet: Fleet) -> None:
    """The WinRM admin's network logon has no ticket cache: 1312 / 0xc000005f, exactly as published."""
    result = fleet.run(fleet.hybrid, fleet.admin(fleet.hybrid), "klist")
    lines = out_lines(result)
    sample = sample_lines("klist_failure_variants.txt")
    assert (
        lines[2:5]
        == sample[sample.index("Error calling API LsaCallAuthenticationPackage (ShowTickets substatus): 1312") :][:3]
    )
    assert lines[1].startswith("Current LogonId is 0:0x")
    assert result.exit_code == -1073741729


def test_purge_clears_the_kerberos_cache_but_not_cloudap(fleet: Fleet) -> None:
    """klist purge prints the published text and empties the session's tickets; the partial TGT stays."""
    alice = fleet.as_user(fleet.hybrid, fleet.alice)
    lines = out_lines(fleet.run(fleet.hybrid, alice, "klist", "purge"))
    assert lines[2:] == ["\tDeleting all tickets:", "\tTicket(s) purged!", ""]
    session = fleet.hybrid.session_of(fleet.alice)
    assert session is not None and not session.on_prem_tgt and not session.cloud_tgt and session.partial_tgt
    assert "Cached Tickets: (0)" in out_lines(fleet.run(fleet.hybrid, alice, "klist"))


def test_get_krbtgt_needs_a_dc(fleet: Fleet) -> None:
    """klist get krbtgt re-acquires the TGT from a DC; without one it fails with 0x51f / 0xc000005e."""
    alice = fleet.as_user(fleet.hybrid, fleet.alice)
    fleet.run(fleet.hybrid, alice, "klist", "purge")
    fleet.lab.set_dc_reachable(fleet.hybrid, False)
    failed = fleet.run(fleet.hybrid, alice, "klist", "get", "krbtgt")
    sample = sample_lines("klist_failure_variants.txt")
    at = sample.index("Error calling API LsaCallAuthenticationPackage (GetTicket substatus): 0x51f")
    assert out_lines(failed)[2:] == sample[at : at + 2]
    assert failed.exit_code == -1073741730
    fleet.lab.set_dc_reachable(fleet.hybrid, True)
    got = out_lines(fleet.run(fleet.hybrid, alice, "klist", "get", "krbtgt"))
    assert got[2] == "A ticket to krbtgt has been retrieved successfully."
    session = fleet.hybrid.session_of(fleet.alice)
    assert session is not None and session.on_prem_tgt


def test_tgt_shows_the_cached_tgt_or_no_credentials(fleet: Fleet) -> None:
    """klist tgt prints the cached TGT; with none, SEC_E_NO_CREDENTIALS as the Protected Users sample shows."""
    ok = out_lines(fleet.run(fleet.hybrid, fleet.as_user(fleet.hybrid, fleet.alice), "klist", "tgt"))
    assert "Cached TGT:" in ok and "ClientName         : alice" in ok
    dave = fleet.as_user(fleet.entra, fleet.dave)
    none = fleet.run(fleet.entra, dave, "klist", "tgt")
    assert out_lines(none)[-1] == sample_lines("klist_failure_variants.txt")[0]
    assert none.exit_code == -2146893042


def test_cloud_debug_reflects_the_cloudap_cache(fleet: Fleet) -> None:
    """cloud_debug uses the sample's field names; the partial TGT shows as Cloud Primary TGT available."""
    lines = out_lines(fleet.run(fleet.hybrid, fleet.as_user(fleet.hybrid, fleet.alice), "klist", "cloud_debug"))
    sample = [line.strip() for line in sample_lines("klist_cloud_debug_partial_tgt_present_msft_supportwiki.txt")]
    keys = [line.split(":")[0] for line in lines[3:] if line]
    assert all(line.split(":")[0] in keys for line in sample if line)
    assert "Cloud Primary (Hybrid logon) TGT available: 1" in lines and "AS_REP callback used: 1" in lines
    assert lines[2] == "Cloud Kerberos Debug info:"
    erin = out_lines(fleet.run(fleet.domain_only, fleet.as_user(fleet.domain_only, fleet.erin), "klist", "cloud_debug"))
    assert "Cloud Primary (Hybrid logon) TGT available: 0" in erin


def test_system_sees_the_computer_tgt(fleet: Fleet) -> None:
    """SYSTEM (logon id 0x3e7) holds the computer account's TGT when a DC answers."""
    lines = out_lines(fleet.run(fleet.domain_only, fleet.lab.system_principal(), "klist"))
    assert lines[1] == "Current LogonId is 0:0x3e7"
    assert "#0>\tClient: PC-DOM$ @ CORP.CONTOSO.COM" in lines
    admin_view = out_lines(fleet.run(fleet.domain_only, fleet.admin(fleet.domain_only), "klist", "-li", "0x3e7"))
    assert "#0>\tClient: PC-DOM$ @ CORP.CONTOSO.COM" in admin_view
