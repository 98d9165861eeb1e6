"""Benchmark: `migrator lab up` at fleet scale, and PSRP round trips against it.

Starts `migrator lab up --devices N` as a subprocess (so the clients below do not share its GIL), waits for the
line containing `ready`, then:

1. opens a pypsrp runspace pool on EVERY device and runs one script (a full round trip per device),
2. measures round trips per second (one PowerShell pipeline on an open pool = one round trip) at
   concurrency 1, 16 and 64.

Prints: start time to ready, the lab's memory (RSS, summed over its processes) and CPU, and the figures above.
Nothing is asserted. The lab listens on free ports (read back from its inventory); ``--processes N`` runs it as
``lab up --processes N`` (devices served by N processes).

    python bench/lab.py --devices 1000
    python bench/lab.py --devices 1000 --processes 2
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.proctree import tree_cpu_seconds, tree_rss_mib
from migrator.inventory import load_inventory
from migrator.lab.runtime import read_lab_secrets


@contextmanager
def lab(
    devices: int, folder: Path, http_port: int, https_port: int, processes: int
) -> Iterator[tuple[subprocess.Popen[str], float]]:
    inventory = folder / "inventory.yaml"
    command = [
        sys.executable, "-m", "migrator.cli", "lab", "up",
        "--devices", str(devices), "--seed", "1",
        "--inventory", str(inventory), "--fleet", str(folder / "fleet.json"),
        "--http-port", str(http_port), "--https-port", str(https_port), "--processes", str(processes),
    ]  # fmt: skip
    started = time.monotonic()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    ready = 0.0
    for line in proc.stdout:
        if "ready" in line:
            ready = time.monotonic() - started
            break
    else:
        raise SystemExit(f"lab did not start (exit {proc.wait()})")
    threading.Thread(target=lambda: [None for _ in proc.stdout or []], daemon=True).start()  # drain
    try:
        yield proc, ready
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--http-port", type=int, default=0, help="0: a free port")
    parser.add_argument("--https-port", type=int, default=0, help="0: a free port")
    parser.add_argument("--processes", type=int, default=1, help="lab up --processes")
    parser.add_argument("--rounds", type=int, default=400, help="round trips per concurrency level")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="migrator-bench-lab-"))
    with lab(args.devices, folder, args.http_port, args.https_port, args.processes) as (proc, ready):
        print(
            f"lab up --processes {args.processes}: {args.devices} devices ready in {ready:.1f} s; "
            f"lab RSS {tree_rss_mib(proc.pid):.0f} MiB"
        )
        inventory = load_inventory(folder / "inventory.yaml")
        port = inventory.connection(inventory.devices[0]).port
        secrets = read_lab_secrets(folder / "inventory.yaml")
        ca = str(inventory.connection(inventory.devices[0]).ca_bundle)

        def pool_for(address: str) -> RunspacePool:
            wsman = WSMan(
                address, port=port, username=secrets["MIGRATOR_USERNAME"],
                password=secrets["MIGRATOR_PASSWORD"], auth="ntlm", cert_validation=ca, no_proxy=True,
            )  # fmt: skip
            pool = RunspacePool(wsman)
            pool.open()
            return pool

        def one_device(address: str) -> str:
            pool = pool_for(address)
            try:
                ps = PowerShell(pool)
                ps.add_script("$env:COMPUTERNAME")
                return str(ps.invoke()[0])
            finally:
                pool.close()

        started = time.monotonic()
        with ThreadPoolExecutor(64) as workers:
            names = list(workers.map(one_device, [d.address for d in inventory.devices]))
        elapsed = time.monotonic() - started
        ok = sum(1 for name, d in zip(names, inventory.devices, strict=True) if name == d.name)
        print(f"full round trip (open pool + script + close) to every device: {ok}/{len(names)} ok in {elapsed:.1f} s")
        print(f"lab RSS after touching every device: {tree_rss_mib(proc.pid):.0f} MiB")

        cpu_before = tree_cpu_seconds(proc.pid)
        for concurrency in (1, 16, 64):
            addresses = [d.address for d in inventory.devices[:concurrency]]
            pools = [pool_for(a) for a in addresses]
            per_pool = max(1, args.rounds // concurrency)

            def hammer(pool: RunspacePool, per_pool: int = per_pool) -> int:
                for _ in range(per_pool):
                    ps = PowerShell(pool)
                    ps.add_script("param($n) $n + 1").add_parameters({"n": 1})
                    ps.invoke()
                return per_pool

            started = time.monotonic()
            with ThreadPoolExecutor(concurrency) as workers:
                total = sum(workers.map(hammer, pools))
            elapsed = time.monotonic() - started
            for pool in pools:
                pool.close()
            print(f"concurrency {concurrency:>2}: {total / elapsed:7.1f} round trips/s ({total} in {elapsed:.1f} s)")
        print(f"lab CPU during the round trips: {tree_cpu_seconds(proc.pid) - cpu_before:.1f} s")
        print(f"lab RSS at the end: {tree_rss_mib(proc.pid):.0f} MiB")
    if os.environ.get("KEEP") is None:
        for path in sorted(folder.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        folder.rmdir()


if __name__ == "__main__":
    main()
