"""What the waves page computes from a store, without a browser: the failure budget as the wave engine counts it,
the canary's verdict, the next approval gate from the recorded settings and the audit log's approvals, the change
windows; the operator actions' who and why in the audit log; and the fingerprint that moves when the log is cut."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from migrator.engine.wavestore import APPROVE, StoreWaves
from migrator.store import AuditEntry, Store, content_hash
from migrator.web import views

MONDAY_NOON = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def _store(folder: Path) -> Store:
    store = Store.open(folder, synchronous="NORMAL")
    devices = [f"PC-{i}" for i in range(10)]
    store.create_wave(
        "w",
        playbook_name="to-cloud-kerberos",
        playbook_hash=content_hash("w"),
        change_ticket="CHG1",
        settings={
            "devices": devices,
            "canary": 2,
            "batch_size": 4,
            "approval": True,
            "max_fail_percent": 20.0,
            "windows": ["Mon-Fri 18:00-23:00", "someday"],
        },
    )
    store.enroll("w", devices)
    ends = {"PC-0": "migrated", "PC-1": "ineligible", "PC-2": "failed", "PC-3": "error", "PC-4": "migrated"}
    for device, dest in ends.items():
        store.transition(device, "pending", dest, "go", audit=AuditEntry("engine", "go"))
    return store


def test_the_waves_card_counts_as_the_engine_does(tmp_path: Path) -> None:
    """Budget: failed and error over the started devices (5), against 20%; canary passed (a success and an
    ineligible device); batches canary + 4 + 4, one approval given: batch 3 is the next gate; one window closed
    at Monday noon (opens 18:00), one that does not parse."""
    with _store(tmp_path) as store:
        StoreWaves(store, "alice").approve("w", "first batch fine")
        [card] = views.waves_page(store, MONDAY_NOON)
    assert (card.budget.failed, card.budget.started, card.budget.max_percent) == (2, 5, 20.0)
    assert card.budget.percent == 40.0 and card.budget.used == 2.0 and card.budget.css == "bad"
    assert card.canary is not None and card.canary.verdict == "passed"
    assert card.gate is not None and (card.gate.batches, card.gate.approved, card.gate.next_batch) == (3, 1, 3)
    assert [(w.text, w.open_now) for w in card.windows] == [("Mon-Fri 18:00-23:00", False), ("someday", None)]
    assert card.windows[0].next_opening == datetime(2026, 11, 2, 18, 0, tzinfo=UTC)
    assert sum(s.count for s in card.segments) == 10 and card.segments[0].state == "pending"
    assert abs(sum(s.width for s in card.segments) - 1000.0) < 1e-6


def test_operator_actions_record_who_and_why(tmp_path: Path) -> None:
    """approve and pause (what `migrator approve/pause` and the dashboard call) put the reason in the audit log."""
    with _store(tmp_path) as store:
        waves = StoreWaves(store, "bob (dashboard)")
        waves.approve("w", "CAB-9")
        waves.pause("w", "helpdesk calls from site B")
        approval = store.audit_entries(action=APPROVE)[-1]
        pause = store.audit_entries(action="wave.paused")[-1]  # set_wave_state audits wave.<state>
    assert approval.actor == "bob (dashboard)" and isinstance(approval.after, dict)
    assert approval.after["reason"] == "CAB-9"
    assert (
        isinstance(pause.after, dict) and pause.after["reason"] == "paused by an operator: helpdesk calls from site B"
    )


def test_the_fingerprint_moves_when_the_log_is_cut(tmp_path: Path) -> None:
    """Deleting the last audit entry behind the store's back changes the fingerprint (the recorded head does not
    move, the table's tail does), so open pages refresh and the audit page turns red."""
    _store(tmp_path).close()
    with Store.open(tmp_path, read_only=True) as reader:
        before = views.fingerprint(reader)
        assert views.fingerprint(reader) == before
        db = sqlite3.connect(tmp_path / "migrator.db")
        db.execute("DROP TRIGGER IF EXISTS audit_no_delete")
        db.execute("DELETE FROM audit WHERE id = (SELECT MAX(id) FROM audit)")
        db.commit()
        db.close()
        assert views.fingerprint(reader) != before
        assert not views.audit_page(reader, None).ok
