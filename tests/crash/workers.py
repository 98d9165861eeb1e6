"""Crash harness for several workers: 2 to 4 worker processes share one PostgreSQL store and a lab, and one of them
may be killed with SIGKILL at a chosen journal point (``MIGRATOR_CRASH_AT``); the others take its devices over once
its leases expire, and one of them takes over as the wave coordinator when the victim held that role.

Each worker is the product's :class:`migrator.engine.workers.Worker` (claims, coordinator, hand-backs) visiting
through the durable driver; only its loop is the harness's, so that virtual time can be stepped: the children
read "now" from a shared integer (microseconds since the epoch, exact), and the parent moves the lab's clock to
the next due time or lease expiry only when every live worker has completed a whole loop (coordinate, claim) with
nothing to visit since the parent last asked, and the store has nothing due now.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from migrator.engine.device import CRASH_ENV, visit
from migrator.engine.waves import VisitOutcome
from migrator.engine.workers import ClaimLeases, Worker
from migrator.inventory import Connection, DeviceEntry
from migrator.lab.model import Fleet
from migrator.lab.truth import fleet_truth
from migrator.playbook import Playbook
from migrator.remote.credentials import Credentials
from migrator.store import Claim, LeaseOwner, Store, content_hash
from tests.crash.harness import Outcome, Target
from tests.engine.labkit import ENTRA_KERBEROS, FAST_RETRY, LabKit, running_lab
from tests.forkserver import forkserver_context

_context = forkserver_context("migrator.engine.workers", "tests.crash.workers")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LEASE_SECONDS = 120.0  # virtual: a dead worker's devices come back once the parent moves time past this
WAVE = "wave-1"


def micros(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


class SharedClock:
    """The parent's virtual time, read from shared memory (sleeping is the parent's business)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def now(self) -> datetime:
        return EPOCH + timedelta(microseconds=int(self.value.value))

    def sleep(self, _seconds: float) -> None:
        return None


@dataclass(frozen=True)
class Shared:
    now: Any  # Value('q'): microseconds since the epoch
    generation: Any  # Value('q'): bumped by the parent when it asks "is everyone idle?"
    idle: Any  # Array('q'): per worker, the generation of its last loop with nothing to visit (-1: busy)
    stop: Any  # Event


def worker_main(
    index: int,
    shared: Shared,
    url: str,
    targets: list[Target],
    port: int,
    username: str,
    password: str,
    playbook_json: str,
    crash_at: int | None,
) -> None:
    """One worker process: the product's worker loop, reporting after each loop whether it had nothing to visit."""
    if crash_at is not None:
        os.environ[CRASH_ENV] = str(crash_at)
    clock = SharedClock(shared.now)
    playbook = Playbook.model_validate_json(playbook_json)
    store = Store.open(url, now=clock.now, pool_size=4)
    credentials = Credentials(username, SecretStr(password))
    connection = Connection(transport="psrp", scheme="http", port=port, auth="ntlm", read_timeout=60)
    entries = {t.name: DeviceEntry(name=t.name, address=t.address, domain=t.domain) for t in targets}
    owner = str(LeaseOwner.current())
    leases = ClaimLeases(store, ttl_seconds=LEASE_SECONDS)

    def visit_claim(claim: Claim) -> VisitOutcome:
        result = visit(
            claim.device,
            store=store,
            playbook=playbook,
            entry=entries[claim.device],
            connection=connection,
            credentials=credentials,
            clock=clock.now,
            owner=owner,
            path_settings=ENTRA_KERBEROS,
            retry=FAST_RETRY,
            sleep=lambda _s: None,
            leases=leases,
        )
        return VisitOutcome(result.state, next_due=result.next_due, error=result.last_error)

    worker = Worker(
        store,
        visit_claim,
        owner=owner,
        leases=leases,
        clock=clock,
        actor=username,
        lock=store.coordinator_lock(),
        concurrency=2,
    )
    worker.start()
    try:
        while not shared.stop.is_set():
            generation = shared.generation.value
            busy = worker.iterate(wait=0.05)
            shared.idle[index] = -1 if busy else generation
            if not busy:
                time.sleep(0.005)
    finally:
        worker.close()
        store.close()


@dataclass
class MultiOutcome(Outcome):
    workers: int = 0
    victim_killed: bool = False


def _settings(names: list[str]) -> dict[str, Any]:
    return {
        "devices": names,
        "batch_size": 2,
        "concurrency": 2,
        "canary": 1,
        "max_fail_percent": 100.0,
        "approval": False,
        "windows": [],
    }


