"""An ``ad-group`` wave worked by two `migrator worker` processes on PostgreSQL, the first of them (the wave
coordinator) killed with SIGKILL at a seeded journal point of its own: a device step's, or a group change's (the
coordinator journals the batch's directory changes). The other worker takes its devices over once their leases
expire and the coordinator role at once (the advisory lock goes with the dead session); an in-doubt group change
is settled by re-reading the groups. Nothing is lost: every device migrated, each computer moved once, no
container deleted twice, no change left in doubt.

Two seeds run in CI; ``pytest -m slow tests/crash/test_workers_group_crash.py`` runs more. A failing seed is
printed and named in the assertion (``MIGRATOR_TEST_SEED=<seed>`` replays it)."""

from __future__ import annotations

import os
import random
import signal
from pathlib import Path

import pytest

from migrator.lab.directory.build import CLOUD_TRUST_GROUP, HELLO_GPO_GROUP
from migrator.lab.runtime import LabRuntime
from migrator.lab.truth import fleet_truth
from migrator.store import Store
from tests.engine import test_ad_group_wave as ad_wave
from tests.engine import test_group_waves_workers as group_waves
from tests.engine.test_group_waves_workers import (
    WAVE,
    at_worker_pace,
    choose_ad_devices,
    moved,
    work_group_wave,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]

CI_SEEDS = range(2)
SLOW_SEEDS = range(2, 12)
# Worker 0 commits about 25 journal points in this wave when nothing kills it (half the devices' steps, and the
# group changes it coordinates): the kill lands anywhere in it.
POINTS = 25


ad_lab = group_waves.ad_lab  # the ad-group lab, as a fixture here


def _seeded_kill(seed: int, runtime: LabRuntime, inventory: Path, url: str, work: Path) -> None:
    crash_at = random.Random(seed).randint(1, POINTS)
    print(f"seed {seed}: the coordinating worker killed at its journal point {crash_at}")
    try:
        devices = choose_ad_devices(runtime)
        playbook = at_worker_pace(ad_wave._playbook(work))
        worked = work_group_wave(url, inventory, playbook, devices, work, crash_at=crash_at)
        assert worked.state == "completed", (worked.states, worked.outputs[1][-3000:])
        assert set(worked.states.values()) == {"migrated"}, worked.states
        assert worked.exits[1] == 0, worked.outputs[1][-3000:]
        assert worked.exits[0] in (0, -signal.SIGKILL), worked.outputs[0][-3000:]
        assert moved(url) == dict.fromkeys(devices, 1)
        for name in devices:
            groups = ad_wave._groups(runtime, runtime.lab.device(name))
            assert CLOUD_TRUST_GROUP in groups and HELLO_GPO_GROUP not in groups, (name, groups)
        truth = {d["name"]: d for d in fleet_truth(runtime.lab)["devices"]}
        deletions = {(n, u["name"]): u["container_deletions"] for n in devices for u in truth[n]["users"]}
        assert max(deletions.values()) == 1, deletions  # the certificate trust users' containers, once each
    except AssertionError as error:
        raise AssertionError(
            f"seed {seed} (crash at {crash_at}; replay: MIGRATOR_TEST_SEED={seed}): {error}"
        ) from error
    with Store.open(url) as store:
        resolved = sum(e.status == "resolved" for e in store.directory_changes(WAVE))
    print(
        f"seed {seed}: killed: {worked.exits[0] == -signal.SIGKILL}; group changes resolved by re-reading: {resolved}"
    )


def _seeds(default: range) -> list[int]:
    chosen = os.environ.get("MIGRATOR_TEST_SEED")
    return [int(chosen)] if chosen else list(default)


@pytest.mark.parametrize("seed", _seeds(CI_SEEDS))
def test_the_coordinating_worker_killed_at_a_seeded_journal_point(
    ad_lab: tuple[LabRuntime, Path], postgres_url: str, tmp_path: Path, seed: int
) -> None:
    """The coordinating worker killed at a seeded journal point: the other finishes; nothing lost or doubled."""
    _seeded_kill(seed, *ad_lab, postgres_url, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("seed", _seeds(SLOW_SEEDS))
def test_the_coordinating_worker_killed_many_seeds(
    ad_lab: tuple[LabRuntime, Path], postgres_url: str, tmp_path: Path, seed: int
) -> None:
    """The same with more seeds (slow)."""
    _seeded_kill(seed, *ad_lab, postgres_url, tmp_path)
