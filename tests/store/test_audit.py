"""The audit log: hash chain format, serialised appends, append-only triggers, and tamper detection."""

from __future__ import annotations

import hashlib
import itertools
import json
import threading

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from migrator.store import AuditEntry, Store
from migrator.store.audit import entry_hash


def _tamper(store: Store, *statements: str) -> None:
    """Change the audit table behind the store's back, as someone with database access would."""
    with store.engine.begin() as conn:
        if store.engine.dialect.name == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_no_update")
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_no_delete")
        else:
            conn.exec_driver_sql("ALTER TABLE audit DISABLE TRIGGER audit_append_only")
        for statement in statements:
            conn.exec_driver_sql(statement)


def _five(store: Store) -> None:
    for index in range(1, 6):
        store.append_audit(
            AuditEntry(
                actor="alice",
                action=f"step-{index}",
                device="PC-001",
                change_ticket="CHG0001",
                before={"state": index - 1},
                after={"state": index, "note": "ünïcode"},
            )
        )


def _problems(store: Store) -> list[tuple[int, str]]:
    return [(p.entry_id, p.kind) for p in store.verify_audit().problems]


def test_the_chain_links_from_genesis_and_verifies(store: Store) -> None:
    """Entry 1 links to 64 zeros, each next entry to the previous hash; the report counts and anchors it."""
    _five(store)
    entries = store.audit_entries()
    assert [e.id for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == "0" * 64
    assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(entries))
    report = store.verify_audit()
    assert (report.ok, report.entries, report.problems, report.head_hash) == (True, 5, [], entries[-1].hash)
    assert [e.id for e in store.audit_entries(device="pc-001")] == [1, 2, 3, 4, 5]


def test_the_hash_is_sha256_of_the_canonical_json_of_the_entry(store: Store) -> None:
    """The documented format, recomputed independently: sorted keys, no spaces, UTF-8, ISO time in UTC."""
    record = store.append_audit(AuditEntry("bob", "enroll", after={"b": 1, "a": [True, None]}))
    body = {
        "id": 1,
        "at": record.at.isoformat(timespec="microseconds"),
        "actor": "bob",
        "action": "enroll",
        "device": None,
        "change_ticket": None,
        "before": None,
        "after": {"a": [True, None], "b": 1},
        "prev_hash": "0" * 64,
    }
    text_ = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert record.hash == hashlib.sha256(text_.encode()).hexdigest()
    assert record.at.isoformat().endswith("+00:00")


def test_concurrent_appends_never_fork_the_chain(store: Store) -> None:
    """Eight threads appending at once still give one dense chain that verifies."""

    def append(worker: int) -> None:
        for index in range(15):
            store.append_audit(AuditEntry(actor=f"worker-{worker}", action=f"a{index}"))

    threads = [threading.Thread(target=append, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    report = store.verify_audit()
    assert report.ok and report.entries == 120


def test_sqlite_triggers_refuse_update_and_delete(store: Store) -> None:
    """Through SQL, the audit table is append-only."""
    _five(store)
    for statement in ("UPDATE audit SET action = 'x' WHERE id = 2", "DELETE FROM audit WHERE id = 2"):
        with pytest.raises(sa_exc.DBAPIError, match="append-only"), store.engine.begin() as conn:
            conn.execute(text(statement))
    assert store.verify_audit().ok


def test_an_edited_row_is_a_hash_mismatch_at_that_row(store: Store) -> None:
    """Someone drops the trigger and edits entry 3: verify names entry 3."""
    _five(store)
    _tamper(store, "UPDATE audit SET after = '{\"state\":99}' WHERE id = 3")
    report = store.verify_audit()
    assert not report.ok
    assert _problems(store) == [(3, "hash mismatch")]
    assert "edited" in report.problems[0].detail


def test_an_edit_that_breaks_the_json_is_still_reported(store: Store) -> None:
    """A row whose JSON no longer parses is reported, not a crash."""
    _five(store)
    _tamper(store, "UPDATE audit SET before = '{not json' WHERE id = 2")
    assert _problems(store) == [(2, "hash mismatch")]


def test_a_deleted_row_breaks_the_link_and_the_id_sequence_at_the_next_row(store: Store) -> None:
    """Deleting entry 3 shows at entry 4: its link points at a hash nobody has, and id 3 is missing (and the
    store's head counts one entry more than the log holds)."""
    _five(store)
    _tamper(store, "DELETE FROM audit WHERE id = 3")
    assert sorted(_problems(store)) == [(4, "broken link"), (4, "id sequence"), (5, "head")]


def test_a_row_inserted_at_the_end_with_a_made_up_hash_is_caught(store: Store) -> None:
    """A forged entry 6 that links correctly but cannot produce the right hash is named."""
    _five(store)
    head = store.audit_entries()[-1].hash
    _tamper(
        store,
        "INSERT INTO audit (id, at, actor, action, device, change_ticket, before, after, prev_hash, hash) "
        f"VALUES (6, '2025-03-01 09:00:00.000000', 'mallory', 'approve', NULL, NULL, NULL, NULL, '{head}', "
        f"'{'f' * 64}')",
    )
    assert _problems(store) == [(6, "hash mismatch"), (5, "head")]


def test_a_row_inserted_in_the_middle_is_caught_at_the_row_after_it(store: Store) -> None:
    """Renumbering 3..5 to make room for a well-formed forged entry 3 breaks entry 4 (link and hash)."""
    _five(store)
    entries = store.audit_entries()
    forged_at = entries[1].at
    forged_hash = entry_hash(
        entry_id=3,
        at=forged_at,
        actor="mallory",
        action="approve",
        device=None,
        change_ticket=None,
        before=None,
        after=None,
        prev_hash=entries[1].hash,
    )
    _tamper(
        store,
        "UPDATE audit SET id = 6 WHERE id = 5",
        "UPDATE audit SET id = 5 WHERE id = 4",
        "UPDATE audit SET id = 4 WHERE id = 3",
        "INSERT INTO audit (id, at, actor, action, device, change_ticket, before, after, prev_hash, hash) "
        f"VALUES (3, '{forged_at.replace(tzinfo=None).isoformat(sep=' ', timespec='microseconds')}', "
        f"'mallory', 'approve', NULL, NULL, NULL, NULL, '{entries[1].hash}', '{forged_hash}')",
    )
    problems = _problems(store)
    assert problems[0][0] == 4
    assert {(4, "broken link"), (4, "hash mismatch")} <= set(problems)
    assert all(entry_id >= 4 for entry_id, _ in problems)
