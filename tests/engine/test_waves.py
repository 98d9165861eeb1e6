"""The wave engine on its own: batches, canary, failure budget, approval gate, pause, change windows."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from migrator.engine.waves import ChangeWindow, VisitOutcome, WaveRunner, WaveSettings, next_window_start
from migrator.engine.wavestore import StoreWaves
from migrator.errors import InputError
from migrator.store import Store, content_hash

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)  # a Monday


class FakeClock:
    def __init__(self) -> None:
        self.moment = T0

    def now(self) -> datetime:
        return self.moment

    def sleep(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


class MemoryWaveStore:
    def __init__(self) -> None:
        self.states: dict[str, str] = {}
        self.reasons: dict[str, str] = {}
        self.approvals = 0

    def wave_state(self, wave: str) -> str:
        return self.states.get(wave, "planned")

    def set_wave_state(self, wave: str, state: str, reason: str = "") -> None:
        self.states[wave] = state
        self.reasons[wave] = reason

    def approved_batches(self, wave: str) -> int:
        return self.approvals


def _devices(n: int) -> tuple[str, ...]:
    return tuple(f"PC-{i:04d}" for i in range(1, n + 1))


def _runner(
    settings: WaveSettings, answer: Callable[[str], VisitOutcome], store: MemoryWaveStore | None = None
) -> tuple[WaveRunner, MemoryWaveStore, list[str]]:
    seen: list[str] = []
    wave_store = store or MemoryWaveStore()

    def visit(device: str) -> VisitOutcome:
        seen.append(device)
        return answer(device)

    return WaveRunner(settings, wave_store, visit, FakeClock()), wave_store, seen


def test_batches_and_completion() -> None:
    """Every device is visited once; the wave completes with all migrated."""
    runner, store, seen = _runner(WaveSettings("w", _devices(7), batch_size=3), lambda d: VisitOutcome("migrated"))
    result = runner.run()
    assert result.state == "completed" and sorted(seen) == list(_devices(7))
    assert result.progress.counts() == {"migrated": 7} and store.states["w"] == "completed"
    assert WaveSettings("w", _devices(7), batch_size=3, canary=2).batches() == [
        _devices(2),
        _devices(5)[2:],
        _devices(7)[5:],
    ]


def test_failure_budget_halts_the_wave() -> None:
    """Past max_fail_percent no new device starts and the wave is halted with the reason."""
    settings = WaveSettings("w", _devices(20), batch_size=5, concurrency=1, max_fail_percent=20)
    runner, store, seen = _runner(settings, lambda d: VisitOutcome("failed", error="boom"))
    result = runner.run()
    assert result.state == "halted" and "failure budget" in result.reason
    assert len(seen) == 1 and store.states["w"] == "halted"


def test_budget_reason_counts_the_failures_of_visits_under_way() -> None:
    """Visits running when the budget is crossed finish; the halt reason counts them (no '1 of 4' beside
    failed=4)."""
    settings = WaveSettings("w", _devices(8), batch_size=8, concurrency=4, max_fail_percent=20)
    everyone_started = threading.Barrier(4, timeout=10)

    def answer(device: str) -> VisitOutcome:
        everyone_started.wait()
        return VisitOutcome("failed", error="boom")

    runner, store, _seen = _runner(settings, answer)
    result = runner.run()
    assert result.progress.counts() == {"failed": 4}
    assert result.reason == "failure budget exceeded: 4 of 4 started devices failed (max 20%)"
    assert store.reasons["w"] == result.reason


def test_canary_failure_stops_the_wave() -> None:
    """A failed canary device halts the wave before the first batch starts."""
    settings = WaveSettings("w", _devices(10), batch_size=5, canary=2, max_fail_percent=100)

    def answer(device: str) -> VisitOutcome:
        return VisitOutcome("failed" if device == "PC-0002" else "migrated")

    runner, _store, seen = _runner(settings, answer)
    result = runner.run()
    assert result.state == "halted" and "canary failed" in result.reason and "PC-0002" in result.reason
    assert sorted(seen) == ["PC-0001", "PC-0002"]


def test_canary_waits_for_its_users_then_the_wave_goes_on() -> None:
    """A waiting canary device is re-visited when due; once it migrates, the batches follow."""
    settings = WaveSettings("w", _devices(4), batch_size=2, canary=1)
    visits: dict[str, int] = {}

    def answer(device: str) -> VisitOutcome:
        visits[device] = visits.get(device, 0) + 1
        if device == "PC-0001" and visits[device] == 1:
            return VisitOutcome("waiting_for_user", next_due=T0 + timedelta(hours=1))
        return VisitOutcome("migrated")

    runner, _store, _seen = _runner(settings, answer)
    assert runner.run().state == "completed"
    assert visits["PC-0001"] == 2 and runner.clock.now() >= T0 + timedelta(hours=1)


def test_approval_gate_stops_between_batches_and_resumes() -> None:
    """With approval on, the wave stops after each batch until an approval is recorded."""
    settings = WaveSettings("w", _devices(4), batch_size=2, approval=True)
    store = MemoryWaveStore()
    runner, _, seen = _runner(settings, lambda d: VisitOutcome("migrated"), store)
    result = runner.run()
    assert result.state == "awaiting_approval" and "migrate approve" not in result.reason
    assert sorted(seen) == ["PC-0001", "PC-0002"]
    store.approvals = 1
    resumed, _, seen_again = _runner(settings, lambda d: VisitOutcome("migrated"), store)
    resumed.progress.states.update(dict.fromkeys(("PC-0001", "PC-0002"), "migrated"))
    assert resumed.run().state == "completed" and sorted(seen_again) == ["PC-0003", "PC-0004"]


def test_pause_starts_nothing_new() -> None:
    """A paused wave visits no further device; the result says paused."""
    settings = WaveSettings("w", _devices(6), batch_size=2, concurrency=1)
    store = MemoryWaveStore()

    def answer(device: str) -> VisitOutcome:
        if device == "PC-0002":
            store.states["w"] = "paused"  # an operator ran `migrator pause` meanwhile
        return VisitOutcome("migrated")

    runner, _, seen = _runner(settings, answer, store)
    assert runner.run().state == "paused"
    assert seen == ["PC-0001", "PC-0002"]


def test_waiting_devices_do_not_block_later_batches() -> None:
    """A device waiting for its user does not hold back the next batch; it is finished later."""
    settings = WaveSettings("w", _devices(4), batch_size=2)
    order: list[str] = []
    visits: dict[str, int] = {}

    def answer(device: str) -> VisitOutcome:
        order.append(device)
        visits[device] = visits.get(device, 0) + 1
        if device == "PC-0001" and visits[device] == 1:
            return VisitOutcome("waiting_for_user", next_due=T0 + timedelta(days=1))
        return VisitOutcome("migrated")

    runner, _, _ = _runner(settings, answer)
    assert runner.run().state == "completed"
    assert order.index("PC-0003") < len(order) - 1 and order[-1] == "PC-0001"


def test_a_due_device_is_visited_again_before_the_rest_of_its_batch() -> None:
    """One worker, one batch of 6: PC-0001 waits 10 minutes; each visit takes 5 minutes of the clock. Once it is
    due, its second visit comes before the remaining new devices, not after the whole batch; never two at once."""
    clock = FakeClock()
    seen: list[str] = []
    running: set[str] = set()

    def visit(device: str) -> VisitOutcome:
        assert device not in running
        running.add(device)
        seen.append(device)
        clock.sleep(300)
        running.discard(device)
        if device == "PC-0001" and seen.count(device) == 1:
            return VisitOutcome("waiting_for_users", next_due=clock.now() + timedelta(minutes=10))
        return VisitOutcome("migrated")

    runner = WaveRunner(WaveSettings("w", _devices(6), batch_size=6, concurrency=1), MemoryWaveStore(), visit, clock)
    result = runner.run()
    assert result.state == "completed" and result.progress.counts() == {"migrated": 6}
    assert seen == ["PC-0001", "PC-0002", "PC-0003", "PC-0001", "PC-0004", "PC-0005", "PC-0006"]


def test_concurrency_is_honoured_beyond_the_default_thread_pool() -> None:
    """concurrency=12 means 12 visits at once, whatever the machine's core count (asyncio.to_thread's default
    pool would allow min(32, cores + 4)): twelve visits that each wait for all twelve all finish."""
    together = threading.Barrier(12, timeout=10)

    def visit(device: str) -> VisitOutcome:
        together.wait()
        return VisitOutcome("migrated")

    settings = WaveSettings("w", _devices(12), batch_size=12, concurrency=12)
    result = WaveRunner(settings, MemoryWaveStore(), visit, FakeClock()).run()
    assert result.state == "completed" and result.progress.counts() == {"migrated": 12}


def test_change_windows() -> None:
    """Points of no return only inside a window; the next opening is found; bad windows are input errors."""
    window = ChangeWindow.parse("Mon-Fri 18:00-23:00")
    overnight = ChangeWindow.parse("daily 22:00-06:00")
    assert not window.contains(T0) and window.contains(T0.replace(hour=19))
    assert overnight.contains(T0.replace(hour=5)) and not overnight.contains(T0.replace(hour=12))
    assert next_window_start([window], T0) == T0.replace(hour=18)
    saturday = T0 + timedelta(days=5)
    assert next_window_start([window], saturday) == T0.replace(hour=18) + timedelta(days=7)
    runner, _, _ = _runner(WaveSettings("w", (), windows=(window,)), lambda d: VisitOutcome("migrated"))
    assert not runner.may_pass_point_of_no_return()
    with pytest.raises(InputError, match="change window"):
        ChangeWindow.parse("whenever")


def test_store_backed_wave_state_approvals_and_pause(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Approvals and pauses go to the store and its audit log; unknown waves are input errors."""
    store = Store.open(tmp_path)
    store.create_wave(
        "w1", playbook_name="to-cloud-kerberos", playbook_hash=content_hash("name: p"), change_ticket="CHG1"
    )
    waves = StoreWaves(store, "LAB\\operator")
    waves.set_wave_state("w1", "awaiting_approval", "batch 2 needs approval")
    assert waves.approve("w1") == 1 and waves.wave_state("w1") == "running"
    assert waves.approved_batches("w1") == 1
    waves.pause("w1")
    assert waves.wave_state("w1") == "paused"
    waves.resume("w1")
    assert waves.wave_state("w1") == "running"
    actions = [e.action for e in store.audit_entries()]
    assert actions.count("wave.approve") == 1 and "wave.paused" in actions
    assert store.verify_audit().ok
    with pytest.raises(InputError, match="no wave named 'nope'"):
        waves.approve("nope")


