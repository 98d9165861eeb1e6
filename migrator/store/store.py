"""The store: one SQLAlchemy Core engine over SQLite (WAL, in ``state/``) or PostgreSQL (several workers).

Theory of operation
-------------------
* Every public method is one short transaction on a connection borrowed from the engine's pool, so one
  :class:`Store` serves a thread pool. On SQLite every writing transaction starts with ``BEGIN IMMEDIATE``: it
  takes the single writer lock up front (waiting up to ``busy_timeout``) instead of failing halfway when a read
  would have to become a write, and it serialises check-then-write sequences such as :meth:`Store.transition`
  and the audit append. On PostgreSQL the same sequences are made safe by conditional UPDATEs (``WHERE state =
  ... AND version = ...``, re-checked by READ COMMITTED after a concurrent commit), unique constraints read
  back inside savepoints, and a table lock for the audit chain.
* :meth:`Store.transition` is the one funnel for state changes (architecture rule 2): the state check, the new
  state and version, the transition row and the audit entry commit together or not at all.
* The journal (rule 3): :meth:`Store.intent` commits before it returns, so a side effect is only ever started
  with its intent on disk; :meth:`Store.outcome` records what happened; an intent without outcome after a
  restart is *in doubt* (:meth:`Store.in_doubt`) and is settled with :meth:`Store.resolve` after re-reading the
  device, never by repeating the effect.
* Times come from the injected ``now`` clock and are stored as UTC.
* Foreign exceptions are translated once, in :func:`translate_error`, into :mod:`migrator.store.errors`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, cast

from sqlalchemy import (
    Connection,
    Engine,
    Insert,
    Row,
    Text,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool

from migrator.store import schema
from migrator.store.audit import UnreadableAuditRow, entry_hash, verify_chain
from migrator.store.codec import JsonObject, JsonValue, canonical, decode, guard, utc
from migrator.store.errors import (
    ConcurrentUpdate,
    DeviceInOtherWave,
    DuplicateWave,
    JournalConflict,
    LeaseNotHeld,
    SchemaTooNew,
    StoreBusy,
    StoreError,
    StoreFull,
    StoreReadOnly,
    StoreUnavailable,
    UnknownDevice,
    UnknownJournalEntry,
    UnknownStep,
    UnknownUser,
    UnknownWave,
    UnstorableValue,
)
from migrator.store.rows import (
    AuditEntry,
    AuditRecord,
    AuditReport,
    DeviceRow,
    FactsSnapshot,
    JournalEntry,
    JournalStatus,
    PolicyValue,
    RollbackRecord,
    StepRow,
    StepStatus,
    Timeline,
    TransitionRow,
    UserRow,
    WaveRow,
)
from migrator.store.schema import (
    GENESIS_HASH,
    MIGRATIONS,
    PATHS,
    REG_TYPES,
    SCHEMA_VERSION,
    audit,
    devices,
    facts,
    found_version,
    install_audit_triggers,
    journal,
    metadata,
    policy_snapshots,
    schema_version,
    steps,
    transitions,
    users,
    waves,
)

Clock = Callable[[], datetime]
DB_FILE_NAME = "migrator.db"
# Any constant works: it only has to be the same in every migrator process sharing a PostgreSQL database.
_PG_SCHEMA_LOCK = 0x6D696772  # "migr"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_IN_CHUNK = 500  # names per IN (...) list: far below SQLite's 32766 bound variables


def utc_now() -> datetime:
    return datetime.now(UTC)


def content_hash(data: str | bytes) -> str:
    """SHA-256 hex of a playbook's content (text is hashed as UTF-8): what :meth:`Store.create_wave` records."""
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()


def resolve_url(url_or_path: str | Path) -> URL:
    """A ``sqlite://`` or ``postgresql://`` URL as is; a directory → ``sqlite:///<dir>/migrator.db`` (created).

    A path to an existing file, or ending in ``.db``/``.sqlite``, names the database file itself."""
    if isinstance(url_or_path, str) and "://" in url_or_path:
        url = make_url(url_or_path)
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise UnstorableValue(
                f"store URL scheme {url.drivername!r}: only sqlite:// and postgresql:// are supported"
            )
        return url
    path = Path(url_or_path).expanduser()
    try:
        if path.is_file() or path.suffix in (".db", ".sqlite"):
            path.parent.mkdir(parents=True, exist_ok=True)
            database = path
        else:
            path.mkdir(parents=True, exist_ok=True)
            database = path / DB_FILE_NAME
        if not database.exists():
            # The store holds device names, states and the audit log: readable by its owner only. SQLite gives
            # the -wal and -shm files the database file's permissions.
            os.close(os.open(database, os.O_CREAT | os.O_WRONLY, 0o600))
    except PermissionError as error:
        raise StoreReadOnly(f"store {path}: cannot create the database there ({error.strerror})") from None
    except OSError as error:
        raise StoreUnavailable(f"store {path}: cannot create the database there ({error.strerror})") from None
    return URL.create("sqlite", database=str(database.resolve()))


# SQLite primary result codes (https://www.sqlite.org/rescode.html).
_SQLITE_PERM, _SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY = 3, 5, 6, 8
_SQLITE_IOERR, _SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 10, 11, 13, 14, 26


def translate_error(error: BaseException, where: str, what: str) -> StoreError:
    """Map a sqlite3 / psycopg / SQLAlchemy exception to the store's error tree (never with parameter values)."""
    orig: BaseException = getattr(error, "orig", None) or error
    if isinstance(orig, StoreError):
        return orig
    lines = str(orig).strip().splitlines()
    detail = lines[0][:200] if lines else type(orig).__name__
    prefix = f"store {where}: {what}"
    if isinstance(orig, sqlite3.Error):
        code = getattr(orig, "sqlite_errorcode", None)
        primary = code & 0xFF if isinstance(code, int) else None
        if primary in (_SQLITE_BUSY, _SQLITE_LOCKED) or "database is locked" in detail:
            return StoreBusy(f"{prefix}: another writer holds the database ({detail}); nothing was written")
        if primary == _SQLITE_FULL or "disk is full" in detail:
            return StoreFull(f"{prefix}: the disk holding the database is full ({detail}); nothing was written")
        if primary in (_SQLITE_READONLY, _SQLITE_PERM):
            return StoreReadOnly(f"{prefix}: the database cannot be written ({detail})")
        if primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
            return StoreError(f"{prefix}: the file is not a usable SQLite database ({detail})")
        if primary in (_SQLITE_CANTOPEN, _SQLITE_IOERR) or isinstance(orig, sqlite3.OperationalError):
            return StoreUnavailable(f"{prefix}: cannot read or write the database file ({detail})")
    # PostgreSQL SQLSTATE (Appendix A of the PostgreSQL manual): psycopg 2 says .pgcode, psycopg 3 .sqlstate.
    sqlstate = getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str):
        if sqlstate in ("40001", "40P01", "55P03", "57014"):
            return StoreBusy(f"{prefix}: conflict with another writer ({sqlstate}: {detail}); nothing was written")
        if sqlstate == "53100":
            return StoreFull(f"{prefix}: the database server's disk is full ({detail}); nothing was written")
        if sqlstate in ("25006", "42501"):
            return StoreReadOnly(f"{prefix}: the database refuses writes ({sqlstate}: {detail})")
        if sqlstate.startswith(("08", "53", "57P")):
            return StoreUnavailable(f"{prefix}: the database server is unavailable ({sqlstate}: {detail})")
    if isinstance(error, sa_exc.TimeoutError):
        return StoreBusy(f"{prefix}: every pooled connection is in use ({detail})")
    if isinstance(error, sa_exc.OperationalError) or (
        isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated
    ):
        # psycopg reports refused connections, lost servers and timeouts as OperationalError without SQLSTATE.
        return StoreUnavailable(f"{prefix}: cannot reach the database ({detail})")
    if isinstance(error, sa_exc.IntegrityError):
        return StoreError(f"{prefix}: a constraint of the store refused the change ({detail})")
    return StoreError(f"{prefix}: {type(orig).__name__}: {detail}")


