"""The store's API on every configured back end: waves, devices, the funnel, users, steps, journal, facts,
policy snapshots, leases and exports."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from migrator.store import (
    AuditEntry,
    ConcurrentUpdate,
    DeviceInOtherWave,
    DuplicateWave,
    JournalConflict,
    LeaseNotHeld,
    PolicyValue,
    SecretInStore,
    Store,
    UnknownDevice,
    UnknownJournalEntry,
    UnknownUser,
    UnknownWave,
    UnstorableValue,
    content_hash,
)
from tests.store.conftest import FakeClock

PFW = r"HKLM\SOFTWARE\Policies\Microsoft\PassportForWork"


# ----------------------------------------------------------------------------------------------- waves


def test_create_and_get_wave_round_trips_every_field(store: Store, clock: FakeClock) -> None:
    """A wave reads back with its ticket, playbook name and hash, settings and UTC times."""
    created = store.create_wave(
        "pilot",
        playbook_name="key-to-cloud",
        playbook_hash=content_hash(b"steps: []"),
        change_ticket="CHG0042",
        settings={"batch": 25, "failure_budget": 0.05, "canary": ["PC-001"]},
    )
    got = store.get_wave("pilot")
    assert got == created
    assert got.settings == {"batch": 25, "failure_budget": 0.05, "canary": ["PC-001"]}
    assert got.state == "planned"
    assert got.created_at.tzinfo is not None and got.created_at.utcoffset() == timedelta(0)
    assert [w.name for w in store.list_waves()] == ["pilot"]


def test_duplicate_wave_and_bad_hash_are_refused(store: Store, wave: str) -> None:
    """A second wave of the same name, or a playbook hash that is not SHA-256 hex, is refused."""
    with pytest.raises(DuplicateWave, match="w1"):
        store.create_wave("w1", playbook_name="p", playbook_hash=content_hash("x"))
    with pytest.raises(UnstorableValue, match="SHA-256"):
        store.create_wave("w2", playbook_name="p", playbook_hash="abc")


def test_set_wave_state_checks_the_expected_state(store: Store, wave: str) -> None:
    """A wave state change with a stale expected state changes nothing."""
    assert store.set_wave_state(wave, "running", expected_from="planned").state == "running"
    with pytest.raises(ConcurrentUpdate, match="running"):
        store.set_wave_state(wave, "paused", expected_from="planned")
    assert store.get_wave(wave).state == "running"
    with pytest.raises(UnknownWave, match="nope"):
        store.get_wave("nope")


# --------------------------------------------------------------------------------------------- devices


def test_enroll_is_idempotent_and_case_insensitive(store: Store, wave: str) -> None:
    """Enrolling again (any case) keeps the devices as they are; Windows names are case-insensitive."""
    store.transition("PC-001", "pending", "preflight", "start")
    rows = store.enroll(wave, ["pc-001", "PC-004"])
    assert [(r.name, r.state, r.version) for r in rows] == [("PC-001", "preflight", 1), ("PC-004", "pending", 0)]
    assert store.get_device("pc-001").name == "PC-001"


def test_enroll_refuses_a_device_of_another_wave_and_enrolls_nothing(store: Store, wave: str) -> None:
    """A device already in another wave stops the whole enrolment."""
    store.create_wave("w2", playbook_name="p", playbook_hash=content_hash("x"))
    with pytest.raises(DeviceInOtherWave, match=r"PC-002.*w1"):
        store.enroll("w2", ["PC-009", "PC-002"])
    with pytest.raises(UnknownDevice):
        store.get_device("PC-009")


def test_list_devices_and_counts_filter_by_wave_and_state(store: Store, wave: str) -> None:
    """Devices list in name order, filtered by wave and states; counts group by state."""
    store.create_wave("w2", playbook_name="p", playbook_hash=content_hash("x"))
    store.enroll("w2", ["PC-100"])
    store.transition("PC-002", "pending", "preflight", "start")
    assert [d.name for d in store.list_devices()] == ["PC-001", "PC-002", "PC-003", "PC-100"]
    assert [d.name for d in store.list_devices(wave="w1", states=["pending"])] == ["PC-001", "PC-003"]
    assert store.counts("w1") == {"pending": 2, "preflight": 1}
    assert store.counts() == {"pending": 3, "preflight": 1}


# ------------------------------------------------------------------------------------------ the funnel


def test_transition_updates_state_version_and_records_the_move(store: Store, wave: str) -> None:
    """A transition bumps the version, sets path and last_error, and leaves a transition row."""
    moved = store.transition("PC-001", "pending", "preflight", "start", attempt=1, path="key")
    assert (moved.state, moved.version, moved.path) == ("preflight", 1, "key")
    failed = store.transition("PC-001", "preflight", "failed", "error", last_error="WinRM refused")
    assert (failed.last_error, failed.path, failed.version) == ("WinRM refused", "key", 2)
    again = store.transition("PC-001", "failed", "pending", "retry")
    assert again.last_error is None
    assert store.get_device("PC-001") == again
    moves = store.export_wave_transitions(wave)
    assert [(t.from_state, t.to_state, t.event, t.attempt) for t in moves] == [
        ("pending", "preflight", "start", 1),
        ("preflight", "failed", "error", 0),
        ("failed", "pending", "retry", 0),
    ]
    assert all(t.wave == "w1" and t.subject == "device" for t in moves)


def test_transition_from_a_stale_state_or_version_changes_nothing(store: Store, wave: str) -> None:
    """ConcurrentUpdate names what the store holds, and no row is written."""
    store.transition("PC-001", "pending", "preflight", "start")
    with pytest.raises(ConcurrentUpdate, match="'preflight' at version 1") as caught:
        store.transition("PC-001", "pending", "preflight", "start")
    assert (caught.value.current_state, caught.value.current_version) == ("preflight", 1)
    with pytest.raises(ConcurrentUpdate):
        store.transition("PC-001", "preflight", "ready", "facts", expected_version=0)
    assert store.get_device("PC-001").version == 1
    assert len(store.export_wave_transitions(wave)) == 1


def test_transition_writes_its_audit_entry_in_the_same_transaction(store: Store, wave: str) -> None:
    """The audit entry takes the device and the wave's change ticket; a refused transition leaves none."""
    store.transition("PC-001", "pending", "preflight", "start", audit=AuditEntry(actor="alice", action="start"))
    with pytest.raises(ConcurrentUpdate):
        store.transition("PC-001", "pending", "preflight", "start", audit=AuditEntry(actor="bob", action="start"))
    entries = store.audit_entries()
    assert [(e.actor, e.device, e.change_ticket) for e in entries] == [("alice", "PC-001", "CHG0001")]


