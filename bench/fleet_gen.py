"""Benchmark of the fleet generator and fleet files: ``python bench/fleet_gen.py [devices]``.

Generates a fleet (1,000 devices by default), saves it as JSON and YAML, loads both back, checks they equal the
original field by field, and prints the timings, sizes and peak memory. Figures are printed, never asserted.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from migrator.lab.fleet import DEFAULT_MIX, Mix, generate_fleet
from migrator.lab.fleetfile import load_fleet, save_fleet
from migrator.lab.model import Fleet

T = TypeVar("T")


def timed(action: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = action()
    return result, time.perf_counter() - start


def same(a: Fleet, b: Fleet) -> bool:
    # Field-by-field: Fleet == Fleet also compares each Device's private lock, which never matches.
    return a.model_dump() == b.model_dump()


def main(devices: int = 1000, seed: int = 1) -> int:
    mix = Mix.parse(DEFAULT_MIX)
    fleet, generation = timed(lambda: generate_fleet(devices, seed, mix))
    # Memory in a second run: tracemalloc slows allocation-heavy code several times over.
    tracemalloc.start()
    generate_fleet(devices, seed, mix)
    _, generation_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    users = sum(len(d.users) for d in fleet.devices)
    keys = sum(len(d.registry.keys) for d in fleet.devices)
    print(f"fleet: {devices} devices, {users} users, {keys} registry keys (seed {seed}, mix {mix})")
    print(f"generate:   {generation:7.3f} s   (traced peak {generation_peak / 2**20:6.1f} MiB)")
    ok = True
    with tempfile.TemporaryDirectory() as directory:
        for suffix in ("json", "yaml"):
            path = Path(directory) / f"fleet.{suffix}"
            _, save_seconds = timed(lambda path=path: save_fleet(fleet, path))
            loaded, load_seconds = timed(lambda path=path: load_fleet(path))
            equal = same(loaded, fleet)
            ok &= equal
            size = path.stat().st_size
            print(
                f"{suffix:5s} save: {save_seconds:7.3f} s   load: {load_seconds:7.3f} s   "
                f"size: {size / 2**20:6.2f} MiB   round trip equal: {equal}"
            )
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(f"process peak RSS: {peak_kib / 1024:6.1f} MiB")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))
