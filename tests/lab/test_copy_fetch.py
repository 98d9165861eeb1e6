"""pypsrp's Client.copy and Client.fetch, unmodified, against a running lab: bytes in and out, byte for byte."""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from pypsrp.client import Client
from pypsrp.exceptions import WinRMError

from migrator.inventory import load_inventory
from migrator.lab.fleet import generate_fleet, parse_mix
from migrator.lab.model import Device
from migrator.lab.runtime import LabPorts, LabRuntime, read_lab_secrets
from tests.loopback import free_addresses

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

PORTS = LabPorts(http=0, https=0)  # free ports, chosen when the lab starts
# Every byte value, in an order that is not periodic: 300 KB spans several PSRP input fragments.
PAYLOAD = bytes((index * 7 + index // 256) % 256 for index in range(300 * 1024))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LabRuntime, Client]]:
    fleet = generate_fleet(1, 5, parse_mix("key=100,cert=0,cloud=0,none=0"))
    fleet.devices[0].address = free_addresses(1)[0]
    work = tmp_path_factory.mktemp("copy-fetch")
    runtime = LabRuntime(fleet, work / "lab", speed=600.0, ports=PORTS)
    runtime.start()
    try:
        inventory_path = work / "lab" / "inventory.yaml"
        runtime.write_inventory(inventory_path)
        inventory = load_inventory(inventory_path)
        secrets = read_lab_secrets(inventory_path)
        device = inventory.devices[0]
        client = Client(
            device.address,
            port=inventory.connection(device).port,
            username=secrets["MIGRATOR_USERNAME"],
            password=secrets["MIGRATOR_PASSWORD"],
            auth="ntlm",
            cert_validation=str(inventory.connection(device).ca_bundle),
        )
        yield runtime, client
    finally:
        runtime.stop()


def _device(runtime: LabRuntime) -> Device:
    return runtime.fleet.devices[0]


def _copy(client: Client, source: Path, destination: str, expand: bool = False) -> str:
    # copy.ps1 cannot raise the lab host's input memory limit by reflection and writes one warning, which the
    # client re-raises as a Python warning with the record's text.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = client.copy(str(source), destination, expand_variables=expand)
    assert len(caught) == 1 and "Failed to disable MaximumAllowedMemory" in str(caught[0].message)
    return result


def test_copy_then_fetch_is_byte_identical(lab: tuple[LabRuntime, Client], tmp_path: Path) -> None:
    """A 300 KB file with every byte value goes in through copy.ps1 and comes back identical through fetch.ps1."""
    runtime, client = lab
    # The client sends the file in chunks of this size, one per PSRP input fragment: several of them here.
    chunk = int((client.wsman.max_payload_size - 82) / 4 * 3)
    assert len(PAYLOAD) > 2 * chunk
    source = tmp_path / "payload.bin"
    source.write_bytes(PAYLOAD)
    remote = "C:\\ProgramData\\payload.bin"
    assert _copy(client, source, remote) == remote
    stored = _device(runtime).files[remote.casefold()]
    assert stored.raw() == PAYLOAD and stored.size == len(PAYLOAD)
    back = tmp_path / "back.bin"
    client.fetch(remote, str(back))
    assert back.read_bytes() == PAYLOAD
    assert hashlib.sha1(back.read_bytes()).hexdigest() == hashlib.sha1(PAYLOAD).hexdigest()


def test_copy_leaves_no_temp_file(lab: tuple[LabRuntime, Client], tmp_path: Path) -> None:
    """The temp file copy.ps1 writes under the admin's TEMP is moved to the destination, not left behind."""
    runtime, client = lab
    source = tmp_path / "small.txt"
    source.write_bytes(b"hello\r\n")
    _copy(client, source, "C:\\ProgramData\\small.txt")
    temp = "c:\\users\\migrator-admin\\appdata\\local\\temp\\"
    assert not [key for key in _device(runtime).files if key.startswith(temp)]
    assert _device(runtime).files["c:\\programdata\\small.txt"].content == "hello\r\n"


def test_copy_expands_environment_variables(lab: tuple[LabRuntime, Client], tmp_path: Path) -> None:
    """With expand_variables the device expands %ProgramData% in the destination and returns the full path."""
    runtime, client = lab
    source = tmp_path / "script.ps1"
    source.write_text("'copied'\r\n")
    result = _copy(client, source, "%ProgramData%\\script.ps1", expand=True)
    assert result == "C:\\ProgramData\\script.ps1"
    assert _device(runtime).files["c:\\programdata\\script.ps1"].content == "'copied'\r\n"


def test_copy_replaces_an_existing_file(lab: tuple[LabRuntime, Client], tmp_path: Path) -> None:
    """Copying over a file replaces it (copy.ps1 deletes the destination before the move)."""
    _runtime, client = lab
    source = tmp_path / "v.txt"
    for text in (b"first", b"second"):
        source.write_bytes(text)
        _copy(client, source, "C:\\ProgramData\\v.txt")
    back = tmp_path / "v.back"
    client.fetch("C:\\ProgramData\\v.txt", str(back))
    assert back.read_bytes() == b"second"


def test_fetch_of_a_text_file_gives_its_utf8_bytes(lab: tuple[LabRuntime, Client], tmp_path: Path) -> None:
    """A file written as text on the device (Set-Content) is fetched as the lab stores text: UTF-8."""
    _runtime, client = lab
    _output, streams, had_errors = client.execute_ps("Set-Content -Path C:\\ProgramData\\note.txt -Value 'caf\u00e9'")
    assert not had_errors, [str(e) for e in streams.error]
    back = tmp_path / "note.txt"
    client.fetch("C:\\ProgramData\\note.txt", str(back))
    assert back.read_bytes() == "caf\u00e9\r\n".encode()


def test_fetch_of_a_missing_file_fails_with_the_script_message(lab: tuple[LabRuntime, Client], tmp_path: Path) -> None:
    """fetch.ps1 throws for a path that does not exist; the client raises WinRMError with that message."""
    _runtime, client = lab
    with pytest.raises(WinRMError) as caught:
        client.fetch("C:\\ProgramData\\nope.bin", str(tmp_path / "nope.bin"))
    assert str(caught.value) == (
        "Failed to fetch file C:\\ProgramData\\nope.bin: The path at 'C:\\ProgramData\\nope.bin' does not exist"
    )
    assert not (tmp_path / "nope.bin").exists()


def test_fetch_of_a_directory_fails(lab: tuple[LabRuntime, Client], tmp_path: Path) -> None:
    """fetch.ps1 refuses a folder with its own message."""
    _runtime, client = lab
    with pytest.raises(WinRMError, match="The path at 'C:\\\\ProgramData' is a directory, src must be a file"):
        client.fetch("C:\\ProgramData", str(tmp_path / "dir"))


def test_copy_into_a_missing_folder_fails(lab: tuple[LabRuntime, Client], tmp_path: Path) -> None:
    """File.Move into a folder that does not exist fails as on Windows, and the temp file is cleaned up."""
    runtime, client = lab
    source = tmp_path / "x.bin"
    source.write_bytes(b"x")
    with pytest.raises(WinRMError, match="Could not find a part of the path"):
        _copy(client, source, "C:\\NoSuchFolder\\x.bin")
    temp = "c:\\users\\migrator-admin\\appdata\\local\\temp\\"
    assert not [key for key in _device(runtime).files if key.startswith(temp)]
