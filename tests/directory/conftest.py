"""The lab's domain controllers, and an inventory that says where they are, for the product's directory tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from migrator.inventory import Inventory, load_inventory
from migrator.lab.fleet import generate_fleet, parse_mix
from migrator.remote.credentials import Credentials
from tests.lab.directory.conftest import ADMIN, PASSWORD, RunningDirectory, start_directory, stop_directory

CREDENTIALS = Credentials(f"LAB\\{ADMIN}", SecretStr(PASSWORD))


def write_inventory(running: RunningDirectory, folder: Path, directory: dict[str, Any] | None = None) -> Inventory:
    """An inventory of the fleet's devices whose ``lab: domains:`` names the running DCs (as `lab up` writes)."""
    domains = []
    for name, dc in running.server.controllers.items():
        domains.append(
            {
                "name": dc.directory.domain.dns_name,
                "realm": name.upper(),
                "dc_address": dc.address,
                "dc_hostname": dc.controller.dns_host_name.lower(),
                "ldap_port": dc.ldap_port,
                "ldaps_port": dc.ldaps_port,
                "kdc_port": None,
            }
        )
    devices = [
        {"name": d.name, "address": d.address, **({"domain": d.domain} if d.domain else {})}
        for d in running.fleet.devices
    ]
    data: dict[str, Any] = {
        "defaults": {"ca_bundle": str(running.ca_path)},
        "devices": devices,
        "lab": {"control": "http://127.0.0.1:9", "domains": domains},
    }
    if directory is not None:
        data["directory"] = directory
    path = folder / "inventory.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_inventory(path)


@pytest.fixture(scope="module")
def dcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDirectory]:
    """Three lab domains (fabrikam.local without Entra Kerberos) from a seeded 60-device fleet."""
    fleet = generate_fleet(60, 21, parse_mix("key=50,cert=40,cloud=5,none=5"))
    running, loop, thread = start_directory(fleet, tmp_path_factory.mktemp("dc"))
    try:
        yield running
    finally:
        stop_directory(running, loop, thread)
