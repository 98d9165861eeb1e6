"""Schema migrations on both back ends: a store left at version 0, 1, 2, 3, 4 or 5 (as that version's code laid it out)
is brought to the present version by the next writing open, keeping every row; a reading open refuses it."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from migrator.store import (
    SCHEMA_VERSION,
    AuditEntry,
    AuditHead,
    SchemaTooOld,
    Store,
    content_hash,
)
from migrator.store.schema import metadata
from tests.store.conftest import FakeClock

# What each version lacked, undone newest first: running DOWNGRADES[v:] turns a present store into a version-v one.
# Only what the migrations add is taken away; statements valid on SQLite (3.35+) and PostgreSQL alike.
DOWNGRADES: list[list[str]] = [
    # version 0 -> lacked schema_version and the lease columns (added by _v0_to_v1)
    [
        "DROP TABLE schema_version",
        "ALTER TABLE devices DROP COLUMN lease_owner",
        "ALTER TABLE devices DROP COLUMN lease_expires_at",
    ],
    # version 1 -> lacked the machine's context (added by _v1_to_v2)
    ["ALTER TABLE devices DROP COLUMN context", "ALTER TABLE users DROP COLUMN context"],
    # version 2 -> lacked the checkable lease owner (added by _v2_to_v3)
    [
        "ALTER TABLE devices DROP COLUMN lease_host",
        "ALTER TABLE devices DROP COLUMN lease_pid",
        "ALTER TABLE devices DROP COLUMN lease_started",
    ],
    # version 3 -> lacked the audit head outside the audit table (added by _v3_to_v4)
    [
        "DROP TABLE audit_head",
        "ALTER TABLE waves DROP COLUMN audit_entries",
        "ALTER TABLE waves DROP COLUMN audit_head",
    ],
    # version 4 -> lacked the journal of directory changes (added by _v4_to_v5)
    ["DROP TABLE directory_changes"],
    # version 5 -> lacked the workers' columns and table (added by _v5_to_v6)
    [
        "DROP INDEX ix_devices_due",
        "DROP TABLE workers",
        "ALTER TABLE devices DROP COLUMN site",
        "ALTER TABLE devices DROP COLUMN released_at",
        "ALTER TABLE devices DROP COLUMN due_at",
    ],
]
assert len(DOWNGRADES) == SCHEMA_VERSION


def _old_store(location: str, clock: FakeClock, version: int) -> str:
    """A store at ``version``, holding a wave, two devices (one moved, one leased), a user and two audit entries;
    returns the audit chain's last hash."""
    with Store.open(location, now=clock) as store:
        store.create_wave("old", playbook_name="p", playbook_hash=content_hash("x"), audit=AuditEntry("me", "create"))
        store.enroll("old", ["PC-OLD", "PC-LEASED"])
        store.transition("PC-OLD", "pending", "preflight", "start", audit=AuditEntry("engine", "start"))
        store.add_user("PC-OLD", "CORP\\alice", sid="S-1-5-21-1")
        if version >= 1:
            assert store.acquire("PC-LEASED", "worker-old", 600)
        tip = store.audit_entries()[-1].hash
        with store.engine.begin() as conn:
            for statements in reversed(DOWNGRADES[version:]):
                for statement in statements:
                    conn.exec_driver_sql(statement)
            if version >= 1:
                conn.exec_driver_sql(f"UPDATE schema_version SET version = {version}")
    return tip


@pytest.mark.parametrize("version", range(SCHEMA_VERSION))
def test_an_old_store_is_migrated_keeping_its_rows(store_location: str, clock: FakeClock, version: int) -> None:
    """Version ``version`` → the present one: same columns as a new store, rows kept, the audit head recorded as the
    log stands, leases of before kept (unchecked), and the store works on."""
    tip = _old_store(store_location, clock, version)
    with pytest.raises(SchemaTooOld, match=f"schema version {version}, older"):
        Store.open(store_location, read_only=True)  # a reading command never migrates
    with Store.open(store_location, now=clock) as store:
        assert store.schema_version() == SCHEMA_VERSION
        found = inspect(store.engine)
        for table in metadata.sorted_tables:
            assert {c["name"] for c in found.get_columns(table.name)} == set(table.c.keys()), table.name
        device = store.get_device("PC-OLD")
        assert (device.state, device.version, device.wave) == ("preflight", 1, "old")
        assert [u.sid for u in store.list_users("PC-OLD")] == ["S-1-5-21-1"]
        leased = store.get_device("PC-LEASED").lease_owner
        assert leased == ("worker-old" if version >= 1 else None)
        report = store.verify_audit()
        assert report.ok and store.audit_head() == report.head == AuditHead(2, tip)
        store.transition("PC-OLD", "preflight", "snapshot", "next", context={"plan": [1]}, audit=AuditEntry("e", "x"))
        assert store.get_device("PC-OLD").context == {"plan": [1]}
        assert store.verify_audit().ok and store.audit_head() == AuditHead(3, store.audit_entries()[-1].hash)
    with Store.open(store_location, read_only=True) as reader:  # migrated: readable now
        assert reader.get_device("PC-OLD").state == "snapshot"
