"""Workers and the wave coordinator over a real store, with visits that only move the device's state: the canary
first and alone, batches one after another, approval gates, the failure budget, sites, and a coordinator that
stops being replaced by another worker."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from migrator.engine.waves import VisitOutcome
from migrator.engine.wavestore import StoreWaves
from migrator.engine.workers import BATCH_OPEN, BatchOpening, ClaimLeases, Worker, wave_result, waves_ended
from migrator.store import Claim, Store, content_hash

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.moment = T0

    def now(self) -> datetime:
        return self.moment

    def sleep(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


def _devices(n: int) -> list[str]:
    return [f"PC-{i:03}" for i in range(n)]


def running_wave(tmp_path: Path, clock: Clock, devices: list[str], *, enroll: bool = True, **settings: object) -> Store:
    """A store at ``tmp_path`` with wave ``w`` running over ``devices`` (batches of 3, 2 at once unless ``settings``
    say otherwise), its devices enrolled unless ``enroll`` is False."""
    store = Store.open(tmp_path / "state", now=clock.now)
    record = {
        "devices": devices,
        "batch_size": 3,
        "concurrency": 2,
        "canary": 0,
        "max_fail_percent": 10.0,
        "approval": False,
        "windows": [],
        **settings,
    }
    store.create_wave("w", playbook_name="p", playbook_hash=content_hash("x"), settings=record, state="running")
    if enroll:
        store.enroll("w", devices)
    return store


Answer = Callable[[str], str]


def _worker(
    store: Store, clock: Clock, answer: Answer, seen: list[str], *, name: str, sites: tuple[str, ...] = ()
) -> Worker:
    owner = f"worker-{name}"

    def visit(claim: Claim) -> VisitOutcome:
        seen.append(claim.device)
        row = store.get_device(claim.device)
        state = answer(claim.device)
        if row.state != state:
            store.transition(claim.device, row.state, state, "test", owner=owner)
        return VisitOutcome(state)

    return make_worker(store, clock, visit, owner=owner, sites=sites)


def make_worker(store: Store, clock: Clock, visit: Callable[[Claim], VisitOutcome], **options: Any) -> Worker:
    """A worker of ``store`` (``worker-a`` unless ``owner=`` says otherwise), 2 visits at once, leases of 60 s."""
    return Worker(
        store,
        visit,
        owner=options.pop("owner", "worker-a"),
        leases=ClaimLeases(store, ttl_seconds=60),
        clock=clock,
        actor="admin",
        lock=store.coordinator_lock(),
        concurrency=2,
        **options,
    )


def _drive(*workers: Worker, rounds: int = 60) -> None:
    """Loop the workers until none has anything to do twice in a row."""
    quiet = 0
    for worker in workers:
        worker.start()
    for _ in range(rounds):
        busy = [worker.iterate(wait=5.0) for worker in workers]
        quiet = 0 if any(busy) else quiet + 1
        if quiet == 2:
            return
    raise AssertionError("the workers never went quiet")


def _batches(store: Store) -> list[int]:
    return [e.after["devices"] for e in store.audit_entries() if e.action == BATCH_OPEN and isinstance(e.after, dict)]


def test_the_canary_runs_alone_then_the_batches_and_the_wave_completes(tmp_path: Path) -> None:
    """Canary (2) first, alone; then batches of 3, each opened once the one before is through; completed."""
    clock = Clock()
    devices = _devices(8)
    store = running_wave(tmp_path, clock, devices, canary=2)
    seen: list[str] = []
    worker = _worker(store, clock, lambda _d: "migrated", seen, name="a")
    worker.start()
    worker.iterate(wait=5.0)
    assert set(seen) <= set(devices[:2])
    _drive(worker)
    assert sorted(seen) == devices and seen[:2] == devices[:2]
    assert store.get_wave("w").state == "completed"
    assert _batches(store) == [2, 3, 3]
    assert wave_result(store, "w").progress.counts() == {"migrated": 8}
    worker.close()


def test_a_failed_canary_halts_the_wave_and_releases_nothing_more(tmp_path: Path) -> None:
    """A canary device that fails halts the wave with its name; no other device is ever visited."""
    clock = Clock()
    devices = _devices(6)
    store = running_wave(tmp_path, clock, devices, canary=2, max_fail_percent=100.0)  # the budget would halt it first
    seen: list[str] = []
    worker = _worker(store, clock, lambda d: "failed" if d == devices[1] else "migrated", seen, name="a")
    _drive(worker)
    assert sorted(seen) == devices[:2]
    result = wave_result(store, "w")
    assert result.state == "halted" and f"canary failed: {devices[1]} (failed)" in result.reason
    worker.close()


def test_an_approval_gate_holds_the_next_batch_until_approved(tmp_path: Path) -> None:
    """With approvals, the wave stops at awaiting_approval after each batch; `approve` lets the next one open."""
    clock = Clock()
    devices = _devices(6)
    store = running_wave(tmp_path, clock, devices, approval=True)
    seen: list[str] = []
    worker = _worker(store, clock, lambda _d: "migrated", seen, name="a")
    _drive(worker)
    assert sorted(seen) == devices[:3] and store.get_wave("w").state == "awaiting_approval"
    assert waves_ended(store, ["w"], clock, wait=True)()
    StoreWaves(store, "change-manager").approve("w")
    _drive(worker)
    assert sorted(seen) == devices and store.get_wave("w").state == "completed"
    worker.close()


def test_the_failure_budget_halts_the_wave(tmp_path: Path) -> None:
    """Past max_fail_percent among the released devices, the wave halts and no new batch opens."""
    clock = Clock()
    devices = _devices(9)
    store = running_wave(tmp_path, clock, devices, max_fail_percent=20.0)
    seen: list[str] = []
    worker = _worker(store, clock, lambda _d: "failed", seen, name="a")
    _drive(worker)
    assert set(seen) <= set(devices[:3])  # the first batch's: no later batch opened
    result = wave_result(store, "w")
    # Halted at the first failure seen by the coordinator; a visit under way then may have failed since.
    assert result.state == "halted" and result.reason.startswith("failure budget exceeded: ")
    worker.close()


def test_workers_serve_only_their_sites(tmp_path: Path) -> None:
    """A --site paris worker visits paris devices only; the devices of lyon and without a site wait for a worker
    that serves them (here one without --site)."""
    clock = Clock()
    devices = _devices(6)
    store = running_wave(tmp_path, clock, devices, batch_size=6)
    store.set_sites({"PC-000": "paris", "PC-001": "paris", "PC-002": "lyon", "PC-003": "lyon"})
    paris_seen: list[str] = []
    paris = _worker(store, clock, lambda _d: "migrated", paris_seen, name="paris", sites=("paris",))
    _drive(paris)
    assert sorted(paris_seen) == devices[:2]
    assert store.get_wave("w").state == "running"
    everyone_seen: list[str] = []
    everyone = _worker(store, clock, lambda _d: "migrated", everyone_seen, name="all")
    _drive(paris, everyone)
    assert sorted(everyone_seen) == devices[2:]
    assert store.get_wave("w").state == "completed"
    paris.close()
    everyone.close()


def test_another_worker_takes_over_when_the_coordinator_stops(tmp_path: Path) -> None:
    """Worker a coordinates; once it is gone, worker b takes the coordinator's lock and finishes the wave."""
    clock = Clock()
    devices = _devices(6)
    store = running_wave(tmp_path, clock, devices, approval=True)
    seen: list[str] = []
    first = _worker(store, clock, lambda _d: "migrated", seen, name="a")
    second = _worker(store, clock, lambda _d: "migrated", seen, name="b")
    _drive(first, second)
    assert first.leading and not second.leading
    first.close()
    StoreWaves(store, "change-manager").approve("w")
    _drive(second)
    assert second.leading
    assert store.get_wave("w").state == "completed" and sorted(seen) == devices
    second.close()


