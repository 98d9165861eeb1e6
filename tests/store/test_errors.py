"""Foreign exceptions become the store's errors, once, saying what the caller can do and never showing values."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import exc as sa_exc

from migrator.errors import MigratorError
from migrator.store import (
    NotAStore,
    Store,
    StoreBusy,
    StoreError,
    StoreFull,
    StoreReadOnly,
    StoreUnavailable,
    UnknownDevice,
    UnstorableValue,
    translate_error,
)
from migrator.store.store import resolve_url
from tests.loopback import closed_port


class FakePostgresError(Exception):
    """Stands for a psycopg error: what the translation reads is its SQLSTATE."""

    def __init__(self, sqlstate: str, message: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def _wrapped(orig: BaseException) -> sa_exc.DBAPIError:
    return sa_exc.OperationalError("UPDATE devices SET x = ?", {"note": "do-not-show-me"}, orig)


@pytest.mark.parametrize(
    ("sqlstate", "expected"),
    [
        ("40001", StoreBusy),  # serialization_failure
        ("40P01", StoreBusy),  # deadlock_detected
        ("55P03", StoreBusy),  # lock_not_available
        ("53100", StoreFull),  # disk_full
        ("25006", StoreReadOnly),  # read_only_sql_transaction
        ("08006", StoreUnavailable),  # connection_failure
        ("57P01", StoreUnavailable),  # admin_shutdown
    ],
)
def test_postgresql_sqlstates_map_to_what_the_caller_can_do(sqlstate: str, expected: type[StoreError]) -> None:
    """SQLSTATE classes from the PostgreSQL manual's Appendix A pick the error (and so the action)."""
    error = translate_error(_wrapped(FakePostgresError(sqlstate, "boom\nDETAIL: Key (k)=(v)")), "db", "transition")
    assert type(error) is expected
    assert "do-not-show-me" not in str(error) and "Key (k)" not in str(error)
    assert str(error).startswith("store db: transition")


def test_sqlite_errors_map_by_result_code(tmp_path: Path) -> None:
    """Real sqlite3 errors: locked → StoreBusy, read-only → StoreReadOnly, not a database → StoreError."""
    db = tmp_path / "x.db"
    first = sqlite3.connect(db, isolation_level=None)
    first.execute("CREATE TABLE t (x)")
    first.execute("BEGIN IMMEDIATE")
    second = sqlite3.connect(db, timeout=0.01, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError) as locked:
        second.execute("BEGIN IMMEDIATE")
    first.execute("ROLLBACK")
    assert isinstance(translate_error(_wrapped(locked.value), "db", "write"), StoreBusy)
    reader = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    with pytest.raises(sqlite3.OperationalError) as readonly:
        reader.execute("INSERT INTO t VALUES (1)")
    assert isinstance(translate_error(_wrapped(readonly.value), "db", "write"), StoreReadOnly)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(sqlite3.DatabaseError) as notadb:
        sqlite3.connect(junk).execute("SELECT * FROM sqlite_master")
    translated = translate_error(_wrapped(notadb.value), "db", "open")
    assert type(translated) is StoreError and "not a usable SQLite database" in str(translated)
    for connection in (first, second, reader):
        connection.close()


def test_opening_a_file_that_is_not_a_database_is_a_clear_store_error(tmp_path: Path) -> None:
    """Store.open on a non-database file says so, naming the file."""
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(NotAStore, match=r"junk\.db.*not an SQLite database"):
        Store.open(junk)


def test_an_unwritable_location_is_reported(tmp_path: Path) -> None:
    """A directory the store cannot be created in gives a store error naming it."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises((StoreUnavailable, StoreReadOnly), match="cannot create"):
        Store.open(blocker / "state")


def test_store_errors_belong_to_the_project_tree() -> None:
    """Callers catch MigratorError and show .action next to the message."""
    assert issubclass(StoreError, MigratorError)
    assert StoreBusy("x").action == "retry later"
    assert UnknownDevice("x").action == "fix the input"


def test_an_unreachable_postgresql_store_is_reported_without_the_password() -> None:
    """The URL in messages hides its password (rule 7); no server (or no driver) is a retryable StoreUnavailable."""
    with closed_port() as port, pytest.raises(StoreUnavailable) as caught:
        Store.open(f"postgresql://admin:s3cr3t@127.0.0.1:{port}/migrator")
    assert "s3cr3t" not in str(caught.value) and "admin:***@" in str(caught.value)


def test_a_plain_postgresql_url_uses_the_psycopg_driver_of_the_postgres_extra() -> None:
    """postgresql:// means psycopg (3), the driver `pip install migrator[postgres]` brings; a named driver stays."""
    assert resolve_url("postgresql://u:pw@db/migrator").drivername == "postgresql+psycopg"
    assert resolve_url("postgresql+psycopg2://u@db/migrator").drivername == "postgresql+psycopg2"


def test_an_unreadable_store_url_is_refused_without_its_password() -> None:
    """A URL SQLAlchemy cannot parse is named by its scheme only: its text may hold a password (rule 7)."""
    with pytest.raises(UnstorableValue) as caught:
        Store.open("postgresql://admin:s3cr3t@db:notaport/migrator")
    assert "s3cr3t" not in str(caught.value) and "postgresql://..." in str(caught.value)
