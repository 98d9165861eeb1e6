"""Opening a store: locations, SQLite settings, the recorded schema version, migrating a v0 store, refusing a
newer one."""

from __future__ import annotations

import os
import sqlite3
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.schema import CreateIndex, CreateTable

from migrator.store import (
    SCHEMA_VERSION,
    AuditEntry,
    AuditHead,
    LeaseOwner,
    SchemaTooNew,
    Store,
    UnstorableValue,
    content_hash,
)
from migrator.store.schema import MIGRATIONS, metadata, policy_snapshots
from tests.store.conftest import FakeClock


def _pragma(store: Store, name: str) -> object:
    with store.engine.connect() as conn:
        return conn.exec_driver_sql(f"PRAGMA {name}").scalar()


def test_a_directory_becomes_a_wal_database_with_safe_settings(tmp_path: Path) -> None:
    """A directory path gets migrator.db (owner-only) in WAL mode, synchronous=FULL, foreign keys on."""
    location = tmp_path / "state" / "nested"
    with Store.open(location, busy_timeout_ms=1234) as store:
        assert store.where == f"sqlite:///{(location / 'migrator.db').resolve()}"
        assert _pragma(store, "journal_mode") == "wal"
        assert _pragma(store, "synchronous") == 2  # FULL
        assert _pragma(store, "foreign_keys") == 1
        assert _pragma(store, "busy_timeout") == 1234
        assert store.schema_version() == SCHEMA_VERSION
    assert stat.S_IMODE((location / "migrator.db").stat().st_mode) == 0o600


def test_normal_synchronous_can_be_chosen(tmp_path: Path) -> None:
    """synchronous=NORMAL (durable against process kills, not power loss) is available for slow disks."""
    with Store.open(tmp_path, synchronous="NORMAL") as store:
        assert _pragma(store, "synchronous") == 1


def test_a_file_path_and_a_url_open_the_same_database(tmp_path: Path, clock: FakeClock) -> None:
    """A path to the .db file and its sqlite:/// URL reach what the directory form created."""
    with Store.open(tmp_path, now=clock) as store:
        store.create_wave("w1", playbook_name="p", playbook_hash=content_hash("x"))
    with Store.open(tmp_path / "migrator.db") as by_file:
        assert by_file.get_wave("w1").name == "w1"
    with Store.open(f"sqlite:///{tmp_path / 'migrator.db'}") as by_url:
        assert by_url.get_wave("w1").name == "w1"


def test_an_unsupported_url_is_refused() -> None:
    """Only SQLite and PostgreSQL are supported back ends."""
    with pytest.raises(UnstorableValue, match="mysql"):
        Store.open("mysql://db/migrator")


def test_an_in_memory_store_serves_threads() -> None:
    """sqlite:// (memory, for quick experiments) serialises its one connection across threads."""
    with Store.open("sqlite://") as store:
        store.create_wave("w1", playbook_name="p", playbook_hash=content_hash("x"))
        names = [f"PC-{i}" for i in range(20)]
        store.enroll("w1", names)
        with ThreadPoolExecutor(max_workers=6) as pool:
            list(pool.map(lambda n: store.transition(n, "pending", "preflight", "start"), names))
        assert store.counts() == {"preflight": 20}


def test_the_schema_has_every_table_and_constraint(store: Store) -> None:
    """The tables the brief names exist, with the columns reports and rollback rely on."""
    inspector = inspect(store.engine)
    tables = set(inspector.get_table_names())
    assert {
        "schema_version",
        "waves",
        "devices",
        "users",
        "transitions",
        "steps",
        "facts",
        "policy_snapshots",
        "journal",
        "audit",
    } <= tables
    device_columns = {c["name"] for c in inspector.get_columns("devices")}
    assert {"name", "wave_id", "state", "path", "last_error", "version", "lease_owner", "lease_expires_at"} <= (
        device_columns
    )
    assert any(u["column_names"] == ["idempotency_key"] for u in inspector.get_unique_constraints("journal")) or any(
        i["unique"] and i["column_names"] == ["idempotency_key"] for i in inspector.get_indexes("journal")
    )


def _make_v0(path: Path) -> None:
    """Hand-make a version-0 store: no schema_version table and no lease columns on devices."""
    with Store.open(path) as store:
        store.create_wave("old", playbook_name="p", playbook_hash=content_hash("x"), settings={"batch": 5})
        store.enroll("old", ["PC-OLD"])
        store.transition("PC-OLD", "pending", "preflight", "start")
    db = sqlite3.connect(path / "migrator.db")
    db.executescript(
        """
        DROP TABLE schema_version;
        ALTER TABLE devices DROP COLUMN lease_owner;
        ALTER TABLE devices DROP COLUMN lease_expires_at;
        """
    )
    db.close()


def test_a_v0_store_is_migrated_and_keeps_its_data(tmp_path: Path, clock: FakeClock) -> None:
    """Opening a v0 store adds the lease columns, records the version, and loses nothing."""
    _make_v0(tmp_path)
    columns = {row[1] for row in sqlite3.connect(tmp_path / "migrator.db").execute("PRAGMA table_info(devices)")}
    assert "lease_owner" not in columns
    assert len(MIGRATIONS) == SCHEMA_VERSION
    with Store.open(tmp_path, now=clock) as store:
        assert store.schema_version() == SCHEMA_VERSION
        device = store.get_device("PC-OLD")
        assert (device.state, device.version, device.lease_owner) == ("preflight", 1, None)
        assert store.get_wave("old").settings == {"batch": 5}
        assert store.acquire("PC-OLD", "worker-a", 30)
    with Store.open(tmp_path, now=clock) as again:  # a second open finds nothing to do
        assert again.get_device("PC-OLD").lease_owner == "worker-a"


