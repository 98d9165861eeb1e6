"""``migrator status`` and ``migrator report``: read a store and show where every device is.

Thin: open the store (never creating one: a mistyped ``--state`` must not look like an empty migration), call
:mod:`migrator.report`, render. Both commands only read.

Exit codes (:class:`migrator.errors.ExitCode`): 0 shown or written; 2 bad input (no store at ``--state``,
unknown ``--wave``, options that do not go together, an ``--out`` that cannot be written) or an unusable store
(not a migrator store, a newer or older schema, damaged, locked, an unreachable server). The store is opened
read-only: a read-only file or directory is fine, and nothing is ever written to it.
"""

from __future__ import annotations

import json
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.live import Live

from migrator.cli.storeopt import StoreOption, open_command_store
from migrator.errors import ExitCode
from migrator.report import Format, collect_report, collect_status, render_report, status_renderable, write_report
from migrator.report.model import StatusView, iso
from migrator.store import Store, StoreBusy, StoreError, StoreUnavailable, UnknownWave

EXIT_OK, EXIT_STORE, EXIT_INPUT = ExitCode.OK, ExitCode.INPUT, ExitCode.INPUT

commands = typer.Typer()

StateOption = Annotated[
    str,
    typer.Option(
        "--state",
        help="The store unless --store or $MIGRATOR_STORE: a directory (holding migrator.db), a database file, or "
        "a store URL.",
        show_default=True,
    ),
]
WaveOption = Annotated[str | None, typer.Option("--wave", help="Only this wave (default: every wave).")]


# Help texts: Typer keeps the line breaks of a help text, so each paragraph is one line here.
STATUS_HELP = "\n\n".join(
    [
        "Where every device is: counts per state and per wave, and the devices that need attention: failed (with "
        "the reason), stalled, unreachable, and waiting (with since when); then the devices a worker holds a lease "
        "on: by which host and process, until when, and whether that process still runs.",
        "Example: migrator status --state ./state --wave pilot --watch",
        'JSON (--json): {"waves": [{"name", "change_ticket", "state", "playbook", "playbook_hash", "devices", '
        '"counts", ...}], "devices": [{"name", "state", "path", "users": [{"name", "state"}], "last_error", '
        '"wave", "since", "attention", "reason", "unreachable_since", "traceback"}], "counts": {state: n}}',
        "Exit codes: 0 shown; 2 bad input (no store at --state, unknown --wave, --watch with --json) or an "
        "unusable store (not a migrator store, damaged, locked, unreachable, another schema version).",
    ]
)
REPORT_HELP = "\n\n".join(
    [
        "A report of a wave (or of every wave) for change managers (HTML) and other tools (CSV, JSON).",
        "HTML: one self-contained file, no server, no script: wave summary (change ticket, playbook and hash, "
        "times, approvals), counts per state, failures, rollback, Hello keys left in Entra ID by deleted "
        "containers (with a warning where passkeys went with them), per-device timelines, the audit chain's "
        "verification and head hash, and the state diagram.",
        "CSV: one row per device, or per user with --users. JSON: everything the HTML shows.",
        "Example: migrator report --state ./state --wave pilot --format html --out pilot.html",
        "Exit codes: 0 written; 2 bad input (no store at --state, unknown --wave, --users without --format csv, "
        "an --out that cannot be written) or an unusable store (not a migrator store, damaged, locked, "
        "unreachable, another schema version).",
    ]
)


class ReportFormat(StrEnum):
    html = "html"
    csv = "csv"
    json = "json"

    @property
    def kind(self) -> Format:
        return _FORMATS[self]


_FORMATS: dict[ReportFormat, Format] = {ReportFormat.html: "html", ReportFormat.csv: "csv", ReportFormat.json: "json"}


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=code)


def open_existing_store(store: str | None, state: str) -> Store:
    """Open the store read-only; exit 2 (naming what was looked for, and why) if there is no usable one.

    :meth:`Store.open` creates a missing store, which is right for ``run`` and wrong here: ``status`` on a
    mistyped directory would show an empty, healthy migration. Read-only, it also works on a store the user may
    only read, and never migrates or changes one."""
    return open_command_store(store, state, read_only=True)


