"""Input loading: time and peak memory of 1k/10k/100k-device inventories (YAML and CSV) and a playbook, and how
fast an over-limit file, an alias bomb and deep nesting are refused.

Run: ``.venv/bin/python bench/inputs.py``. Each figure comes from a fresh child process (peak RSS is the child's
maximum resident size above what it had after its imports); nothing is asserted.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from migrator.inventory import load_inventory
from migrator.playbook import load_playbook
from migrator.yamlsource import INPUT_LIMIT, InputFileError


def _inventory_yaml(devices: int) -> str:
    lines = ["defaults: {transport: psrp, scheme: https, port: 5986}", "devices:"]
    for i in range(devices):
        lines.append(
            f"  - {{name: PC-{i:06d}, address: 10.{i // 65536}.{i // 256 % 256}.{i % 256}, groups: [g{i % 7}]}}"
        )
    return "\n".join(lines) + "\n"


def _inventory_csv(devices: int) -> str:
    rows = ["name,address,groups"]
    rows += [f"PC-{i:06d},10.{i // 65536}.{i // 256 % 256}.{i % 256},g{i % 7};pilot" for i in range(devices)]
    return "\n".join(rows) + "\n"


def _bomb() -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    return "\n".join(lines) + "\n"


def _write(folder: Path, what: str, size: int) -> Path:
    if what == "yaml":
        path = folder / f"inventory-{size}.yaml"
        path.write_text(_inventory_yaml(size), encoding="utf-8")
    elif what == "csv":
        path = folder / f"inventory-{size}.csv"
        path.write_text(_inventory_csv(size), encoding="utf-8")
    elif what == "over-limit":
        path = folder / "huge.yaml"
        with path.open("wb") as handle:
            handle.truncate(INPUT_LIMIT * 5)  # 50 MiB, sparse: refused from stat, never read
    elif what == "bomb":
        path = folder / "bomb.yaml"
        path.write_text(_bomb(), encoding="utf-8")
    elif what == "deep":
        path = folder / "deep.yaml"
        path.write_text("[" * 400 + "]" * 400, encoding="utf-8")
    else:
        path = folder / "playbook.yaml"
        path.write_text(
            "name: bench\npath: key\nsteps: [preflight, snapshot_policy, enable_cloud_trust, confirm_policy, "
            "verify_cloud]\nwaits: {recheck_every: 1h, user_deadline: 7d}\n",
            encoding="utf-8",
        )
    return path


def _measure(kind: str, path: Path) -> None:
    """In the child: load once, print seconds, peak RSS growth (MiB) and the outcome."""
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    try:
        if kind == "playbook":
            load_playbook(path)
            outcome = "loaded"
        else:
            outcome = f"loaded {len(load_inventory(path).devices)} devices"
    except InputFileError as err:
        outcome = "refused: " + str(err).split(": ", 1)[1][:70]
    elapsed = time.perf_counter() - started
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    print(f"{elapsed:.3f}\t{peak:.1f}\t{outcome}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _measure(args.child[0], Path(args.child[1]))
        return
    plan = [("yaml", n) for n in (1_000, 10_000, 100_000)] + [("csv", n) for n in (1_000, 10_000, 100_000)]
    plan += [("playbook", 0), ("over-limit", 0), ("bomb", 0), ("deep", 0)]
    print(f"{'input':<28}{'size':>11}{'time':>10}{'peak RSS':>11}  outcome")
    with tempfile.TemporaryDirectory() as folder:
        for what, count in plan:
            path = _write(Path(folder), what, count)
            label = f"inventory {what} {count:,} devices" if count else what
            kind = "playbook" if what == "playbook" else "inventory"
            child = subprocess.run(
                [sys.executable, __file__, "--child", kind, str(path)], capture_output=True, text=True, check=True
            )
            seconds, peak, outcome = child.stdout.strip().split("\t")
            size = path.stat().st_size
            shown = f"{size / 1024 / 1024:.1f} MiB" if size >= 1024 * 1024 else f"{size:,} B"
            print(f"{label:<28}{shown:>11}{float(seconds) * 1000:>8.0f} ms{float(peak):>7.1f} MiB  {outcome}")


if __name__ == "__main__":
    main()
