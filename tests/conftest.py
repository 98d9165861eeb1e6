"""Session-wide test options: tests marked ``slow`` run only when asked for.

``pytest --run-slow`` runs them with everything else; ``pytest -m slow`` (any ``-m`` expression naming
``slow``) selects them on its own. Without either they are reported as skipped, with the command to run them.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", default=False, help="also run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow") or "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="slow: run with `pytest --run-slow` (or `-m slow`)")
    for item in items:
        if item.get_closest_marker("slow") is not None:
            item.add_marker(skip)