def test_transition_rejects_unknown_device_bad_path_and_secret_audit(store: Store, wave: str) -> None:
    """Inputs the store cannot hold are refused before anything changes."""
    with pytest.raises(UnknownDevice, match="PC-404"):
        store.transition("PC-404", "pending", "preflight", "start")
    with pytest.raises(UnstorableValue, match="path 'hybrid'"):
        store.transition("PC-001", "pending", "preflight", "start", path="hybrid")
    with pytest.raises(SecretInStore, match="password"):
        store.transition(
            "PC-001", "pending", "preflight", "start", audit=AuditEntry("a", "b", after={"password": "hunter2"})
        )
    assert store.get_device("PC-001").version == 0


def test_transition_with_owner_requires_an_unexpired_lease(store: Store, wave: str, clock: FakeClock) -> None:
    """Fencing: a worker whose lease expired cannot move the device any more."""
    assert store.acquire("PC-001", "worker-a", 60)
    store.transition("PC-001", "pending", "preflight", "start", owner="worker-a")
    clock.advance(61)
    with pytest.raises(LeaseNotHeld, match="worker-a"):
        store.transition("PC-001", "preflight", "ready", "facts", owner="worker-a")
    with pytest.raises(LeaseNotHeld):
        store.transition("PC-002", "pending", "preflight", "start", owner="worker-a")


# ----------------------------------------------------------------------------------------------- users


def test_users_are_recorded_once_and_move_through_their_own_funnel(store: Store, wave: str) -> None:
    """add_user keeps the first preflight record; user_transition versions the user and logs the move."""
    first = store.add_user("PC-001", "CONTOSO\\alice", sid="S-1-5-21-1-2-3-1001", container_trust="key", key_id="k1")
    again = store.add_user("PC-001", "contoso\\ALICE", sid="S-1-5-21-9", container_trust="cloud", key_id="k2")
    assert again == first
    moved = store.user_transition("PC-001", "contoso\\alice", "pending", "container_deleted", "delete", attempt=2)
    assert (moved.state, moved.version, moved.key_id) == ("container_deleted", 1, "k1")
    with pytest.raises(ConcurrentUpdate):
        store.user_transition("PC-001", "CONTOSO\\alice", "pending", "container_deleted", "delete")
    assert store.get_user("PC-001", "CONTOSO\\alice") == moved
    assert store.get_device("PC-001").version == 0  # the device's own state did not move
    moves = store.export_device_timeline("PC-001").transitions
    assert [(t.subject, t.user, t.to_state, t.attempt) for t in moves] == [
        ("user", "CONTOSO\\alice", "container_deleted", 2)
    ]
    with pytest.raises(UnknownUser, match="bob"):
        store.user_transition("PC-001", "bob", "pending", "x", "y")
    assert [u.name for u in store.list_users("PC-001")] == ["CONTOSO\\alice"]