def run_workers(
    fleet: Fleet,
    work: Path,
    url: str,
    playbook: Playbook,
    *,
    workers: int,
    victim: int | None = None,
    crash_at: int | None = None,
    setup: Any = None,
    max_steps: int = 2000,
) -> MultiOutcome:
    """Run the wave with ``workers`` processes to its end; ``victim`` (an index) is killed at its ``crash_at``-th
    journal point if it gets that far."""
    with running_lab(fleet, work / "lab") as kit:
        if setup is not None:
            setup(kit)
        targets = [Target(d.name, d.address, d.domain) for d in fleet.devices]
        names = [t.name for t in targets]
        with Store.open(url, now=kit.now) as store:
            store.create_wave(
                WAVE,
                playbook_name=playbook.name,
                playbook_hash=content_hash(playbook.model_dump_json()),
                change_ticket="CHG-0042",
                settings=_settings(names),
                state="running",
            )
            store.enroll(WAVE, names)
            shared = Shared(
                _context.Value("q", micros(kit.now()), lock=False),
                _context.Value("q", 0, lock=False),
                _context.Array("q", [-1] * workers, lock=False),
                _context.Event(),
            )
            processes = []
            for index in range(workers):
                process = _context.Process(
                    target=worker_main,
                    args=(
                        index,
                        shared,
                        url,
                        targets,
                        kit.http_port,
                        kit.credentials.username,
                        kit.password,
                        playbook.model_dump_json(),
                        crash_at if index == victim else None,
                    ),
                )
                process.start()
                processes.append(process)
            try:
                killed = _drive(kit, store, shared, processes, max_steps)
            finally:
                shared.stop.set()
                for process in processes:
                    process.join(30)
                    if process.is_alive():
                        process.kill()
            for index, process in enumerate(processes):
                assert index in killed or process.exitcode == 0, f"worker {index} ended with {process.exitcode}"
            states = {n: store.get_device(n).state for n in names}
            users = {n: {u.name: u.state for u in store.list_users(n)} for n in names}
            journal = {n: [(e.user, e.step, e.status, e.outcome) for e in store.journal_entries(n)] for n in names}
            assert store.verify_audit().ok
            assert sorted(d.name for d in store.list_devices()) == sorted(names)
            assert store.get_wave(WAVE).state == "completed", store.get_wave(WAVE).state
        points = sum(1 + (status != "intent") for entries in journal.values() for _, _, status, _ in entries)
        return MultiOutcome(
            states, users, fleet_truth(kit.lab), journal, len(killed), points, [], workers, victim in killed
        )


def _drive(kit: LabKit, store: Store, shared: Shared, processes: list[Any], max_steps: int) -> set[int]:
    """Step virtual time until the wave completes; returns the indexes of the workers that were killed."""
    killed: set[int] = set()
    stuck = 0
    for _ in range(max_steps):
        for index, process in enumerate(processes):
            if index not in killed and process.exitcode is not None:
                assert process.exitcode == -signal.SIGKILL, f"worker {index} ended with {process.exitcode}"
                killed.add(index)
        live = [i for i in range(len(processes)) if i not in killed]
        assert live, "every worker died"
        if store.get_wave(WAVE).state != "running":
            return killed
        shared.generation.value += 1
        generation = shared.generation.value
        deadline = time.monotonic() + 120
        while not all(shared.idle[i] >= generation for i in live):
            if any(processes[i].exitcode is not None for i in live):
                break  # a worker died: count it and ask again
            assert time.monotonic() < deadline, "the workers never went idle"
            time.sleep(0.005)
        else:
            now = kit.now()
            rows = store.list_devices(wave=WAVE)
            due_now = [
                d
                for d in rows
                if d.released_at is not None
                and d.due_at is not None
                and d.due_at <= now
                and (d.lease_owner is None or d.lease_expires_at is None or d.lease_expires_at <= now)
            ]
            if due_now:
                continue  # handed back between two looks: the workers take it at their next loop
            events = [d.due_at for d in rows if d.due_at is not None and d.due_at > now]
            events += [d.lease_expires_at for d in rows if d.lease_expires_at is not None and d.lease_expires_at > now]
            if not events:
                stuck += 1  # the coordinator has not looked since the last hand-back: one more loop
                assert stuck < 50, f"nothing due and the wave is {store.get_wave(WAVE).state}: {rows}"
                continue
            stuck = 0
            kit.clock.advance_to(max(min(events), now))
            shared.now.value = micros(kit.now())
    raise AssertionError(f"the wave did not complete in {max_steps} steps")
