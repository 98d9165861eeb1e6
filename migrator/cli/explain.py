"""``migrator explain ...``: read a saved native-tool output and say what it means for this migration.

Thin: read the file, call :mod:`migrator.parse` and :mod:`migrator.parse.explain`, render. Exit codes: 0 when
the file was read (even when nothing in it could be recognised: the verdict is then ``unknown``), 2 when the
file is missing or unreadable.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from migrator.parse import (
    decode_output,
    parse_dsregcmd,
    parse_klist,
    parse_klist_cloud_debug,
    parse_nltest_dsgetdc,
)
from migrator.parse.explain import Explanation, explain_dsregcmd, explain_klist, explain_nltest

explain_app = typer.Typer(
    help="Explain a saved dsregcmd / klist / nltest output: the facts, a verdict and the reasons.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
commands = typer.Typer()
commands.add_typer(explain_app, name="explain")

FileArgument = Annotated[
    Path, typer.Argument(help="A saved output (UTF-8 or UTF-16, as PowerShell redirection writes it).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the facts, verdict and reasons as JSON.")]

_VERDICT_STYLE = {
    "cloud-trust-active": "bold green",
    "cloud-tgt-present": "bold green",
    "dc-reachable": "bold green",
    "key-or-cert-needs-migration": "bold yellow",
    "no-hello-container": "bold cyan",
    "cloud-tgt-absent": "bold yellow",
    "not-eligible": "bold red",
    "klist-failed": "bold red",
    "dc-unreachable": "bold red",
    "unknown": "bold magenta",
}


def _read(path: Path) -> str:
    """The decoded text of ``path``; a clear error naming the file and exit code 2 when it can't be read."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        typer.echo(f"error: cannot read {str(path)!r}: {reason}", err=True)
        raise typer.Exit(code=2) from None
    return decode_output(data)


def _emit(title: str, path: Path, explanation: Explanation, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(explanation.as_json(), indent=2, ensure_ascii=False))
        return
    console = Console()
    table = Table(title=title, caption=escape(str(path)), show_header=True, header_style="bold")
    table.add_column("fact", style="dim", no_wrap=True)
    table.add_column("value", overflow="fold")
    for name, value in explanation.rows:
        table.add_row(escape(name), escape(value))
    console.print(table)
    style = _VERDICT_STYLE.get(explanation.verdict, "bold")
    console.print(f"verdict: [{style}]{escape(explanation.verdict)}[/]")
    for reason in explanation.reasons:
        console.print(f"  • {escape(reason)}")


@explain_app.command("dsregcmd")
def explain_dsregcmd_command(file: FileArgument, json_output: JsonOption = False) -> None:
    """Explain a saved `dsregcmd /status`: join type, Hello container, cloud TGT, and what to do.

    Verdicts: key-or-cert-needs-migration, cloud-trust-active, no-hello-container, not-eligible, unknown.

    Example: migrator explain dsregcmd saved-dsregcmd.txt --json
    """
    explanation = explain_dsregcmd(parse_dsregcmd(_read(file)))
    _emit("dsregcmd /status", file, explanation, json_output)


@explain_app.command("klist")
def explain_klist_command(file: FileArgument, json_output: JsonOption = False) -> None:
    """Explain a saved `klist` or `klist cloud_debug`: is the cloud TGT there, or why klist failed.

    Verdicts: cloud-tgt-present, cloud-tgt-absent, klist-failed, unknown.

    Example: migrator explain klist saved-klist.txt
    """
    text = _read(file)
    explanation = explain_klist(parse_klist(text), parse_klist_cloud_debug(text))
    _emit("klist", file, explanation, json_output)


@explain_app.command("nltest")
def explain_nltest_command(file: FileArgument, json_output: JsonOption = False) -> None:
    """Explain a saved `nltest /dsgetdc:<domain>`: does the device see a domain controller, and why not.

    Verdicts: dc-reachable, dc-unreachable, unknown.

    Example: migrator explain nltest saved-nltest.txt --json
    """
    explanation = explain_nltest(parse_nltest_dsgetdc(_read(file)))
    _emit("nltest /dsgetdc", file, explanation, json_output)
