"""Waves: batches of devices migrated with bounded concurrency, a canary, a failure budget, approvals, windows.

Theory of operation
-------------------
A wave is a named selection of devices (inventory groups, names, or a percentage of the remaining fleet) and
the settings below. :class:`WaveRunner` drives it:

1. The **canary** (the first ``canary`` devices, if any) runs alone and must fully succeed — every canary device
   ``migrated``, ``already_cloud`` or ``ineligible`` — before anything else starts; a canary failure (or a
   canary device that stalls) halts the wave.
2. The rest runs in **batches** of ``batch_size``. Within a batch at most ``concurrency`` device visits run at
   once (asyncio + a worker thread per visit: transports are synchronous). A batch is *through* when none of its
   devices is still active: each is final, parked, or waiting for a person or a domain controller — waiting
   devices are re-visited when due, in the background, while later batches proceed.
   Once the batch's devices have been visited up to their policy step (preflight done; a policy channel that
   acts per batch holds them before it), ``on_batch_start(index, devices)`` runs once for the batch (the
   ``ad-group`` channel moves the batch's computer accounts between GPO filter groups there) and the held
   devices go on at once; a device that reaches its policy step later gets the hook alone. An error from the
   hook halts the wave, and ``migrator resume`` calls it again.
3. After each batch, an **approval gate** (``approval``): the wave stops at ``awaiting_approval`` until
   ``migrator approve`` records the approval for the next batch; ``migrator resume`` then goes on.
4. The **failure budget**: once the failed share of the started devices exceeds ``max_fail_percent`` the wave
   *halts*: no new device starts; visits already running finish their current step safely.
5. **Pause** (``migrator pause``) is read from the store before every visit: no new visit starts, and the
   running ones stop at their next safe point (the driver asks :meth:`WaveRunner.should_stop`).
6. **Change windows**: outside every window no point-of-no-return step may run; the driver asks
   :meth:`WaveRunner.may_pass_point_of_no_return` and parks the user until the window opens. Waiting is fine.

The engine knows devices only by name and the driver's :class:`VisitOutcome`; all persistence goes through the
store (wave state, approvals), so a killed run is picked up by ``migrator resume``.
"""

from __future__ import annotations

import asyncio
import heapq
import math
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Literal, Protocol

from migrator.errors import InputError, MigratorError
from migrator.logs import get_logger
from migrator.machine.table import DEVICE_ACTIVE, DEVICE_SETTLED, DEVICE_SUCCESS

# What a wave counts, from the machine's table: settled devices need nothing more from this wave (final, or parked
# for a person); failed and error devices count against the failure budget (unreachable ones never do).
SUCCESS = frozenset(DEVICE_SUCCESS)
SETTLED = frozenset(DEVICE_SETTLED)
FAILED = "failed"
ERROR = "error"
AGAINST_BUDGET = frozenset({FAILED, ERROR})

WaveState = Literal["planned", "running", "awaiting_approval", "paused", "halted", "completed"]

_DAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}


@dataclass(frozen=True)
class ChangeWindow:
    """A weekly window, e.g. ``Mon-Fri 18:00-23:00`` (UTC unless the times carry an offset elsewhere)."""

    days: frozenset[int]
    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> ChangeWindow:
        """``"Mon-Fri 18:00-23:00"``, ``"Sat 00:00-24:00"``, ``"daily 20:00-06:00"`` (overnight allowed)."""
        try:
            day_part, time_part = text.strip().split()
            start_text, end_text = time_part.split("-")
            if day_part.casefold() == "daily":
                days = frozenset(range(7))
            elif "-" in day_part:
                first, last = (_DAYS[p[:3].casefold()] for p in day_part.split("-"))
                days = frozenset((first + i) % 7 for i in range((last - first) % 7 + 1))
            else:
                days = frozenset(_DAYS[p[:3].casefold()] for p in day_part.split(","))
            start = time.fromisoformat(start_text)
            end = time.max if end_text == "24:00" else time.fromisoformat(end_text)
        except (ValueError, KeyError) as err:
            raise InputError(
                f"change window {text!r}: expected 'Mon-Fri 18:00-23:00', 'Sat,Sun 00:00-24:00' or "
                f"'daily 20:00-06:00' ({err})"
            ) from None
        return cls(days, start, end)

    def contains(self, moment: datetime) -> bool:
        clock = moment.timetz().replace(tzinfo=None)
        if self.start <= self.end:
            return moment.weekday() in self.days and self.start <= clock <= self.end
        # Overnight: the part after midnight belongs to the previous day's window.
        if clock >= self.start:
            return moment.weekday() in self.days
        return clock <= self.end and (moment.weekday() - 1) % 7 in self.days


