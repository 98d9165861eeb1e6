"""The reads the dashboard adds to the store, on SQLite and PostgreSQL: the users of many devices at once, the
audit log filtered by action, and the table's last entry (which moves when rows go, unlike the recorded head)."""

from __future__ import annotations

from migrator.store import AuditEntry, Store


def test_users_of_many_devices_at_once(store: Store, wave: str) -> None:
    """Each device maps to its users (sorted by name, any case), a device without users to an empty list."""
    store.add_user("PC-001", r"CONTOSO\bob", state="migrated")
    store.add_user("PC-001", r"CONTOSO\alice")
    store.add_user("PC-003", r"CONTOSO\carol")
    found = store.users_of(store.list_devices(wave=wave))
    assert {device: [u.name for u in users] for device, users in found.items()} == {
        "PC-001": [r"CONTOSO\alice", r"CONTOSO\bob"],
        "PC-002": [],
        "PC-003": [r"CONTOSO\carol"],
    }
    assert found["PC-001"][1].state == "migrated" and found["PC-001"][1].device == "PC-001"


def test_audit_entries_of_one_action_and_the_tail(store: Store, wave: str) -> None:
    assert store.audit_tail() is None
    store.append_audit(AuditEntry("alice", "wave.approve", after={"wave": wave}))
    store.append_audit(AuditEntry("engine", "start", device="PC-001"))
    last = store.append_audit(AuditEntry("bob", "wave.approve", after={"wave": wave}))
    assert [e.actor for e in store.audit_entries(action="wave.approve")] == ["alice", "bob"]
    tail = store.audit_tail()
    assert tail is not None and (tail.entries, tail.hash) == (last.id, last.hash)
    assert tail == store.audit_head()