def _key(name: str) -> str:
    return name.strip().casefold()


_HIVES = {
    "hklm": "hklm",
    "hkey_local_machine": "hklm",
    "hku": "hku",
    "hkey_users": "hku",
    "hkcu": "hkcu",
    "hkey_current_user": "hkcu",
    "hkcr": "hkcr",
    "hkey_classes_root": "hkcr",
}


def registry_key_fold(path: str) -> str:
    """A registry key path folded for comparison: the registry is case-insensitive, and scripts spell hives as
    ``HKLM:``, ``HKEY_LOCAL_MACHINE`` or ``Registry::HKEY_LOCAL_MACHINE``
    (https://learn.microsoft.com/windows/win32/sysinfo/structure-of-the-registry)."""
    folded = path.strip().replace("/", "\\").casefold()
    for prefix in ("microsoft.powershell.core\\registry::", "registry::"):
        if folded.startswith(prefix):
            folded = folded[len(prefix) :]
            break
    root, _, rest = folded.partition("\\")
    root = _HIVES.get(root.rstrip(":"), root)
    return "\\".join([root, *(segment for segment in rest.split("\\") if segment)])


class Store:
    """Persistence of waves, devices, users, transitions, steps, facts, policy snapshots, journal and audit.

    Open with :meth:`open`; close with :meth:`close` (or use as a context manager)."""

    def __init__(self, engine: Engine, *, now: Clock, serialise: bool = False) -> None:
        self._engine = engine
        self._write_engine = engine.execution_options(migrator_begin="IMMEDIATE")
        self._clock = now
        self._dialect = engine.dialect.name
        # One shared in-memory SQLite connection cannot interleave transactions from several threads.
        self._serial: AbstractContextManager[Any] = threading.RLock() if serialise else nullcontext()
        self.where = engine.url.render_as_string(hide_password=True)

    # ----------------------------------------------------------------------------------------- opening

    @classmethod
    def open(
        cls,
        url_or_path: str | Path,
        *,
        now: Clock = utc_now,
        busy_timeout_ms: int = 10_000,
        synchronous: Literal["NORMAL", "FULL"] = "FULL",
        pool_size: int = 8,
    ) -> Store:
        """Open (creating or migrating) the store at a directory, a database file or a database URL."""
        if synchronous not in ("NORMAL", "FULL"):
            raise UnstorableValue(f"open store: synchronous must be NORMAL or FULL, not {synchronous!r}")
        url = resolve_url(url_or_path)
        where = url.render_as_string(hide_password=True)
        try:
            if url.get_backend_name() == "sqlite":
                engine, serialise = _sqlite_engine(url, busy_timeout_ms, synchronous, pool_size)
            else:
                engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
                serialise = False
        except (sa_exc.SQLAlchemyError, sqlite3.Error, ImportError) as error:
            if isinstance(error, ImportError):
                raise StoreUnavailable(f"store {where}: the database driver is not installed ({error})") from None
            raise translate_error(error, where, "open") from None
        store = cls(engine, now=now, serialise=serialise)
        try:
            store._prepare_schema()
        except BaseException:
            engine.dispose()
            raise
        return store

    def _prepare_schema(self) -> None:
        with self._tx("open the store", write=True) as conn:
            if self._dialect == "postgresql":
                # Two workers starting together must not both create or migrate the schema.
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_SCHEMA_LOCK})
            found = found_version(conn)
            if found is not None and found > SCHEMA_VERSION:
                raise SchemaTooNew(self.where, found, SCHEMA_VERSION)
            if found == SCHEMA_VERSION:
                return
            for migrate in MIGRATIONS[found or 0 :] if found is not None else []:
                migrate(conn)
            metadata.create_all(conn)
            install_audit_triggers(conn)
            conn.execute(schema_version.delete())
            conn.execute(insert(schema_version).values(id=1, version=SCHEMA_VERSION, migrated_at=self._now()))

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def engine(self) -> Engine:
        """The engine, for diagnostics and tests; go through the methods to change anything."""
        return self._engine

    def schema_version(self) -> int:
        with self._tx("read the schema version", write=False) as conn:
            return int(conn.execute(select(schema_version.c.version)).scalar_one())

    # ------------------------------------------------------------------------------------ plumbing

    def _now(self) -> datetime:
        return utc(self._clock())

    @contextmanager
    def _tx(self, what: str, *, write: bool) -> Iterator[Connection]:
        engine = self._write_engine if write else self._engine
        with self._serial:
            try:
                with engine.begin() as conn:
                    yield conn
            except StoreError:
                raise
            except (sa_exc.SQLAlchemyError, sqlite3.Error) as error:
                # `from None`: the SQLAlchemy error's text carries the statement's parameters.
                raise translate_error(error, self.where, what) from None

    def _device(self, conn: Connection, name: str, what: str) -> Row[Any]:
        row = conn.execute(_DEVICE_BY_KEY, {"name_key": _key(name)}).first()
        if row is None:
            raise UnknownDevice(f"{what}: no device named {name!r} is enrolled in store {self.where}")
        return row

    def _wave(self, conn: Connection, name: str, what: str) -> Row[Any]:
        row = conn.execute(select(waves).where(waves.c.name == name)).first()
        if row is None:
            raise UnknownWave(f"{what}: no wave named {name!r} in store {self.where}")
        return row

    def _user(self, conn: Connection, device_id: int, device: str, name: str, what: str) -> Row[Any]:
        row = conn.execute(select(users).where(users.c.device_id == device_id, users.c.name_key == _key(name))).first()
        if row is None:
            raise UnknownUser(f"{what}: device {device!r} has no user {name!r}")
        return row

    def _race_guard(self, conn: Connection) -> AbstractContextManager[Any]:
        """A savepoint around an INSERT that another worker may have raced us to (unique key), PostgreSQL only:
        on SQLite, BEGIN IMMEDIATE already made the read-then-insert exclusive."""
        return conn.begin_nested() if self._dialect == "postgresql" else nullcontext()

    def _check_lease(self, row: Row[Any], owner: str | None, now: datetime, what: str) -> None:
        """Fencing: with ``owner`` given, refuse to act unless that owner holds an unexpired lease."""
        if owner is None:
            return
        expires = row.lease_expires_at
        if row.lease_owner != owner or expires is None or expires <= now:
            holder = row.lease_owner or "nobody"
            raise LeaseNotHeld(
                f"{what}: {owner!r} does not hold the lease of device {row.name!r} (held by {holder}"
                f"{f', expiring {expires.isoformat()}' if expires else ''})"
            )

    # ---------------------------------------------------------------------------------------- waves

    def create_wave(
        self,
        name: str,
        *,
        playbook_name: str,
        playbook_hash: str,
        change_ticket: str | None = None,
        settings: Mapping[str, object] | None = None,
        state: str = "planned",
        audit: AuditEntry | None = None,
    ) -> WaveRow:
        """Create a wave; ``playbook_hash`` is the SHA-256 hex of the playbook's content (:func:`content_hash`)."""
        if not _HEX64.fullmatch(playbook_hash):
            raise UnstorableValue(f"create wave {name!r}: playbook_hash must be 64 lowercase hex digits (SHA-256)")
        checked = guard(dict(settings or {}), where=f"settings of wave {name!r}")
        now = self._now()
        with self._tx(f"create wave {name!r}", write=True) as conn:
            if conn.execute(select(waves.c.id).where(waves.c.name == name)).first() is not None:
                raise DuplicateWave(f"create wave: a wave named {name!r} already exists")
            try:
                with self._race_guard(conn):
                    wave_id = _new_id(
                        conn,
                        insert(waves).values(
                            name=name,
                            change_ticket=change_ticket,
                            playbook_name=playbook_name,
                            playbook_hash=playbook_hash,
                            settings=checked,
                            state=state,
                            created_at=now,
                            updated_at=now,
                        ),
                    )
            except sa_exc.IntegrityError:
                raise DuplicateWave(f"create wave: a wave named {name!r} already exists") from None
            if audit is not None:
                self._append_audit(conn, _fill(audit, None, change_ticket), now)
        return WaveRow(
            wave_id, name, change_ticket, playbook_name, playbook_hash, cast(JsonObject, checked), state, now, now
        )

    def get_wave(self, name: str) -> WaveRow:
        with self._tx(f"read wave {name!r}", write=False) as conn:
            return _wave_row(self._wave(conn, name, "get wave"))

    def list_waves(self) -> list[WaveRow]:
        with self._tx("list waves", write=False) as conn:
            return [_wave_row(row) for row in conn.execute(select(waves).order_by(waves.c.id))]

    def set_wave_state(
        self, name: str, to: str, *, expected_from: str | None = None, audit: AuditEntry | None = None
    ) -> WaveRow:
        """Change a wave's state; with ``expected_from``, only from that state (else :class:`ConcurrentUpdate`)."""
        now = self._now()
        with self._tx(f"set state of wave {name!r}", write=True) as conn:
            row = self._wave(conn, name, "set wave state")
            condition = [waves.c.id == row.id]
            if expected_from is not None:
                condition.append(waves.c.state == expected_from)
            result = conn.execute(update(waves).where(*condition).values(state=to, updated_at=now))
            if result.rowcount != 1:
                raise ConcurrentUpdate(
                    f"set wave state: wave {name!r} is in state {row.state!r}, not {expected_from!r}",
                    current_state=row.state,
                    current_version=0,
                )
            if audit is not None:
                self._append_audit(conn, _fill(audit, None, row.change_ticket), now)
        return dataclasses.replace(_wave_row(row), state=to, updated_at=now)

    # -------------------------------------------------------------------------------------- devices

    def enroll(
        self, wave: str, devices: Iterable[str], *, state: str = "pending", path: str | None = None
    ) -> list[DeviceRow]:
        """Put devices in a wave, in ``state`` (the machine's initial state) at version 0.

        Idempotent: a device already in this wave is left as it is. A device in another wave is refused
        (:class:`DeviceInOtherWave`) and nothing is enrolled."""
        _check_path(path, "enroll")
        wanted: dict[str, str] = {}
        for name in devices:
            if not name.strip():
                raise UnstorableValue(f"enroll in wave {wave!r}: a device name is empty")
            wanted.setdefault(_key(name), name.strip())
        now = self._now()
        with self._tx(f"enroll devices in wave {wave!r}", write=True) as conn:
            wave_row = self._wave(conn, wave, "enroll")
            keys = list(wanted)
            existing: dict[str, int] = {}
            for chunk in _chunks(keys):
                found = conn.execute(
                    select(schema.devices.c.name_key, schema.devices.c.wave_id, waves.c.name)
                    .join(waves, waves.c.id == schema.devices.c.wave_id)
                    .where(schema.devices.c.name_key.in_(chunk))
                )
                for key, wave_id, wave_name in found:
                    if wave_id != wave_row.id:
                        raise DeviceInOtherWave(
                            f"enroll in wave {wave!r}: device {wanted[key]!r} is already in wave {wave_name!r}"
                        )
                    existing[key] = wave_id
            fresh = [
                {
                    "name": wanted[key],
                    "name_key": key,
                    "wave_id": wave_row.id,
                    "state": state,
                    "path": path,
                    "version": 0,
                    "updated_at": now,
                }
                for key in keys
                if key not in existing
            ]
            if fresh:
                conn.execute(insert(schema.devices), fresh)
            rows: list[DeviceRow] = []
            for chunk in _chunks(keys):
                rows += [
                    _device_row(r) for r in conn.execute(_DEVICE_SELECT.where(schema.devices.c.name_key.in_(chunk)))
                ]
        order = {key: index for index, key in enumerate(keys)}
        return sorted(rows, key=lambda r: order[_key(r.name)])

    def get_device(self, name: str) -> DeviceRow:
        with self._tx(f"read device {name!r}", write=False) as conn:
            return _device_row(self._device(conn, name, "get device"))

    def list_devices(self, wave: str | None = None, states: Iterable[str] | None = None) -> list[DeviceRow]:
        query = _DEVICE_SELECT.order_by(devices.c.name_key)
        with self._tx("list devices", write=False) as conn:
            if wave is not None:
                query = query.where(devices.c.wave_id == self._wave(conn, wave, "list devices").id)
            if states is not None:
                query = query.where(devices.c.state.in_(list(states)))
            return [_device_row(row) for row in conn.execute(query)]

    def counts(self, wave: str | None = None) -> dict[str, int]:
        """How many devices are in each state (of one wave, or of all)."""
        query = select(devices.c.state, func.count()).group_by(devices.c.state).order_by(devices.c.state)
        with self._tx("count devices", write=False) as conn:
            if wave is not None:
                query = query.where(devices.c.wave_id == self._wave(conn, wave, "count devices").id)
            return {state: int(count) for state, count in conn.execute(query)}

    # ----------------------------------------------------------------------------------- the funnel

    def transition(
        self,
        device: str,
        expected_from: str,
        to: str,
        event: str,
        *,
        user: str | None = None,
        wave: str | None = None,
        attempt: int = 0,
        last_error: str | None = None,
        path: str | None = None,
        expected_version: int | None = None,
        owner: str | None = None,
        audit: AuditEntry | None = None,
        context: Mapping[str, object] | None = None,
    ) -> DeviceRow:
        """Move a device from ``expected_from`` to ``to`` — the one funnel for device state changes.

        In one transaction: check that the device is still in ``expected_from`` (and at ``expected_version``
        if given, and leased to ``owner`` if given), set the new state, bump the version, set ``last_error``
        (None clears it: it describes the current state) and ``path`` (None keeps it), insert the transition
        row (recording ``user`` when the change concerns one user, and ``wave``, by default the device's), and
        append ``audit`` (its device and change ticket default to this device and its wave's ticket).
        ``context`` (the machine's JSON data for the new state) replaces the stored one; None keeps it.
        Raises :class:`ConcurrentUpdate` and changes nothing if the device moved on."""
        _check_path(path, "transition")
        checked_context = None if context is None else guard(dict(context), where=f"context of device {device!r}")
        now = self._now()
        with self._tx(f"transition device {device!r}", write=True) as conn:
            row = self._device(conn, device, "transition")
            _expect(row, expected_from, expected_version, f"transition {device!r} ({event})")
            self._check_lease(row, owner, now, f"transition {device!r}")
            wave_id = row.wave_id if wave is None else self._wave(conn, wave, "transition").id
            values: dict[str, Any] = {
                "state": to,
                "version": row.version + 1,
                "last_error": last_error,
                "updated_at": now,
            }
            if path is not None:
                values["path"] = path
            if checked_context is not None:
                values["context"] = checked_context
            result = conn.execute(
                _MOVE_DEVICE, {"b_id": row.id, "b_state": expected_from, "b_version": row.version, **values}
            )
            if result.rowcount != 1:  # PostgreSQL: another worker committed between our read and our write
                fresh = self._device(conn, device, "transition")
                raise _concurrent(f"transition {device!r} ({event})", expected_from, row.version, fresh)
            conn.execute(
                _INSERT_TRANSITION,
                {
                    "device_id": row.id,
                    "subject": "device",
                    "user_name": user,
                    "from_state": expected_from,
                    "to_state": to,
                    "event": event,
                    "at": now,
                    "wave_id": wave_id,
                    "attempt": attempt,
                },
            )
            if audit is not None:
                self._append_audit(conn, _fill(audit, row.name, row.change_ticket), now)
        return dataclasses.replace(_device_row(row), **values)

    # ---------------------------------------------------------------------------------------- users

    def add_user(
        self,
        device: str,
        name: str,
        *,
        sid: str | None = None,
        state: str = "pending",
        container_trust: str | None = None,
        key_id: str | None = None,
    ) -> UserRow:
        """Record a user of a device as preflight found it (Hello container trust and NgcKeyId).

        Idempotent: a user already recorded is returned unchanged (the first preflight is what rollback and
        reports refer to)."""
        now = self._now()
        with self._tx(f"add user {name!r} to device {device!r}", write=True) as conn:
            dev = self._device(conn, device, "add user")
            query = select(users).where(users.c.device_id == dev.id, users.c.name_key == _key(name))
            row = conn.execute(query).first()
            if row is None:
                try:
                    with self._race_guard(conn):
                        conn.execute(
                            insert(users).values(
                                device_id=dev.id,
                                name=name,
                                name_key=_key(name),
                                sid=sid,
                                state=state,
                                version=0,
                                container_trust=container_trust,
                                key_id=key_id,
                                updated_at=now,
                            )
                        )
                except sa_exc.IntegrityError:
                    pass  # recorded by another worker since our read: theirs stands
                row = conn.execute(query).one()
            return _user_row(row, dev.name)

    def identify_user(self, device: str, name: str, *, container_trust: str | None, key_id: str) -> UserRow:
        """Record the Hello container of a user first read after preflight (not signed in then).

        First wins, like :meth:`add_user`: a user whose key id is already recorded is returned unchanged, so the
        container the migration started from stays the one reports and the delete guard refer to."""
        with self._tx(f"identify user {name!r} of {device!r}", write=True) as conn:
            dev = self._device(conn, device, "identify user")
            row = self._user(conn, dev.id, dev.name, name, "identify user")
            if row.key_id is None:
                conn.execute(
                    update(users)
                    .where(users.c.id == row.id, users.c.key_id.is_(None))
                    .values(container_trust=container_trust, key_id=key_id)
                )
                row = self._user(conn, dev.id, dev.name, name, "identify user")
            return _user_row(row, dev.name)

    def get_user(self, device: str, name: str) -> UserRow:
        with self._tx(f"read user {name!r} of {device!r}", write=False) as conn:
            dev = self._device(conn, device, "get user")
            return _user_row(self._user(conn, dev.id, dev.name, name, "get user"), dev.name)

    def list_users(self, device: str) -> list[UserRow]:
        with self._tx(f"list users of {device!r}", write=False) as conn:
            dev = self._device(conn, device, "list users")
            rows = conn.execute(select(users).where(users.c.device_id == dev.id).order_by(users.c.name_key))
            return [_user_row(row, dev.name) for row in rows]

    def user_transition(
        self,
        device: str,
        user: str,
        expected_from: str,
        to: str,
        event: str,
        *,
        wave: str | None = None,
        attempt: int = 0,
        last_error: str | None = None,
        expected_version: int | None = None,
        owner: str | None = None,
        audit: AuditEntry | None = None,
        context: Mapping[str, object] | None = None,
    ) -> UserRow:
        """Like :meth:`transition`, for one user's sub-state on a device (the users table)."""
        checked_context = None if context is None else guard(dict(context), where=f"context of user {user!r}")
        now = self._now()
        what = f"transition user {user!r} of {device!r} ({event})"
        with self._tx(what, write=True) as conn:
            dev = self._device(conn, device, "user transition")
            self._check_lease(dev, owner, now, what)
            row = self._user(conn, dev.id, dev.name, user, "user transition")
            _expect(row, expected_from, expected_version, what)
            wave_id = dev.wave_id if wave is None else self._wave(conn, wave, "user transition").id
            values: dict[str, Any] = {
                "state": to,
                "version": row.version + 1,
                "last_error": last_error,
                "updated_at": now,
            }
            if checked_context is not None:
                values["context"] = checked_context
            result = conn.execute(
                update(users)
                .where(users.c.id == row.id, users.c.state == expected_from, users.c.version == row.version)
                .values(**values)
            )
            if result.rowcount != 1:
                fresh = self._user(conn, dev.id, dev.name, user, "user transition")
                raise _concurrent(what, expected_from, row.version, fresh)
            conn.execute(
                _INSERT_TRANSITION,
                {
                    "device_id": dev.id,
                    "subject": "user",
                    "user_name": row.name,
                    "from_state": expected_from,
                    "to_state": to,
                    "event": event,
                    "at": now,
                    "wave_id": wave_id,
                    "attempt": attempt,
                },
            )
            if audit is not None:
                self._append_audit(conn, _fill(audit, dev.name, dev.change_ticket), now)
        return dataclasses.replace(_user_row(row, dev.name), **values)

    # ---------------------------------------------------------------------------------------- steps

    def start_step(self, device: str, step: str, attempt: int, *, user: str | None = None) -> StepRow:
        """Record that an attempt of a step started (idempotent: the same attempt returns the existing row)."""
        now = self._now()
        with self._tx(f"start step {step!r} on {device!r}", write=True) as conn:
            dev = self._device(conn, device, "start step")
            query = select(steps).where(
                steps.c.device_id == dev.id,
                func.coalesce(steps.c.user_name, "") == (user or ""),
                steps.c.step == step,
                steps.c.attempt == attempt,
            )
            row = conn.execute(query).first()
            if row is None:
                try:
                    with self._race_guard(conn):
                        conn.execute(
                            insert(steps).values(
                                device_id=dev.id,
                                user_name=user,
                                step=step,
                                attempt=attempt,
                                status="running",
                                started_at=now,
                            )
                        )
                except sa_exc.IntegrityError:
                    pass
                row = conn.execute(query).one()
            return _step_row(row, dev.name)

    def finish_step(self, step_id: int, status: StepStatus, *, error: str | None = None) -> StepRow:
        """Record how an attempt ended; repeating the same finish is a no-op, a different one a conflict."""
        if status == "running":
            raise UnstorableValue("finish step: status must be succeeded, failed or skipped")
        now = self._now()
        with self._tx(f"finish step {step_id}", write=True) as conn:
            row = conn.execute(_STEP_SELECT.where(steps.c.id == step_id)).first()
            if row is None:
                raise UnknownStep(f"finish step: no step attempt with id {step_id}")
            if row.status != "running":
                if row.status == status and row.error == error:
                    return _step_row(row, row.device_name)
                raise JournalConflict(f"finish step: attempt {step_id} already finished as {row.status!r}")
            conn.execute(
                update(steps)
                .where(steps.c.id == step_id, steps.c.status == "running")
                .values(status=status, finished_at=now, error=error)
            )
            return dataclasses.replace(_step_row(row, row.device_name), status=status, finished_at=now, error=error)

    # -------------------------------------------------------------------------------------- journal

    def intent(
        self,
        device: str,
        step: str,
        attempt: int,
        payload: Mapping[str, object],
        *,
        key: str,
        user: str | None = None,
        owner: str | None = None,
    ) -> JournalEntry:
        """Journal the intent of a side effect; it is committed when this returns.

        ``key`` is the idempotency key: the same key again returns the entry already journaled (if it names the
        same device, user, step and attempt; else :class:`JournalConflict`)."""
        checked = guard(dict(payload), where=f"journal intent of {step!r} on {device!r}")
        now = self._now()
        with self._tx(f"journal intent of {step!r} on {device!r}", write=True) as conn:
            dev = self._device(conn, device, "intent")
            self._check_lease(dev, owner, now, f"intent of {step!r}")
            row = conn.execute(_JOURNAL_BY_KEY, {"key": key}).first()
            if row is None:
                try:
                    with self._race_guard(conn):
                        conn.execute(
                            _INSERT_JOURNAL,
                            {
                                "device_id": dev.id,
                                "user_name": user,
                                "step": step,
                                "attempt": attempt,
                                "idempotency_key": key,
                                "intent": checked,
                                "intent_at": now,
                                "status": "intent",
                            },
                        )
                except sa_exc.IntegrityError:
                    pass  # journaled by another worker since our read
                row = conn.execute(_JOURNAL_BY_KEY, {"key": key}).one()
            entry = _journal_row(row)
            if (entry.device, entry.user, entry.step, entry.attempt) != (dev.name, user, step, attempt):
                raise JournalConflict(
                    f"intent: idempotency key {key!r} already journals {entry.step!r} attempt {entry.attempt} on "
                    f"{entry.device!r}" + (f" for {entry.user!r}" if entry.user else "")
                )
            return entry

    def outcome(self, entry_id: int, result: object, ok: bool) -> JournalEntry:
        """Record what the side effect did (status done or failed). Repeating the same outcome is a no-op."""
        return self._settle(entry_id, result, "done" if ok else "failed", "outcome")

    def resolve(self, entry_id: int, result: object) -> JournalEntry:
        """Settle an in-doubt entry with what re-reading the device showed (status resolved)."""
        return self._settle(entry_id, result, "resolved", "resolve")

    def _settle(self, entry_id: int, result: object, status: JournalStatus, what: str) -> JournalEntry:
        checked = guard(result, where=f"journal {what} of entry {entry_id}")
        now = self._now()
        with self._tx(f"journal {what} of entry {entry_id}", write=True) as conn:
            row = conn.execute(_JOURNAL_BY_ID, {"entry_id": entry_id}).first()
            if row is None:
                raise UnknownJournalEntry(f"{what}: no journal entry with id {entry_id}")
            entry = _journal_row(row)
            if entry.status != "intent":
                if entry.status == status and canonical(entry.outcome) == canonical(checked):
                    return entry  # the same call repeated after a crash between commit and return
                raise JournalConflict(
                    f"{what}: journal entry {entry_id} ({entry.step!r} on {entry.device!r}) is already "
                    f"{entry.status!r}, not in doubt"
                )
            conn.execute(_SETTLE_JOURNAL, {"b_id": entry_id, "status": status, "outcome": checked, "outcome_at": now})
            return dataclasses.replace(entry, status=status, outcome=checked, outcome_at=now)

    def in_doubt(self, device: str | None = None) -> list[JournalEntry]:
        """Intents without an outcome (oldest first): the device may or may not have acted."""
        query = _JOURNAL_SELECT.where(journal.c.status == "intent").order_by(journal.c.id)
        with self._tx("list in-doubt journal entries", write=False) as conn:
            if device is not None:
                query = query.where(journal.c.device_id == self._device(conn, device, "in doubt").id)
            return [_journal_row(row) for row in conn.execute(query)]

    def journal_entries(self, device: str) -> list[JournalEntry]:
        with self._tx(f"read journal of {device!r}", write=False) as conn:
            dev = self._device(conn, device, "journal")
            return [
                _journal_row(row)
                for row in conn.execute(_JOURNAL_SELECT.where(journal.c.device_id == dev.id).order_by(journal.c.id))
            ]

    # ---------------------------------------------------------------------------- facts, snapshots

    def save_facts(self, device: str, facts: Mapping[str, object]) -> FactsSnapshot:
        """Keep a snapshot of what was read from the device (every snapshot is kept, newest wins on read)."""
        checked = guard(dict(facts), where=f"facts of {device!r}")
        now = self._now()
        with self._tx(f"save facts of {device!r}", write=True) as conn:
            dev = self._device(conn, device, "save facts")
            fact_id = _new_id(conn, insert(schema.facts).values(device_id=dev.id, taken_at=now, data=checked))
        return FactsSnapshot(fact_id, dev.name, now, cast(JsonObject, checked))

    def latest_facts(self, device: str) -> FactsSnapshot | None:
        with self._tx(f"read facts of {device!r}", write=False) as conn:
            dev = self._device(conn, device, "latest facts")
            row = conn.execute(
                select(facts).where(facts.c.device_id == dev.id).order_by(facts.c.id.desc()).limit(1)
            ).first()
            return None if row is None else FactsSnapshot(row.id, dev.name, row.taken_at, row.data)

    def snapshot_policy(self, device: str, values: Iterable[PolicyValue]) -> list[PolicyValue]:
        """Record policy values as they were before migrator changed them; the first snapshot of a value wins.

        Returns the device's whole snapshot afterwards."""
        rows = []
        now = self._now()
        for value in values:
            kind = _policy_kind(value, device)
            rows.append(
                {
                    "key_path": value.key,
                    "value_name": value.name,
                    "key_fold": registry_key_fold(value.key),
                    "name_fold": value.name.casefold(),
                    "existed": value.existed,
                    "type": kind,
                    "data": value.data,
                    "taken_at": now,
                }
            )
        with self._tx(f"snapshot policy of {device!r}", write=True) as conn:
            dev = self._device(conn, device, "snapshot policy")
            if rows:
                for row in rows:
                    row["device_id"] = dev.id
                make_insert = sqlite_insert if self._dialect == "sqlite" else postgresql_insert
                statement = make_insert(policy_snapshots).on_conflict_do_nothing(
                    index_elements=["device_id", "key_fold", "name_fold"]
                )
                conn.execute(statement, rows)
            return _policy_values(conn, dev.id)

    def policy_snapshot(self, device: str) -> list[PolicyValue]:
        with self._tx(f"read policy snapshot of {device!r}", write=False) as conn:
            return _policy_values(conn, self._device(conn, device, "policy snapshot").id)

    # --------------------------------------------------------------------------------------- leases

    def acquire(self, device: str, owner: str, ttl_seconds: float) -> bool:
        """Take the device's lease if it is free, expired, or already ``owner``'s (then it is extended).

        One conditional UPDATE, so two workers racing for a device cannot both win."""
        if ttl_seconds <= 0:
            raise UnstorableValue(f"acquire lease of {device!r}: ttl_seconds must be positive")
        now = self._now()
        with self._tx(f"acquire lease of {device!r}", write=True) as conn:
            result = conn.execute(
                update(devices)
                .where(
                    devices.c.name_key == _key(device),
                    (devices.c.lease_owner.is_(None))
                    | (devices.c.lease_expires_at.is_(None))
                    | (devices.c.lease_expires_at <= now)
                    | (devices.c.lease_owner == owner),
                )
                .values(lease_owner=owner, lease_expires_at=now + timedelta(seconds=ttl_seconds))
            )
            if result.rowcount == 1:
                return True
            self._device(conn, device, "acquire lease")  # raises UnknownDevice if that is why
            return False

    def renew(self, device: str, owner: str, ttl_seconds: float) -> datetime:
        """Extend ``owner``'s unexpired lease; returns the new expiry. An expired lease must be acquired again."""
        if ttl_seconds <= 0:
            raise UnstorableValue(f"renew lease of {device!r}: ttl_seconds must be positive")
        now = self._now()
        expires = now + timedelta(seconds=ttl_seconds)
        with self._tx(f"renew lease of {device!r}", write=True) as conn:
            result = conn.execute(
                update(devices)
                .where(
                    devices.c.name_key == _key(device),
                    devices.c.lease_owner == owner,
                    devices.c.lease_expires_at > now,
                )
                .values(lease_expires_at=expires)
            )
            if result.rowcount != 1:
                self._check_lease(self._device(conn, device, "renew lease"), owner, now, "renew lease")
        return expires

    def release(self, device: str, owner: str) -> bool:
        """Give the lease up if ``owner`` holds it; returns whether it did."""
        with self._tx(f"release lease of {device!r}", write=True) as conn:
            result = conn.execute(
                update(devices)
                .where(devices.c.name_key == _key(device), devices.c.lease_owner == owner)
                .values(lease_owner=None, lease_expires_at=None)
            )
            if result.rowcount == 1:
                return True
            self._device(conn, device, "release lease")
            return False

    # ---------------------------------------------------------------------------------------- audit

    def append_audit(self, entry: AuditEntry) -> AuditRecord:
        now = self._now()
        with self._tx("append to the audit log", write=True) as conn:
            return self._append_audit(conn, entry, now)

    def _append_audit(self, conn: Connection, entry: AuditEntry, now: datetime) -> AuditRecord:
        if self._dialect == "postgresql":
            # Serialise appenders so two cannot both link to the same head (SHARE ROW EXCLUSIVE conflicts with
            # itself and lets readers through). On SQLite, BEGIN IMMEDIATE already made this the only writer.
            conn.execute(text("LOCK TABLE audit IN SHARE ROW EXCLUSIVE MODE"))
        before = guard(entry.before, where=f"audit {entry.action!r} before")
        after = guard(entry.after, where=f"audit {entry.action!r} after")
        head = conn.execute(_AUDIT_HEAD).first()
        entry_id, prev_hash = (head.id + 1, head.hash) if head is not None else (1, GENESIS_HASH)
        digest = entry_hash(
            entry_id=entry_id,
            at=now,
            actor=entry.actor,
            action=entry.action,
            device=entry.device,
            change_ticket=entry.change_ticket,
            before=before,
            after=after,
            prev_hash=prev_hash,
        )
        record = AuditRecord(
            entry_id,
            now,
            entry.actor,
            entry.action,
            entry.device,
            entry.change_ticket,
            before,
            after,
            prev_hash,
            digest,
        )
        conn.execute(_INSERT_AUDIT, dataclasses.asdict(record))
        return record

    def audit_entries(self, device: str | None = None) -> list[AuditRecord]:
        query = select(audit).order_by(audit.c.id)
        if device is not None:
            query = query.where(func.lower(audit.c.device) == device.strip().lower())
        with self._tx("read the audit log", write=False) as conn:
            return [_audit_record(row) for row in conn.execute(query)]

    def verify_audit(self) -> AuditReport:
        """Recompute the whole hash chain; every problem names the entry id where it shows."""
        raw_json = [type_coerce(audit.c.before, Text).label("before"), type_coerce(audit.c.after, Text).label("after")]
        columns = [c for c in audit.c if c.name not in ("before", "after")]
        query = select(*columns, *raw_json).order_by(audit.c.id)
        with self._tx("verify the audit log", write=False) as conn:
            return verify_chain(_audit_rows(conn.execute(query)))

    # ------------------------------------------------------------------------------------- exports

    def export_wave_transitions(self, wave: str) -> list[TransitionRow]:
        """Every transition recorded for a wave, in time order."""
        with self._tx(f"export transitions of wave {wave!r}", write=False) as conn:
            wave_id = self._wave(conn, wave, "export wave transitions").id
            query = _TRANSITION_SELECT.where(transitions.c.wave_id == wave_id).order_by(
                transitions.c.at, transitions.c.id
            )
            return [_transition_row(row) for row in conn.execute(query)]

    def export_device_timeline(self, device: str) -> Timeline:
        """One device's row, transitions, step attempts and journal entries (see :meth:`Timeline.events`)."""
        with self._tx(f"export timeline of {device!r}", write=False) as conn:
            dev = self._device(conn, device, "export device timeline")
            moves = conn.execute(
                _TRANSITION_SELECT.where(transitions.c.device_id == dev.id).order_by(transitions.c.at, transitions.c.id)
            )
            attempts = conn.execute(
                _STEP_SELECT.where(steps.c.device_id == dev.id).order_by(steps.c.started_at, steps.c.id)
            )
            entries = conn.execute(_JOURNAL_SELECT.where(journal.c.device_id == dev.id).order_by(journal.c.id))
            return Timeline(
                device=_device_row(dev),
                transitions=[_transition_row(row) for row in moves],
                steps=[_step_row(row, row.device_name) for row in attempts],
                journal=[_journal_row(row) for row in entries],
            )

    def export_rollback_records(self, wave: str | None = None) -> list[RollbackRecord]:
        """Per device (of a wave, or all): the policy values to restore and the users' containers at preflight."""
        with self._tx("export rollback records", write=False) as conn:
            query = _DEVICE_SELECT.order_by(devices.c.name_key)
            if wave is not None:
                query = query.where(devices.c.wave_id == self._wave(conn, wave, "export rollback records").id)
            device_rows = list(conn.execute(query))
            by_device: dict[int, list[PolicyValue]] = {row.id: [] for row in device_rows}
            people: dict[int, list[UserRow]] = {row.id: [] for row in device_rows}
            names = {row.id: row.name for row in device_rows}
            snapshot_query = select(policy_snapshots).order_by(policy_snapshots.c.device_id, policy_snapshots.c.id)
            for row in conn.execute(snapshot_query):
                if row.device_id in by_device:
                    by_device[row.device_id].append(_policy_value(row))
            for row in conn.execute(select(users).order_by(users.c.device_id, users.c.name_key)):
                if row.device_id in people:
                    people[row.device_id].append(_user_row(row, names[row.device_id]))
            return [
                RollbackRecord(row.name, row.wave_name, row.state, row.path, by_device[row.id], people[row.id])
                for row in device_rows
            ]


