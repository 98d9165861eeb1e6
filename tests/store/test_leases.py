"""Lease owners that can be checked: a real second process holds leases and is SIGKILLed, a live holder is never
robbed, a reused pid is recognised, other hosts' leases wait for expiry, and the leases are listed for status."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from migrator.store import LeaseNotHeld, LeaseOwner, Store, UnstorableValue
from tests.store.conftest import FakeClock
from tests.store.test_concurrency import _race

ROOT = Path(__file__).resolve().parents[2]
linux_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="process start times come from /proc")

HOLDER = """
import sys, time
from datetime import datetime, timedelta
from migrator.store import LeaseOwner, Store
now = datetime.fromisoformat(sys.argv[2])
store = Store.open(sys.argv[1], now=lambda: now)
owner = str(LeaseOwner.current())
for device in sys.argv[3:]:
    assert store.acquire(device, owner, 600)
print(owner, flush=True)
time.sleep(120)  # a worker busy on its devices: the test kills it long before
"""


@contextmanager
def lease_holder(location: str, now: datetime, *devices: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Another process, on this host, holding ``devices`` for 600 s at the store time ``now``: (process, owner).
    Killed and reaped on leaving, whatever the test did to it."""
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, location, now.isoformat(), *devices], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert child.stdout is not None
        owner = child.stdout.readline().strip()
        assert owner, "the holder process did not start"
        yield child, owner
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=30)
        if child.stdout is not None:
            child.stdout.close()


