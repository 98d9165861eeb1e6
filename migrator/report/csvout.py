"""CSV reports for other tools: one row per device, or (``--users``) one row per user.

Spreadsheet programs run a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return as a
formula (OWASP "CSV Injection"). Device and user names and error texts are not ours to trust, so such a cell is
written with a leading apostrophe, which spreadsheets show as text; everything else is written as is.
"""

from __future__ import annotations

import csv
from typing import TextIO

from migrator.report.model import Report, iso


def _insecure(report: Report) -> set[tuple[str, str]]:
    """(wave, device) pairs reached with TLS certificate verification off."""
    return {(w.status.wave.name, name.casefold()) for w in report.waves for name in w.status.insecure_devices}


DEVICE_COLUMNS = (
    "wave",
    "device",
    "path",
    "state",
    "users_migrated",
    "users_total",
    "last_error",
    "last_change",
    "insecure_transport",
    "audit_head",
    "graph_requests",
)
USER_COLUMNS = (
    "wave",
    "device",
    "user",
    "sid",
    "state",
    "container_trust",
    "key_id",
    "container_deleted",
    "deleted_at",
    "delete_warning",
    "last_error",
    "last_change",
    "insecure_transport",
    "audit_head",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> str:
    """A CSV cell: None empty, booleans true/false, formula-looking text defused with a leading apostrophe."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def write_devices_csv(report: Report, out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(DEVICE_COLUMNS)
    insecure = _insecure(report)
    anchor = report.audit.head.anchor  # every row carries it: a tool reading one row still sees the head
    for device in report.devices:
        s = device.status
        d = s.device
        row = (
            d.wave,
            d.name,
            d.path,
            d.state,
            s.users_migrated,
            len(s.users),
            d.last_error,
            iso(s.last_change),
            (d.wave, d.name.casefold()) in insecure,
            anchor,
            round(device.graph.total, 2) if device.graph is not None else None,
        )
        writer.writerow([cell(v) for v in row])


def write_users_csv(report: Report, out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(USER_COLUMNS)
    insecure = _insecure(report)
    anchor = report.audit.head.anchor
    for device in report.devices:
        deleted = {c.user.casefold(): c for c in device.deleted}
        d = device.status.device
        for u in device.status.users:
            gone = deleted.get(u.name.casefold())
            row = (
                d.wave,
                d.name,
                u.name,
                u.sid,
                u.state,
                u.container_trust,
                u.key_id,
                gone is not None,
                iso(gone.deleted_at) if gone else None,
                gone.delete_warning if gone else None,
                u.last_error,
                iso(u.updated_at),
                (d.wave, d.name.casefold()) in insecure,
                anchor,
            )
            writer.writerow([cell(v) for v in row])
