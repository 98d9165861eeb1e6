"""The store fixtures of tests/store (SQLite, and PostgreSQL when MIGRATOR_TEST_POSTGRES_URL is set)."""

from tests.store.conftest import clock, store_location

__all__ = ["clock", "store_location"]
