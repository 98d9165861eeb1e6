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
from migrator.report.model import iso
from migrator.store import LeaseOwner, Store, StoreBusy
from tests.report.conftest import HOSTILE_DEVICE, HOSTILE_ERROR, TRACEBACK, Fleet

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
    assert isinstance(devices, list) and len(devices) == 10
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
    assert doc["counts"] == {
        "waiting_for_dc": 1,
        "waiting_for_device": 1,
        "stalled": 1,
        "unreachable": 1,
        "error": 1,
        "failed": 2,
        "rolled_back": 1,
        "migrated": 2,
    }
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
    assert sorted(d["name"] for d in doc["devices"]) == sorted(  # type: ignore[union-attr]
        ["PC-WAIT-05", "PC-RB-06", "PC-DOWN-07", "PC-GONE-08", "PC-BUG-09", HOSTILE_DEVICE]
    )
    assert doc["counts"] == {
        "waiting_for_dc": 1,
        "waiting_for_device": 1,
        "unreachable": 1,
        "error": 1,
        "failed": 1,
        "rolled_back": 1,
    }


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


def test_table_names_the_leased_devices_their_holders_and_until_when(fleet: Fleet) -> None:
    """A line per unexpired lease: host and pid (or the plain owner), expiry, and whether a new worker must wait;
    --json keeps its three documented keys."""
    elsewhere = LeaseOwner("build-7.example", 4242, None, "0badcafe")
    with Store.open(fleet.state_dir) as live:  # the wall clock, as the status command's own store
        assert live.acquire("PC-WAIT-05", str(elsewhere), 3600)
        assert live.acquire("PC-STALL-04", "[bold]crash-harness-worker", 3600)
        expires = live.get_device("PC-WAIT-05").lease_expires_at
    assert expires is not None
    result = runner.invoke(app, ["status", "--state", str(fleet.state_dir)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Leased now (2)" in result.stdout
    assert (
        f"PC-WAIT-05 leased by host build-7.example pid 4242 until {expires:%H:%M:%S} UTC "
        "(another host: free when it expires)"
    ) in result.stdout
    assert "PC-STALL-04 leased by [bold]crash-harness-worker until" in result.stdout  # printed as named
    assert "(an owner that cannot be checked: free when it expires)" in result.stdout
    assert set(_status_json(fleet.state_dir)) == {"waves", "devices", "counts"}


def test_attention_is_ordered_error_failed_stalled_unreachable_waiting(fleet: Fleet) -> None:
    """Error first, then failed, stalled, unreachable and waiting (oldest first within each); migrated and
    rolled-back devices are not listed."""
    view = collect_status(fleet.store, now=fleet.clock)
    assert [(d.name, d.attention) for d in view.attention] == [
        ("PC-BUG-09", "error"),
        ("PC-FAIL-03", "failed"),
        (HOSTILE_DEVICE, "failed"),
        ("PC-STALL-04", "stalled"),
        ("PC-GONE-08", "unreachable"),
        ("PC-WAIT-05", "waiting"),
        ("PC-DOWN-07", "waiting"),
    ]


def test_a_device_that_does_not_answer_shows_since_when_and_its_last_error(fleet: Fleet) -> None:
    """waiting_for_device and unreachable: since when the device has not answered comes from its context's
    unreachable_since (not from the last failed recheck), with the last error; resume retries the parked one."""
    view = collect_status(fleet.store, now=fleet.clock)
    by_name = {d.name: d for d in view.devices}
    down, gone = by_name["PC-DOWN-07"], by_name["PC-GONE-08"]
    for device in (down, gone):
        assert device.unreachable_since is not None and device.since == device.unreachable_since
    assert down.since < down.device.updated_at  # the last recheck failed again hours later: since stays put
    assert down.reason.startswith(f"no answer since {iso(down.unreachable_since)}; last error: collect_facts:")
    assert "connection refused" in down.reason and "migrator resume" not in down.reason
    assert "connect timeout" in gone.reason and gone.reason.endswith("`migrator resume` retries it")
    assert by_name["PC-WAIT-05"].unreachable_since is None
    doc = _status_json(fleet.state_dir)
    devices = {d["name"]: d for d in doc["devices"]}  # type: ignore[union-attr]
    assert devices["PC-DOWN-07"]["unreachable_since"] == iso(down.unreachable_since)
    assert devices["PC-DOWN-07"]["since"] == iso(down.unreachable_since)
    assert devices["PC-KEY-01"]["unreachable_since"] is None


def test_an_error_device_shows_its_summary_and_that_resume_retries_it(fleet: Fleet) -> None:
    """An error device: the summary (last_error) and that `migrator resume` retries it are in the table; the
    traceback is in the JSON, never in the console table."""
    result = runner.invoke(app, ["status", "--state", str(fleet.state_dir)], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    line = next(line for line in result.stdout.splitlines() if "PC-BUG-09" in line)
    assert "internal error: KeyError: 'session'" in line and "`migrator resume` retries it" in line
    assert "Traceback" not in result.stdout
    devices = {d["name"]: d for d in _status_json(fleet.state_dir)["devices"]}  # type: ignore[union-attr]
    assert devices["PC-BUG-09"]["traceback"] == TRACEBACK
    assert devices["PC-BUG-09"]["last_error"] == "internal error: KeyError: 'session'"
    assert devices["PC-FAIL-03"]["traceback"] is None


def test_one_frame_renders_without_a_terminal(fleet: Fleet) -> None:
    """status_renderable is one --watch frame: it renders to any console, with an optional note."""
    console = Console(record=True, width=160, force_terminal=False)
    console.print(status_renderable(collect_status(fleet.store), note="could not refresh"))
    text = console.export_text()
    assert "Needs attention (7)" in text and "could not refresh" in text


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