# ------------------------------------------------------------------------------------------ helpers

_DEVICE_SELECT = select(devices, waves.c.name.label("wave_name"), waves.c.change_ticket.label("change_ticket")).join(
    waves, waves.c.id == devices.c.wave_id
)
_JOURNAL_SELECT = select(journal, devices.c.name.label("device_name")).join(
    devices, devices.c.id == journal.c.device_id
)
# Hot paths use statements built once, with bound parameters: SQLAlchemy then reuses their compiled form and
# cache key instead of rebuilding both on every call (the bulk of the per-transaction CPU time).
_DEVICE_BY_KEY = _DEVICE_SELECT.where(devices.c.name_key == bindparam("name_key"))
_MOVE_DEVICE = update(devices).where(
    devices.c.id == bindparam("b_id"),
    devices.c.state == bindparam("b_state"),
    devices.c.version == bindparam("b_version"),
)
_INSERT_TRANSITION = insert(transitions)
_JOURNAL_BY_KEY = _JOURNAL_SELECT.where(journal.c.idempotency_key == bindparam("key"))
_JOURNAL_BY_ID = _JOURNAL_SELECT.where(journal.c.id == bindparam("entry_id"))
_INSERT_JOURNAL = insert(journal)
_SETTLE_JOURNAL = update(journal).where(journal.c.id == bindparam("b_id"), journal.c.status == "intent")
_AUDIT_HEAD = select(audit.c.id, audit.c.hash).order_by(audit.c.id.desc()).limit(1)
_INSERT_AUDIT = insert(audit)
_STEP_SELECT = select(steps, devices.c.name.label("device_name")).join(devices, devices.c.id == steps.c.device_id)
_TRANSITION_SELECT = (
    select(transitions, devices.c.name.label("device_name"), waves.c.name.label("wave_name"))
    .join(devices, devices.c.id == transitions.c.device_id)
    .outerjoin(waves, waves.c.id == transitions.c.wave_id)
)


