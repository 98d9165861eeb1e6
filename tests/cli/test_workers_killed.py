"""Issue 16, done when: two `migrator worker` processes on one PostgreSQL store (`migrator run --no-work` plans
the wave and follows it) migrate a lab wave while one of them is killed with SIGKILL mid-wave, and nothing is lost.

Everything is the product as an operator runs it: `migrator lab up` serves the fleet, `migrator run --no-work`
plans the wave and follows it, two `migrator worker` processes work it; the victim kills itself with SIGKILL right
after a seeded journal commit (``MIGRATOR_CRASH_AT``, the crash tests' hook), its leases expire and the survivor
finishes the wave.
Nothing lost means: every device ends in the state a crash-free run gives this fleet (every device eligible and
its user cooperative, so `migrated`, as tests/crash/test_workers_crash.py's crash-free reference shows), every
certificate trust container was deleted exactly once and no key trust container at all (the lab's own counters,
`migrator lab inspect --json`), every user's effective policy is cloud trust, and the audit chain verifies.

CI runs 6 devices; ``pytest -m slow tests/cli/test_workers_killed.py`` runs the 200-device wave of the issue. The
seed is printed and named in every assertion (``MIGRATOR_TEST_SEED=<seed>`` replays its choices).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from migrator.errors import ExitCode
from migrator.lab import policy
from migrator.lab.fleetfile import save_fleet
from migrator.lab.model import Fleet
from migrator.store import Store
from tests.cli.test_workers_lab import ROOT, migrator_command, wave_planned, worker_fleet, worker_playbook
from tests.output import read_until

pytestmark = [pytest.mark.integration]

LEASE_SECONDS = "3"  # real seconds: the victim's devices come back this long after it died


def eligible_fleet(count: int, seed: int) -> Fleet:
    """``count`` hybrid devices that can all take cloud Kerberos trust (build, TPM), every user cooperative (each
    user the fleet gives a device is kept: one dropped would leave its Hello container behind, tracked, never
    signing in) and holding a Hello container (one without could provision a certificate trust container at a
    sign-in before the wave reaches it, which the wave then rightly deletes: the expected deletions would be
    wrong). A device whose users' Group Policy hive also sets certificate trust is left out: a registry write
    cannot move it (the user's policy wins), so it waits, then stalls at its deadline, days away in real time."""
    fleet = worker_fleet(count * 4, seed)
    fleet.devices = [
        d
        for d in fleet.devices
        if d.join_type == "hybrid"
        and d.os.supports_cloud_trust
        and d.tpm.present
        and all(u.container for u in d.users)
        and not any(d.registry.key_exists(policy.gpo_user_key(u.sid)) for u in d.users)
    ][:count]
    assert len(fleet.devices) == count, "the generated fleet has too few eligible devices: use a larger pool"
    for device in fleet.devices:
        device.sessions.clear()
    return fleet


def _start(args: list[str], env: dict[str, str], extra: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        migrator_command(*args),
        env={**env, **(extra or {})},
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _lab_up(fleet_path: Path, inventory: Path) -> subprocess.Popen[str]:
    """`migrator lab up` on free ports, read up to its ready line."""
    command = migrator_command(
        "lab", "up", "--fleet", str(fleet_path), "--inventory", str(inventory), "--speed", "6000",
        "--http-port", "0", "--https-port", "0", "--ldap-port", "0", "--ldaps-port", "0",
        "--no-gpo-refresh", "--no-intune-refresh",
    )  # fmt: skip
    lab = subprocess.Popen(
        command,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    read_until(lab, "ready")
    return lab


def _wave_with_a_killed_worker(
    seed: int, count: int, crash_range: int, work: Path, url: str, *, concurrency: int, timeout: float
) -> None:
    rng = random.Random(seed)
    victim = rng.randrange(2)
    crash_at = rng.randint(1, crash_range)
    print(f"seed {seed}: {count} devices, worker {victim} killed right after its journal commit {crash_at}")
    fleet = eligible_fleet(count, 5 + seed)
    cert_users = {
        u.qualified_name for d in fleet.devices for u in d.users if u.container and u.container.trust == "cert"
    }
    inventory = work / "lab" / "inventory.yaml"
    lab = _lab_up(save_fleet(fleet, work / "fleet.json"), inventory)
    env = {**os.environ, "MIGRATOR_STORE": url, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    secrets = str(inventory.parent / "lab-secrets.env")
    processes: list[subprocess.Popen[str]] = []
    workers: list[subprocess.Popen[str]] = []
    try:
        kerberos = [f"--entra-kerberos={d.dns_name}=yes" for d in fleet.domains]
        run = _start(
            [
                "run", "-i", str(inventory), "--playbook", str(worker_playbook(work)), "--wave", "w",
                "--batch-size", str(count), "--concurrency", str(concurrency), "--max-fail-percent", "0",
                "--secrets", secrets, "--yes", "--state", str(work / "run-state"), "--lease-seconds", LEASE_SECONDS,
                "--no-work", *kerberos,
            ],
            env,
        )  # fmt: skip
        processes.append(run)
        deadline = time.monotonic() + 120
        while not wave_planned(url):
            assert run.poll() is None, run.communicate()[0]
            assert time.monotonic() < deadline, "run did not plan the wave"
            time.sleep(0.2)
        # `run --no-work` plans the wave and follows it; the two workers visit every device. The victim starts first
        # and is serving (so it claims devices, and coordinates) before the survivor starts: it reaches its journal
        # commit whatever the machine's load, instead of racing a `run` that could finish a small wave alone.
        started: dict[int, subprocess.Popen[str]] = {}
        for index in (victim, 1 - victim):
            args = ["worker", "--secrets", secrets, "--state", str(work / f"w{index}")]
            args += ["--concurrency", str(concurrency)]
            extra = {"MIGRATOR_CRASH_AT": str(crash_at)} if index == victim else None
            started[index] = _start([*args, "--lease-seconds", LEASE_SECONDS], env, extra)
            read_until(started[index], "serving")
        workers += [started[0], started[1]]
        processes += workers
        try:
            output, _ = run.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with Store.open(url, read_only=True) as store:
                unsettled = {d.name: d.state for d in store.list_devices(wave="w") if d.state != "migrated"}
            raise AssertionError(f"the wave did not end within {timeout:.0f} s; not migrated: {unsettled}") from None
        assert run.returncode == ExitCode.OK, output
        killed = workers[victim].poll()
        assert killed == -signal.SIGKILL, f"the victim was not killed before the wave ended (exit {killed})"
        with Store.open(url, read_only=True) as store:
            assert store.get_wave("w").state == "completed"
            states = {d.name: d.state for d in store.list_devices(wave="w")}
            assert store.verify_audit().ok, store.verify_audit()
        expected = {d.name: "migrated" for d in fleet.devices}
        assert states == expected, {n: s for n, s in states.items() if s != "migrated"}
        inspected = subprocess.run(
            migrator_command("lab", "inspect", "--inventory", str(inventory), "--json"),
            env=env, text=True, capture_output=True, check=True, timeout=120,
        )  # fmt: skip
        truth = json.loads(inspected.stdout)
        users = [user for device in truth["devices"] for user in device["users"]]
        assert len(users) == sum(len(d.users) for d in fleet.devices)
        deletions = {u["name"]: u["container_deletions"] for u in users}
        assert deletions == {u["name"]: int(u["name"] in cert_users) for u in users}, deletions
        assert {u["policy"] for u in users} == {"cloud"}, [(u["name"], u["policy"]) for u in users]
        assert all(u["container"] and u["container"]["trust"] == "cloud" for u in users if u["name"] in cert_users)
    except AssertionError as error:
        raise AssertionError(
            f"seed {seed} ({count} devices, worker {victim} killed at journal commit {crash_at}; replay: "
            f"MIGRATOR_TEST_SEED={seed}): {error}"
        ) from error
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
        lab.send_signal(signal.SIGINT)
        lab.communicate(timeout=60)
    survivor = workers[1 - victim]
    assert survivor.returncode == ExitCode.OK, f"seed {seed}: the surviving worker exited {survivor.returncode}"


def _seed(default: int) -> int:
    return int(os.environ.get("MIGRATOR_TEST_SEED") or default)


@pytest.mark.timeout(600)
def test_a_worker_killed_mid_wave_loses_nothing(postgres_url: str, tmp_path: Path) -> None:
    """6 devices, run and two workers, one worker SIGKILLed at a seeded journal commit: all migrated, as crash-free."""
    _wave_with_a_killed_worker(_seed(1), 6, 3, tmp_path, postgres_url, concurrency=2, timeout=400)


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_a_worker_killed_mid_wave_of_200_devices_loses_nothing(postgres_url: str, tmp_path: Path) -> None:
    """Issue 16's wave: 200 devices, one of two workers SIGKILLed mid-wave; nothing lost."""
    _wave_with_a_killed_worker(_seed(1), 200, 200, tmp_path, postgres_url, concurrency=8, timeout=1800)
