"""``migrator status``: the JSON contract, the Rich table, --watch frames, and bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from migrator.cli import app, report_commands
from migrator.report import collect_status, status_renderable
from migrator.report.console import age
from migrator.store import StoreBusy
from tests.report.conftest import HOSTILE_DEVICE, HOSTILE_ERROR, Fleet

runner = CliRunner()


def _status_json(state_dir: Path, *extra: str) -> dict[str, object]:
    result = runner.invoke(app, ["status", "--state", str(state_dir), "--json", *extra])
    assert result.exit_code == 0, result.output
    parsed = json.loads(result.stdout)
    assert isinstance(parsed, dict)
    return parsed


def test_json_contract_has_exactly_the_documented_keys(fleet: Fleet) -> None:
    """--json prints waves, devices and counts only; each device has the contract keys, each user name and state."""
    doc = _status_json(fleet.state_dir)
    assert set(doc) == {"waves", "devices", "counts"}
    devices = doc["devices"]
    assert isinstance(devices, list) and len(devices) == 7
    for device in devices:
        assert {"name", "state", "path", "users", "last_error"} <= set(device)
        for user in device["users"]:
            assert set(user) == {"name", "state"}
    waves = doc["waves"]
    assert isinstance(waves, list)
    assert [(w["name"], w["change_ticket"], w["state"]) for w in waves] == [
        ("pilot", "CHG0042", "running"),
        ("wave-2", "CHG0043", "halted"),
    ]


def test_json_values_match_the_store(fleet: Fleet) -> None:
    """Counts add up to the devices listed and agree with the store; states, paths, users and errors are the
    store's."""
    doc = _status_json(fleet.state_dir)
    assert doc["counts"] == {"waiting_for_dc": 1, "stalled": 1, "failed": 2, "rolled_back": 1, "migrated": 2}
    assert doc["counts"] == fleet.store.counts()
    by_name = {d["name"]: d for d in doc["devices"]}  # type: ignore[union-attr]
    assert by_name["PC-CERT-02"]["users"] == [
        {"name": "CONTOSO\\bob", "state": "migrated"},
        {"name": "CONTOSO\\carol", "state": "migrated"},
    ]
    assert by_name["PC-CERT-02"]["path"] == "cert"
    assert (
        by_name["PC-FAIL-03"]["last_error"] == "confirm_policy: certificate trust policy from GPO wins over cloud trust"
    )
    assert by_name["PC-KEY-01"]["last_error"] is None
    assert by_name[HOSTILE_DEVICE]["last_error"] == HOSTILE_ERROR
    assert by_name["PC-WAIT-05"]["attention"] == "waiting"
    pilot = doc["waves"][0]  # type: ignore[index]
    assert pilot["counts"] == {"stalled": 1, "failed": 1, "migrated": 2} and pilot["devices"] == 4


def test_json_of_one_wave_only_lists_that_wave(fleet: Fleet) -> None:
    """--wave narrows waves, devices and counts to that wave."""
    doc = _status_json(fleet.state_dir, "--wave", "wave-2")
    assert [w["name"] for w in doc["waves"]] == ["wave-2"]  # type: ignore[union-attr]
    assert sorted(d["name"] for d in doc["devices"]) == sorted(["PC-WAIT-05", "PC-RB-06", HOSTILE_DEVICE])  # type: ignore[union-attr]
    assert doc["counts"] == {"waiting_for_dc": 1, "failed": 1, "rolled_back": 1}


def test_json_of_an_empty_store_is_empty_but_complete(empty_store: Fleet) -> None:
    """A store without waves gives empty lists and counts, still with all three keys."""
    assert _status_json(empty_store.state_dir) == {"waves": [], "devices": [], "counts": {}}


