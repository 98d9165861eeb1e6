"""The leases aggregate: which worker may act on a device now.

A lease is two columns of the device's row, ``lease_owner`` and ``lease_expires_at``. Taking one is a single
conditional UPDATE, so two workers racing for a device cannot both win; every fenced write (a transition or an
intent with ``owner=``) checks in its own transaction that the owner still holds an unexpired lease
(:func:`check_lease`), so a worker whose lease ran out cannot act any more.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, update

from migrator.store.core import StoreCore, name_key
from migrator.store.errors import LeaseNotHeld, UnstorableValue
from migrator.store.schema import devices


class LeasesMixin(StoreCore):
    """Acquire, renew and release a device's lease."""

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
                    devices.c.name_key == name_key(device),
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
                    devices.c.name_key == name_key(device),
                    devices.c.lease_owner == owner,
                    devices.c.lease_expires_at > now,
                )
                .values(lease_expires_at=expires)
            )
            if result.rowcount != 1:
                check_lease(self._device(conn, device, "renew lease"), owner, now, "renew lease")
        return expires

    def release(self, device: str, owner: str) -> bool:
        """Give the lease up if ``owner`` holds it; returns whether it did."""
        with self._tx(f"release lease of {device!r}", write=True) as conn:
            result = conn.execute(
                update(devices)
                .where(devices.c.name_key == name_key(device), devices.c.lease_owner == owner)
                .values(lease_owner=None, lease_expires_at=None)
            )
            if result.rowcount == 1:
                return True
            self._device(conn, device, "release lease")
            return False


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
