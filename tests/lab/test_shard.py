"""A lab in several processes (`lab up --processes N`, migrator.lab.shards): unmodified pywinrm and pypsrp on
devices of two shards, one clock across them, the control endpoint routed by device, and no shard left behind
when a shard or the lab dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import winrm
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from migrator.lab.control import ControlClient
from migrator.lab.fleet import generate_fleet, parse_mix
from migrator.lab.fleetfile import load_fleet, save_fleet
from migrator.lab.graph.tenant import normal_key_id
from migrator.lab.model import Fleet
from migrator.lab.runtime import LabPorts
from migrator.lab.shards import ShardedLabRuntime, shard_of
from tests.forkserver import forkserver_context
from tests.loopback import free_addresses

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

REPO = Path(__file__).resolve().parents[2]
_CONTEXT = forkserver_context("migrator.lab.shards")


def _fleet(devices: int = 4) -> Fleet:
    fleet = generate_fleet(devices, 5, parse_mix("key=50,cert=50,cloud=0,none=0"))
    for device, address in zip(fleet.devices, free_addresses(devices), strict=True):
        device.address = address
    return fleet


@pytest.fixture(scope="module")
def sharded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShardedLabRuntime]:
    work = tmp_path_factory.mktemp("shards")
    fleet = _fleet()
    fleet.devices[3].users[0].container = None  # shard 1's second device: its user provisions at the next sign-in
    runtime = ShardedLabRuntime(
        fleet,
        work,
        processes=2,
        mp_context=_CONTEXT,
        speed=3600.0,  # a clock started apart from the parent's would be hours off
        ports=LabPorts(http=0, https=0, ldap=0, ldaps=0),
        gpo_refresh=False,
    )
    runtime.start()
    runtime.write_inventory(work / "inventory.yaml")
    try:
        yield runtime
    finally:
        runtime.stop()


def _device_of_shard(runtime: ShardedLabRuntime, shard: int) -> str:
    return next(d.name for i, d in enumerate(runtime.fleet.devices) if shard_of(i, runtime.processes) == shard)


def _address(runtime: ShardedLabRuntime, name: str) -> str:
    device = runtime.fleet.device(name)
    assert device is not None
    return device.address


def test_pypsrp_and_pywinrm_reach_devices_on_both_shards(sharded: ShardedLabRuntime) -> None:
    account = sharded.admin_account
    username = f"{account.domain}\\{account.username}"
    ca = str(sharded.work_dir / "lab-ca.pem")
    assert len(set(sharded.child_pids())) == 2 and os.getpid() not in sharded.child_pids()
    for shard in (0, 1):
        name = _device_of_shard(sharded, shard)
        wsman = WSMan(
            _address(sharded, name),
            port=sharded.server.https_port,
            username=username,
            password=account.password,
            auth="ntlm",
            cert_validation=ca,
            no_proxy=True,
        )
        with RunspacePool(wsman) as pool:
            ps = PowerShell(pool)
            ps.add_script("$env:COMPUTERNAME")
            assert [str(o) for o in ps.invoke()] == [name]
        session = winrm.Session(
            f"https://{_address(sharded, name)}:{sharded.server.https_port}/wsman",
            auth=(username, account.password),
            transport="ntlm",
            server_cert_validation="validate",
            ca_trust_path=ca,
        )
        result = session.run_cmd("hostname")
        assert result.status_code == 0 and result.std_out.decode().strip() == name
    assert sharded.executions >= 4  # counted in the shards, summed by the parent


def test_one_clock_across_the_shards(sharded: ShardedLabRuntime) -> None:
    """Each shard's clock reads between two readings of the parent's: they tell the same time (at 3600x, a
    clock of its own, started when its shard did, would be hours behind)."""
    for shard in (0, 1):
        before = sharded.clock.now()
        status, truth = sharded._children[shard].channel.call("control", ("GET", "/v1/devices", {}, {}))
        after = sharded.clock.now()
        assert status == 200
        assert before <= datetime.fromisoformat(truth["clock"]) <= after


def test_control_commands_reach_the_devices_shard(sharded: ShardedLabRuntime) -> None:
    client = ControlClient(sharded.control_url, sharded.token)
    name = _device_of_shard(sharded, 1)
    device = sharded.fleet.device(name)
    assert device is not None
    user = device.users[0]
    signed = client.user(name, user.upn, "sign-in")
    assert signed["device"] == name and signed["session"] is not None
    assert client.dc(name, False) == {"device": name, "dc_reachable": False}
    truth = client.devices([name])["devices"][0]
    assert truth["name"] == name and truth["dc_reachable"] is False
    assert any(u["signed_in"] for u in truth["users"])
    everyone = client.devices([])["devices"]
    assert [d["name"] for d in everyone] == [d.name for d in sharded.fleet.devices]  # all shards, fleet order
    with pytest.raises(Exception, match="no device named"):
        client.dc("PC-9999", True)
    client.dc(name, True)


def test_a_key_provisioned_in_a_shard_is_registered_in_the_parents_tenant(sharded: ShardedLabRuntime) -> None:
    name = sharded.fleet.devices[3].name
    upn = sharded.fleet.devices[3].users[0].upn
    before = len(sharded.tenant.hello_methods(sharded.fleet.devices[3].users[0]))
    client = ControlClient(sharded.control_url, sharded.token)
    client.user(name, upn, "sign-out")  # signed in or not: the next sign-in is a new one
    signed = client.user(name, upn, "sign-in")
    assert signed["provisioned"] == "key"
    deadline = time.monotonic() + 30  # the shard tells the parent without waiting for it
    while time.monotonic() < deadline:
        user = sharded.fleet.devices[3].users[0]  # the parent's copy, refreshed from the shard
        if user.container is not None and len(sharded.tenant.hello_methods(user)) > before:
            break
        time.sleep(0.1)
    user = sharded.fleet.devices[3].users[0]
    assert user.container is not None
    assert normal_key_id(user.container.key_id) in [m.id for m in sharded.tenant.hello_methods(user)]


def test_stop_brings_the_shards_state_back(tmp_path: Path) -> None:
    """What a shard's device went through is in the fleet the parent saves; the shard processes are gone."""
    runtime = ShardedLabRuntime(
        _fleet(2),
        tmp_path,
        processes=2,
        mp_context=_CONTEXT,
        ports=LabPorts(http=0, https=0, ldap=0, ldaps=0),
        gpo_refresh=False,
    )
    runtime.start()
    pids = runtime.child_pids()
    name = _device_of_shard(runtime, 1)
    ControlClient(runtime.control_url, runtime.token).dc(name, False)
    fleet = runtime.stop()
    saved = fleet.device(name)
    assert saved is not None and saved.dc_reachable is False
    assert not [pid for pid in pids if _alive(pid)]


