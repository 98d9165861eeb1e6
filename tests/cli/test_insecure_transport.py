"""TLS certificate verification off: only by `ca_bundle: insecure-skip-verify`, and then said on every command
that connects, in the log, in the wave's settings (and audit log) and in every report."""

from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from migrator.cli import app
from migrator.engine.service import RealClock, WaveRequest, plan_wave
from migrator.errors import ConfigurationError
from migrator.inventory import load_inventory
from migrator.lab.fleet import generate_fleet, parse_mix
from migrator.lab.runtime import LabPorts, LabRuntime
from migrator.remote.credentials import load_credentials
from migrator.remote.psrp import wsman_options
from migrator.remote.tls import INSECURE_TRANSPORT, InsecureSetting, announce, insecure_devices, tls_verify
from migrator.store import Store
from tests.loopback import free_addresses

ENV = {"MIGRATOR_USERNAME": "LAB\\migrator-admin", "MIGRATOR_PASSWORD": "not-used-here"}
runner = CliRunner()


def _inventory(tmp_path: Path, defaults: str, device_extra: str = "") -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(
        f"defaults: {{{defaults}}}\n"
        "devices:\n"
        f"  - {{name: PC-1, address: 127.0.0.1{device_extra}}}\n"
        "  - {name: PC-2, address: 127.0.0.2, ca_bundle: corp-ca.pem}\n"
    )
    return path


@pytest.mark.parametrize(
    ("defaults", "device_extra", "field"),
    [
        ("cert_validation: false", "", "defaults.cert_validation"),
        ("", ", cert_validation: false", "devices[0].cert_validation"),
        ("ca_bundle: 'false'", "", "defaults.ca_bundle"),
        ("", ", ca_bundle: 'off'", "devices[0].ca_bundle"),
        ("", ", ca_bundle: none", "devices[0].ca_bundle"),
    ],
)
@pytest.mark.parametrize("command", ["run", "plan", "probe"])
def test_verification_off_without_the_marker_is_refused_saying_what_to_write(
    tmp_path: Path, defaults: str, device_extra: str, field: str, command: str
) -> None:
    """`cert_validation: false` or a `ca_bundle` of false/off/none exits 2 naming the file and field, says to
    write `ca_bundle: insecure-skip-verify`, connects to nothing and records nothing."""
    inventory = _inventory(tmp_path, defaults, device_extra)
    args = [command, "-i", str(inventory)]
    if command == "run":
        args += ["--state", str(tmp_path / "state"), "--yes"]
    result = runner.invoke(app, args, env=ENV)
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())  # Rich wraps long lines
    assert f"{inventory}: {field}" in said
    assert "write `ca_bundle: insecure-skip-verify`" in said
    assert not (tmp_path / "state").exists() or Store.open(tmp_path / "state").list_waves() == []


@pytest.mark.parametrize("value", ["false", "no", "true"])
def test_a_yes_no_ca_bundle_is_refused_at_its_line_saying_what_to_write(tmp_path: Path, value: str) -> None:
    """A YAML boolean where a CA bundle goes (`ca_bundle: false`, as other tools turn verification off) is
    refused at its line and field with the marker to write, not with a bare type error."""
    inventory = _inventory(tmp_path, "", f", ca_bundle: {value}")
    result = runner.invoke(app, ["run", "-i", str(inventory), "--state", str(tmp_path / "state"), "--yes"], env=ENV)
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert f"{inventory}, line 3, column" in said and "devices[0].ca_bundle" in said
    assert "write `ca_bundle: insecure-skip-verify`" in said
    assert not (tmp_path / "state").exists()


def test_the_marker_turns_verification_off_for_those_devices_only(tmp_path: Path) -> None:
    """The client libraries get verify=False for marked devices; a CA bundle or the system CAs elsewhere; a
    connection with cert_validation false that skipped the check is refused at the adapter."""
    inventory = load_inventory(_inventory(tmp_path, "ca_bundle: insecure-skip-verify"))
    one, two = inventory.devices
    assert insecure_devices(inventory) == ["PC-1"]
    credentials = load_credentials(None, environ=ENV)
    assert wsman_options(one, inventory.connection(one), credentials)["cert_validation"] is False
    assert tls_verify("PC-2", inventory.connection(two)) == str(tmp_path / "corp-ca.pem")
    plain = inventory.connection(two).model_copy(update={"ca_bundle": None})
    assert tls_verify("PC-2", plain) is True
    with pytest.raises(ConfigurationError, match="insecure-skip-verify"):
        tls_verify("PC-2", plain.model_copy(update={"cert_validation": False}))
    with pytest.raises(InsecureSetting):
        insecure_devices(load_inventory(_inventory(tmp_path, "cert_validation: false")))


