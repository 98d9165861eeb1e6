"""A running lab end to end: listeners, inventory, secrets file, control endpoint, real clients."""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import winrm
from pypsrp.client import Client
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan
from winrm.protocol import Protocol

from migrator.errors import InputError
from migrator.inventory import load_inventory
from migrator.lab.control import ControlClient
from migrator.lab.fleet import generate_fleet, parse_mix
from migrator.lab.runtime import LabPorts, LabRuntime, read_lab_secrets
from tests.loopback import free_addresses

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

PORTS = LabPorts(http=0, https=0)  # free ports, chosen when the lab starts


def _fleet(addresses: list[str] | None = None, seed: int = 3):  # type: ignore[no-untyped-def]
    fleet = generate_fleet(4, seed, parse_mix("key=50,cert=50,cloud=0,none=0"))
    for device, address in zip(fleet.devices, addresses or free_addresses(4), strict=True):
        device.address = address
    return fleet


def _https_port(runtime: LabRuntime) -> int:
    assert runtime.server.https_port
    return runtime.server.https_port


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[LabRuntime, Path]]:
    runtime = LabRuntime(_fleet(), tmp_path / "lab", speed=600.0, ports=PORTS)
    runtime.start()
    inventory = tmp_path / "lab" / "inventory.yaml"
    runtime.write_inventory(inventory)
    try:
        yield runtime, inventory
    finally:
        runtime.stop()


def test_inventory_and_secrets_are_written(running: tuple[LabRuntime, Path]) -> None:
    """The inventory validates, points at the lab CA, and the secrets file is private and complete."""
    runtime, path = running
    inventory = load_inventory(path)
    assert [d.name for d in inventory.devices] == [d.name for d in runtime.fleet.devices]
    connection = inventory.connection(inventory.devices[0])
    assert connection.ca_bundle is not None and connection.ca_bundle.exists()
    assert connection.port == _https_port(runtime) and connection.scheme == "https"
    secrets_file = path.parent / "lab-secrets.env"
    assert stat.S_IMODE(os.stat(secrets_file).st_mode) == 0o600
    secrets = read_lab_secrets(path)
    assert secrets["MIGRATOR_USERNAME"] == "LAB\\migrator-admin"
    assert secrets["MIGRATOR_PASSWORD"] == runtime.password
    assert runtime.password not in path.read_text()


def test_pypsrp_and_pywinrm_reach_a_lab_device(running: tuple[LabRuntime, Path]) -> None:
    """Unmodified clients authenticate with the lab secrets and run PowerShell on a device."""
    runtime, path = running
    inventory = load_inventory(path)
    device = inventory.devices[0]
    secrets = read_lab_secrets(path)
    ca = str(inventory.connection(device).ca_bundle)
    wsman = WSMan(
        device.address,
        port=_https_port(runtime),
        username=secrets["MIGRATOR_USERNAME"],
        password=secrets["MIGRATOR_PASSWORD"],
        auth="ntlm",
        cert_validation=ca,
        no_proxy=True,
    )
    with RunspacePool(wsman) as pool:
        ps = PowerShell(pool)
        ps.add_script('param($Name) "$env:COMPUTERNAME/$Name"').add_parameters({"Name": "x'; y"})
        assert ps.invoke() == [f"{device.name}/x'; y"]
    session = winrm.Session(
        f"https://{device.address}:{_https_port(runtime)}/wsman",
        auth=(secrets["MIGRATOR_USERNAME"], secrets["MIGRATOR_PASSWORD"]),
        transport="ntlm",
        server_cert_validation="validate",
        ca_trust_path=ca,
    )
    result = session.run_cmd("hostname")
    assert result.status_code == 0 and result.std_out.decode().strip() == device.name


