"""Opening a store read-only, and refusing what is not a store: nothing is created, migrated or written."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy import exc as sa_exc

from migrator.store import (
    SCHEMA_VERSION,
    AuditEntry,
    NoStore,
    NotAStore,
    SchemaTooNew,
    SchemaTooOld,
    Store,
    StoreReadOnly,
    content_hash,
)
from tests.store.conftest import FakeClock


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _made(tmp_path: Path, clock: FakeClock) -> Path:
    with Store.open(tmp_path, now=clock) as store:
        store.create_wave("w1", playbook_name="p", playbook_hash=content_hash("x"), change_ticket="CHG1")
        store.enroll("w1", ["PC-1"])
    return tmp_path / "migrator.db"


def test_a_read_only_open_reads_and_never_writes(tmp_path: Path, clock: FakeClock) -> None:
    """A store opened read-only reads everything, refuses writes, and leaves the file byte-identical."""
    database = _made(tmp_path, clock)
    before = _digest(database)
    database.chmod(0o444)
    with Store.open(tmp_path, read_only=True) as store:
        assert store.read_only
        assert [w.name for w in store.list_waves()] == ["w1"]
        assert store.verify_audit().ok
        with pytest.raises(StoreReadOnly, match="opened read-only"):
            store.set_wave_state("w1", "paused")
    assert _digest(database) == before


def test_a_read_only_open_never_creates_a_store(tmp_path: Path) -> None:
    """A read-only open of a place without a store says so and creates nothing there."""
    with pytest.raises(NoStore, match="no migrator store at"):
        Store.open(tmp_path / "missing", read_only=True)
    assert not (tmp_path / "missing").exists()
    with pytest.raises(NoStore, match=r"holds no migrator\.db"):
        Store.open(tmp_path, read_only=True)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("read_only", [False, True])
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty \\(0 bytes\\)"),
        (b"name,address\nPC-1,10.0.0.1\n", "not an SQLite database"),
        (b"SQLite format 3\x00" + b"\x00" * 84, "not a usable SQLite database|holds no migrator store"),
    ],
    ids=["empty", "text", "damaged-sqlite"],
)
def test_a_file_that_is_not_a_store_is_refused_untouched(
    tmp_path: Path, content: bytes, message: str, read_only: bool
) -> None:
    """A 0-byte, non-SQLite or damaged file named as the store is refused, by every kind of open, unchanged."""
    database = tmp_path / "migrator.db"
    database.write_bytes(content)
    with pytest.raises(NotAStore, match=message) as caught:
        Store.open(tmp_path, read_only=read_only)
    assert "left untouched" in str(caught.value)
    assert database.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["migrator.db"]


@pytest.mark.parametrize("read_only", [False, True])
@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_a_store_path_that_is_not_a_regular_file_is_refused_at_once(tmp_path: Path, read_only: bool, kind: str) -> None:
    """A directory or a FIFO named migrator.db is refused without reading it (a FIFO would block the read)."""
    database = tmp_path / "migrator.db"
    if kind == "directory":
        database.mkdir()
    else:
        os.mkfifo(database)
    with pytest.raises((NotAStore, NoStore)):
        Store.open(tmp_path, read_only=read_only)


@pytest.mark.parametrize("read_only", [False, True])
def test_an_sqlite_database_without_our_schema_is_refused_untouched(tmp_path: Path, read_only: bool) -> None:
    """Somebody else's SQLite database (even in WAL mode, even empty) never gets our tables beside its own."""
    foreign = tmp_path / "other.db"
    db = sqlite3.connect(foreign)
    db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    db.execute("INSERT INTO customers (name) VALUES ('ACME')")
    db.commit()
    db.close()
    before = _digest(foreign)
    with pytest.raises(NotAStore, match="holds no migrator store"):
        Store.open(foreign, read_only=read_only)
    assert _digest(foreign) == before


@pytest.mark.parametrize("read_only", [False, True])
def test_a_future_schema_is_refused_untouched_by_every_open(tmp_path: Path, clock: FakeClock, read_only: bool) -> None:
    """A store of a newer schema is refused by reading and writing opens alike, and not changed."""
    database = _made(tmp_path, clock)
    db = sqlite3.connect(database)
    db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    db.commit()
    db.close()
    before = _digest(database)
    with pytest.raises(SchemaTooNew):
        Store.open(tmp_path, read_only=read_only)
    assert _digest(database) == before


def test_a_read_only_open_does_not_migrate_an_older_store(tmp_path: Path, clock: FakeClock) -> None:
    """An older store is migrated only by a writing open; a reading one says what to do and changes nothing."""
    database = _made(tmp_path, clock)
    db = sqlite3.connect(database)
    db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION - 1,))
    db.commit()
    db.close()
    before = _digest(database)
    with pytest.raises(SchemaTooOld, match="does not migrate"):
        Store.open(tmp_path, read_only=True)
    assert _digest(database) == before


def test_read_only_on_every_back_end_reads_and_the_database_refuses_writes(
    store_location: str, clock: FakeClock
) -> None:
    """Read-only on SQLite (mode=ro) and PostgreSQL (read-only transactions): reads and verifies; a write is
    refused by the store first and, underneath, by the database itself."""
    with Store.open(store_location, now=clock) as store:
        store.create_wave("w1", playbook_name="p", playbook_hash=content_hash("x"), audit=AuditEntry("me", "create"))
        head = store.audit_head()
    with Store.open(store_location, read_only=True) as reader:
        assert [w.name for w in reader.list_waves()] == ["w1"]
        report = reader.verify_audit()
        assert report.ok and report.head == head == reader.get_wave("w1").audit_head
        with pytest.raises(StoreReadOnly):
            reader.append_audit(AuditEntry("me", "x"))
        with pytest.raises(sa_exc.DBAPIError, match=r"(?i)read-only|readonly"), reader.engine.begin() as conn:
            conn.execute(text("UPDATE waves SET state = 'x'"))


def test_a_postgresql_database_of_other_tables_is_not_made_a_store(store_location: str) -> None:
    """A PostgreSQL database holding somebody else's tables gets none of ours; an empty one read-only is no store."""
    if "://" not in store_location:
        pytest.skip("PostgreSQL only (SQLite: the tests above)")
    engine = create_engine(store_location)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE customers (id INTEGER PRIMARY KEY)"))
        with pytest.raises(NotAStore, match="holds tables but no migrator store"):
            Store.open(store_location)
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE customers"))
        with pytest.raises(NoStore):
            Store.open(store_location, read_only=True)
        with engine.connect() as conn:
            assert inspect(conn).get_table_names() == []
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS customers"))
        engine.dispose()