def _sqlite_engine(url: URL, busy_timeout_ms: int, synchronous: str, pool_size: int) -> tuple[Engine, bool]:
    memory = url.database in (None, "", ":memory:")
    connect_args = {"check_same_thread": False, "timeout": busy_timeout_ms / 1000}
    if memory:
        engine = create_engine(url, connect_args=connect_args, poolclass=StaticPool)
    else:
        engine = create_engine(url, connect_args=connect_args, pool_size=pool_size, max_overflow=pool_size)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        # Let the "begin" listener below issue BEGIN itself: pysqlite would otherwise begin lazily, on the
        # first write only, which defeats both snapshot reads and BEGIN IMMEDIATE (SQLAlchemy's SQLite docs,
        # "Serializable isolation / Savepoints / Transactional DDL").
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        if not memory:
            # WAL: readers never block the writer nor each other (https://www.sqlite.org/wal.html).
            cursor.execute("PRAGMA journal_mode = WAL")
        # synchronous: with WAL, NORMAL fsyncs only at checkpoints, so a commit survives a crash of the process
        # (the WAL is in the OS page cache and the next opener replays it) and the file is never corrupted, but
        # an OS crash or power loss may roll back the last commits (https://www.sqlite.org/pragma.html
        # #pragma_synchronous, https://www.sqlite.org/wal.html#durability). FULL also fsyncs the WAL at every
        # commit, so a journaled intent is on disk before the side effect starts, even across a power cut.
        # bench/store.py measures about 1,500 transitions/s with FULL against 2,200 with NORMAL: either is orders
        # of magnitude above what a wave needs (a device takes seconds per step), so FULL is the default; NORMAL
        # stays selectable for stores on slow disks.
        cursor.execute(f"PRAGMA synchronous = {synchronous}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("migrator_begin", "DEFERRED")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if mode == "IMMEDIATE" else "BEGIN DEFERRED")

    return engine, memory


def _new_id(conn: Connection, statement: Insert) -> int:
    key = conn.execute(statement).inserted_primary_key
    assert key is not None  # a single-row INSERT always reports its key
    return int(key[0])


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _IN_CHUNK):
        yield items[start : start + _IN_CHUNK]


