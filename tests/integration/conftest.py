"""An in-process lab for integration tests: real pypsrp/pywinrm clients against the lab's WS-Man listeners.

Ports 27985 (HTTP) / 27986 (HTTPS) and device addresses 127.93.x.y are this suite's own, clear of other tests.
The fleet holds every kind of device (hybrid, Entra, domain-only, workgroup; key, cert, cloud and no Hello
policy; old builds; a hybrid device without a DC; a domain without Entra Kerberos)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from migrator.errors import InputError
from migrator.inventory import Connection, DeviceEntry, Inventory, load_inventory
from migrator.lab.fleet import generate_fleet, parse_mix
from migrator.lab.model import Device
from migrator.lab.runtime import LabPorts, LabRuntime
from migrator.remote import open_transport
from migrator.remote.credentials import Credentials, load_credentials
from migrator.remote.retry import RetryPolicy
from migrator.remote.transport import Transport

PORTS = LabPorts(http=27985, https=27986)
FAST_RETRY = RetryPolicy(attempts=4, initial_wait=0.05, max_wait=0.2, jitter=0.05, total_seconds=30)


def lab_fleet(devices: int = 40, seed: int = 21, block: int = 0):  # type: ignore[no-untyped-def]
    """The suite's fleet; ``block`` picks the third octet, so two runs of the suite at once do not collide."""
    fleet = generate_fleet(devices, seed, parse_mix("key=40,cert=30,cloud=10,none=20"))
    for index, device in enumerate(fleet.devices, start=1):
        device.address = f"127.93.{block}.{index + 1}"
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

    def first(self, predicate) -> Device:  # type: ignore[no-untyped-def]
        return next(d for d in self.runtime.fleet.devices if predicate(d))


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHandle]:
    work = tmp_path_factory.mktemp("lab")
    first = os.getpid() % 200
    for attempt in range(8):
        runtime = LabRuntime(lab_fleet(block=(first + attempt * 7) % 250), work, speed=60.0, ports=PORTS)
        try:
            runtime.start()
            break
        except InputError:  # another run of this suite holds these addresses: take the next block
            if attempt == 7:
                raise
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
