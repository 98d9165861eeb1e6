"""Every command and the store: the read-only ones work on a read-only store, none of them uses (or changes) a file
that is not a usable store, and each follows the one exit-code table (`migrator.errors.ExitCode`, the README)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from migrator.cli import COMMANDS, app
from migrator.errors import ExitCode
from migrator.store import SCHEMA_VERSION, AuditEntry, Store, content_hash

ROOT = Path(__file__).resolve().parents[2]
ENV = {"MIGRATOR_USERNAME": "LAB\\migrator-admin", "MIGRATOR_PASSWORD": "not-used-here"}
runner = CliRunner()

# What each store-reading command is run with (the store's --state is appended).
READ_ONLY = {
    "status": ["status"],
    "status --json": ["status", "--json"],
    "report": ["report", "--format", "json"],
    "audit verify": ["audit", "verify"],
    "audit anchor": ["audit", "anchor"],
}


def _inventory(folder: Path) -> Path:
    path = folder / "inventory.yaml"
    path.write_text("devices:\n  - {name: PC-1, address: 127.0.0.1}\n")
    return path


def _writers(folder: Path) -> dict[str, list[str]]:
    inventory = str(_inventory(folder))
    return {
        "run": ["run", "-i", inventory, "--yes"],
        "resume": ["resume"],
        "pause": ["pause", "--wave", "w1"],
        "approve": ["approve", "--wave", "w1"],
        "rollback": ["rollback", "--wave", "w1", "--inventory", inventory],
        "entra cleanup": ["entra", "cleanup", "--wave", "w1", "--inventory", inventory],
        "worker": ["worker", "--drain"],
    }


def _build(state: Path) -> None:
    with Store.open(state) as store:
        store.create_wave("w1", playbook_name="p", playbook_hash=content_hash("x"), audit=AuditEntry("me", "create"))
        store.enroll("w1", ["PC-1"])
        store.transition("PC-1", "pending", "preflight", "start", audit=AuditEntry("engine", "start"))


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A folder another user can enter (pytest's tmp_path is private to its owner)."""
    folder = Path(tempfile.mkdtemp(prefix="migrator-ro-"))
    folder.chmod(0o755)
    yield folder
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    shutil.rmtree(folder)


