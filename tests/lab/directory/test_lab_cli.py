"""`lab up` publishes the domain controllers in the inventory; `lab group` changes membership on the running lab."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import ldap3
import pytest
import yaml
from typer.testing import CliRunner

from migrator.cli import app
from migrator.inventory import load_inventory
from migrator.lab.directory.kdc import missing_tools
from migrator.lab.fleet import generate_fleet, parse_mix
from migrator.lab.fleetfile import save_fleet
from migrator.lab.runtime import LabPorts, LabRuntime, read_lab_secrets
from tests.loopback import free_addresses
from tests.output import read_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

REPO = Path(__file__).resolve().parents[3]
GROUP = "Hello Cloud Trust Computers"


def _fleet(count: int = 6):  # type: ignore[no-untyped-def]
    fleet = generate_fleet(count, 21, parse_mix("key=50,cert=40,cloud=5,none=5"))
    for device, address in zip(fleet.devices, free_addresses(count), strict=True):
        device.address = address
    return fleet


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[LabRuntime, Path]]:
    fleet = _fleet()
    dc_addresses = dict(zip((d.dns_name for d in fleet.domains), free_addresses(len(fleet.domains)), strict=True))
    runtime = LabRuntime(
        fleet,
        tmp_path / "lab",
        speed=600.0,
        ports=LabPorts(http=0, https=0, ldap=0, ldaps=0),
        dc_addresses=dc_addresses,
    )
    runtime.start()
    inventory = tmp_path / "lab" / "inventory.yaml"
    runtime.write_inventory(inventory)
    try:
        yield runtime, inventory
    finally:
        runtime.stop()


def test_the_inventory_names_each_domain_s_dc_and_each_device_s_fqdn(running: tuple[LabRuntime, Path]) -> None:
    """lab: domains: has name, realm, dc_address, ldap_port, ldaps_port, kdc_port (null: no KDC yet); the
    product's loader accepts it; the lab admin binds over NTLM at the address and port written there."""
    runtime, path = running
    inventory = load_inventory(path)
    assert inventory.lab is not None
    domains = {d.name: d for d in inventory.lab.domains}
    assert set(domains) == {d.dns_name for d in runtime.fleet.domains}
    corp = domains["corp.contoso.com"]
    assert corp.realm == "CORP.CONTOSO.COM" and corp.kdc_port is None
    assert corp.ldap_port and corp.ldaps_port
    for device, entry in zip(runtime.fleet.devices, inventory.devices, strict=True):
        assert entry.fqdn == device.fqdn
    secrets = read_lab_secrets(path)
    connection = ldap3.Connection(
        ldap3.Server(corp.dc_address, port=corp.ldap_port),
        user=secrets["MIGRATOR_USERNAME"],
        password=secrets["MIGRATOR_PASSWORD"],
        authentication=ldap3.NTLM,
    )
    assert connection.bind(), connection.result
    ca = path.parent / "lab-ca.pem"
    tls = ldap3.Tls(validate=2, ca_certs_file=str(ca))
    over_tls = ldap3.Connection(
        ldap3.Server(corp.dc_address, port=corp.ldaps_port, use_ssl=True, tls=tls),
        user=secrets["MIGRATOR_USERNAME"],
        password=secrets["MIGRATOR_PASSWORD"],
    )
    assert over_tls.bind(), over_tls.result
    connection.unbind()
    over_tls.unbind()


def _member_of(path: Path, computer: str) -> list[str]:
    inventory = load_inventory(path)
    assert inventory.lab is not None
    corp = next(d for d in inventory.lab.domains if d.name == "corp.contoso.com")
    secrets = read_lab_secrets(path)
    connection = ldap3.Connection(
        ldap3.Server(corp.dc_address, port=corp.ldap_port),
        user=secrets["MIGRATOR_USERNAME"],
        password=secrets["MIGRATOR_PASSWORD"],
        authentication=ldap3.NTLM,
        auto_bind=True,
    )
    connection.search("DC=corp,DC=contoso,DC=com", f"(sAMAccountName={computer}$)", attributes=["memberOf"])
    groups = [g.split(",")[0].removeprefix("CN=") for g in connection.entries[0].memberOf.values]
    connection.unbind()
    return groups


def test_lab_group_changes_membership_seen_over_ldap(running: tuple[LabRuntime, Path]) -> None:
    """`lab group corp.contoso.com add|remove GROUP PC-...` is visible in the next LDAP search; a duplicate add
    fails with AD's code and changes nothing."""
    runtime, path = running
    computer = next(d.name for d in runtime.fleet.devices if d.domain == "corp.contoso.com")
    runner = CliRunner()
    args = ["lab", "group", "corp.contoso.com", "add", GROUP, computer, "--inventory", str(path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert GROUP in _member_of(path, computer)
    again = runner.invoke(app, args)
    assert again.exit_code == 2
    assert "409" in again.output and "ENTRY_EXISTS" in again.output
    result = runner.invoke(app, ["lab", "group", "CORP", "remove", GROUP, computer, "--inventory", str(path)])
    assert result.exit_code == 0, result.output
    assert GROUP not in _member_of(path, computer)
    unknown = runner.invoke(app, ["lab", "group", "CORP", "add", "No Such Group", computer, "--inventory", str(path)])
    assert unknown.exit_code == 2 and "no group" in unknown.output


def test_lab_up_writes_the_domains_section(tmp_path: Path) -> None:
    """The real `migrator lab up` (free ports) writes lab: domains: and prints one line per DC."""
    fleet_path = save_fleet(_fleet(3), tmp_path / "fleet.json")
    inventory = tmp_path / "lab" / "inventory.yaml"
    ports = ["--http-port", "0", "--https-port", "0", "--ldap-port", "0", "--ldaps-port", "0"]
    command = [sys.executable, "-m", "migrator", "lab", "up", "--fleet", str(fleet_path), "--inventory", str(inventory)]
    proc = subprocess.Popen(
        [*command, *ports],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        text = read_until(proc, "domain fabrikam.local")
        assert "lab ready" in text and "domain corp.contoso.com: DC dc01.corp.contoso.com" in text, text
        data = yaml.safe_load(inventory.read_text())
        names = [d["name"] for d in data["lab"]["domains"]]
        assert names == ["corp.contoso.com", "emea.corp.contoso.com", "fabrikam.local"]
        assert all(d["ldap_port"] and d["ldaps_port"] for d in data["lab"]["domains"])
        # lab up runs the KDCs where MIT Kerberos is installed (tests/lab/test_kerberos.py checks both cases)
        kerberos = not missing_tools()
        assert all((d["kdc_port"] is not None) == kerberos for d in data["lab"]["domains"])
        assert all("fqdn" in d for d in data["devices"])
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    assert proc.returncode == 0


def test_nltest_names_the_dc_that_answers_ldap(running: tuple[LabRuntime, Path]) -> None:
    """On a running lab, a domain's DC address (what nltest /dsgetdc prints) is where its LDAP listener is."""
    runtime, path = running
    inventory = load_inventory(path)
    assert inventory.lab is not None
    written = {d.name: d.dc_address for d in inventory.lab.domains}
    assert {d.dns_name: d.dc_address for d in runtime.fleet.domains} == written
