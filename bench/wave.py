"""Benchmark: a mixed wave against `migrator lab up` with 20 ms latency, and a naive per-command baseline.

1. migrator: `lab up` runs as a subprocess (its own GIL) with a latency fault on every request; users comply at
   once. The wave runs in this process with the project's engine (`plan_wave` + `WaveRunner`, PSRP, one runspace
   pool per visit) at concurrency C. Printed: devices migrated, wall time, devices per minute, WS-Man requests per
   device, and the ratio to the round-trip bound ``ceil(D/C) × (requests × latency + device time)``.
2. baseline: what a hand-written script does: every step a separate pywinrm ``Session.run_ps`` (a new WinRS shell
   and an encoded command line per step) for a subset of devices. Printed: requests per device and devices per
   minute, and migrator's advantage in requests per device.

Nothing is asserted. ``python bench/wave.py --devices 200 --concurrency 64``
"""

from __future__ import annotations

import argparse
import math
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import winrm
import yaml
from pydantic import SecretStr
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from migrator.engine.service import WaveRequest, plan_wave
from migrator.inventory import load_inventory
from migrator.lab.clock import ScaledClock
from migrator.lab.fleet import generate_fleet, parse_mix
from migrator.lab.fleetfile import load_fleet, save_fleet
from migrator.lab.runtime import read_lab_secrets
from migrator.playbook import builtin_path
from migrator.remote.credentials import Credentials
from migrator.remote.transport import open_transport
from migrator.scripts import load
from migrator.store import Store

SPEED = 600.0  # virtual seconds per real second: users' "instant" answers and the lab's unlocks pass quickly


def _fleet(devices: int, folder: Path) -> Path:
    fleet = generate_fleet(devices, 11, parse_mix("key=50,cert=45,cloud=5,none=0"))
    for device in fleet.devices:
        device.dc_reachable, device.vpn_only = True, False
        for user in device.users:
            user.behaviour.compliance, user.behaviour.delay_seconds = "prompt", 1.0
            user.privileged, user.has_prt = False, True
    return save_fleet(fleet, folder / "fleet.json")


@contextmanager
def lab(folder: Path, fleet: Path, latency: float, ports: tuple[int, int]) -> Iterator[Path]:
    faults = folder / "faults.yaml"
    faults.write_text(yaml.safe_dump({"seed": 1, "faults": [{"kind": "latency", "delay": latency}]}))
    inventory = folder / "lab" / "inventory.yaml"
    command = [
        sys.executable, "-m", "migrator", "lab", "up", "--fleet", str(fleet), "--faults", str(faults),
        "--inventory", str(inventory), "--speed", str(SPEED),
        "--http-port", str(ports[0]), "--https-port", str(ports[1]),
    ]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "ready" in line:
            break
    else:
        raise SystemExit(f"lab did not start (exit {proc.wait()})")
    threading.Thread(target=lambda: [None for _ in proc.stdout or []], daemon=True).start()
    try:
        yield inventory
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(120)


def _playbook(folder: Path) -> Path:
    data = yaml.safe_load(builtin_path("to-cloud-kerberos").read_text(encoding="utf-8"))
    data["waits"] = {"recheck_every": "30m", "user_deadline": "2d", "dc_deadline": "2d", "reprovision_deadline": "2d"}
    path = folder / "bench-playbook.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def device_time(inventory: Path, secrets: dict[str, str], latency: float, rounds: int = 20) -> float:
    """The lab's own time per request: warm PSRP round trips on one device, minus the injected latency.

    A warm pipeline on an open pool costs 2 requests (Command, Receive; pypsrp sends the Signal/close only at the
    end), so per request = (round trip / 2) - latency."""
    inv = load_inventory(inventory)
    entry = inv.devices[0]
    conn = inv.connection(entry)
    wsman = WSMan(
        entry.address, port=conn.port, username=secrets["MIGRATOR_USERNAME"], password=secrets["MIGRATOR_PASSWORD"],
        auth="ntlm", cert_validation=str(conn.ca_bundle), no_proxy=True,
    )  # fmt: skip
    with RunspacePool(wsman) as pool:
        samples = []
        for _ in range(rounds):
            started = time.perf_counter()
            ps = PowerShell(pool)
            ps.add_script("$env:COMPUTERNAME")
            ps.invoke()
            samples.append(time.perf_counter() - started)
    return max(0.0, statistics.median(samples) / 2 - latency)


def run_migrator(args: argparse.Namespace, folder: Path, inventory: Path, secrets: dict[str, str]) -> dict[str, Any]:
    fleet = load_fleet(folder / "fleet.json")
    credentials = Credentials(secrets["MIGRATOR_USERNAME"], SecretStr(secrets["MIGRATOR_PASSWORD"]))
    store = Store.open(folder / "state")
    counts: list[int] = []
    lock = threading.Lock()

    def factory(entry: Any, connection: Any, creds: Credentials) -> Any:
        transport = open_transport(entry, connection, creds)
        close = transport.close

        def closing() -> None:
            close()
            with lock:
                counts.append(transport.requests_sent)

        transport.close = closing  # type: ignore[method-assign]
        return transport

    # The lab runs ScaledClock(start=fleet.clock, speed) from its start: mirror it (a second of skew is 10 virtual
    # minutes at this speed, well inside every wait of the playbook).
    clock = ScaledClock(start=fleet.clock, speed=SPEED)
    request = WaveRequest(
        inventory=inventory,
        playbook=str(_playbook(folder)),
        wave="bench",
        batch_size=len(fleet.devices),
        concurrency=args.concurrency,
        max_fail_percent=100.0,
        entra_kerberos={d.dns_name: True for d in fleet.domains},
    )
    plan = plan_wave(store, request, credentials, clock, transport_factory=factory)
    started = time.monotonic()
    result = plan.runner.run()
    elapsed = time.monotonic() - started
    states = result.progress.counts()
    per_device = [n for n in counts]
    devices = len(fleet.devices)
    total_requests = sum(per_device)
    return {
        "devices": devices,
        "states": states,
        "seconds": elapsed,
        "requests_per_device": total_requests / devices,
        "visits": len(per_device),
    }


