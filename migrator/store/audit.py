"""The audit log's hash chain: how an entry's hash is computed and how a whole log is checked.

Each entry's hash is SHA-256 over the canonical JSON (see :func:`migrator.store.codec.canonical`) of its fields
*including its id and the previous entry's hash*; the first entry links to 64 zeros. So

* editing a row changes its content but not its stored hash → **hash mismatch** at that row;
* deleting a row leaves the next row pointing at a hash nobody has → **broken link** at the next row, and the
  dense ids (the store assigns previous + 1) show a gap there → **id sequence**;
* inserting a row needs a free id (→ id sequence) or a renumbering of the rows after it, whose hashes cover
  their ids (→ hash mismatch) and whose links no longer match (→ broken link).

Someone who can write the database can still rebuild the whole chain; publishing :attr:`AuditReport.head_hash`
elsewhere (a report, the change ticket) anchors it against that.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from migrator.store.codec import JsonValue, canonical
from migrator.store.errors import UnstorableValue
from migrator.store.rows import AuditProblem, AuditRecord, AuditReport
from migrator.store.schema import GENESIS_HASH


def entry_hash(
    *,
    entry_id: int,
    at: datetime,
    actor: str,
    action: str,
    device: str | None,
    change_ticket: str | None,
    before: JsonValue,
    after: JsonValue,
    prev_hash: str,
) -> str:
    body = {
        "id": entry_id,
        "at": at.isoformat(timespec="microseconds"),
        "actor": actor,
        "action": action,
        "device": device,
        "change_ticket": change_ticket,
        "before": before,
        "after": after,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical(body, where="audit").encode("utf-8")).hexdigest()


def record_hash(record: AuditRecord) -> str:
    return entry_hash(
        entry_id=record.id,
        at=record.at,
        actor=record.actor,
        action=record.action,
        device=record.device,
        change_ticket=record.change_ticket,
        before=record.before,
        after=record.after,
        prev_hash=record.prev_hash,
    )


@dataclass(frozen=True)
class UnreadableAuditRow:
    """A row whose JSON columns no longer parse: someone edited it by hand."""

    id: int
    prev_hash: str
    hash: str
    reason: str


def verify_chain(records: Iterable[AuditRecord | UnreadableAuditRow]) -> AuditReport:
    """Check records given in id order; every problem names the entry where the chain stops holding."""
    problems: list[AuditProblem] = []
    previous_id = 0
    previous_hash = GENESIS_HASH
    count = 0
    for record in records:
        count += 1
        if record.id != previous_id + 1:
            what = "missing" if record.id > previous_id + 1 else "repeated or out of order"
            problems.append(
                AuditProblem(
                    record.id,
                    "id sequence",
                    f"entry {record.id} follows entry {previous_id or 'none (start)'}: ids "
                    f"{what} (a row was deleted or inserted)",
                )
            )
        if record.prev_hash != previous_hash:
            problems.append(
                AuditProblem(
                    record.id,
                    "broken link",
                    f"entry {record.id} links to {record.prev_hash[:12]}…, but the entry before it "
                    f"({previous_id or 'genesis'}) has hash {previous_hash[:12]}… (a row was deleted or inserted)",
                )
            )
        if isinstance(record, UnreadableAuditRow):
            problems.append(
                AuditProblem(record.id, "hash mismatch", f"entry {record.id} {record.reason} (the row was edited)")
            )
            previous_id, previous_hash = record.id, record.hash
            continue
        try:
            actual = record_hash(record)
        except UnstorableValue as error:
            actual = f"unhashable ({error})"
        if actual != record.hash:
            problems.append(
                AuditProblem(
                    record.id,
                    "hash mismatch",
                    f"entry {record.id} content hashes to {actual[:12]}…, but its stored hash is "
                    f"{record.hash[:12]}… (the row was edited)",
                )
            )
        previous_id = record.id
        previous_hash = record.hash
    return AuditReport(ok=not problems, entries=count, problems=problems, head_hash=previous_hash)
