"""``migrator probe``: read-only facts for each device and the migration path it would take, with the reasons.

Theory of operation
-------------------
One worker thread per device in flight (transports are synchronous), at most ``--concurrency`` at a time. Each
device gets its own transport, runs the ``collect_facts`` step once (one pipeline, retried only on transient
errors: the step is idempotent) and is closed. :func:`migrator.facts.path` decides ``key`` / ``cert`` /
``cloud`` / ``ineligible`` from the facts and the per-domain Entra Kerberos object, read once per domain from
the directory before any device (:mod:`migrator.directory`; ``--entra-kerberos`` overrides it, and is all there
is when the directory cannot be read: a warning says so).
A device that cannot be probed is listed with its error class and message, never a traceback.

Exit codes: 0 every device probed, 1 some could not be probed, 2 bad input (inventory, --limit, credentials).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from migrator.directory.knowledge import announce_failures, directory_summary, read_directory
from migrator.errors import InputError, MigratorError, RemoteError
from migrator.facts import DeviceFacts, PathSettings, path
from migrator.inventory import Connection, DeviceEntry, Inventory, load_inventory
from migrator.remote import open_transport
from migrator.remote.credentials import Credentials, load_credentials
from migrator.remote.retry import RetryPolicy
from migrator.remote.tls import announce, insecure_devices
from migrator.remote.transport import Transport
from migrator.steps import CollectFacts, run_step
from migrator.yamlsource import InputFileError

commands = typer.Typer()
err_console = Console(stderr=True)
TransportFactory = Callable[[DeviceEntry, Connection, Credentials], Transport]


@dataclass(frozen=True)
class ProbeError:
    error_class: str
    message: str
    action: str

    def as_json(self) -> dict[str, str]:
        return {"class": self.error_class, "message": self.message, "action": self.action}


@dataclass(frozen=True)
class ProbeOutcome:
    """One device's probe: its facts and path, or why it could not be probed."""

    name: str
    path: str
    reasons: tuple[str, ...]
    facts: DeviceFacts | None
    error: ProbeError | None
    requests: int  # WS-Man requests this probe sent (HTTP POSTs, authentication legs included)
    seconds: float

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "reasons": list(self.reasons),
            "facts": self.facts.model_dump(mode="json") if self.facts is not None else None,
            "error": self.error.as_json() if self.error is not None else None,
        }


def _error(err: BaseException) -> ProbeError:
    if isinstance(err, RemoteError):
        return ProbeError(type(err).__name__, err.detail, err.action)
    if isinstance(err, MigratorError):
        return ProbeError(type(err).__name__, str(err), err.action)
    # A bug of ours or an untranslated library error: name it, never dump a traceback (or its locals).
    return ProbeError(type(err).__name__, str(err).splitlines()[0][:300] if str(err) else "", "report it")


def probe_device(
    entry: DeviceEntry,
    connection: Connection,
    credentials: Credentials,
    settings: PathSettings,
    *,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] | None = None,
    transport_factory: TransportFactory = open_transport,
) -> ProbeOutcome:
    """Probe one device: facts through one transport, then the path; errors become a listed outcome."""
    started = time.monotonic()
    transport: Transport | None = None
    try:
        transport = transport_factory(entry, connection, credentials)
        facts = run_step(transport, CollectFacts(), policy=retry, sleep=sleep)
        decision = path(facts, settings)
        return ProbeOutcome(
            entry.name,
            decision.path,
            decision.reasons,
            facts,
            None,
            transport.requests_sent,
            time.monotonic() - started,
        )
    except Exception as err:
        failure = _error(err)
        return ProbeOutcome(
            entry.name,
            "ineligible",
            (f"not probed: {failure.error_class}: {failure.message}",),
            None,
            failure,
            transport.requests_sent if transport is not None else 0,
            time.monotonic() - started,
        )
    finally:
        if transport is not None:
            transport.close()


def probe_devices(
    inventory: Inventory,
    devices: Iterable[DeviceEntry],
    credentials: Credentials,
    settings: PathSettings,
    *,
    concurrency: int = 16,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] | None = None,
    transport_factory: TransportFactory = open_transport,
    on_done: Callable[[ProbeOutcome], None] | None = None,
) -> list[ProbeOutcome]:
    """Probe devices with at most ``concurrency`` in flight; outcomes in inventory order."""
    entries = list(devices)
    outcomes: dict[str, ProbeOutcome] = {}
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="probe") as pool:
        futures = [
            pool.submit(
                probe_device,
                entry,
                inventory.connection(entry),
                credentials,
                settings,
                retry=retry,
                sleep=sleep,
                transport_factory=transport_factory,
            )
            for entry in entries
        ]
        for future in as_completed(futures):
            outcome = future.result()
            outcomes[outcome.name] = outcome
            if on_done is not None:
                on_done(outcome)
    return [outcomes[e.name] for e in entries]


