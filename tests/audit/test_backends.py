"""The tamper cases that need no file access, on every back end the store supports: someone with SQL access
(triggers disabled) cuts, empties, extends or rebuilds the log, or edits a recorded head; `verify_audit` with
the anchor taken before says so."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Connection, text

from migrator.store import AuditEntry, AuditHead, Store, content_hash
from migrator.store.audit import RecordedHead, entry_hash
from tests.store.conftest import FakeClock


def _fill(store: Store) -> AuditHead:
    for n in (1, 2):
        store.create_wave(f"w{n}", playbook_name="p", playbook_hash=content_hash("x"), audit=AuditEntry("a", "create"))
        store.enroll(f"w{n}", [f"PC-{n}"])
        store.transition(f"PC-{n}", "pending", "preflight", "start", audit=AuditEntry("engine", "start"))
        store.set_wave_state(f"w{n}", "completed", audit=AuditEntry("a", "end"))
    head = store.record_audit_head()
    assert head == store.verify_audit().head and head.entries == 6
    return head


def _sql(store: Store, change: Callable[[Connection], None]) -> None:
    with store.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_no_update")
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_no_delete")
        else:
            conn.exec_driver_sql("ALTER TABLE audit DISABLE TRIGGER audit_append_only")
        change(conn)


def _delete_tail(conn: Connection) -> None:
    conn.execute(text("DELETE FROM audit WHERE id > 4"))


def _delete_all(conn: Connection) -> None:
    conn.execute(text("DELETE FROM audit"))
    conn.execute(text("DELETE FROM audit_head"))


def _append(conn: Connection) -> None:
    last = conn.execute(text("SELECT id, at, hash FROM audit ORDER BY id DESC LIMIT 1")).one()
    at = FakeClock().current
    digest = entry_hash(
        entry_id=last.id + 1,
        at=at,
        actor="mallory",
        action="approve",
        device=None,
        change_ticket=None,
        before=None,
        after=None,
        prev_hash=last.hash,
    )
    conn.execute(
        text(
            "INSERT INTO audit (id, at, actor, action, prev_hash, hash) VALUES (:id, :at, 'mallory', 'approve', :p, :h)"
        ),
        {"id": last.id + 1, "at": at.replace(tzinfo=None), "p": last.hash, "h": digest},
    )


def _forge_heads(conn: Connection) -> None:
    """Make audit_head and every wave row agree with whatever the chain now is."""
    count = conn.execute(text("SELECT COUNT(*) FROM audit")).scalar_one()
    tip = conn.execute(text("SELECT hash FROM audit ORDER BY id DESC LIMIT 1")).scalar() or "0" * 64
    conn.execute(text("DELETE FROM audit_head"))
    if count:
        conn.execute(
            text("INSERT INTO audit_head (id, entries, hash, at) VALUES (1, :n, :h, :at)"),
            {"n": count, "h": tip, "at": FakeClock().current.replace(tzinfo=None)},
        )
    conn.execute(text("UPDATE waves SET audit_entries = :n, audit_head = :h"), {"n": count, "h": tip})


CASES: dict[str, Callable[[Connection], None]] = {
    "delete-tail": _delete_tail,
    "delete-all": _delete_all,
    "append-forged-row": _append,
    "edit-a-wave-head": lambda c: c.execute(
        text("UPDATE waves SET audit_head = :h WHERE name = 'w1'"), {"h": "c" * 64}
    ),
    "edit-the-store-head": lambda c: c.execute(text("UPDATE audit_head SET entries = 5")),
}


@pytest.mark.parametrize("case", CASES)
def test_tampering_is_caught_by_the_store_heads_and_the_anchor(
    store_location: str, clock: FakeClock, case: str
) -> None:
    """Each case shows without an anchor (the heads the store keeps outside the chain) and with one."""
    with Store.open(store_location, now=clock) as store:
        anchor = RecordedHead("the --anchor", _fill(store), exact=True)
        _sql(store, CASES[case])
        assert not store.verify_audit().ok
        assert not store.verify_audit([anchor]).ok


@pytest.mark.parametrize("case", ["delete-tail", "delete-all", "append-forged-row"])
def test_with_the_store_heads_forged_only_the_anchor_catches_it(
    store_location: str, clock: FakeClock, case: str
) -> None:
    """Someone who also rewrites audit_head and every wave row: the chain and the store agree, the anchor does not."""
    with Store.open(store_location, now=clock) as store:
        anchor = RecordedHead("the --anchor", _fill(store), exact=True)
        _sql(store, CASES[case])
        _sql(store, _forge_heads)
        assert store.verify_audit().ok
        report = store.verify_audit([anchor])
        assert not report.ok and [p.kind for p in report.problems] == ["anchor"]