@commands.command("status", help=STATUS_HELP)
def status_command(
    state: StateOption = "./state",
    store_url: StoreOption = None,
    wave: WaveOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help='Print {"waves": [...], "devices": [...], "counts": {...}} on stdout.')
    ] = False,
    watch: Annotated[bool, typer.Option("--watch", help="Refresh the table live until Ctrl-C.")] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=0.0, help="Seconds between refreshes with --watch.")
    ] = 2.0,
    refreshes: Annotated[
        int, typer.Option("--refreshes", min=0, help="With --watch: stop after this many frames (0: until Ctrl-C).")
    ] = 0,
) -> None:
    """Show counts per state and per wave, and the devices that need attention (help: STATUS_HELP)."""
    if watch and as_json:
        _fail("--watch and --json do not go together (run --json repeatedly to poll)", EXIT_INPUT)
    store = open_existing_store(store_url, state)
    try:
        view = _status(store, wave)
        if as_json:
            typer.echo(json.dumps(view.as_json(), indent=2, ensure_ascii=False))
            return
        console = Console()
        if not watch:
            console.print(status_renderable(view))
            return
        _watch(console, store, wave, view, interval, refreshes)
    finally:
        store.close()


def _status(store: Store, wave: str | None) -> StatusView:
    try:
        return collect_status(store, wave)
    except UnknownWave as error:
        _fail(str(error), EXIT_INPUT)
    except StoreError as error:
        _fail(str(error), EXIT_STORE)


def _watch(console: Console, store: Store, wave: str | None, view: StatusView, interval: float, frames: int) -> None:
    """Redraw every ``interval`` seconds until Ctrl-C (or ``frames`` frames); a store busy with a running wave
    keeps the last frame on screen with a note instead of ending the watch."""
    shown = 1
    with Live(status_renderable(view), console=console, auto_refresh=False, transient=False) as live:
        try:
            while not frames or shown < frames:
                time.sleep(interval)
                note = ""
                try:
                    view = collect_status(store, wave)
                except (StoreBusy, StoreUnavailable) as error:
                    note = f"could not refresh ({error}); showing the state of {iso(view.taken_at)}"
                live.update(status_renderable(view, note=note), refresh=True)
                shown += 1
        except KeyboardInterrupt:
            pass  # Ctrl-C is how a watch ends: leave the last frame on screen and exit 0


@commands.command("report", help=REPORT_HELP)
def report_command(
    state: StateOption = "./state",
    store_url: StoreOption = None,
    fmt: Annotated[ReportFormat, typer.Option("--format", help="html, csv or json.")] = ReportFormat.html,
    wave: WaveOption = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write to this file (default: stdout).")] = None,
    users: Annotated[
        bool, typer.Option("--users", help="With --format csv: one row per user, not per device.")
    ] = False,
) -> None:
    """Write an HTML, CSV or JSON report of a wave or of every wave (help: REPORT_HELP)."""
    if users and fmt is not ReportFormat.csv:
        _fail("--users is for --format csv (the HTML and JSON reports list users per device)", EXIT_INPUT)
    store = open_existing_store(store_url, state)
    try:
        if out is None:
            _report_to_stdout(store, fmt, wave, users)
            return
        try:
            report = write_report(store, fmt.kind, out, wave=wave, users=users)
        except UnknownWave as error:
            _fail(str(error), EXIT_INPUT)
        except StoreError as error:
            _fail(str(error), EXIT_STORE)
        except OSError as error:
            _fail(f"cannot write {str(out)!r}: {error.strerror or type(error).__name__}", EXIT_INPUT)
        typer.echo(f"wrote {fmt.value} report of {len(report.devices)} devices to {out}", err=True)
    finally:
        store.close()


def _report_to_stdout(store: Store, fmt: ReportFormat, wave: str | None, users: bool) -> None:
    try:
        report = collect_report(store, wave)
    except UnknownWave as error:
        _fail(str(error), EXIT_INPUT)
    except StoreError as error:
        _fail(str(error), EXIT_STORE)
    render_report(report, fmt.kind, sys.stdout, users=users)
