"""Session-wide test options: tests marked ``slow`` run only when asked for; PostgreSQL per test (``postgres_url``).

``pytest --run-slow`` runs them with everything else; ``pytest -m slow`` (any ``-m`` expression naming
``slow``) selects them on its own. Without either they are reported as skipped, with the command to run them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.postgres import postgres_session, stop_postgres_session


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", default=False, help="also run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow") or "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="slow: run with `pytest --run-slow` (or `-m slow`)")
    for item in items:
        if item.get_closest_marker("slow") is not None:
            item.add_marker(skip)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    stop_postgres_session()  # drops the session's PostgreSQL database, if a test created it


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A store URL on the test PostgreSQL server: an empty schema of this test's own (see tests/postgres.py)."""
    session = postgres_session()
    name, url = session.new_schema()
    yield url
    session.drop_schema(name)