def in_any_window(windows: Sequence[ChangeWindow], moment: datetime) -> bool:
    return not windows or any(w.contains(moment) for w in windows)


def next_window_start(windows: Sequence[ChangeWindow], moment: datetime) -> datetime | None:
    """The first minute from ``moment`` on that lies in a window (None without windows)."""
    if not windows:
        return None
    probe = moment.replace(second=0, microsecond=0)
    for _ in range(8 * 24 * 60):  # a week and a day of minutes is enough for weekly windows
        if in_any_window(windows, probe):
            return probe
        probe += timedelta(minutes=1)
    return None


@dataclass(frozen=True)
class WaveSettings:
    name: str
    devices: tuple[str, ...]  # the resolved selection, in order
    batch_size: int = 50
    concurrency: int = 16
    canary: int = 0
    max_fail_percent: float = 10.0
    change_ticket: str | None = None
    approval: bool = False  # an approval gate between batches
    windows: tuple[ChangeWindow, ...] = ()

    def batches(self) -> list[tuple[str, ...]]:
        """Canary first (if any), then the rest in batches of ``batch_size``."""
        rest = list(self.devices)
        out: list[tuple[str, ...]] = []
        if self.canary > 0:
            out.append(tuple(rest[: self.canary]))
            rest = rest[self.canary :]
        size = max(1, self.batch_size)
        out.extend(tuple(rest[i : i + size]) for i in range(0, len(rest), size))
        return out


@dataclass(frozen=True)
class VisitOutcome:
    """What one visit of a device ended with (the driver's answer)."""

    state: str
    next_due: datetime | None = None  # waiting devices: when to look again
    error: str | None = None


class Clock(Protocol):
    def now(self) -> datetime: ...

    def sleep(self, seconds: float) -> None: ...


class WaveStore(Protocol):
    """What the engine needs from the store: the wave's state and approvals (shared across processes)."""

    def wave_state(self, wave: str) -> str: ...

    def set_wave_state(self, wave: str, state: WaveState, reason: str = "") -> None: ...

    def approved_batches(self, wave: str) -> int:
        """How many batch gates have been approved (``migrator approve`` adds one)."""


Visit = Callable[[str], VisitOutcome]
# Called once a batch's devices have been visited up to their policy step, before it: (batch index in the wave,
# its devices still to migrate); and for a single device that reaches its policy step later. A policy channel
# that acts per batch on the control plane hooks in here (:meth:`migrator.engine.channels.AdGroupChannel.
# start_batch`, with its ``hold`` keeping the devices before the step); a MigratorError from it halts the wave.
BatchStart = Callable[[int, Sequence[str]], object]
POLICY_STATE = "policy"  # the machine's state where the policy step runs
HELD_RECHECK = 60.0  # seconds: a device held for its batch's hook is looked at again no sooner


@dataclass
class WaveProgress:
    """Live counts for progress displays and the recap."""

    states: dict[str, str] = field(default_factory=dict)  # device -> last known state
    waiting: dict[str, datetime] = field(default_factory=dict)  # device -> when to visit it again
    errors: dict[str, str] = field(default_factory=dict)
    started: set[str] = field(default_factory=set)
    batch: int = 0
    batches: int = 0

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for state in self.states.values():
            out[state] = out.get(state, 0) + 1
        return dict(sorted(out.items()))

    @property
    def failed(self) -> int:
        """Devices that count against the failure budget: failed, or parked in error (a bug)."""
        return sum(1 for s in self.states.values() if s in AGAINST_BUDGET)


@dataclass(frozen=True)
class WaveResult:
    wave: str
    state: WaveState
    reason: str
    progress: WaveProgress


