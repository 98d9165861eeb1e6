"""Concurrency and crashes: racing threads, racing processes (two Store objects), a SIGKILLed writer, a locked
or full database."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from migrator.store import (
    ConcurrentUpdate,
    Store,
    StoreBusy,
    StoreFull,
    content_hash,
)
from tests.store.conftest import FakeClock

ROOT = Path(__file__).resolve().parents[2]


def _race(workers: int, action: object) -> list[object]:
    """Run ``action(i)`` in ``workers`` threads released together; return results or exceptions."""
    barrier = threading.Barrier(workers)
    results: list[object] = [None] * workers

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = action(index)  # type: ignore[operator]
        except Exception as error:  # collected for the assertions
            results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_threads_racing_the_same_transition_exactly_one_wins(store: Store, wave: str) -> None:
    """Eight threads move PC-001 from pending: one succeeds, seven get ConcurrentUpdate, one row is written."""
    results = _race(8, lambda i: store.transition("PC-001", "pending", f"claimed-{i}", "claim"))
    winners = [r for r in results if not isinstance(r, Exception)]
    losers = [r for r in results if isinstance(r, ConcurrentUpdate)]
    assert len(winners) == 1 and len(losers) == 7
    device = store.get_device("PC-001")
    assert device.version == 1 and device.state == winners[0].state  # type: ignore[attr-defined]
    assert len(store.export_device_timeline("PC-001").transitions) == 1


def test_two_stores_racing_for_a_lease_get_one_owner(store_location: str, wave: str, clock: FakeClock) -> None:
    """Two Store objects on the same database (two processes' worth of engines) cannot both hold a device."""
    other = Store.open(store_location, now=clock)
    try:
        stores = [Store.open(store_location, now=clock) for _ in range(4)] + [other]
        for _ in range(5):  # several rounds, each on a fresh device
            name = f"RACE-{_}"
            other.enroll(wave, [name])
            results = _race(len(stores), lambda i, name=name: stores[i].acquire(name, f"worker-{i}", 30))
            assert results.count(True) == 1, results
            owner = other.get_device(name).lease_owner
            assert owner == f"worker-{results.index(True)}"
        for extra in stores[:-1]:
            extra.close()
    finally:
        other.close()


def test_a_thread_pool_can_share_one_store(store: Store, wave: str) -> None:
    """Many threads moving distinct devices through one Store all succeed, and every move is recorded."""
    names = [f"POOL-{i:03}" for i in range(40)]
    store.enroll(wave, names)

    def walk(name: str) -> int:
        store.transition(name, "pending", "preflight", "start")
        entry = store.intent(name, "set_policy", 1, {"value": 1}, key=f"{name}/1")
        store.outcome(entry.id, {}, ok=True)
        return store.transition(name, "preflight", "done", "finish").version

    with ThreadPoolExecutor(max_workers=12) as pool:
        assert list(pool.map(walk, names)) == [2] * len(names)
    assert store.counts(wave)["done"] == 40
    assert store.verify_audit().ok


def test_a_lease_cannot_change_hands_during_a_fenced_write(store: Store, wave: str, clock: FakeClock) -> None:
    """A fenced transition paused between its lease check and its write holds the device: a worker that finds the
    lease expired (its clock is later) takes it only after the write commits, never in between (PostgreSQL: the
    device row is read FOR UPDATE; SQLite: BEGIN IMMEDIATE)."""
    later = clock.current + timedelta(seconds=120)
    taker = Store.open(store_location_of(store), now=lambda: later)
    assert store.acquire("PC-001", "worker-a", 30)
    armed, checked, go = threading.Event(), threading.Event(), threading.Event()

    @event.listens_for(store.engine, "after_cursor_execute")
    def _pause(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if armed.is_set() and "FROM devices" in statement:
            armed.clear()
            checked.set()
            go.wait(10)  # the fenced write has read (and checked) the lease; its UPDATE is still to come

    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            armed.set()
            fenced = pool.submit(store.transition, "PC-001", "pending", "preflight", "start", owner="worker-a")
            assert checked.wait(10)
            taking = pool.submit(taker.acquire, "PC-001", "worker-b", 30)
            time.sleep(0.5)
            taken_in_between = taking.done()
            go.set()
            assert fenced.result(timeout=30).state == "preflight"
            assert taking.result(timeout=30) is True
        assert not taken_in_between, "the lease changed hands while its holder's fenced write was in flight"
        assert store.get_device("PC-001").lease_owner == "worker-b"
    finally:
        go.set()
        taker.close()


def store_location_of(store: Store) -> str:
    """The location a test's store was opened at, with its password (the test server's URL has none)."""
    return store.engine.url.render_as_string(hide_password=False)


SIGKILL_CHILD = """
import sys, time
from migrator.store import Store
store = Store.open(sys.argv[1])
entry = store.intent("PC-001", "delete_hello_container", 1, {"user": "alice"}, key="PC-001/ngc/alice/1")
print(entry.id, flush=True)
time.sleep(60)  # the effect would run here: the parent kills us first
"""


def test_a_writer_killed_after_intent_leaves_an_in_doubt_entry(tmp_path: Path) -> None:
    """SIGKILL right after intent() returns: a fresh Store sees the intent, in doubt, and can resolve it."""
    location = tmp_path / "state"
    with Store.open(location) as setup:
        setup.create_wave("w1", playbook_name="p", playbook_hash=content_hash("x"))
        setup.enroll("w1", ["PC-001"])
    child = subprocess.Popen(
        [sys.executable, "-c", SIGKILL_CHILD, str(location)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert child.stdout is not None
        entry_id = int(child.stdout.readline())
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()
    with Store.open(location) as fresh:
        doubt = fresh.in_doubt()
        assert [(e.id, e.step, e.status) for e in doubt] == [(entry_id, "delete_hello_container", "intent")]
        resolved = fresh.resolve(entry_id, {"container_present": True})
        assert resolved.status == "resolved" and fresh.in_doubt() == []


def test_a_locked_database_is_a_retryable_store_busy(tmp_path: Path, clock: FakeClock) -> None:
    """Another writer holding SQLite's lock beyond busy_timeout gives StoreBusy naming the store; nothing changes."""
    location = tmp_path / "state"
    store = Store.open(location, now=clock, busy_timeout_ms=50)
    store.create_wave("w1", playbook_name="p", playbook_hash=content_hash("x"))
    store.enroll("w1", ["PC-001"])
    blocker = sqlite3.connect(location / "migrator.db", isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreBusy, match=r"migrator\.db.*transition.*another writer") as caught:
            store.transition("PC-001", "pending", "preflight", "start")
        assert caught.value.action == "retry later"
        assert store.get_device("PC-001").state == "pending"  # readers are not blocked by a writer (WAL)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert store.transition("PC-001", "pending", "preflight", "start").version == 1
    store.close()


def test_a_full_disk_is_reported_as_store_full(tmp_path: Path, clock: FakeClock) -> None:
    """SQLITE_FULL (simulated with max_page_count) becomes StoreFull, and the failed write leaves nothing."""
    store = Store.open(tmp_path / "state", now=clock)
    store.create_wave("w1", playbook_name="p", playbook_hash=content_hash("x"))
    store.enroll("w1", ["PC-001"])

    @event.listens_for(store.engine, "connect")
    def _cap(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

    store.engine.dispose()  # new connections get the cap
    with pytest.raises(StoreFull, match=r"disk .* is full"):
        store.save_facts("PC-001", {"blob": "x" * 200_000})
    assert store.latest_facts("PC-001") is None
    store.close()
