"""CPU and memory of a process tree from /proc (Linux): a sharded `lab up` is a parent and its shard children.

Used by bench/wave.py (``from bench.proctree import cpu_by_process``) and bench/lab.py."""

from __future__ import annotations

import os
from pathlib import Path


def _stat_fields(pid: int) -> list[str]:
    # The command name (field 2) may hold spaces and parentheses: split after its closing parenthesis.
    return Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()


def children(pid: int) -> list[int]:
    """Every descendant of ``pid`` alive now (children, their children, ...)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int(_stat_fields(int(entry.name))[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        parents.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process so far (fields 14 and 15 of /proc/<pid>/stat); 0 if it is gone."""
    try:
        fields = _stat_fields(pid)
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_by_process(pid: int) -> dict[int, float]:
    """CPU seconds of ``pid`` and of each of its descendants."""
    return {p: cpu_seconds(p) for p in [pid, *children(pid)]}


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and all its descendants, summed."""
    return sum(cpu_by_process(pid).values())


def rss_mib(pid: int) -> float:
    """Resident memory of one process, MiB (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return 0.0
    return 0.0


def peak_rss_kib(pid: int | str = "self") -> int:
    """Peak resident memory of one process, KiB (VmHWM; 0 if it is gone). Not getrusage's ru_maxrss: Linux keeps
    that across execve, so a spawned child reports its parent's peak when that was higher (getrusage(2)); VmHWM
    belongs to the address space, which exec replaces."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


def tree_rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants, summed (shared pages counted in each)."""
    return sum(rss_mib(p) for p in [pid, *children(pid)])
