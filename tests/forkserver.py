"""The test session's one forkserver, shared by the harnesses that run the orchestrator in a child process.

A process has a single forkserver, started by the first child and preloading what was asked for by then. Each
harness adds the modules its children need; every test module is imported (collected) before the first child
starts, so the server preloads the union and no harness's call undoes another's.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.context import BaseContext

_context = multiprocessing.get_context("forkserver")
_preload: set[str] = set()


def forkserver_context(*preload: str) -> BaseContext:
    """The forkserver context, with ``preload`` added to the modules its server imports once at start."""
    _preload.update(preload)
    _context.set_forkserver_preload(sorted(_preload))
    return _context