# ----------------------------------------------------------------------------------------------- steps


def test_step_attempts_start_once_and_finish_once(store: Store, wave: str) -> None:
    """The same attempt started twice is one row; finishing twice the same way is fine, differently not."""
    started = store.start_step("PC-001", "set_cloud_trust_policy", 1)
    assert store.start_step("PC-001", "set_cloud_trust_policy", 1) == started
    per_user = store.start_step("PC-001", "set_cloud_trust_policy", 1, user="alice")
    assert per_user.id != started.id
    done = store.finish_step(started.id, "failed", error="ScriptFailed: access denied")
    assert (done.status, done.error) == ("failed", "ScriptFailed: access denied")
    assert store.finish_step(started.id, "failed", error="ScriptFailed: access denied") == done
    with pytest.raises(JournalConflict):
        store.finish_step(started.id, "succeeded")


# --------------------------------------------------------------------------------------------- journal


def test_intent_outcome_and_in_doubt(store: Store, wave: str) -> None:
    """An intent is in doubt until its outcome; the same key returns the same entry."""
    entry = store.intent("PC-001", "set_cloud_trust_policy", 1, {"value": 1}, key="PC-001/policy/1")
    assert entry.in_doubt and entry.intent == {"value": 1}
    assert store.intent("PC-001", "set_cloud_trust_policy", 1, {"value": 1}, key="PC-001/policy/1") == entry
    other = store.intent("PC-002", "delete_hello_container", 1, {"sid": "S-1"}, key="PC-002/ngc/1", user="bob")
    assert [e.id for e in store.in_doubt()] == [entry.id, other.id]
    assert [e.id for e in store.in_doubt("PC-002")] == [other.id]
    settled = store.outcome(entry.id, {"previous": None}, ok=True)
    assert (settled.status, settled.outcome) == ("done", {"previous": None})
    assert store.outcome(entry.id, {"previous": None}, ok=True) == settled  # repeated after a crash: no-op
    with pytest.raises(JournalConflict, match="already 'done'"):
        store.outcome(entry.id, {"previous": 0}, ok=False)
    assert [e.id for e in store.in_doubt()] == [other.id]


def test_resolve_settles_only_in_doubt_entries(store: Store, wave: str) -> None:
    """resolve records what re-reading the device showed, and only for an intent without outcome."""
    entry = store.intent("PC-001", "delete_hello_container", 1, {"user": "alice"}, key="k")
    resolved = store.resolve(entry.id, {"container_present": False})
    assert (resolved.status, resolved.outcome) == ("resolved", {"container_present": False})
    assert store.in_doubt() == []
    failed = store.outcome(store.intent("PC-001", "x", 1, {}, key="k2").id, {"error": "boom"}, ok=False)
    assert failed.status == "failed"
    with pytest.raises(JournalConflict):
        store.resolve(failed.id, {})
    with pytest.raises(UnknownJournalEntry, match="999"):
        store.resolve(999, {})


def test_an_idempotency_key_names_exactly_one_step(store: Store, wave: str) -> None:
    """Reusing a key for another device or step is a programming error, reported as such."""
    store.intent("PC-001", "set_policy", 1, {}, key="dup")
    with pytest.raises(JournalConflict, match="dup"):
        store.intent("PC-002", "set_policy", 1, {}, key="dup")


def test_intent_refuses_secrets_and_non_json(store: Store, wave: str) -> None:
    """A credential in an intent payload is refused before anything is written."""
    with pytest.raises(SecretInStore, match=r"auth\.Credential"):
        store.intent("PC-001", "x", 1, {"auth": {"Credential": "CONTOSO\\admin:pw"}}, key="s")
    with pytest.raises(UnstorableValue, match="set"):
        store.intent("PC-001", "x", 1, {"values": {1, 2}}, key="s")
    assert store.journal_entries("PC-001") == []


# ------------------------------------------------------------------------------------ facts, snapshots


def test_facts_latest_wins(store: Store, wave: str) -> None:
    """Every facts snapshot is kept; latest_facts returns the newest."""
    assert store.latest_facts("PC-001") is None
    store.save_facts("PC-001", {"dsregcmd": {"AzureAdJoined": True}, "klist": {"plaintext_password_present": False}})
    newest = store.save_facts("PC-001", {"dsregcmd": {"AzureAdJoined": False}})
    assert store.latest_facts("PC-001") == newest
    assert newest.facts == {"dsregcmd": {"AzureAdJoined": False}}


