"""Virtual and scaled clocks: ordered callbacks, sleep advancing time, cancellation."""

from __future__ import annotations

from datetime import timedelta

from migrator.lab.clock import ScaledClock, VirtualClock
from tests.lab.conftest import T0


def test_callbacks_run_in_time_order_and_see_their_time() -> None:
    """Advancing runs due callbacks in order, each at its due time."""
    clock = VirtualClock(T0)
    seen: list[tuple[str, float]] = []
    clock.call_later(20, lambda: seen.append(("b", (clock.now() - T0).total_seconds())))
    clock.call_later(10, lambda: seen.append(("a", (clock.now() - T0).total_seconds())))
    clock.call_later(99, lambda: seen.append(("late", 0)))
    clock.advance(30)
    assert seen == [("a", 10.0), ("b", 20.0)]
    assert clock.now() == T0 + timedelta(seconds=30)
    assert clock.pending() == 1


def test_callbacks_may_schedule_more_and_cancel() -> None:
    """A callback can schedule another within the same advance; a cancelled one never runs."""
    clock = VirtualClock(T0)
    seen: list[str] = []
    clock.call_later(1, lambda: clock.call_later(1, lambda: seen.append("chained")))
    clock.call_later(1.5, lambda: seen.append("cancelled")).cancel()
    clock.sleep(5)
    assert seen == ["chained"]


def test_run_all_stops_at_the_limit() -> None:
    """run_all drains pending callbacks up to a bound of virtual time."""
    clock = VirtualClock(T0)
    seen: list[int] = []
    clock.call_later(3600, lambda: seen.append(1))
    clock.call_later(10 * 86400, lambda: seen.append(2))
    clock.run_all(limit=timedelta(days=1))
    assert seen == [1]


def test_scaled_clock_runs_faster_than_real_time() -> None:
    """A scaled clock maps real time to virtual time by its speed and runs due callbacks on sleep."""
    clock = ScaledClock(T0, speed=3600.0)
    seen: list[int] = []
    clock.call_later(60, lambda: seen.append(1))  # one virtual minute = 1/60 s of real time
    clock.sleep(120)
    assert seen == [1]
    assert clock.now() >= T0 + timedelta(seconds=120)
