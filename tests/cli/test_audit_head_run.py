"""A real `run` against a lab device leaves the audit head in every place `audit verify` compares: the store's
own head, every wave row, the JSON log, the report, and the line it prints for the change ticket."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from migrator.cli import app
from migrator.lab.fleet import generate_fleet, parse_mix
from migrator.lab.runtime import LabPorts, LabRuntime
from migrator.store import AuditHead, Store
from tests.loopback import free_addresses

runner = CliRunner()


def test_run_records_and_prints_the_audit_head(tmp_path: Path) -> None:
    """After `run`, the head is printed for the ticket, written to the wave rows and the log, and verifies."""
    fleet = generate_fleet(1, 3, parse_mix("cloud=100"))
    fleet.devices[0].address = free_addresses(1)[0]
    runtime = LabRuntime(fleet, tmp_path / "lab", speed=600.0, ports=LabPorts(http=0, https=0))
    runtime.start()
    state = tmp_path / "state"
    try:
        inventory = tmp_path / "lab" / "inventory.yaml"
        runtime.write_inventory(inventory)
        secrets = tmp_path / "lab" / "lab-secrets.env"
        args = ["run", "-i", str(inventory), "--secrets", str(secrets), "--state", str(state), "--yes", "--no-wait"]
        result = runner.invoke(app, args)
    finally:
        runtime.stop()
    assert result.exit_code == 0, result.output
    printed = [line for line in result.stdout.splitlines() if line.startswith("audit head (paste into the change")]
    anchor = AuditHead.parse(printed[-1].rsplit(" ", 1)[-1])
    with Store.open(state, read_only=True) as store:
        assert store.audit_head() == anchor == store.verify_audit().head
        assert {w.audit_head for w in store.list_waves()} == {anchor}
    logged = [json.loads(line) for line in (state / "logs" / "migrator.jsonl").read_text().splitlines()]
    assert [r["anchor"] for r in logged if r["event"] == "audit head"] == [anchor.anchor]
    verified = runner.invoke(app, ["audit", "verify", "--state", str(state), "--anchor", anchor.anchor, "--json"])
    payload = json.loads(verified.stdout)
    assert verified.exit_code == 0 and payload["ok"] and payload["heads_checked"] == 4  # store, wave, log, anchor
