"""``migrator audit verify | anchor``: check the store's hash-chained audit log; print its head for the ticket.

Both only read: the store is opened read-only (it may be a read-only file or directory) and never created.

Exit codes (:class:`migrator.errors.ExitCode`): 0 the log is intact (and agrees with every head recorded
outside it); 1 it was tampered with (the entries are named); 2 bad input (an anchor that is not one, no store
at ``--state``) or an unusable store (not a migrator store, a newer or older schema, damaged, locked).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from migrator.cli.storeopt import StoreOption, choose_store, open_command_store
from migrator.errors import ExitCode
from migrator.logs import configure_logging
from migrator.report.anchors import heads_in_file, heads_in_log, log_audit_head
from migrator.store import AuditHead, AuditReport, Store, StoreError
from migrator.store.audit import RecordedHead

console = Console(highlight=False, soft_wrap=True, emoji=False)  # an anchor like audit-head:100:… is no emoji
err_console = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True, pretty_exceptions_show_locals=False)
commands = typer.Typer()
commands.add_typer(audit_app, name="audit")

StateOption = Annotated[
    str,
    typer.Option(
        "--state",
        help="Folder of the logs, and of the store unless --store or $MIGRATOR_STORE: a directory (holding "
        "migrator.db), a database file, or a store URL.",
    ),
]


def _fail(message: str, code: ExitCode) -> NoReturn:
    err_console.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(code)


def _open(store: str | None, state: str) -> Store:
    return open_command_store(store, state, read_only=True)


def _anchors(values: list[str], allow_appended: bool) -> list[RecordedHead]:
    """``--anchor`` values: an anchor line (the head now, or with --allow-appended a head the log went past), or a
    file holding anchor lines (a report, a ticket's export: heads the log must still hold)."""
    heads: list[RecordedHead] = []
    for value in values:
        try:
            heads.append(RecordedHead("the --anchor", AuditHead.parse(value), exact=not allow_appended))
            continue
        except ValueError as error:
            why = str(error)
        path = Path(value).expanduser()
        if not path.is_file():
            _fail(f"--anchor {value!r}: neither an anchor nor a file; {why}", ExitCode.INPUT)
        try:
            heads.extend(heads_in_file(path))
        except (OSError, ValueError) as error:
            _fail(f"--anchor {value!r}: {error}", ExitCode.INPUT)
    return heads


def log_dir_of(store: str | None, state: str) -> Path | None:
    """The JSON log's folder: ``--state``/logs (beside the database file when --state names the file); none when
    --state is itself a URL."""
    if "://" in state:
        return None
    path = Path(state).expanduser()
    if choose_store(store, state).via != "--state":  # the store is elsewhere: --state is only the logs' folder
        return path / "logs"
    return (path if path.is_dir() else path.parent) / "logs"


def _verify(store: Store, log_dir: Path | None, heads: list[RecordedHead]) -> AuditReport:
    logged = heads_in_log(log_dir) if log_dir is not None else []
    try:
        return store.verify_audit([*logged, *heads])
    except StoreError as error:
        _fail(f"{error} ({error.action})", ExitCode.INPUT)


def _show_problems(report: AuditReport, *, out: Console) -> None:
    damaged = any(p.kind == "damaged" for p in report.problems)
    if damaged:
        out.print("[red]audit log NOT verified: the store is damaged[/red]")
    else:
        out.print(f"[red]audit log TAMPERED: {len(report.problems)} problem(s) in {report.entries} entries[/red]")
    for problem in report.problems:
        where = f"entry {problem.entry_id}: " if problem.entry_id else ""
        out.print(f"  {where}{problem.kind}: {escape(problem.detail)}")


def _exit_code(report: AuditReport) -> ExitCode:
    if report.ok:
        return ExitCode.OK
    return ExitCode.INPUT if any(p.kind == "damaged" for p in report.problems) else ExitCode.FAILED


@audit_app.command(
    "verify",
    help="Recompute the audit log's hash chain and compare it with every head recorded outside it (the store's "
    "own, each wave's, the JSON log's, and the anchors given); name every entry that was edited, removed, "
    "reordered or added.\n\n"
    "--anchor takes the line `migrator audit anchor` printed (the log must end exactly there, or with "
    "--allow-appended hold it and go on), or a report or ticket file holding such lines.\n\n"
    'Example: migrator audit verify --state ./state --anchor "$(cat CHG0042-anchor.txt)" --anchor pilot.html\n\n'
    "Exit codes: 0 intact; 1 tampered with; 2 bad input or an unusable store (damaged, not a store, other schema).",
)
def audit_verify(
    state: StateOption = "state",
    store_url: StoreOption = None,
    anchor: Annotated[
        list[str] | None,
        typer.Option("--anchor", help="An anchor line from the change ticket, or a report/ticket file with some."),
    ] = None,
    allow_appended: Annotated[
        bool,
        typer.Option("--allow-appended", help="An --anchor line may be an earlier head: entries after it are fine."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    heads = _anchors(anchor or [], allow_appended)
    with _open(store_url, state) as store:
        report = _verify(store, log_dir_of(store_url, state), heads)
    if as_json:
        problems = [{"entry": p.entry_id, "kind": p.kind, "detail": p.detail} for p in report.problems]
        payload = {
            "ok": report.ok,
            "entries": report.entries,
            "head_hash": report.head_hash,
            "anchor": report.head.anchor,
            "heads_checked": report.heads_checked,
            "problems": problems,
        }
        typer.echo(json.dumps(payload, indent=2))
    elif report.ok:
        console.print(
            f"audit log intact: {report.entries} entries, head {report.head.anchor}; "
            f"{report.heads_checked} head(s) recorded outside the chain agree"
        )
        if not heads:
            console.print(
                "  no --anchor given: someone able to write the store and its log could still have rebuilt both; "
                "check against the anchor in the change ticket"
            )
    else:
        _show_problems(report, out=console)
    raise typer.Exit(_exit_code(report))


@audit_app.command(
    "anchor",
    help="Verify the audit log, then print its head as one line to paste into the change ticket "
    "(`audit verify --anchor LINE` checks the store against it later). The line is also written to the JSON log.\n\n"
    "Example: migrator audit anchor --state ./state\n\n"
    "Exit codes: 0 printed; 1 the log was tampered with (no anchor printed); 2 bad input or an unusable store.",
)
def audit_anchor(state: StateOption = "state", store_url: StoreOption = None) -> None:
    with _open(store_url, state) as store:
        report = _verify(store, log_dir_of(store_url, state), [])
    if not report.ok:
        _show_problems(report, out=err_console)
        err_console.print("no anchor printed: anchoring a tampered log would vouch for it")
        raise typer.Exit(_exit_code(report))
    log_dir = log_dir_of(store_url, state)
    if log_dir is not None:
        try:
            configure_logging(log_dir)
            log_audit_head(report.head, why="audit anchor")
        except OSError as error:  # a read-only store directory: the anchor is still printed
            err_console.print(f"note: the anchor was not written to the log ({escape(str(error))})")
    typer.echo(report.head.anchor)