def _check_path(path: str | None, what: str) -> None:
    if path is not None and path not in PATHS:
        raise UnstorableValue(f"{what}: path {path!r} is not one of {', '.join(PATHS)}")


_KIND_BY_SPELLING = {kind.casefold(): kind for kind in REG_TYPES} | {
    "reg_sz": "String",
    "reg_expand_sz": "ExpandString",
    "reg_dword": "DWord",
    "reg_qword": "QWord",
    "reg_multi_sz": "MultiString",
    "reg_binary": "Binary",
}


def _policy_kind(value: PolicyValue, device: str) -> str | None:
    """The value's RegistryValueKind name, after checking the value is consistent and holds no secret."""
    where = f"policy snapshot of {device!r}, {value.key}\\{value.name}"
    # The value's name is its key: a policy value named like a secret (Winlogon's DefaultPassword) is refused.
    guard({value.name: value.data}, where=f"policy snapshot of {device!r}, {value.key}")
    if not value.existed:
        if value.type is not None or value.data is not None:
            raise UnstorableValue(f"{where}: a value that did not exist has no type or data")
        return None
    kind = _KIND_BY_SPELLING.get((value.type or "").casefold())
    if kind is None:
        raise UnstorableValue(f"{where}: type {value.type!r} is not one of {', '.join(REG_TYPES)} (or REG_*)")
    return kind


