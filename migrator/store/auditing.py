"""The audit aggregate: appending to the hash-chained log, reading it, verifying it.

How an entry's hash is computed and how a chain is checked is :mod:`.audit` (no I/O); this module keeps the
table and the chain's head outside it (``audit_head``, and each wave's row: :func:`record_wave_heads`).
:func:`append_entry` is also what the other aggregates call to audit a change in the same transaction as the
change itself (architecture rule 9); it moves the head in that transaction too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Text, func, insert, inspect, select, text, type_coerce, update

from migrator.store.audit import RecordedHead, UnreadableAuditRow, entry_hash, verify_chain
from migrator.store.codec import JsonValue, decode, guard
from migrator.store.core import StoreCore
from migrator.store.rows import AuditEntry, AuditHead, AuditProblem, AuditRecord, AuditReport
from migrator.store.schema import GENESIS_HASH, audit, audit_head, waves

_AUDIT_HEAD = select(audit.c.id, audit.c.hash).order_by(audit.c.id.desc()).limit(1)
_INSERT_AUDIT = insert(audit)
_MOVE_HEAD = update(audit_head).where(audit_head.c.id == 1)


class AuditMixin(StoreCore):
    """The audit log: append-only, every entry linked to the previous one by its hash."""

    def append_audit(self, entry: AuditEntry) -> AuditRecord:
        now = self._now()
        with self._tx("append to the audit log", write=True) as conn:
            return append_entry(conn, entry, now)

    def audit_entries(self, device: str | None = None, *, action: str | None = None) -> list[AuditRecord]:
        """The log in order; only one device's entries, or only one action's (``wave.approve``), when asked."""
        query = select(audit).order_by(audit.c.id)
        if device is not None:
            query = query.where(func.lower(audit.c.device) == device.strip().lower())
        if action is not None:
            query = query.where(audit.c.action == action)
        with self._tx("read the audit log", write=False) as conn:
            return [_audit_record(row) for row in conn.execute(query)]

    def audit_head(self) -> AuditHead | None:
        """The head the store records (its ``audit_head`` row); None if it has none (an empty log)."""
        with self._tx("read the audit head", write=False) as conn:
            return recorded_head(conn)

    def audit_tail(self) -> AuditHead | None:
        """The last entry of the table as it is now (its id and hash), None for an empty log. Unlike
        :meth:`audit_head` (the head the store recorded when it last appended) this moves when rows are deleted
        behind the store's back, so a watcher (the dashboard) notices a truncated log without verifying it."""
        with self._tx("read the audit log's last entry", write=False) as conn:
            row = conn.execute(_AUDIT_HEAD).first()
            return AuditHead(int(row.id), str(row.hash)) if row is not None else None

    def record_audit_head(self) -> AuditHead:
        """Write the present head into every wave's row (a checkpoint: at the end of a ``run``, a ``resume``)."""
        with self._tx("record the audit head in the waves", write=True) as conn:
            lock_chain(conn)
            return record_wave_heads(conn, None)

    def verify_audit(self, heads: Sequence[RecordedHead] = ()) -> AuditReport:
        """Recompute the whole hash chain and compare it with every head recorded outside it: the store's own,
        each wave's, and ``heads`` (anchors from a ticket, reports, the log); every problem names the entry id
        where it shows. On SQLite the database's own integrity is checked first: a damaged store verifies
        nothing."""
        raw_json = [type_coerce(audit.c.before, Text).label("before"), type_coerce(audit.c.after, Text).label("after")]
        columns = [c for c in audit.c if c.name not in ("before", "after")]
        query = select(*columns, *raw_json).order_by(audit.c.id)
        with self._tx("verify the audit log", write=False) as conn:
            if conn.dialect.name == "sqlite":
                damage = [row[0] for row in conn.exec_driver_sql("PRAGMA integrity_check(20)")]
                if damage != ["ok"]:
                    detail = "; ".join(str(line) for line in damage[:5])
                    problem = AuditProblem(0, "damaged", f"the database file is damaged ({detail})")
                    return AuditReport(ok=False, entries=0, problems=[problem])
            # Where the heads are kept is part of what is checked: a dropped table or column is tampering too,
            # said as such (reading it would fail as an unusable store instead).
            missing = _missing_head_places(conn)
            if missing:
                problem = AuditProblem(0, "head", f"the store's audit heads were removed: no {missing}")
                return AuditReport(ok=False, entries=0, problems=[problem])
            wave_heads = [
                RecordedHead(f"wave {row.name!r}", AuditHead(int(row.audit_entries), str(row.audit_head)))
                for row in conn.execute(select(waves.c.name, waves.c.audit_entries, waves.c.audit_head))
                if row.audit_entries is not None and row.audit_head is not None
            ]
            return verify_chain(
                _audit_rows(conn.execute(query)), recorded_head=recorded_head(conn), heads=[*wave_heads, *heads]
            )


def _missing_head_places(conn: Connection) -> str:
    """What is gone of the places the store keeps the audit head ("" when nothing)."""
    found = inspect(conn)
    if "audit_head" not in found.get_table_names():
        return "audit_head table"
    columns = {column["name"] for column in found.get_columns("waves")}
    absent = [name for name in ("audit_entries", "audit_head") if name not in columns]
    return f"waves.{' or waves.'.join(absent)} column" if absent else ""


def lock_chain(conn: Connection) -> None:
    """PostgreSQL: serialise with every appender (SHARE ROW EXCLUSIVE conflicts with itself, lets readers through).

    Taken first by every transaction that both appends and writes a wave row, so two of them never wait for each
    other's locks. On SQLite, BEGIN IMMEDIATE already made the transaction the only writer."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("LOCK TABLE audit IN SHARE ROW EXCLUSIVE MODE"))


def recorded_head(conn: Connection) -> AuditHead | None:
    row = conn.execute(select(audit_head.c.entries, audit_head.c.hash).where(audit_head.c.id == 1)).first()
    return AuditHead(int(row.entries), str(row.hash)) if row is not None else None


def record_wave_heads(conn: Connection, wave_id: int | None) -> AuditHead:
    """Write the store's present head into one wave's row (or every wave's), in the caller's transaction."""
    head = recorded_head(conn) or AuditHead(0, GENESIS_HASH)
    statement = update(waves).values(audit_entries=head.entries, audit_head=head.hash)
    conn.execute(statement if wave_id is None else statement.where(waves.c.id == wave_id))
    return head


def append_entry(conn: Connection, entry: AuditEntry, now: datetime) -> AuditRecord:
    """Link ``entry`` to the head of the chain, inside the caller's (writing) transaction."""
    # Two appenders must never both link to the same head.
    lock_chain(conn)
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
    # The head outside the table, moved in the same transaction: deleting the tail later leaves it behind.
    if conn.execute(_MOVE_HEAD, {"entries": entry_id, "hash": digest, "at": now}).rowcount != 1:
        conn.execute(insert(audit_head), {"id": 1, "entries": entry_id, "hash": digest, "at": now})
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
