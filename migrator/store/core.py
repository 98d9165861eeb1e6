"""The store's core: opening a database, one short transaction per call, and what every aggregate shares.

:class:`StoreCore` holds the engine, the clock and the dialect; :meth:`StoreCore._tx` is the one way a method
talks to the database (a short transaction, foreign errors translated once by :func:`translate_error`);
``_device`` / ``_wave`` / ``_user`` look a row up by name or raise the store's "unknown" error. The aggregates
(:mod:`.waves`, :mod:`.devices`, :mod:`.journal`, :mod:`.leases`, :mod:`.auditing`, :mod:`.exports`) are mixins
over this core; :class:`migrator.store.Store` puts them together.
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self, TypeVar
from urllib.parse import quote

from sqlalchemy import Connection, Engine, Insert, Row, bindparam, create_engine, event, insert, inspect, select, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool

from migrator.store.codec import utc
from migrator.store.errors import (
    ConcurrentUpdate,
    NoStore,
    NotAStore,
    SchemaTooNew,
    SchemaTooOld,
    StoreBusy,
    StoreError,
    StoreFull,
    StoreReadOnly,
    StoreUnavailable,
    UnknownDevice,
    UnknownUser,
    UnknownWave,
    UnstorableValue,
)
from migrator.store.rows import AuditEntry, DeviceRow
from migrator.store.schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    devices,
    found_version,
    install_audit_triggers,
    metadata,
    schema_version,
    users,
    waves,
)

Clock = Callable[[], datetime]
DB_FILE_NAME = "migrator.db"
# Any constant works: it only has to be the same in every migrator process sharing a PostgreSQL database.
_PG_SCHEMA_LOCK = 0x6D696772  # "migr"
_Item = TypeVar("_Item")
_IN_CHUNK = 500  # names per IN (...) list: far below SQLite's 32766 bound variables


def utc_now() -> datetime:
    return datetime.now(UTC)


def resolve_url(url_or_path: str | Path, *, create: bool = True) -> URL:
    """A ``sqlite://`` or ``postgresql://`` URL as is; a directory → ``sqlite:///<dir>/migrator.db`` (created
    unless ``create`` is false: then a missing database is :class:`NoStore`).

    A path to an existing file, or ending in ``.db``/``.sqlite``, names the database file itself."""
    return _locate(url_or_path, create=create)[0]


def _locate(url_or_path: str | Path, *, create: bool) -> tuple[URL, bool]:
    """The store's URL, and whether this call created its (empty) database file."""
    if isinstance(url_or_path, str) and "://" in url_or_path:
        try:
            url = make_url(url_or_path)
        except (sa_exc.ArgumentError, ValueError):  # ValueError: a port that is not a number
            # SQLAlchemy's message quotes the whole string, password and all (rule 7): name only its scheme.
            scheme = url_or_path.split("://", 1)[0]
            raise UnstorableValue(f"store URL ({scheme}://...): not a database URL that can be read") from None
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise UnstorableValue(
                f"store URL scheme {url.drivername!r}: only sqlite:// and postgresql:// are supported"
            )
        if url.drivername == "postgresql":
            # psycopg (3) is the driver of the `postgres` extra; SQLAlchemy's default for postgresql:// would be
            # psycopg2. postgresql+<driver>:// still picks another one.
            url = url.set(drivername="postgresql+psycopg")
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            exists = Path(str(url.database)).is_file()
            if not create and not exists:
                raise NoStore(f"no migrator store at {url.database!r} (no such file)")
            return url, not exists  # SQLite creates a missing file: a new store
        return url, False
    path = Path(url_or_path).expanduser()
    names_file = path.is_file() or path.suffix in (".db", ".sqlite")
    database = path if names_file else path / DB_FILE_NAME
    if not create:
        if not database.is_file():
            why = "no such directory or file" if not path.exists() else f"the directory holds no {DB_FILE_NAME}"
            raise NoStore(f"no migrator store at {str(path)!r} ({why})")
        return URL.create("sqlite", database=str(database.resolve())), False
    created = False
    try:
        database.parent.mkdir(parents=True, exist_ok=True)
        if not database.exists():
            # The store holds device names, states and the audit log: readable by its owner only. SQLite gives
            # the -wal and -shm files the database file's permissions.
            os.close(os.open(database, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            created = True
    except FileExistsError:
        pass  # another process created it between our look and our create: it is theirs, checked as found
    except PermissionError as error:
        raise StoreReadOnly(f"store {path}: cannot create the database there ({error.strerror})") from None
    except OSError as error:
        raise StoreUnavailable(f"store {path}: cannot create the database there ({error.strerror})") from None
    return URL.create("sqlite", database=str(database.resolve())), created


_SQLITE_MAGIC = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite 3 database (fileformat2.html §1.3)


def inspect_sqlite_file(database: Path, *, where: str) -> tuple[int, str]:
    """The schema version of an existing SQLite store file and the URI query that reads it without writing.

    Reads the file only through read-only connections (never a byte written, never a WAL switch), so a file that
    is not a migrator store is refused exactly as it was found: :class:`NotAStore` for an empty file, a file
    that is not SQLite, or an SQLite database without our tables; :class:`SchemaTooNew` for a newer store.
    Without a ``-wal`` file beside it the whole database is in the file, so it is looked at ``immutable`` (which
    creates no ``-shm``/``-wal`` either); with one, through ``mode=ro``. The query returned for reading is
    ``mode=ro`` (it sees a concurrent writer's commits), or ``immutable`` where ``mode=ro`` cannot open: a WAL
    database in a directory the process cannot write (no ``-shm`` can be made, so no writer can be at work
    there either)."""
    if not database.is_file():  # a directory, a FIFO (whose read would block), a device...
        raise NotAStore(f"store {where}: not a regular file, so not a migrator store; left untouched")
    try:
        with database.open("rb") as handle:
            header = handle.read(len(_SQLITE_MAGIC))
    except OSError as error:
        raise StoreUnavailable(f"store {where}: cannot read the database file ({error.strerror})") from None
    if not header:
        raise NotAStore(
            f"store {where}: the file is empty (0 bytes), not a migrator store; it was left untouched "
            "(remove it if it is the leftover of an interrupted first run)"
        )
    if header != _SQLITE_MAGIC:
        raise NotAStore(f"store {where}: the file is not an SQLite database, so not a migrator store; left untouched")
    immutable, live = "mode=ro&immutable=1", "mode=ro"
    wal = database.with_name(database.name + "-wal")
    version = _probe_version(database, where, (live, immutable) if wal.exists() else (immutable, live))
    if version is None:
        raise NotAStore(
            f"store {where}: the SQLite database holds no migrator store (no schema_version, waves or devices "
            "table); left untouched (if it holds no table at all, it is the leftover of an interrupted first run: "
            "remove it)"
        )
    if version > SCHEMA_VERSION:
        raise SchemaTooNew(where, version, SCHEMA_VERSION)
    try:
        check = sqlite3.connect(f"file:{quote(str(database))}?{live}", uri=True)
        try:
            check.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        finally:
            check.close()
    except sqlite3.Error:
        return version, immutable
    return version, live


def _probe_version(database: Path, where: str, queries: Sequence[str]) -> int | None:
    """The store's schema version (0: the layout before versions; None: no store), read with the first of
    ``queries`` that opens the file."""
    last: sqlite3.Error | None = None
    for query in queries:
        try:
            probe = sqlite3.connect(f"file:{quote(str(database))}?{query}", uri=True)
        except sqlite3.Error as error:
            last = error
            continue
        try:
            tables = {row[0] for row in probe.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "schema_version" in tables:
                row = probe.execute("SELECT version FROM schema_version WHERE id = 1").fetchone()
                if row is not None:
                    return int(row[0])
            return 0 if {"waves", "devices"} <= tables else None
        except sqlite3.DatabaseError as error:
            last = error
            if translate_error(error, where, "open").__class__ is StoreError:  # corrupt or not a database
                raise NotAStore(
                    f"store {where}: the file is not a usable SQLite database ({error}); left untouched"
                ) from None
        finally:
            probe.close()
    assert last is not None
    raise translate_error(last, where, "open (read-only)")


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


def name_key(name: str) -> str:
    """A device or account name as the store compares it: Windows names are case-insensitive."""
    return name.strip().casefold()


class StoreCore:
    """The engine, the clock, one short transaction per call and the shared lookups; no aggregate of its own."""

    def __init__(
        self, engine: Engine, *, now: Clock, serialise: bool = False, read_only: bool = False, where: str = ""
    ) -> None:
        self._engine = engine
        self._write_engine = engine.execution_options(migrator_begin="IMMEDIATE")
        # Reads see one moment of the store, as SQLite's read transactions do (WAL snapshot): on PostgreSQL, READ
        # COMMITTED takes a new snapshot per statement, so a verification reading the chain and then the head
        # could see an append land in between and call the log cut. REPEATABLE READ never fails a read-only
        # transaction. Writes stay READ COMMITTED: their conditional UPDATEs re-check rows after a concurrent
        # commit instead of failing with a serialisation error.
        self._read_engine = (
            engine.execution_options(isolation_level="REPEATABLE READ")
            if engine.dialect.name == "postgresql"
            else engine
        )
        self._clock = now
        self._dialect = engine.dialect.name
        self._read_only = read_only
        # One shared in-memory SQLite connection cannot interleave transactions from several threads.
        self._serial: AbstractContextManager[Any] = threading.RLock() if serialise else nullcontext()
        self.where = where or engine.url.render_as_string(hide_password=True)

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
        read_only: bool = False,
        create: bool = True,
    ) -> Self:
        """Open (creating or migrating) the store at a directory, a database file or a database URL.

        ``read_only``: for commands that only read (``status``, ``report``, ``audit``). Nothing is created,
        migrated or written, not even a WAL switch: a missing store is :class:`NoStore`, an older one
        :class:`SchemaTooOld`, and the store works from a read-only file or directory (SQLite ``mode=ro``,
        PostgreSQL ``default_transaction_read_only``). Either way, a file that is not a migrator store
        (:class:`NotAStore`) or a newer store (:class:`SchemaTooNew`) is refused before anything is written.
        ``create=False``: a missing store (no SQLite file, a PostgreSQL database or schema without our tables) is
        :class:`NoStore` rather than a new, empty one (``resume``, ``rollback``: a mistyped location must not look
        like an empty migration)."""
        if synchronous not in ("NORMAL", "FULL"):
            raise UnstorableValue(f"open store: synchronous must be NORMAL or FULL, not {synchronous!r}")
        url, created = _locate(url_or_path, create=create and not read_only)
        where = url.render_as_string(hide_password=True)
        try:
            if url.get_backend_name() == "sqlite":
                query = ""
                if url.database not in (None, "", ":memory:") and not created:
                    found, query = inspect_sqlite_file(Path(str(url.database)), where=where)
                    if read_only and found < SCHEMA_VERSION:
                        raise SchemaTooOld(
                            f"store {where} has schema version {found}, older than version {SCHEMA_VERSION}: a "
                            "command that only reads does not migrate it"
                        )
                engine, serialise = _sqlite_engine(
                    url, busy_timeout_ms, synchronous, pool_size, read_only_query=query if read_only else ""
                )
            else:
                connect_args = {"options": _read_only_options(url)} if read_only else {}
                engine = create_engine(
                    url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, connect_args=connect_args
                )
                serialise = False
        except (sa_exc.SQLAlchemyError, sqlite3.Error, ImportError) as error:
            if isinstance(error, ImportError):
                raise StoreUnavailable(f"store {where}: the database driver is not installed ({error})") from None
            raise translate_error(error, where, "open") from None
        store = cls(engine, now=now, serialise=serialise, read_only=read_only, where=where)
        try:
            if read_only:
                store._check_schema()
            else:
                store._prepare_schema(create=create)
        except BaseException:
            engine.dispose()
            raise
        return store

    def _check_schema(self) -> None:
        """Read-only: the store must be one of ours, at this version (nothing is created or migrated)."""
        with self._tx("open the store (read-only)", write=False) as conn:
            found = found_version(conn)
        if found is None:
            if self._dialect == "sqlite":
                raise NotAStore(f"store {self.where}: the database holds no migrator store; left untouched")
            raise NoStore(f"no migrator store in {self.where} (the database has no migrator tables)")
        if found > SCHEMA_VERSION:
            raise SchemaTooNew(self.where, found, SCHEMA_VERSION)
        if found < SCHEMA_VERSION:
            raise SchemaTooOld(
                f"store {self.where} has schema version {found}, older than version {SCHEMA_VERSION}: a command "
                "that only reads does not migrate it"
            )

    def _prepare_schema(self, *, create: bool = True) -> None:
        with self._tx("open the store", write=True) as conn:
            if self._dialect == "postgresql":
                # Two workers starting together must not both create or migrate the schema.
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_SCHEMA_LOCK})
            found = found_version(conn)
            if found is not None and found > SCHEMA_VERSION:
                raise SchemaTooNew(self.where, found, SCHEMA_VERSION)
            if found == SCHEMA_VERSION:
                return
            if found is None and not create:  # PostgreSQL (SQLite's missing file was refused before connecting)
                raise NoStore(f"no migrator store in {self.where} (the database has no migrator tables)")
            if found is None and inspect(conn).get_table_names():
                # Somebody else's database (or a store whose tables were dropped): never add ours beside theirs.
                raise NotAStore(
                    f"store {self.where}: the database holds tables but no migrator store; it was left untouched"
                )
            for migrate in MIGRATIONS[found or 0 :] if found is not None else []:
                migrate(conn)
            metadata.create_all(conn)
            install_audit_triggers(conn)
            conn.execute(schema_version.delete())
            conn.execute(insert(schema_version).values(id=1, version=SCHEMA_VERSION, migrated_at=self._now()))

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Self:
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

    @property
    def read_only(self) -> bool:
        """Opened by a command that only reads: every writing method raises :class:`StoreReadOnly`."""
        return self._read_only

    @contextmanager
    def _tx(self, what: str, *, write: bool) -> Iterator[Connection]:
        if write and self._read_only:
            raise StoreReadOnly(f"store {self.where}: {what}: the store was opened read-only; nothing was written")
        engine = self._write_engine if write else self._read_engine
        with self._serial:
            try:
                with engine.begin() as conn:
                    yield conn
            except StoreError:
                raise
            except (sa_exc.SQLAlchemyError, sqlite3.Error) as error:
                # `from None`: the SQLAlchemy error's text carries the statement's parameters.
                raise translate_error(error, self.where, what) from None

    def _device(self, conn: Connection, name: str, what: str, *, lock: bool = False) -> Row[Any]:
        """The device's row; ``lock``: held until the transaction ends (PostgreSQL ``FOR UPDATE``; SQLite's
        ``BEGIN IMMEDIATE`` already holds the whole database), for a write that checks the row first: a lease
        cannot change hands, nor the state move, between the check and the write."""
        statement = DEVICE_BY_KEY_FOR_UPDATE if lock else DEVICE_BY_KEY
        row = conn.execute(statement, {"name_key": name_key(name)}).first()
        if row is None:
            raise UnknownDevice(f"{what}: no device named {name!r} is enrolled in store {self.where}")
        return row

    def _wave(self, conn: Connection, name: str, what: str) -> Row[Any]:
        row = conn.execute(WAVE_BY_NAME, {"wave_name": name}).first()
        if row is None:
            raise UnknownWave(f"{what}: no wave named {name!r} in store {self.where}")
        return row

    def _user(self, conn: Connection, device_id: int, device: str, name: str, what: str) -> Row[Any]:
        row = conn.execute(USER_BY_KEY, {"device_id": device_id, "name_key": name_key(name)}).first()
        if row is None:
            raise UnknownUser(f"{what}: device {device!r} has no user {name!r}")
        return row

    def _race_guard(self, conn: Connection) -> AbstractContextManager[Any]:
        """A savepoint around an INSERT that another worker may have raced us to (unique key), PostgreSQL only:
        on SQLite, BEGIN IMMEDIATE already made the read-then-insert exclusive."""
        return conn.begin_nested() if self._dialect == "postgresql" else nullcontext()


