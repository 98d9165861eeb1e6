"""`migrator inventory from-ad`: devices from the lab DC's computer objects, grouped by OU, loadable, no overwrite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from migrator.cli import app
from migrator.cli.inventory_commands import ou_group
from migrator.inventory import load_inventory
from migrator.lab.fleet import generate_fleet, parse_mix
from tests.directory.conftest import write_inventory
from tests.lab.directory.conftest import (
    ADMIN,
    CORP,
    CORP_DN,
    PASSWORD,
    RunningDirectory,
    start_directory,
    stop_directory,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def dcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDirectory]:
    """The lab's three DCs from a seeded 30-device fleet, on free loopback addresses and ports."""
    fleet = generate_fleet(30, 21, parse_mix("key=50,cert=40,cloud=5,none=5"))
    running, loop, thread = start_directory(fleet, tmp_path_factory.mktemp("dc"))
    try:
        yield running
    finally:
        stop_directory(running, loop, thread)


@pytest.fixture
def secrets(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "secrets.env"
    path.write_text(f"MIGRATOR_USERNAME=LAB\\{ADMIN}\nMIGRATOR_PASSWORD={PASSWORD}\n")
    yield path


def test_from_ad_writes_an_inventory_the_loader_accepts(dcs: RunningDirectory, tmp_path: Path, secrets: Path) -> None:
    """Every joined corp computer, dNSHostName as address, one group per site OU; no DC, no AzureADKerberos; the
    file loads with the product's loader and reads the directory it came from."""
    source = write_inventory(dcs, tmp_path)
    out = tmp_path / "from-ad.yaml"
    args = ["inventory", "from-ad", "--domain", CORP, "--out", str(out), "-i", str(source.path)]
    result = CliRunner().invoke(app, [*args, "--secrets", str(secrets)])
    assert result.exit_code == 0, result.output
    inventory = load_inventory(out)
    fleet = {d.name: d for d in dcs.fleet.devices if d.domain == CORP}
    assert {d.name for d in inventory.devices} == set(fleet)
    for entry in inventory.devices:
        assert entry.address == fleet[entry.name].fqdn.lower() == entry.fqdn
        assert entry.domain == CORP
        (group,) = entry.groups
        assert group.startswith("Workstations-"), group
    admin = dcs.admin(CORP)
    admin.search(
        f"OU=Workstations,{CORP_DN}", "(objectClass=organizationalUnit)", search_scope="LEVEL", attributes=["ou"]
    )
    site_ous = {str(e.ou) for e in admin.entries}
    admin.unbind()
    assert {g.removeprefix("Workstations-") for g in inventory.groups()} <= site_ous
    assert inventory.data.directory is not None
    assert "LDAP requests" in result.stderr


def test_from_ad_with_base_and_filter(dcs: RunningDirectory, tmp_path: Path, secrets: Path) -> None:
    """--base narrows to one OU, --filter is ANDed with the computer filter."""
    source = write_inventory(dcs, tmp_path)
    out = tmp_path / "paris.yaml"
    base = f"OU=Paris,OU=Workstations,{CORP_DN}"
    admin = dcs.admin(CORP)
    admin.search(base, "(objectClass=computer)", attributes=["cn"])
    names = sorted(str(e.cn) for e in admin.entries)
    admin.unbind()
    assert names
    name = names[0]
    args = ["inventory", "from-ad", "--domain", CORP, "--out", str(out), "-i", str(source.path), "--base", base]
    result = CliRunner().invoke(app, [*args, "--filter", f"(cn={name})", "--secrets", str(secrets)])
    assert result.exit_code == 0, result.output
    assert [d.name for d in load_inventory(out).devices] == [name]


def test_from_ad_refuses_to_overwrite_without_force(dcs: RunningDirectory, tmp_path: Path, secrets: Path) -> None:
    """An existing --out is left as it was (exit 2) unless --force."""
    source = write_inventory(dcs, tmp_path)
    out = tmp_path / "kept.yaml"
    out.write_text("# mine\n")
    args = ["inventory", "from-ad", "--domain", CORP, "--out", str(out), "-i", str(source.path)]
    refused = CliRunner().invoke(app, [*args, "--secrets", str(secrets)])
    assert refused.exit_code == 2 and "--force" in refused.output
    assert out.read_text() == "# mine\n"
    forced = CliRunner().invoke(app, [*args, "--secrets", str(secrets), "--force"])
    assert forced.exit_code == 0, forced.output
    assert load_inventory(out).devices


def test_from_ad_unreachable_dc_is_a_clear_error(dcs: RunningDirectory, tmp_path: Path, secrets: Path) -> None:
    """Nobody on the port: exit 2 with the domain and what to do, no traceback, no file."""
    source = write_inventory(dcs, tmp_path)
    out = tmp_path / "none.yaml"
    args = ["inventory", "from-ad", "--domain", CORP, "--out", str(out), "-i", str(source.path), "--port", "9"]
    result = CliRunner().invoke(app, [*args, "--secrets", str(secrets)])
    assert result.exit_code == 2
    assert "directory of corp.contoso.com" in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_ou_group_names() -> None:
    """OU path from the top down, joined by '-', in the inventory's group syntax."""
    assert ou_group(f"OU=Paris,OU=Workstations,{CORP_DN}", CORP) == "Workstations-Paris"
    assert ou_group(f"OU=Site A\\, North,OU=Work Stations,{CORP_DN}", CORP) == "Work_Stations-Site_A_North"
    assert ou_group(CORP_DN, CORP) == "corp"
