"""Benchmark of the command line's start-up (prints figures; never asserted in tests).

For each command (``--help`` only, so nothing but the imports and Typer's parsing runs), in a fresh interpreter:

1. wall time of ``python -m migrator <command> --help``: median and best of R runs (default 20);
2. what the command imported: all modules, ``migrator.*`` modules, ``migrator.lab.*`` modules, and whether the lab's
   and the device clients' libraries (psrpcore, h11, pypsrp, winrm) were loaded;
3. the time ``python -X importtime`` gives all its imports together.

Usage: ``.venv/bin/python bench/startup.py [--runs 20] [command ...]`` (default: a read-only and a lab command).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

DEFAULT_COMMANDS = ("status", "report", "audit verify", "diagram", "run", "probe", "lab up", "demo")
HEAVY = ("psrpcore", "h11", "pypsrp", "winrm")

# Run the command line as `python -m migrator` does, then print what it imported on the last line of stderr.
CHILD = """
import json, sys
sys.argv = ["migrator", *sys.argv[1:]]
from migrator.cli import main
try:
    main()
except SystemExit:
    pass
sys.stderr.write("\\n" + json.dumps(sorted(sys.modules)) + "\\n")
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "120"}


def modules_of(command: list[str]) -> list[str]:
    """The names in ``sys.modules`` after ``migrator <command>`` ran in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *command], capture_output=True, text=True, env=_env(), check=False
    )
    return list(json.loads(done.stderr.strip().splitlines()[-1]))


def wall_times_of(argv: list[str], runs: int) -> list[float]:
    """Seconds that ``argv`` took, from start to exit, ``runs`` times."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, capture_output=True, env=_env(), check=False)
        times.append(time.perf_counter() - started)
    return times


def import_time(command: list[str]) -> float:
    """Seconds ``-X importtime`` gives every import of the run together (top-level entries, cumulative): the
    interpreter's own start-up, Typer and Rich, and the command's module with everything it imports."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", CHILD, *command],
        capture_output=True,
        text=True,
        env=_env(),
        check=False,
    )
    total = 0
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cumulative, name = line.split("|")
            if cumulative.strip().isdigit() and not name[1:].startswith(" "):
                total += int(cumulative)
    return total / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="wall-time runs per command")
    parser.add_argument("commands", nargs="*", help="commands to time, e.g. 'status' 'audit verify'")
    args = parser.parse_args()
    commands = args.commands or list(DEFAULT_COMMANDS)
    bare = wall_times_of([sys.executable, "-c", "pass"], args.runs)
    print(f"python -c pass: median {statistics.median(bare) * 1000:.0f} ms ({args.runs} runs)")
    print(f"{'command':<14} {'median':>7} {'best':>7} {'imports':>10} {'modules':>7} {'migrator':>8} {'lab':>4}  heavy")
    for text in commands:
        command = [*text.split(), "--help"]
        times = wall_times_of([sys.executable, "-m", "migrator", *command], args.runs)
        names = modules_of(command)
        ours = [n for n in names if n == "migrator" or n.startswith("migrator.")]
        lab = [n for n in ours if n == "migrator.lab" or n.startswith("migrator.lab.")]
        heavy = ",".join(h for h in HEAVY if h in names) or "-"
        print(
            f"{text:<14} {statistics.median(times) * 1000:>5.0f}ms {min(times) * 1000:>5.0f}ms "
            f"{import_time(command) * 1000:>8.0f}ms {len(names):>7} {len(ours):>8} {len(lab):>4}  {heavy}"
        )


if __name__ == "__main__":
    main()
