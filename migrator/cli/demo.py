"""``migrator demo``: the product end to end on an embedded lab fleet.

A mixed lab fleet starts in-process (its own loopback addresses and ports, or free ports if another lab holds
those; realistic faults, simulated people on a fast virtual clock, Group Policy refreshed in the background); the
devices are probed; a canary runs, then a wave of the certificate trust playbook, a wave of the devices whose
Hello policy a GPO sets through the ad-group channel, and a wave of the key trust playbook; the recap and the
HTML report end it.
Everything lives under ``<state>/demo`` (the store, the logs, the lab's inventory and secrets, the report), which
each run starts afresh. With ``--serve`` the dashboard (``migrator serve``) then shows the demo's store, read-only,
until Ctrl-C.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer
import yaml
from pydantic import SecretStr

from migrator.cli.probe import probe_devices
from migrator.cli.serve_commands import serve_store
from migrator.cli.wave_commands import (
    EXIT_FAILED,
    EXIT_OK,
    anchor_audit_head,
    console,
    fail,
    recap,
    run_with_progress,
    start_logging,
)
from migrator.engine.service import WaveRequest, plan_wave
from migrator.facts import PathSettings
from migrator.inventory import load_inventory
from migrator.lab.directory.build import CLOUD_TRUST_GROUP, HELLO_GPO_GROUP
from migrator.lab.fleet import DEFAULT_MIX, generate_fleet, parse_mix
from migrator.lab.model import Device
from migrator.lab.runtime import LabPorts, LabRuntime
from migrator.lab.server import FaultPlan
from migrator.playbook import builtin_path
from migrator.remote.credentials import Credentials
from migrator.report import write_report
from migrator.store import Store
from migrator.web import Listen

DEMO_PORTS = (45985, 45986)
DASHBOARD_PORT = 8080  # `migrator serve`'s default; another one when it is taken
MARKER = ".migrator-demo"
commands = typer.Typer()


def _demo_playbook(folder: Path, name: str, policy: dict[str, str] | None = None) -> Path:
    """A shipped playbook with the demo's pace: look every 4 h, and give people two weeks.

    The lab's people act like a real office's: most within hours of a prompt, some days later, some only when
    they are back from two weeks away; two weeks is what an identity team gives a wave before it calls a user
    stalled. Users who never act, or who cannot get a cloud TGT (privileged accounts), still stall, with the
    reason."""
    data = yaml.safe_load(builtin_path(name).read_text(encoding="utf-8"))
    data["waits"] = {
        **data.get("waits", {}),
        "recheck_every": "4h",
        "user_deadline": "15d",
        "dc_deadline": "15d",
        "reprovision_deadline": "15d",
    }
    # Remote workers sign in before their VPN is up: remind them more often than the shipped default does.
    data["prompt"] = {**data.get("prompt", {}), "reminders": 6, "remind_after": "12h"}
    if policy:
        data["policy"] = {**data.get("policy", {}), **policy}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _fresh(folder: Path) -> None:
    if folder.exists():
        if not (folder / MARKER).exists():
            raise fail(f"{folder} exists and is not a demo folder; pass another --state")
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / MARKER).write_text("created by `migrator demo`; removed by the next demo run\n", encoding="utf-8")


@commands.command("demo")
def demo(
    devices: Annotated[int, typer.Option(min=4, max=2000, help="Size of the lab fleet.")] = 60,
    seed: Annotated[int, typer.Option(help="Seed of the fleet (same seed, same fleet).")] = 1,
    state: Annotated[Path, typer.Option("--state", help="The demo works in <state>/demo.")] = Path("state"),
    speed: Annotated[float, typer.Option(min=1, help="Virtual seconds per real second.")] = 28800.0,
    serve: Annotated[
        bool, typer.Option("--serve", help="Then keep the dashboard of the demo's store up (Ctrl-C stops it).")
    ] = False,
    serve_port: Annotated[
        int, typer.Option("--serve-port", min=0, max=65535, help="The dashboard's port on 127.0.0.1 (0: a free one).")
    ] = DASHBOARD_PORT,
) -> None:
    """Migrate a lab fleet in waves: canary, certificate trust, GPO-managed (ad-group), key trust; recap and report.

    Example: migrator demo --devices 60 --seed 1 --serve
    """
    folder = state / "demo"
    _fresh(folder)
    fleet = generate_fleet(devices, seed, parse_mix(DEFAULT_MIX))
    for index, device in enumerate(fleet.devices):
        # Addresses of the demo's own: a `lab up` on the default 127.20.x.y range can run beside it.
        device.address = f"127.30.{index // 250}.{index % 250 + 1}"
    faults = FaultPlan()
    faults.add(kind="latency", delay=0.002, jitter=0.002)
    faults.add(kind="busy", probability=0.02)  # WinRM MaxConcurrentOperationsPerUser: retried
    faults.add(kind="drop", devices=[fleet.devices[-1].name], after=3, count=1)  # a lost connection: retried
    # Another lab (a second demo, a `lab up`, a test) may hold the default ports on these addresses: then the
    # fleet listens on free ones, and the inventory the demo writes and reads says which.
    ports = LabPorts(*DEMO_PORTS, free_if_taken=True)
    runtime = LabRuntime(fleet, folder / "lab", speed=speed, ports=ports, faults=faults)
    console.print(f"starting a lab fleet of {devices} devices (seed {seed})…", highlight=False)
    try:
        runtime.start()
    except Exception as err:
        raise fail(f"the lab could not start: {err}") from None
    chosen = (runtime.server.http_port, runtime.server.https_port)
    if chosen != DEMO_PORTS:
        console.print(f"ports {DEMO_PORTS[0]}/{DEMO_PORTS[1]} are taken: the lab listens on {chosen[0]}/{chosen[1]}")
    try:
        inventory_path = folder / "lab" / "inventory.yaml"
        runtime.write_inventory(inventory_path)
        credentials = Credentials(f"{fleet.admin.domain}\\{fleet.admin.username}", SecretStr(runtime.password))
        start_logging(folder, [runtime.password])
        store = Store.open(folder)
        inventory = load_inventory(inventory_path)
        # The admin knows which AD domains have the Entra Kerberos object (Get-AzureADKerberosServer per domain).
        entra = {d.dns_name: d.entra_kerberos for d in fleet.domains}
        with console.status("probing the fleet…"):
            outcomes = probe_devices(
                inventory, inventory.devices, credentials, PathSettings(entra_kerberos=entra), concurrency=16
            )
        paths = {o.name: o.path for o in outcomes}
        counts = {p: sum(1 for v in paths.values() if v == p) for p in sorted(set(paths.values()))}
        console.print("probe: " + ", ".join(f"{p}={n}" for p, n in counts.items()), highlight=False)
        # Where a GPO sets the Hello policy (the probe read each device's Resultant Set of Policy), a local
        # registry write lasts only until the next background refresh: those devices go through the ad-group
        # channel (their computer accounts move to the cloud trust GPO's filter group); the others take the
        # local channel.
        managed = {o.name for o in outcomes if o.facts is not None and o.facts.policy.gpo_managed}
        cert = [n for n, p in paths.items() if p == "cert" and n not in managed]
        key = [n for n, p in paths.items() if p == "key" and n not in managed]
        # The canary is what an identity team picks as its pilot: colleagues who answer prompts, on devices
        # that stay on the network.
        pilot = {d.name for d in fleet.devices if _cooperative(d)}
        canary = [n for n in cert if n in pilot][:2] + [n for n in key if n in pilot][:2]
        rest_cert = [n for n in cert if n not in canary]
        by_gpo = [n for n in paths if n in managed]
        rest = [n for n in paths if n not in canary and n not in rest_cert and n not in managed]
        books = folder / "playbooks"
        books.mkdir()
        lab_groups = {"cloud_trust_group": CLOUD_TRUST_GROUP, "cert_trust_group": HELLO_GPO_GROUP}
        waves = [
            ("canary", canary, _demo_playbook(books, "to-cloud-kerberos"), len(canary), 0),
            ("wave-1-cert", rest_cert, _demo_playbook(books, "cert-trust-to-cloud-kerberos"), 0, 10),
            ("wave-2-gpo", by_gpo, _demo_playbook(books, "ad-group-to-cloud-kerberos", lab_groups), 0, 10),
            ("wave-3-key", rest, _demo_playbook(books, "key-trust-to-cloud-kerberos"), 0, 10),
        ]
        results = []
        for name, members, playbook, canary_size, batch in waves:
            if not members:
                continue
            request = WaveRequest(
                inventory=inventory_path,
                playbook=str(playbook),
                wave=name,
                devices=tuple(members),
                canary=canary_size,
                batch_size=batch or len(members),
                concurrency=8,
                max_fail_percent=25.0,
                change_ticket="CHG-DEMO-0001",
                entra_kerberos=entra,
            )
            plan = plan_wave(store, request, credentials, runtime.clock)
            result = run_with_progress([plan.runner])[0]
            results.append(result)
            if result.state == "halted":
                break
        code = recap(results)
        anchor_audit_head(store)  # into every wave row and the log, before the report copies it too
        report = folder / "report.html"
        write_report(store, "html", report)
        console.print(f"HTML report: {report.resolve()}", markup=False, highlight=False)
        console.print(f"store: {folder / 'migrator.db'}  logs: {folder / 'logs'}", markup=False, highlight=False)
    finally:
        runtime.stop()
    if serve:
        with Store.open(folder, read_only=True) as reader:
            serve_store(
                reader,
                str(folder),
                listen=Listen("127.0.0.1", serve_port),
                token=None,
                log_dir=folder / "logs",
                free_port_if_taken=True,
            )
    raise typer.Exit(EXIT_OK if code == EXIT_OK else EXIT_FAILED)


def _cooperative(device: Device) -> bool:
    return (
        device.dc_reachable
        and not device.vpn_only
        and bool(device.users)
        and all(
            u.behaviour.compliance == "prompt" and not u.privileged and u.has_prt and device.session_of(u) is not None
            for u in device.users
        )
    )
