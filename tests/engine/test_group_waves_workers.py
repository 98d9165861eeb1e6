"""End to end on PostgreSQL: two `migrator worker` processes carry out a wave whose policy channel acts per batch.

* ``ad-group``: four devices of two domains (CORP key trust, EMEA certificate trust) in two batches, each batch
  spanning both domains; the wave coordinator (one of the workers) moves each batch's computer accounts once its
  devices are held before their policy step, and the workers' visits then refresh their policy.
* ``intune-group`` with ``entra: remove_stale_hello_keys``: the same through Microsoft Graph, and each migrated
  certificate trust user's old Hello key removed from the tenant by the worker that verified the user.

The labs are the ones of ``test_ad_group_wave.py`` and ``test_intune_group_wave.py`` (imported); the wave is
planned in this process by the product's ``plan_wave`` (as ``migrator run`` does), then worked by the workers only.
:func:`work_group_wave` is also the crash test's (``tests/crash/test_workers_group_crash.py``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from migrator.cloud.cleanup import normal_key_id
from migrator.engine.channels import MIGRATE
from migrator.engine.service import RealClock, WaveRequest, plan_wave
from migrator.engine.wavestore import StoreWaves
from migrator.lab.directory.build import CLOUD_TRUST_GROUP, HELLO_GPO_GROUP
from migrator.lab.runtime import LabRuntime
from migrator.lab.truth import fleet_truth
from migrator.remote.credentials import load_credentials
from migrator.store import Store
from tests.engine import test_ad_group_wave as ad_wave
from tests.engine import test_intune_group_wave as intune_wave
from tests.engine.test_intune_group_wave import lab  # noqa: F401 - the intune-group lab, as a fixture here

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
ROOT = Path(__file__).resolve().parents[2]
WAVE = "w"


@pytest.fixture
def ad_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LabRuntime, Path]]:
    monkeypatch.setenv("KRB5_CONFIG", os.environ.get("KRB5_CONFIG", "/etc/krb5.conf"))
    runtime, inventory = ad_wave._start(tmp_path, "ntlm")
    try:
        yield runtime, inventory
    finally:
        runtime.stop()


def at_worker_pace(path: Path, **extra: object) -> Path:
    """The playbook looking again every second: the workers run on the wall clock (the lab's clock is faster)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["waits"] = {**data.get("waits", {}), "recheck_every": "1s"}
    data.update(extra)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@dataclass
class Worked:
    """How a wave worked by workers ended: the wave's state and reason, device states, each worker's exit and
    output (the victim's exit is -SIGKILL when it was killed)."""

    state: str
    states: dict[str, str]
    exits: list[int]
    outputs: list[str]


def _migrator(*args: str) -> list[str]:
    return [sys.executable, "-m", "migrator", *args]


def work_group_wave(
    url: str,
    inventory: Path,
    playbook: Path,
    devices: Sequence[str],
    work: Path,
    *,
    crash_at: int | None = None,
    timeout: float = 180.0,
) -> Worked:
    """Plan the wave (batches of 2) in this process, then let two `migrator worker` processes work it until it
    leaves ``running``; worker 0 starts first (the coordinator) and, with ``crash_at``, is SIGKILLed at that
    journal point of its own (MIGRATOR_CRASH_AT): worker 1 then takes its devices (short leases) and the coordinator
    role over."""
    secrets = inventory.parent / "lab-secrets.env"
    credentials = load_credentials(secrets)
    request = WaveRequest(
        inventory=inventory,
        playbook=str(playbook),
        wave=WAVE,
        devices=tuple(devices),
        batch_size=2,
        concurrency=2,
        change_ticket="CHG-16",
    )
    with Store.open(url) as store:
        plan = plan_wave(store, request, credentials, RealClock(), secrets_file=secrets, with_runner=False)
        plan.close()  # the workers work it, as `run` on a shared store
        StoreWaves(store, credentials.username).set_wave_state(WAVE, "running", "test")
    env = {**os.environ, "MIGRATOR_STORE": url, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    workers: list[subprocess.Popen[str]] = []
    for index in range(2):
        args = ["worker", "--secrets", str(secrets), "--state", str(work / f"w{index}"), "--concurrency", "2"]
        extra = {"MIGRATOR_CRASH_AT": str(crash_at)} if crash_at is not None and index == 0 else {}
        workers.append(
            subprocess.Popen(
                _migrator(*args, "--lease-seconds", "3"),
                env={**env, **extra},
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
        )
        if index == 0:  # the first one takes the coordinator role: the second starts once it is registered
            _wait_for_a_worker(url, workers[0])
    try:
        deadline = time.monotonic() + timeout
        with Store.open(url) as store:
            while (state := store.get_wave(WAVE).state) == "running":
                survivors = [w for i, w in enumerate(workers) if i > 0 or crash_at is None]
                assert all(w.poll() is None for w in survivors), [w.poll() for w in workers]
                assert time.monotonic() < deadline, [(d.name, d.state) for d in store.list_devices(wave=WAVE)]
                time.sleep(0.3)
            states = {d.name: d.state for d in store.list_devices(wave=WAVE)}
            assert store.verify_audit().ok
    finally:
        outputs = []
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in workers:
            out, _ = worker.communicate(timeout=120)
            outputs.append(out)
    return Worked(state, states, [int(w.returncode) for w in workers], outputs)


def _cleanups(work: Path) -> list[str]:
    """What the workers logged of their stale-key cleanups (to say why a key was left)."""
    return [
        line
        for log in sorted(work.glob("w*/logs/migrator.jsonl"))
        for line in log.read_text(encoding="utf-8").splitlines()
        if "stale Hello keys" in line
    ]


def _wait_for_a_worker(url: str, worker: subprocess.Popen[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    with Store.open(url) as store:
        while not store.workers():
            assert worker.poll() is None, worker.communicate()[0][-3000:]
            assert time.monotonic() < deadline, "the first worker never registered"
            time.sleep(0.1)


def moved(url: str) -> dict[str, int]:
    """Per device, how many settled migrate changes of the directory journal moved it (1 each: moved once): done
    entries, and in-doubt entries a coordinator resolved by re-reading as applied to it. None is left in doubt."""
    counts: dict[str, int] = {}
    with Store.open(url) as store:
        for entry in store.directory_changes(WAVE):
            assert not entry.in_doubt, entry
            if entry.purpose != MIGRATE:
                continue
            wanted = entry.intent.get("wanted")
            names: list[str] = [str(n) for n in wanted] if isinstance(wanted, dict) else []
            if entry.status == "resolved":
                held = entry.outcome.get("as_wanted") if isinstance(entry.outcome, dict) else None
                names = [str(n) for n in held] if isinstance(held, list) else []
            elif entry.status != "done":
                names = []
            for name in names:
                counts[name] = counts.get(name, 0) + 1
    return counts


def choose_ad_devices(runtime: LabRuntime) -> list[str]:
    """Two CORP key trust and two EMEA certificate trust devices, alternating: each batch of 2 spans both."""
    truth = {d["name"]: d for d in fleet_truth(runtime.lab)["devices"]}
    plain = [d for d in runtime.fleet.devices if ad_wave._plain(d)]
    key = [d.name for d in plain if d.domain == ad_wave.CORP and truth[d.name]["policy"]["effective"] == "key"][:2]
    cert = [d.name for d in plain if d.domain == ad_wave.EMEA and truth[d.name]["policy"]["effective"] == "cert"][:2]
    assert len(key) == 2 and len(cert) == 2, "the seeded fleet has both kinds"
    return [key[0], cert[0], key[1], cert[1]]


def test_two_workers_carry_out_an_ad_group_wave_over_two_domains(
    ad_lab: tuple[LabRuntime, Path], postgres_url: str, tmp_path: Path
) -> None:
    """Four devices, two batches, two domains: all migrated; each batch moved once per domain (four journal
    entries, each device in one); every computer in the cloud trust group and out of the certificate trust one."""
    runtime, inventory = ad_lab
    devices = choose_ad_devices(runtime)
    playbook = at_worker_pace(ad_wave._playbook(tmp_path))
    worked = work_group_wave(postgres_url, inventory, playbook, devices, tmp_path)
    assert worked.state == "completed", (worked.states, worked.outputs)
    assert set(worked.states.values()) == {"migrated"}, worked.states
    assert worked.exits == [0, 0], worked.outputs
    assert moved(postgres_url) == dict.fromkeys(devices, 1)
    with Store.open(postgres_url) as store:
        entries = store.directory_changes(WAVE)
    assert sorted((e.batch, e.domain.casefold()) for e in entries) == [
        (batch, domain) for batch in (0, 1) for domain in sorted((ad_wave.CORP, ad_wave.EMEA))
    ]
    for name in devices:
        groups = ad_wave._groups(runtime, runtime.lab.device(name))
        assert CLOUD_TRUST_GROUP in groups and HELLO_GPO_GROUP not in groups, (name, groups)


def test_two_workers_carry_out_an_intune_group_wave_and_remove_stale_keys(
    lab: tuple[LabRuntime, Path],  # noqa: F811 - the imported fixture
    postgres_url: str,
    tmp_path: Path,
) -> None:
    """Two key and two certificate trust Intune-managed devices: all migrated, each moved once; every user whose
    container was deleted keeps only the new Hello key in the tenant (the workers removed the stale one)."""
    runtime, inventory = lab
    effective = intune_wave._effective(runtime)
    managed = [d for d in runtime.fleet.devices if intune_wave._managed(d)]
    key = [d.name for d in managed if effective[d.name] == "key"][:2]
    cert = [d.name for d in managed if effective[d.name] == "cert"][:2]
    assert key and cert, "the seeded fleet has Intune-managed key and certificate trust devices"
    devices = key + cert
    playbook = at_worker_pace(intune_wave._playbook(runtime, tmp_path), entra={"remove_stale_hello_keys": True})
    worked = work_group_wave(postgres_url, inventory, playbook, devices, tmp_path)
    assert worked.state == "completed", (worked.states, worked.outputs)
    assert set(worked.states.values()) == {"migrated"}, worked.states
    assert moved(postgres_url) == dict.fromkeys(devices, 1)
    for name in devices:
        groups = intune_wave._groups(runtime, name)
        assert intune_wave.CLOUD_GROUP in groups and intune_wave.CERT_GROUP not in groups, (name, groups)
    deleted = 0
    for name in devices:
        for user in runtime.lab.device(name).users:
            if user.container is not None and user.counters.container_deletions:
                deleted += 1
                methods = [m.id for m in runtime.tenant.hello_methods(user)]
                assert methods == [normal_key_id(user.container.key_id)], (name, user.upn, methods, _cleanups(tmp_path))
    assert deleted, "a certificate trust container was replaced"
