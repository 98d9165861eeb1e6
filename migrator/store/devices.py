"""The devices aggregate: a device, its users, their state changes, and what was read from the device.

One aggregate because one invariant spans them: a device's users, facts and policy snapshot belong to the
device row (foreign keys), and every state change of the device *or of one of its users* goes through the same
funnel (:meth:`DevicesMixin.transition` / :meth:`DevicesMixin.user_transition`): the state check, the new
state and version, the transition row and the audit entry commit together or not at all (architecture rule 2).
Facts and policy snapshots are first-wins or append-only records of the device, read back by the machine on
the next visit and by rollback, so they live beside the rows they describe.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Row, bindparam, func, insert, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from migrator.store import schema
from migrator.store.auditing import append_entry
from migrator.store.codec import JsonObject, guard
from migrator.store.core import (
    DEVICE_SELECT,
    StoreCore,
    chunks,
    concurrent_update,
    device_row,
    expect_state,
    fill_audit,
    name_key,
)
from migrator.store.errors import DeviceInOtherWave, UnstorableValue
from migrator.store.leases import fence
from migrator.store.rows import AuditEntry, DeviceRow, FactsSnapshot, PolicyValue, TransitionRow, UserRow
from migrator.store.schema import PATHS, REG_TYPES, devices, facts, policy_snapshots, transitions, users, waves


class DevicesMixin(StoreCore):
    """Enrolment, the state funnel for devices and users, facts and policy snapshots."""

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
            wanted.setdefault(name_key(name), name.strip())
        now = self._now()
        with self._tx(f"enroll devices in wave {wave!r}", write=True) as conn:
            wave_row = self._wave(conn, wave, "enroll")
            keys = list(wanted)
            existing: dict[str, int] = {}
            for chunk in chunks(keys):
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
                # ON CONFLICT DO NOTHING: on PostgreSQL another worker may enrol the same device between our read and
                # our insert; its row then stands and is checked below like one found by the read.
                make_insert = sqlite_insert if self._dialect == "sqlite" else postgresql_insert
                conn.execute(make_insert(schema.devices).on_conflict_do_nothing(index_elements=["name_key"]), fresh)
            rows: list[DeviceRow] = []
            for chunk in chunks(keys):
                rows += [device_row(r) for r in conn.execute(DEVICE_SELECT.where(schema.devices.c.name_key.in_(chunk)))]
            for row in rows:
                if row.wave != wave_row.name:  # enrolled in another wave since our read: nothing of ours is kept
                    raise DeviceInOtherWave(
                        f"enroll in wave {wave!r}: device {row.name!r} is already in wave {row.wave!r}"
                    )
        order = {key: index for index, key in enumerate(keys)}
        return sorted(rows, key=lambda r: order[name_key(r.name)])

    def get_device(self, name: str) -> DeviceRow:
        with self._tx(f"read device {name!r}", write=False) as conn:
            return device_row(self._device(conn, name, "get device"))

    def list_devices(self, wave: str | None = None, states: Iterable[str] | None = None) -> list[DeviceRow]:
        query = DEVICE_SELECT.order_by(devices.c.name_key)
        with self._tx("list devices", write=False) as conn:
            if wave is not None:
                query = query.where(devices.c.wave_id == self._wave(conn, wave, "list devices").id)
            if states is not None:
                query = query.where(devices.c.state.in_(list(states)))
            return [device_row(row) for row in conn.execute(query)]

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
        lease_seconds: float | None = None,
    ) -> DeviceRow:
        """Move a device from ``expected_from`` to ``to`` — the one funnel for device state changes.

        In one transaction: check that the device is still in ``expected_from`` (and at ``expected_version``
        if given, and leased to ``owner`` if given), set the new state, bump the version, set ``last_error``
        (None clears it: it describes the current state) and ``path`` (None keeps it), insert the transition
        row (recording ``user`` when the change concerns one user, and ``wave``, by default the device's), and
        append ``audit`` (its device and change ticket default to this device and its wave's ticket).
        ``context`` (the machine's JSON data for the new state) replaces the stored one; None keeps it.
        ``lease_seconds`` (with ``owner``): the checked lease is renewed for that long in the same transaction.
        Returns the row as written, with its wave's state as this transaction read it.
        Raises :class:`ConcurrentUpdate` and changes nothing if the device moved on."""
        _check_path(path, "transition")
        checked_context = None if context is None else guard(dict(context), where=f"context of device {device!r}")
        now = self._now()
        with self._tx(f"transition device {device!r}", write=True) as conn:
            row = self._device(conn, device, "transition", lock=True)
            expect_state(row, expected_from, expected_version, f"transition {device!r} ({event})")
            expires = fence(conn, row, owner, now, f"transition {device!r}", lease_seconds)
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
                raise concurrent_update(f"transition {device!r} ({event})", expected_from, row.version, fresh)
            _record_transition(conn, row, "device", user, expected_from, to, event, now, wave_id, attempt, audit)
        moved = dataclasses.replace(device_row(row), **values)
        return moved if expires is None else dataclasses.replace(moved, lease_expires_at=expires)

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
            query = select(users).where(users.c.device_id == dev.id, users.c.name_key == name_key(name))
            row = conn.execute(query).first()
            if row is None:
                try:
                    with self._race_guard(conn):
                        conn.execute(
                            insert(users).values(
                                device_id=dev.id,
                                name=name,
                                name_key=name_key(name),
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
            return user_row(row, dev.name)

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
            return user_row(row, dev.name)

    def get_user(self, device: str, name: str) -> UserRow:
        with self._tx(f"read user {name!r} of {device!r}", write=False) as conn:
            dev = self._device(conn, device, "get user")
            return user_row(self._user(conn, dev.id, dev.name, name, "get user"), dev.name)

    def list_users(self, device: str) -> list[UserRow]:
        with self._tx(f"list users of {device!r}", write=False) as conn:
            dev = self._device(conn, device, "list users")
            rows = conn.execute(USERS_OF_DEVICE, {"device_id": dev.id})
            return [user_row(row, dev.name) for row in rows]

    def users_of(self, rows: Iterable[DeviceRow]) -> dict[str, list[UserRow]]:
        """The users of many devices in a few queries (by device id, in chunks), keyed by device name; a device
        without users maps to an empty list. For pages that show many devices at once."""
        names = {row.id: row.name for row in rows}
        found: dict[str, list[UserRow]] = {name: [] for name in names.values()}
        with self._tx("list users of devices", write=False) as conn:
            for chunk in chunks(list(names)):
                query = select(users).where(users.c.device_id.in_(chunk)).order_by(users.c.device_id, users.c.name_key)
                for row in conn.execute(query):
                    found[names[row.device_id]].append(user_row(row, names[row.device_id]))
        return found

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
        lease_seconds: float | None = None,
    ) -> UserRow:
        """Like :meth:`transition`, for one user's sub-state on a device (the users table)."""
        checked_context = None if context is None else guard(dict(context), where=f"context of user {user!r}")
        now = self._now()
        what = f"transition user {user!r} of {device!r} ({event})"
        with self._tx(what, write=True) as conn:
            dev = self._device(conn, device, "user transition", lock=owner is not None)
            fence(conn, dev, owner, now, what, lease_seconds)
            row = self._user(conn, dev.id, dev.name, user, "user transition")
            expect_state(row, expected_from, expected_version, what)
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
                _MOVE_USER,
                {"b_id": row.id, "b_state": expected_from, "b_version": row.version, **values},
            )
            if result.rowcount != 1:
                fresh = self._user(conn, dev.id, dev.name, user, "user transition")
                raise concurrent_update(what, expected_from, row.version, fresh)
            _record_transition(conn, dev, "user", row.name, expected_from, to, event, now, wave_id, attempt, audit)
        return dataclasses.replace(user_row(row, dev.name), **values)

    # ---------------------------------------------------------------------------- facts, snapshots

    def save_facts(self, device: str, facts: Mapping[str, object]) -> FactsSnapshot:
        """Keep a snapshot of what was read from the device (every snapshot is kept, newest wins on read)."""
        checked = guard(dict(facts), where=f"facts of {device!r}")
        now = self._now()
        with self._tx(f"save facts of {device!r}", write=True) as conn:
            dev = self._device(conn, device, "save facts")
            key = conn.execute(
                _INSERT_FACTS, {"device_id": dev.id, "taken_at": now, "data": checked}
            ).inserted_primary_key
            assert key is not None  # a single-row INSERT always reports its key
            fact_id = int(key[0])
        return FactsSnapshot(fact_id, dev.name, now, cast(JsonObject, checked))

    def latest_facts(self, device: str) -> FactsSnapshot | None:
        with self._tx(f"read facts of {device!r}", write=False) as conn:
            dev = self._device(conn, device, "latest facts")
            row = conn.execute(LATEST_FACTS, {"device_id": dev.id}).first()
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
            return policy_values(conn, dev.id)

    def policy_snapshot(self, device: str) -> list[PolicyValue]:
        with self._tx(f"read policy snapshot of {device!r}", write=False) as conn:
            return policy_values(conn, self._device(conn, device, "policy snapshot").id)


# ------------------------------------------------------------------------------------------ helpers

# Statements of the visit's hot paths, built once (see core.DEVICE_BY_KEY).
USERS_OF_DEVICE = select(users).where(users.c.device_id == bindparam("device_id")).order_by(users.c.name_key)
# The SET clause comes from the parameters given (as _MOVE_DEVICE below): the context only when it changes.
_MOVE_USER = update(users).where(
    users.c.id == bindparam("b_id"), users.c.state == bindparam("b_state"), users.c.version == bindparam("b_version")
)
_INSERT_FACTS = insert(schema.facts).values(
    device_id=bindparam("device_id"), taken_at=bindparam("taken_at"), data=bindparam("data")
)
LATEST_FACTS = select(facts).where(facts.c.device_id == bindparam("device_id")).order_by(facts.c.id.desc()).limit(1)
_MOVE_DEVICE = update(devices).where(
    devices.c.id == bindparam("b_id"),
    devices.c.state == bindparam("b_state"),
    devices.c.version == bindparam("b_version"),
)
_INSERT_TRANSITION = insert(transitions)
TRANSITION_SELECT = (
    select(transitions, devices.c.name.label("device_name"), waves.c.name.label("wave_name"))
    .join(devices, devices.c.id == transitions.c.device_id)
    .outerjoin(waves, waves.c.id == transitions.c.wave_id)
)

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


def user_row(row: Row[Any], device: str) -> UserRow:
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


def transition_row(row: Row[Any]) -> TransitionRow:
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


def policy_value(row: Row[Any]) -> PolicyValue:
    return PolicyValue(row.key_path, row.value_name, bool(row.existed), row.type, row.data, row.taken_at)


def policy_values(conn: Connection, device_id: int) -> list[PolicyValue]:
    query = select(policy_snapshots).where(policy_snapshots.c.device_id == device_id).order_by(policy_snapshots.c.id)
    return [policy_value(row) for row in conn.execute(query)]


def _record_transition(
    conn: Connection,
    device: Row[Any],
    subject: str,
    user: str | None,
    source: str,
    dest: str,
    event: str,
    now: datetime,
    wave_id: int,
    attempt: int,
    audit: AuditEntry | None,
) -> None:
    """The transition row and its audit entry, in the caller's transaction (the funnel's, device or user)."""
    conn.execute(
        _INSERT_TRANSITION,
        {
            "device_id": device.id,
            "subject": subject,
            "user_name": user,
            "from_state": source,
            "to_state": dest,
            "event": event,
            "at": now,
            "wave_id": wave_id,
            "attempt": attempt,
        },
    )
    if audit is not None:
        append_entry(conn, fill_audit(audit, device.name, device.change_ticket), now)
