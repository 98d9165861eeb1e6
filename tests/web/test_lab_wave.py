"""The dashboard beside a real wave: `migrator run` (a child process) migrates a lab fleet over PSRP while the
waves page is open in Debian's chromium; the page follows without a reload; the wave stops at its approval gate;
an approval with a wrong token is refused and `resume` stays at the gate; the approval with the token, the
operator's name and a reason lets `resume` finish the wave."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from migrator.engine.wavestore import APPROVE
from migrator.errors import ExitCode
from migrator.lab.fleet import generate_fleet, parse_mix
from migrator.lab.runtime import LabPorts, LabRuntime
from migrator.store import Store
from tests.loopback import free_addresses
from tests.web.conftest import TOKEN, dashboard_at

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

WAVE = "lab-wave"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[Path, Path, Path]]:
    """A running lab of four devices already on cloud trust (each visit is short); its inventory and secrets."""
    fleet = generate_fleet(4, 5, parse_mix("cloud=100"))
    for device, address in zip(fleet.devices, free_addresses(4), strict=True):
        device.address = address
    runtime = LabRuntime(fleet, tmp_path / "lab", speed=600.0, ports=LabPorts(http=0, https=0))
    runtime.start()
    try:
        inventory = tmp_path / "lab" / "inventory.yaml"
        runtime.write_inventory(inventory)
        yield inventory, tmp_path / "lab" / "lab-secrets.env", tmp_path / "state"
    finally:
        runtime.stop()


def _migrator(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "migrator", *args]
    return subprocess.run(command, check=False, capture_output=True, text=True, timeout=180)


def test_the_waves_page_follows_a_lab_wave_and_an_approval_unblocks_resume(
    page: Any, lab: tuple[Path, Path, Path]
) -> None:
    inventory, secrets, state = lab
    Store.open(state).close()  # an empty store: the dashboard starts before the wave exists
    with dashboard_at(state, token=True) as served:
        page.goto(served.at("/"))
        assert "No wave yet" in page.locator("#live").inner_text()
        page.wait_for_selector("body[data-live=open]")
        page.evaluate("window.notReloaded = true")

        options = ["-i", str(inventory), "--secrets", str(secrets), "--state", str(state), "--yes", "--no-wait"]
        options += ["--wave", WAVE, "--change-ticket", "CHG-LAB-1", "--approval", "--batch-size", "2"]
        run = subprocess.Popen(
            [sys.executable, "-m", "migrator", "run", *options],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        # The wave appears on the open page while `run` works, then stops at its gate: no reload.
        page.wait_for_selector(f"section[data-wave='{WAVE}']", timeout=60_000)
        out, _ = run.communicate(timeout=180)
        assert run.returncode == ExitCode.OPERATOR, out
        card = page.locator(f"section[data-wave='{WAVE}']")
        card.locator("[data-wave-state]", has_text="awaiting_approval").wait_for()
        assert "already_cloud 2" in card.locator(".legend").inner_text()
        assert "waiting now: batch 2 of 2" in card.inner_text()
        assert page.evaluate("window.notReloaded") is True
        assert int(page.locator("body").get_attribute("data-live-updates") or 0) >= 1

        # A wrong token: refused, nothing recorded, and `resume` stays at the gate.
        page.goto(served.at(f"/waves/{WAVE}"))
        _approve(page, "wrong-token-0123456789")
        assert "The operator token is wrong" in page.locator("#live").inner_text()
        resumed = _migrator("resume", "--state", str(state), "--secrets", str(secrets), "--no-wait")
        assert resumed.returncode == ExitCode.OPERATOR, resumed.stdout + resumed.stderr

        # The token, a name and a reason: recorded with who and why, and `resume` finishes the wave.
        page.goto(served.at(f"/waves/{WAVE}"))
        _approve(page, TOKEN)
        page.wait_for_url(f"**/waves/{WAVE}?done=approved")
        assert "next batch gate is approved" in page.locator("#live").inner_text()
        resumed = _migrator("resume", "--state", str(state), "--secrets", str(secrets), "--no-wait")
        assert resumed.returncode == ExitCode.OK, resumed.stdout + resumed.stderr
        page.goto(served.at("/"))
        card = page.locator(f"section[data-wave='{WAVE}']")
        assert card.locator("[data-wave-state]").inner_text() == "completed"
        assert "already_cloud 4" in card.locator(".legend").inner_text()
    with Store.open(state, read_only=True) as store:
        approvals = store.audit_entries(action=APPROVE)
    assert [(a.actor, a.after["reason"]) for a in approvals if isinstance(a.after, dict)] == [
        ("Grace Hopper (dashboard)", "CAB-42: batch 1 clean")
    ]


def _approve(page: Any, token: str) -> None:
    page.get_by_text("Approve the next batch").click()
    page.get_by_label("Your name").first.fill("Grace Hopper")
    page.get_by_label("Reason (recorded in the audit log)").first.fill("CAB-42: batch 1 clean")
    page.get_by_label("Operator token").first.fill(token)
    page.get_by_role("button", name="Approve batch 2").click()
    page.wait_for_load_state()
