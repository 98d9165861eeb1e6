"""`migrator demo` end to end on a small fleet: waves run, every eligible device ends migrated or parked.

One `migrator demo --serve` run serves the module (:func:`demo`); its tests read its output, store and dashboard."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
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


class Demo:
    """The one `migrator demo --serve` run the module's tests share (a demo is the cost; every test reads it)."""

    def __init__(self, state: Path, child: subprocess.Popen[str], output: str, dashboard: str) -> None:
        self.state, self.child, self.output, self.dashboard = state, child, output, dashboard

    def stop(self) -> str:
        """Ctrl-C; the rest of the output (the demo's exit code is then ``child.returncode``)."""
        if self.child.poll() is None:
            self.child.send_signal(signal.SIGINT)
        return self.child.communicate(timeout=60)[0] or ""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """``demo --serve`` on 12 devices while another lab holds the demo's default ports on its first address (as a
    second demo or a test lab may), read up to the dashboard's URL (``--serve-port 0``: a free port)."""
    state = tmp_path_factory.mktemp("demo")
    command = [sys.executable, "-m", "migrator", "demo", "--devices", "12", "--seed", "3", "--speed", "20000"]
    seen: list[str] = []
    with listening(DEMO_FIRST_ADDRESS, DEMO_PORTS[0]), listening(DEMO_FIRST_ADDRESS, DEMO_PORTS[1]):
        child = subprocess.Popen(
            [*command, "--state", str(state), "--serve", "--serve-port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
        )
        try:
            assert child.stdout is not None
            for line in child.stdout:
                seen.append(line)
                found = re.match(r"dashboard: (http://127\.0\.0\.1:\d+/)", line)
                if found:
                    break
            else:
                pytest.fail("the demo ended without a dashboard URL:\n" + "".join(seen))
        except BaseException:
            child.kill()
            child.communicate()
            raise
    shared = Demo(state, child, "".join(seen), found.group(1))
    try:
        yield shared
    finally:
        shared.stop()


def test_demo_migrates_a_small_fleet(demo: Demo) -> None:
    """The demo's waves end, it writes the HTML report, and the store shows no failed device and a verified audit
    log; the default ports being taken, it listens on free ports instead and still runs."""
    assert f"ports {DEMO_PORTS[0]}/{DEMO_PORTS[1]} are taken" in demo.output
    inventory = yaml.safe_load((demo.state / "demo" / "lab" / "inventory.yaml").read_text(encoding="utf-8"))
    assert inventory["defaults"]["port"] != DEMO_PORTS[1]
    assert "HTML report" in demo.output
    html = (demo.state / "demo" / "report.html").read_text(encoding="utf-8")
    assert "<html" in html and "canary" in html
    status = CliRunner().invoke(app, ["status", "--state", str(demo.state / "demo"), "--json"])
    assert status.exit_code == 0, status.output
    view = json.loads(status.stdout)
    states = view["counts"]
    assert states.get("failed", 0) == 0
    assert states.get("migrated", 0) >= 2
    assert set(states) <= {"migrated", "already_cloud", "ineligible", "stalled", "waiting_for_dc", "waiting_for_user"}
    audit = CliRunner().invoke(app, ["audit", "verify", "--state", str(demo.state / "demo")])
    assert audit.exit_code == 0, audit.output


def test_demo_serve_keeps_the_dashboard_of_its_store_up(demo: Demo) -> None:
    """``demo --serve``: after the waves it prints the dashboard's URL, the waves page lists the demo's waves read
    from its store, and Ctrl-C stops it with the demo's own exit code (0: every eligible device migrated or
    parked for a documented reason)."""
    assert demo.child.poll() is None, demo.output
    status, body, _ = fetch(demo.dashboard)
    assert status == 200, body
    waves = json.loads(
        subprocess.run(
            [sys.executable, "-m", "migrator", "status", "--state", str(demo.state / "demo"), "--json"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )["waves"]
    assert waves and all(wave["name"] in body for wave in waves)
    rest = demo.stop()
    assert demo.child.returncode == 0, demo.output + rest
