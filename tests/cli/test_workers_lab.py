"""Two `migrator worker` processes and `migrator run` on one PostgreSQL store migrate a lab wave with a canary and
an approval gate: run plans the wave and works the canary with the workers, stops at the gate (exit 3); after
`migrator approve` the two workers finish the wave on their own; both visited devices, nothing is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from migrator.errors import ExitCode, MigratorError
from migrator.lab.fleet import generate_fleet, parse_mix
from migrator.lab.model import Fleet
from migrator.lab.runtime import LabPorts, LabRuntime
from migrator.machine.table import DEVICE_SUCCESS
from migrator.playbook import builtin_path
from migrator.store import Store
from tests.loopback import free_addresses

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
ROOT = Path(__file__).resolve().parents[2]


def worker_fleet(count: int = 6, seed: int = 5) -> Fleet:
    """``count`` devices whose users comply at once and that always see a DC (as bench/wave.py's fleet)."""
    fleet = generate_fleet(count, seed, parse_mix("key=50,cert=50,cloud=0,none=0"))
    for domain in fleet.domains:
        domain.entra_kerberos = True
    for device, address in zip(fleet.devices, free_addresses(len(fleet.devices)), strict=True):
        device.address = address
        device.dc_reachable, device.vpn_only = True, False
        for user in device.users:
            user.behaviour.compliance, user.behaviour.delay_seconds = "prompt", 1
            user.privileged, user.has_prt, user.behaviour.prefers_rdp = False, True, False
    return fleet


def worker_playbook(folder: Path) -> Path:
    """The shipped playbook, looking again every second (real time: the workers run on the wall clock)."""
    data = yaml.safe_load(builtin_path("to-cloud-kerberos").read_text(encoding="utf-8"))
    data["waits"] = {**data.get("waits", {}), "recheck_every": "1s"}
    path = folder / "playbook.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def wave_planned(url: str, wave: str = "w") -> bool:
    """Whether the store at ``url`` exists and holds ``wave`` (planned by `run`)."""
    try:
        with Store.open(url, read_only=True) as store:
            return any(planned.name == wave for planned in store.list_waves())
    except MigratorError:  # not created yet (or being created): not planned
        return False


def migrator_command(*args: str) -> list[str]:
    """The command line of this checkout's `migrator` with ``args``."""
    return [sys.executable, "-m", "migrator", *args]


def test_two_workers_and_run_complete_a_wave_with_canary_and_approval(postgres_url: str, tmp_path: Path) -> None:
    """Canary (1) → gate → approve → the rest, by two workers; every device ends migrated or ineligible."""
    fleet = worker_fleet()
    # The wave writes policy locally (the shipped playbook's `local` channel), which a background Group Policy
    # refresh rightly undoes on this fleet's GPO-managed devices (tests/engine/test_ad_group_wave.py covers that
    # path): without the refresh, this test is about the workers alone.
    runtime = LabRuntime(fleet, tmp_path / "lab", speed=600.0, ports=LabPorts(http=0, https=0), gpo_refresh=False)
    runtime.start()
    env = {**os.environ, "MIGRATOR_STORE": postgres_url, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    workers: list[subprocess.Popen[str]] = []
    try:
        inventory = tmp_path / "lab" / "inventory.yaml"
        runtime.write_inventory(inventory)
        secrets = str(tmp_path / "lab" / "lab-secrets.env")
        kerberos = [f"--entra-kerberos={d.dns_name}=yes" for d in fleet.domains]
        run = [
            "run", "-i", str(inventory), "--playbook", str(worker_playbook(tmp_path)), "--wave", "w", "--canary", "1",
            "--batch-size", "5", "--approval", "--concurrency", "2", "--secrets", secrets, "--yes",
            "--state", str(tmp_path / "run-state"), "--lease-seconds", "10", *kerberos,
        ]  # fmt: skip
        planned = subprocess.Popen(
            migrator_command(*run), env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        # run creates the store and the wave; the workers start once the wave is there (`worker` never creates a
        # store, and one that starts first exits 2, as it should).
        deadline = time.monotonic() + 120
        while not wave_planned(postgres_url):
            assert planned.poll() is None, planned.communicate()[0]
            assert time.monotonic() < deadline, "run did not plan the wave"
            time.sleep(0.5)
        for index in range(2):
            worker = ["worker", "--secrets", secrets, "--state", str(tmp_path / f"w{index}"), "--concurrency", "2"]
            workers.append(
                subprocess.Popen(
                    migrator_command(*worker), env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
                )
            )
        output, _ = planned.communicate(timeout=300)
        assert planned.returncode == ExitCode.OPERATOR, output
        assert "awaiting_approval" in output
        with Store.open(postgres_url) as store:
            rows = {d.name: d for d in store.list_devices(wave="w")}
            canary = fleet.devices[0].name
            assert rows[canary].state in (*DEVICE_SUCCESS, "ineligible")
            assert all(d.released_at is None for name, d in rows.items() if name != canary)
        approved = subprocess.run(
            migrator_command("approve", "--wave", "w"), env=env, text=True, capture_output=True, check=False
        )
        assert approved.returncode == ExitCode.OK, approved.stderr
        deadline = time.monotonic() + 300
        with Store.open(postgres_url) as store:
            while store.get_wave("w").state != "completed":
                assert time.monotonic() < deadline, [(d.name, d.state) for d in store.list_devices(wave="w")]
                ended = [w for w in workers if w.poll() is not None]
                assert not ended, [(w.returncode, w.communicate()[0][-3000:]) for w in ended]
                time.sleep(0.5)
            states = {d.name: d.state for d in store.list_devices(wave="w")}
            assert store.verify_audit().ok
        assert set(states.values()) <= {*DEVICE_SUCCESS, "ineligible"}, states
        assert "migrated" in states.values()
    finally:
        outputs = []
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            out, _ = worker.communicate(timeout=120)
            outputs.append((worker.returncode, out))
        runtime.stop()
    for code, out in outputs:
        assert code == ExitCode.OK, out
    visits = [int(out.rsplit("stopped after ", 1)[1].split()[0]) for _, out in outputs]
    print(f"visits per worker: {visits}")
    assert all(count > 0 for count in visits), outputs