# ------------------------------------------------------------------------------------------ helpers

# The wave's state comes with every device row: a visit asks it before each step (paused or halted?), and reads it
# in the transaction that checked its lease instead of in one of its own.
DEVICE_SELECT = select(
    devices,
    waves.c.name.label("wave_name"),
    waves.c.change_ticket.label("change_ticket"),
    waves.c.state.label("wave_state"),
).join(waves, waves.c.id == devices.c.wave_id)
# Hot paths use statements built once, with bound parameters: SQLAlchemy then reuses their compiled form and
# cache key instead of rebuilding both on every call (the bulk of the per-transaction CPU time).
DEVICE_BY_KEY = DEVICE_SELECT.where(devices.c.name_key == bindparam("name_key"))
# FOR UPDATE OF devices: the wave's row stays free (SQLite has no FOR UPDATE: SQLAlchemy leaves it out there).
DEVICE_BY_KEY_FOR_UPDATE = DEVICE_BY_KEY.with_for_update(of=devices)
WAVE_BY_NAME = select(waves).where(waves.c.name == bindparam("wave_name"))  # every step asks the wave's state
USER_BY_KEY = select(users).where(
    users.c.device_id == bindparam("device_id"), users.c.name_key == bindparam("name_key")
)


def _read_only_options(url: URL) -> str:
    """libpq ``options`` for a read-only session, keeping the URL's own (``-csearch_path=...``): connect_args
    would otherwise replace them, and a read-only command would look for the store in another schema."""
    given = url.query.get("options", "")
    own = " ".join(given) if isinstance(given, tuple) else given
    return f"{own} -c default_transaction_read_only=on".strip()


