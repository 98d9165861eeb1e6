"""The claims aggregate: which devices the wave coordinator released, which are due, and the workers that take them.

Theory of operation
-------------------
* Workers (``migrator worker``, and ``migrator run`` on PostgreSQL: :mod:`migrator.engine.workers`) share the
  waves of one store. The wave coordinator opens a batch with :meth:`ClaimsMixin.release_batch`: its devices get
  ``released_at`` and, unless already settled, ``due_at = now``. A worker visits a device only once it is
  released, due (``due_at <= now``), its wave is ``running``, its lease is free or expired, and its site is one
  the worker serves.
* :meth:`ClaimsMixin.claim` takes such devices in one transaction: ``SELECT ... FOR UPDATE SKIP LOCKED`` on
  PostgreSQL, so two workers claiming at once each skip the rows the other has locked instead of waiting for
  them or taking them too, then a conditional UPDATE that gives the device's lease to the claiming worker
  (columns of :mod:`migrator.store.leases`). On SQLite, ``BEGIN IMMEDIATE`` makes the whole claim exclusive
  (``FOR UPDATE`` is left out there). The lease is the claim: the visit renews it, fences every write with it,
  and :meth:`ClaimsMixin.finish_claim` hands it back together with the device's next due time, in one write;
  a worker that dies leaves an expired lease, and the device is claimed again by another worker.
  :meth:`ClaimsMixin.wake` makes devices due at once (the coordinator, after a batch's group change moved devices
  held before their policy step).
* Workers register with a heartbeat row (:meth:`register_worker`, :meth:`worker_beat`), so ``status`` can say
  which sites have no live worker.
* One **wave coordinator** at a time, per store (:meth:`ClaimsMixin.coordinator_lock`). On PostgreSQL it is a
  session-level advisory lock, ``pg_try_advisory_lock(COORDINATOR_LOCK, hashtext(current_schema()))``, taken on
  a connection of its own that the holder keeps open: a store is a database and a schema, so two stores in two
  schemas of one database have two coordinators. The lock is the server's: it goes with the holder's session,
  so a coordinator that dies (or whose connection breaks) frees it at once and the next worker to try takes
  over. On SQLite (one host) it is an exclusive ``flock`` on ``<database>.coordinator`` beside the database file,
  which the kernel releases when the process ends; an in-memory store has only its own process.
"""

from __future__ import annotations

import fcntl  # the orchestrator runs on POSIX hosts (the leases' liveness reads /proc too)
import os
import socket
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from sqlalchemy import ColumnElement, Connection, Engine, bindparam, insert, select, text, update
from sqlalchemy import exc as sa_exc

from migrator.store.codec import guard
from migrator.store.core import StoreCore, chunks, name_key
from migrator.store.errors import StoreUnavailable, UnstorableValue
from migrator.store.leases import LeaseOwner, lease_values
from migrator.store.rows import Claim, DeviceMark, WorkerRow
from migrator.store.schema import devices, waves, workers

# A worker writes its heartbeat row every BEAT seconds and is called live for three beats after its last.
WORKER_BEAT_SECONDS = 10.0
WORKER_LIVE_SECONDS = 3 * WORKER_BEAT_SECONDS

_MARKS = (
    select(devices.c.name, devices.c.state, devices.c.released_at, devices.c.due_at, devices.c.lease_expires_at)
    .where(devices.c.wave_id == bindparam("wave_id"))
    .order_by(devices.c.name_key)
)

# The advisory lock's first key (any constant works: it only has to be the same in every migrator process); the
# second is the store's schema, hashed by the server.
COORDINATOR_LOCK = 0x6D696763  # "migc"


class CoordinatorLock(Protocol):
    """The wave coordinator's election: :meth:`lead` is true while this process holds the lock (it tries to take
    it when it does not); :meth:`close` gives it up."""

    def lead(self) -> bool: ...

    def close(self) -> None: ...


