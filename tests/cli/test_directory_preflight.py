"""`migrator probe` and `migrator run` read each domain's directory once, before any device: Entra Kerberos
from the directory (no --entra-kerberos needed), privileged users parked at preflight with the group named."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from migrator.cli import app
from migrator.lab.fleet import generate_fleet, parse_mix
from migrator.lab.model import Fleet
from migrator.lab.runtime import LabPorts, LabRuntime
from migrator.lab.truth import fleet_truth
from tests.loopback import free_addresses

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

EXPECTED_PATH = {"cert": "cert", "cloud": "cloud", "key": "key", "none": "key"}
TIER0 = "Tier0 Operators"


def _fleet(count: int) -> Fleet:
    fleet = generate_fleet(count, 21, parse_mix("key=40,cert=30,cloud=10,none=20"))
    for device, address in zip(fleet.devices, free_addresses(count), strict=True):
        device.address = address
    return fleet


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LabRuntime, Path]]:
    """A lab of 24 devices in three domains (fabrikam.local has no Entra Kerberos), DCs on free addresses."""
    fleet = _fleet(24)
    assert {d.entra_kerberos for d in fleet.domains} == {True, False}
    work = tmp_path_factory.mktemp("lab")
    dc_addresses = dict(zip((d.dns_name for d in fleet.domains), free_addresses(len(fleet.domains)), strict=True))
    runtime = LabRuntime(
        fleet, work, speed=600.0, ports=LabPorts(http=0, https=0, ldap=0, ldaps=0), dc_addresses=dc_addresses
    )
    runtime.start()
    inventory = work / "inventory.yaml"
    runtime.write_inventory(inventory)
    try:
        yield runtime, inventory
    finally:
        runtime.stop()


def test_probe_names_every_path_as_the_lab_truth_without_entra_kerberos(running: tuple[LabRuntime, Path]) -> None:
    """No --entra-kerberos: each device's path is what the lab's truth says, fabrikam's devices ineligible for
    want of the Entra Kerberos object, which the directory told."""
    runtime, inventory = running
    secrets = inventory.parent / "lab-secrets.env"
    result = CliRunner().invoke(app, ["probe", "-i", str(inventory), "--json", "--secrets", str(secrets)])
    assert result.exit_code == 0, result.output
    assert "WARNING" not in result.stderr
    outcomes = {d["name"]: d for d in json.loads(result.stdout)["devices"]}
    truth = {d["name"]: d for d in fleet_truth(runtime.lab)["devices"]}
    assert set(outcomes) == set(truth)
    missing_entra = 0
    for name, expected in truth.items():
        outcome = outcomes[name]
        reasons = outcome["reasons"]
        assert not any("not confirmed" in r for r in reasons), (name, reasons)
        blocked = (
            expected["join_type"] not in ("hybrid", "entra")
            or not expected["supports_cloud_trust"]
            or not expected["entra_kerberos"]
        )
        if blocked:
            assert outcome["path"] == "ineligible", (name, reasons)
        elif expected["tpm"]:  # without a usable TPM the path depends on RequireSecurityDevice (as test_probe)
            assert outcome["path"] == EXPECTED_PATH[expected["policy"]["effective"]], (name, reasons)
        if expected["join_type"] in ("hybrid", "entra") and not expected["entra_kerberos"]:
            missing_entra += 1
            assert any("no Microsoft Entra Kerberos server object" in r for r in reasons), (name, reasons)
    assert missing_entra, "the fleet has devices in the domain without Entra Kerberos"
    # The admin's word still wins over the directory.
    override = CliRunner().invoke(
        app,
        ["probe", "-i", str(inventory), "--json", "--secrets", str(secrets), "--entra-kerberos", "fabrikam.local=yes"],
    )
    paths = {d["name"]: d["reasons"] for d in json.loads(override.stdout)["devices"]}
    assert not any("server object in domain fabrikam" in r for reasons in paths.values() for r in reasons)


def test_probe_warns_and_keeps_the_old_behaviour_when_the_directory_is_unreachable(
    running: tuple[LabRuntime, Path], tmp_path: Path
) -> None:
    """A DC nobody listens on: a warning naming the domain and the error, and the path decided as before."""
    runtime, inventory = running
    data = yaml.safe_load(inventory.read_text())
    (nobody,) = free_addresses(1)
    for domain in data["lab"]["domains"]:
        domain["dc_address"] = nobody
    broken = inventory.parent / "broken-inventory.yaml"
    broken.write_text(yaml.safe_dump(data, sort_keys=False))
    device = next(d for d in runtime.fleet.devices if d.join_type == "hybrid" and d.domain == "fabrikam.local")
    secrets = inventory.parent / "lab-secrets.env"
    result = CliRunner().invoke(
        app, ["probe", "-i", str(broken), "--limit", device.name, "--json", "--secrets", str(secrets)]
    )
    assert result.exit_code == 0, result.output
    assert "WARNING: directory of fabrikam.local" in result.stderr and "DirectoryUnreachable" in result.stderr
    (outcome,) = json.loads(result.stdout)["devices"]
    assert any("not confirmed" in r for r in outcome["reasons"]), outcome["reasons"]