def test_control_endpoint_inspects_and_acts(running: tuple[LabRuntime, Path]) -> None:
    """inspect returns the truth contract; user actions and DC changes take effect; a bad token is refused."""
    runtime, path = running
    secrets = read_lab_secrets(path)
    inventory = load_inventory(path)
    assert inventory.lab is not None
    client = ControlClient(inventory.lab.control, secrets["MIGRATOR_LAB_TOKEN"])
    name = runtime.fleet.devices[0].name
    truth = client.devices([name])
    device = truth["devices"][0]
    contract = {"name", "join_type", "os_build", "dc_reachable", "entra_kerberos", "policy", "users", "events"}
    assert set(device) >= contract
    assert set(device["policy"]) >= {"gpo", "mdm", "effective"}
    user = device["users"][0]
    assert set(user) >= {"name", "signed_in", "container", "container_deletions", "provisionings"}
    client.user(name, user["name"], "sign-out")
    assert client.devices([name])["devices"][0]["users"][0]["signed_in"] is False
    client.user(name, user["name"], "sign-in")
    assert client.devices([name])["devices"][0]["users"][0]["signed_in"] is True
    client.dc(name, False)
    assert client.devices([name])["devices"][0]["dc_reachable"] is False
    with pytest.raises(InputError, match="HTTP 401"):
        ControlClient(inventory.lab.control, "wrong").devices()


def test_a_taken_port_is_a_clear_error(running: tuple[LabRuntime, Path], tmp_path: Path) -> None:
    """A second lab on the same addresses and ports fails with a message, not a traceback."""
    first, _ = running
    taken = LabPorts(http=first.server.http_port, https=first.server.https_port)
    second = LabRuntime(_fleet([d.address for d in first.fleet.devices]), tmp_path / "second", ports=taken)
    with pytest.raises(InputError, match="cannot listen"):
        second.start()


def test_a_taken_port_is_replaced_when_allowed(running: tuple[LabRuntime, Path], tmp_path: Path) -> None:
    """free_if_taken: the second lab listens on other free ports and its inventory says which."""
    first, _ = running
    taken = LabPorts(http=first.server.http_port, https=first.server.https_port, free_if_taken=True)
    second = LabRuntime(_fleet([d.address for d in first.fleet.devices]), tmp_path / "second", ports=taken)
    second.start()
    try:
        inventory = tmp_path / "second" / "inventory.yaml"
        second.write_inventory(inventory)
        port = load_inventory(inventory).connection(load_inventory(inventory).devices[0]).port
        assert port == second.server.https_port and port not in (0, first.server.https_port)
        assert second.server.http_port not in (0, first.server.http_port)
    finally:
        second.stop()


def _secrets_and_ca(path: Path) -> tuple[dict[str, str], str, str]:
    inventory = load_inventory(path)
    device = inventory.devices[0]
    return read_lab_secrets(path), str(inventory.connection(device).ca_bundle), device.address


def test_pypsrp_client_execute_ps(running: tuple[LabRuntime, Path]) -> None:
    """pypsrp's Client.execute_ps (Invoke-Expression | Out-String -Stream) works against a lab device."""
    runtime, path = running
    secrets, ca, address = _secrets_and_ca(path)
    client = Client(
        address,
        port=_https_port(runtime),
        username=secrets["MIGRATOR_USERNAME"],
        password=secrets["MIGRATOR_PASSWORD"],
        auth="ntlm",
        cert_validation=ca,
    )
    output, streams, had_errors = client.execute_ps("$env:COMPUTERNAME; 1 + 1")
    assert not had_errors, [str(e) for e in streams.error]
    assert output.split() == [runtime.fleet.devices[0].name, "2"]


def test_winrs_stdin_reaches_powershell(running: tuple[LabRuntime, Path]) -> None:
    """A WinRS command gets what the client Sends on stdin: the bootstrap that reads [Console]::In works."""

    runtime, path = running
    secrets, ca, address = _secrets_and_ca(path)
    protocol = Protocol(
        endpoint=f"https://{address}:{_https_port(runtime)}/wsman",
        transport="ntlm",
        username=secrets["MIGRATOR_USERNAME"],
        password=secrets["MIGRATOR_PASSWORD"],
        server_cert_validation="validate",
        ca_trust_path=ca,
    )
    bootstrap = "& ([scriptblock]::Create([Console]::In.ReadToEnd()))"
    encoded = base64.b64encode(bootstrap.encode("utf-16-le")).decode()
    shell_id = protocol.open_shell(codepage=65001)
    try:
        command_id = protocol.run_command(shell_id, "powershell.exe", ["-NoProfile", "-EncodedCommand", encoded])
        protocol.send_command_input(shell_id, command_id, b"$x = 20\r\n$x + 22\r\n", end=True)
        stdout, stderr, code = protocol.get_command_output(shell_id, command_id)
        protocol.cleanup_command(shell_id, command_id)
    finally:
        protocol.close_shell(shell_id)
    assert code == 0 and stdout.decode().strip() == "42", stderr
