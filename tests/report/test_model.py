"""The report model reads the typed outcomes the machine recorded: deleted containers and their warnings from the
user contexts, rollback from the device context and the journal's restore entries, approvals as the wave engine
records them; nothing is inferred from step names, state names or JSON keys."""

from __future__ import annotations

from migrator.engine.wavestore import StoreWaves
from migrator.facts import DeleteOutcome
from migrator.facts import PolicyValue as FactPolicyValue
from migrator.machine.commands import Purpose, RunStep
from migrator.machine.table import DEVICE_STATES
from migrator.playbook import builtin_path
from migrator.report import collect_report
from migrator.report.states import ROLLED_BACK, ROLLING_BACK, UNANSWERED, attention, ordered_states
from migrator.steps import DeleteHelloContainer, RestorePolicy
from migrator.store import AuditEntry, Store, content_hash
from tests.report.conftest import PASSKEY_WARNING, PFW, Clock, Fleet, History


def _wave(store: Store, *devices: str) -> None:
    store.create_wave("w", playbook_name="cert-trust-to-cloud-kerberos", playbook_hash=content_hash("w"))
    store.enroll("w", list(devices))


def _device_with_users(fleet: Fleet, device: str, *users: str) -> History:
    h = History(fleet.store, device, "w", fleet.clock)
    for number, name in enumerate(users, 1):
        h.user(name, f"S-1-5-21-9-{number}", "cert", f"{{KEY-{number}}}")
    h.to_users("cert")
    for name in users:
        h.move_user(name, "start", "identifying")
    return h


def test_a_deleted_container_is_read_from_the_user_context_with_its_warning(empty_store: Fleet) -> None:
    """The container the machine deleted (deleted_by_us) is listed with the device, wave, user, SID, the key id
    and trust of the context, when, and the passkeys warning recorded with the delete."""
    _wave(empty_store.store, "PC-W11")
    h = _device_with_users(empty_store, "PC-W11", r"CONTOSO\zoe")
    h.delete(r"CONTOSO\zoe", warning=PASSKEY_WARNING)
    (gone,) = collect_report(empty_store.store).deleted_containers
    context = h.user_context(r"CONTOSO\zoe")
    assert (gone.device, gone.wave, gone.user, gone.sid) == ("PC-W11", "w", r"CONTOSO\zoe", "S-1-5-21-9-1")
    assert (gone.key_id, gone.container_trust) == ("{KEY-1}", "cert")
    assert gone.deleted_at == context.deleted_at is not None
    assert gone.delete_warning == PASSKEY_WARNING


def test_a_delete_without_a_recorded_warning_says_not_recorded(empty_store: Fleet) -> None:
    """No warning recorded with the delete (a Windows 10 build): the warning is None, shown as 'not recorded'."""
    _wave(empty_store.store, "PC-W10")
    _device_with_users(empty_store, "PC-W10", r"CONTOSO\zoe").delete(r"CONTOSO\zoe", warning=None)
    (gone,) = collect_report(empty_store.store).deleted_containers
    assert gone.delete_warning is None and gone.as_json()["delete_warning"] is None


def test_on_a_shared_device_each_users_warning_is_their_own(empty_store: Fleet) -> None:
    """Two users of one device: each deleted container carries the warning of its own user context."""
    _wave(empty_store.store, "SHARED")
    h = _device_with_users(empty_store, "SHARED", r"CONTOSO\amy", r"CONTOSO\zoe")
    h.delete(r"CONTOSO\zoe", warning=PASSKEY_WARNING)
    h.delete(r"CONTOSO\amy", warning=None)
    by_user = {c.user: c for c in collect_report(empty_store.store).deleted_containers}
    assert by_user[r"CONTOSO\zoe"].delete_warning == PASSKEY_WARNING
    assert by_user[r"CONTOSO\amy"].delete_warning is None


def test_containers_found_gone_or_replaced_are_not_listed_as_deleted(empty_store: Fleet) -> None:
    """A container found already gone, or replaced by the user (the delete refused), is marked deleted in the
    context but was not deleted by migrator: neither is listed."""
    _wave(empty_store.store, "PC")
    h = _device_with_users(empty_store, "PC", r"CONTOSO\amy", r"CONTOSO\zoe")
    h.move_user(r"CONTOSO\amy", "container_gone", "waiting_for_reprovision", deleted=True)
    h.move_user(r"CONTOSO\zoe", "container_replaced", "verifying", deleted=True)
    assert collect_report(empty_store.store).deleted_containers == ()


def test_a_journal_entry_alone_does_not_make_a_deletion(empty_store: Fleet) -> None:
    """A delete outcome saying deleted true, a step named like a delete, a user state named 'deleting': none of
    them counts without the context's deleted_by_us."""
    _wave(empty_store.store, "PC")
    h = _device_with_users(empty_store, "PC", r"CONTOSO\zoe")
    h.move_user(r"CONTOSO\zoe", "identified", "deleting")
    step = DeleteHelloContainer("S-1-5-21-9-1", "{KEY-1}", "cert")
    h.journal(
        RunStep(step, Purpose.DELETE, r"CONTOSO\zoe"),
        DeleteOutcome(status="completed", user="S-1-5-21-9-1", deleted=True, message="passkeys: 3"),
    )
    assert collect_report(empty_store.store).deleted_containers == ()