class WaveRunner:
    """Runs one wave to completion, a halt, a pause or an approval gate (see the module docstring)."""

    def __init__(
        self,
        settings: WaveSettings,
        store: WaveStore,
        visit: Visit,
        clock: Clock,
        *,
        on_change: Callable[[str, VisitOutcome], None] | None = None,
        wait_for_waiting: bool = True,
        max_idle_sleep: float = 3600.0,
        on_batch_start: BatchStart | None = None,
    ) -> None:
        self.settings = settings
        self.on_batch_start = on_batch_start
        self.store = store
        self.visit = visit
        self.clock = clock
        self.on_change = on_change
        self.wait_for_waiting = wait_for_waiting
        self.max_idle_sleep = max_idle_sleep
        self.progress = WaveProgress()
        self.on_end: list[Callable[[], None]] = []  # run when run() returns (close what the visits kept open)
        self.on_idle: list[Callable[[], None]] = []  # run before the wave sleeps until its next due device
        self._halt_reason = ""
        self._budget_halt = False  # the halt is the failure budget's (its reason is rebuilt from final counts)
        self._due: list[tuple[datetime, str]] = []  # waiting devices: (next due, name)
        self._in_flight: set[str] = set()  # being visited now
        self._visits: ThreadPoolExecutor | None = None  # run_async's threads, one per concurrent visit
        self._batch_of: dict[str, int] = {}  # device -> its batch's index
        self._ready_batches: set[int] = set()  # batches whose devices were all visited up to their policy step
        self._just_hooked: set[str] = set()  # held devices visited again right after their batch's hook

    # ---- questions the driver asks -----------------------------------------------------------------------

    def should_stop(self, wave_state: str | None = None) -> bool:
        """True once the wave is paused or halted: finish the current step, start nothing new. ``wave_state``: the
        wave's state as the caller has just read it (a visit reads it with its lease check, before each step);
        None: read here."""
        if self._halt_reason:
            return True
        return (wave_state if wave_state is not None else self.store.wave_state(self.settings.name)) == "paused"

    def may_pass_point_of_no_return(self, moment: datetime | None = None) -> bool:
        return in_any_window(self.settings.windows, moment or self.clock.now())

    def next_window(self) -> datetime | None:
        return next_window_start(self.settings.windows, self.clock.now())

    # ---- the run ---------------------------------------------------------------------------------------

    def _record(self, device: str, outcome: VisitOutcome) -> None:
        self.progress.states[device] = outcome.state
        if outcome.error:
            self.progress.errors[device] = outcome.error
        # A visit that ends with a time to come back waits (for a person, a DC, a policy, a busy lease),
        # whatever the machine calls its state; one without is final or parked.
        if outcome.state not in SETTLED and outcome.next_due is not None:
            self.progress.waiting[device] = outcome.next_due
            heapq.heappush(self._due, (outcome.next_due, device))
        else:
            self.progress.waiting.pop(device, None)
        if self.on_change is not None:
            self.on_change(device, outcome)

    def _budget_reason(self) -> str:
        return (
            f"failure budget exceeded: {self.progress.failed} of {len(self.progress.started)} started "
            f"devices failed (max {self.settings.max_fail_percent:g}%)"
        )

    def _halted(self) -> WaveResult:
        """Record and return the halt. A budget halt's counts are taken now: visits under way when the budget
        was crossed may have failed since (a reason saying 1 failed beside failed=2 would mislead)."""
        if self._budget_halt:
            self._halt_reason = self._budget_reason()
        name = self.settings.name
        self.store.set_wave_state(name, "halted", self._halt_reason)
        return WaveResult(name, "halted", self._halt_reason, self.progress)

    def _over_budget(self) -> bool:
        started = len(self.progress.started)
        if started == 0:
            return False
        return 100.0 * self.progress.failed / started > self.settings.max_fail_percent

    async def _visit_all(self, devices: Sequence[str]) -> None:
        """Visit ``devices`` with at most ``concurrency`` at once. Between two of them a worker first takes any
        waiting device whose time has come: a user who signed in is verified within the recheck interval, not
        after the rest of a large batch (and its runspace pool is still open)."""
        queue = deque(devices)

        async def visit_one(device: str) -> None:
            self.progress.started.add(device)
            self._in_flight.add(device)
            just_hooked = device in self._just_hooked
            self._just_hooked.discard(device)
            if self.on_batch_start is not None and self.progress.states.get(device) == POLICY_STATE and not just_hooked:
                batch = self._batch_of.get(device, -1)
                if batch >= 0 and batch not in self._ready_batches:
                    # Held before its policy step while the rest of its batch is preflighted: its batch's hook
                    # comes first (one change for the batch), then the held devices are visited at once.
                    self._in_flight.discard(device)
                    later = self.clock.now() + timedelta(seconds=HELD_RECHECK)
                    self.progress.waiting[device] = later
                    heapq.heappush(self._due, (later, device))
                    return
                # Held after its batch's hook ran (unreachable then, say): the hook for this device alone (it
                # does nothing for a device already moved).
                try:
                    await asyncio.to_thread(self.on_batch_start, self._batch_of.get(device, -1), (device,))
                except MigratorError as err:
                    self._in_flight.discard(device)
                    if not self._halt_reason:
                        self._halt_reason = f"{device}: {err}"
                    return
            try:
                outcome = await asyncio.get_running_loop().run_in_executor(self._visits, self.visit, device)
            except Exception as err:  # the driver records a device's own errors; this is the store or a bug
                get_logger("engine.waves", wave=self.settings.name, device=device).exception(
                    "visit failed outside the device's machine", error=f"{type(err).__name__}: {err}"
                )
                outcome = VisitOutcome(ERROR, error=f"{type(err).__name__}: {err}")
            finally:
                self._in_flight.discard(device)
            self._record(device, outcome)
            if self._over_budget() and not self._halt_reason:
                self._budget_halt = True
                self._halt_reason = self._budget_reason()

        async def worker() -> None:
            while not (self.should_stop() or self._over_budget()):
                device = self._pop_due() or (queue.popleft() if queue else None)
                if device is None:
                    return
                await visit_one(device)

        workers = max(1, min(self.settings.concurrency, len(devices)))
        await asyncio.gather(*(worker() for _ in range(workers)))

    async def _batch_ready(self, index: int, devices: Sequence[str]) -> bool:
        """The batch's devices are preflighted (those the hook waits for are held before their policy step):
        ``on_batch_start`` once for all of them, then the held ones are visited again at once. False, with the
        wave's halt reason set, when the hook failed."""
        self._ready_batches.add(index)
        if self.on_batch_start is None or not devices or self.should_stop():
            return True
        try:
            await asyncio.to_thread(self.on_batch_start, index, tuple(devices))
        except MigratorError as err:
            self._halt_reason = f"batch {index + 1} of {self.progress.batches}: {err}"
            return False
        held = [d for d in devices if d in self.progress.waiting and self.progress.states.get(d) == POLICY_STATE]
        if held:
            self._just_hooked.update(held)  # their visit now needs no hook of its own
            await self._visit_all(held)
        return True

    def _pop_due(self) -> str | None:
        """A waiting device whose (latest) due time has passed and that is not being visited; None if none is.
        Its heap entry is consumed; the caller visits it at once (visit_one marks it in flight)."""
        now = self.clock.now()
        while self._due and self._due[0][0] <= now:
            _, device = heapq.heappop(self._due)
            when = self.progress.waiting.get(device)
            # A device's older heap entries are stale (it waits until its latest time) and one being visited
            # is not taken twice; it stays listed as waiting until its visit records what comes next.
            if when is not None and when <= now and device not in self._in_flight:
                return device
        return None

    async def _revisit_due(self, *, block: bool) -> None:
        """Re-visit waiting devices whose time has come; with ``block``, sleep until the next one is due."""
        now = self.clock.now()
        due: list[str] = []
        while (device := self._pop_due()) is not None:
            if device not in due:  # a stale second heap entry of a device already taken
                due.append(device)
        if due:
            await self._visit_all(due)
            return
        if block and self._due:
            wait = (self._due[0][0] - now).total_seconds()
            for idle in self.on_idle:
                idle()
            await asyncio.to_thread(self.clock.sleep, min(max(wait, 0.0), self.max_idle_sleep))

    def _active(self, device: str) -> bool:
        return self.progress.states.get(device) in DEVICE_ACTIVE and device not in self.progress.waiting

    def _waiting(self) -> int:
        return len(self.progress.waiting)

    async def run_async(self) -> WaveResult:
        # Visits block (WS-Man round trips): each needs a thread of its own. asyncio.to_thread's default pool
        # has min(32, cores + 4) threads, which would cap a wave's concurrency at 6 on a 2-core orchestrator.
        self._visits = ThreadPoolExecutor(max_workers=max(1, self.settings.concurrency), thread_name_prefix="visit")
        try:
            return await self._run_waves()
        finally:
            self._visits.shutdown(wait=True)
            self._visits = None

    async def _run_waves(self) -> WaveResult:
        name = self.settings.name
        batches = self.settings.batches()
        self.progress.batches = len(batches)
        self._batch_of = {device: index for index, batch in enumerate(batches) for device in batch}
        approved = self.store.approved_batches(name)
        self.store.set_wave_state(name, "running")
        for index, batch in enumerate(batches):
            self.progress.batch = index + 1
            if index > 0 and self.settings.approval and approved < index:
                reason = f"batch {index + 1} of {len(batches)} needs approval (migrator approve --wave {name})"
                self.store.set_wave_state(name, "awaiting_approval", reason)
                return WaveResult(name, "awaiting_approval", reason, self.progress)
            todo = [d for d in batch if self.progress.states.get(d) not in SETTLED]
            await self._visit_all(todo)
            # The batch is through when none of its devices is active (a visit returns when its machine waits
            # or ends; one that comes back active was stopped mid-way and is visited again, a bounded number
            # of times).
            for _ in range(3):
                active = [d for d in batch if d in self.progress.started and self._active(d)]
                if self.should_stop() or not active:
                    break
                await self._visit_all(active)
            if not await self._batch_ready(index, todo):
                break
            is_canary = self.settings.canary > 0 and index == 0
            while is_canary and not self.should_stop() and any(d in self.progress.waiting for d in batch):
                await self._revisit_due(block=True)
            if self.should_stop():
                break
            if is_canary:
                bad = [d for d in batch if self.progress.states.get(d) not in SUCCESS | {"ineligible"}]
                if bad:
                    self._halt_reason = (
                        f"canary failed: {', '.join(f'{d} ({self.progress.states.get(d)})' for d in bad)}"
                    )
                    break
            await self._revisit_due(block=False)
        if self._halt_reason:
            return self._halted()
        if self.store.wave_state(name) == "paused":
            return WaveResult(name, "paused", "paused by an operator", self.progress)
        while self.wait_for_waiting and self._waiting() and not self.should_stop():
            await self._revisit_due(block=True)
        if self._halt_reason:
            return self._halted()
        if self.store.wave_state(name) == "paused":
            return WaveResult(name, "paused", "paused by an operator", self.progress)
        # Completed only when every device is settled (final, or parked for a person): a device still waiting,
        # unreachable or in error keeps the wave open for `migrator resume`.
        open_devices = [d for d in self.settings.devices if self.progress.states.get(d) not in SETTLED]
        if open_devices:
            counts: dict[str, int] = {}
            for device in open_devices:
                state = self.progress.states.get(device, "pending")
                counts[state] = counts.get(state, 0) + 1
            listed = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
            reason = f"{len(open_devices)} devices not settled ({listed}); `migrator resume` picks them up"
            return WaveResult(name, "running", reason, self.progress)
        self.store.set_wave_state(name, "completed")
        return WaveResult(name, "completed", "", self.progress)

    def run(self) -> WaveResult:
        return run_waves([self])[0]


def run_waves(runners: Sequence[WaveRunner]) -> list[WaveResult]:
    """Run waves side by side (``migrator resume`` picks up every unfinished wave): a wave that waits days for its
    users must not hold back the rechecks of another's. Each keeps its own concurrency, budget and gates."""

    async def together() -> list[WaveResult]:
        return list(await asyncio.gather(*(runner.run_async() for runner in runners)))

    try:
        return asyncio.run(together())
    finally:
        for runner in runners:
            for end in runner.on_end:
                end()


def select_percent(remaining: Sequence[str], percent: float) -> list[str]:
    """``--limit 10%``: the first ceil(percent × remaining) devices not yet in any wave."""
    if not 0 < percent <= 100:
        raise InputError(f"a percentage selection must be in (0, 100], got {percent:g}")
    return list(remaining[: math.ceil(len(remaining) * percent / 100.0)])
