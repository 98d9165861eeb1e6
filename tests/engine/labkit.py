"""An in-process lab on a virtual clock for driver tests: real pypsrp against the lab's WS-Man listeners.

The lab listens on a free HTTP port on random loopback addresses (tests/loopback.py), so runs of the suite at once
do not meet. Time only moves when a test (or a script's Start-Sleep) advances the :class:`VirtualClock`, so days
of user behaviour pass in milliseconds."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import yaml
from pydantic import SecretStr

from migrator.engine.device import VisitResult, visit
from migrator.facts import PathSettings
from migrator.inventory import Connection, DeviceEntry
from migrator.lab.clock import VirtualClock
from migrator.lab.fleet import generate_fleet, parse_mix
from migrator.lab.graph import GraphServer
from migrator.lab.model import Device, Fleet
from migrator.lab.runtime import new_lab
from migrator.lab.server import Account, BackgroundLab, LabServer
from migrator.lab.windows import ADMIN_SID, Lab
from migrator.playbook import Playbook, load_playbook
from migrator.remote.credentials import Credentials
from migrator.remote.retry import RetryPolicy
from migrator.store import Store, content_hash
from tests.loopback import free_addresses

FAST_RETRY = RetryPolicy(attempts=2, initial_wait=0.01, max_wait=0.02, jitter=0.0, total_seconds=5)
# What the admin knows about the lab's domains (Set-AzureADKerberosServer was run in CORP and EMEA only).
ENTRA_KERBEROS = PathSettings(
    entra_kerberos={
        "corp.contoso.com": True,
        "CORP": True,
        "emea.corp.contoso.com": True,
        "EMEA": True,
        "fabrikam.local": False,
        "FABRIKAM": False,
    }
)


def make_fleet(devices: int, seed: int, mix: str) -> Fleet:
    """A generated fleet on random loopback addresses."""
    fleet = generate_fleet(devices, seed, parse_mix(mix))
    for device, address in zip(fleet.devices, free_addresses(devices), strict=True):
        device.address = address
    return fleet


def cooperative(fleet: Fleet) -> Fleet:
    """Every person complies within minutes at the console, holds a PRT and is not privileged; no VPN flaps."""
    for device in fleet.devices:
        device.vpn_only = False
        device.sessions.clear()
        for user in device.users:
            user.behaviour.compliance = "prompt"
            user.behaviour.delay_seconds = 300
            user.behaviour.prefers_rdp = False
            user.behaviour.away_until = None
            user.privileged = False
            user.has_prt = True
    return fleet


@dataclass
class LabKit:
    """A running lab plus what the driver needs to reach it."""

    fleet: Fleet
    clock: VirtualClock
    lab: Lab
    server: LabServer
    background: BackgroundLab
    password: str
    results: dict[str, VisitResult] = field(default_factory=dict)

    @property
    def http_port(self) -> int:
        """The free port the lab chose when it started (every device listens on it)."""
        assert self.server.http_port
        return self.server.http_port

    @property
    def credentials(self) -> Credentials:
        admin = self.fleet.admin
        return Credentials(f"{admin.domain}\\{admin.username}", SecretStr(self.password))

    def connection(self) -> Connection:
        return Connection(transport="psrp", scheme="http", port=self.http_port, auth="ntlm", read_timeout=60)

    def entry(self, name: str) -> DeviceEntry:
        device = self.device(name)
        return DeviceEntry(name=device.name, address=device.address, domain=device.domain)

    def device(self, name: str) -> Device:
        return self.lab.device(name)

    def now(self) -> datetime:
        return self.clock.now()


@contextmanager
def running_lab(fleet: Fleet, work: Path) -> Iterator[LabKit]:
    clock = VirtualClock(fleet.clock)
    lab = new_lab(fleet, clock)
    password = secrets.token_urlsafe(18)
    server = LabServer(lab.executor, work, http_port=0, https_port=0)
    admin = fleet.admin
    account = Account(username=admin.username, password=password, sid=ADMIN_SID, domain=admin.domain)
    for device in fleet.devices:
        server.add_device(device.name, device.address, [account], computer_name=device.name, hostname=device.fqdn)
    background = BackgroundLab(server)
    background.start()
    lab.start_simulation()
    try:
        yield LabKit(fleet, clock, lab, server, background, password)
    finally:
        background.stop()


def open_store(path: Path, kit: LabKit, playbook: Playbook, devices: list[str], wave: str = "wave-1") -> Store:
    store = Store.open(path, now=kit.now, synchronous="NORMAL")
    if wave not in {w.name for w in store.list_waves()}:
        store.create_wave(
            wave,
            playbook_name=playbook.name,
            playbook_hash=content_hash(playbook.model_dump_json()),
            change_ticket="CHG-0042",
        )
    store.enroll(wave, devices)
    return store


def sign_everyone_in(kit: LabKit) -> None:
    for device in kit.fleet.devices:
        for user in device.users:
            kit.lab.sign_in(device, user)


def visit_device(kit: LabKit, store: Store, playbook: Playbook, name: str, **kwargs: object) -> VisitResult:
    result = visit(
        name,
        store=store,
        playbook=playbook,
        entry=kit.entry(name),
        connection=kit.connection(),
        credentials=kit.credentials,
        clock=kit.now,
        path_settings=ENTRA_KERBEROS,
        retry=FAST_RETRY,
        sleep=lambda _s: None,
        **kwargs,  # type: ignore[arg-type]
    )
    kit.results[name] = result
    return result


def drive(
    kit: LabKit,
    store: Store,
    playbook: Playbook,
    names: list[str],
    *,
    rounds: int = 400,
    between: Callable[[LabKit, int], None] | None = None,
    halt: bool = False,
    **kwargs: object,
) -> dict[str, VisitResult]:
    """Visit every due device, advance virtual time to the next due one, until none is due."""
    due: dict[str, datetime | None] = {name: kit.now() for name in names}
    for number in range(rounds):
        if between is not None:
            between(kit, number)
        now = kit.now()
        for name in names:
            when = due[name]
            if when is not None and when <= now:
                due[name] = visit_device(kit, store, playbook, name, **kwargs).next_due
        upcoming = [w for w in due.values() if w is not None]
        if not upcoming:
            return kit.results
        kit.clock.advance_to(max(min(upcoming), kit.now()))
    if halt:  # a halted wave: stop wherever the devices are
        return kit.results
    raise AssertionError(f"devices still due after {rounds} rounds: {[n for n, w in due.items() if w]}")


def playbook(name: str = "to-cloud-kerberos") -> Playbook:
    return load_playbook(name)


def entra_inventory(path: Path, kit: LabKit, devices: list[Device], server: GraphServer) -> Path:
    """An inventory of ``devices`` (PSRP over HTTP with NTLM, as the kit serves them) whose ``entra:`` section names
    the lab tenant ``server`` serves; written to ``path``."""
    tenant = server.tenant
    path.write_text(
        yaml.safe_dump(
            {
                "defaults": {"transport": "psrp", "scheme": "http", "port": kit.http_port, "auth": "ntlm"},
                "devices": [{"name": d.name, "address": d.address, "domain": d.domain} for d in devices],
                "entra": {
                    "tenant_id": tenant.tenant_id,
                    "client_id": server.client_id,
                    "authority": server.authority,
                    "graph_url": server.url,
                    "ca_bundle": str(server.ca_bundle),
                },
            }
        )
    )
    return path