def test_a_v2_store_gains_checkable_lease_owners_and_keeps_its_data(tmp_path: Path, clock: FakeClock) -> None:
    """Opening a version-2 store adds the lease owner's host, pid and start; rows, contexts and a lease taken
    before stay, that lease unchecked (a plain owner string, free at expiry as before)."""
    with Store.open(tmp_path, now=clock) as store:
        store.create_wave("old", playbook_name="p", playbook_hash=content_hash("x"), settings={"batch": 5})
        store.enroll("old", ["PC-OLD", "PC-FREE"])
        store.transition("PC-OLD", "pending", "preflight", "start", context={"plan": [1]})
        store.add_user("PC-OLD", "CORP\\alice", sid="S-1-5-21-1")
        assert store.acquire("PC-OLD", "worker-1234-0badcafe", 600)
    db = sqlite3.connect(tmp_path / "migrator.db")
    db.executescript(
        """
        ALTER TABLE devices DROP COLUMN lease_host;
        ALTER TABLE devices DROP COLUMN lease_pid;
        ALTER TABLE devices DROP COLUMN lease_started;
        UPDATE schema_version SET version = 2;
        """
    )
    db.close()
    with Store.open(tmp_path, now=clock) as store:
        assert store.schema_version() == SCHEMA_VERSION == 6
        device = store.get_device("PC-OLD")
        assert (device.state, device.version, device.context) == ("preflight", 1, {"plan": [1]})
        assert device.lease_owner == "worker-1234-0badcafe"
        assert [u.sid for u in store.list_users("PC-OLD")] == ["S-1-5-21-1"]
        assert store.get_wave("old").settings == {"batch": 5}
        assert [(r.device, r.host, r.pid, r.liveness) for r in store.leases()] == [("PC-OLD", None, None, "unchecked")]
        assert not store.acquire("PC-OLD", str(LeaseOwner.current()), 60)
        mine = str(LeaseOwner.current())
        assert store.acquire("PC-FREE", mine, 60)
        assert {r.device: r.pid for r in store.leases("old")}["PC-FREE"] == os.getpid()
    columns = {row[1] for row in sqlite3.connect(tmp_path / "migrator.db").execute("PRAGMA table_info(devices)")}
    assert {"lease_host", "lease_pid", "lease_started"} <= columns


def test_a_v3_store_gains_the_audit_head_as_its_log_stands(tmp_path: Path, clock: FakeClock) -> None:
    """Opening a version-3 store adds the head columns of waves (NULL for the waves it has) and records the log's
    present head outside the audit table; the chain verifies, and later appends move that head."""
    with Store.open(tmp_path, now=clock) as store:
        store.create_wave("old", playbook_name="p", playbook_hash=content_hash("x"), audit=AuditEntry("me", "create"))
        store.append_audit(AuditEntry("me", "second"))
        tip = store.audit_entries()[-1].hash
    db = sqlite3.connect(tmp_path / "migrator.db")
    db.executescript(
        """
        DROP TABLE audit_head;
        ALTER TABLE waves DROP COLUMN audit_entries;
        ALTER TABLE waves DROP COLUMN audit_head;
        UPDATE schema_version SET version = 3;
        """
    )
    db.close()
    with Store.open(tmp_path, now=clock) as store:
        assert store.schema_version() == SCHEMA_VERSION == 6
        assert store.audit_head() == AuditHead(2, tip)
        assert store.get_wave("old").audit_head is None
        report = store.verify_audit()
        assert report.ok and report.head == AuditHead(2, tip)
        store.append_audit(AuditEntry("me", "third"))
        assert store.audit_head() == store.verify_audit().head == AuditHead(3, store.audit_entries()[-1].hash)


def test_a_newer_store_is_refused_naming_both_versions(tmp_path: Path) -> None:
    """A store written by a newer migrator is not touched; the message names both versions and the store."""
    Store.open(tmp_path).close()
    db = sqlite3.connect(tmp_path / "migrator.db")
    db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    db.commit()
    db.close()
    with pytest.raises(SchemaTooNew) as caught:
        Store.open(tmp_path)
    message = str(caught.value)
    assert f"version {SCHEMA_VERSION + 1}" in message and f"version {SCHEMA_VERSION} " in message
    assert "migrator.db" in message
    assert (caught.value.found, caught.value.supported) == (SCHEMA_VERSION + 1, SCHEMA_VERSION)
    assert caught.value.action.startswith("upgrade migrator")


def test_the_schema_and_upserts_compile_for_postgresql() -> None:
    """Without a server at hand, the DDL, indices and first-wins upsert at least compile for PostgreSQL."""
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    ddl = [str(CreateTable(table).compile(dialect=dialect)) for table in metadata.sorted_tables]
    ddl += [str(CreateIndex(i).compile(dialect=dialect)) for t in metadata.sorted_tables for i in t.indexes]
    assert any(
        "coalesce(steps.user_name" in statement.lower() or "coalesce(user_name" in statement.lower()
        for statement in ddl
    )
    upsert = postgresql_insert(policy_snapshots).on_conflict_do_nothing(
        index_elements=["device_id", "key_fold", "name_fold"]
    )
    assert "ON CONFLICT (device_id, key_fold, name_fold) DO NOTHING" in str(upsert.compile(dialect=dialect))