def test_a_wave_is_completed_only_when_every_device_is_settled() -> None:
    """A device parked in error or unreachable keeps the wave open (running, with the count per state) for
    `migrator resume`; stalled and final devices settle it."""
    answers = {"PC-0001": "migrated", "PC-0002": "stalled", "PC-0003": "unreachable", "PC-0004": "error"}
    settings = WaveSettings("w", _devices(4), batch_size=4, max_fail_percent=100)
    runner, store, _ = _runner(settings, lambda d: VisitOutcome(answers[d], error=f"{d} says why"))
    result = runner.run()
    assert result.state == "running" and store.states["w"] == "running"
    assert "2 devices not settled (1 error, 1 unreachable)" in result.reason and "migrator resume" in result.reason
    settled = {"PC-0003": "migrated", "PC-0004": "ineligible"}
    runner, store, _ = _runner(settings, lambda d: VisitOutcome(settled.get(d, answers[d])))
    assert runner.run().state == "completed"


def test_unreachable_devices_never_count_against_the_failure_budget() -> None:
    """Devices that wait for the device or are parked unreachable are not failures; devices in error are."""
    settings = WaveSettings("w", _devices(10), batch_size=10, concurrency=1, max_fail_percent=10)

    def answer(device: str) -> VisitOutcome:
        if device in ("PC-0001", "PC-0002"):
            return VisitOutcome("unreachable", error="connection refused")
        return VisitOutcome("migrated")

    runner, _store, seen = _runner(settings, answer)
    result = runner.run()
    assert result.state == "running" and len(seen) == 10 and result.progress.failed == 0

    runner, _store, seen = _runner(settings, lambda d: VisitOutcome("error", error="internal error: KeyError"))
    assert runner.run().state == "halted" and len(seen) == 1


