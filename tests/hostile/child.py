"""The child side of the hostile-input suite: run one CLI command under an address-space limit.

Kept small and free of test imports: children fork from the session's forkserver, which preloads this module
and the CLI, so a child starts in milliseconds.
"""

from __future__ import annotations

import resource
import traceback
from multiprocessing.connection import Connection

from typer.testing import CliRunner

from migrator.cli import app


def run_cli(args: list[str], env: dict[str, str], memory_limit: int, conn: Connection) -> None:
    """Invoke ``migrator <args>`` in-process with RLIMIT_AS set; send back (exit code, output, exception)."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    try:
        result = CliRunner().invoke(app, args, env=env)
        error = None
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            error = "".join(traceback.format_exception(result.exception))
        conn.send((result.exit_code, result.output, error))
    except BaseException as err:  # MemoryError included: reported to the parent, never swallowed
        conn.send((-1, "", "".join(traceback.format_exception(err))))
    finally:
        conn.close()
