"""Run chaos schedules and judge them, in worker processes so that several run at once.

One schedule keeps about one core busy (the lab in its process, the orchestrator in another, taking turns), so
the suite runs ``MIGRATOR_CHAOS_WORKERS`` schedules at a time (default: one per core, at most 2). Workers fork from
the session's forkserver with the harness preloaded; each starts its own forkserver for the orchestrators it runs
(about a second, once). A worker returns a :class:`Verdict` (plain text): the test of that seed fails with its
report.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tests.chaos.harness import Outcome, run_schedule
from tests.chaos.invariants import Violation, check_all
from tests.chaos.schedule import COMBOS, Schedule, make_schedule
from tests.forkserver import forkserver_context

DEFAULT_SEEDS = range(30)  # CI: 3 to 4 devices each
SLOW_SEEDS = range(1000, 1200)  # --run-slow: 3 to 6 devices each
REPLAY_ENV = "MIGRATOR_CHAOS_SEED"
WORKERS_ENV = "MIGRATOR_CHAOS_WORKERS"

_context = forkserver_context("tests.chaos.verdict")


def schedule_for(seed: int) -> Schedule:
    """The schedule of ``seed``: default seeds run small fleets (CI time); any other seed up to six devices."""
    return make_schedule(seed, max_devices=4 if seed in DEFAULT_SEEDS else 6)


def report(schedule: Schedule, outcome: Outcome, violations: list[Violation]) -> str:
    """What a failure prints: the violations, how to replay, the schedule, what happened and the end state."""
    lines = [
        f"chaos seed {schedule.seed}: {len(violations)} invariant violation(s)",
        *(f"  {v}" for v in violations),
        f"replay: {REPLAY_ENV}={schedule.seed} pytest tests/chaos -k replay -s",
        "",
        schedule.describe(),
        "",
        "what happened (virtual time since the start):",
        *(f"  {line}" for line in outcome.log),
        "",
        "end state (before the probe):",
    ]
    lines += [f"  wave {wave.name}: {wave.state}" for wave in outcome.waves]
    for device in outcome.devices:
        users = ", ".join(f"{u.name} {u.state}" for u in outcome.users.get(device.name, []))
        error = f"; last error: {device.last_error}" if device.last_error else ""
        lines.append(f"  {device.name} ({device.wave}): {device.state} [{users}]{error}")
    lines += [
        f"engine log: {outcome.work / 'logs' / 'migrator.jsonl'}; store: {outcome.work / 'state'}",
        f"run: {outcome.seconds:.1f}s, {outcome.cpu_seconds:.1f}s CPU, {outcome.executions} lab executions, "
        f"{outcome.questions} clock questions, {outcome.kills} kill(s)",
    ]
    return "\n".join(lines)


@dataclass(frozen=True)
class Verdict:
    seed: int
    violations: tuple[str, ...]
    report: str
    seconds: float
    cpu_seconds: float
    armed: frozenset[tuple[str, str]]  # (fault kind, device state) pairs armed in this run


def judge(seed: int, work: str) -> Verdict:
    """Run the schedule of ``seed`` in ``work`` and check the invariants (in a worker process)."""
    schedule = schedule_for(seed)
    outcome = run_schedule(schedule, Path(work))
    violations = check_all(outcome)
    return Verdict(
        seed,
        tuple(str(v) for v in violations),
        report(schedule, outcome, violations),
        outcome.seconds,
        outcome.cpu_seconds,
        frozenset(outcome.armed),
    )


def workers() -> int:
    return max(1, int(os.environ.get(WORKERS_ENV) or min(2, os.cpu_count() or 1)))


class ChaosPool:
    """Every selected seed submitted at once, in order; a test waits only for its own seed's verdict."""

    def __init__(self, seeds: Iterable[int], work: Path) -> None:
        self.workers = workers()
        self._started = time.monotonic()
        self._executor = ProcessPoolExecutor(max_workers=self.workers, mp_context=_context)
        self._futures: dict[int, Future[Verdict]] = {
            seed: self._executor.submit(judge, seed, str(work / f"seed-{seed}")) for seed in seeds
        }

    def verdict(self, seed: int) -> Verdict:
        return self._futures[seed].result()

    def close(self) -> str:
        """Stop the workers; a one-line summary of what ran (for the terminal)."""
        self._executor.shutdown(wait=True, cancel_futures=True)
        done = [f.result() for f in self._futures.values() if f.done() and not f.cancelled() and not f.exception()]
        failed = sorted(v.seed for v in done if v.violations)
        armed = set().union(*(v.armed for v in done)) if done else set()
        return (
            f"chaos: {len(done)} schedule(s) in {time.monotonic() - self._started:.0f}s on {self.workers} worker(s), "
            f"{sum(v.cpu_seconds for v in done):.0f}s CPU; faults armed at {len(armed & set(COMBOS))} of the "
            f"{len(COMBOS)} (kind, state) pairs; {len(failed)} broke an invariant"
            + (f" (seeds {', '.join(map(str, failed))})" if failed else "")
        )
