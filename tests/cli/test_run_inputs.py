"""`migrator run` with bad input: a clear message naming what and where, exit 2, and nothing recorded."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from migrator.cli import app, wave_commands
from migrator.engine.service import RealClock, WaveRequest, plan_wave, resumable_waves
from migrator.engine.waves import WaveProgress, WaveResult
from migrator.remote.credentials import load_credentials
from migrator.store import Store

ENV = {"MIGRATOR_USERNAME": "LAB\\migrator-admin", "MIGRATOR_PASSWORD": "not-used-here"}
GOOD_DEVICES = "devices:\n  - {name: PC-1, address: 127.0.0.1, groups: [pilot]}\n"


def _run(tmp_path: Path, inventory: str, *extra: str, playbook: str | None = None) -> tuple[int, str]:
    inv = tmp_path / "inventory.yaml"
    inv.write_text(inventory)
    args = ["run", "-i", str(inv), "--state", str(tmp_path / "state"), "--yes", *extra]
    if playbook is not None:
        book = tmp_path / "playbook.yaml"
        book.write_text(playbook)
        args += ["--playbook", str(book)]
    result = CliRunner().invoke(app, args, env=ENV)
    return result.exit_code, result.output


def _nothing_recorded(tmp_path: Path) -> None:
    db = tmp_path / "state" / "migrator.db"
    if db.exists():
        assert Store.open(tmp_path / "state").list_waves() == []


@pytest.mark.parametrize(
    ("inventory", "extra", "playbook", "expected"),
    [
        ("devices:\n  - {name: PC-1, address: 127.0.0.1\n", (), None, "invalid YAML"),
        (GOOD_DEVICES, (), "name: p\npath: key\nsteps: [preflight, reboot_everything]\n", "unknown step"),
        (GOOD_DEVICES, ("--limit", "no-such-group"), None, "unknown group or device 'no-such-group'"),
        (GOOD_DEVICES + "  - {name: pc-1, address: 127.0.0.2}\n", (), None, "duplicate device name"),
        ("devices:\n  - {name: PC-1, address: '300.1.1.1'}\n", (), None, "devices[0].address"),
        (GOOD_DEVICES, ("--window", "whenever"), None, "change window"),
    ],
)
def test_bad_input_is_refused_before_anything_happens(
    tmp_path: Path, inventory: str, extra: tuple[str, ...], playbook: str | None, expected: str
) -> None:
    """Broken YAML, an unknown step, an unknown group, a duplicate device, a bad address, a bad window."""
    code, output = _run(tmp_path, inventory, *extra, playbook=playbook)
    assert code == 2, output
    assert expected in output
    _nothing_recorded(tmp_path)


def test_missing_credentials_are_a_clear_error(tmp_path: Path) -> None:
    """Without credentials (no env, no secrets file, no terminal) run stops with exit 2."""
    inv = tmp_path / "inventory.yaml"
    inv.write_text(GOOD_DEVICES)
    result = CliRunner().invoke(app, ["run", "-i", str(inv), "--state", str(tmp_path / "s"), "--yes"], env={})
    assert result.exit_code == 2 and "MIGRATOR_USERNAME" in result.output


def test_resume_pause_approve_without_a_store(tmp_path: Path) -> None:
    """Operator commands on a folder without a store say so and exit 2."""
    for args in (["resume"], ["pause", "--wave", "w"], ["approve", "--wave", "w"]):
        result = CliRunner().invoke(app, [*args, "--state", str(tmp_path / "none")], env=ENV)
        assert result.exit_code == 2 and "no store" in result.output


def _planned(tmp_path: Path, wave: str, limit: str) -> None:
    """A wave created as `migrator run` creates it (not run: no device is contacted)."""
    inv = tmp_path / "inventory.yaml"
    request = WaveRequest(inventory=inv, wave=wave, limit=limit)
    with Store.open(tmp_path / "state") as store:
        plan_wave(store, request, load_credentials(None, environ=ENV), RealClock())


TWO_DEVICES = GOOD_DEVICES + "  - {name: PC-2, address: 127.0.0.2, groups: [wave1]}\n"


def test_an_existing_wave_run_with_a_different_limit_is_refused_saying_why(tmp_path: Path) -> None:
    """`run --wave pilot --limit wave1` on a wave created with --limit pilot: exit 2, the option, both values and
    what to do instead; the wave and its devices are as they were."""
    (tmp_path / "inventory.yaml").write_text(TWO_DEVICES)
    _planned(tmp_path, "pilot", "pilot")
    code, output = _run(tmp_path, TWO_DEVICES, "--wave", "pilot", "--limit", "wave1")
    assert code == 2, output
    assert "--limit 'wave1' (the wave has 'pilot')" in " ".join(output.split()) and "migrator resume" in output
    with Store.open(tmp_path / "state") as store:
        assert [d.name for d in store.list_devices(wave="pilot")] == ["PC-1"]
        assert store.get_wave("pilot").state == "planned"


def test_a_run_refused_for_a_device_of_another_wave_records_nothing(tmp_path: Path) -> None:
    """PC-1 is in wave 'base2': a new wave selecting it is refused naming both, and no empty wave is left."""
    (tmp_path / "inventory.yaml").write_text(TWO_DEVICES)
    _planned(tmp_path, "base2", "pilot")
    code, output = _run(tmp_path, TWO_DEVICES, "--wave", "base3", "--limit", "pilot,wave1")
    assert code == 2 and "PC-1 (wave 'base2')" in output, output
    with Store.open(tmp_path / "state") as store:
        assert [w.name for w in store.list_waves()] == ["base2"]


def test_a_wave_killed_between_its_creation_and_its_enrolment_is_completed_by_resume(tmp_path: Path) -> None:
    """Creating a wave and enrolling its devices are two transactions: a wave left without its devices by a kill
    in between gets its recorded selection enrolled when it is picked up (resume, or run --wave again)."""
    (tmp_path / "inventory.yaml").write_text(TWO_DEVICES)
    _planned(tmp_path, "pilot", "pilot")
    with Store.open(tmp_path / "state") as store:
        recorded = store.get_wave("pilot")
        settings = {**recorded.settings, "devices": ["PC-2"], "limit": "wave1"}
        store.create_wave(
            "half", playbook_name=recorded.playbook_name, playbook_hash=recorded.playbook_hash, settings=settings
        )
        assert store.list_devices(wave="half") == []
        plans = resumable_waves(store, load_credentials(None, environ=ENV), RealClock())
        assert {p.runner.settings.name for p in plans} == {"pilot", "half"}
        assert [d.name for d in store.list_devices(wave="half")] == ["PC-2"]


def test_a_rerun_lists_failed_devices_with_their_recorded_reason(tmp_path: Path) -> None:
    """Picking a wave up again (resume, run --wave) fills the recap's reasons of devices not visited again from
    the store's last_error: a failed device is never listed with an empty reason."""
    (tmp_path / "inventory.yaml").write_text(TWO_DEVICES)
    _planned(tmp_path, "pilot", "pilot")
    with Store.open(tmp_path / "state") as store:
        store.transition("PC-1", "pending", "failed", "step_failed", last_error="policy not effective")
        store.set_wave_state("pilot", "halted")
        plans = resumable_waves(store, load_credentials(None, environ=ENV), RealClock())
        progress = plans[0].runner.progress
        assert progress.states["PC-1"] == "failed"
        assert progress.errors["PC-1"] == "policy not effective"


def test_the_recap_prints_device_errors_literally() -> None:
    """A reason that looks like Rich markup (it comes from a device or a user) is printed as written."""
    progress = WaveProgress(states={"PC-1": "failed", "PC-2": "stalled"})
    progress.errors.update({"PC-1": "[red]evil[/red] step failed", "PC-2": "waiting for [bold]CORP\\x[/bold]"})
    result = WaveResult("[blue]w[/blue]", "halted", "failure budget exceeded: [b]1[/b]", progress)
    with wave_commands.console.capture() as captured:
        code = wave_commands.recap([result])
    text = captured.get()
    assert code == 1
    for literal in ("[red]evil[/red] step failed", "[bold]CORP\\x[/bold]", "[blue]w[/blue]", "[b]1[/b]"):
        assert literal in text, text


def test_bad_input_creates_no_store(tmp_path: Path) -> None:
    """The inventory and playbook are checked before the store is opened: a bad one leaves no store behind."""
    code, output = _run(tmp_path, "devices:\n  - {name: PC-1, address: 127.0.0.1, port: yes}\n")
    assert code == 2 and "line 2, column 38: devices[0].port" in output, output
    assert not (tmp_path / "state").exists()
