"""The orchestrator's side of a chaos run: the real wave engine, in a child process the parent may SIGKILL.

The child is ``migrator run`` / ``migrator resume`` without the CLI: :func:`plan_wave` or :func:`resumable_waves`
with the real store (SQLite), the real driver and the real PSRP transport to the lab's listeners. Its clock is
the parent's: :class:`PipeClock` asks over the pipe for ``now`` and for every ``sleep`` (the engine's idle waits,
the driver's retry backoff), so the parent moves the lab's virtual time and decides what happens meanwhile.

Protocol (child -> parent): ``("now",)`` and ``("sleep", seconds)``, each answered with the virtual time;
``("started", waves)`` once the waves are planned and about to run; ``("ran", results, visits)`` after each
command (``visits``: device, state and error of every visit, as the engine saw them); ``("crashed",
traceback)`` if the orchestrator raised. Commands (parent -> child): ``("plan", WaveRequest, wait)`` (``migrator
run``), ``("resume", wait)`` (``migrator resume``; ``wait`` False: return once no device is active, as
``--no-wait`` does) and ``("exit",)``, answered with ``("bye", cpu_seconds)``.

Kept free of lab imports: children fork from the session's forkserver, which preloads this module.
"""

from __future__ import annotations

import os
import random
import resource
import threading
import traceback
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from migrator.engine.device import CRASH_ENV
from migrator.engine.service import WavePlan, WaveRequest, plan_wave, resumable_waves
from migrator.engine.waves import VisitOutcome, run_waves
from migrator.logs import configure_logging
from migrator.remote import open_transport
from migrator.remote.credentials import Credentials
from migrator.store import Store


@dataclass(frozen=True)
class ChildSetup:
    store: Path
    username: str
    password: str
    seed: int
    crash_at: int | None = None  # MIGRATOR_CRASH_AT: SIGKILL itself after this journal commit
    log_dir: Path | None = None  # the engine's JSON-lines log (migrator.jsonl), for reading a failure


class PipeClock:
    """:class:`migrator.engine.waves.Clock` answered by the parent (several visit threads share the pipe)."""

    def __init__(self, pipe: Pipe) -> None:
        self._pipe = pipe
        self._lock = threading.Lock()

    def _ask(self, *message: Any) -> datetime:
        with self._lock:
            self._pipe.send(message)
            answer: datetime = self._pipe.recv()
            return answer

    def tell(self, *message: Any) -> None:
        """A message that needs no answer."""
        with self._lock:
            self._pipe.send(message)

    def now(self) -> datetime:
        return self._ask("now")

    def sleep(self, seconds: float) -> None:
        self._ask("sleep", float(seconds))


def child_main(pipe: Pipe, setup: ChildSetup) -> None:
    """Run the parent's commands until ``exit``; report a crash of the orchestrator instead of dying silently."""
    random.seed(setup.seed)  # tenacity's backoff jitter: the same schedule sleeps the same virtual seconds
    if setup.crash_at is not None:
        os.environ[CRASH_ENV] = str(setup.crash_at)
    configure_logging(setup.log_dir, secrets=[setup.password])
    clock = PipeClock(pipe)
    credentials = Credentials(setup.username, SecretStr(setup.password))
    try:
        store = Store.open(setup.store, now=clock.now, synchronous="NORMAL")
        while True:
            command = pipe.recv()
            if command[0] == "exit":
                store.close()
                usage = resource.getrusage(resource.RUSAGE_SELF)
                pipe.send(("bye", usage.ru_utime + usage.ru_stime))
                return
            visited: list[tuple[str, str, str | None]] = []

            def seen(device: str, outcome: VisitOutcome, visited: list[tuple[str, str, str | None]] = visited) -> None:
                visited.append((device, outcome.state, outcome.error))

            plans: list[WavePlan]
            if command[0] == "plan":
                request: WaveRequest = command[1]
                plan = plan_wave(
                    store,
                    request,
                    credentials,
                    clock,
                    transport_factory=open_transport,
                    on_change=seen,
                    wait_for_waiting=bool(command[2]),
                )
                plans = [plan]
            else:
                plans = resumable_waves(
                    store,
                    credentials,
                    clock,
                    transport_factory=open_transport,
                    on_change=seen,
                    wait_for_waiting=bool(command[1]),
                )
            clock.tell("started", [plan.runner.settings.name for plan in plans])
            results = run_waves([plan.runner for plan in plans])  # as `migrator resume` runs them
            pipe.send(("ran", [(r.wave, r.state, r.reason) for r in results], visited))
    except Exception:
        pipe.send(("crashed", traceback.format_exc()))
        raise
