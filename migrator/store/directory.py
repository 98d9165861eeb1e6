"""The directory-change aggregate: a wave's changes to group membership (AD or Entra ID), journalled and audited.

A device's steps are journalled per device (:mod:`.journal`); a policy channel that moves a whole batch's
computer accounts between GPO filter groups (``ad-group``), or its Entra device objects between the groups Intune's
profiles are assigned to (``intune-group``: ``domain`` is then ``entra:<tenant id>``), changes the control plane
once per target and batch, so its journal is the wave's: :meth:`DirectoryChangesMixin.directory_intent` commits
the intent (with the memberships read before, which rollback restores) before any change is sent, and
:meth:`~DirectoryChangesMixin.directory_outcome` / :meth:`~DirectoryChangesMixin.directory_resolve` record what the
DC or Graph answered, or what re-reading the groups showed after a crash. Both append to the hash-chained audit
log in the same transaction (architecture rule 9: control-plane changes are side effects like any device step).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy import exc as sa_exc

from migrator.store.auditing import append_entry, lock_chain
from migrator.store.codec import JsonObject, JsonValue, canonical, guard
from migrator.store.core import StoreCore, fill_audit
from migrator.store.errors import JournalConflict, UnknownJournalEntry
from migrator.store.rows import AuditEntry, JournalStatus
from migrator.store.schema import directory_changes, waves


@dataclasses.dataclass(frozen=True)
class DirectoryChangeRow:
    """One journalled change of a wave to one domain's directory."""

    id: int
    wave: str
    batch: int
    domain: str
    purpose: str  # migrate | rollback
    attempt: int
    key: str
    intent: JsonObject
    intent_at: datetime
    outcome: JsonValue
    outcome_at: datetime | None
    status: JournalStatus

    @property
    def in_doubt(self) -> bool:
        """The intent was committed but no outcome: the DC may or may not have applied the modify."""
        return self.status == "intent"


class DirectoryChangesMixin(StoreCore):
    """Journal of the directory changes a wave makes (see the module docstring)."""

    def directory_intent(
        self,
        wave: str,
        *,
        batch: int,
        domain: str,
        purpose: str,
        attempt: int,
        key: str,
        intent: Mapping[str, object],
        audit: AuditEntry | None = None,
    ) -> DirectoryChangeRow:
        """Journal the intent of one domain's change for a batch; committed when this returns. The same ``key``
        again returns the entry already journalled (a caller that crashed between commit and return)."""
        checked = guard(dict(intent), where=f"directory intent {key!r}")
        now = self._now()
        with self._tx(f"journal directory intent {key!r}", write=True) as conn:
            lock_chain(conn)
            wave_row = self._wave(conn, wave, "directory intent")
            row = conn.execute(_SELECT.where(directory_changes.c.idempotency_key == key)).first()
            if row is None:
                try:
                    with self._race_guard(conn):
                        conn.execute(
                            insert(directory_changes).values(
                                wave_id=wave_row.id,
                                batch=batch,
                                domain=domain,
                                purpose=purpose,
                                attempt=attempt,
                                idempotency_key=key,
                                intent=checked,
                                intent_at=now,
                                status="intent",
                            )
                        )
                except sa_exc.IntegrityError:
                    pass  # journalled by another worker since our read
                else:
                    if audit is not None:
                        append_entry(conn, fill_audit(audit, None, wave_row.change_ticket), now)
                row = conn.execute(_SELECT.where(directory_changes.c.idempotency_key == key)).one()
            entry = directory_change_row(row)
            if (entry.wave, entry.batch, entry.domain.casefold(), entry.purpose) != (
                wave,
                batch,
                domain.casefold(),
                purpose,
            ):
                raise JournalConflict(f"directory intent: key {key!r} already journals another change")
            return entry

    def directory_outcome(
        self, entry_id: int, result: object, ok: bool, *, audit: AuditEntry | None = None
    ) -> DirectoryChangeRow:
        """Record what the DC answered (done or failed); the same outcome again is a no-op."""
        return self._settle_change(entry_id, result, "done" if ok else "failed", audit)

    def directory_resolve(
        self, entry_id: int, result: object, *, audit: AuditEntry | None = None
    ) -> DirectoryChangeRow:
        """Settle an in-doubt change with what re-reading the groups showed (status resolved)."""
        return self._settle_change(entry_id, result, "resolved", audit)

    def _settle_change(
        self, entry_id: int, result: object, status: JournalStatus, audit: AuditEntry | None
    ) -> DirectoryChangeRow:
        checked = guard(result, where=f"directory change {entry_id} {status}")
        now = self._now()
        with self._tx(f"settle directory change {entry_id}", write=True) as conn:
            lock_chain(conn)
            row = conn.execute(_SELECT.where(directory_changes.c.id == entry_id)).first()
            if row is None:
                raise UnknownJournalEntry(f"directory change: no entry with id {entry_id}")
            entry = directory_change_row(row)
            if entry.status != "intent":
                if entry.status == status and canonical(entry.outcome) == canonical(checked):
                    return entry
                raise JournalConflict(f"directory change {entry_id} is already {entry.status!r}, not in doubt")
            conn.execute(
                update(directory_changes)
                .where(directory_changes.c.id == entry_id, directory_changes.c.status == "intent")
                .values(status=status, outcome=checked, outcome_at=now)
            )
            if audit is not None:
                ticket = conn.execute(select(waves.c.change_ticket).where(waves.c.name == entry.wave)).scalar()
                append_entry(conn, fill_audit(audit, None, ticket), now)
            return dataclasses.replace(entry, status=status, outcome=checked, outcome_at=now)

    def directory_changes(self, wave: str) -> list[DirectoryChangeRow]:
        """Every directory change of ``wave``, oldest first."""
        with self._tx(f"read directory changes of wave {wave!r}", write=False) as conn:
            wave_id = self._wave(conn, wave, "directory changes").id
            query = _SELECT.where(directory_changes.c.wave_id == wave_id).order_by(directory_changes.c.id)
            return [directory_change_row(row) for row in conn.execute(query)]


_SELECT = select(directory_changes, waves.c.name.label("wave_name")).join(
    waves, waves.c.id == directory_changes.c.wave_id
)


def directory_change_row(row: Row[Any]) -> DirectoryChangeRow:
    return DirectoryChangeRow(
        row.id,
        row.wave_name,
        row.batch,
        row.domain,
        row.purpose,
        row.attempt,
        row.idempotency_key,
        row.intent,
        row.intent_at,
        row.outcome,
        row.outcome_at,
        row.status,
    )
