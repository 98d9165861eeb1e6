"""The audit aggregate: appending to the hash-chained log, reading it, verifying it.

How an entry's hash is computed and how a chain is checked is :mod:`.audit` (no I/O); this module keeps the
table. :func:`append_entry` is also what the other aggregates call to audit a change in the same transaction
as the change itself (architecture rule 9).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Text, func, insert, select, text, type_coerce

from migrator.store.audit import UnreadableAuditRow, entry_hash, verify_chain
from migrator.store.codec import JsonValue, decode, guard
from migrator.store.core import StoreCore
from migrator.store.rows import AuditEntry, AuditRecord, AuditReport
from migrator.store.schema import GENESIS_HASH, audit

_AUDIT_HEAD = select(audit.c.id, audit.c.hash).order_by(audit.c.id.desc()).limit(1)
_INSERT_AUDIT = insert(audit)


class AuditMixin(StoreCore):
    """The audit log: append-only, every entry linked to the previous one by its hash."""

    def append_audit(self, entry: AuditEntry) -> AuditRecord:
        now = self._now()
        with self._tx("append to the audit log", write=True) as conn:
            return append_entry(conn, entry, now)

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


def append_entry(conn: Connection, entry: AuditEntry, now: datetime) -> AuditRecord:
    """Link ``entry`` to the head of the chain, inside the caller's (writing) transaction."""
    if conn.dialect.name == "postgresql":
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