def _expect(row: Row[Any], expected_from: str, expected_version: int | None, what: str) -> None:
    if row.state != expected_from or (expected_version is not None and row.version != expected_version):
        raise _concurrent(what, expected_from, expected_version, row)


def _concurrent(what: str, expected_from: str, expected_version: int | None, row: Row[Any]) -> ConcurrentUpdate:
    wanted = f"{expected_from!r}" + (f" at version {expected_version}" if expected_version is not None else "")
    return ConcurrentUpdate(
        f"{what}: expected state {wanted}, but the store has {row.state!r} at version {row.version}; nothing changed",
        current_state=row.state,
        current_version=row.version,
    )


def _fill(entry: AuditEntry, device: str | None, change_ticket: str | None) -> AuditEntry:
    return dataclasses.replace(
        entry,
        device=entry.device if entry.device is not None else device,
        change_ticket=entry.change_ticket if entry.change_ticket is not None else change_ticket,
    )


def _wave_row(row: Row[Any]) -> WaveRow:
    return WaveRow(
        row.id,
        row.name,
        row.change_ticket,
        row.playbook_name,
        row.playbook_hash,
        row.settings,
        row.state,
        row.created_at,
        row.updated_at,
    )


def _device_row(row: Row[Any]) -> DeviceRow:
    return DeviceRow(
        row.id,
        row.name,
        row.wave_name,
        row.state,
        row.path,
        row.last_error,
        row.version,
        row.lease_owner,
        row.lease_expires_at,
        row.updated_at,
        row.context,
    )