def parse_entra_kerberos(values: list[str]) -> PathSettings:
    """``DOMAIN=yes|no`` options (DNS or NetBIOS names) → :class:`PathSettings`."""
    known: dict[str, bool] = {}
    for value in values:
        domain, sep, answer = value.partition("=")
        flag = {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}.get(
            answer.strip().casefold()
        )
        if not sep or not domain.strip() or flag is None:
            raise InputError(f"--entra-kerberos {value!r}: expected DOMAIN=yes or DOMAIN=no")
        known[domain.strip()] = flag
    return PathSettings(entra_kerberos=known)


_PATH_STYLE = {"key": "yellow", "cert": "magenta", "cloud": "green", "ineligible": "red"}


def _table(outcomes: list[ProbeOutcome]) -> Table:
    table = Table(title="probe", show_lines=False)
    for column in ("device", "join", "build", "policy", "users", "path"):
        table.add_column(column, no_wrap=True)
    table.add_column("reasons", overflow="fold", ratio=1)
    for o in outcomes:
        f = o.facts
        users = (
            ""
            if f is None
            else f"{sum(u.signed_in for u in f.users)}/{len(f.users)} in, {sum(u.has_hello for u in f.users)} Hello"
        )
        style = _PATH_STYLE.get(o.path, "")
        table.add_row(
            escape(o.name),
            "" if f is None else f.join_type,
            "" if f is None else escape(f.os.full_build or "?"),
            "" if f is None else f"{f.policy.effective} ({f.policy.source})",
            users,
            f"[{style}]{o.path}[/{style}]",
            escape("; ".join(o.reasons)),
        )
    return table


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    return typer.Exit(2)


@commands.command("probe")
def probe_command(
    inventory_path: Annotated[Path, typer.Option("--inventory", "-i", help="Inventory file (YAML or CSV).")],
    limit: Annotated[
        str | None, typer.Option("--limit", help="Only these devices or groups (comma-separated names).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print {devices: [...]} as JSON on stdout.")] = False,
    secrets: Annotated[
        Path | None, typer.Option("--secrets", help="KEY=value file with MIGRATOR_USERNAME/MIGRATOR_PASSWORD.")
    ] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, max=512, help="Devices probed at once.")] = 16,
    entra_kerberos: Annotated[
        list[str] | None,
        typer.Option(
            "--entra-kerberos",
            help="DOMAIN=yes|no: whether the domain has its Microsoft Entra Kerberos server object (repeatable).",
        ),
    ] = None,
) -> None:
    """Read-only: facts for each device and the migration path it would take (key, cert, cloud, ineligible).

    Example: migrator probe -i inventory.yaml --limit pilot --entra-kerberos corp.contoso.com=yes --json
    """
    try:
        inventory = load_inventory(inventory_path)
        devices = inventory.select(limit)
        overrides = parse_entra_kerberos(entra_kerberos or [])
        credentials = load_credentials(secrets)
        insecure = insecure_devices(inventory, devices)
        if not devices:
            raise _fail("no device selected")
        # Once per probe, before any device: each domain's Entra Kerberos object and who it never serves.
        knowledge = read_directory(inventory, credentials, devices=[d.name for d in devices], secrets_file=secrets)
    except (InputError, InputFileError) as err:
        raise _fail(str(err)) from None

    def say(text: str) -> None:
        err_console.print(text, markup=False, highlight=False, soft_wrap=True)

    announce(insecure, command="probe", say=say)
    announce_failures(knowledge, command="probe", say=say)
    if knowledge.domains:
        say(directory_summary(knowledge))
    settings = knowledge.path_settings(overrides.entra_kerberos)
    progress = Progress(
        TextColumn("probing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[last]}"),
        console=err_console,
        transient=as_json,
    )
    with progress:
        task = progress.add_task("probe", total=len(devices), last="")

        def done(outcome: ProbeOutcome) -> None:
            progress.update(task, advance=1, last=f"{outcome.name}: {outcome.path}")

        outcomes = probe_devices(inventory, devices, credentials, settings, concurrency=concurrency, on_done=done)
    failed = [o for o in outcomes if o.error is not None]
    if as_json:
        payload = {"devices": [o.as_json() for o in outcomes], "directory": knowledge.as_json()}
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    else:
        console = Console()
        console.print(_table(outcomes))
        counts: dict[str, int] = {}
        for o in outcomes:
            counts[o.path] = counts.get(o.path, 0) + 1
        summary = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
        console.print(f"{len(outcomes)} devices ({summary}); {len(failed)} could not be probed", highlight=False)
    raise typer.Exit(1 if failed else 0)
