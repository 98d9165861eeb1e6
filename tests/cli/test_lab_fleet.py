"""Tests of ``migrator lab fleet`` through Typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from migrator.cli import app
from migrator.lab.fleetfile import load_fleet

runner = CliRunner()


def test_defaults_write_a_60_device_fleet_and_print_a_table(tmp_path: Path) -> None:
    """Without options besides --out the command writes 60 devices (seed 1) and prints the summary table."""
    out = tmp_path / "fleet.json"
    result = runner.invoke(app, ["lab", "fleet", "--out", str(out)])
    assert result.exit_code == 0, result.output
    fleet = load_fleet(out)
    assert len(fleet.devices) == 60 and fleet.seed == 1
    assert "eligible-looking" in result.output
    assert "join: hybrid" in result.output


def test_json_summary_matches_the_written_file(tmp_path: Path) -> None:
    """--json prints counts that agree with the file and the requested mix."""
    out = tmp_path / "fleet.yaml"
    args = ["lab", "fleet", "-n", "100", "--seed", "4", "--mix", "key=60,cert=20,cloud=10,none=10"]
    result = runner.invoke(app, [*args, "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["devices"] == 100 and summary["seed"] == 4
    assert summary["trust"] == {"key": 60, "cert": 20, "cloud": 10, "none": 10}
    assert sum(summary["join_types"].values()) == 100
    assert summary["special"]["VPN-only"] > 0
    assert len(load_fleet(out).devices) == 100


def test_same_arguments_write_the_same_bytes(tmp_path: Path) -> None:
    """Two runs with the same seed write identical files."""
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    for out in (first, second):
        assert (
            runner.invoke(app, ["lab", "fleet", "-n", "30", "--seed", "9", "--out", str(out), "--json"]).exit_code == 0
        )
    assert first.read_bytes() == second.read_bytes()


def test_bad_mix_is_a_usage_error_naming_the_part(tmp_path: Path) -> None:
    """An unknown trust model in --mix exits with code 2 and names it."""
    result = runner.invoke(app, ["lab", "fleet", "--mix", "key=50,kerberos=50", "--out", str(tmp_path / "f.json")])
    assert result.exit_code == 2
    assert "kerberos" in result.output
    assert not (tmp_path / "f.json").exists()


def test_mix_not_summing_to_100_is_refused(tmp_path: Path) -> None:
    """Percentages that do not sum to 100 exit with code 2."""
    result = runner.invoke(app, ["lab", "fleet", "--mix", "key=50,cert=40", "--out", str(tmp_path / "f.json")])
    assert result.exit_code == 2
    assert "sum to 100" in result.output


def test_unwritable_out_path_exits_2(tmp_path: Path) -> None:
    """An output path in a missing directory exits with code 2 and a clear message."""
    result = runner.invoke(app, ["lab", "fleet", "--out", str(tmp_path / "missing" / "fleet.json")])
    assert result.exit_code == 2
    assert "not a writable directory" in result.output


def test_unknown_extension_exits_2(tmp_path: Path) -> None:
    """An output file that is neither JSON nor YAML exits with code 2."""
    result = runner.invoke(app, ["lab", "fleet", "--out", str(tmp_path / "fleet.csv")])
    assert result.exit_code == 2
    assert "unknown fleet file extension" in result.output


def test_help_shows_an_example() -> None:
    """--help documents the options and gives an example command line."""
    result = runner.invoke(app, ["lab", "fleet", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "Example: migrator lab fleet --devices 1000" in result.output
    for option in ("--devices", "--seed", "--mix", "--out", "--json"):
        assert option in result.output