def _rolling_back(fleet: Fleet) -> History:
    _wave(fleet.store, "PC")
    h = _device_with_users(fleet, "PC", r"CONTOSO\zoe")
    h.move("users_waiting", "waiting_for_user")
    h.move("begin_rollback", "rolling_back")
    return h


SNAPSHOT = (
    FactPolicyValue(path=PFW, name="UseCertificateForOnPremAuth", existed=True, type="DWord", data=1),
    FactPolicyValue(path=PFW, name="UseCloudTrustForOnPremAuth", existed=False),
)


def test_a_rollback_reads_the_restored_values_from_the_device_context(empty_store: Fleet) -> None:
    """What the restore put back is the context's restored list, matched to the snapshot (hive spellings folded);
    a value the context does not name is 'not reported'."""
    h = _rolling_back(empty_store)
    h.journal(RunStep(RestorePolicy(SNAPSHOT), Purpose.RESTORE), ())
    h.move("restored", "rolled_back", restored=(f"{PFW.replace('HKLM', 'HKLM:')}\\UseCertificateForOnPremAuth: set",))
    (view,) = collect_report(empty_store.store).rollbacks
    assert view.complete and view.problems == ()
    assert [(v.name, v.existed, v.action) for v in view.restored] == [
        ("UseCertificateForOnPremAuth", True, "set"),
        ("UseCloudTrustForOnPremAuth", False, None),
    ]


def test_a_rollback_in_doubt_or_failed_is_a_problem(empty_store: Fleet) -> None:
    """A failed restore attempt (its error as the driver records it) and one journalled without an outcome, on a
    device still rolling back, are reported as problems, with the rollback unfinished."""
    h = _rolling_back(empty_store)
    command = RunStep(RestorePolicy(SNAPSHOT), Purpose.RESTORE)
    h.journal(command, error={"class": "ScriptFailed", "message": "access denied", "transient": False})
    h.journal(command)
    (view,) = collect_report(empty_store.store).rollbacks
    assert not view.complete
    assert "restore attempt 1 failed: ScriptFailed: access denied" in view.problems
    assert "restore attempt 2 is in doubt (intent journaled, no outcome)" in view.problems
    assert "rollback not finished: the device is in state rolling_back" in view.problems


def test_a_device_never_rolled_back_has_no_rollback_view(fleet: Fleet) -> None:
    """Only devices that entered rolling_back are listed (the fixture's PC-RB-06), whatever their journal holds."""
    assert [v.device for v in collect_report(fleet.store).rollbacks] == ["PC-RB-06"]


def test_approvals_are_the_wave_engines_entries_for_that_wave(fleet: Fleet) -> None:
    """wave.approve entries naming the wave in 'after' (as StoreWaves records them) are its approvals; an entry
    that only mentions approval, or only carries the wave's change ticket, is not."""
    StoreWaves(fleet.store, "cm").approve("wave-2")
    fleet.store.append_audit(
        AuditEntry(actor="x", action="wave.approval_requested", change_ticket="CHG0042", after={"wave": "pilot"})
    )
    fleet.store.append_audit(AuditEntry(actor="y", action="wave.approve", change_ticket="CHG0042", after={}))
    report = collect_report(fleet.store)
    approvals = {w.status.wave.name: [a.actor for a in w.approvals] for w in report.waves}
    assert approvals == {"pilot": ["change.manager@contoso"], "wave-2": ["cm"]}


def test_the_waves_shipped_playbook_is_used_when_its_hash_matches(empty_store: Fleet) -> None:
    """A wave that ran a shipped playbook unchanged gets the machine's diagram for that playbook's rows; a
    changed one gets every row."""
    store = empty_store.store
    shipped = builtin_path("key-trust-to-cloud-kerberos").read_bytes()
    store.create_wave("exact", playbook_name="key-trust-to-cloud-kerberos", playbook_hash=content_hash(shipped))
    store.create_wave("edited", playbook_name="key-trust-to-cloud-kerberos", playbook_hash=content_hash(b"other"))
    assert collect_report(store, "exact").diagram.playbook == "key-trust-to-cloud-kerberos"
    assert collect_report(store, "edited").diagram.playbook is None


def test_state_names_are_read_for_attention_and_order() -> None:
    """Error, failed, stalled, unreachable and waiting need attention (from the table's categories); pending sorts
    first and the successes last; an unknown name needs no attention."""
    states = ("error", "failed", "stalled", "unreachable", "waiting_for_dc", "waiting_for_device", "users", "newer")
    assert [attention(s) for s in states] == [
        "error",
        "failed",
        "stalled",
        "unreachable",
        "waiting",
        "waiting",
        None,
        None,
    ]
    assert ordered_states(["migrated", "users", "pending", "failed", "waiting_for_user", "preflight"]) == [
        "pending",
        "preflight",
        "users",
        "waiting_for_user",
        "failed",
        "migrated",
    ]


def test_clock_fixture_moves_forward(clock: Clock) -> None:
    """The test clock gives strictly increasing times (timelines rely on it)."""
    assert clock() < clock()


def test_the_states_reports_name_are_the_tables() -> None:
    """The state names the report reads by name (rollback, a device that does not answer) are states of the
    machine's table."""
    assert {ROLLING_BACK, ROLLED_BACK, *UNANSWERED} <= set(DEVICE_STATES)
