"""`migrator demo` end to end on a small fleet: waves run, every eligible device ends migrated or parked."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from migrator.cli import app
from migrator.cli.demo import DEMO_PORTS
from tests.loopback import listening
from tests.web.conftest import fetch

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

DEMO_FIRST_ADDRESS = "127.30.0.1"  # the demo's first device


def test_demo_migrates_a_small_fleet(tmp_path: Path) -> None:
    """The demo exits 0, writes the HTML report, and the store shows no failed device and a verified audit log.

    Another lab holds the demo's default ports on its first address (as a second demo or a test lab may): the
    demo listens on free ports instead and still runs."""
    args = ["demo", "--devices", "12", "--seed", "3", "--speed", "20000", "--state", str(tmp_path)]
    with listening(DEMO_FIRST_ADDRESS, DEMO_PORTS[0]), listening(DEMO_FIRST_ADDRESS, DEMO_PORTS[1]):
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"ports {DEMO_PORTS[0]}/{DEMO_PORTS[1]} are taken" in result.output
    inventory = yaml.safe_load((tmp_path / "demo" / "lab" / "inventory.yaml").read_text(encoding="utf-8"))
    assert inventory["defaults"]["port"] != DEMO_PORTS[1]
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


def test_demo_serve_keeps_the_dashboard_of_its_store_up(tmp_path: Path) -> None:
    """``demo --serve``: after the waves it prints the dashboard's URL (``--serve-port 0``: a free port), the waves
    page lists the demo's waves read from its store, and Ctrl-C stops it with the demo's own exit code."""
    command = [sys.executable, "-m", "migrator", "demo", "--devices", "8", "--seed", "3", "--speed", "20000"]
    child = subprocess.Popen(
        [*command, "--state", str(tmp_path), "--serve", "--serve-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    seen: list[str] = []
    try:
        assert child.stdout is not None
        for line in child.stdout:
            seen.append(line)
            found = re.match(r"dashboard: (http://127\.0\.0\.1:\d+/)", line)
            if found:
                break
        else:
            pytest.fail("the demo ended without a dashboard URL:\n" + "".join(seen))
        status, body, _ = fetch(found.group(1))
        assert status == 200, body
        waves = json.loads(
            subprocess.run(
                [sys.executable, "-m", "migrator", "status", "--state", str(tmp_path / "demo"), "--json"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )["waves"]
        assert waves and all(wave["name"] in body for wave in waves)
    finally:
        child.send_signal(signal.SIGINT)
        output = child.communicate(timeout=60)[0]
    assert child.returncode == 0, "".join(seen) + output
