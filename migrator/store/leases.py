"""The leases aggregate: which worker may act on a device now, and whether that worker is still alive.

Theory of operation
-------------------
* A lease is columns of the device's row: ``lease_owner`` (the owner's text, compared for equality) and
  ``lease_expires_at``, plus, since schema 3, the owner's parts ``lease_host``, ``lease_pid`` and
  ``lease_started`` when the owner is a :class:`LeaseOwner`. Taking one is a conditional UPDATE, so two
  workers racing for a device cannot both win. Every fenced write (a transition or an intent with ``owner=``)
  checks in its own transaction, with the device row locked until it commits, that the owner still holds an
  unexpired lease (:func:`check_lease`), so a worker whose lease ran out cannot act any more, and a lease
  cannot pass to another worker while its holder's write is in flight. Given ``lease_seconds`` too, such a write
  also extends the lease it checked (:func:`fence`), in the same transaction: a visit renews its lease with
  the writes it makes anyway instead of in a transaction of its own before every step.
* Leases are short and renewed by a heartbeat while the worker lives (:mod:`migrator.engine.leases`), so the
  lease of a worker that died anywhere is free within one TTL.
* A worker on the *same host* need not wait that long: :meth:`LeasesMixin.acquire` takes over at once a lease
  whose owner process is gone — no process with that pid, a zombie, or a process with that pid but another
  start time (the pid was reused). The lease of another host is only taken once it expired: its processes
  cannot be seen from here, and a live worker must never be robbed.
* A process is identified by its start, not by its pid alone. On Linux that is the start time in clock ticks
  since boot (``/proc/<pid>/stat``, field 22, proc(5)), qualified by the boot id
  (``/proc/sys/kernel/random/boot_id``) and the pid namespace (``/proc/self/ns/pid``). Ticks since boot are
  kept as they are rather than converted to a wall-clock time with the boot time (``btime``): that conversion
  moves when the clock is stepped (NTP, a VM resumed), and a start that seems to move would make a live
  owner look dead. The boot id says that a lease from before a reboot is dead; the namespace says that a pid
  of another container sharing the host name is not one we can check. Elsewhere (no ``/proc``) a POSIX host
  only checks that the pid exists, and Windows cannot check at all: its leases expire.
* A plain-string owner (``"crash-harness-worker"``) stays what it was: not checkable, free at expiry.
"""

from __future__ import annotations

import functools
import os
import re
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, bindparam, update

from migrator.store.core import DEVICE_SELECT, StoreCore, device_row, name_key
from migrator.store.errors import LeaseNotHeld, UnstorableValue
from migrator.store.rows import DeviceRow, LeaseRow, Liveness
from migrator.store.schema import devices

_HOST_LIMIT = 120  # lease_host's width; the owner's text (at most 200 characters) ends with the host
_STARTED = r"[0-9a-f]{8,32}\.\d{1,20}\.\d{1,20}"
_OWNER_TEXT = re.compile(
    rf"(?P<pid>[1-9]\d{{0,9}}):(?P<started>-|{_STARTED}):(?P<nonce>[0-9a-f]{{8,32}})@(?P<host>\S{{1,{_HOST_LIMIT}}})"
)


@dataclass(frozen=True)
class LeaseOwner:
    """Who holds a lease, in a form another worker can check: host, pid, process start, and a random nonce.

    ``started`` is ``<boot id>.<pid namespace>.<start ticks>`` (see the module's theory of operation), or None
    where the platform cannot say. The nonce makes two owners of one process differ (two visits of one worker
    never share a lease). ``str(owner)`` is the text the store's ``owner: str`` parameters take; the store
    reads the parts back from it (:meth:`parse`)."""

    host: str
    pid: int
    started: str | None
    nonce: str  # random; not a secret (named so that no secret filter mistakes it for one)

    def __post_init__(self) -> None:
        if _OWNER_TEXT.fullmatch(str(self)) is None:
            raise UnstorableValue(f"lease owner {self!r}: host, pid, start or nonce is not well formed")

    @classmethod
    def current(cls) -> LeaseOwner:
        """This process, with a fresh nonce."""
        here = _this_machine()
        pid = os.getpid()
        stat = _stat(pid)
        started = None
        if here.boot is not None and here.pid_namespace is not None and stat is not None:
            started = f"{here.boot}.{here.pid_namespace}.{stat[1]}"
        return cls(here.host, pid, started, secrets.token_hex(4))

    @classmethod
    def parse(cls, text: str) -> LeaseOwner | None:
        """The owner a text names; None for a plain string (an owner that cannot be checked)."""
        match = _OWNER_TEXT.fullmatch(text)
        if match is None:
            return None
        started = None if match["started"] == "-" else match["started"]
        return cls(match["host"], int(match["pid"]), started, match["nonce"])

    def __str__(self) -> str:
        return f"{self.pid}:{self.started or '-'}:{self.nonce}@{self.host}"

    def liveness(self) -> Liveness:
        return liveness(self.host, self.pid, self.started)


