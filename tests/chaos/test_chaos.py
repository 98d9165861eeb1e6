"""Chaos, as a test that can fail: seeded schedules of faults, people, DC flaps, pauses and SIGKILLs against the real
wave engine, then ``resume`` to the end and the invariants of :mod:`tests.chaos.invariants`.

Why seeded schedules and not hypothesis' ``RuleBasedStateMachine``: the orchestrator runs on its own in a child
process and drives time by its own waits, so the test cannot step it rule by rule; one run costs seconds (a lab,
real PSRP, a child process), too much for shrinking to pay off; and a schedule must replay from one number printed
in CI. So each seed derives one whole schedule (:mod:`tests.chaos.schedule`); consecutive seeds share out every
(fault kind, device state) pair round-robin, which the first test below checks.

How to run::

    pytest tests/chaos                                         # the 30 default schedules (CI)
    pytest tests/chaos --run-slow                              # and the 200 slow ones (seeds 1000-1199)
    pytest tests/chaos -m slow                                 # only the 200 slow ones
    MIGRATOR_CHAOS_SEED=1234 pytest tests/chaos -k replay -s   # replay one schedule and print what happened

A failure prints the seed, the replay command, the schedule, what happened (in virtual time) and the end state.
Schedules run on worker processes, two at a time by default (MIGRATOR_CHAOS_WORKERS=n to change).
Default seeds are 0-29 (3 to 4 devices, to stay cheap in CI); slow seeds are 1000-1199 (3 to 6 devices); a seed
picks its fleet size by that rule, so replaying any seed rebuilds the same schedule.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.chaos.conftest import SUMMARIES
from tests.chaos.harness import run_schedule
from tests.chaos.invariants import check_all
from tests.chaos.schedule import COMBOS, FAULT_KINDS
from tests.chaos.states import TARGET_DEVICE_STATES
from tests.chaos.verdict import DEFAULT_SEEDS, REPLAY_ENV, SLOW_SEEDS, ChaosPool, report, schedule_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def chaos_pool(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosPool]:
    """The schedules of every seed this session runs, started at once on worker processes."""
    seeds = [
        item.callspec.params["seed"]
        for item in request.session.items
        if item.module is request.module
        and hasattr(item, "callspec")
        and "seed" in item.callspec.params
        and item.get_closest_marker("skip") is None
    ]
    pool = ChaosPool(seeds, tmp_path_factory.mktemp("chaos"))
    yield pool
    request.config.stash.setdefault(SUMMARIES, []).append(pool.close())


def _judged(pool: ChaosPool, seed: int) -> None:
    verdict = pool.verdict(seed)
    if verdict.violations:
        pytest.fail(verdict.report, pytrace=False)


def test_the_default_seeds_plan_every_fault_kind_at_every_state() -> None:
    """Seeds 0-29 arm every lab fault kind at every targeted device state, waiting states included."""
    planned = {(t.kind, t.state) for seed in DEFAULT_SEEDS for t in schedule_for(seed).triggers}
    assert set(COMBOS) <= planned
    assert {kind for kind, _ in planned} == set(FAULT_KINDS)
    assert {state for _, state in planned} >= set(TARGET_DEVICE_STATES)


def test_the_default_seeds_combine_people_flaps_pauses_and_kills() -> None:
    """Every behaviour, shared devices, DC flaps, pauses and both kinds of kill occur in the default seeds."""
    schedules = [schedule_for(seed) for seed in DEFAULT_SEEDS]
    assert {p.compliance for s in schedules for p in s.people} == {"prompt", "slow", "never", "away"}
    assert any(p.rdp_only for s in schedules for p in s.people)
    assert any(len(s.waves) == 2 for s in schedules)
    assert any(s.flaps for s in schedules) and any(s.pauses for s in schedules)
    assert {k.kind for s in schedules for k in s.kills} == {"journal", "moment"}
    assert all(3 <= len(s.devices) <= 4 for s in schedules)
    assert schedule_for(7) == schedule_for(7)  # one seed, one schedule


def test_every_seed_makes_a_schedule() -> None:
    """The generator never fails for a seed of either suite (a slow seed must not fail only when run)."""
    for seed in [*DEFAULT_SEEDS, *SLOW_SEEDS]:
        schedule = schedule_for(seed)
        assert 3 <= len(schedule.devices) == len(set(schedule.devices)) <= 6
        assert sorted(d for wave in schedule.waves for d in wave) == sorted(schedule.devices)


def test_a_schedule_without_chaos_breaks_nothing(tmp_path: Path) -> None:
    """The harness itself (a child orchestrator on the parent's clock, the probe, the checks) finds nothing wrong
    with a calm run: cooperative people, no fault, no flap, no pause, no kill; every device ends final."""
    base = schedule_for(3)
    people = tuple(replace(p, compliance="prompt", rdp_only=False, privileged=False) for p in base.people)
    calm = replace(base, people=people, triggers=(), flaps=(), pauses=(), kills=())
    outcome = run_schedule(calm, tmp_path)
    violations = check_all(outcome)
    assert not violations, report(calm, outcome, violations)
    assert outcome.settled and outcome.kills == 0
    assert {d.state for d in outcome.devices} <= {"migrated", "already_cloud", "ineligible"}, report(calm, outcome, [])


@pytest.mark.parametrize("seed", DEFAULT_SEEDS)
def test_chaos(seed: int, chaos_pool: ChaosPool) -> None:
    """After the schedule of ``seed`` and a resume to the end, every invariant holds."""
    _judged(chaos_pool, seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", SLOW_SEEDS)
def test_chaos_slow(seed: int, chaos_pool: ChaosPool) -> None:
    """The same, over 200 more schedules with up to six devices."""
    _judged(chaos_pool, seed)


def test_replay(tmp_path: Path) -> None:
    """Replay the schedule of ``MIGRATOR_CHAOS_SEED`` in this process (skipped without it); print what happened."""
    value = os.environ.get(REPLAY_ENV)
    if not value:
        pytest.skip(f"set {REPLAY_ENV}=<seed> to replay one chaos schedule")
    schedule = schedule_for(int(value))
    outcome = run_schedule(schedule, tmp_path)
    violations = check_all(outcome)
    print(report(schedule, outcome, violations))
    assert not violations, "\n".join(str(v) for v in violations)
