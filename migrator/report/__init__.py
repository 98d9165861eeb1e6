"""Status and reports: what a wave did, for the people who run it and the people who approve it.

:func:`collect_status` (cheap, for ``migrator status`` and ``--watch``) and :func:`collect_report` (everything)
read the store; :func:`render_html`, :func:`write_devices_csv`, :func:`write_users_csv` and
:meth:`Report.as_json` render a report; :func:`write_report` does both for one format, to a file or a stream.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Literal, TextIO

from migrator.report.console import status_renderable
from migrator.report.csvout import write_devices_csv, write_users_csv
from migrator.report.diagram import Diagram, Edge, build_diagram, svg
from migrator.report.html import render_html
from migrator.report.model import (
    DeletedContainer,
    DeviceReport,
    DeviceStatus,
    EntraFinding,
    Failure,
    Report,
    RollbackView,
    StatusView,
    WaveStatus,
    WaveSummary,
    collect_report,
    collect_status,
)
from migrator.store import Store, utc_now

Format = Literal["html", "csv", "json"]


def render_report(report: Report, fmt: Format, out: TextIO, *, users: bool = False) -> None:
    """Write ``report`` to ``out`` as HTML, CSV (devices, or users with ``users``) or JSON."""
    if fmt == "html":
        out.write(render_html(report))
    elif fmt == "json":
        json.dump(report.as_json(), out, indent=2, ensure_ascii=False)
        out.write("\n")
    elif users:
        write_users_csv(report, out)
    else:
        write_devices_csv(report, out)


def write_report(
    store: Store,
    fmt: Format,
    path: Path,
    *,
    wave: str | None = None,
    users: bool = False,
    now: Callable[[], datetime] = utc_now,
) -> Report:
    """Collect and write a report file atomically (a reader never sees half a report); returns what it wrote."""
    report = collect_report(store, wave, now=now)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        newline = "" if fmt == "csv" else None  # the csv module writes its own line endings
        with os.fdopen(handle, "w", encoding="utf-8", newline=newline) as out:
            render_report(report, fmt, out, users=users)
        os.chmod(temporary, 0o644)  # a report is meant to be shared (mkstemp makes it owner-only)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return report


__all__ = [
    "DeletedContainer",
    "DeviceReport",
    "DeviceStatus",
    "Diagram",
    "Edge",
    "EntraFinding",
    "Failure",
    "Format",
    "Report",
    "RollbackView",
    "StatusView",
    "WaveStatus",
    "WaveSummary",
    "build_diagram",
    "collect_report",
    "collect_status",
    "render_html",
    "render_report",
    "status_renderable",
    "svg",
    "write_devices_csv",
    "write_report",
    "write_users_csv",
]
