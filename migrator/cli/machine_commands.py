"""``migrator diagram`` and ``migrator rollback``.

Exit codes: ``diagram`` 0, 2 bad input. ``rollback`` 0 every selected device rolled back (or already was), 1 some
could not be (listed with the reason), 2 bad input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from migrator.cli.storeopt import StoreOption, open_command_store
from migrator.engine.channels import DomainChange, policy_channel
from migrator.engine.device import rollback_device
from migrator.errors import InputError, MigratorError
from migrator.inventory import load_inventory
from migrator.logs import configure_logging
from migrator.machine.diagram import render
from migrator.playbook import load_playbook
from migrator.remote.credentials import load_credentials
from migrator.remote.tls import announce, insecure_devices
from migrator.yamlsource import InputFileError

console = Console()
err_console = Console(stderr=True)
commands = typer.Typer()


@commands.command(
    "diagram",
    help="Print the state diagram, generated from the transition table.\n\n"
    "Example: migrator diagram --format dot --playbook cert-trust-to-cloud-kerberos | dot -Tsvg > machine.svg",
)
def diagram(
    fmt: Annotated[str, typer.Option("--format", help="mermaid or dot")] = "mermaid",
    playbook: Annotated[
        str | None, typer.Option("--playbook", help="only the rows this playbook's steps call for")
    ] = None,
) -> None:
    if fmt not in ("mermaid", "dot"):
        err_console.print("[red]--format must be mermaid or dot[/red]")
        raise typer.Exit(2)
    try:
        chosen = load_playbook(playbook) if playbook else None
    except (InputError, InputFileError) as err:
        err_console.print(f"[red]{escape(str(err))}[/red]")
        raise typer.Exit(2) from None
    typer.echo(render(fmt, chosen), nl=False)  # type: ignore[arg-type]


@commands.command(
    "rollback",
    help="Restore the policy values recorded before migrator changed them, per device, through the journal (and, "
    "for an ad-group wave, each computer's GPO filter group memberships first).\n\n"
    "Example: migrator rollback --state ./state --wave pilot --inventory inventory.yaml --secrets lab-secrets.env",
)
def rollback(
    state: Annotated[
        Path, typer.Option("--state", help="folder of the logs, and of the store unless --store or $MIGRATOR_STORE")
    ] = Path("state"),
    store_url: StoreOption = None,
    wave: Annotated[str | None, typer.Option("--wave", help="every device of this wave")] = None,
    device: Annotated[str | None, typer.Option("--device", help="one device")] = None,
    inventory: Annotated[Path | None, typer.Option("--inventory", help="where the devices are")] = None,
    secrets: Annotated[Path | None, typer.Option("--secrets", help="KEY=value file with the credentials")] = None,
    playbook: Annotated[str | None, typer.Option("--playbook", help="the playbook the wave ran")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    if (wave is None) == (device is None):
        err_console.print("[red]give exactly one of --wave or --device[/red]")
        raise typer.Exit(2)
    if inventory is None:
        err_console.print("[red]--inventory is needed to reach the devices[/red]")
        raise typer.Exit(2)
    store = open_command_store(store_url, state, create=False)  # a rollback of nothing is a mistyped location
    try:
        items = load_inventory(inventory)
        credentials = load_credentials(secrets)
        rows = [store.get_device(device)] if device else store.list_devices(wave)
        chosen = load_playbook(playbook or (store.get_wave(rows[0].wave).playbook_name if rows else None))
        insecure = insecure_devices(items, [e for e in (items.device(r.name) for r in rows) if e is not None])
    except (MigratorError, InputFileError) as err:
        err_console.print(f"[red]{escape(str(err))}[/red]")
        raise typer.Exit(2) from None
    configure_logging(state / "logs", secrets=[credentials.password.get_secret_value()])
    announce(insecure, command="rollback", wave=wave, say=lambda text: err_console.print(text, markup=False))
    memberships: list[DomainChange] = []
    waves = sorted({r.wave for r in rows if r.wave is not None})
    try:
        for name in waves:
            # A group channel's changes first: the devices' GPOs / Intune profiles follow their groups.
            channel = policy_channel(store, name, chosen, items, credentials, secrets_file=secrets)
            if channel is not None:
                try:
                    memberships.extend(channel.restore([r.name for r in rows if r.wave == name]))
                finally:
                    channel.close()
    except MigratorError as err:
        err_console.print(f"[red]group memberships not restored: {escape(str(err))}[/red]")
        store.close()
        raise typer.Exit(1) from None
    results = []
    for row in rows:
        entry = items.device(row.name)
        if entry is None:
            err_console.print(f"[red]{escape(row.name)}: not in the inventory {escape(str(inventory))}[/red]")
            continue
        results.append(
            rollback_device(
                row.name,
                store=store,
                playbook=chosen,
                entry=entry,
                connection=items.connection(entry),
                credentials=credentials,
            )
        )
    store.close()
    failed = [r for r in results if r.error] or len(results) < len(rows)
    groups = [
        {"domain": m.domain, "changes": [c.as_json() for c in m.changes], "nothing_to_do": m.nothing_to_do}
        for m in memberships
    ]
    if as_json:
        typer.echo(json.dumps({"devices": [r.as_json() for r in results], "memberships": groups}, indent=2))
        raise typer.Exit(1 if failed else 0)
    for change in memberships:
        for membership in change.changes:
            done = "added to" if membership.member else "removed from"
            console.print(
                f"{change.domain}: {len(membership.changed)} computers {done} {escape(membership.group.name)} "
                "(their memberships before the wave)",
                highlight=False,
            )
        if change.nothing_to_do:
            console.print(f"{change.domain}: group memberships already as before the wave", highlight=False)
    for result in results:
        head = f"[bold]{escape(result.device)}[/bold]: {escape(result.state)}"
        if result.error:
            console.print(f"{head} — [red]not rolled back: {escape(result.error)}[/red]")
            continue
        if result.nothing_new:
            console.print(f"{head} — already rolled back: nothing new restored")
        for action in result.restored:
            console.print(f"  restored {escape(action['path'])}\\{escape(action['name'])}: {action['action']}")
        if not result.restored and not result.nothing_new:
            console.print(f"{head} — no policy value had been recorded: nothing to restore")
        elif result.restored:
            console.print(head)
        for user in result.disarmed:
            console.print(f"  removed the at-logon delete task of {escape(user)}")
        for note in result.cannot_restore:
            console.print(f"  [yellow]cannot restore: {escape(note)}[/yellow]")
    raise typer.Exit(1 if failed else 0)
