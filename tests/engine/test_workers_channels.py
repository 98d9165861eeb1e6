"""The wave coordinator opens each batch's group change (the ``ad-group``/``intune-group`` hook) for the workers:
once per batch, only when every device of the batch is held before its policy step with its lease free, then the
moved devices are due at once; a channel error halts the wave with its reason. The store is real (SQLite), the
visits only move a device's state, and the channel records what it is asked."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from migrator.engine.channels import POLICY_STATE
from migrator.engine.waves import VisitOutcome
from migrator.engine.workers import BatchChannel, Coordinator, Worker, wave_result
from migrator.errors import DirectoryError
from migrator.store import Claim, Store
from tests.engine.test_workers import T0, Clock, make_worker, running_wave

HELD = timedelta(hours=1)  # a held device's recheck: far enough that only a wake brings it back in the test
DEVICES = [f"PC-{i:03}" for i in range(4)]


class Channel:
    """A group channel that remembers the batches it was asked to move and the devices it moved."""

    kind = "ad-group"

    def __init__(self, failure: Exception | None = None) -> None:
        self.calls: list[tuple[int, list[str]]] = []
        self.moved: set[str] = set()
        self.rereads = 0
        self.failure = failure

    def reread_journal(self) -> None:
        self.rereads += 1

    def released(self, device: str) -> bool:
        return device in self.moved

    def start_batch(self, batch: int, devices: Sequence[str]) -> object:
        self.calls.append((batch, list(devices)))
        if self.failure is not None:
            raise self.failure
        self.moved.update(devices)
        return None


def _worker(store: Store, clock: Clock, channel: BatchChannel, visited: list[str]) -> Worker:
    """Visits that walk a device to its policy step and hold it there until the channel moved it, then end it."""

    def visit(claim: Claim) -> VisitOutcome:
        visited.append(claim.device)
        row = store.get_device(claim.device)
        if row.state == "pending":
            store.transition(claim.device, "pending", POLICY_STATE, "test", owner="worker-a")
            row = store.get_device(claim.device)
        if row.state == POLICY_STATE and channel.released(claim.device):
            store.transition(claim.device, POLICY_STATE, "migrated", "test", owner="worker-a")
            return VisitOutcome("migrated")
        return VisitOutcome(POLICY_STATE, next_due=clock.now() + HELD)

    return make_worker(store, clock, visit, channels=lambda _wave: channel)


def _drive(worker: Worker, rounds: int = 40) -> None:
    worker.start()
    quiet = 0
    for _ in range(rounds):
        quiet = 0 if worker.iterate(wait=5.0) else quiet + 1
        if quiet == 3:
            return
    raise AssertionError("the worker never went quiet")


def test_the_coordinator_opens_each_batch_once_and_wakes_its_held_devices(tmp_path: Path) -> None:
    """Each batch's group change is asked for once, with both devices, after both are held; the held devices come
    back at once (not after their hour-long recheck) and the wave completes without the clock moving."""
    clock = Clock()
    store = running_wave(tmp_path, clock, DEVICES, batch_size=2)
    channel = Channel()
    visited: list[str] = []
    worker = _worker(store, clock, channel, visited)
    _drive(worker)
    assert channel.calls == [(0, DEVICES[:2]), (1, DEVICES[2:])]
    assert sorted(visited) == sorted(DEVICES * 2)  # held once, then migrated: twice each
    assert store.get_wave("w").state == "completed" and clock.now() == T0
    assert channel.rereads >= 2
    worker.close()


def test_a_batch_with_a_device_before_its_policy_step_or_leased_is_not_opened(tmp_path: Path) -> None:
    """One device held, the other still pending: no change; the other at its policy step but leased by a visit: no
    change; its lease handed back: the change for both, and both are due now."""
    clock = Clock()
    store = running_wave(tmp_path, clock, DEVICES, batch_size=2)
    channel = Channel()
    coordinator = Coordinator(store, "admin", channels=lambda _wave: channel, now=clock.now)
    coordinator.tick()  # opens batch 1 (releases its devices)
    claims = {c.device for c in store.claim("visitor", 60, 10)}
    assert claims == set(DEVICES[:2])
    store.transition("PC-000", "pending", POLICY_STATE, "test", owner="visitor")
    assert store.finish_claim("PC-000", "visitor", clock.now() + HELD)
    coordinator.tick()
    assert channel.calls == []  # PC-001 is still before its policy step
    store.transition("PC-001", "pending", POLICY_STATE, "test", owner="visitor")
    coordinator.tick()
    assert channel.calls == []  # PC-001's visit still holds its lease
    assert store.finish_claim("PC-001", "visitor", clock.now() + HELD)
    coordinator.tick()
    coordinator.tick()  # moved already: not asked again
    assert channel.calls == [(0, DEVICES[:2])]
    assert {store.get_device(d).due_at for d in DEVICES[:2]} == {T0}
    assert sorted(c.device for c in store.claim("visitor", 60, 10)) == DEVICES[:2]


def test_a_channel_error_halts_the_wave_with_its_reason(tmp_path: Path) -> None:
    """The directory refuses the change: the wave halts (the reason names the batch and the error, as status and
    the recap show it), the devices stay held, and nothing asks the channel again."""
    clock = Clock()
    store = running_wave(tmp_path, clock, DEVICES, batch_size=2)
    channel = Channel(failure=DirectoryError("corp.contoso.com", "insufficient access rights"))
    visited: list[str] = []
    worker = _worker(store, clock, channel, visited)
    _drive(worker)
    result = wave_result(store, "w")
    assert result.state == "halted"
    assert "batch 1 of 2" in result.reason and "insufficient access rights" in result.reason
    assert channel.calls == [(0, DEVICES[:2])]
    assert {store.get_device(d).state for d in DEVICES[:2]} == {POLICY_STATE}
    assert all(store.get_device(d).released_at is None for d in DEVICES[2:])
    worker.close()


def test_a_running_wave_whose_devices_are_not_enrolled_yet_is_not_completed(tmp_path: Path) -> None:
    """The coordinator may see a wave between its creation and its devices' enrolment: it stays running."""
    clock = Clock()
    store = running_wave(tmp_path, clock, DEVICES, enroll=False, batch_size=2)
    coordinator = Coordinator(store, "admin", now=clock.now)
    assert coordinator.coordinate(store.get_wave("w")) == "running"
    assert store.get_wave("w").state == "running"
    store.enroll("w", DEVICES)
    assert coordinator.coordinate(store.get_wave("w")) == "running"
