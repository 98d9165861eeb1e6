"""``migrator audit verify``: recompute the store's hash-chained audit log.

Exit codes: 0 the chain is intact, 1 tampered (the entries are named), 2 the store cannot be opened.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from migrator.errors import MigratorError
from migrator.store import Store

console = Console()
err_console = Console(stderr=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True, pretty_exceptions_show_locals=False)
commands = typer.Typer()
commands.add_typer(audit_app, name="audit")


@audit_app.command(
    "verify",
    help="Recompute the audit log's hash chain; name every entry that was edited, removed or reordered.\n\n"
    "Example: migrator audit verify --state ./state",
)
def audit_verify(
    state: Annotated[Path, typer.Option("--state", help="the store directory")] = Path("state"),
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    if not (state / "migrator.db").exists() and "://" not in str(state):
        err_console.print(f"[red]{escape(str(state))}: no store here (migrator.db not found)[/red]")
        raise typer.Exit(2)
    try:
        with Store.open(state) as store:
            report = store.verify_audit()
    except MigratorError as err:
        err_console.print(f"[red]{escape(str(err))}[/red]")
        raise typer.Exit(2) from None
    if as_json:
        problems = [{"entry": p.entry_id, "kind": p.kind, "detail": p.detail} for p in report.problems]
        payload = {"ok": report.ok, "entries": report.entries, "head_hash": report.head_hash, "problems": problems}
        typer.echo(json.dumps(payload, indent=2))
    elif report.ok:
        console.print(f"audit log intact: {report.entries} entries, head {report.head_hash}")
    else:
        console.print(f"[red]audit log TAMPERED: {len(report.problems)} problem(s) in {report.entries} entries[/red]")
        for problem in report.problems:
            console.print(f"  entry {problem.entry_id}: {problem.kind}: {escape(problem.detail)}")
    raise typer.Exit(0 if report.ok else 1)
