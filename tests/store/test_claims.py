"""Claims on both back ends: released, due devices go to one worker each (SKIP LOCKED on PostgreSQL), by site, and
come back with their next due time; the coordinator lock has one holder at a time and goes with its holder."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from migrator.store import Store, content_hash
from migrator.store.claims import worker_live
from tests.store.conftest import FakeClock

DEVICES = [f"PC-{i:03}" for i in range(40)]
SETTLED = ("migrated", "failed")


def _wave(store: Store, devices: list[str] = DEVICES, state: str = "running") -> None:
    store.create_wave("w", playbook_name="p", playbook_hash=content_hash("x"), state=state)
    store.enroll("w", devices)


def test_only_released_due_devices_of_running_waves_are_claimed(store: Store, clock: FakeClock) -> None:
    """Nothing before the coordinator releases a batch; then only its devices, once each; a paused wave's not at
    all; a settled device is released but not due."""
    _wave(store, DEVICES[:4])
    assert store.claim("w1", 60, 10) == []
    store.transition("PC-003", "pending", "migrated", "test")
    assert store.release_batch("w", ["PC-000", "PC-001", "PC-003"], settled=SETTLED) == 3
    assert store.release_batch("w", ["PC-000"], settled=SETTLED) == 0  # idempotent
    store.set_wave_state("w", "paused")
    assert store.claim("w1", 60, 10) == []
    store.set_wave_state("w", "running")
    claimed = store.claim("w1", 60, 10)
    assert sorted(c.device for c in claimed) == ["PC-000", "PC-001"]
    assert {c.wave for c in claimed} == {"w"}
    assert store.claim("w2", 60, 10) == []  # leased to w1 now
    row = store.get_device("PC-000")
    assert row.lease_owner == "w1" and row.released_at is not None


def test_a_device_handed_back_comes_back_when_due(store: Store, clock: FakeClock) -> None:
    """finish_claim frees the lease and sets the next due time in one write; a hand-back by a worker that lost the
    lease changes nothing."""
    _wave(store, DEVICES[:1])
    store.release_batch("w", DEVICES[:1], settled=SETTLED)
    [claim] = store.claim("w1", 60, 5)
    assert not store.finish_claim(claim.device, "w2", None)
    assert store.finish_claim(claim.device, "w1", clock.current + timedelta(hours=1))
    assert store.get_device("PC-000").lease_owner is None
    assert store.claim("w2", 60, 5) == []
    clock.advance(3601)
    assert [c.device for c in store.claim("w2", 60, 5)] == ["PC-000"]
    assert store.finish_claim("PC-000", "w2", None)
    clock.advance(86400)
    assert store.claim("w2", 60, 5) == []  # never due again


def test_a_dead_workers_claim_is_taken_over_when_its_lease_expires(store: Store, clock: FakeClock) -> None:
    """A claim that is never handed back (its worker died) is claimed by another worker after the lease's TTL."""
    _wave(store, DEVICES[:2])
    store.release_batch("w", DEVICES[:2], settled=SETTLED)
    assert len(store.claim("dead", 30, 5)) == 2
    assert store.claim("alive", 30, 5) == []
    clock.advance(31)
    assert sorted(c.device for c in store.claim("alive", 30, 5)) == DEVICES[:2]


def test_runs_share_the_run_lock_and_a_worker_excludes_them_on_sqlite(tmp_path: Path) -> None:
    """SQLite: two runs hold the run lock at once; the coordinator's lock (a worker's) is refused while a run holds
    it, and a run is refused while a worker leads; each is free again once the other closes."""
    with Store.open(tmp_path / "state") as store:
        first, second, worker = store.run_lock(), store.run_lock(), store.coordinator_lock()
        assert first.lead() and second.lead()
        assert not worker.lead()
        first.close()
        second.close()
        assert worker.lead()
        third = store.run_lock()
        assert not third.lead()
        worker.close()
        assert third.lead()
        third.close()


def test_device_marks_say_what_the_coordinator_decides_on_and_match_the_full_rows(
    store: Store, clock: FakeClock
) -> None:
    """device_marks: every device of the wave by name, with its state, release, due time and lease, the same values
    as its full row."""
    _wave(store, DEVICES[:3])
    store.create_wave("other", playbook_name="p", playbook_hash=content_hash("x"), state="running")
    store.enroll("other", ["PC-900"])
    store.transition("PC-002", "pending", "migrated", "test")
    store.release_batch("w", DEVICES[:3], settled=SETTLED)
    store.claim("w1", 60, 1)
    marks = store.device_marks("w")
    assert [m.name for m in marks] == DEVICES[:3]
    for mark in marks:
        row = store.get_device(mark.name)
        assert (mark.state, mark.released_at, mark.due_at, mark.lease_expires_at) == (
            row.state,
            row.released_at,
            row.due_at,
            row.lease_expires_at,
        )
    assert [m.lease_expires_at is not None for m in marks] == [True, False, False]
    assert marks[2].state == "migrated" and marks[2].due_at is None


