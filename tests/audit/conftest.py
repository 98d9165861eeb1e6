"""The store fixtures of tests/store (SQLite and PostgreSQL)."""

from tests.store.conftest import clock, store_location

__all__ = ["clock", "store_location"]
