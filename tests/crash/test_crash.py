"""Kill the driver with SIGKILL at every journal point in turn, and at random points across seeded runs;
after restarts every device must end where a crash-free run ends, with no container deleted twice, no device
lost or duplicated and no step skipped (checked against the lab's truth and the journal).

CI kills at every journal point of the certificate trust device alone (its path has every step kind but the key
trust one: container deletion, sign-out prompt, re-provisioning) and runs two seeds of random kills on both
devices; ``pytest -m slow tests/crash/test_crash.py`` kills at every journal point of the two-device run and runs
four more seeds."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from migrator.lab.model import Fleet
from migrator.playbook import Playbook, Waits
from tests.crash.harness import Outcome, run
from tests.engine.labkit import cooperative, make_fleet, playbook, sign_everyone_in

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

BOOK: Playbook = playbook().model_copy(
    update={
        "waits": Waits(
            recheck_every=6 * 3600, user_deadline=2 * 86400, dc_deadline=2 * 86400, reprovision_deadline=2 * 86400
        )
    }
)


def small_fleet() -> Fleet:
    """One hybrid certificate trust device and one key trust device, each with one cooperative user."""
    fleet = make_fleet(8, 11, "key=50,cert=50,cloud=0,none=0")
    cert = next(
        d
        for d in fleet.devices
        if d.join_type == "hybrid"
        and d.users[0].container
        and d.users[0].container.trust == "cert"
        and d.os.supports_cloud_trust
        and d.domain != "fabrikam.local"
        and d.tpm.present
    )
    key = next(
        d
        for d in fleet.devices
        if d.join_type == "hybrid"
        and d.users[0].container
        and d.users[0].container.trust == "key"
        and d.os.supports_cloud_trust
        and d.domain == "corp.contoso.com"
        and d.tpm.present
    )
    fleet.devices = [cert, key]
    for device in fleet.devices:
        device.dc_reachable = True
        device.users = device.users[:1]
    return cooperative(fleet)


def cert_fleet() -> Fleet:
    """The certificate trust device of :func:`small_fleet` alone."""
    fleet = small_fleet()
    fleet.devices = fleet.devices[:1]
    return fleet


def _deletions(outcome: Outcome) -> dict[str, int]:
    return {u["sid"]: u["container_deletions"] for d in outcome.truth["devices"] for u in d["users"]}


def _policies(outcome: Outcome) -> dict[str, Any]:
    return {d["name"]: d["policy"] for d in outcome.truth["devices"]}


def _effects(outcome: Outcome) -> dict[str, set[tuple[str | None, str]]]:
    """Per device, the steps that took effect (done, or resolved as applied): a step skipped would be missing."""
    effects: dict[str, set[tuple[str | None, str]]] = {}
    for device, entries in outcome.journal.items():
        effects[device] = {
            (user, step)
            for user, step, status, result in entries
            if status == "done" or (status == "resolved" and isinstance(result, dict) and result.get("applied"))
        }
    return effects


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    return run(small_fleet(), tmp_path_factory.mktemp("reference"), BOOK, setup=sign_everyone_in)


def _check(outcome: Outcome, reference: Outcome) -> None:
    assert outcome.states == reference.states == {n: "migrated" for n in reference.states}
    assert outcome.users == reference.users
    assert _deletions(outcome) == _deletions(reference)  # exactly once where the reference deleted
    assert all(count <= 1 for count in _deletions(outcome).values())
    assert _policies(outcome) == _policies(reference)
    for device, steps in _effects(reference).items():
        missing = {step for _, step in steps} - {step for _, step in _effects(outcome)[device]}
        assert not missing, (device, missing)


def test_the_reference_run_migrates_both_devices(reference: Outcome) -> None:
    """Crash-free: both devices migrate; the cert user's container was deleted once, the key user's never."""
    assert set(reference.states.values()) == {"migrated"}
    assert sorted(_deletions(reference).values()) == [0, 1]
    assert reference.journal_points > 10


@pytest.fixture(scope="module")
def cert_reference(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    return run(cert_fleet(), tmp_path_factory.mktemp("cert-reference"), BOOK, setup=sign_everyone_in)


def _kill_at_every_point(fleet: Callable[[], Fleet], reference: Outcome, tmp_path: Path) -> None:
    points = reference.journal_points
    for number in range(1, points + 1):
        outcome = run(fleet(), tmp_path / f"kill-{number}", BOOK, kills=[number], setup=sign_everyone_in)
        assert outcome.kills == 1, number
        _check(outcome, reference)
    print(f"\ncrash suite: {points} kill points, each killed once and restarted")


def test_a_kill_at_every_journal_point_of_the_certificate_trust_device(cert_reference: Outcome, tmp_path: Path) -> None:
    """SIGKILL right after each journal commit of the certificate trust device's run in turn; restart; same end."""
    # At least the policy plan (one call), the user's identify and the guarded delete, each an intent and an outcome.
    assert cert_reference.journal_points >= 6
    assert sorted(_deletions(cert_reference).values()) == [1]
    _kill_at_every_point(cert_fleet, cert_reference, tmp_path)


@pytest.mark.slow
def test_a_kill_at_every_journal_point(reference: Outcome, tmp_path: Path) -> None:
    """SIGKILL right after each journal commit (intent, outcome, resolution) of the two-device run in turn;
    restart; same end (slow)."""
    _kill_at_every_point(small_fleet, reference, tmp_path)


def _random_kills(reference: Outcome, tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    kills = [rng.randint(1, reference.journal_points // 2) for _ in range(rng.randint(2, 3))]
    try:
        outcome = run(small_fleet(), tmp_path / "run", BOOK, kills=kills, setup=sign_everyone_in)
        _check(outcome, reference)
    except AssertionError as error:
        raise AssertionError(f"seed {seed} (kills at {kills}): {error}") from error


@pytest.mark.parametrize("seed", range(2))
def test_random_kills_across_seeded_runs(reference: Outcome, tmp_path: Path, seed: int) -> None:
    """Two or three kills at random journal points of successive driver processes; same end as crash-free."""
    _random_kills(reference, tmp_path, seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(2, 6))
def test_random_kills_more_seeds(reference: Outcome, tmp_path: Path, seed: int) -> None:
    """The same with four more seeds (slow)."""
    _random_kills(reference, tmp_path, seed)
