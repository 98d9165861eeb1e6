"""Our output, read back by migrator.parse, gives the lab's facts (the orchestrator sees what the lab holds)."""

from __future__ import annotations

from migrator import parse
from tests.lab.native.conftest import Fleet


def test_dsregcmd_round_trip_as_user(fleet: Fleet) -> None:
    """Join state, container, PRT and Kerberos flags of the signed-in user survive the text."""
    status = parse.parse_dsregcmd(
        fleet.run(fleet.hybrid, fleet.as_user(fleet.hybrid, fleet.alice), "dsregcmd", "/status").stdout
    )
    assert fleet.alice.container is not None
    assert (status.azure_ad_joined, status.enterprise_joined, status.domain_joined) == (True, False, True)
    assert status.domain_name == "CORP" and status.tenant_id == fleet.lab.fleet.tenant.tenant_id
    assert status.ngc_set is True and (status.ngc_key_id or "").upper() == fleet.alice.container.key_id.upper()
    assert status.azure_ad_prt is True and status.on_prem_tgt is True and status.cloud_tgt is True
    assert status.prerequisites.get("CertEnrollment") == "none" or status.prerequisites.get("certenrollment") == "none"
    assert not status.unknown_fields


def test_dsregcmd_round_trip_as_admin_and_domain_only(fleet: Fleet) -> None:
    """The admin sees no container or PRT; the domain-only device's failed-join diagnostics come through."""
    admin = parse.parse_dsregcmd(fleet.run(fleet.hybrid, fleet.admin(fleet.hybrid), "dsregcmd", "/status").stdout)
    assert admin.ngc_set is False and admin.azure_ad_prt is False and admin.on_prem_tgt is False
    dom = parse.parse_dsregcmd(fleet.run(fleet.domain_only, fleet.lab.system_principal(), "dsregcmd", "/status").stdout)
    assert (dom.azure_ad_joined, dom.domain_joined) == (False, True)
    assert dom.user_context == "SYSTEM" and dom.error_phase == "discover" and dom.client_error_code == "0x801c001d"


def test_klist_round_trip(fleet: Fleet) -> None:
    """Tickets, the network-logon failure and cloud_debug parse back to the session's flags."""
    alice = fleet.as_user(fleet.hybrid, fleet.alice)
    result = parse.parse_klist(fleet.run(fleet.hybrid, alice, "klist").stdout)
    session = fleet.hybrid.session_of(fleet.alice)
    assert session is not None and result.logon_id is not None and session.logon_id in result.logon_id
    assert result.declared_ticket_count == 2 and len(result.tickets) == 2
    servers = {t.server for t in result.tickets}
    assert servers == {"krbtgt/CORP.CONTOSO.COM", "krbtgt/KERBEROS.MICROSOFTONLINE.COM"}
    assert result.tickets[1].kdc_called == "TicketSuppliedAtLogon" and result.failure is None
    failed = parse.parse_klist(fleet.run(fleet.hybrid, fleet.admin(fleet.hybrid), "klist").stdout)
    assert failed.failure is not None and failed.failure.code.value in (0xC000005F, -1073741729)
    debug = parse.parse_klist_cloud_debug(fleet.run(fleet.hybrid, alice, "klist", "cloud_debug").stdout)
    assert debug.cloud_primary_tgt_available is True and debug.as_rep_credential_type == 2
    # The "Cloud Kerberos Debug info:" heading is real klist output (wporter.org capture), not a field.
    assert set(debug.unknown_fields) <= {"Cloud Kerberos Debug info"}


def test_nltest_round_trip(fleet: Fleet) -> None:
    """The DC, its domain and flags; the 1355 failure."""
    admin = fleet.admin(fleet.hybrid)
    ok = parse.parse_nltest_dsgetdc(
        fleet.run(fleet.hybrid, admin, "nltest", "/dsgetdc:corp.contoso.com", "/keylist").stdout
    )
    assert ok.succeeded and ok.dc == "DC01.corp.contoso.com" and ok.dom_name == "corp.contoso.com"
    assert "KEYLIST" in ok.flags and ok.completed_successfully
    fleet.lab.set_dc_reachable(fleet.hybrid, False)
    bad = parse.parse_nltest_dsgetdc(fleet.run(fleet.hybrid, admin, "nltest", "/dsgetdc:corp.contoso.com").stdout)
    assert not bad.succeeded and bad.failure is not None and bad.failure.status.value == 1355


def test_quser_round_trip(fleet: Fleet) -> None:
    """Sessions, states, the '>' marker (or its absence over WinRM) and idle times parse back."""
    fleet.lab.sign_in(fleet.hybrid, fleet.bob, "rdp")
    bob_session = fleet.hybrid.session_of(fleet.bob)
    assert bob_session is not None
    bob_session.state = "Disc"
    fleet.clock.advance(26 * 3600)
    as_alice = parse.parse_quser(fleet.run(fleet.hybrid, fleet.as_user(fleet.hybrid, fleet.alice), "quser").stdout)
    names = {s.username: s for s in as_alice.sessions}
    assert set(names) == {"alice", "bob"}
    assert names["alice"].current and names["alice"].is_active and names["alice"].session_name == "console"
    assert names["bob"].is_disconnected and names["bob"].session_name is None and names["bob"].idle_minutes == 26 * 60
    as_admin = parse.parse_quser(fleet.run(fleet.hybrid, fleet.admin(fleet.hybrid), "quser").stdout)
    assert as_admin.current_session is None and len(as_admin.sessions) == 2
    fleet.lab.sign_out(fleet.domain_only, fleet.erin)
    nobody = fleet.run(fleet.domain_only, fleet.admin(fleet.domain_only), "quser")
    assert parse.parse_quser(nobody.stderr).no_users


def test_certutil_and_gpupdate_round_trip(fleet: Fleet) -> None:
    """certutil's success/NTE_PERM and gpupdate's success/failure parse back."""
    denied = parse.parse_certutil_delete(
        fleet.run(fleet.hybrid, fleet.admin(fleet.hybrid), "certutil", "-deletehellocontainer").stdout
    )
    assert denied.succeeded is False and denied.error_name == "NTE_PERM"
    done = parse.parse_certutil_delete(
        fleet.run(fleet.hybrid, fleet.as_user(fleet.hybrid, fleet.alice), "certutil", "-deletehellocontainer").stdout
    )
    assert done.succeeded is True and done.sign_out_required
    ok = parse.parse_gpupdate(fleet.run(fleet.domain_only, fleet.admin(fleet.domain_only), "gpupdate", "/force").stdout)
    assert ok.computer_policy_completed is True and ok.user_policy_completed is True
    fleet.lab.set_dc_reachable(fleet.domain_only, False)
    bad = parse.parse_gpupdate(
        fleet.run(fleet.domain_only, fleet.admin(fleet.domain_only), "gpupdate", "/force").stdout
    )
    assert bad.computer_policy_completed is False and bad.errors
