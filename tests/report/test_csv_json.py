"""CSV and JSON reports, through ``migrator report``, and its bad-input exits."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from typer.testing import CliRunner

from migrator.cli import app
from migrator.report import collect_report
from migrator.report.csvout import DEVICE_COLUMNS, USER_COLUMNS, cell
from tests.report.conftest import HOSTILE_DEVICE, HOSTILE_ERROR, HOSTILE_USER, PASSKEY_WARNING, TRACEBACK, Fleet

runner = CliRunner()


def _report(state_dir: Path, *args: str) -> str:
    result = runner.invoke(app, ["report", "--state", str(state_dir), *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_devices_csv_parses_back_one_row_per_device(fleet: Fleet) -> None:
    """The devices CSV reads back with the csv module: the header, then one row per device with its values."""
    rows = list(csv.DictReader(io.StringIO(_report(fleet.state_dir, "--format", "csv"))))
    assert tuple(rows[0]) == DEVICE_COLUMNS
    by_device = {r["device"]: r for r in rows}
    assert len(rows) == 10 and set(by_device) >= {"PC-KEY-01", "PC-RB-06", HOSTILE_DEVICE}
    cert = by_device["PC-CERT-02"]
    assert (cert["wave"], cert["path"], cert["state"], cert["users_migrated"], cert["users_total"]) == (
        "pilot",
        "cert",
        "migrated",
        "2",
        "2",
    )
    assert cert["last_error"] == "" and cert["last_change"].endswith("Z")
    assert by_device["PC-STALL-04"]["users_migrated"] == "0"
    assert by_device["PC-FAIL-03"]["last_error"].startswith("confirm_policy:")


def test_formula_looking_cells_are_defused(fleet: Fleet) -> None:
    """An error text starting with '=' is written with a leading apostrophe, so a spreadsheet shows it as text."""
    rows = list(csv.DictReader(io.StringIO(_report(fleet.state_dir, "--format", "csv"))))
    hostile = next(r for r in rows if r["device"] == HOSTILE_DEVICE)
    assert hostile["last_error"] == "'" + HOSTILE_ERROR
    assert cell("-1") == "'-1" and cell("@SUM(A1)") == "'@SUM(A1)" and cell("plain") == "plain"
    assert cell(None) == "" and cell(True) == "true" and cell(3) == "3"


def test_users_csv_has_one_row_per_user_with_deletions_and_their_warnings(fleet: Fleet) -> None:
    """--users writes one row per user, saying whose container migrator deleted, when, and the warning recorded
    with the delete (empty: none recorded); a container found already gone is not one migrator deleted."""
    rows = list(csv.DictReader(io.StringIO(_report(fleet.state_dir, "--format", "csv", "--users"))))
    assert tuple(rows[0]) == USER_COLUMNS
    by_user = {r["user"]: r for r in rows}
    assert len(rows) == 11
    bob = by_user["CONTOSO\\bob"]
    assert bob["container_deleted"] == "true" and bob["delete_warning"] == PASSKEY_WARNING
    assert bob["key_id"] == "k-bob" and bob["deleted_at"].endswith("Z")
    erin = by_user["CONTOSO\\erin"]
    assert erin["container_deleted"] == "true" and erin["delete_warning"] == "" and erin["deleted_at"].endswith("Z")
    assert by_user["CONTOSO\\carol"]["container_deleted"] == "false" and by_user["CONTOSO\\carol"]["deleted_at"] == ""
    assert by_user["CONTOSO\\alice"]["container_deleted"] == "false"
    assert by_user[HOSTILE_USER]["device"] == HOSTILE_DEVICE
    assert by_user["CONTOSO\\dave"]["last_error"] == "no sign-in within 7 days"


def test_json_report_holds_everything_the_html_shows(fleet: Fleet) -> None:
    """The JSON report has waves with approvals, counts, failures, rollbacks, deleted containers, the audit
    verdict and head hash, the diagram and per-device timelines."""
    doc = json.loads(_report(fleet.state_dir, "--format", "json"))
    assert set(doc) >= {
        "waves",
        "counts",
        "attention",
        "failures",
        "rollbacks",
        "deleted_containers",
        "audit",
        "diagram",
        "devices",
    }
    assert doc["waves"][0]["approvals"][0]["actor"] == "change.manager@contoso"
    verified = fleet.store.verify_audit()
    assert doc["audit"] == {
        "ok": True,
        "entries": verified.entries,
        "head_hash": verified.head_hash,
        "anchor": f"audit-head:{verified.entries}:{verified.head_hash}",
        "heads_checked": verified.heads_checked,
        "problems": [],
        "scope": "the whole audit log of the store",
    }
    deleted = {(c["device"], c["user"]): c for c in doc["deleted_containers"]}
    assert set(deleted) == {("PC-CERT-02", "CONTOSO\\bob"), ("PC-RB-06", "CONTOSO\\erin")}
    bob = deleted[("PC-CERT-02", "CONTOSO\\bob")]
    assert (bob["wave"], bob["sid"], bob["key_id"], bob["container_trust"]) == (
        "pilot",
        "S-1-5-21-1-1002",
        "k-bob",
        "cert",
    )
    assert bob["entra_key_remains"] is True and bob["delete_warning"] == PASSKEY_WARNING and bob["deleted_at"]
    assert deleted[("PC-RB-06", "CONTOSO\\erin")]["delete_warning"] is None
    rollback = doc["rollbacks"][0]
    assert rollback["device"] == "PC-RB-06" and rollback["complete"] is True
    assert [v["action"] for v in rollback["restored"]] == ["set", "removed"]
    assert rollback["not_restorable"][0]["user"] == "CONTOSO\\erin"
    assert {f["device"] for f in doc["failures"]} == {"PC-FAIL-03", HOSTILE_DEVICE}
    devices = {d["name"]: d for d in doc["devices"]}
    kinds = {e["kind"] for e in devices["PC-CERT-02"]["timeline"]}
    assert kinds == {"transition", "journal"}
    users = {u["name"]: u for u in devices["PC-CERT-02"]["users"]}
    assert (
        users["CONTOSO\\bob"]["container_deleted"] is True
        and users["CONTOSO\\bob"]["delete_warning"] == PASSKEY_WARNING
    )
    assert users["CONTOSO\\carol"]["container_deleted"] is False and users["CONTOSO\\carol"]["deleted_at"] is None
    assert devices["PC-BUG-09"]["traceback"] == TRACEBACK
    assert devices["PC-DOWN-07"]["unreachable_since"] is not None
    assert doc["diagram"]["source"] == "machine" and doc["diagram"]["graphs"][0]["edges"]


def test_reports_of_an_empty_store(empty_store: Fleet) -> None:
    """Every format works on a store with nothing in it."""
    assert _report(empty_store.state_dir, "--format", "csv").strip() == ",".join(DEVICE_COLUMNS)
    assert _report(empty_store.state_dir, "--format", "csv", "--users").strip() == ",".join(USER_COLUMNS)
    doc = json.loads(_report(empty_store.state_dir, "--format", "json"))
    assert doc["waves"] == [] and doc["devices"] == [] and doc["counts"] == {} and doc["audit"]["ok"] is True
    assert "No wave is recorded" in _report(empty_store.state_dir, "--format", "html")


def test_report_of_a_wave_without_devices(empty_store: Fleet) -> None:
    """A planned wave with no device enrolled yet reports its summary and zero devices."""
    empty_store.store.create_wave("later", playbook_name="p", playbook_hash="0" * 64, change_ticket="CHG9")
    doc = json.loads(_report(empty_store.state_dir, "--format", "json", "--wave", "later"))
    assert doc["waves"][0]["name"] == "later" and doc["waves"][0]["devices"] == 0
    assert doc["waves"][0]["started_at"] is None and doc["waves"][0]["ended_at"] is None


def test_finished_wave_has_an_end_time(fleet: Fleet) -> None:
    """A wave whose devices are all in final states gets an end time: its last transition."""
    fleet.store.transition("PC-STALL-04", "stalled", "failed", "given_up", last_error="user left the company")
    report = collect_report(fleet.store, "pilot")
    pilot = report.waves[0]
    assert pilot.ended_at is not None and pilot.started_at is not None and pilot.ended_at > pilot.started_at


def test_report_bad_input_exits_2(fleet: Fleet, tmp_path: Path) -> None:
    """A missing store, an unknown wave, --users outside CSV and an unwritable --out exit 2 with a message."""
    missing = runner.invoke(app, ["report", "--state", str(tmp_path / "nothing"), "--format", "json"])
    assert missing.exit_code == 2 and "no migrator store" in missing.stderr
    assert not (tmp_path / "nothing").exists()
    unknown = runner.invoke(app, ["report", "--state", str(fleet.state_dir), "--wave", "ghost"])
    assert unknown.exit_code == 2 and "ghost" in unknown.stderr
    users = runner.invoke(app, ["report", "--state", str(fleet.state_dir), "--format", "json", "--users"])
    assert users.exit_code == 2 and "--users" in users.stderr
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    unwritable = runner.invoke(
        app, ["report", "--state", str(fleet.state_dir), "--format", "csv", "--out", str(blocker / "r.csv")]
    )
    assert unwritable.exit_code == 2 and "cannot write" in unwritable.stderr


def test_unreadable_store_exits_2(tmp_path: Path) -> None:
    """A database file that is not a store exits 2 (an unusable store), says so, and is left as it was."""
    broken = tmp_path / "state"
    broken.mkdir()
    (broken / "migrator.db").write_bytes(b"this is not a sqlite database" * 100)
    result = runner.invoke(app, ["report", "--state", str(broken), "--format", "json"])
    assert result.exit_code == 2, result.output
    assert "not an SQLite database" in result.stderr and "Traceback" not in result.output
    assert (broken / "migrator.db").read_bytes() == b"this is not a sqlite database" * 100


def test_csv_written_to_a_file_reads_back(fleet: Fleet, tmp_path: Path) -> None:
    """--out writes the users CSV to a file (no blank lines between rows) that the csv module reads back."""
    out = tmp_path / "users.csv"
    result = runner.invoke(
        app, ["report", "--state", str(fleet.state_dir), "--format", "csv", "--users", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    with out.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == list(USER_COLUMNS) and len(rows) == 12 and all(rows)