def _user_row(row: Row[Any], device: str) -> UserRow:
    return UserRow(
        row.id,
        device,
        row.name,
        row.sid,
        row.state,
        row.version,
        row.container_trust,
        row.key_id,
        row.last_error,
        row.updated_at,
        row.context,
    )


def _step_row(row: Row[Any], device: str) -> StepRow:
    return StepRow(
        row.id, device, row.user_name, row.step, row.attempt, row.status, row.started_at, row.finished_at, row.error
    )


def _journal_row(row: Row[Any]) -> JournalEntry:
    return JournalEntry(
        row.id,
        row.device_name,
        row.user_name,
        row.step,
        row.attempt,
        row.idempotency_key,
        row.intent,
        row.intent_at,
        row.outcome,
        row.outcome_at,
        row.status,
    )


def _transition_row(row: Row[Any]) -> TransitionRow:
    return TransitionRow(
        row.id,
        row.device_name,
        row.subject,
        row.user_name,
        row.from_state,
        row.to_state,
        row.event,
        row.at,
        row.wave_name,
        row.attempt,
    )


def _policy_value(row: Row[Any]) -> PolicyValue:
    return PolicyValue(row.key_path, row.value_name, bool(row.existed), row.type, row.data, row.taken_at)


def _policy_values(conn: Connection, device_id: int) -> list[PolicyValue]:
    query = select(policy_snapshots).where(policy_snapshots.c.device_id == device_id).order_by(policy_snapshots.c.id)
    return [_policy_value(row) for row in conn.execute(query)]


def _audit_record(row: Row[Any]) -> AuditRecord:
    return AuditRecord(
        row.id,
        row.at,
        row.actor,
        row.action,
        row.device,
        row.change_ticket,
        row.before,
        row.after,
        row.prev_hash,
        row.hash,
    )


def _audit_rows(rows: Iterable[Row[Any]]) -> Iterator[AuditRecord | UnreadableAuditRow]:
    for row in rows:
        try:
            before: JsonValue = decode(row.before)
            after: JsonValue = decode(row.after)
        except ValueError as error:
            yield UnreadableAuditRow(row.id, row.prev_hash, row.hash, f"holds JSON that does not parse ({error})")
            continue
        yield dataclasses.replace(_audit_record(row), before=before, after=after)
