"""The audit log's hash chain: how an entry's hash is computed and how a whole log is checked.

Each entry's hash is SHA-256 over the canonical JSON (see :func:`migrator.store.codec.canonical`) of its fields
*including its id and the previous entry's hash*; the first entry links to 64 zeros. So

* editing a row changes its content but not its stored hash → **hash mismatch** at that row;
* deleting a row leaves the next row pointing at a hash nobody has → **broken link** at the next row, and the
  dense ids (the store assigns previous + 1) show a gap there → **id sequence**;
* inserting a row needs a free id (→ id sequence) or a renumbering of the rows after it, whose hashes cover
  their ids (→ hash mismatch) and whose links no longer match (→ broken link).

A chain alone cannot show that its *tail* is gone (or all of it), nor that it was rebuilt with fresh hashes
by someone who can write the database. So its head (:class:`AuditHead`: entry count and last hash) is also kept
outside the audit table and checked against the chain (:func:`check_heads`):

* the store's ``audit_head`` row, moved by every append: it must be exactly where the chain ends;
* every wave row, at the wave's creation and last state change; each report; the JSON log at the end of every
  ``run``/``resume`` and at every ``audit anchor``: each was the head *then*, so the chain must still hold that
  entry with that hash (an earlier head of a chain that grew since);
* the anchor an operator pasted into the change ticket (``audit verify --anchor``): the chain must end exactly
  there (or, with ``allow_appended``, hold it and go on).

What remains: someone who can write the store *and* every place its heads were copied to (the log, the
reports, the ticket) can rebuild all of it consistently. The anchor in the ticket, a system they cannot
write, is the defence against that.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from migrator.store.codec import JsonValue, canonical
from migrator.store.errors import UnstorableValue
from migrator.store.rows import AuditHead, AuditProblem, AuditRecord, AuditReport
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


@dataclass(frozen=True)
class RecordedHead:
    """A head recorded somewhere (``where``: "wave w1", "report r.html", "the log, line 12", "--anchor").

    ``exact``: the chain must end there (the store's own head; an anchor without allow_appended); otherwise the
    chain must hold that entry with that hash, and may have grown since."""

    where: str
    head: AuditHead
    exact: bool = False


def verify_chain(
    records: Iterable[AuditRecord | UnreadableAuditRow],
    *,
    recorded_head: AuditHead | None = None,
    heads: Sequence[RecordedHead] = (),
) -> AuditReport:
    """Check records given in id order, and every recorded head against them; every problem names the entry
    where the chain stops holding (or, for a head, the entry it names)."""
    problems: list[AuditProblem] = []
    previous_id = 0
    previous_hash = GENESIS_HASH
    count = 0
    wanted = {h.head.entries for h in heads if h.head.entries > 0}
    seen: dict[int, str] = {}
    for record in records:
        count += 1
        if record.id in wanted:
            seen[record.id] = record.hash
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
    end = AuditHead(count, previous_hash)
    problems.extend(check_heads(end, previous_id, seen, recorded_head, heads))
    return AuditReport(
        ok=not problems,
        entries=count,
        problems=problems,
        head_hash=previous_hash,
        heads_checked=len(heads) + (recorded_head is not None),
        recorded_head=recorded_head,
    )


def check_heads(
    end: AuditHead,
    last_id: int,
    seen: dict[int, str],
    recorded_head: AuditHead | None,
    heads: Sequence[RecordedHead],
) -> list[AuditProblem]:
    """Problems of the heads recorded outside the chain: the store's own and those of waves, reports, the log
    and anchors. ``seen`` holds the stored hash of every entry a head names, as the chain was read."""
    problems: list[AuditProblem] = []
    if recorded_head is None:
        if end.entries:
            problems.append(
                AuditProblem(
                    last_id,
                    "head",
                    f"the store records no head, but its log holds {end.entries} entries (the head row was removed)",
                )
            )
    elif recorded_head != end:
        problems.append(
            AuditProblem(recorded_head.entries, "head", _disagreement("the store's head", recorded_head, end))
        )
    for recorded in heads:
        kind: Literal["wave head", "anchor"] = "wave head" if recorded.where.startswith("wave ") else "anchor"
        head = recorded.head
        if recorded.exact and head != end:
            problems.append(AuditProblem(head.entries, kind, _disagreement(recorded.where, head, end)))
        elif head.entries == 0:
            continue
        elif head.entries > end.entries or head.entries not in seen:
            problems.append(
                AuditProblem(
                    head.entries,
                    kind,
                    f"{recorded.where} records {head.entries} entries (head {head.hash[:12]}…),"
                    f" but the audit log holds {end.entries}: entries were deleted",
                )
            )
        elif seen[head.entries] != head.hash:
            problems.append(
                AuditProblem(
                    head.entries,
                    kind,
                    f"{recorded.where} records entry {head.entries} with hash {head.hash[:12]}…, but the audit log's "
                    f"entry {head.entries} has hash {seen[head.entries][:12]}…: the audit log was rewritten",
                )
            )
    return problems


def _disagreement(where: str, recorded: AuditHead, end: AuditHead) -> str:
    said = f"{where} says the audit log ends at entry {recorded.entries} (hash {recorded.hash[:12]}…)"
    found = f"it ends at entry {end.entries} (hash {end.hash[:12]}…)"
    if recorded.entries > end.entries:
        why = f"{recorded.entries - end.entries} entries were deleted"
    elif recorded.entries < end.entries:
        why = f"{end.entries - recorded.entries} entries were added after it"
    else:
        why = "the audit log was rewritten"
    return f"{said}, but {found}: {why}"