def _sqlite_engine(
    url: URL, busy_timeout_ms: int, synchronous: str, pool_size: int, *, read_only_query: str = ""
) -> tuple[Engine, bool]:
    memory = url.database in (None, "", ":memory:")
    if read_only_query and not memory:
        # An SQLite URI filename (https://www.sqlite.org/uri.html): mode=ro opens without write access and never
        # writes, so a read-only file or directory is readable; pysqlite passes it on with uri=true.
        url = URL.create("sqlite", database=f"file:{quote(str(url.database))}?{read_only_query}", query={"uri": "true"})
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
        if not memory and not read_only_query:
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


def new_id(conn: Connection, statement: Insert) -> int:
    key = conn.execute(statement).inserted_primary_key
    assert key is not None  # a single-row INSERT always reports its key
    return int(key[0])


def chunks(items: Sequence[_Item]) -> Iterator[Sequence[_Item]]:
    for start in range(0, len(items), _IN_CHUNK):
        yield items[start : start + _IN_CHUNK]


def expect_state(row: Row[Any], expected_from: str, expected_version: int | None, what: str) -> None:
    if row.state != expected_from or (expected_version is not None and row.version != expected_version):
        raise concurrent_update(what, expected_from, expected_version, row)


def concurrent_update(what: str, expected_from: str, expected_version: int | None, row: Row[Any]) -> ConcurrentUpdate:
    wanted = f"{expected_from!r}" + (f" at version {expected_version}" if expected_version is not None else "")
    return ConcurrentUpdate(
        f"{what}: expected state {wanted}, but the store has {row.state!r} at version {row.version}; nothing changed",
        current_state=row.state,
        current_version=row.version,
    )


def fill_audit(entry: AuditEntry, device: str | None, change_ticket: str | None) -> AuditEntry:
    """The caller's audit entry, its device and change ticket defaulting to the row it concerns."""
    return dataclasses.replace(
        entry,
        device=entry.device if entry.device is not None else device,
        change_ticket=entry.change_ticket if entry.change_ticket is not None else change_ticket,
    )


def device_row(row: Row[Any]) -> DeviceRow:
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
        row.site,
        row.released_at,
        row.due_at,
        row.wave_state,
    )
