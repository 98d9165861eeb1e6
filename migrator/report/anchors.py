"""Audit heads kept outside the store: written to the JSON log, found again in the log, reports and tickets.

The store keeps its audit chain's head in its own tables (:mod:`migrator.store.audit`); someone who can write
the database can change those too. A head written elsewhere is a copy they must also find and forge: the JSON
log (``state/logs/migrator.jsonl``, an ``audit head`` record at the end of every ``run``/``resume`` and at every
``audit anchor``), every report (the anchor line ``audit-head:<entries>:<hash>``), and the change ticket the
operator pasted that line into. ``audit verify`` reads them back with :func:`heads_in_log` and
:func:`heads_in_file`.
"""

from __future__ import annotations

import json
from pathlib import Path

from migrator.logs import LOG_FILE_NAME, get_logger
from migrator.store import AuditHead
from migrator.store.audit import RecordedHead

AUDIT_HEAD_EVENT = "audit head"


def log_audit_head(head: AuditHead, *, why: str) -> None:
    """Write the head to the JSON log (a no-op when logging is not configured)."""
    get_logger("audit").info(AUDIT_HEAD_EVENT, entries=head.entries, hash=head.hash, anchor=head.anchor, why=why)


def heads_in_log(log_dir: Path) -> list[RecordedHead]:
    """Every head the JSON log recorded, oldest first, each named by file and line (none if there is no log)."""
    heads: list[RecordedHead] = []
    for path in sorted(log_dir.glob(f"{LOG_FILE_NAME}*")):
        try:
            with path.open(encoding="utf-8", errors="replace") as lines:  # line by line: a log can be large
                for number, line in enumerate(lines, start=1):
                    head = _logged_head(line)
                    if head is not None:
                        heads.append(RecordedHead(f"the JSON log {path.name}, line {number}", head))
        except OSError:
            continue
    return heads


def _logged_head(line: str) -> AuditHead | None:
    if AUDIT_HEAD_EVENT not in line:
        return None
    try:
        record = json.loads(line)
        if isinstance(record, dict) and record.get("event") == AUDIT_HEAD_EVENT:
            return AuditHead.parse(str(record.get("anchor", "")))
    except ValueError:
        pass  # not one of ours (or damaged): the log is evidence, not input to refuse
    return None


def heads_in_file(path: Path) -> list[RecordedHead]:
    """Every anchor line in a report (HTML, CSV, JSON) or any text (a ticket's export): :class:`OSError` if the
    file cannot be read, :class:`ValueError` if it holds no anchor."""
    text = path.read_text(encoding="utf-8", errors="replace")
    found = list(dict.fromkeys(AuditHead.find_all(text)))
    if not found:
        raise ValueError(f"{path}: no audit anchor (audit-head:<entries>:<hash>) in this file")
    return [RecordedHead(f"{path.name}", head) for head in found]