def test_policy_snapshot_first_wins_across_spellings(store: Store, wave: str) -> None:
    """A value snapshotted once is never overwritten, whatever the spelling of its key and name."""
    first = [
        PolicyValue(PFW, "UseCloudTrustForOnPremAuth", existed=False),
        PolicyValue(PFW, "Enabled", existed=True, type="DWord", data=1),
        PolicyValue(PFW, "UseCertificateForOnPremAuth", existed=True, type="REG_DWORD", data=1),
        PolicyValue(PFW + r"\PINComplexity", "MinimumPINLength", existed=True, type="DWord", data=6),
    ]
    store.snapshot_policy("PC-001", first)
    later = [
        PolicyValue(
            r"Registry::HKEY_LOCAL_MACHINE\software\policies\microsoft\passportforwork",
            "usecloudtrustforonpremauth",
            existed=True,
            type="REG_DWORD",
            data=1,
        ),
        PolicyValue("HKLM:" + PFW[4:], "ENABLED", existed=True, type="REG_DWORD", data=0),
        PolicyValue(PFW, "RequireSecurityDevice", existed=True, type="REG_DWORD", data=1),
    ]
    stored = store.snapshot_policy("PC-001", later)
    assert [(v.name, v.existed, v.type, v.data) for v in stored] == [
        ("UseCloudTrustForOnPremAuth", False, None, None),
        ("Enabled", True, "DWord", 1),
        ("UseCertificateForOnPremAuth", True, "DWord", 1),  # REG_DWORD kept as the kind restore_policy takes
        ("MinimumPINLength", True, "DWord", 6),
        ("RequireSecurityDevice", True, "DWord", 1),
    ]
    assert store.policy_snapshot("PC-001") == stored
    assert store.policy_snapshot("PC-002") == []


def test_policy_snapshot_refuses_inconsistent_or_secret_values(store: Store, wave: str) -> None:
    """Absent values carry no data, types are REG_*, and a value named like a password is never stored."""
    with pytest.raises(UnstorableValue, match="did not exist"):
        store.snapshot_policy("PC-001", [PolicyValue(PFW, "Enabled", existed=False, data=1)])
    with pytest.raises(UnstorableValue, match="DWord"):
        store.snapshot_policy("PC-001", [PolicyValue(PFW, "Enabled", existed=True, type="Integer", data=1)])
    winlogon = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Winlogon"
    with pytest.raises(SecretInStore, match="DefaultPassword"):
        store.snapshot_policy("PC-001", [PolicyValue(winlogon, "DefaultPassword", True, "String", "hunter2")])
    assert store.policy_snapshot("PC-001") == []


# ---------------------------------------------------------------------------------------------- leases


def test_lease_acquire_renew_release_and_expiry(store: Store, wave: str, clock: FakeClock) -> None:
    """A lease is exclusive until released or expired (by the injected clock); renew needs a live lease."""
    assert store.acquire("PC-001", "worker-a", 30)
    assert not store.acquire("PC-001", "worker-b", 30)
    assert store.acquire("PC-001", "worker-a", 30)  # already mine: extended
    expires = store.renew("PC-001", "worker-a", 60)
    assert store.get_device("PC-001").lease_expires_at == expires
    with pytest.raises(LeaseNotHeld, match="worker-a"):
        store.renew("PC-001", "worker-b", 60)
    clock.advance(61)
    with pytest.raises(LeaseNotHeld):
        store.renew("PC-001", "worker-a", 60)
    assert store.acquire("PC-001", "worker-b", 30)  # expired: anyone may take it
    assert not store.release("PC-001", "worker-a")
    assert store.release("PC-001", "worker-b")
    assert store.get_device("PC-001").lease_owner is None
    with pytest.raises(UnknownDevice):
        store.acquire("PC-404", "worker-a", 30)
    with pytest.raises(UnstorableValue):
        store.acquire("PC-001", "worker-a", 0)


# --------------------------------------------------------------------------------------------- exports


