"""Several workers on one PostgreSQL store, one of them killed with SIGKILL at a random journal point (seeded): the
others take its devices and, if it coordinated, the wave over. Nothing is lost, no container is deleted twice,
and the wave ends where a crash-free run of the same workers ends (states, users, deletions, policies, steps).

A few seeds run in CI; ``pytest -m slow tests/crash/test_workers_crash.py`` runs many more. A failing seed is
printed and named in every assertion (``MIGRATOR_TEST_SEED=<seed>`` replays its choices)."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from migrator.lab.model import Fleet
from tests.crash.test_crash import BOOK, _check
from tests.crash.workers import MultiOutcome, run_workers
from tests.engine.labkit import cooperative, make_fleet, sign_everyone_in
from tests.postgres import postgres_session

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

CI_SEEDS = range(3)
SLOW_SEEDS = range(3, 23)


def fleet() -> Fleet:
    """Four hybrid devices (two certificate trust, two key trust), each with one cooperative user."""
    generated = make_fleet(24, 11, "key=50,cert=50,cloud=0,none=0")
    chosen = []
    for trust in ("cert", "key"):
        chosen += [
            d
            for d in generated.devices
            if d.join_type == "hybrid"
            and d.users[0].container
            and d.users[0].container.trust == trust
            and d.os.supports_cloud_trust
            and d.domain == "corp.contoso.com"
            and d.tpm.present
        ][:2]
    assert len(chosen) == 4
    generated.devices = chosen
    for device in generated.devices:
        device.dc_reachable = True
        device.users = device.users[:1]
    return cooperative(generated)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> MultiOutcome:
    """A crash-free run of two workers, in a schema of its own (postgres_url is per test; this runs once)."""
    session = postgres_session()
    name, url = session.new_schema()
    try:
        return run_workers(fleet(), tmp_path_factory.mktemp("reference"), url, BOOK, workers=2, setup=sign_everyone_in)
    finally:
        session.drop_schema(name)


def test_the_crash_free_run_of_two_workers_migrates_every_device(reference: MultiOutcome) -> None:
    """Crash-free, two workers: all four migrate; each certificate trust container is deleted once, no key trust
    container at all."""
    assert set(reference.states.values()) == {"migrated"}
    deletions = sorted(u["container_deletions"] for d in reference.truth["devices"] for u in d["users"])
    assert deletions == [0, 0, 1, 1]


def _seeded_kill(seed: int, reference: MultiOutcome, work: Path, url: str) -> None:
    rng = random.Random(seed)
    workers = rng.randint(2, 4)
    victim = rng.randrange(workers)
    # A worker commits about its share of the run's journal points, less when it claims little: aim within half of
    # it so that most seeds kill (a victim that never gets that far ends the run unkilled, which must hold too).
    crash_at = rng.randint(1, max(2, reference.journal_points // (2 * workers)))
    print(f"seed {seed}: {workers} workers, worker {victim} killed at its journal point {crash_at}")
    try:
        outcome = run_workers(
            fleet(), work, url, BOOK, workers=workers, victim=victim, crash_at=crash_at, setup=sign_everyone_in
        )
        _check(outcome, reference)
    except AssertionError as error:
        raise AssertionError(
            f"seed {seed} ({workers} workers, victim {victim}, crash at {crash_at}; replay: "
            f"MIGRATOR_TEST_SEED={seed}): {error}"
        ) from error
    print(f"seed {seed}: victim killed: {outcome.victim_killed}")


def _seeds(default: range) -> list[int]:
    chosen = os.environ.get("MIGRATOR_TEST_SEED")
    return [int(chosen)] if chosen else list(default)


@pytest.mark.parametrize("seed", _seeds(CI_SEEDS))
def test_one_of_several_workers_killed_at_a_random_journal_point(
    reference: MultiOutcome, tmp_path: Path, postgres_url: str, seed: int
) -> None:
    """2 to 4 workers, one killed at a seeded journal point: same end as crash-free, nothing lost or doubled."""
    _seeded_kill(seed, reference, tmp_path, postgres_url)


@pytest.mark.slow
@pytest.mark.parametrize("seed", _seeds(SLOW_SEEDS))
def test_one_of_several_workers_killed_many_seeds(
    reference: MultiOutcome, tmp_path: Path, postgres_url: str, seed: int
) -> None:
    """The same with more seeds (slow)."""
    _seeded_kill(seed, reference, tmp_path, postgres_url)