def test_a_batch_hook_runs_where_the_batch_opens_and_a_failing_hook_keeps_it_closed(tmp_path: Path) -> None:
    """The batch-start hooks are called with the batch before its devices are released; a hook that raises
    leaves the batch closed, and the next tick calls it again."""
    clock = Clock()
    devices = _devices(4)
    store = running_wave(tmp_path, clock, devices, batch_size=2)
    seen: list[str] = []
    worker = _worker(store, clock, lambda _d: "migrated", seen, name="a")
    openings: list[BatchOpening] = []
    fail_once = [True]

    def hook(opening: BatchOpening) -> None:
        openings.append(opening)
        if opening.index == 1 and fail_once[0]:
            fail_once[0] = False
            raise RuntimeError("the directory refused")

    worker.coordinator.on_batch_open.append(hook)
    _drive(worker)
    first, second = tuple(devices[:2]), tuple(devices[2:])
    assert [(o.index, o.devices) for o in openings] == [(0, first), (1, second), (1, second)]  # failed, then again
    assert store.get_wave("w").state == "completed"
    worker.close()


def test_while_visits_run_the_coordinator_ticks_at_most_once_per_interval(tmp_path: Path) -> None:
    """A tick reads every device of the wave: with visits running, loops tick once per ``coordinate_seconds`` (on
    the worker's monotonic clock), not once per loop; a loop with nothing running ticks at once."""
    clock = Clock()
    store = running_wave(tmp_path, clock, _devices(4), batch_size=2)
    gate = threading.Event()
    seconds = [100.0]

    def visit(claim: Claim) -> VisitOutcome:
        gate.wait(30)
        store.transition(claim.device, "pending", "migrated", "test", owner="worker-a")
        return VisitOutcome("migrated")

    worker = make_worker(store, clock, visit, coordinate_seconds=10.0, monotonic=lambda: seconds[0])
    ticks: list[float] = []
    tick = worker.coordinator.tick

    def counted() -> None:
        ticks.append(seconds[0])
        tick()

    worker.coordinator.tick = counted  # type: ignore[method-assign]
    worker.start()
    worker.iterate()  # idle: ticks, opens the first batch and claims it
    for _ in range(5):
        worker.iterate()
    assert ticks == [100.0] and worker.busy
    seconds[0] += 10.0
    worker.iterate()
    assert ticks == [100.0, 110.0]
    gate.set()
    _drive(worker)
    assert store.get_wave("w").state == "completed"
    worker.close()