def test_table_shows_counts_per_wave_and_what_needs_attention(fleet: Fleet) -> None:
    """The table lists every state with per-wave counts, failed devices with their reason, stalled and waiting
    devices with since when; hostile names print literally."""
    result = runner.invoke(app, ["status", "--state", str(fleet.state_dir)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = result.stdout
    for text in ("Devices per state", "pilot", "wave-2", "CHG0042", "waiting_for_dc", "rolled_back", "Needs attention"):
        assert text in out
    assert "confirm_policy: certificate trust policy from GPO wins over cloud trust" in out
    assert "PC-STALL-04" in out and "dave did not sign in within 7 days" in out
    assert "PC-WAIT-05" in out and "2025-03-10T" in out  # since when it waits
    assert "waiting for line of sight to a domain controller" in out
    assert HOSTILE_DEVICE in out  # Text, not markup: printed as named


def test_attention_is_ordered_failed_stalled_waiting(fleet: Fleet) -> None:
    """Failed devices come first, then stalled, then waiting; migrated and rolled-back ones are not listed."""
    view = collect_status(fleet.store, now=fleet.clock)
    assert [(d.name, d.attention) for d in view.attention] == [
        ("PC-FAIL-03", "failed"),
        (HOSTILE_DEVICE, "failed"),
        ("PC-STALL-04", "stalled"),
        ("PC-WAIT-05", "waiting"),
    ]


def test_one_frame_renders_without_a_terminal(fleet: Fleet) -> None:
    """status_renderable is one --watch frame: it renders to any console, with an optional note."""
    console = Console(record=True, width=160, force_terminal=False)
    console.print(status_renderable(collect_status(fleet.store), note="could not refresh"))
    text = console.export_text()
    assert "Needs attention (4)" in text and "could not refresh" in text


def test_watch_stops_after_the_requested_number_of_frames(fleet: Fleet) -> None:
    """--watch --refreshes 3 --interval 0 redraws three frames and exits 0 (Ctrl-C ends an unbounded watch)."""
    result = runner.invoke(
        app, ["status", "--state", str(fleet.state_dir), "--watch", "--refreshes", "3", "--interval", "0"]
    )
    assert result.exit_code == 0, result.output
    assert "Devices per state" in result.stdout


def test_watch_ends_cleanly_on_ctrl_c(fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    """A KeyboardInterrupt during the wait between frames ends the watch with exit code 0."""

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("migrator.cli.report_commands.time.sleep", interrupted)
    result = runner.invoke(app, ["status", "--state", str(fleet.state_dir), "--watch"])
    assert result.exit_code == 0, result.output


def test_missing_store_exits_2_and_creates_nothing(tmp_path: Path) -> None:
    """A --state that holds no store is bad input (exit 2) with a message naming it; no store is created."""
    missing = tmp_path / "no-such-state"
    result = runner.invoke(app, ["status", "--state", str(missing)])
    assert result.exit_code == 2
    assert "no migrator store" in result.stderr and str(missing) in result.stderr
    assert not missing.exists()
    empty_dir = tmp_path / "empty-dir"
    empty_dir.mkdir()
    result = runner.invoke(app, ["status", "--state", str(empty_dir), "--json"])
    assert result.exit_code == 2 and "holds no migrator.db" in result.stderr
    assert list(empty_dir.iterdir()) == []


def test_unknown_wave_and_watch_with_json_exit_2(fleet: Fleet) -> None:
    """An unknown --wave and --watch combined with --json are bad input."""
    result = runner.invoke(app, ["status", "--state", str(fleet.state_dir), "--wave", "nope"])
    assert result.exit_code == 2 and "nope" in result.stderr
    result = runner.invoke(app, ["status", "--state", str(fleet.state_dir), "--watch", "--json"])
    assert result.exit_code == 2 and "--watch" in result.stderr


def test_help_documents_exit_codes_and_an_example() -> None:
    """--help shows the exit codes and an example command."""
    result = runner.invoke(app, ["status", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "Exit codes: 0" in result.stdout and "Example: migrator status" in result.stdout


def test_age_is_coarse_and_never_negative() -> None:
    """age() prints the two largest units and clamps a future time to 0s."""
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert age(now - timedelta(days=3, hours=4, minutes=5), now) == "3d 4h"
    assert age(now - timedelta(hours=2, minutes=5), now) == "2h 5m"
    assert age(now - timedelta(seconds=40), now) == "40s"
    assert age(now + timedelta(seconds=40), now) == "0s"


def test_watch_keeps_the_last_frame_when_the_store_is_busy(fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    """A refresh that finds the store busy (a wave writing) shows the last frame with a note instead of failing."""
    calls = {"n": 0}
    real = report_commands.collect_status

    def flaky(store: object, wave: str | None = None) -> object:
        calls["n"] += 1
        if calls["n"] == 2:
            raise StoreBusy("store x: another writer holds the database")
        return real(store, wave)  # type: ignore[arg-type]

    monkeypatch.setattr(report_commands, "collect_status", flaky)
    result = runner.invoke(
        app,
        ["status", "--state", str(fleet.state_dir), "--watch", "--refreshes", "3", "--interval", "0"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert calls["n"] == 3
