"""``migrator lab up | inspect | user | dc | group | gpo``: run a lab fleet and look at (or act on) it while it runs."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from migrator.errors import InputError
from migrator.inventory import load_inventory
from migrator.lab.control import ControlClient
from migrator.lab.directory.kdc import install_hint
from migrator.lab.fleet import MixError, generate_fleet, parse_mix
from migrator.lab.fleetfile import FleetFileError, load_fleet, save_fleet
from migrator.lab.model import Fleet
from migrator.lab.runtime import LabPorts, LabRuntime, read_lab_secrets
from migrator.lab.server import FaultPlan, FaultProfileError, load_fault_profile
from migrator.lab.shards import ShardedLabRuntime, sharded_runtime
from migrator.yamlsource import InputFileError

console = Console()
err_console = Console(stderr=True)

DEFAULT_DIR = Path("state/lab")
commands = typer.Typer()  # joined to the `lab` group by lab_commands


def _fail(message: str, code: int = 2) -> typer.Exit:
    # The message quotes user values (file names, YAML values): printed as plain text, never as markup.
    err_console.print(Text.assemble(("error:", "red"), " ", message), highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _load_or_generate(fleet_file: Path | None, devices: int, seed: int, mix: str) -> tuple[Fleet, Path]:
    target = fleet_file or DEFAULT_DIR / "fleet.json"
    if fleet_file is not None and fleet_file.exists():
        try:
            return load_fleet(fleet_file), fleet_file
        except FleetFileError as err:
            raise _fail(str(err)) from None
    try:
        return generate_fleet(devices, seed, parse_mix(mix)), target
    except MixError as err:
        raise _fail(f"--mix: {err}") from None


@commands.command("up")
def lab_up(
    devices: Annotated[int, typer.Option(min=1, max=60000, help="How many devices to generate.")] = 60,
    seed: Annotated[int, typer.Option(help="Seed of the generated fleet (same seed, same fleet).")] = 1,
    mix: Annotated[str, typer.Option(help="Trust models in percent.")] = "key=50,cert=40,cloud=5,none=5",
    fleet: Annotated[
        Path | None, typer.Option(help="Fleet file: loaded if it exists, else generated; saved on stop.")
    ] = None,
    faults: Annotated[Path | None, typer.Option(help="YAML fault profile.")] = None,
    inventory: Annotated[Path, typer.Option(help="Where to write the inventory.")] = DEFAULT_DIR / "inventory.yaml",
    speed: Annotated[float, typer.Option(min=0.001, help="Virtual seconds per real second.")] = 60.0,
    http_port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="Default 5985, or a free port if taken. 0 = any free port.")
    ] = None,
    https_port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="Default 5986, or a free port if taken. 0 = any free port.")
    ] = None,
    control_port: Annotated[int, typer.Option(min=0, max=65535, help="0 = any free port.")] = 0,
    ldap_port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, help="Domain controllers' LDAP port. Default 389, or a free port if taken."),
    ] = None,
    ldaps_port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, help="Domain controllers' LDAPS port. Default 636, or a free port if taken."),
    ] = None,
    gpo_refresh: Annotated[
        bool,
        typer.Option(
            "--gpo-refresh/--no-gpo-refresh",
            help="Refresh Group Policy in the background every 90 + 0-30 virtual minutes, as Windows does (it "
            "overwrites local writes to GPO-managed values). gpupdate and boot apply it either way.",
        ),
    ] = True,
    intune_refresh: Annotated[
        bool,
        typer.Option(
            help="Intune-enrolled devices check in every ~8 virtual hours and take their groups' Hello profiles, as "
            "Intune does (it overwrites local writes to the MDM policy key). syncDevice applies them either way."
        ),
    ] = False,
    processes: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Serve the devices from this many processes (device i in process i mod N); the domain "
            "controllers, the Graph tenant, the control endpoint and the clock stay in this one.",
        ),
    ] = 1,
    kerberos: Annotated[
        bool | None,
        typer.Option(
            "--kerberos/--no-kerberos",
            help="Run an MIT Kerberos KDC per lab realm (default: when krb5-kdc is installed; --kerberos fails "
            "without it, --no-kerberos runs NTLM only).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Start a lab fleet in the foreground until Ctrl-C (or SIGTERM), then save its state.

    Example: migrator lab up --devices 100 --seed 7 --inventory state/lab/inventory.yaml
    """
    the_fleet, fleet_path = _load_or_generate(fleet, devices, seed, mix)
    plan = None
    if faults is not None:
        try:
            plan = FaultPlan(load_fault_profile(faults))
        except FaultProfileError as err:
            raise _fail(str(err)) from None
    try:
        runtime = _runtime(
            the_fleet,
            inventory,
            speed,
            http_port,
            https_port,
            control_port,
            ldap_port,
            ldaps_port,
            plan,
            gpo_refresh,
            kerberos,
            intune_refresh,
            processes,
            faults,
        )
    except InputError as err:
        raise _fail(str(err)) from None
    # Handlers first: a SIGINT/SIGTERM that arrives as soon as `ready` is printed must still stop cleanly.
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        _serve(runtime, inventory, fleet_path, stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _runtime(
    the_fleet: Fleet,
    inventory: Path,
    speed: float,
    http_port: int | None,
    https_port: int | None,
    control_port: int,
    ldap_port: int | None,
    ldaps_port: int | None,
    plan: FaultPlan | None,
    gpo_refresh: bool,
    kerberos: bool | None,
    intune_refresh: bool,
    processes: int = 1,
    fault_profile: Path | None = None,
) -> LabRuntime:
    return sharded_runtime(
        the_fleet,
        inventory.parent,
        processes,
        speed=speed,
        fault_profile=fault_profile,
        ports=LabPorts(
            http=5985 if http_port is None else http_port,
            https=5986 if https_port is None else https_port,
            control=control_port,
            free_if_taken=http_port is None and https_port is None,  # ports given are used as given
            ldap=389 if ldap_port is None else ldap_port,
            ldaps=636 if ldaps_port is None else ldaps_port,
            ldap_free_if_taken=ldap_port is None and ldaps_port is None,
        ),
        faults=plan,
        gpo_refresh=gpo_refresh,
        kerberos=kerberos,
        intune_check_ins=intune_refresh,
    )


def _serve(runtime: LabRuntime, inventory: Path, fleet_path: Path, stop: threading.Event) -> None:
    the_fleet = runtime.fleet
    started = time.monotonic()
    with console.status(f"starting {len(the_fleet.devices)} devices…"):
        try:
            runtime.start()
        except InputError as err:
            raise _fail(str(err)) from None
        runtime.write_inventory(inventory)
    console.print(
        f"lab ready: {len(the_fleet.devices)} devices in {time.monotonic() - started:.1f}s, "
        f"ports {runtime.server.http_port}/{runtime.server.https_port}, "
        f"inventory {inventory}, control {runtime.control_url}",
        markup=False,
        highlight=False,
    )
    for domain in runtime.domains_data():
        kdc = f", KDC {domain['kdc_port']} (realm {domain['realm']})" if domain["kdc_port"] else ""
        console.print(
            f"  domain {domain['name']}: DC {domain['dc_hostname']} at {domain['dc_address']}, "
            f"LDAP {domain['ldap_port']}, LDAPS {domain['ldaps_port']}{kdc}",
            markup=False,
            highlight=False,
        )
    graph = runtime.graph_data()
    console.print(
        f"  Entra ID tenant {graph['tenant_id']}: Graph {graph['url']}, authority {graph['authority']} "
        "(app id and secret in lab-secrets.env)",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    if runtime.kdc is not None:
        console.print(
            f"  Kerberos: KRB5_CONFIG={inventory.parent / 'krb5.conf'} "
            f"(KDCs started in {runtime.kdc.start_seconds:.1f}s, {runtime.kdc.rss_kib() // 1024} MiB); "
            "write `auth: kerberos` in the inventory's defaults to sign in with it",
            markup=False,
            highlight=False,
        )
    elif runtime.kerberos_missing:
        console.print(
            f"  NTLM only: MIT Kerberos is not installed ({', '.join(runtime.kerberos_missing)} not found); "
            f"{install_hint()} for Kerberos",
            markup=False,
            highlight=False,
            soft_wrap=True,  # one line, however narrow the terminal
        )
    if isinstance(runtime, ShardedLabRuntime):
        pids = ", ".join(str(pid) for pid in runtime.child_pids())
        console.print(f"  devices served by {runtime.processes} processes (pids {pids})", markup=False, highlight=False)
    died: str | None = None
    try:
        with console.status("") as status:
            while not stop.wait(1.0):
                if isinstance(runtime, ShardedLabRuntime) and (died := runtime.dead_shard()) is not None:
                    break
                executions = runtime.executions
                status.update(
                    f"lab running · virtual time {runtime.clock.now():%Y-%m-%d %H:%M} · "
                    f"{executions} commands served · Ctrl-C to stop"
                )
    finally:
        saved = runtime.stop()
        try:
            save_fleet(saved, fleet_path)
        except FleetFileError as err:
            raise _fail(f"lab stopped, but its state was not saved: {err}", code=1) from None
        console.print(f"lab stopped; fleet state saved to {fleet_path}", markup=False, highlight=False)
    if died is not None:
        raise _fail(died, code=1)


def _client(inventory: Path) -> ControlClient:
    try:
        inv = load_inventory(inventory)
        secrets = read_lab_secrets(inventory)
    except (InputFileError, InputError) as err:
        raise _fail(str(err)) from None
    if inv.lab is None:
        raise _fail(f"{inventory}: no 'lab:' section; it is not a lab inventory")
    token = secrets.get("MIGRATOR_LAB_TOKEN")
    if not token:
        raise _fail(f"{inventory.parent / 'lab-secrets.env'}: no MIGRATOR_LAB_TOKEN")
    return ControlClient(inv.lab.control, token)


@commands.command("inspect")
def lab_inspect(
    names: Annotated[list[str] | None, typer.Argument(help="Devices to show (all if none).")] = None,
    inventory: Annotated[Path, typer.Option(help="The lab's inventory.")] = DEFAULT_DIR / "inventory.yaml",
    as_json: Annotated[bool, typer.Option("--json", help="Print the lab's truth as JSON.")] = False,
) -> None:
    """Show the lab's truth about its devices (policy, containers, sessions, counters, events).

    Example: migrator lab inspect --inventory state/lab/inventory.yaml PC-0001 --json
    """
    try:
        truth = _client(inventory).devices(names or [])
    except InputError as err:
        raise _fail(str(err)) from None
    if as_json:
        typer.echo(json.dumps(truth, indent=2))
        return
    table = Table(title=f"lab at {truth.get('clock', '')}")
    for column in ("device", "join", "build", "DC", "policy", "GPOs", "users (container, deletions)"):
        table.add_column(column)
    for device in truth["devices"]:
        users = ", ".join(
            f"{u['name']}{'*' if u['signed_in'] else ''} "
            f"({(u['container'] or {}).get('trust', '-')}, {u['container_deletions']})"
            for u in device["users"]
        )
        cells = (
            device["name"],
            device["join_type"],
            device["os_build"],
            "yes" if device["dc_reachable"] else "no",
            device["policy"]["effective"],
            ", ".join(
                g.removeprefix("Windows Hello for Business - ")
                for g in (device.get("group_policy") or {}).get("gpos", [])
            )
            or "-",
            users,
        )
        table.add_row(*(Text(str(cell)) for cell in cells))  # values from the fleet file, printed literally
    console.print(table)
    counts = Counter(d["policy"]["effective"] for d in truth["devices"])
    console.print("effective policy: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))


@commands.command("user")
def lab_user(
    device: Annotated[str, typer.Argument(help="Device name.")],
    action: Annotated[str, typer.Argument(help="sign-in | sign-out | lock | unlock")],
    user: Annotated[str, typer.Option("--user", help="DOMAIN\\user, UPN or sam of a user of that device.")],
    inventory: Annotated[Path, typer.Option(help="The lab's inventory.")] = DEFAULT_DIR / "inventory.yaml",
    rdp: Annotated[bool, typer.Option(help="Sign in over Remote Desktop.")] = False,
    password: Annotated[bool, typer.Option("--password", help="Sign in with the password, not Hello.")] = False,
) -> None:
    """Act as a user of a lab device.

    Example: migrator lab user PC-0001 sign-in --user CORP\\alice --inventory state/lab/inventory.yaml
    """
    if action not in ("sign-in", "sign-out", "lock", "unlock"):
        raise _fail(f"unknown action {action!r}: use sign-in, sign-out, lock or unlock")
    extra: dict[str, str] = {}
    if action == "sign-in":
        extra["kind"] = "rdp" if rdp else "console"
        if password:
            extra["method"] = "password"
    try:
        result = _client(inventory).user(device, user, action, **extra)
    except InputError as err:
        raise _fail(str(err)) from None
    typer.echo(json.dumps(result, indent=2))


@commands.command("dc")
def lab_dc(
    device: Annotated[str, typer.Argument(help="Device name.")],
    state: Annotated[str, typer.Argument(help="reachable | unreachable")],
    inventory: Annotated[Path, typer.Option(help="The lab's inventory.")] = DEFAULT_DIR / "inventory.yaml",
) -> None:
    """Give or take a lab device's line of sight to a domain controller (VPN on/off).

    Example: migrator lab dc PC-0001 unreachable --inventory state/lab/inventory.yaml
    """
    if state not in ("reachable", "unreachable"):
        raise _fail("state is 'reachable' or 'unreachable'")
    try:
        result = _client(inventory).dc(device, state == "reachable")
    except InputError as err:
        raise _fail(str(err)) from None
    typer.echo(json.dumps(result))


@commands.command("group")
def lab_group(
    domain: Annotated[str, typer.Argument(help="The lab domain (DNS or NetBIOS name), e.g. corp.contoso.com.")],
    action: Annotated[str, typer.Argument(help="add | remove")],
    group: Annotated[str, typer.Argument(help="The group: its name (sAMAccountName), CN or DN.")],
    member: Annotated[
        str, typer.Argument(help="A user (sam, DOMAIN\\sam, UPN), a computer (PC-0001) or a group, or a DN.")
    ],
    inventory: Annotated[Path, typer.Option(help="The lab's inventory.")] = DEFAULT_DIR / "inventory.yaml",
) -> None:
    """Change a group's members in a running lab's directory, as an admin would in AD Users and Computers.

    Example: migrator lab group corp.contoso.com add "Hello Cloud Trust Computers" PC-0001
    """
    if action not in ("add", "remove"):
        raise _fail(f"unknown action {action!r}: use add or remove")
    try:
        result = _client(inventory).group(domain, action, group, member)
    except InputError as err:
        raise _fail(str(err)) from None
    typer.echo(json.dumps(result, indent=2))


@commands.command("gpo")
def lab_gpo(
    domain: Annotated[str, typer.Argument(help="The lab domain (DNS or NetBIOS name).")],
    action: Annotated[str, typer.Argument(help="list | show | set")],
    name: Annotated[str | None, typer.Argument(help="The GPO's display name or GUID (show, set).")] = None,
    value: Annotated[
        str | None, typer.Option("--value", help="NAME=DWORD to set, e.g. UseCloudTrustForOnPremAuth=1.")
    ] = None,
    remove: Annotated[str | None, typer.Option("--remove", help="A value name to remove from the GPO.")] = None,
    user: Annotated[bool, typer.Option("--user", help="User Configuration instead of Computer Configuration.")] = False,
    inventory: Annotated[Path, typer.Option(help="The lab's inventory.")] = DEFAULT_DIR / "inventory.yaml",
) -> None:
    """List, show or edit a running lab's GPOs, as an admin would in GPMC (devices get it at their next refresh).

    Example: migrator lab gpo FABRIKAM set "Windows Hello for Business - key trust" --value UseCloudTrustForOnPremAuth=1
    """
    if action not in ("list", "show", "set"):
        raise _fail(f"unknown action {action!r}: use list, show or set")
    if action != "list" and not name:
        raise _fail(f"lab gpo {action} needs the GPO's name")
    if action == "set" and (value is None) == (remove is None):
        raise _fail("lab gpo set needs exactly one of --value NAME=DWORD or --remove NAME")
    client = _client(inventory)
    try:
        if action == "list":
            result = client.gpos(domain)
        elif action == "show":
            result = client.gpos(domain, name)
        else:
            assert name is not None
            result = client.gpo_edit(domain, name, value=value, remove=remove, user=user)
    except InputError as err:
        raise _fail(str(err)) from None
    typer.echo(json.dumps(result, indent=2))
