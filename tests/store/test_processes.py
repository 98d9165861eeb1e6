"""Several processes writing to one store at once (SQLite: its one-writer lock; PostgreSQL: row locks, the audit
chain's lock and unique keys): nothing is lost, doubled or interleaved wrongly.

Four processes (forkserver children, each with its own engine and connections) run seeded random rounds of
tests/store/writers.py against one store, released together by a barrier. Then the store must show:

* the audit chain valid, its ids 1..N without a gap, N = what was there + every append, bump and hold;
* COUNTER at exactly the version of the successful compare-and-set moves (a lost update would show as fewer),
  with one transition row per move;
* LEASED held by one process at a time: the hold intervals never overlap, and no holder ever met a concurrent
  write on it;
* every intent journaled with its outcome, nothing in doubt, and one entry per shared idempotency key, the same
  one for every process that asked;
* every verification of the chain made amid the writes clean (a reader sees one moment of the store);
* the fenced intents on EXPIRING, whose leases run out after 10 ms and are taken over: in journal order, each
  owner's writes form one run (no write of an owner lands after another owner took the lease).

The seed is ``MIGRATOR_TEST_SEED`` or a random one, printed (pytest shows it with a failure) and named in every
assertion: ``MIGRATOR_TEST_SEED=<seed> pytest tests/store/test_processes.py`` replays the same choices (the
interleaving itself is the scheduler's).
"""

from __future__ import annotations

import itertools
import os
import random
from concurrent.futures import ProcessPoolExecutor

from migrator.store import SCHEMA_VERSION, AuditEntry, AuditHead, Store, content_hash
from tests.forkserver import forkserver_context
from tests.store.conftest import FakeClock
from tests.store.test_migrations import _old_store
from tests.store.writers import WorkerReport, enroll_at_once, open_at_once, run_writer

WORKERS = 4
# At import (collection), like the other harnesses: the session's one forkserver preloads what its children need.
CONTEXT = forkserver_context("migrator.store", "tests.store.writers")
ROUNDS = int(os.environ.get("MIGRATOR_TEST_ROUNDS", "40"))  # more for a longer hunt


def test_processes_writing_at_once_lose_nothing(store_location: str) -> None:
    """Four processes append audit entries, race compare-and-set moves, pass a lease around and journal: the chain
    stays whole and gapless, no update is lost, a lease has one holder at a time, and every intent has its outcome."""
    seed = int(os.environ.get("MIGRATOR_TEST_SEED") or random.SystemRandom().randrange(2**32))
    print(f"seed {seed} (replay: MIGRATOR_TEST_SEED={seed})")
    with Store.open(store_location) as setup:
        setup.create_wave("w", playbook_name="p", playbook_hash=content_hash("x"), audit=AuditEntry("me", "create"))
        setup.enroll("w", ["COUNTER", "LEASED", "SHARED", "EXPIRING", *(f"J-{i}" for i in range(WORKERS))])
        before = len(setup.audit_entries())

    with CONTEXT.Manager() as manager, ProcessPoolExecutor(WORKERS, mp_context=CONTEXT) as pool:
        barrier = manager.Barrier(WORKERS)
        futures = [
            pool.submit(run_writer, store_location, worker, seed + worker, ROUNDS, barrier) for worker in range(WORKERS)
        ]
        reports: list[WorkerReport] = [future.result(timeout=240) for future in futures]
    errors = [r.error for r in reports if r.error]
    assert not errors, f"seed {seed}: " + "\n".join(errors)
    problems = [problem for r in reports for problem in r.verify_problems]
    assert not problems, f"seed {seed}: a verification amid the writes saw a broken chain: {problems[:5]}"

    with Store.open(store_location, read_only=True) as store:
        _check(store, reports, before, seed)


