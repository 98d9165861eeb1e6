"""The reports read the same from PostgreSQL as from SQLite: the same fleet, written the engine's way on each,
gives the same CSV, JSON and status (but for where the store is and when the report was made)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from migrator.cli import app
from migrator.store import Store
from tests.report.conftest import OWNER, Clock, build_fleet

runner = CliRunner()
ENV = {"MIGRATOR_STORE": ""}


def _fill(location: str) -> None:
    clock = Clock()
    with Store.open(location, now=clock, synchronous="NORMAL") as store:
        build_fleet(store, clock)
        for device in store.list_devices():
            store.release(device.name, OWNER)


def _out(*args: str) -> str:
    result = runner.invoke(app, list(args), env=ENV)
    assert result.exit_code == 0, result.output
    return result.stdout


def _without(value: Any, keys: set[str]) -> Any:
    if isinstance(value, dict):
        return {k: _without(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [_without(v, keys) for v in value]
    return value


def test_reports_and_status_read_the_same_on_both_back_ends(tmp_path: Path, postgres_url: str) -> None:
    """CSV (devices and users) and JSON reports and status --json of one fleet agree between SQLite and PostgreSQL."""
    sqlite_state = str(tmp_path / "state")
    _fill(sqlite_state)
    _fill(postgres_url)
    on_sqlite = ["--state", sqlite_state]
    on_postgresql = ["--state", str(tmp_path / "pg-logs"), "--store", postgres_url]
    for args in (["report", "--format", "csv"], ["report", "--format", "csv", "--users"]):
        assert _out(*args, *on_sqlite) == _out(*args, *on_postgresql), args
    volatile = {"store", "generated_at", "taken_at", "where"}
    for args in (["report", "--format", "json"], ["status", "--json"]):
        sqlite_doc = _without(json.loads(_out(*args, *on_sqlite)), volatile)
        postgresql_doc = _without(json.loads(_out(*args, *on_postgresql)), volatile)
        assert sqlite_doc == postgresql_doc, args
        assert "PC-CERT-02" in json.dumps(sqlite_doc), args  # the fleet is there, not two empty documents
