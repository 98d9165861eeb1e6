"""Benchmark of ``migrator probe`` against an in-process lab (prints figures; never asserted in tests).

1. One device, PSRP and WinRM: WS-Man requests (HTTP POSTs, authentication legs included) and round-trip time
   of a full facts collection (``collect_facts``: one pipeline), cold (pool/shell opened) and warm.
2. D devices (default 1,000) at concurrency C (default 64) with a ``latency`` fault of L seconds (default 0.02)
   on every request, against the round-trip bound ``ceil(D/C) × (requests × L + device time)``, where
   ``requests`` and ``device time`` come from step 1 (PSRP, cold, no added latency).

Usage: ``.venv/bin/python bench/probe.py [--devices 1000] [--concurrency 64] [--latency 0.02]``
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from migrator.cli.probe import probe_devices
from migrator.facts import PathSettings
from migrator.inventory import load_inventory
from migrator.lab.fleet import generate_fleet, parse_mix
from migrator.lab.runtime import LabPorts, LabRuntime
from migrator.remote import open_transport
from migrator.remote.credentials import load_credentials
from migrator.steps import CollectFacts, run_step

PORTS = LabPorts(http=28985, https=28986)


def _address(index: int) -> str:
    return f"127.94.{index // 250}.{index % 250 + 1}"


def one_device(inventory_path: Path, secrets: Path, transport: str, repeats: int = 5) -> tuple[int, float, float]:
    """(requests of a cold probe, median cold seconds, median warm seconds) for the first device; "cold" opens
    the runspace pool / shell, "warm" reuses it."""
    inventory = load_inventory(inventory_path)
    credentials = load_credentials(secrets, environ={})
    entry = inventory.devices[0]
    connection = inventory.connection(entry).model_copy(update={"transport": transport})
    cold_requests = 0
    cold: list[float] = []
    warm: list[float] = []
    for attempt in range(repeats):
        t = open_transport(entry, connection, credentials)
        try:
            started = time.perf_counter()
            run_step(t, CollectFacts())
            elapsed = time.perf_counter() - started
            cold.append(elapsed)
            if attempt == 0:
                cold_requests = t.requests_sent
            before = t.requests_sent
            started = time.perf_counter()
            run_step(t, CollectFacts())
            warm.append(time.perf_counter() - started)
            if attempt == 0:
                print(f"  {transport}: warm probe on an open connection: {t.requests_sent - before} requests")
        finally:
            t.close()
    return cold_requests, statistics.median(cold), statistics.median(warm)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.02)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-probe-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        fleet = generate_fleet(args.devices, 42, parse_mix("key=50,cert=40,cloud=5,none=5"))
        for index, device in enumerate(fleet.devices):
            device.address = _address(index)
        runtime = LabRuntime(fleet, work, speed=60.0, ports=PORTS)
        runtime.start()
        inventory_path = work / "inventory.yaml"
        runtime.write_inventory(inventory_path)
        secrets = work / "lab-secrets.env"
        print(f"lab of {args.devices} devices up in {time.perf_counter() - started:.1f} s")
        try:
            print("\n1. one device, full facts collection (collect_facts, one pipeline)")
            figures = {}
            for transport in ("psrp", "winrm"):
                try:
                    figures[transport] = one_device(inventory_path, secrets, transport)
                except Exception as err:  # WinRM needs the lab's stdin bootstrap for long scripts
                    print(f"  {transport}: n/a ({type(err).__name__}: {err})")
                    continue
                requests, cold, warm = figures[transport]
                print(
                    f"  {transport}: {requests} WS-Man requests (pool/shell open included), "
                    f"cold median {cold * 1000:.0f} ms, warm median {warm * 1000:.0f} ms"
                )
            requests, device_time, _ = figures["psrp"]

            print(f"\n2. {args.devices} devices, concurrency {args.concurrency}, latency {args.latency * 1000:.0f} ms")
            runtime.server.faults.add(kind="latency", delay=args.latency)
            inventory = load_inventory(inventory_path)
            credentials = load_credentials(secrets, environ={})
            started = time.perf_counter()
            outcomes = probe_devices(
                inventory, inventory.devices, credentials, PathSettings(), concurrency=args.concurrency
            )
            wall = time.perf_counter() - started
            failed = [o for o in outcomes if o.error is not None]
            per_device = [o.requests for o in outcomes if o.error is None]
            waves = math.ceil(args.devices / args.concurrency)
            bound = waves * (requests * args.latency + device_time)
            print(
                f"  probed {len(outcomes) - len(failed)}/{len(outcomes)} in {wall:.1f} s "
                f"({len(outcomes) / wall:.1f} devices/s); failed: {len(failed)}"
            )
            if per_device:
                print(f"  requests per device: median {statistics.median(per_device):.0f}, max {max(per_device)}")
            print(
                f"  bound ceil(D/C) x (requests x latency + device time) = {waves} x ({requests} x "
                f"{args.latency:.3f} + {device_time:.3f}) = {bound:.1f} s; measured / bound = {wall / bound:.2f}"
            )
            # The lab runs every device's PowerShell in this one Python process: interpretation is serialised by
            # the GIL, so D x device time is the lab's own floor, whatever the concurrency.
            serial = args.devices * device_time
            print(
                f"  lab CPU floor D x device time = {args.devices} x {device_time:.3f} = {serial:.1f} s; "
                f"measured / floor = {wall / serial:.2f}"
            )
            if failed:
                kinds: dict[str, int] = {}
                for o in failed:
                    assert o.error is not None
                    kinds[o.error.error_class] = kinds.get(o.error.error_class, 0) + 1
                print(f"  failures by class: {kinds}")
                for o in failed[:3]:
                    assert o.error is not None
                    print(f"    {o.name}: {o.error.error_class}: {o.error.message}")
        finally:
            runtime.stop()


if __name__ == "__main__":
    main()