def _as_unprivileged(args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user who cannot write the store (root writes anything: drop to nobody)."""
    command = [sys.executable, "-m", "migrator", *args]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: cannot drop the right to write")
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    env = {"PATH": os.environ.get("PATH", ""), "HOME": "/tmp", "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False, cwd="/")


@pytest.mark.parametrize("read_only_dir", [False, True], ids=["file-0444", "file-and-directory-read-only"])
def test_read_only_commands_work_on_a_read_only_store(shared_tmp: Path, read_only_dir: bool) -> None:
    """status, report and audit verify/anchor read a store whose file is 0444 (and whose directory is read-only
    too), as a user who may not write it, and leave every file as it was."""
    state = shared_tmp / "state"
    _build(state)
    (state / "migrator.db").chmod(0o444)
    for path in state.iterdir():
        path.chmod(0o444)
    if read_only_dir:
        state.chmod(0o555)
    before = _digests(state)
    for name, args in READ_ONLY.items():
        result = _as_unprivileged([*args, "--state", str(state)])
        assert result.returncode == ExitCode.OK, (name, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr and "readonly" not in result.stderr
    assert _digests(state) == before
    # A command that writes says why it cannot, with the same exit code as every unusable store.
    result = _as_unprivileged(["pause", "--wave", "w1", "--state", str(state)])
    assert result.returncode == ExitCode.INPUT, result.stderr
    assert "cannot be written" in " ".join(result.stderr.split()) or "read" in result.stderr
    assert _digests(state) == before


def _unusable(kind: str, state: Path) -> None:
    state.mkdir(parents=True, exist_ok=True)
    database = state / "migrator.db"
    if kind == "empty":
        database.write_bytes(b"")
    elif kind == "not-sqlite":
        database.write_text("name,address\nPC-1,10.0.0.1\n")
    elif kind == "foreign-sqlite":
        db = sqlite3.connect(database)
        db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
        db.commit()
        db.close()
    elif kind == "future-schema":
        _build(state)
        db = sqlite3.connect(database)
        db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
        db.commit()
        db.close()


MESSAGES = {
    "empty": "the file is empty (0 bytes)",
    "not-sqlite": "not an SQLite database",
    "foreign-sqlite": "holds no migrator store",
    "future-schema": f"schema version {SCHEMA_VERSION + 1}, newer than version {SCHEMA_VERSION}",
}


@pytest.mark.parametrize("kind", MESSAGES)
def test_every_command_refuses_an_unusable_store_the_same_way(tmp_path: Path, kind: str) -> None:
    """A 0-byte file, a text file, somebody else's SQLite database and a store of a future schema: every command
    that opens the store exits 2 with a message saying which, and leaves the file byte-identical."""
    state = tmp_path / "state"
    _unusable(kind, state)
    before = _digests(state)
    commands = {**READ_ONLY, **_writers(tmp_path)}
    for name, args in commands.items():
        result = runner.invoke(app, [*args, "--state", str(state)], env=ENV)
        said = " ".join(result.output.split())
        assert result.exit_code == ExitCode.INPUT, (name, result.output)
        assert MESSAGES[kind] in said, (name, said)
        assert result.exception is None or isinstance(result.exception, SystemExit), (name, result.exception)
        assert _digests(state) == before, name


def test_commands_that_never_create_a_store_say_there_is_none(tmp_path: Path) -> None:
    """On a --state without a store, every command but run exits 2 and creates nothing there."""
    state = tmp_path / "nothing-here"
    commands = {k: v for k, v in {**READ_ONLY, **_writers(tmp_path)}.items() if k != "run"}
    for name, args in commands.items():
        result = runner.invoke(app, [*args, "--state", str(state)], env=ENV)
        assert result.exit_code == ExitCode.INPUT, (name, result.output)
        assert "no store" in result.output or "no migrator store" in result.output, (name, result.output)
        assert not state.exists(), name


def test_every_command_is_walked() -> None:
    """The walks above cover every top-level command that opens a store; the others take no --state."""
    walked = {args[0] for args in READ_ONLY.values()} | {
        "run",
        "resume",
        "pause",
        "approve",
        "rollback",
        "entra",
        "worker",
    }
    no_store = {"plan", "demo", "diagram", "probe", "lab", "explain", "inventory"}  # demo: its own store, tested there
    serves = {"serve"}  # runs until stopped: its store opening (read-only, never created) is tests/web/test_serve_cli
    assert walked | no_store | serves == set(COMMANDS)


def test_the_exit_codes_are_one_table_in_code_and_readme() -> None:
    """ExitCode is 0 ok, 1 failed or halted, 2 bad input or unusable store, 3 operator action; the README's
    table lists the same numbers with the same meaning."""
    assert [(c.name, c.value) for c in ExitCode] == [("OK", 0), ("FAILED", 1), ("INPUT", 2), ("OPERATOR", 3)]
    readme = (ROOT / "README.md").read_text()
    rows = dict(re.findall(r"^\| `?(\d)`? \| (.+?) \|$", readme, flags=re.MULTILINE))
    assert set(rows) == {"0", "1", "2", "3"}
    assert "failed" in rows["1"] and "halted" in rows["1"]
    assert "bad input" in rows["2"] and "store" in rows["2"]
    assert "operator" in rows["3"]


def test_a_bad_option_exits_2() -> None:
    """Typer/Click's own usage errors are bad input too."""
    for args in (["status", "--no-such-option"], ["audit", "verify", "--bogus"], ["run"]):
        assert runner.invoke(app, args, env=ENV).exit_code == ExitCode.INPUT, args
