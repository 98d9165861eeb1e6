"""The ``migrator`` command line (Typer + Rich). Thin: parse arguments, call services, render.

Each command group lives in its own module and registers itself on :data:`app` or :data:`lab_app`
when imported at the bottom of this file.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="migrator",
    help="Move Windows Hello for Business devices from key or certificate trust to cloud Kerberos trust.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold credentials: never print them
)
lab_app = typer.Typer(
    help="The simulated fleet: generate, run and inspect lab devices.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(lab_app, name="lab")


def main() -> None:
    app()


# Command modules: importing one registers its commands (one line per module, keep sorted).
from migrator.cli import demo as _demo  # noqa: E402,F401
from migrator.cli import explain as _explain  # noqa: E402,F401
from migrator.cli import lab_commands as _lab_commands  # noqa: E402,F401
from migrator.cli import lab_run as _lab_run  # noqa: E402,F401
from migrator.cli import machine_commands as _machine_commands  # noqa: E402,F401
from migrator.cli import probe as _probe  # noqa: E402,F401
from migrator.cli import report_commands as _report_commands  # noqa: E402,F401
from migrator.cli import wave_commands as _wave_commands  # noqa: E402,F401
