"""Reading a child process's output while it keeps running (`lab up`, `migrator worker`): up to a line that says
it is ready, the rest read when it ends."""

from __future__ import annotations

import subprocess


def read_until(process: subprocess.Popen[str], marker: str) -> str:
    """The process's output up to and including the first line containing ``marker``; AssertionError, with what it
    printed and its exit code, when it ends first."""
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"exited ({process.wait()}) before printing {marker!r}: {''.join(seen)}")
