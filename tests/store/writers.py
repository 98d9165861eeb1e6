"""The child of tests/store/test_processes.py: one process writing to a shared store, at random, what workers write.

Each round does one of four things, chosen by the worker's own seeded random generator:

* ``audit``: append an audit entry of its own;
* ``version``: move the shared device COUNTER one state on, by compare-and-set on its version (read, then
  ``transition(expected_version=...)``), retrying on :class:`ConcurrentUpdate` and counting the conflicts;
* ``lease``: take the lease of the shared device LEASED (retrying until it is free), make a fenced transition on it
  while holding it, and release it, noting the monotonic time just after the acquire and just before the release;
* ``journal``: journal an intent and its outcome on a device of its own, then an intent under an idempotency key
  every worker uses in that round (all of them must get the one entry);
* ``expiring``: take the lease of EXPIRING for a few milliseconds only, and journal fenced intents on it (each
  naming its owner) until one is refused because the lease ran out (or three were written): another process may
  have taken the lease over meanwhile, and a fenced write must never land after that;
* ``verify``: verify the audit chain while the others append (a reader must see one consistent snapshot: the
  chain and the heads kept outside it as of one moment), keeping any problem it reports.

It returns what it did, for the parent to check against the store; an exception comes back as its traceback.
"""

from __future__ import annotations

import random
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.synchronize import Barrier

from migrator.store import AuditEntry, ConcurrentUpdate, LeaseNotHeld, LeaseOwner, Store

OPERATIONS = ("audit", "version", "lease", "journal", "expiring", "verify")
SHORT_TTL = 0.01  # seconds: a hold of EXPIRING outlives it often
LEASE_TTL = 60.0  # far longer than any hold here: a lease must only change hands by release


@dataclass
class WorkerReport:
    worker: int
    appended: int = 0  # audit entries of this worker's own (``audit`` rounds)
    bumps: int = 0  # successful compare-and-set moves of COUNTER
    conflicts: int = 0  # ConcurrentUpdate seen on COUNTER
    holds: list[tuple[int, int]] = field(default_factory=list)  # (after acquire, before release), monotonic ns
    lease_conflicts: int = 0  # ConcurrentUpdate on LEASED while holding its lease: must stay 0
    journal_keys: list[str] = field(default_factory=list)  # keys of own intents, each with its outcome
    shared_ids: dict[str, int] = field(default_factory=dict)  # shared idempotency key -> entry id got
    verify_problems: list[str] = field(default_factory=list)  # what a verification amid the writes reported
    fenced: int = 0  # fenced intents written on EXPIRING
    fenced_refused: int = 0  # fenced intents refused (LeaseNotHeld): the short lease had run out
    error: str | None = None


def run_writer(location: str, worker: int, seed: int, rounds: int, barrier: Barrier) -> WorkerReport:
    report = WorkerReport(worker)
    rng = random.Random(seed)
    try:
        with Store.open(location) as store:
            barrier.wait(timeout=120)  # every process starts writing together
            for round_no in range(rounds):
                operation = rng.choice(OPERATIONS)
                if operation == "audit":
                    store.append_audit(AuditEntry(f"worker-{worker}", "append", after={"w": worker, "r": round_no}))
                    report.appended += 1
                elif operation == "version":
                    _bump(store, worker, report)
                elif operation == "lease":
                    _hold_lease(store, worker, rng, report)
                elif operation == "journal":
                    _journal(store, worker, round_no, report)
                elif operation == "expiring":
                    _expiring(store, worker, round_no, rng, report)
                else:
                    verified = store.verify_audit()
                    report.verify_problems += [f"{p.entry_id} {p.kind}: {p.detail}" for p in verified.problems]
    except BaseException:
        report.error = f"worker {worker} (seed {seed}):\n{traceback.format_exc()}"
    return report


def _bump(store: Store, worker: int, report: WorkerReport) -> None:
    while True:
        row = store.get_device("COUNTER")
        try:
            store.transition(
                "COUNTER",
                row.state,
                f"n{row.version + 1}",
                "bump",
                expected_version=row.version,
                audit=AuditEntry(f"worker-{worker}", "bump"),
            )
        except ConcurrentUpdate:
            report.conflicts += 1
            continue
        report.bumps += 1
        return


def _hold_lease(store: Store, worker: int, rng: random.Random, report: WorkerReport) -> None:
    owner = str(LeaseOwner.current())
    while not store.acquire("LEASED", owner, LEASE_TTL):
        time.sleep(rng.uniform(0.0005, 0.003))
    taken = time.monotonic_ns()  # CLOCK_MONOTONIC: one clock for every process of the machine
    try:
        row = store.get_device("LEASED")
        store.transition(
            "LEASED",
            row.state,
            f"held-{worker}",
            "hold",
            expected_version=row.version,
            owner=owner,
            audit=AuditEntry(f"worker-{worker}", "hold"),
        )
    except ConcurrentUpdate:
        report.lease_conflicts += 1  # somebody else wrote while we held the lease
    time.sleep(rng.uniform(0, 0.004))
    giving_up = time.monotonic_ns()
    assert store.release("LEASED", owner), "the lease was gone before its release"
    report.holds.append((taken, giving_up))


def _journal(store: Store, worker: int, round_no: int, report: WorkerReport) -> None:
    device = f"J-{worker}"
    key = f"{device}/{round_no}"
    entry = store.intent(device, "set_policy", round_no, {"value": round_no}, key=key)
    store.outcome(entry.id, {"set": round_no}, ok=True)
    report.journal_keys.append(key)
    shared = f"shared/{round_no}"
    report.shared_ids[shared] = store.intent("SHARED", "delete_hello_container", round_no, {}, key=shared).id


def _expiring(store: Store, worker: int, round_no: int, rng: random.Random, report: WorkerReport) -> None:
    owner = str(LeaseOwner.current())  # a fresh nonce: each hold is an owner of its own
    while not store.acquire("EXPIRING", owner, SHORT_TTL):
        time.sleep(rng.uniform(0.0005, 0.003))
    for attempt in range(3):
        time.sleep(rng.uniform(0, 0.008))
        try:
            store.intent(
                "EXPIRING", "fenced", attempt, {"owner": owner}, key=f"{worker}/{round_no}/{attempt}", owner=owner
            )
        except LeaseNotHeld:
            report.fenced_refused += 1
            return
        report.fenced += 1
    store.release("EXPIRING", owner)


def open_at_once(location: str, barrier: Barrier) -> int | str:
    """Open (and so migrate, if it is old) the store together with the other processes; its version, or the
    traceback."""
    try:
        barrier.wait(timeout=120)
        with Store.open(location) as store:
            return store.schema_version()
    except BaseException:
        return traceback.format_exc()


def enroll_at_once(location: str, wave: str, names: list[str], barrier: Barrier) -> str | None:
    """Enrol ``names`` in ``wave`` together with the other processes; None, or the exception's type and text."""
    try:
        with Store.open(location) as store:
            barrier.wait(timeout=120)
            store.enroll(wave, names)
        return None
    except BaseException as error:
        return f"{type(error).__name__}: {error}"
