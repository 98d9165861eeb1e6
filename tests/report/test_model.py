"""The report model on histories written the way the machine and engine write them: deleted containers found
from the journal's purpose and outcome, passkey warnings, approvals, rollback in doubt, and the diagram's playbook."""

from __future__ import annotations

import pytest

from migrator.playbook import builtin_path
from migrator.report import collect_report
from migrator.report.states import attention, is_rollback_state, ordered_states
from migrator.store import AuditEntry, Store, content_hash
from tests.report.conftest import Clock, Fleet


def _machine_style_device(store: Store, name: str, *, build_warning: bool, user: str = r"CONTOSO\zoe") -> None:
    """A device whose user's container the machine deleted, written as the engine's funnel writes it: the user
    transition carries the audit entry (action ``user <name>: <trigger>``, the warning in ``after``), the journal
    step is named after the step module with the machine's purpose in the intent, and the outcome is a
    DeleteOutcome."""
    if not store.list_users(name):
        store.transition(name, "pending", "users", "preflight_done", path="cert")
    store.add_user(name, user, sid="S-1-5-21-1-" + user[-3:], container_trust="cert", key_id="k-" + user[-3:])
    warning = {"warning": PASSKEY_WARNING} if build_warning else {}
    store.user_transition(
        name,
        user,
        "pending",
        "deleting",
        "delete",
        audit=AuditEntry(
            "migrator",
            f"user {user}: delete",
            before={"state": "pending", "key_id": "k-" + user[-3:]},
            after={"state": "deleting", "point_of_no_return": "delete_container", **warning},
        ),
    )
    entry = store.intent(
        name,
        "delete_hello_container",
        1,
        {"purpose": "delete", "step": "delete_hello_container", "user": user, "parameters": {"User": "x"}},
        key=f"{name}/{user}/delete/1",
        user=user,
    )
    store.outcome(entry.id, {"status": "completed", "user": user, "deleted": True, "refused": False}, ok=True)


PASSKEY_WARNING = "Windows 11: the Hello container may also hold device-bound passkeys, which are deleted with it"


@pytest.fixture
def machine_fleet(empty_store: Fleet) -> Fleet:
    store = empty_store.store
    store.create_wave("w", playbook_name="cert-trust-to-cloud-kerberos", playbook_hash=content_hash("x"))
    store.enroll("w", ["PC-W11", "PC-W10"])
    _machine_style_device(store, "PC-W11", build_warning=True)
    _machine_style_device(store, "PC-W10", build_warning=False)
    return empty_store


def test_a_machine_delete_is_found_from_the_outcome_and_purpose(machine_fleet: Fleet) -> None:
    """The machine's delete (step delete_hello_container, purpose delete, DeleteOutcome deleted true) counts."""
    report = collect_report(machine_fleet.store)
    found = {(c.device, c.user) for c in report.deleted_containers}
    assert found == {("PC-W11", r"CONTOSO\zoe"), ("PC-W10", r"CONTOSO\zoe")}
    assert all(c.key_id == "k-zoe" and c.evidence.startswith("journal entry") for c in report.deleted_containers)


def test_the_machines_passkey_warning_applies_to_that_devices_deleted_containers(machine_fleet: Fleet) -> None:
    """A device-level audit warning mentioning passkeys marks the deleted containers there, with its words;
    a device without any record says 'not recorded' (None)."""
    by_device = {c.device: c for c in collect_report(machine_fleet.store).deleted_containers}
    assert by_device["PC-W11"].passkeys is True
    assert by_device["PC-W11"].passkeys_note == PASSKEY_WARNING
    assert by_device["PC-W11"].passkeys_evidence.startswith("audit entry")
    assert by_device["PC-W10"].passkeys is None and by_device["PC-W10"].passkeys_evidence == ""


def test_the_warning_of_one_user_on_a_shared_device_stays_with_that_user(empty_store: Fleet) -> None:
    """On a shared device, the engine's audit action names the user: only that user's container is warned about."""
    store = empty_store.store
    store.create_wave("w", playbook_name="p", playbook_hash=content_hash("p"))
    store.enroll("w", ["SHARED"])
    _machine_style_device(store, "SHARED", build_warning=True, user=r"CONTOSO\zoe")
    _machine_style_device(store, "SHARED", build_warning=False, user=r"CONTOSO\amy")
    by_user = {c.user: c for c in collect_report(store).deleted_containers}
    assert by_user[r"CONTOSO\zoe"].passkeys is True and by_user[r"CONTOSO\zoe"].passkeys_note == PASSKEY_WARNING
    assert by_user[r"CONTOSO\amy"].passkeys is None


def test_an_audit_entry_naming_another_user_does_not_apply(empty_store: Fleet) -> None:
    """A passkey record naming one user of a shared device does not mark another user's container."""
    store = empty_store.store
    store.create_wave("w", playbook_name="p", playbook_hash=content_hash("p"))
    store.enroll("w", ["SHARED"])
    _machine_style_device(store, "SHARED", build_warning=False)
    store.add_user("SHARED", r"CONTOSO\yan", sid="S-1-5-21-1-2002")
    store.append_audit(
        AuditEntry(
            actor="m", action="user.delete", device="SHARED", after={"user": r"CONTOSO\yan", "has_passkeys": True}
        )
    )
    (zoe,) = collect_report(store).deleted_containers
    assert zoe.user == r"CONTOSO\zoe" and zoe.passkeys is None


def test_a_refused_delete_is_not_a_deletion(empty_store: Fleet) -> None:
    """A delete whose outcome says deleted false (the guard refused) does not list the user."""
    store = empty_store.store
    store.create_wave("w", playbook_name="p", playbook_hash=content_hash("p"))
    store.enroll("w", ["PC"])
    store.add_user("PC", "u1")
    entry = store.intent("PC", "delete_hello_container", 1, {"purpose": "delete"}, key="k1", user="u1")
    store.outcome(entry.id, {"deleted": False, "refused": True}, ok=True)
    assert collect_report(store).deleted_containers == ()


def test_approvals_of_the_engine_are_listed_per_wave(fleet: Fleet) -> None:
    """wave.approve audit entries name their wave in 'after': each wave lists only its own."""
    fleet.store.append_audit(
        AuditEntry(
            actor="cm", action="wave.approve", change_ticket="CHG0043", after={"wave": "wave-2", "approved_batches": 1}
        )
    )
    report = collect_report(fleet.store)
    approvals = {w.status.wave.name: [a.actor for a in w.approvals] for w in report.waves}
    assert approvals == {"pilot": ["change.manager@contoso"], "wave-2": ["cm"]}


def test_a_rollback_in_doubt_is_a_problem(empty_store: Fleet) -> None:
    """A restore intent without an outcome, on a device still rolling back, is reported as unfinished."""
    store = empty_store.store
    store.create_wave("w", playbook_name="p", playbook_hash=content_hash("p"))
    store.enroll("w", ["PC"])
    store.transition("PC", "pending", "rolling_back", "begin_rollback")
    store.intent("PC", "restore_policy", 1, {"purpose": "restore"}, key="r1")
    (view,) = collect_report(store).rollbacks
    assert not view.complete
    assert any("in doubt" in p for p in view.problems)
    assert any("rollback not finished" in p for p in view.problems)


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
    """Error, failed, stalled, unreachable and waiting need attention (from the table's categories); rollback
    states are recognised; pending sorts first and the successes last; an unknown name needs no attention."""
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
    assert is_rollback_state("rolling_back") and is_rollback_state("rolled_back") and not is_rollback_state("users")
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