def _literal(value: Any) -> str:
    """NAIVE BASELINE ONLY: a value as a PowerShell literal, the way a hand-written script inlines it."""
    if isinstance(value, bool):
        return "$true" if value else "$false"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def run_baseline(args: argparse.Namespace, inventory: Path, secrets: dict[str, str], latency: float) -> dict[str, Any]:
    """A hand-written script: each step its own run_ps (new shell, encoded command), parameters inlined."""
    inv = load_inventory(inventory)
    devices = inv.devices[: args.baseline_devices]
    requests = 0
    lock = threading.Lock()
    original = winrm.protocol.Protocol.send_message

    def counting(self: Any, message: Any) -> Any:
        nonlocal requests
        with lock:
            requests += 1
        return original(self, message)

    winrm.protocol.Protocol.send_message = counting  # type: ignore[method-assign]
    gpo = "HKLM:\\SOFTWARE\\Policies\\Microsoft\\PassportForWork"
    steps = [
        ("collect_facts", None),
        ("snapshot_policy", None),
        ("set_policy", {"Path": gpo, "Name": "UseCertificateForOnPremAuth", "Remove": True}),
        ("set_policy", {"Path": gpo, "Name": "Enabled", "Value": 1, "Type": "DWord"}),
        ("set_policy", {"Path": gpo, "Name": "UseCloudTrustForOnPremAuth", "Value": 1, "Type": "DWord"}),
        ("collect_facts", None),  # confirm the policy
        ("prompt_user", {"SessionId": 1, "Text": "Please sign out and in", "Seconds": 60}),
        ("collect_facts", None),  # see the user back
    ]

    def one(entry: Any) -> None:
        conn = inv.connection(entry)
        session = winrm.Session(
            f"https://{entry.address}:{conn.port}/wsman",
            auth=(secrets["MIGRATOR_USERNAME"], secrets["MIGRATOR_PASSWORD"]),
            transport="ntlm",
            server_cert_validation="validate",
            ca_trust_path=str(conn.ca_bundle),
        )
        for name, params in steps:
            text = load(name).text
            if params:
                call = " ".join(f"-{k}" if v is True else f"-{k} {_literal(v)}" for k, v in params.items())
                text = f"& {{\n{text}\n}} {call}"
            session.run_ps(text)

    started = time.monotonic()
    with ThreadPoolExecutor(args.concurrency) as pool:
        list(pool.map(one, devices))
    elapsed = time.monotonic() - started
    winrm.protocol.Protocol.send_message = original  # type: ignore[method-assign]
    return {"devices": len(devices), "seconds": elapsed, "requests_per_device": requests / max(1, len(devices))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--baseline-devices", type=int, default=50)
    parser.add_argument("--ports", type=int, nargs=2, default=(37985, 37986))
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="migrator-bench-wave-"))
    fleet = _fleet(args.devices, folder)
    with lab(folder, fleet, args.latency, tuple(args.ports)) as inventory:
        secrets = read_lab_secrets(inventory)
        per_request = device_time(inventory, secrets, args.latency)
        mig = run_migrator(args, folder, inventory, secrets)
        base = run_baseline(args, inventory, secrets, args.latency)
    d, c = mig["devices"], args.concurrency
    bound = math.ceil(d / c) * (mig["requests_per_device"] * (args.latency + per_request))
    print(f"fleet: {d} devices, concurrency {c}, latency {args.latency * 1000:.0f} ms per request")
    print(f"lab time per request (measured, latency excluded): {per_request * 1000:.1f} ms")
    print(f"migrator: states {mig['states']}")
    print(
        f"migrator: {mig['seconds']:.1f} s, {d / mig['seconds'] * 60:.0f} devices/min, "
        f"{mig['requests_per_device']:.1f} WS-Man requests per device ({mig['visits']} visits)"
    )
    print(
        f"round-trip bound ceil(D/C) x (requests x (latency + device time)) = {bound:.1f} s; "
        f"bound / measured = {bound / mig['seconds'] * 100:.0f} %"
    )
    rate = base["devices"] / base["seconds"] * 60
    print(
        f"baseline (run_ps per step, {base['devices']} devices, the first steps only): "
        f"{base['requests_per_device']:.1f} requests per device, {rate:.0f} devices/min"
    )
    print(
        f"requests per device, baseline / migrator (migrator's whole migration vs the baseline's first steps): "
        f"{base['requests_per_device'] / mig['requests_per_device']:.1f}x"
    )


if __name__ == "__main__":
    main()
