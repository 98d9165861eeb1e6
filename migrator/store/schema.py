"""Tables, indices and constraints of the store, its schema version and the migrations between versions.

A fresh store is created at :data:`SCHEMA_VERSION` directly. An older store is brought up to date by running
``MIGRATIONS[found:]`` in one transaction (DDL is transactional on SQLite and PostgreSQL, so a crash midway
leaves the old version intact). A newer store is refused.

Version 0 is the layout without the ``schema_version`` table, whose ``devices`` table had no lease columns
(``lease_owner``, ``lease_expires_at``); version 1 adds both and records the version. Version 2 adds a JSON
``context`` column to ``devices`` and ``users``: the state machine's own data (deadlines, the policy plan, the
container recorded at preflight...), written by the funnel in the same transaction as the state it belongs to.
Version 3 adds who holds a lease in a form that can be checked (``lease_host``, ``lease_pid``,
``lease_started``: see :class:`migrator.store.leases.LeaseOwner`), so the lease of a worker that died on this
host is taken over at once instead of after its expiry. Leases written before stay plain strings: not
checkable, free at expiry, as they were. Version 4 keeps the audit chain's head (entry count and last hash)
outside the audit table: in ``audit_head`` (moved by every append) and in every wave row (``audit_entries``,
``audit_head``: the head when the wave was created or last changed state), so deleting the tail of the log, or
rebuilding it, shows unless several places are forged consistently (see :mod:`migrator.store.audit`).
Version 5 adds ``directory_changes``: the journal of a wave's changes to the control plane (AD group membership
of a batch's computers, Entra group membership of its device objects, and their rollback), intent before the
modify and outcome after, as ``journal`` is for a device's steps. Version 6 adds what workers sharing a store need
(:mod:`migrator.store.claims`): a device's ``site``, ``released_at`` and ``due_at``, and the ``workers`` table with
their heartbeats.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Connection,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    inspect,
    text,
)

from migrator.store.codec import GuardedJSON, UTCDateTime

SCHEMA_VERSION = 6

PATHS = ("key", "cert", "cloud", "ineligible")
JOURNAL_STATUSES = ("intent", "done", "failed", "resolved")
STEP_STATUSES = ("running", "succeeded", "failed", "skipped")
SUBJECTS = ("device", "user")
# Registry value kinds as PowerShell names them (Microsoft.Win32.RegistryValueKind, New-ItemProperty -PropertyType):
# the vocabulary of scripts/snapshot_policy.ps1 and restore_policy.ps1, so a snapshot record goes back verbatim.
REG_TYPES = ("String", "ExpandString", "DWord", "QWord", "MultiString", "Binary")
GENESIS_HASH = "0" * 64


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", Integer, nullable=False),
    Column("migrated_at", UTCDateTime, nullable=False),
    CheckConstraint("id = 1", name="ck_schema_version_single_row"),
)

waves = Table(
    "waves",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("change_ticket", String(200), nullable=True),
    Column("playbook_name", String(200), nullable=False),
    Column("playbook_hash", String(64), nullable=False),
    Column("settings", GuardedJSON("waves.settings"), nullable=False),
    Column("state", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # The audit chain's head when the wave was created or last changed state (NULL: written before version 4).
    Column("audit_entries", Integer, nullable=True),
    Column("audit_head", String(64), nullable=True),
)

devices = Table(
    "devices",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False),
    # Windows computer names are case-insensitive (the inventory folds them too): unique on the folded name.
    Column("name_key", String(255), nullable=False, unique=True),
    Column("wave_id", Integer, ForeignKey("waves.id"), nullable=False),
    Column("state", String(64), nullable=False),
    Column("path", String(16), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("version", Integer, nullable=False),
    Column("lease_owner", String(200), nullable=True),
    Column("lease_expires_at", UTCDateTime, nullable=True),
    # The lease owner's parts, written with lease_owner when the owner is a LeaseOwner (NULL for a plain string):
    # where its process runs and which process it is, so a worker can tell a dead holder from a live one.
    Column("lease_host", String(120), nullable=True),
    Column("lease_pid", Integer, nullable=True),
    Column("lease_started", String(64), nullable=True),  # boot id, pid namespace, start ticks: LeaseOwner.started
    Column("context", GuardedJSON("devices.context"), nullable=True),  # the machine's data for this state
    Column("updated_at", UTCDateTime, nullable=False),
    # Schema 6, for `migrator worker` (migrator.engine.workers): the inventory's site (NULL: none), when the wave
    # coordinator released the device's batch (NULL: not yet), and when a worker should visit it next (NULL:
    # never again, or not released). Workers claim released devices that are due.
    Column("site", String(63), nullable=True),
    Column("released_at", UTCDateTime, nullable=True),
    Column("due_at", UTCDateTime, nullable=True),
    CheckConstraint(f"path IS NULL OR {_in('path', PATHS)}", name="ck_devices_path"),
    CheckConstraint("version >= 0", name="ck_devices_version"),
    Index("ix_devices_wave_state", "wave_id", "state"),
    Index("ix_devices_due", "due_at"),
)

# Schema 6: the workers sharing the store (`migrator worker`, and `migrator run` on PostgreSQL), each with its
# heartbeat: `migrator status` says which sites have no live worker.
workers = Table(
    "workers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("owner", String(200), nullable=False, unique=True),  # its LeaseOwner text: the owner of its leases
    Column("host", String(120), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("sites", GuardedJSON("workers.sites"), nullable=False),  # [] = every device, whatever its site
    Column("started_at", UTCDateTime, nullable=False),
    Column("heartbeat_at", UTCDateTime, nullable=False),
    Column("stopped_at", UTCDateTime, nullable=True),  # a worker that ended cleanly says so
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("device_id", Integer, ForeignKey("devices.id"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("name_key", String(255), nullable=False),  # account names are case-insensitive on Windows
    Column("sid", String(200), nullable=True),
    Column("state", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("container_trust", String(16), nullable=True),  # the trust of the user's Hello container at preflight
    Column("key_id", String(200), nullable=True),  # NgcKeyId at preflight
    Column("last_error", Text, nullable=True),
    Column("context", GuardedJSON("users.context"), nullable=True),  # the user machine's data for this state
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("device_id", "name_key", name="uq_users_device_name"),
)

transitions = Table(
    "transitions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("device_id", Integer, ForeignKey("devices.id"), nullable=False),
    Column("subject", String(8), nullable=False),  # whose state changed: the device's or the user's
    Column("user_name", String(255), nullable=True),
    Column("from_state", String(64), nullable=False),
    Column("to_state", String(64), nullable=False),
    Column("event", String(128), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("wave_id", Integer, ForeignKey("waves.id"), nullable=True),
    Column("attempt", Integer, nullable=False),
    CheckConstraint(_in("subject", SUBJECTS), name="ck_transitions_subject"),
    CheckConstraint("subject = 'device' OR user_name IS NOT NULL", name="ck_transitions_user"),
    Index("ix_transitions_device_at", "device_id", "at"),
    Index("ix_transitions_wave_at", "wave_id", "at"),
)

steps = Table(
    "steps",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("device_id", Integer, ForeignKey("devices.id"), nullable=False),
    Column("user_name", String(255), nullable=True),
    Column("step", String(128), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("error", Text, nullable=True),
    CheckConstraint(_in("status", STEP_STATUSES), name="ck_steps_status"),
)
# One row per attempt of a step, for the device itself (user NULL) or one of its users. NULLs are distinct in a
# plain unique constraint on both back ends, hence the expression.
Index(
    "ux_steps_attempt",
    steps.c.device_id,
    func.coalesce(steps.c.user_name, ""),
    steps.c.step,
    steps.c.attempt,
    unique=True,
)

facts = Table(
    "facts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("device_id", Integer, ForeignKey("devices.id"), nullable=False),
    Column("taken_at", UTCDateTime, nullable=False),
    Column("data", GuardedJSON("facts.data"), nullable=False),
    Index("ix_facts_device", "device_id", "id"),
)

policy_snapshots = Table(
    "policy_snapshots",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("device_id", Integer, ForeignKey("devices.id"), nullable=False),
    Column("key_path", Text, nullable=False),  # as the caller spelled it: rollback writes it back this way
    Column("value_name", String(255), nullable=False),
    Column("key_fold", Text, nullable=False),  # case-folded canonical spelling: the registry is case-insensitive
    Column("name_fold", String(255), nullable=False),
    Column("existed", Boolean, nullable=False),
    Column("type", String(16), nullable=True),
    Column("data", GuardedJSON("policy_snapshots.data"), nullable=True),
    Column("taken_at", UTCDateTime, nullable=False),
    UniqueConstraint("device_id", "key_fold", "name_fold", name="uq_policy_snapshots_value"),
    CheckConstraint(f"type IS NULL OR {_in('type', REG_TYPES)}", name="ck_policy_snapshots_type"),
    CheckConstraint("existed OR (type IS NULL AND data IS NULL)", name="ck_policy_snapshots_absent"),
)

journal = Table(
    "journal",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("device_id", Integer, ForeignKey("devices.id"), nullable=False),
    Column("user_name", String(255), nullable=True),
    Column("step", String(128), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("idempotency_key", String(255), nullable=False, unique=True),
    Column("intent", GuardedJSON("journal.intent"), nullable=False),
    Column("intent_at", UTCDateTime, nullable=False),
    Column("outcome", GuardedJSON("journal.outcome"), nullable=True),
    Column("outcome_at", UTCDateTime, nullable=True),
    Column("status", String(16), nullable=False),
    CheckConstraint(_in("status", JOURNAL_STATUSES), name="ck_journal_status"),
    CheckConstraint("(status = 'intent') = (outcome_at IS NULL)", name="ck_journal_outcome"),
    Index("ix_journal_status_device", "status", "device_id"),
    Index("ix_journal_device", "device_id", "id"),
)

# A wave's changes to the directory (one row per domain, batch and purpose): what it meant to change and the
# memberships found before (intent), then what the DC answered (outcome), or what re-reading showed (resolved).
directory_changes = Table(
    "directory_changes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("wave_id", Integer, ForeignKey("waves.id"), nullable=False),
    Column("batch", Integer, nullable=False),  # the batch's index in the wave (0: the canary, when there is one)
    Column("domain", String(255), nullable=False),
    Column("purpose", String(32), nullable=False),  # migrate | rollback
    Column("attempt", Integer, nullable=False),
    Column("idempotency_key", String(255), nullable=False, unique=True),
    Column("intent", GuardedJSON("directory_changes.intent"), nullable=False),
    Column("intent_at", UTCDateTime, nullable=False),
    Column("outcome", GuardedJSON("directory_changes.outcome"), nullable=True),
    Column("outcome_at", UTCDateTime, nullable=True),
    Column("status", String(16), nullable=False),
    CheckConstraint(_in("status", JOURNAL_STATUSES), name="ck_directory_changes_status"),
    CheckConstraint("(status = 'intent') = (outcome_at IS NULL)", name="ck_directory_changes_outcome"),
    Index("ix_directory_changes_wave", "wave_id", "id"),
)

audit = Table(
    "audit",
    metadata,
    # Assigned by the store (previous + 1) under the append lock: ids are dense, so a gap shows a deletion.
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(200), nullable=False),
    Column("device", String(255), nullable=True),  # a name, not a key: the log must read on its own
    Column("change_ticket", String(200), nullable=True),
    Column("before", GuardedJSON("audit.before"), nullable=True),
    Column("after", GuardedJSON("audit.after"), nullable=True),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

# The chain's head as the last append left it (one row): a log whose tail was deleted, or that was rebuilt,
# no longer ends where this says, unless this row is forged too.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("entries", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    CheckConstraint("id = 1", name="ck_audit_head_single_row"),
    CheckConstraint("entries >= 0", name="ck_audit_head_entries"),
)

# SQLite: the audit log is append-only for anyone using the database through SQL. Someone with the file can drop
# the triggers; verify_audit() catches what they change then.
SQLITE_AUDIT_TRIGGERS = (
    "CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'audit is append-only: UPDATE refused'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'audit is append-only: DELETE refused'); END",
)
POSTGRESQL_AUDIT_TRIGGERS = (
    "CREATE OR REPLACE FUNCTION migrator_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'audit is append-only: % refused', TG_OP; END $$",
    "DROP TRIGGER IF EXISTS audit_append_only ON audit",
    "CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit "
    "FOR EACH ROW EXECUTE FUNCTION migrator_audit_append_only()",
)


def install_audit_triggers(conn: Connection) -> None:
    statements = SQLITE_AUDIT_TRIGGERS if conn.dialect.name == "sqlite" else POSTGRESQL_AUDIT_TRIGGERS
    for statement in statements:
        conn.execute(text(statement))


def found_version(conn: Connection) -> int | None:
    """The schema version of the database behind ``conn``; None when it holds no store at all."""
    tables = set(inspect(conn).get_table_names())
    if "schema_version" in tables:
        row = conn.execute(schema_version.select().where(schema_version.c.id == 1)).first()
        if row is not None:
            return int(row.version)
    if {"waves", "devices"} <= tables:
        return 0
    return None


def _v0_to_v1(conn: Connection) -> None:
    """Add the lease columns to ``devices`` (a device's steps must never run twice at once, across processes)."""
    columns = {column["name"] for column in inspect(conn).get_columns("devices")}
    if "lease_owner" not in columns:
        conn.execute(text("ALTER TABLE devices ADD COLUMN lease_owner VARCHAR(200)"))
    if "lease_expires_at" not in columns:
        kind = "TIMESTAMP WITHOUT TIME ZONE" if conn.dialect.name == "postgresql" else "DATETIME"
        conn.execute(text(f"ALTER TABLE devices ADD COLUMN lease_expires_at {kind}"))
    # Tables that did not exist in version 0 (schema_version among them) are created by the caller.


def _v1_to_v2(conn: Connection) -> None:
    """Add the machine's ``context`` (JSON text, NULL for rows written before) to ``devices`` and ``users``."""
    for table in ("devices", "users"):  # GuardedJSON is canonical text on both back ends
        if "context" not in {column["name"] for column in inspect(conn).get_columns(table)}:
            conn.execute(text(f"ALTER TABLE {table} ADD COLUMN context TEXT"))


def _v2_to_v3(conn: Connection) -> None:
    """Add the lease owner's host, pid and process start to ``devices`` (NULL: a lease taken before, unchecked)."""
    columns = {column["name"] for column in inspect(conn).get_columns("devices")}
    for name, kind in (("lease_host", "VARCHAR(120)"), ("lease_pid", "INTEGER"), ("lease_started", "VARCHAR(64)")):
        if name not in columns:
            conn.execute(text(f"ALTER TABLE devices ADD COLUMN {name} {kind}"))


def _v3_to_v4(conn: Connection) -> None:
    """Add the audit head to ``waves`` (NULL for waves written before) and record the chain's present head.

    The head recorded is the log as found: it anchors what follows, not what came before (a store tampered
    with before its migration shows only against an anchor published earlier, in a report or a ticket)."""
    columns = {column["name"] for column in inspect(conn).get_columns("waves")}
    for name, kind in (("audit_entries", "INTEGER"), ("audit_head", "VARCHAR(64)")):
        if name not in columns:
            conn.execute(text(f"ALTER TABLE waves ADD COLUMN {name} {kind}"))
    audit_head.create(conn, checkfirst=True)
    if "audit" in inspect(conn).get_table_names():
        last = conn.execute(text("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1")).first()
        if last is not None:
            count = conn.execute(text("SELECT COUNT(*) FROM audit")).scalar_one()
            conn.execute(
                audit_head.insert().values(id=1, entries=int(count), hash=str(last.hash), at=datetime.now(UTC))
            )


def _v4_to_v5(conn: Connection) -> None:
    """Add ``directory_changes`` (a store written before has made no change to the directory)."""
    directory_changes.create(conn, checkfirst=True)


def _v5_to_v6(conn: Connection) -> None:
    """Add the site, release and due columns to ``devices`` (NULL for devices enrolled before: no site, not
    released; ``run`` on SQLite never uses them) and the ``workers`` table (created by the caller)."""
    columns = {column["name"] for column in inspect(conn).get_columns("devices")}
    kind = "TIMESTAMP WITHOUT TIME ZONE" if conn.dialect.name == "postgresql" else "DATETIME"
    for name, column in (("site", "VARCHAR(63)"), ("released_at", kind), ("due_at", kind)):
        if name not in columns:
            conn.execute(text(f"ALTER TABLE devices ADD COLUMN {name} {column}"))
    if "ix_devices_due" not in {index["name"] for index in inspect(conn).get_indexes("devices")}:
        conn.execute(text("CREATE INDEX ix_devices_due ON devices (due_at)"))


# MIGRATIONS[n] takes a store from version n to version n + 1.
MIGRATIONS: list[Callable[[Connection], None]] = [_v0_to_v1, _v1_to_v2, _v2_to_v3, _v3_to_v4, _v4_to_v5, _v5_to_v6]
assert len(MIGRATIONS) == SCHEMA_VERSION