# Renewed at every step of a visit: built once (see core.DEVICE_BY_KEY).
_RENEW = (
    update(devices)
    .where(
        devices.c.name_key == bindparam("b_name_key"),
        devices.c.lease_owner == bindparam("b_owner"),
        devices.c.lease_expires_at > bindparam("b_now"),
    )
    .values(lease_expires_at=bindparam("b_expires"))
)
# A fenced write's renewal: the row was read (locked) and its lease checked in the same transaction.
_EXTEND = update(devices).where(devices.c.id == bindparam("b_id")).values(lease_expires_at=bindparam("b_expires"))


class LeasesMixin(StoreCore):
    """Acquire, renew and release a device's lease; list the leases held."""

    def acquire(self, device: str, owner: str, ttl_seconds: float) -> bool:
        """Take the device's lease if it is free, expired, already ``owner``'s (then it is extended), or held by a
        process of this host that is gone (see the theory of operation).

        Conditional UPDATEs only, so two workers racing for a device (or for a dead worker's lease) cannot both
        win. ``owner`` is a :class:`LeaseOwner`'s text (checkable) or any other string (not checkable)."""
        if ttl_seconds <= 0:
            raise UnstorableValue(f"acquire lease of {device!r}: ttl_seconds must be positive")
        now = self._now()
        values = lease_values(owner, now + timedelta(seconds=ttl_seconds))
        with self._tx(f"acquire lease of {device!r}", write=True) as conn:
            result = conn.execute(
                update(devices)
                .where(
                    devices.c.name_key == name_key(device),
                    (devices.c.lease_owner.is_(None))
                    | (devices.c.lease_expires_at.is_(None))
                    | (devices.c.lease_expires_at <= now)
                    | (devices.c.lease_owner == owner),
                )
                .values(**values)
            )
            if result.rowcount == 1:
                return True
            row = self._device(conn, device, "acquire lease")  # raises UnknownDevice if that is why
            if _liveness(row) != "dead":
                return False
            # Still conditional on the dead owner: another worker of this host may be taking it over too.
            result = conn.execute(
                update(devices).where(devices.c.id == row.id, devices.c.lease_owner == row.lease_owner).values(**values)
            )
            return result.rowcount == 1

    def renew(self, device: str, owner: str, ttl_seconds: float) -> datetime:
        """Extend ``owner``'s unexpired lease; returns the new expiry. An expired lease must be acquired again."""
        return self._renew(device, owner, ttl_seconds, read=False)[0]

    def renew_and_read(self, device: str, owner: str, ttl_seconds: float) -> DeviceRow:
        """Like :meth:`renew`, and the device's row (with its wave's state) as of the renewal, in the same
        transaction: what a visit checks before a step that no fenced write has checked for it."""
        row = self._renew(device, owner, ttl_seconds, read=True)[1]
        assert row is not None
        return row

    def _renew(self, device: str, owner: str, ttl_seconds: float, *, read: bool) -> tuple[datetime, DeviceRow | None]:
        if ttl_seconds <= 0:
            raise UnstorableValue(f"renew lease of {device!r}: ttl_seconds must be positive")
        now = self._now()
        expires = now + timedelta(seconds=ttl_seconds)
        with self._tx(f"renew lease of {device!r}", write=True) as conn:
            result = conn.execute(
                _RENEW, {"b_name_key": name_key(device), "b_owner": owner, "b_now": now, "b_expires": expires}
            )
            # Renewed: nothing more to read unless asked. Not renewed: the row says why (unknown, lapsed, taken).
            if not read and result.rowcount == 1:
                return expires, None
            row = self._device(conn, device, "renew lease")
            if result.rowcount != 1:
                check_lease(row, owner, now, "renew lease")
            return expires, device_row(row)

    def release(self, device: str, owner: str) -> bool:
        """Give the lease up if ``owner`` holds it; returns whether it did."""
        with self._tx(f"release lease of {device!r}", write=True) as conn:
            result = conn.execute(
                update(devices)
                .where(devices.c.name_key == name_key(device), devices.c.lease_owner == owner)
                .values(lease_owner=None, lease_expires_at=None, lease_host=None, lease_pid=None, lease_started=None)
            )
            if result.rowcount == 1:
                return True
            self._device(conn, device, "release lease")
            return False

    def leases(self, wave: str | None = None) -> list[LeaseRow]:
        """The unexpired leases (of one wave, or of all), by device name, each with what can be said of its holder's
        process from here (:attr:`LeaseRow.liveness`)."""
        now = self._now()
        query = DEVICE_SELECT.where(devices.c.lease_owner.is_not(None), devices.c.lease_expires_at > now).order_by(
            devices.c.name_key
        )
        with self._tx("list leases", write=False) as conn:
            if wave is not None:
                query = query.where(devices.c.wave_id == self._wave(conn, wave, "list leases").id)
            rows = list(conn.execute(query))
        return [
            LeaseRow(
                row.name,
                row.wave_name,
                row.lease_owner,
                row.lease_host,
                row.lease_pid,
                row.lease_expires_at,
                _liveness(row),
            )
            for row in rows
        ]


