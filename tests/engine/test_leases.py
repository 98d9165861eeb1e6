"""The lease heartbeat: renewed every third of the TTL while held, stopped on release, dropped when lost, kept
through a busy store. Time is injected (a store clock and the keeper's own beats); nothing waits on the wall."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from migrator.engine.leases import DEFAULT_LEASE_SECONDS, LeaseKeeper
from migrator.errors import InputError
from migrator.store import LeaseOwner, Store, content_hash
from tests.engine.labkit import (
    cooperative,
    make_fleet,
    open_store,
    playbook,
    running_lab,
    sign_everyone_in,
    visit_device,
)
from tests.store.conftest import FakeClock
from tests.store.test_leases import lease_holder


class Beats:
    """The keeper's time: each wait() blocks until the test lets one beat pass, and only then moves on."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []
        self._passed = 0
        self._cond = threading.Condition()

    def monotonic(self) -> float:
        return self.now

    def wait(self, seconds: float) -> None:
        with self._cond:
            self.waits.append(seconds)
            number = len(self.waits)
            self._cond.notify_all()
            assert self._cond.wait_for(lambda: self._passed >= number, timeout=30)
            self.now += seconds

    def step(self, keeper: LeaseKeeper) -> None:
        """Let the waiting heartbeat go on; return once it waits again or has ended."""
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.waits) > self._passed, timeout=30), "no beat is waiting"
            self._passed += 1
            self._cond.notify_all()
            deadline = time.monotonic() + 30
            while len(self.waits) <= self._passed and keeper.running:
                assert time.monotonic() < deadline, "the heartbeat neither waited again nor ended"
                self._cond.wait(0.01)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[Store]:
    opened = Store.open(tmp_path / "state", now=clock, busy_timeout_ms=50)
    opened.create_wave("w1", playbook_name="p", playbook_hash=content_hash("x"))
    opened.enroll("w1", ["PC-001", "PC-002"])
    yield opened
    opened.close()


@pytest.fixture
def beats() -> Beats:
    return Beats()


@pytest.fixture
def keeper(store: Store, beats: Beats) -> Iterator[LeaseKeeper]:
    made = LeaseKeeper(store, ttl_seconds=60, monotonic=beats.monotonic, wait=beats.wait)
    yield made
    for device in made.held():
        made.release(device)
    while made.running:  # let a heartbeat still waiting see that nothing is held
        beats.step(made)


def test_the_heartbeat_renews_every_held_lease_every_third_of_the_ttl(
    store: Store, clock: FakeClock, beats: Beats, keeper: LeaseKeeper
) -> None:
    """Two leases taken at t0 for 60 s, a beat at t0+50 s: both now last until t0+110 s, past their first expiry."""
    first, second = str(LeaseOwner.current()), str(LeaseOwner.current())
    assert keeper.acquire("PC-001", first) and keeper.acquire("PC-002", second)
    assert keeper.running and keeper.held() == {"PC-001": first, "PC-002": second}
    start = clock.current
    clock.advance(50)
    beats.step(keeper)
    assert beats.waits[:2] == [20.0, 20.0]  # ttl / 3
    for device in ("PC-001", "PC-002"):
        expires = store.get_device(device).lease_expires_at
        assert expires is not None and (expires - start).total_seconds() > 110
    clock.advance(30)  # t0 + 80 s: without the heartbeat both leases would have expired
    assert not store.acquire("PC-001", "someone-else", 60)


def test_a_released_device_is_no_longer_renewed_and_the_heartbeat_ends_with_the_last(
    store: Store, clock: FakeClock, beats: Beats, keeper: LeaseKeeper
) -> None:
    """release() gives the lease up at once and the next beat leaves it alone; with nothing held the thread ends."""
    owner = str(LeaseOwner.current())
    assert keeper.acquire("PC-001", owner) and keeper.acquire("PC-002", owner)
    assert keeper.release("PC-001")
    assert store.get_device("PC-001").lease_owner is None
    assert not keeper.release("PC-001")  # twice: nothing left to give up
    clock.advance(10)
    beats.step(keeper)
    assert keeper.held() == {"PC-002": owner} and store.get_device("PC-001").lease_owner is None
    assert keeper.release("PC-002")
    beats.step(keeper)
    assert not keeper.running
    assert keeper.acquire("PC-001", owner) and keeper.running  # used again: the heartbeat starts again