# ---- `lab up --processes 2` as a user runs it ------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; its parent just has not reaped it yet


def _wait_gone(pids: list[int], seconds: float = 30.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while (alive := [pid for pid in pids if _alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


def _lab_up(tmp_path: Path) -> tuple[subprocess.Popen[str], list[int], Path]:
    fleet_path = save_fleet(_fleet(), tmp_path / "fleet.json")
    command = [
        sys.executable, "-m", "migrator", "lab", "up", "--processes", "2", "--fleet", str(fleet_path),
        "--inventory", str(tmp_path / "lab" / "inventory.yaml"), "--http-port", "0", "--https-port", "0",
        "--no-kerberos", "--speed", "3600",
    ]  # fmt: skip
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "300"},
    )
    assert proc.stdout is not None
    seen: list[str] = []
    for line in proc.stdout:
        seen.append(line)
        if "processes (pids" in line:
            pids = [int(p) for p in line.split("pids", 1)[1].strip(" )\n").split(", ")]
            return proc, pids, fleet_path
    raise AssertionError("".join(seen))


def test_a_dead_shard_stops_the_lab_with_exit_1_and_no_orphans(tmp_path: Path) -> None:
    proc, pids, _ = _lab_up(tmp_path)
    os.kill(pids[1], signal.SIGKILL)
    rest = proc.communicate(timeout=60)[0]
    assert proc.returncode == 1, rest
    assert "lab shard 1" in rest and "died" in rest and "killed by signal 9" in rest
    assert _wait_gone(pids) == []


def test_ctrl_c_stops_every_shard_and_saves_their_devices(tmp_path: Path) -> None:
    proc, pids, fleet_path = _lab_up(tmp_path)
    before = load_fleet(fleet_path).clock
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, rest
    assert _wait_gone(pids) == []
    assert load_fleet(fleet_path).clock > before


def test_shards_exit_when_the_lab_process_is_killed(tmp_path: Path) -> None:
    """SIGKILL leaves `lab up` no chance to stop its shards: they see their connection close and exit."""
    proc, pids, _ = _lab_up(tmp_path)
    proc.kill()
    proc.communicate(timeout=30)
    assert _wait_gone(pids) == []