class AdvisoryLock:
    """PostgreSQL: a session-level advisory lock on a dedicated connection (see the theory of operation)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Connection | None = None
        self._held = False

    def lead(self) -> bool:
        try:
            if self._conn is None:
                self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            if self._held:
                # The lock lives as long as this session: a session that still answers still holds it.
                self._conn.execute(text("SELECT 1"))
                return True
            taken = self._conn.execute(
                text("SELECT pg_try_advisory_lock(:key, hashtext(current_schema()))"), {"key": COORDINATOR_LOCK}
            ).scalar()
            self._held = bool(taken)
            return self._held
        except sa_exc.SQLAlchemyError:
            self._drop()
            return False

    def _drop(self) -> None:
        """Forget the session (and with it the lock, which the server frees when the session ends)."""
        self._held = False
        if self._conn is not None:
            try:
                self._conn.invalidate()  # closes the connection itself: never back to the pool with a lock held
                self._conn.close()
            except sa_exc.SQLAlchemyError:
                pass
            self._conn = None

    def close(self) -> None:
        self._drop()


class FileLock:
    """SQLite: an exclusive ``flock`` on a file beside the database (released by the kernel when the process
    ends, however it ends); ``shared``: a shared one, which others' shared locks allow and an exclusive one
    excludes (both ways)."""

    def __init__(self, path: Path, *, shared: bool = False) -> None:
        self.path = path
        self.mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        self._handle: int | None = None

    def lead(self) -> bool:
        if self._handle is not None:
            return True
        handle = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(handle, self.mode | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            return False
        except OSError as error:
            os.close(handle)
            raise StoreUnavailable(f"coordinator lock {self.path}: {error.strerror}") from None
        self._handle = handle
        return True

    def close(self) -> None:
        if self._handle is not None:
            os.close(self._handle)  # closing the descriptor releases the flock
            self._handle = None


class _OnlyProcess:
    """An in-memory SQLite store: no other process can reach it."""

    def lead(self) -> bool:
        return True

    def close(self) -> None:
        pass


class ClaimsMixin(StoreCore):
    """Releasing batches, claiming due devices, handing them back; the workers' registrations."""

    def coordinator_lock(self) -> CoordinatorLock:
        """The election of this store's wave coordinator (see the theory of operation); not taken yet."""
        if self._dialect == "postgresql":
            return AdvisoryLock(self._engine)
        return self._file_lock(shared=False) or _OnlyProcess()

    def run_lock(self) -> CoordinatorLock:
        """SQLite: what ``run`` and ``resume`` hold while they drive waves in their own process. It is a shared lock
        on the coordinator's file: runs of several waves go on side by side, but a worker (which holds the
        coordinator's lock, exclusive, for its whole life) and a run exclude each other, because both would open
        batches and keep gates for the same waves. On PostgreSQL (``run`` is a worker there) and in memory: always
        granted."""
        return self._file_lock(shared=True) or _OnlyProcess()

    def _file_lock(self, *, shared: bool) -> FileLock | None:
        database = self._engine.url.database
        if self._dialect == "postgresql" or database in (None, "", ":memory:"):
            return None
        path = Path(str(database).removeprefix("file:").split("?", 1)[0])
        return FileLock(path.with_name(path.name + ".coordinator"), shared=shared)

    # ---- sites and batches (the planner and the coordinator) -------------------------------------------

    def set_sites(self, sites: Mapping[str, str | None]) -> None:
        """Record each device's site (from the inventory); devices not enrolled are ignored."""
        by_site: dict[str | None, list[str]] = {}
        for device, site in sites.items():
            by_site.setdefault(site, []).append(name_key(device))
        with self._tx("record the devices' sites", write=True) as conn:
            for site, keys in by_site.items():
                for chunk in chunks(keys):
                    conn.execute(update(devices).where(devices.c.name_key.in_(chunk)).values(site=site))

    def release_batch(self, wave: str, names: Sequence[str], *, settled: Collection[str]) -> int:
        """Open a batch to the workers: its devices not released yet are released now, and those not in a
        ``settled`` state are due now. Idempotent (a second coordinator doing it again changes nothing);
        returns how many devices this call released."""
        now = self._now()
        released = 0
        with self._tx(f"release devices of wave {wave!r}", write=True) as conn:
            wave_id = self._wave(conn, wave, "release devices").id
            for chunk in chunks([name_key(n) for n in names]):
                fresh = (devices.c.wave_id == wave_id) & devices.c.name_key.in_(chunk) & devices.c.released_at.is_(None)
                conn.execute(update(devices).where(fresh, devices.c.state.not_in(list(settled))).values(due_at=now))
                released += conn.execute(update(devices).where(fresh).values(released_at=now)).rowcount
        return released

    def device_marks(self, wave: str) -> list[DeviceMark]:
        """Every device of the wave, by name, with only what the coordinator decides on (:class:`DeviceMark`). It
        reads the whole wave on every tick: at 10,000 devices the full rows cost 126 ms of CPU on PostgreSQL,
        these 41 ms."""
        with self._tx(f"read where the devices of wave {wave!r} stand", write=False) as conn:
            wave_id = self._wave(conn, wave, "read where devices stand").id
            return [DeviceMark(*row) for row in conn.execute(_MARKS, {"wave_id": wave_id})]

    def make_due(self, wave: str, states: Collection[str]) -> int:
        """Make the wave's released devices in ``states`` due now (``resume``: parked devices it continues);
        returns how many."""
        now = self._now()
        with self._tx(f"make devices of wave {wave!r} due", write=True) as conn:
            wave_id = self._wave(conn, wave, "make devices due").id
            return conn.execute(
                update(devices)
                .where(
                    devices.c.wave_id == wave_id,
                    devices.c.released_at.is_not(None),
                    devices.c.state.in_(list(states)),
                )
                .values(due_at=now)
            ).rowcount

    def wake(self, names: Sequence[str]) -> int:
        """Make the named devices due now if they are released and due later (the coordinator, once a batch's
        group change moved the devices held before their policy step: they need not wait for their recheck);
        a device due already, or not due at all (settled), is left as it is. Returns how many."""
        now = self._now()
        woken = 0
        with self._tx("wake devices", write=True) as conn:
            for chunk in chunks([name_key(n) for n in names]):
                woken += conn.execute(
                    update(devices)
                    .where(
                        devices.c.name_key.in_(chunk),
                        devices.c.released_at.is_not(None),
                        devices.c.due_at > now,
                    )
                    .values(due_at=now)
                ).rowcount
        return woken

    # ---- claiming (the workers) ------------------------------------------------------------------------

    def claim(self, owner: str, ttl_seconds: float, limit: int, *, sites: Sequence[str] = ()) -> list[Claim]:
        """Claim up to ``limit`` released, due devices of running waves whose lease is free or expired, for
        ``owner`` (a lease of ``ttl_seconds``); ``sites`` empty: any site. Earliest due first."""
        if ttl_seconds <= 0 or limit < 0:
            raise UnstorableValue("claim devices: ttl_seconds must be positive and limit not negative")
        if limit == 0:
            return []
        now = self._now()
        query = (
            select(devices.c.id, devices.c.name, waves.c.name.label("wave_name"))
            .join(waves, waves.c.id == devices.c.wave_id)
            .where(
                waves.c.state == "running",
                devices.c.released_at.is_not(None),
                devices.c.due_at <= now,
                _lease_free(now),
            )
            .order_by(devices.c.due_at, devices.c.id)
            .limit(limit)
            # Rows another worker is claiming now are skipped, not waited for (PostgreSQL's SKIP LOCKED; SQLite has
            # no row locks: SQLAlchemy leaves the clause out, and BEGIN IMMEDIATE makes the claim exclusive).
            .with_for_update(of=devices, skip_locked=True)
        )
        if sites:
            query = query.where(devices.c.site.in_(list(sites)))
        values = lease_values(owner, now + timedelta(seconds=ttl_seconds))
        with self._tx("claim due devices", write=True) as conn:
            rows = list(conn.execute(query))
            claimed = []
            for row in rows:
                # Conditional still: a lease taken since the SELECT (only possible on a path that does not lock the
                # row, such as Store.acquire by a rollback) is not taken from its holder.
                taken = conn.execute(
                    update(devices).where(devices.c.id == row.id, _lease_free(now)).values(**values)
                ).rowcount
                if taken:
                    claimed.append(Claim(row.name, row.wave_name))
        return claimed

    def finish_claim(self, device: str, owner: str, next_due: datetime | None) -> bool:
        """Hand a claimed device back: its next due time (None: no visit needed) and its lease freed, in one write,
        if ``owner`` still holds the lease; False when it does not (another worker took the device over: its
        schedule is theirs)."""
        with self._tx(f"hand back device {device!r}", write=True) as conn:
            return (
                conn.execute(
                    update(devices)
                    .where(devices.c.name_key == name_key(device), devices.c.lease_owner == owner)
                    .values(
                        due_at=next_due,
                        lease_owner=None,
                        lease_expires_at=None,
                        lease_host=None,
                        lease_pid=None,
                        lease_started=None,
                    )
                ).rowcount
                == 1
            )

    # ---- workers -----------------------------------------------------------------------------------------

    def register_worker(self, owner: str, sites: Sequence[str]) -> None:
        """Record a worker (or the same one starting again) with its sites and a first heartbeat."""
        parts = LeaseOwner.parse(owner)
        host = parts.host if parts else socket.gethostname()[:120]
        pid = parts.pid if parts else os.getpid()
        now = self._now()
        listed = guard(sorted(set(sites)), where="worker sites")
        with self._tx("register a worker", write=True) as conn:
            found = conn.execute(select(workers.c.id).where(workers.c.owner == owner)).first()
            if found is not None:
                conn.execute(
                    update(workers)
                    .where(workers.c.id == found.id)
                    .values(sites=listed, heartbeat_at=now, stopped_at=None)
                )
                return
            with self._race_guard(conn):
                conn.execute(
                    insert(workers).values(
                        owner=owner, host=host, pid=pid, sites=listed, started_at=now, heartbeat_at=now
                    )
                )

    def worker_beat(self, owner: str) -> None:
        """The worker is alive now."""
        with self._tx("worker heartbeat", write=True) as conn:
            conn.execute(update(workers).where(workers.c.owner == owner).values(heartbeat_at=self._now()))

    def worker_stopped(self, owner: str) -> None:
        """The worker ended cleanly (its row stays: status says when the site was last served)."""
        now = self._now()
        with self._tx("worker stopped", write=True) as conn:
            conn.execute(update(workers).where(workers.c.owner == owner).values(heartbeat_at=now, stopped_at=now))

    def workers(self) -> list[WorkerRow]:
        """Every worker that registered, oldest first."""
        with self._tx("list workers", write=False) as conn:
            rows = list(conn.execute(select(workers).order_by(workers.c.id)))
        return [
            WorkerRow(
                row.owner,
                row.host,
                row.pid,
                tuple(str(s) for s in (row.sites or [])),
                row.started_at,
                row.heartbeat_at,
                row.stopped_at,
            )
            for row in rows
        ]


def _lease_free(now: datetime) -> ColumnElement[bool]:
    return devices.c.lease_owner.is_(None) | devices.c.lease_expires_at.is_(None) | (devices.c.lease_expires_at <= now)


def worker_live(row: WorkerRow, now: datetime, ttl_seconds: float = WORKER_LIVE_SECONDS) -> bool:
    """A worker is live while it has not stopped and its last heartbeat is younger than ``ttl_seconds``."""
    return row.stopped_at is None and row.heartbeat_at + timedelta(seconds=ttl_seconds) > now