def lease_values(owner: str, expires: datetime) -> dict[str, Any]:
    """The device row's lease columns for ``owner`` until ``expires`` (its parts when it is a LeaseOwner's text)."""
    parts = LeaseOwner.parse(owner)
    return {
        "lease_owner": owner,
        "lease_expires_at": expires,
        "lease_host": parts.host if parts else None,
        "lease_pid": parts.pid if parts else None,
        "lease_started": parts.started if parts else None,
    }


def check_lease(row: Row[Any], owner: str | None, now: datetime, what: str) -> None:
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


def fence(
    conn: Connection, row: Row[Any], owner: str | None, now: datetime, what: str, lease_seconds: float | None = None
) -> datetime | None:
    """A fenced write's check, in its transaction, on the device ``row`` it read locked: :func:`check_lease`, then,
    with ``lease_seconds`` too, the lease extended to ``now + lease_seconds`` (the renewal the write stands for).
    Returns the new expiry (None: not renewed)."""
    check_lease(row, owner, now, what)
    if owner is None or lease_seconds is None:
        return None
    if lease_seconds <= 0:
        raise UnstorableValue(f"{what}: lease_seconds must be positive")
    expires = now + timedelta(seconds=lease_seconds)
    conn.execute(_EXTEND, {"b_id": row.id, "b_expires": expires})
    return expires


# ------------------------------------------------------------------------------------- liveness


@dataclass(frozen=True)
class _Machine:
    """Where this process runs: the host name, and what qualifies a pid here (None where unknown)."""

    host: str
    boot: str | None
    pid_namespace: str | None


@functools.cache
def _this_machine() -> _Machine:
    host = socket.gethostname().strip()[:_HOST_LIMIT] or "localhost"
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
            boot: str | None = handle.read().strip().replace("-", "")[:12]
        namespace: str | None = str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        boot = namespace = None
    return _Machine(host, boot, namespace)


def liveness(host: str, pid: int, started: str | None) -> Liveness:
    """What can be said here of the process ``pid`` of ``host`` that started at ``started`` (a
    :attr:`LeaseOwner.started`)."""
    here = _this_machine()
    if host != here.host:
        return "other_host"
    if started is None or here.boot is None:
        return _pid_liveness(pid)
    boot, namespace, ticks = started.split(".")
    if boot != here.boot:
        return "dead"  # this host rebooted since: every process of that boot is gone
    if namespace != here.pid_namespace:
        return "other_host"  # a container sharing our host name: its pids are not ours to look up
    stat = _stat(pid)
    if stat is None:
        # Not in our /proc: gone, unless /proc hides other users' processes (mount option hidepid).
        return _pid_liveness(pid)
    state, current = stat
    if state in ("Z", "X"):
        return "dead"  # a zombie has finished running: it only waits for its parent to read its exit status
    return "alive" if current == ticks else "dead"  # another start: the pid was reused


def _liveness(row: Row[Any]) -> Liveness:
    if row.lease_host is None or row.lease_pid is None:
        return "unchecked"
    return liveness(row.lease_host, row.lease_pid, row.lease_started)


def _stat(pid: int) -> tuple[str, str] | None:
    """Field 3 (state) and field 22 (starttime, clock ticks since boot) of /proc/<pid>/stat (proc(5)); None if
    there is no such file."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            stat = handle.read()
    except OSError:
        return None
    # Field 2 (the command name, in parentheses) may itself hold spaces and parentheses: split after the last ")".
    fields = stat[stat.rfind(")") + 2 :].split()
    return (fields[0], fields[19]) if len(fields) >= 20 else None


def _pid_liveness(pid: int) -> Liveness:
    """Whether a pid exists, where nothing better can be said (no start time to compare: a reused pid looks alive)."""
    if os.name != "posix":
        return "unchecked"  # os.kill(pid, 0) would send CTRL_C_EVENT on Windows, not probe
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "dead"
    except PermissionError:
        return "alive"  # another user's process
    return "alive"