def test_wake_makes_held_devices_due_at_once(store: Store, clock: FakeClock) -> None:
    """wake: released devices due later are due now; one due already, settled (never due) or not released is left
    as it was."""
    _wave(store, DEVICES[:5])
    store.release_batch("w", DEVICES[:4], settled=SETTLED)
    later, earlier = clock.current + timedelta(hours=1), clock.current - timedelta(seconds=1)
    due = {"PC-000": later, "PC-001": later, "PC-002": None, "PC-003": earlier}
    for claim in store.claim("w1", 60, 10):
        assert store.finish_claim(claim.device, "w1", due[claim.device])
    assert sorted(c.device for c in store.claim("w2", 60, 10)) == ["PC-003"]
    assert store.finish_claim("PC-003", "w2", earlier)
    assert store.wake(DEVICES[:5]) == 2
    for woken in ("PC-000", "PC-001"):
        row = store.get_device(woken)
        assert row.due_at is not None and row.due_at < later - timedelta(minutes=59)
    assert store.get_device("PC-002").due_at is None
    assert store.get_device("PC-003").due_at == earlier
    assert store.get_device("PC-004").due_at is None  # not released: not the workers' yet
    assert sorted(c.device for c in store.claim("w2", 60, 10)) == ["PC-000", "PC-001", "PC-003"]


def test_a_worker_claims_only_its_sites(store: Store) -> None:
    """--site paris serves paris; no --site serves every device, siteless ones included."""
    _wave(store, DEVICES[:3])
    store.set_sites({"PC-000": "paris", "PC-001": "lyon", "PC-002": None})
    store.release_batch("w", DEVICES[:3], settled=SETTLED)
    assert [c.device for c in store.claim("p", 60, 10, sites=["paris"])] == ["PC-000"]
    assert [c.device for c in store.claim("n", 60, 10, sites=["nantes"])] == []
    assert sorted(c.device for c in store.claim("all", 60, 10)) == ["PC-001", "PC-002"]
    assert store.get_device("PC-001").site == "lyon"