def test_device_timeline_merges_transitions_steps_and_journal_in_time_order(store: Store, wave: str) -> None:
    """The timeline reads as what happened to the device, in order."""
    store.transition("PC-001", "pending", "preflight", "start")
    step = store.start_step("PC-001", "set_cloud_trust_policy", 1)
    entry = store.intent("PC-001", "set_cloud_trust_policy", 1, {"value": 1}, key="k")
    store.outcome(entry.id, {}, ok=True)
    store.finish_step(step.id, "succeeded")
    store.transition("PC-001", "preflight", "policy_set", "policy applied")
    timeline = store.export_device_timeline("PC-001")
    assert timeline.device.state == "policy_set"
    kinds = [kind for _, kind, _ in timeline.events()]
    assert kinds == ["transition", "step", "journal", "transition"]
    times = [at for at, _, _ in timeline.events()]
    assert times == sorted(times)


def test_wave_transitions_are_in_time_order_across_devices(store: Store, wave: str) -> None:
    """A wave's export interleaves its devices by time and leaves other waves out."""
    store.create_wave("w2", playbook_name="p", playbook_hash=content_hash("x"))
    store.enroll("w2", ["PC-100"])
    store.transition("PC-002", "pending", "preflight", "start")
    store.transition("PC-100", "pending", "preflight", "start")
    store.transition("PC-001", "pending", "preflight", "start")
    store.transition("PC-002", "preflight", "ready", "facts")
    moves = store.export_wave_transitions("w1")
    assert [(t.device, t.to_state) for t in moves] == [
        ("PC-002", "preflight"),
        ("PC-001", "preflight"),
        ("PC-002", "ready"),
    ]


def test_rollback_records_hold_policy_values_and_users(store: Store, wave: str) -> None:
    """Rollback gets, per device of the wave, the values to restore and the users' containers at preflight."""
    store.snapshot_policy("PC-002", [PolicyValue(PFW, "UseCloudTrustForOnPremAuth", existed=False)])
    store.add_user("PC-002", "alice", sid="S-1-5-21-1", container_trust="key", key_id="{abc}")
    records = {r.device: r for r in store.export_rollback_records("w1")}
    assert set(records) == {"PC-001", "PC-002", "PC-003"}
    assert records["PC-002"].policy[0].name == "UseCloudTrustForOnPremAuth"
    assert [(u.name, u.container_trust, u.key_id) for u in records["PC-002"].users] == [("alice", "key", "{abc}")]
    assert records["PC-001"].policy == [] and records["PC-001"].users == []


def test_naive_clock_is_refused(store_location: str) -> None:
    """A clock without a time zone would make a shared store ambiguous: refused at the first write."""
    with pytest.raises(UnstorableValue, match="time zone"):
        Store.open(store_location, now=lambda: datetime(2025, 1, 1))


def test_a_snapshot_record_round_trips_as_the_scripts_speak_it(store: Store, wave: str) -> None:
    """A record shaped like snapshot_policy.ps1's output (HKLM: path, kind names, binary as bytes) reads back
    unchanged, ready for restore_policy.ps1."""
    records = [
        PolicyValue("HKLM:" + PFW[4:], "Enabled", True, "DWord", 1),
        PolicyValue("HKLM:" + PFW[4:], "SiteList", True, "MultiString", ["a", "b"]),
        PolicyValue("HKLM:" + PFW[4:], "Blob", True, "Binary", [0, 255, 16]),
        PolicyValue(r"Registry::HKEY_USERS\S-1-5-21-1-2-3-1001" + PFW[4:], "Enabled", False),
    ]
    stored = store.snapshot_policy("PC-001", records)
    assert [(v.key, v.name, v.existed, v.type, v.data) for v in stored] == [
        (r.key, r.name, r.existed, r.type, r.data) for r in records
    ]


def test_a_visit_record_is_what_the_separate_reads_return(store: Store, wave: str) -> None:
    """The device's row, users, latest facts, journal and policy snapshot in one read: each as its own method has it."""
    store.add_user("PC-001", "alice", sid="S-1-5-21-1-2-3-1001", container_trust="cert", key_id="k1")
    store.save_facts("PC-001", {"build": 1})
    store.save_facts("PC-001", {"build": 2})
    entry = store.intent("PC-001", "set_policy", 1, {"p": 1}, key="k1")
    store.outcome(entry.id, {"ok": True}, ok=True)
    store.snapshot_policy("PC-001", [PolicyValue(PFW, "Enabled", existed=False)])
    record = store.visit_record("PC-001")
    assert record.device == store.get_device("PC-001")
    assert record.device.wave_state == "planned"
    assert record.users == store.list_users("PC-001")
    assert record.facts == store.latest_facts("PC-001") and record.facts is not None
    assert record.facts.facts == {"build": 2}
    assert record.journal == store.journal_entries("PC-001")
    assert record.policy == store.policy_snapshot("PC-001")
    empty = store.visit_record("PC-002")
    assert (empty.users, empty.facts, empty.journal, empty.policy) == ([], None, [], [])
