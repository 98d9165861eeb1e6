"""Fixtures: a store on SQLite in tmp_path and on PostgreSQL (a fresh schema of the test's own: tests/postgres.py),
a controllable UTC clock, a wave with devices."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from migrator.store import Store, content_hash

BACKENDS = ["sqlite", "postgresql"]
START = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


class FakeClock:
    """A UTC clock that moves 1 ms per reading (so rows get distinct, ordered times) and on request."""

    def __init__(self, start: datetime = START) -> None:
        self.current = start

    def __call__(self) -> datetime:
        self.current += timedelta(milliseconds=1)
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=BACKENDS)
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a store lives: a directory for SQLite, a URL naming an empty schema for PostgreSQL."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return str(tmp_path / "state")


@pytest.fixture
def store(store_location: str, clock: FakeClock) -> Iterator[Store]:
    opened = Store.open(store_location, now=clock)
    yield opened
    opened.close()


@pytest.fixture
def wave(store: Store) -> str:
    """A wave named w1 (ticket CHG0001) with devices PC-001..PC-003 in state pending."""
    store.create_wave(
        "w1", playbook_name="key-to-cloud", playbook_hash=content_hash("steps: []"), change_ticket="CHG0001"
    )
    store.enroll("w1", ["PC-001", "PC-002", "PC-003"])
    return "w1"
