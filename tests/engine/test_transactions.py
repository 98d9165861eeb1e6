"""Store transactions of a one-user certificate trust migration, per visit: counts, not times.

Every transaction the store begins on its engine is counted (SQLAlchemy's ``begin`` event), split into writes
(SQLite's ``BEGIN IMMEDIATE``) and reads. The device takes two visits: the first runs preflight, the snapshot, the
policy write (the user's identify read riding in its pipeline), the delete of the user's Hello container and the
prompt, then waits for the user; the second sees the user signed in and verifies. A visit checks its lease and the
wave's state before each step with the fenced writes it makes anyway (transitions, intents), so the figures below
hold only journal, funnel and record transactions: a per-step renewal or read coming back shows here."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import Connection, event

from migrator.engine.device import VisitResult
from tests.engine.labkit import (
    cooperative,
    make_fleet,
    open_store,
    playbook,
    running_lab,
    sign_everyone_in,
    visit_device,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

# Per visit: (writes, reads). First visit: the lease taken and released, the record read once, 3 facts saved, 3 intents
# and 3 outcomes (snapshot, policy write with the identify companion, delete), 8 device and 5 user transitions, the
# user added and identified, the policy snapshot. Second: the lease, 1 facts, 1 intent and outcome (verify), 2 device
# and 2 user transitions. Before the folds the same path took 57 transactions (41 writes, 16 reads): a lease renewal
# before every step, and six reads to rebuild a visit and to report it.
FIRST_VISIT = (27, 1)
SECOND_VISIT = (9, 1)


def test_a_one_user_certificate_trust_device_migrates_in_a_pinned_number_of_store_transactions(
    tmp_path: Path,
) -> None:
    """Each visit's store transactions, writes and reads apart, equal the pinned figures; the journal still holds an
    intent and an outcome for every side effect, and the device is migrated."""
    fleet = cooperative(make_fleet(6, 4, "key=0,cert=100,cloud=0,none=0"))
    target = next(d for d in fleet.devices if d.join_type == "hybrid" and d.users and d.users[0].container)
    target.users = target.users[:1]
    fleet.devices = [target]
    book = playbook("cert-trust-to-cloud-kerberos")
    counts: Counter[str] = Counter()

    def begun(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("migrator_begin") == "IMMEDIATE"
        counts["write" if immediate else "read"] += 1

    with running_lab(fleet, tmp_path / "lab") as kit:
        sign_everyone_in(kit)
        store = open_store(tmp_path / "state", kit, book, [target.name])
        event.listen(store.engine, "begin", begun)
        visits: list[tuple[int, int]] = []
        results: list[VisitResult] = []
        try:
            while not results or results[-1].next_due is not None:
                assert len(results) < 4, results
                counts.clear()
                results.append(visit_device(kit, store, book, target.name))
                visits.append((counts["write"], counts["read"]))
                if results[-1].next_due is not None:
                    kit.clock.advance_to(max(results[-1].next_due, kit.now()))
        finally:
            event.remove(store.engine, "begin", begun)
        assert store.get_device(target.name).state == "migrated"
        journal = store.journal_entries(target.name)
        assert journal and all(entry.status in ("done", "resolved") for entry in journal)
    assert visits == [FIRST_VISIT, SECOND_VISIT], visits