def test_announce_warns_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    """The warning names the devices and goes to the log with the command and wave."""
    said: list[str] = []
    with caplog.at_level(logging.WARNING, logger="migrator.remote.tls"):
        announce(["PC-1"], command="run", wave="w1", say=said.append)
        announce([], command="run", wave="w1", say=said.append)
    assert len(said) == 1 and "TLS certificate verification is OFF for 1 device(s) (PC-1)" in said[0]
    record = caplog.records[-1]
    assert "tls verification off" in record.getMessage() and "PC-1" in record.getMessage()


def test_a_wave_records_its_insecure_devices_and_reports_show_them(tmp_path: Path) -> None:
    """A wave over marked devices records them in its settings and audit log once; HTML, CSV and JSON reports say
    so for that wave and those devices."""
    inventory = _inventory(tmp_path, "", ", ca_bundle: insecure-skip-verify")
    credentials = load_credentials(None, environ=ENV)
    state = tmp_path / "state"
    with Store.open(state) as store:
        plan = plan_wave(store, WaveRequest(inventory=inventory, wave="w1"), credentials, RealClock())
        assert plan.insecure == ("PC-1",)
        assert store.get_wave("w1").settings[INSECURE_TRANSPORT] == ["PC-1"]
        plan_wave(store, WaveRequest(inventory=inventory, wave="w1"), credentials, RealClock())  # again: once
        audited = [e for e in store.audit_entries() if e.action == "tls verification off"]
        assert [e.after for e in audited] == [{INSECURE_TRANSPORT: ["PC-1"]}]
    doc = json.loads(runner.invoke(app, ["report", "--state", str(state), "--format", "json"]).stdout)
    assert doc["waves"][0]["insecure_transport"] == ["PC-1"]
    rows = list(
        csv.DictReader(io.StringIO(runner.invoke(app, ["report", "--state", str(state), "--format", "csv"]).stdout))
    )
    assert {r["device"]: r["insecure_transport"] for r in rows} == {"PC-1": "true", "PC-2": "false"}
    html = runner.invoke(app, ["report", "--state", str(state)]).stdout
    assert "INSECURE TRANSPORT: wave w1 reached 1 device(s)" in html
    status = runner.invoke(app, ["status", "--state", str(state)])
    assert "INSECURE TRANSPORT: wave w1 reached 1 device(s)" in " ".join(status.stdout.split())
    assert json.loads(runner.invoke(app, ["status", "--state", str(state), "--json"]).stdout)["waves"][0][
        "insecure_transport"
    ] == ["PC-1"]


def test_probe_against_the_lab_warns_and_connects_without_verification(tmp_path: Path) -> None:
    """With the marker, the real clients reach a lab device whose CA is not trusted, and the command warns."""
    fleet = generate_fleet(1, 5, parse_mix("key=100"))
    fleet.devices[0].address = free_addresses(1)[0]
    runtime = LabRuntime(fleet, tmp_path / "lab", speed=60.0, ports=LabPorts(http=0, https=0))
    runtime.start()
    try:
        written = tmp_path / "lab" / "inventory.yaml"
        runtime.write_inventory(written)
        text = written.read_text()
        assert "lab-ca.pem" in text
        written.write_text(text.replace("lab-ca.pem", "insecure-skip-verify"))
        result = runner.invoke(
            app, ["probe", "-i", str(written), "--secrets", str(tmp_path / "lab" / "lab-secrets.env"), "--json"]
        )
    finally:
        runtime.stop()
    assert result.exit_code == 0, result.output
    assert "TLS certificate verification is OFF for 1 device(s)" in " ".join(result.stderr.split())
    assert json.loads(result.stdout)["devices"][0]["error"] is None


def test_run_warns_logs_and_records_before_it_asks_to_start(tmp_path: Path) -> None:
    """`run` says verification is off before the confirmation (declined: exit 3, an operator's answer), writes it
    to the JSON log, and the wave it planned records the device."""
    inventory = _inventory(tmp_path, "ca_bundle: insecure-skip-verify")
    state = tmp_path / "state"
    result = runner.invoke(
        app, ["run", "-i", str(inventory), "--state", str(state), "--wave", "w1"], env=ENV, input="n\n"
    )
    assert result.exit_code == 3, result.output
    assert "TLS certificate verification is OFF for 1 device(s) (PC-1)" in " ".join(result.stderr.split())
    logged = [json.loads(line) for line in (state / "logs" / "migrator.jsonl").read_text().splitlines()]
    warning = next(r for r in logged if r["event"] == "tls verification off")
    assert (warning["command"], warning["wave"], warning["devices"], warning["level"]) == (
        "run",
        "w1",
        ["PC-1"],
        "warning",
    )
    with Store.open(state, read_only=True) as store:
        assert store.get_wave("w1").settings[INSECURE_TRANSPORT] == ["PC-1"]
