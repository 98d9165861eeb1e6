"""``migrator entra cleanup``: remove from Entra ID the stale Hello keys of a wave's migrated users, in bulk.
``migrator entra preflight``: read and record what Entra ID holds for a wave's preflighted devices.

What it removes, and the guards, are :mod:`migrator.cloud.cleanup`'s. The tenant and app come from the wave's
inventory (``entra:`` or a lab's ``lab: graph:``), the app's secret from ``--secrets`` or the environment.

Exit codes of ``cleanup``: 0 every eligible key removed (or already gone); 1 some key left, failed or in doubt
(listed, with the reason); 2 bad input (no such wave, no store, no tenant settings, no secret) or Entra ID refused
the app's credentials or a permission.

Exit codes of ``preflight``: 0 every device has an enabled Entra device object and everything was read; 1 a device
object is missing or disabled, or a part could not be read (each listed, and recorded in the audit log); 2 bad input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from migrator.cli.storeopt import StoreOption, open_command_store
from migrator.cloud.cleanup import StaleKeyCleanup, cleanup_wave
from migrator.cloud.client import GraphClient
from migrator.cloud.knowledge import preflight_wave, wave_queries
from migrator.cloud.settings import GraphSettings, graph_settings
from migrator.errors import CloudAccessDenied, CloudCredentialsError, CloudError, ExitCode, InputError
from migrator.inventory import load_inventory
from migrator.logs import register_secret
from migrator.store import Store, StoreError, UnknownWave, WaveRow
from migrator.yamlsource import InputFileError

commands = typer.Typer()
entra = typer.Typer(help="Entra ID through Microsoft Graph: stale Hello keys, preflight reads.", no_args_is_help=True)
commands.add_typer(entra, name="entra")

console = Console()
err_console = Console(stderr=True)


def _fail(message: str, code: int = ExitCode.INPUT) -> typer.Exit:
    err_console.print(Text.assemble(("error:", "red"), " ", message), highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _open_wave(
    wave: str, state: Path, store_url: str | None, inventory: Path | None, secrets: Path | None
) -> tuple[Store, WaveRow, GraphSettings]:
    """The store, the wave's row and the tenant's settings (from the wave's inventory unless given); exits 2 on
    bad input, with the store closed."""
    store = open_command_store(store_url, state, create=False)
    try:
        wave_row = store.get_wave(wave)
        inventory_path = inventory or Path(str(wave_row.settings.get("inventory", "")))
        settings = graph_settings(load_inventory(inventory_path), secrets)
        if settings is None:
            raise InputError(f"{inventory_path}: no entra: section (and no lab: graph:): which tenant is unknown")
    except UnknownWave:
        store.close()
        raise _fail(f"no wave named {wave!r} in the store") from None
    except (StoreError, InputFileError, InputError) as err:
        store.close()
        raise _fail(str(err)) from None
    if settings.secret is not None:
        register_secret(settings.secret.get_secret_value())
    return store, wave_row, settings


# The options both commands take (a wave's store, its inventory, the app's secrets).
StateOption = Annotated[Path, typer.Option("--state", help="Folder of the store unless --store or $MIGRATOR_STORE.")]
InventoryOption = Annotated[
    Path | None, typer.Option("--inventory", "-i", help="Default: the inventory the wave was run with.")
]
SecretsOption = Annotated[Path | None, typer.Option(help="KEY=value file with MIGRATOR_GRAPH_CLIENT_ID / _SECRET.")]


@entra.command("cleanup")
def cleanup(
    wave: Annotated[str, typer.Option("--wave", help="The wave whose migrated users' stale keys are removed.")],
    state: StateOption = Path("state"),
    store_url: StoreOption = None,
    inventory: InventoryOption = None,
    secrets: SecretsOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Remove the stale Hello key of every user of a wave who is verified on cloud Kerberos trust and whose
    container migrator deleted; only that key, never the new one; journalled and audited.

    Example: migrator entra cleanup --wave pilot --state ./state --secrets state/lab/lab-secrets.env
    """
    store, wave_row, settings = _open_wave(wave, state, store_url, inventory, secrets)
    actor = f"app {settings.client_id}"
    try:
        with GraphClient(settings) as graph:
            results = cleanup_wave(
                store, StaleKeyCleanup(store, graph, actor=actor, change_ticket=wave_row.change_ticket), wave
            )
            requests = graph.requests
    except (CloudCredentialsError, CloudAccessDenied) as err:
        raise _fail(f"{err} ({err.action})") from None
    except CloudError as err:
        raise _fail(f"{err} ({err.action})", ExitCode.FAILED) from None
    finally:
        store.close()
    bad = [r for r in results if r.status not in ("removed", "already_gone")]
    if as_json:
        typer.echo(json.dumps({"wave": wave, "graph_requests": requests, "keys": [r.__dict__ for r in results]}))
    else:
        table = Table(title=f"stale Hello keys of wave {wave}")
        for column in ("device", "user", "NgcKeyId", "status", "detail"):
            table.add_column(column)
        for r in results:
            table.add_row(*(Text(v) for v in (r.device, r.user, r.key_id, r.status, r.detail)))
        console.print(table)
        users = len(results) or 1
        console.print(
            f"{sum(r.status == 'removed' for r in results)} removed, {len(bad)} left; "
            f"{requests} Graph requests ({requests / users:.1f} per user)",
            markup=False,
            highlight=False,
        )
    raise typer.Exit(ExitCode.FAILED if bad else ExitCode.OK)


@entra.command("preflight")
def preflight(
    wave: Annotated[str, typer.Option("--wave", help="The wave whose preflighted devices are read.")],
    state: StateOption = Path("state"),
    store_url: StoreOption = None,
    inventory: InventoryOption = None,
    secrets: SecretsOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
) -> None:
    """Read once what Entra ID holds for the wave's preflighted devices (device object exists and is enabled, the
    users' Hello keys, the tenant's Windows Hello for Business enrollment policy) and record it for the report.

    Example: migrator entra preflight --wave pilot --state ./state --secrets state/lab/lab-secrets.env
    """
    store, wave_row, settings = _open_wave(wave, state, store_url, inventory, secrets)
    try:
        with GraphClient(settings) as graph:
            knowledge = preflight_wave(
                store, graph, wave, actor=f"app {settings.client_id}", change_ticket=wave_row.change_ticket
            )
        queries = wave_queries(store, wave)
    finally:
        store.close()
    findings = [knowledge.finding(q) | {"device": q.name} for q in queries]
    flagged = [f for f in findings if f["device_problem"]]
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "wave": wave,
                    "graph_requests": knowledge.requests,
                    "failures": knowledge.failures,
                    "devices": findings,
                }
            )
        )
    else:
        table = Table(title=f"Entra ID at preflight, wave {wave}")
        for column in ("device", "device object", "Hello keys", "problem"):
            table.add_column(column)
        for f in findings:
            keys = sum(len(u.get("hello_methods", [])) for u in f["users"].values())
            table.add_row(*(Text(str(v)) for v in (f["device"], f["device_object"], keys, f["device_problem"] or "")))
        console.print(table)
        policy = knowledge.enrollment
        console.print(
            f"enrollment policy: {policy.state}: {policy.at_reenrollment()}"
            if policy is not None
            else "enrollment policy: none read",
            markup=False,
            highlight=False,
        )
        for part, message in knowledge.failures.items():
            err_console.print(Text.assemble(("not read:", "red"), f" {part}: {message}"), soft_wrap=True)
        console.print(
            f"{len(findings)} devices, {len(flagged)} to look at; {knowledge.requests} Graph requests",
            markup=False,
            highlight=False,
        )
    raise typer.Exit(ExitCode.FAILED if flagged or knowledge.failures else ExitCode.OK)
