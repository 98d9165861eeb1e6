"""``migrator lab ...``: the lab group; ``lab fleet`` here, the commands of a running lab in :mod:`.lab_run`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from migrator.cli import lab_run
from migrator.lab.fleet import MixError, generate_fleet, parse_mix, summarize
from migrator.lab.fleetfile import FleetFileError, file_format, save_fleet

commands = typer.Typer()
lab_app = typer.Typer(
    help="The simulated fleet: generate, run and inspect lab devices.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
commands.add_typer(lab_app, name="lab")
lab_app.add_typer(lab_run.commands)  # up, inspect, user, dc, group, gpo


@lab_app.callback()
def _lab() -> None:
    """The simulated fleet: generate, run and inspect lab devices."""


# ---- lab fleet ------------------------------------------------------------------------------------------------


def _parse_mix_option(text: str) -> str:
    """Validate ``--mix`` at parse time so a bad value is a usage error (exit code 2) naming the bad part."""
    try:
        parse_mix(text)
    except MixError as exc:
        raise typer.BadParameter(str(exc)) from exc
    return text


@lab_app.command(
    "fleet",
    epilog=(
        "Example: migrator lab fleet --devices 1000 --seed 7 --mix key=50,cert=40,cloud=5,none=5 --out state/fleet.json"
    ),
)
def fleet_command(
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Fleet file to write; .json, .yaml or .yml picks the format."),
    ],
    devices: Annotated[int, typer.Option("--devices", "-n", min=1, max=60_000, help="How many devices.")] = 60,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same fleet (byte for byte).")] = 1,
    mix: Annotated[
        str,
        typer.Option(
            "--mix",
            callback=_parse_mix_option,
            help="Percent of devices per Hello trust model: key, cert, cloud (already migrated), none; sum 100.",
        ),
    ] = "key=50,cert=40,cloud=5,none=5",
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON instead of a table.")] = False,
) -> None:
    """Generate a seeded, realistic fleet of simulated Windows devices and write it to a fleet file."""
    err = Console(stderr=True, soft_wrap=True)
    try:
        file_format(out)
        # Fail before generating (60,000 devices take a while) when the file could not be written anyway.
        if not out.parent.is_dir() or not os.access(out.parent, os.W_OK):
            raise FleetFileError(out, f"cannot write the fleet file: {out.parent} is not a writable directory")
    except FleetFileError as exc:
        err.print(Text.assemble(("error:", "red"), " ", str(exc)), highlight=False)
        raise typer.Exit(2) from None
    fleet = generate_fleet(devices, seed, parse_mix(mix))
    try:
        save_fleet(fleet, out)
    except FleetFileError as exc:
        err.print(Text.assemble(("error:", "red"), " ", str(exc)), highlight=False)
        raise typer.Exit(2) from None
    summary = summarize(fleet)
    if as_json:
        typer.echo(json.dumps({"file": str(out), "seed": seed, "mix": mix, **summary.as_dict()}, indent=2))
        return
    console = Console()
    table = Table(title=f"Fleet {out} (seed {seed}, mix {mix})", show_lines=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("[bold]devices[/bold]", str(summary.devices))
    table.add_row("users", str(summary.users))
    table.add_section()
    for join, count in summary.join_types.items():
        table.add_row(f"join: {join}", str(count))
    table.add_section()
    for trust, count in summary.trust.items():
        table.add_row(f"trust (policy): {trust}", str(count))
    table.add_section()
    table.add_row("[bold]eligible-looking[/bold]", str(summary.eligible_looking))
    table.add_section()
    for name, count in summary.special.items():
        table.add_row(name, str(count))
    console.print(table)
