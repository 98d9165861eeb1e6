"""`migrator demo` end to end on a small fleet: waves run, every eligible device ends migrated or parked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from migrator.cli import app

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def test_demo_migrates_a_small_fleet(tmp_path: Path) -> None:
    """The demo exits 0, writes the HTML report, and the store shows no failed device and a verified audit log."""
    args = ["demo", "--devices", "12", "--seed", "3", "--speed", "20000", "--state", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "HTML report" in result.output
    demo = tmp_path / "demo"
    html = (demo / "report.html").read_text(encoding="utf-8")
    assert "<html" in html and "canary" in html
    status = CliRunner().invoke(app, ["status", "--state", str(demo), "--json"])
    assert status.exit_code == 0, status.output
    view = json.loads(status.stdout)
    states = view["counts"]
    assert states.get("failed", 0) == 0
    assert states.get("migrated", 0) >= 2
    assert set(states) <= {"migrated", "already_cloud", "ineligible", "stalled", "waiting_for_dc", "waiting_for_user"}
    audit = CliRunner().invoke(app, ["audit", "verify", "--state", str(demo)])
    assert audit.exit_code == 0, audit.output