def _check(store: Store, reports: list[WorkerReport], before: int, seed: int) -> None:
    why = f"seed {seed}"
    # The audit chain: valid, gapless, every append there.
    bumps = sum(r.bumps for r in reports)
    holds = sorted(hold for r in reports for hold in r.holds)
    expected = before + sum(r.appended for r in reports) + bumps + len(holds)
    report = store.verify_audit()
    assert report.ok, f"{why}: {report.problems}"
    ids = [entry.id for entry in store.audit_entries()]
    assert ids == list(range(1, expected + 1)), f"{why}: audit ids {len(ids)}, expected 1..{expected}"
    assert store.audit_head() == report.head and report.head is not None and report.head.entries == expected

    # Optimistic versions: every successful move counted once, none lost.
    counter = store.get_device("COUNTER")
    assert counter.version == bumps, f"{why}: COUNTER at version {counter.version} after {bumps} moves"
    assert len(store.export_device_timeline("COUNTER").transitions) == bumps, why
    print(f"{bumps} compare-and-set moves, {sum(r.conflicts for r in reports)} conflicts detected and retried")

    # The lease: one holder at a time.
    for (_, released), (taken, _) in itertools.pairwise(holds):
        assert taken > released, f"{why}: two processes held LEASED at once ({holds})"
    assert sum(r.lease_conflicts for r in reports) == 0, f"{why}: a write on LEASED raced its lease holder"
    leased = store.get_device("LEASED")
    assert (leased.version, leased.lease_owner) == (len(holds), None), why
    print(f"{len(holds)} lease holds, none overlapping")

    # The journal: every intent with its outcome; one entry per shared key.
    for r in reports:
        entries = {e.key: e for e in store.journal_entries(f"J-{r.worker}")}
        assert sorted(entries) == sorted(r.journal_keys), why
        assert all(e.status == "done" for e in entries.values()), why
    shared = store.journal_entries("SHARED")
    by_key = {e.key: e.id for e in shared}
    assert len(by_key) == len(shared), f"{why}: a shared idempotency key has two entries"
    for r in reports:
        for key, entry_id in r.shared_ids.items():
            assert by_key[key] == entry_id, f"{why}: {key} answered with entry {entry_id}, the store has {by_key[key]}"
    assert [e.key for e in store.in_doubt() if e.device not in ("SHARED", "EXPIRING")] == [], why

    # Fencing under expiry: once another owner wrote, an earlier owner never writes again.
    fenced = sorted(store.journal_entries("EXPIRING"), key=lambda e: e.id)
    assert len(fenced) == sum(r.fenced for r in reports), why
    owners = [str(e.intent["owner"]) for e in fenced]
    runs = [owner for index, owner in enumerate(owners) if index == 0 or owners[index - 1] != owner]
    assert len(runs) == len(set(runs)), f"{why}: a fenced write landed after its lease passed on ({owners})"
    refused = sum(r.fenced_refused for r in reports)
    print(f"{len(fenced)} fenced writes by {len(runs)} short-lease holders, {refused} refused after expiry")


def test_processes_opening_an_old_store_at_once_migrate_it_once(store_location: str, clock: FakeClock) -> None:
    """Four processes open a version-2 store at the same moment: one migrates it (PostgreSQL: under an advisory
    lock; SQLite: BEGIN IMMEDIATE), the others find it done; every row and the audit head are as one migration
    leaves them."""
    tip = _old_store(store_location, clock, 2)
    with CONTEXT.Manager() as manager, ProcessPoolExecutor(WORKERS, mp_context=CONTEXT) as pool:
        barrier = manager.Barrier(WORKERS)
        futures = [pool.submit(open_at_once, store_location, barrier) for _ in range(WORKERS)]
        versions = [future.result(timeout=240) for future in futures]
    assert versions == [SCHEMA_VERSION] * WORKERS, versions
    with Store.open(store_location, read_only=True) as store:
        assert store.audit_head() == store.verify_audit().head == AuditHead(2, tip)
        assert store.get_device("PC-LEASED").lease_owner == "worker-old"
        assert store.get_device("PC-OLD").state == "preflight"


def test_processes_enrolling_the_same_devices_at_once(store_location: str) -> None:
    """Three processes enrol overlapping device lists in one wave at once and a fourth enrols one of them in
    another wave: the three succeed (enrolment is idempotent), the fourth is refused as a device in another wave
    (or wins, and then the others are refused): never a constraint error, never a device in two waves."""
    with Store.open(store_location) as setup:
        for wave in ("w", "other"):
            setup.create_wave(wave, playbook_name="p", playbook_hash=content_hash("x"))
    names = [f"PC-{i:03}" for i in range(60)]
    lists = [("w", names[:40]), ("w", names[10:50]), ("w", names[20:]), ("other", names[55:56])]
    with CONTEXT.Manager() as manager, ProcessPoolExecutor(len(lists), mp_context=CONTEXT) as pool:
        barrier = manager.Barrier(len(lists))
        futures = [pool.submit(enroll_at_once, store_location, wave, chunk, barrier) for wave, chunk in lists]
        outcomes = [future.result(timeout=240) for future in futures]
    assert all(o is None or o.startswith("DeviceInOtherWave") for o in outcomes), outcomes
    with Store.open(store_location, read_only=True) as store:
        in_w = {d.name for d in store.list_devices("w")}
        in_other = {d.name for d in store.list_devices("other")}
        assert not in_w & in_other
        if outcomes[3] is None:  # the other wave won PC-055: the third list was refused whole
            assert in_other == {"PC-055"} and outcomes[2] is not None
        else:
            assert in_w == set(names) and in_other == set()