def test_workers_claiming_at_once_never_share_a_device(store_location: str, clock: FakeClock) -> None:
    """Four workers (each with its own engine) claim one or two devices at a time until none is left: every device
    is claimed exactly once."""
    with Store.open(store_location, now=clock) as setup:
        _wave(setup)
        setup.release_batch("w", DEVICES, settled=SETTLED)
    claimed: dict[str, list[str]] = {}
    barrier = threading.Barrier(4)

    def work(name: str) -> None:
        with Store.open(store_location, now=clock) as store:
            mine = claimed.setdefault(name, [])
            barrier.wait()
            while batch := store.claim(name, 600, 1 + len(mine) % 2):
                mine.extend(c.device for c in batch)

    threads = [threading.Thread(target=work, args=(f"worker-{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    everything = [device for devices in claimed.values() for device in devices]
    assert sorted(everything) == DEVICES, claimed
    with Store.open(store_location, now=clock) as store:
        owners = {d.name: d.lease_owner for d in store.list_devices()}
    assert all(owners[device] == name for name, devices in claimed.items() for device in devices)


def test_a_claim_skips_rows_another_transaction_has_locked(postgres_url: str, clock: FakeClock) -> None:
    """PostgreSQL: a device row locked by another worker's claim in flight is skipped at once, not waited for."""
    with Store.open(postgres_url, now=clock) as store:
        _wave(store, DEVICES[:3])
        store.release_batch("w", DEVICES[:3], settled=SETTLED)
        with store.engine.connect() as other:
            other.execute(text("SET lock_timeout = '30s'"))
            other.execute(text("SELECT id FROM devices WHERE name = 'PC-000' FOR UPDATE"))
            started = time.monotonic()
            claimed = store.claim("w1", 60, 10)
            assert time.monotonic() - started < 10  # skipped, not waited for (the lock is held 30 s)
            other.rollback()
        assert sorted(c.device for c in claimed) == ["PC-001", "PC-002"]
        assert [c.device for c in store.claim("w2", 60, 10)] == ["PC-000"]


def test_workers_register_and_beat(store: Store, clock: FakeClock) -> None:
    """A worker's row: its sites, heartbeat and a clean stop; live for as long as its beats are recent."""
    store.register_worker("1234:-:00c0ffee@host-a", ["paris", "lyon"])
    store.register_worker("plain-worker", [])
    rows = {w.owner: w for w in store.workers()}
    assert rows["1234:-:00c0ffee@host-a"].sites == ("lyon", "paris")
    assert rows["1234:-:00c0ffee@host-a"].host == "host-a" and rows["1234:-:00c0ffee@host-a"].pid == 1234
    assert rows["plain-worker"].serves("anything") and not rows["1234:-:00c0ffee@host-a"].serves(None)
    clock.advance(50)
    store.worker_beat("plain-worker")
    now = clock()
    rows = {w.owner: w for w in store.workers()}
    assert worker_live(rows["plain-worker"], now, 30) and not worker_live(rows["1234:-:00c0ffee@host-a"], now, 30)
    store.worker_stopped("plain-worker")
    assert not worker_live(next(w for w in store.workers() if w.owner == "plain-worker"), clock(), 30)


def test_one_coordinator_at_a_time_and_a_successor_when_it_closes(store: Store) -> None:
    """The coordinator lock (advisory lock on PostgreSQL, flock on SQLite) has one holder; closing frees it."""
    first, second = store.coordinator_lock(), store.coordinator_lock()
    try:
        assert first.lead()
        assert first.lead()  # still held
        assert not second.lead()
        first.close()
        assert second.lead()
        assert not first.lead()
    finally:
        first.close()
        second.close()


_HOLDER = """
import sys, time
from migrator.store import Store
store = Store.open(sys.argv[1])
lock = store.coordinator_lock()
assert lock.lead()
print("leading", flush=True)
time.sleep(600)
"""


def test_the_coordinator_lock_goes_with_a_killed_holder(store_location: str) -> None:
    """A holder process killed with SIGKILL frees the lock (PostgreSQL: its session ends; SQLite: its flock goes):
    another worker takes it over."""
    with Store.open(store_location) as store:
        holder = subprocess.Popen([sys.executable, "-c", _HOLDER, store_location], stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "leading"
            successor = store.coordinator_lock()
            assert not successor.lead()
            holder.send_signal(signal.SIGKILL)
            holder.wait(10)
            deadline = time.monotonic() + 20
            while not successor.lead():
                assert time.monotonic() < deadline, "the lock never came free"
                time.sleep(0.05)
            successor.close()
        finally:
            holder.kill()
            holder.wait(10)


def test_a_coordinator_whose_session_is_terminated_stops_leading(postgres_url: str) -> None:
    """PostgreSQL: the holder's connection killed by the server (pg_terminate_backend) ends its lead at its next
    check, and another worker takes the lock."""
    with Store.open(postgres_url) as store:
        holder, successor = store.coordinator_lock(), store.coordinator_lock()
        try:
            assert holder.lead()
            with store.engine.connect() as admin:
                # This store's lock only (database and schema: other test sessions may hold theirs), and the
                # termination waited for (PostgreSQL 14+: the timeout in ms), since the lock goes when the backend
                # has exited, not when the signal is sent.
                pids = admin.execute(
                    text(
                        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = :key "
                        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                        "AND objid::bigint = (hashtext(current_schema())::bigint + 4294967296) % 4294967296"
                    ),
                    {"key": 0x6D696763},
                ).scalars()
                for pid in list(pids):
                    admin.execute(text("SELECT pg_terminate_backend(:pid, 10000)"), {"pid": pid})
                admin.commit()
            assert successor.lead()
            assert not holder.lead()
        finally:
            holder.close()
            successor.close()


@pytest.mark.parametrize("sites", [("paris",), ()])
def test_release_makes_only_unsettled_devices_due(store: Store, sites: tuple[str, ...]) -> None:
    """A released batch's settled devices are released but not due: no worker visits them again."""
    _wave(store, DEVICES[:2])
    store.set_sites({d: "paris" for d in DEVICES[:2]})
    store.transition("PC-001", "pending", "migrated", "test")
    store.release_batch("w", DEVICES[:2], settled=SETTLED)
    assert [c.device for c in store.claim("w1", 60, 10, sites=sites)] == ["PC-000"]
    assert store.get_device("PC-001").due_at is None and store.get_device("PC-001").released_at is not None