@pytest.fixture
def holder(store_location: str, wave: str, clock: FakeClock) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Another process holding PC-001 and PC-002 (see :func:`lease_holder`)."""
    with lease_holder(store_location, clock.current, "PC-001", "PC-002") as held:
        yield held


def test_a_lease_owner_names_this_process_and_reads_back() -> None:
    """current() is this host and pid with a fresh nonce; its text parses back; plain strings are not owners."""
    first, second = LeaseOwner.current(), LeaseOwner.current()
    assert first.pid == os.getpid() and first.host == second.host
    assert first != second and first.nonce != second.nonce  # two owners in one process differ
    assert LeaseOwner.parse(str(first)) == first
    assert str(first).endswith(f"@{first.host}") and len(str(first)) <= 200
    for plain in ("crash-harness-worker", "worker-a", "worker-4242-0badcafe", "bench", ""):
        assert LeaseOwner.parse(plain) is None
    with pytest.raises(UnstorableValue):
        LeaseOwner("has space", 1, None, "0123abcd")
    with pytest.raises(UnstorableValue):
        LeaseOwner("h", 0, None, "0123abcd")


@linux_proc
def test_this_process_is_alive_and_its_start_time_is_read_from_proc() -> None:
    """On Linux an owner carries boot id, pid namespace and start ticks, and this process is alive."""
    owner = LeaseOwner.current()
    assert owner.started is not None and len(owner.started.split(".")) == 3
    assert owner.liveness() == "alive"


@linux_proc
def test_a_sigkilled_holder_on_this_host_loses_its_leases_at_once(
    store: Store, holder: tuple[subprocess.Popen[str], str]
) -> None:
    """While the holder runs its leases are listed alive and nobody takes them; once it is SIGKILLed a new
    owner acquires immediately, with no clock advance, and the listing says whose lease it is now."""
    child, owner = holder
    held = store.leases()
    assert [(r.device, r.owner, r.pid, r.liveness) for r in held] == [
        ("PC-001", owner, child.pid, "alive"),
        ("PC-002", owner, child.pid, "alive"),
    ]
    successor = str(LeaseOwner.current())
    assert not store.acquire("PC-001", successor, 60)  # a live worker is never robbed
    child.kill()
    child.wait(timeout=30)
    assert {r.liveness for r in store.leases()} == {"dead"}
    assert store.acquire("PC-001", successor, 60)
    assert store.get_device("PC-001").lease_owner == successor
    rows = {r.device: r for r in store.leases()}
    assert (rows["PC-001"].pid, rows["PC-001"].liveness) == (os.getpid(), "alive")
    assert rows["PC-002"].liveness == "dead"


@linux_proc
def test_a_killed_holder_not_yet_reaped_counts_as_dead(store: Store, holder: tuple[subprocess.Popen[str], str]) -> None:
    """A zombie (killed, its exit status not yet read by its parent) runs no code: its lease is taken over."""
    child, _owner = holder
    child.kill()  # no wait(): the child stays a zombie until the fixture reaps it
    deadline = time.monotonic() + 30
    while store.leases()[0].liveness != "dead" and time.monotonic() < deadline:
        time.sleep(0.02)  # the kernel makes it a zombie asynchronously
    assert store.acquire("PC-002", str(LeaseOwner.current()), 60)


@linux_proc
def test_a_reused_pid_is_recognised_by_its_start_time(store: Store, holder: tuple[subprocess.Popen[str], str]) -> None:
    """A lease naming a running pid but another start time (the pid was reused) is taken over; one naming the
    running process itself is not."""
    child, owner = holder
    real = LeaseOwner.parse(owner)
    assert real is not None and real.started is not None
    boot, namespace, ticks = real.started.split(".")
    reused = replace(real, started=f"{boot}.{namespace}.{int(ticks) + 1}", nonce="feedf00d")
    assert store.release("PC-001", owner)
    assert store.acquire("PC-001", str(reused), 600)  # as if the earlier owner had had this pid
    assert store.leases()[0].liveness == "dead"
    assert store.acquire("PC-001", str(LeaseOwner.current()), 60)
    assert not store.acquire("PC-002", str(LeaseOwner.current()), 60)
    assert child.poll() is None


@linux_proc
def test_a_lease_from_before_a_reboot_is_dead(store: Store, wave: str) -> None:
    """A lease of this host whose boot id is not the current one: every process of that boot is gone."""
    me = LeaseOwner.current()
    assert me.started is not None
    _boot, namespace, ticks = me.started.split(".")
    before_reboot = replace(me, started=f"{'0' * 12}.{namespace}.{ticks}")
    assert store.acquire("PC-001", str(before_reboot), 600)
    assert store.leases()[0].liveness == "dead"
    assert store.acquire("PC-001", str(me), 60)


def test_another_hosts_lease_is_only_taken_after_expiry(store: Store, wave: str, clock: FakeClock) -> None:
    """A host we cannot look into keeps its lease until it expires, even with a pid that does not run here."""
    elsewhere = LeaseOwner("other-host.example", 4_000_000, None, "0123abcd")
    assert store.acquire("PC-001", str(elsewhere), 60)
    row = store.leases()[0]
    assert (row.host, row.pid, row.liveness) == ("other-host.example", 4_000_000, "other_host")
    mine = str(LeaseOwner.current())
    assert not store.acquire("PC-001", mine, 60)
    clock.advance(61)
    assert store.acquire("PC-001", mine, 60)


def test_a_plain_string_owner_is_unchecked_and_behaves_as_before(store: Store, wave: str, clock: FakeClock) -> None:
    """An owner without identity (the crash harness's fixed name) is listed unchecked and expires as before."""
    assert store.acquire("PC-001", "crash-harness-worker", 60)
    row = store.leases()[0]
    assert (row.owner, row.host, row.pid, row.liveness) == ("crash-harness-worker", None, None, "unchecked")
    assert not store.acquire("PC-001", str(LeaseOwner.current()), 60)
    assert store.acquire("PC-001", "crash-harness-worker", 60)  # the same worker coming back
    clock.advance(61)
    assert store.leases() == []  # expired leases are free: not listed


def test_leases_are_listed_per_wave_and_released_leases_vanish(store: Store, wave: str) -> None:
    """leases(wave) lists that wave's unexpired leases by device name; a release clears every lease column."""
    store.create_wave("w2", playbook_name="p", playbook_hash="0" * 64)
    store.enroll("w2", ["PC-900"])
    me = str(LeaseOwner.current())
    for device in ("PC-002", "PC-900", "PC-001"):
        assert store.acquire(device, me, 60)
    assert [r.device for r in store.leases()] == ["PC-001", "PC-002", "PC-900"]
    assert [(r.device, r.wave) for r in store.leases("w2")] == [("PC-900", "w2")]
    assert store.release("PC-001", me)
    assert [r.device for r in store.leases(wave)] == ["PC-002"]
    assert store.acquire("PC-001", "plain", 60)
    assert store.leases()[0].host is None  # the identified owner's parts went with its release


@linux_proc
def test_workers_racing_for_a_dead_holders_lease_get_one_owner(
    store_location: str, clock: FakeClock, holder: tuple[subprocess.Popen[str], str]
) -> None:
    """Five Store objects taking over the same dead worker's lease at once: exactly one wins."""
    child, _owner = holder
    child.kill()
    child.wait(timeout=30)
    stores = [Store.open(store_location, now=clock) for _ in range(5)]
    try:
        owners = [str(LeaseOwner.current()) for _ in stores]
        results = _race(len(stores), lambda i: stores[i].acquire("PC-001", owners[i], 60))
        assert results.count(True) == 1, results
        assert stores[0].get_device("PC-001").lease_owner == owners[results.index(True)]
    finally:
        for opened in stores:
            opened.close()


def test_a_fenced_write_given_lease_seconds_renews_the_lease_it_checked(
    store: Store, wave: str, clock: FakeClock
) -> None:
    """A transition, a user transition and an intent with ``lease_seconds`` each extend their owner's lease in their
    own transaction (the store reads its clock once per call: ``clock.current`` is that call's now); the transition
    returns the row with its wave's state; without ``lease_seconds`` nothing is renewed."""
    assert store.acquire("PC-001", "worker-a", 30)
    store.add_user("PC-001", "alice")
    first = store.get_device("PC-001").lease_expires_at
    clock.advance(10)
    moved = store.transition("PC-001", "pending", "preflight", "start", owner="worker-a", lease_seconds=30)
    assert (
        moved.lease_expires_at == clock.current + timedelta(seconds=30) == store.get_device("PC-001").lease_expires_at
    )
    assert first is not None and moved.lease_expires_at > first
    assert (moved.state, moved.wave_state) == ("preflight", "planned")
    clock.advance(10)
    store.user_transition("PC-001", "alice", "pending", "identifying", "start", owner="worker-a", lease_seconds=30)
    assert store.get_device("PC-001").lease_expires_at == clock.current + timedelta(seconds=30)
    clock.advance(10)
    store.intent("PC-001", "set_policy", 1, {"p": 1}, key="k1", owner="worker-a", lease_seconds=30)
    renewed = store.get_device("PC-001").lease_expires_at
    assert renewed == clock.current + timedelta(seconds=30)
    clock.advance(10)
    store.transition("PC-001", "preflight", "snapshot", "preflight_done", owner="worker-a")
    assert store.get_device("PC-001").lease_expires_at == renewed


def test_a_renewing_write_never_takes_back_a_lease_taken_over(store: Store, wave: str, clock: FakeClock) -> None:
    """Fencing is unchanged by the renewal: once another worker took over an expired lease, the old holder's renewing
    transition, user transition, intent and renewal-with-read all fail, and nothing of theirs is written."""
    assert store.acquire("PC-001", "worker-a", 30)
    store.add_user("PC-001", "alice")
    clock.advance(31)
    assert store.acquire("PC-001", "worker-b", 30)
    with pytest.raises(LeaseNotHeld, match="worker-a"):
        store.transition("PC-001", "pending", "preflight", "start", owner="worker-a", lease_seconds=30)
    with pytest.raises(LeaseNotHeld, match="worker-a"):
        store.user_transition("PC-001", "alice", "pending", "identifying", "start", owner="worker-a", lease_seconds=30)
    with pytest.raises(LeaseNotHeld, match="worker-a"):
        store.intent("PC-001", "set_policy", 1, {"p": 1}, key="k1", owner="worker-a", lease_seconds=30)
    with pytest.raises(LeaseNotHeld, match="worker-a"):
        store.renew_and_read("PC-001", "worker-a", 30)
    row = store.get_device("PC-001")
    assert (row.state, row.version, row.lease_owner) == ("pending", 0, "worker-b")
    assert store.journal_entries("PC-001") == [] and store.get_user("PC-001", "alice").state == "pending"


def test_renew_and_read_returns_the_row_and_its_waves_state_as_of_the_renewal(
    store: Store, wave: str, clock: FakeClock
) -> None:
    """One transaction renews the lease and reads the device's row with its wave's state (a pause shows at once)."""
    assert store.acquire("PC-001", "worker-a", 30)
    clock.advance(5)
    row = store.renew_and_read("PC-001", "worker-a", 30)
    assert (row.name, row.wave, row.wave_state) == ("PC-001", wave, "planned")
    assert row.lease_expires_at == clock.current + timedelta(seconds=30)
    store.set_wave_state(wave, "paused")
    assert store.renew_and_read("PC-001", "worker-a", 30).wave_state == "paused"
    with pytest.raises(UnstorableValue):
        store.renew_and_read("PC-001", "worker-a", 0)
