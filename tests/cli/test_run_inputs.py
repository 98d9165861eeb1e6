"""`migrator run` with bad input: a clear message naming what and where, exit 2, and nothing recorded."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from migrator.cli import app
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
