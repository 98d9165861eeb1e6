"""The journal aggregate: intent before a side effect, outcome after it (architecture rule 3), and step attempts.

:meth:`JournalMixin.intent` commits before it returns, so a side effect is only ever started with its intent on
disk; :meth:`JournalMixin.outcome` records what happened; an intent without outcome after a restart is *in
doubt* (:meth:`JournalMixin.in_doubt`) and is settled with :meth:`JournalMixin.resolve` after re-reading the
device, never by repeating the effect. Every call is idempotent under its key, so a caller that crashed between
the commit and the return can simply call again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Row, bindparam, func, insert, select, update
from sqlalchemy import exc as sa_exc

from migrator.store.codec import canonical, guard
from migrator.store.core import StoreCore
from migrator.store.errors import JournalConflict, UnknownJournalEntry, UnknownStep, UnstorableValue
from migrator.store.leases import fence
from migrator.store.rows import JournalEntry, JournalStatus, StepRow, StepStatus
from migrator.store.schema import devices, journal, steps


class JournalMixin(StoreCore):
    """Step attempts and the intent/outcome journal of a device's side effects."""

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
            return step_row(row, dev.name)

    def finish_step(self, step_id: int, status: StepStatus, *, error: str | None = None) -> StepRow:
        """Record how an attempt ended; repeating the same finish is a no-op, a different one a conflict."""
        if status == "running":
            raise UnstorableValue("finish step: status must be succeeded, failed or skipped")
        now = self._now()
        with self._tx(f"finish step {step_id}", write=True) as conn:
            row = conn.execute(STEP_SELECT.where(steps.c.id == step_id)).first()
            if row is None:
                raise UnknownStep(f"finish step: no step attempt with id {step_id}")
            if row.status != "running":
                if row.status == status and row.error == error:
                    return step_row(row, row.device_name)
                raise JournalConflict(f"finish step: attempt {step_id} already finished as {row.status!r}")
            conn.execute(
                update(steps)
                .where(steps.c.id == step_id, steps.c.status == "running")
                .values(status=status, finished_at=now, error=error)
            )
            return dataclasses.replace(step_row(row, row.device_name), status=status, finished_at=now, error=error)

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
        lease_seconds: float | None = None,
    ) -> JournalEntry:
        """Journal the intent of a side effect; it is committed when this returns.

        ``key`` is the idempotency key: the same key again returns the entry already journaled (if it names the
        same device, user, step and attempt; else :class:`JournalConflict`). ``owner`` fences the intent (see
        :mod:`.leases`); ``lease_seconds`` with it renews the checked lease in the same transaction."""
        checked = guard(dict(payload), where=f"journal intent of {step!r} on {device!r}")
        now = self._now()
        with self._tx(f"journal intent of {step!r} on {device!r}", write=True) as conn:
            dev = self._device(conn, device, "intent", lock=owner is not None)
            fence(conn, dev, owner, now, f"intent of {step!r}", lease_seconds)
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
            entry = journal_row(row)
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
            entry = journal_row(row)
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
        query = JOURNAL_SELECT.where(journal.c.status == "intent").order_by(journal.c.id)
        with self._tx("list in-doubt journal entries", write=False) as conn:
            if device is not None:
                query = query.where(journal.c.device_id == self._device(conn, device, "in doubt").id)
            return [journal_row(row) for row in conn.execute(query)]

    def journal_entries(self, device: str) -> list[JournalEntry]:
        with self._tx(f"read journal of {device!r}", write=False) as conn:
            dev = self._device(conn, device, "journal")
            return [journal_row(row) for row in conn.execute(JOURNAL_OF_DEVICE, {"device_id": dev.id})]


JOURNAL_SELECT = select(journal, devices.c.name.label("device_name")).join(devices, devices.c.id == journal.c.device_id)
STEP_SELECT = select(steps, devices.c.name.label("device_name")).join(devices, devices.c.id == steps.c.device_id)
_JOURNAL_BY_KEY = JOURNAL_SELECT.where(journal.c.idempotency_key == bindparam("key"))
JOURNAL_OF_DEVICE = JOURNAL_SELECT.where(journal.c.device_id == bindparam("device_id")).order_by(journal.c.id)
_JOURNAL_BY_ID = JOURNAL_SELECT.where(journal.c.id == bindparam("entry_id"))
_INSERT_JOURNAL = insert(journal)
_SETTLE_JOURNAL = update(journal).where(journal.c.id == bindparam("b_id"), journal.c.status == "intent")


def step_row(row: Row[Any], device: str) -> StepRow:
    return StepRow(
        row.id, device, row.user_name, row.step, row.attempt, row.status, row.started_at, row.finished_at, row.error
    )


def journal_row(row: Row[Any]) -> JournalEntry:
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
