"""`migrator lab up` as a user runs it: ready line, clean stop on SIGINT with the fleet saved, clear errors."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from migrator.cli import app
from migrator.lab.fleet import generate_fleet, parse_mix
from migrator.lab.fleetfile import load_fleet, save_fleet
from migrator.lab.runtime import LabPorts, LabRuntime

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

HTTP, HTTPS = 29985, 29986


def _fleet_file(tmp_path: Path, octet: int) -> Path:
    fleet = generate_fleet(3, 5, parse_mix("key=50,cert=50,cloud=0,none=0"))
    for index, device in enumerate(fleet.devices, start=1):
        device.address = f"127.{octet}.0.{index}"
    return save_fleet(fleet, tmp_path / "fleet.json")


def test_lab_up_prints_ready_and_saves_the_fleet_on_sigint(tmp_path: Path) -> None:
    """The foreground lab prints 'ready' once listening; SIGINT stops it and saves the state to the fleet file."""
    fleet_path = _fleet_file(tmp_path, 97)
    inventory = tmp_path / "lab" / "inventory.yaml"
    command = [
        sys.executable, "-m", "migrator", "lab", "up", "--fleet", str(fleet_path), "--inventory", str(inventory),
        "--http-port", str(HTTP), "--https-port", str(HTTPS), "--speed", "3600",
    ]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "ready" in line:
            break
    assert any("ready" in line for line in seen), seen
    assert inventory.exists() and (inventory.parent / "lab-secrets.env").exists()
    before = load_fleet(fleet_path).clock
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, rest
    assert "saved" in rest
    assert load_fleet(fleet_path).clock > before  # the virtual time reached was kept


def test_bad_fleet_file_is_a_clear_error(tmp_path: Path) -> None:
    """A broken fleet file exits 2 naming the file and line."""
    bad = tmp_path / "fleet.json"
    bad.write_text('{"schema_version": 1, "devices": [\n')
    result = CliRunner().invoke(app, ["lab", "up", "--fleet", str(bad), "--inventory", str(tmp_path / "i.yaml")])
    assert result.exit_code == 2
    assert "fleet.json" in result.output


def test_bad_fault_profile_is_a_clear_error(tmp_path: Path) -> None:
    """A fault profile with an unknown kind exits 2 naming the file and the field."""
    fleet_path = _fleet_file(tmp_path, 98)
    faults = tmp_path / "faults.yaml"
    faults.write_text("faults:\n  - kind: meteor\n")
    result = CliRunner().invoke(
        app, ["lab", "up", "--fleet", str(fleet_path), "--faults", str(faults), "--inventory", str(tmp_path / "i.yaml")]
    )
    assert result.exit_code == 2
    assert "faults.yaml" in result.output and "kind" in result.output


def test_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    """When the addresses and ports are in use, lab up exits 2 with a message instead of a traceback."""
    fleet_path = _fleet_file(tmp_path, 99)
    first = LabRuntime(load_fleet(fleet_path), tmp_path / "first", ports=LabPorts(http=HTTP, https=HTTPS))
    first.start()
    try:
        result = CliRunner().invoke(
            app,
            [
                "lab", "up", "--fleet", str(fleet_path), "--inventory", str(tmp_path / "second" / "i.yaml"),
                "--http-port", str(HTTP), "--https-port", str(HTTPS),
            ],
        )  # fmt: skip
    finally:
        first.stop()
    assert result.exit_code == 2
    assert "cannot listen" in result.output