def test_a_lease_lost_to_another_worker_is_dropped(
    store: Store, clock: FakeClock, beats: Beats, keeper: LeaseKeeper
) -> None:
    """An expired lease taken by another worker is not taken back: the beat drops it and the heartbeat ends."""
    mine = str(LeaseOwner.current())
    assert keeper.acquire("PC-001", mine)
    clock.advance(61)
    assert store.acquire("PC-001", "another-worker", 60)
    beats.step(keeper)
    assert keeper.held() == {} and not keeper.running
    assert store.get_device("PC-001").lease_owner == "another-worker"
    assert not keeper.release("PC-001")


def test_a_busy_store_delays_a_beat_and_the_lease_is_kept(
    tmp_path: Path, store: Store, clock: FakeClock, beats: Beats, keeper: LeaseKeeper
) -> None:
    """A beat that finds the database locked keeps the device and renews it at the next beat."""
    owner = str(LeaseOwner.current())
    assert keeper.acquire("PC-001", owner)
    before = store.get_device("PC-001").lease_expires_at
    blocker = sqlite3.connect(tmp_path / "state" / "migrator.db", isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        clock.advance(20)
        beats.step(keeper)
        assert keeper.held() == {"PC-001": owner}
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert store.get_device("PC-001").lease_expires_at == before
    clock.advance(20)
    beats.step(keeper)
    after = store.get_device("PC-001").lease_expires_at
    assert before is not None and after is not None and after > before


def test_renew_all_is_one_beat_and_the_keeper_releases_what_it_holds_on_exit(store: Store, clock: FakeClock) -> None:
    """Without a thread in the way: renew_all() returns the new expiries; leaving the context releases all."""
    owner = str(LeaseOwner.current())
    with LeaseKeeper(store, ttl_seconds=30) as keeper:
        assert keeper.interval == 10.0
        assert keeper.acquire("PC-001", owner)
        clock.advance(5)
        expiries = keeper.renew_all()
        assert list(expiries) == ["PC-001"]
        assert store.get_device("PC-001").lease_expires_at == expiries["PC-001"]
    assert store.get_device("PC-001").lease_owner is None
    assert store.leases() == []


def test_another_live_workers_lease_is_not_acquired(store: Store) -> None:
    """acquire() is the store's: a lease held by a live worker is refused and nothing is held or beating."""
    keeper = LeaseKeeper(store)
    assert keeper.ttl_seconds == DEFAULT_LEASE_SECONDS == 60
    assert store.acquire("PC-001", str(LeaseOwner.current()), 60)
    assert not keeper.acquire("PC-001", str(LeaseOwner.current()))
    assert keeper.held() == {} and not keeper.running


def test_a_ttl_must_be_positive(store: Store) -> None:
    with pytest.raises(InputError, match="positive"):
        LeaseKeeper(store, ttl_seconds=0)


def test_a_release_wakes_the_real_heartbeat_so_it_ends(store: Store) -> None:
    """With the default wait, releasing the last lease ends the thread without waiting out the 20 min interval."""
    keeper = LeaseKeeper(store, ttl_seconds=3600)
    assert keeper.acquire("PC-001", str(LeaseOwner.current())) and keeper.running
    assert keeper.release("PC-001")
    deadline = time.monotonic() + 30
    while keeper.running:
        assert time.monotonic() < deadline, "the heartbeat did not end after the last release"
        time.sleep(0.01)


@pytest.mark.integration
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="process start times come from /proc")
def test_a_sigkilled_workers_device_is_visited_at_once(tmp_path: Path) -> None:
    """A live worker in another process keeps its device (the visit is busy); once it is SIGKILLed the next visit
    takes the lease over and moves the device on, without waiting for the lease to expire."""
    fleet = cooperative(make_fleet(2, 5, "key=0,cert=100,cloud=0,none=0"))
    with running_lab(fleet, tmp_path / "lab") as kit:
        sign_everyone_in(kit)
        book = playbook()
        name = fleet.devices[0].name
        store = open_store(tmp_path / "state", kit, book, [name])
        with lease_holder(str(tmp_path / "state"), kit.now(), name) as (worker, _owner):
            keeper = LeaseKeeper(store)
            assert visit_device(kit, store, book, name, leases=keeper).busy
            assert [(r.pid, r.liveness) for r in store.leases()] == [(worker.pid, "alive")]
            worker.kill()
            worker.wait(timeout=30)
            result = visit_device(kit, store, book, name, leases=keeper)
        assert not result.busy and result.steps_run > 0
        assert store.get_device(name).state != "pending"
        assert keeper.held() == {} and store.leases() == []  # the visit released its lease
        store.close()
