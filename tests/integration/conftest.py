"""An in-process lab for integration tests: real pypsrp/pywinrm clients against the lab's WS-Man listeners.

The lab listens on free ports on random loopback addresses (tests/loopback.py), so runs of the suite at once do not
meet. The fleet holds every kind of device (hybrid, Entra, domain-only, workgroup; key, cert, cloud and no Hello
policy; old builds; a hybrid device without a DC; a domain without Entra Kerberos)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from migrator.inventory import Connection, DeviceEntry, Inventory, load_inventory
from migrator.lab.fleet import generate_fleet, parse_mix
from migrator.lab.model import Device
from migrator.lab.runtime import LabPorts, LabRuntime
from migrator.remote import open_transport
from migrator.remote.credentials import Credentials, load_credentials
from migrator.remote.retry import RetryPolicy
from migrator.remote.transport import Transport
from tests.loopback import free_addresses

PORTS = LabPorts(http=0, https=0)  # free ports, chosen when the lab starts
FAST_RETRY = RetryPolicy(attempts=4, initial_wait=0.05, max_wait=0.2, jitter=0.05, total_seconds=30)


def lab_fleet(devices: int = 40, seed: int = 21):  # type: ignore[no-untyped-def]
    """The suite's fleet, on random loopback addresses."""
    fleet = generate_fleet(devices, seed, parse_mix("key=40,cert=30,cloud=10,none=20"))
    for device, address in zip(fleet.devices, free_addresses(devices), strict=True):
        device.address = address
    # A hybrid device with no line of sight to a DC, whatever the generator drew.
    hybrid = [d for d in fleet.devices if d.join_type == "hybrid" and not d.vpn_only]
    hybrid[-1].dc_reachable = False
    return fleet


@dataclass
class LabHandle:
    runtime: LabRuntime
    inventory: Inventory
    credentials: Credentials

    def device(self, name: str) -> Device:
        return self.runtime.lab.device(name)

    def entry(self, name: str) -> DeviceEntry:
        entry = self.inventory.device(name)
        assert entry is not None
        return entry

    def connection(self, name: str, **overrides: object) -> Connection:
        return self.inventory.connection(self.entry(name)).model_copy(update=overrides)

    def transport(self, name: str, **overrides: object) -> Transport:
        return open_transport(self.entry(name), self.connection(name, **overrides), self.credentials)

    @property
    def http_port(self) -> int:
        """The lab's HTTP port (the inventory names the HTTPS one)."""
        assert self.runtime.server.http_port
        return self.runtime.server.http_port

    def first(self, predicate) -> Device:  # type: ignore[no-untyped-def]
        return next(d for d in self.runtime.fleet.devices if predicate(d))


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHandle]:
    work = tmp_path_factory.mktemp("lab")
    runtime = LabRuntime(lab_fleet(), work, speed=60.0, ports=PORTS)
    runtime.start()
    try:
        path = work / "inventory.yaml"
        runtime.write_inventory(path)
        yield LabHandle(runtime, load_inventory(path), load_credentials(work / "lab-secrets.env", environ={}))
    finally:
        runtime.stop()


@pytest.fixture
def faults(lab: LabHandle) -> Iterator[LabHandle]:
    """The lab with an empty fault plan, cleared again after the test."""
    lab.runtime.server.faults.clear()
    try:
        yield lab
    finally:
        downed = {name for name, kind, _ in lab.runtime.server.faults.fired if kind in ("offline", "reboot")}
        lab.runtime.server.faults.clear()
        lab.runtime.server.faults.fired.clear()
        for name in sorted(downed):  # an offline fault keeps a device down until it is brought back
            lab.runtime.background.call(lab.runtime.server.bring_online(name))
