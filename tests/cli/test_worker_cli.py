"""`migrator worker` on the command line: a second worker on one SQLite store is refused, and so are a worker and
`run` or `resume` side by side there; a bad --site is bad input, and a worker with nothing to do and --drain
registers, stops and says so."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from migrator.cli import app
from migrator.errors import ExitCode
from migrator.store import Store, content_hash

ENV = {"MIGRATOR_USERNAME": "LAB\\migrator-admin", "MIGRATOR_PASSWORD": "not-used-here", "MIGRATOR_STORE": ""}
runner = CliRunner()


def _store(state: Path) -> Store:
    store = Store.open(state)
    store.create_wave("w1", playbook_name="p", playbook_hash=content_hash("x"))
    store.enroll("w1", ["PC-1"])
    return store


@pytest.mark.parametrize("holder", ["coordinator_lock", "run_lock"], ids=["another worker", "a run"])
def test_a_worker_beside_another_worker_or_a_run_on_one_sqlite_store_is_refused(tmp_path: Path, holder: str) -> None:
    """SQLite serves one worker process, and none beside `run` or `resume` (both would open batches and keep gates
    for the same waves): while another worker holds the coordinator lock, or a run the run lock, a worker exits 2
    saying why."""
    with _store(tmp_path / "state") as store:
        held = getattr(store, holder)()
        assert held.lead()
        try:
            result = runner.invoke(app, ["worker", "--drain", "--state", str(tmp_path / "state")], env=ENV)
        finally:
            held.close()
    assert result.exit_code == ExitCode.INPUT, result.output
    assert "another migrator process works the SQLite store" in result.output and "PostgreSQL" in result.output


def test_run_and_resume_beside_a_worker_on_one_sqlite_store_are_refused(tmp_path: Path) -> None:
    """While a worker holds a SQLite store's coordinator lock, `run` and `resume` exit 2 saying why, and `run`
    records no wave."""
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("devices: [{name: PC-2, address: pc-2.corp.contoso.com}]\n")
    state = str(tmp_path / "state")
    with _store(tmp_path / "state") as store:
        worker = store.coordinator_lock()
        assert worker.lead()
        try:
            ran = runner.invoke(app, ["run", "-i", str(inventory), "--yes", "--state", state], env=ENV)
            resumed = runner.invoke(app, ["resume", "--state", state], env=ENV)
        finally:
            worker.close()
        assert [w.name for w in store.list_waves()] == ["w1"]
    for result in (ran, resumed):
        assert result.exit_code == ExitCode.INPUT, result.output
        assert "a `migrator worker` works the SQLite store" in result.output


def test_a_bad_site_is_bad_input(tmp_path: Path) -> None:
    """--site takes a site name as the inventory spells it."""
    _store(tmp_path / "state").close()
    result = runner.invoke(app, ["worker", "--site", "paris nord", "--state", str(tmp_path / "state")], env=ENV)
    assert result.exit_code == ExitCode.INPUT and "not a valid site name" in result.output


def test_a_draining_worker_registers_and_stops(tmp_path: Path) -> None:
    """With nothing due, `worker --drain` stops at once; its row says which sites it served and that it stopped."""
    _store(tmp_path / "state").close()
    args = ["worker", "--drain", "--site", "paris", "--site", "lyon", "--state", str(tmp_path / "state")]
    result = runner.invoke(app, args, env=ENV)
    assert result.exit_code == ExitCode.OK, result.output
    assert "serving paris, lyon" in result.output and "stopped after 0 visits" in result.output
    with Store.open(tmp_path / "state", read_only=True) as store:
        [worker] = store.workers()
    assert worker.sites == ("lyon", "paris") and worker.stopped_at is not None


def test_run_no_work_needs_a_shared_store(tmp_path: Path) -> None:
    """`run --no-work` leaves the visits to `migrator worker` processes, which share a PostgreSQL store: on SQLite it
    is bad input, refused before anything is read or created."""
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("devices: [{name: PC-1}]\n")
    args = ["run", "-i", str(inventory), "--no-work", "--yes", "--state", str(tmp_path / "state")]
    result = runner.invoke(app, args, env=ENV)
    assert result.exit_code == ExitCode.INPUT, result.output
    assert "--no-work needs a shared store" in result.output
    assert not (tmp_path / "state").exists()
