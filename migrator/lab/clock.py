"""Simulated time for the lab.

Theory of operation
-------------------
Everything that happens "later" on a simulated device (a user obeying a sign-out prompt after a while, a
scheduled task starting, a VPN dropping) is a callback scheduled on a :class:`SimClock`. Two clocks exist:

- :class:`VirtualClock` (tests, bench): time stands still until someone advances it. ``sleep`` (PowerShell's
  Start-Sleep) advances it, so a script that polls a scheduled task sees the task run without waiting.
- :class:`ScaledClock` (``lab up``, ``demo``): virtual time runs ``speed`` times faster than real time from a
  fixed virtual start; a driver thread runs callbacks as they fall due, and ``sleep`` blocks for the scaled
  real duration.

Callbacks run outside the clock's own lock, in due-time order (ties: scheduling order), and may schedule more.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

Callback = Callable[[], None]


@dataclass(order=True)
class _Entry:
    when: datetime
    seq: int
    callback: Callback = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class Timer:
    """A handle on a scheduled callback."""

    __slots__ = ("_entry",)

    def __init__(self, entry: _Entry) -> None:
        self._entry = entry

    @property
    def when(self) -> datetime:
        return self._entry.when

    def cancel(self) -> None:
        self._entry.cancelled = True


class SimClock:
    """The shared part of both clocks: a heap of callbacks and the rule for running them."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._heap: list[_Entry] = []
        self._seq = itertools.count()
        self._running_due = threading.local()

    def now(self) -> datetime:
        raise NotImplementedError  # pragma: no cover - abstract

    def sleep(self, seconds: float) -> None:
        raise NotImplementedError  # pragma: no cover - abstract

    def call_at(self, when: datetime, callback: Callback) -> Timer:
        entry = _Entry(when, next(self._seq), callback)
        with self._lock:
            heapq.heappush(self._heap, entry)
        return Timer(entry)

    def call_later(self, delay_seconds: float, callback: Callback) -> Timer:
        return self.call_at(self.now() + timedelta(seconds=max(0.0, delay_seconds)), callback)

    def pending(self) -> int:
        with self._lock:
            return sum(1 for e in self._heap if not e.cancelled)

    def next_due(self) -> datetime | None:
        with self._lock:
            self._drop_cancelled()
            return self._heap[0].when if self._heap else None

    def _drop_cancelled(self) -> None:
        while self._heap and self._heap[0].cancelled:
            heapq.heappop(self._heap)

    def _pop_due(self, until: datetime) -> _Entry | None:
        with self._lock:
            self._drop_cancelled()
            if self._heap and self._heap[0].when <= until:
                return heapq.heappop(self._heap)
            return None

    def run_due(self) -> int:
        """Run every callback due by now; returns how many ran."""
        return self._run_until(self.now())

    def _run_until(self, until: datetime) -> int:
        ran = 0
        while (entry := self._pop_due(until)) is not None:
            self._before_callback(entry.when)
            entry.callback()
            ran += 1
        return ran

    def _before_callback(self, when: datetime) -> None:
        """Hook: the virtual clock moves its time to the callback's due time."""


class VirtualClock(SimClock):
    """Time that moves only when advanced (tests and benchmarks)."""

    def __init__(self, start: datetime | None = None) -> None:
        super().__init__()
        self._now = start or datetime(2026, 11, 2, 8, 0, tzinfo=UTC)

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def _before_callback(self, when: datetime) -> None:
        with self._lock:
            self._now = max(self._now, when)

    def advance(self, seconds: float) -> None:
        """Move time forward, running every callback that falls due on the way, in order."""
        with self._lock:
            target = self._now + timedelta(seconds=max(0.0, seconds))
        self._run_until(target)
        with self._lock:
            self._now = max(self._now, target)

    def advance_to(self, when: datetime) -> None:
        self.advance((when - self.now()).total_seconds())

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def run_all(self, limit: timedelta = timedelta(days=30)) -> None:
        """Advance until no callback is pending, or ``limit`` of virtual time has passed."""
        deadline = self.now() + limit
        while (due := self.next_due()) is not None and due <= deadline:
            self.advance_to(due)


class ScaledClock(SimClock):
    """Virtual time running ``speed`` times faster than real time (``lab up`` and the demo)."""

    def __init__(self, start: datetime | None = None, speed: float = 1.0, origin_real: float | None = None) -> None:
        """``origin_real``: the ``time.monotonic()`` reading at which virtual time was ``start`` (default: now).
        The monotonic clock is the machine's, not the process's: clocks in several processes built from one
        :attr:`origin` tell the same time (a lab in several processes, :mod:`migrator.lab.shards`)."""
        super().__init__()
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._start_virtual = start or datetime.now(UTC)
        self._start_real = time.monotonic() if origin_real is None else origin_real
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def origin(self) -> tuple[datetime, float]:
        """(virtual start, its ``time.monotonic()`` reading): what another process needs to tell the same time."""
        return self._start_virtual, self._start_real

    def now(self) -> datetime:
        elapsed = (time.monotonic() - self._start_real) * self.speed
        return self._start_virtual + timedelta(seconds=elapsed)

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds) / self.speed)
        self.run_due()

    def start(self, tick_seconds: float = 0.05) -> None:
        """Run due callbacks on a daemon thread until :meth:`stop`."""
        if self._thread is not None:
            return

        def drive() -> None:
            while not self._stop.wait(tick_seconds):
                self.run_due()

        self._thread = threading.Thread(target=drive, name="lab-clock", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