def test_a_visit_that_raises_is_recorded_as_an_error_not_a_failure() -> None:
    """An exception out of a visit (the store failing, a bug outside the machine) shows as `error` with its
    message, counts against the budget, and is logged; never as a plausible `failed`."""
    settings = WaveSettings("w", _devices(2), batch_size=2, max_fail_percent=100)

    def answer(device: str) -> VisitOutcome:
        raise RuntimeError(f"{device}: the store is gone")

    runner, _store, _seen = _runner(settings, answer)
    result = runner.run()
    assert result.progress.states == {"PC-0001": "error", "PC-0002": "error"}
    assert result.progress.errors["PC-0001"] == "RuntimeError: PC-0001: the store is gone"
    assert result.state == "running"


def test_the_batch_hook_runs_once_per_batch_after_preflight_and_before_the_policy_step() -> None:
    """A device held before its policy step waits for its batch's hook, which runs once with the whole batch after
    every device of it was visited; the held devices then go on at once. A device that reaches its policy step
    only later (unreachable at first) gets the hook alone. An error from the hook halts the wave."""
    moved: set[str] = set()
    calls: list[tuple[int, tuple[str, ...]]] = []
    late = "PC-0002"
    attempts: dict[str, int] = {}

    def visit(device: str) -> VisitOutcome:
        attempts[device] = attempts.get(device, 0) + 1
        if device == late and attempts[device] == 1:
            return VisitOutcome("waiting_for_device", next_due=clock.now() + timedelta(hours=1))
        if device not in moved:  # held before refresh_policy, as AdGroupChannel.hold does
            return VisitOutcome("policy", next_due=clock.now() + timedelta(hours=1))
        return VisitOutcome("migrated")

    def hook(index: int, devices: object) -> None:
        batch = tuple(devices)  # type: ignore[call-overload]
        calls.append((index, batch))
        moved.update(d for d in batch if attempts.get(d) and not (d == late and attempts[d] == 1))

    clock = FakeClock()
    settings = WaveSettings("w", _devices(6), batch_size=3, concurrency=2)
    runner = WaveRunner(settings, MemoryWaveStore(), visit, clock, on_batch_start=hook)
    result = runner.run()
    assert result.state == "completed", result.reason
    assert calls[:2] == [(0, _devices(3)), (1, _devices(6)[3:])]
    assert calls[2:] == [(0, (late,))]  # the straggler, alone, with its batch's index
    assert all(attempts[d] == 2 for d in _devices(6) if d != late) and attempts[late] == 3

    def failing(_index: int, _devices: object) -> None:
        raise InputError("group 'GG-WHfB-CloudTrust' does not exist in the domain corp.contoso.com")

    halted = WaveRunner(settings, MemoryWaveStore(), visit, FakeClock(), on_batch_start=failing).run()
    assert halted.state == "halted" and "batch 1 of 2: group 'GG-WHfB-CloudTrust'" in halted.reason
