"""`migrator lab up` as a user runs it: ready line, clean stop on SIGINT with the fleet saved, clear errors."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from migrator.cli import app
from migrator.lab.fleet import generate_fleet, parse_mix
from migrator.lab.fleetfile import load_fleet, save_fleet
from migrator.lab.runtime import LabPorts, LabRuntime
from tests.loopback import free_addresses, listening
from tests.output import read_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

REPO = Path(__file__).resolve().parents[2]
FREE_PORTS = ["--http-port", "0", "--https-port", "0"]


def _fleet_file(tmp_path: Path) -> Path:
    fleet = generate_fleet(3, 5, parse_mix("key=50,cert=50,cloud=0,none=0"))
    for device, address in zip(fleet.devices, free_addresses(3), strict=True):
        device.address = address
    return save_fleet(fleet, tmp_path / "fleet.json")


def _lab_up(args: list[str], cwd: Path | None = None) -> tuple[subprocess.Popen[str], str]:
    """Start `migrator lab up` (this checkout's) and read its output up to the ready line."""
    command = [sys.executable, "-m", "migrator", "lab", "up", "--speed", "3600", *args]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    return proc, read_until(proc, "ready")


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    return proc.communicate(timeout=60)[0]


def test_lab_up_prints_ready_and_saves_the_fleet_on_sigint(tmp_path: Path) -> None:
    """The foreground lab prints 'ready' once listening; SIGINT stops it and saves the state to the fleet file."""
    fleet_path = _fleet_file(tmp_path)
    inventory = tmp_path / "lab" / "inventory.yaml"
    proc, _ = _lab_up(["--fleet", str(fleet_path), "--inventory", str(inventory), *FREE_PORTS])
    assert inventory.exists() and (inventory.parent / "lab-secrets.env").exists()
    before = load_fleet(fleet_path).clock
    rest = _stop(proc)
    assert proc.returncode == 0, rest
    assert "saved" in rest
    assert load_fleet(fleet_path).clock > before  # the virtual time reached was kept


def test_sigint_in_an_empty_folder_saves_to_a_new_state_folder(tmp_path: Path) -> None:
    """From a fresh clone (no state/lab/), Ctrl-C saves the generated fleet to state/lab/fleet.json, no traceback."""
    empty = tmp_path / "clone"
    empty.mkdir()
    inventory = tmp_path / "elsewhere" / "inventory.yaml"  # so nothing else creates state/lab/
    proc, _ = _lab_up(["--devices", "3", "--inventory", str(inventory), *FREE_PORTS], cwd=empty)
    rest = _stop(proc)
    assert proc.returncode == 0, rest
    assert "Traceback" not in rest and "Error" not in rest, rest
    assert "saved" in rest
    assert len(load_fleet(empty / "state" / "lab" / "fleet.json").devices) == 3


def test_lab_up_moves_off_default_ports_that_are_taken(tmp_path: Path) -> None:
    """Without port options, lab up listens on 5985/5986 when free, else on free ports that the inventory names."""
    fleet_path = _fleet_file(tmp_path)
    first = load_fleet(fleet_path).devices[0].address
    inventory = tmp_path / "lab" / "inventory.yaml"
    with listening(first, 5985), listening(first, 5986):
        proc, ready = _lab_up(["--fleet", str(fleet_path), "--inventory", str(inventory)])
        try:
            port = yaml.safe_load(inventory.read_text(encoding="utf-8"))["defaults"]["port"]
            assert port != 5986 and f"/{port}," in ready
            with socket.create_connection((first, port), timeout=5):
                pass
        finally:
            rest = _stop(proc)
    assert proc.returncode == 0, rest


def test_bad_fleet_file_is_a_clear_error(tmp_path: Path) -> None:
    """A broken fleet file exits 2 naming the file and line."""
    bad = tmp_path / "fleet.json"
    bad.write_text('{"schema_version": 1, "devices": [\n')
    result = CliRunner().invoke(app, ["lab", "up", "--fleet", str(bad), "--inventory", str(tmp_path / "i.yaml")])
    assert result.exit_code == 2
    assert "fleet.json" in result.output


def test_bad_fault_profile_is_a_clear_error(tmp_path: Path) -> None:
    """A fault profile with an unknown kind exits 2 naming the file and the field."""
    fleet_path = _fleet_file(tmp_path)
    faults = tmp_path / "faults.yaml"
    faults.write_text("faults:\n  - kind: meteor\n")
    result = CliRunner().invoke(
        app, ["lab", "up", "--fleet", str(fleet_path), "--faults", str(faults), "--inventory", str(tmp_path / "i.yaml")]
    )
    assert result.exit_code == 2
    assert "faults.yaml" in result.output and "kind" in result.output


def test_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    """When the addresses and the ports asked for are in use, lab up exits 2 with a message, not a traceback."""
    fleet_path = _fleet_file(tmp_path)
    first = LabRuntime(load_fleet(fleet_path), tmp_path / "first", ports=LabPorts(http=0, https=0))
    first.start()
    try:
        result = CliRunner().invoke(
            app,
            [
                "lab", "up", "--fleet", str(fleet_path), "--inventory", str(tmp_path / "second" / "i.yaml"),
                "--http-port", str(first.server.http_port), "--https-port", str(first.server.https_port),
            ],
        )  # fmt: skip
    finally:
        first.stop()
    assert result.exit_code == 2
    assert "cannot listen" in result.output
