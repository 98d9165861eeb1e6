"""`migrator status` names the sites whose open devices no live worker serves (and since when), devices without a
site included, once a store is worked by workers; a store without worker rows says nothing of sites."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from migrator.cli import app
from migrator.report.model import collect_status
from migrator.store import Store, content_hash

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
runner = CliRunner()


def _store(path: Path, clock: list[datetime]) -> Store:
    store = Store.open(path, now=lambda: clock[0])
    store.create_wave("w", playbook_name="p", playbook_hash=content_hash("x"), state="running")
    store.enroll("w", ["PC-P1", "PC-L1", "PC-L2", "PC-N1", "PC-DONE"])
    store.set_sites({"PC-P1": "paris", "PC-L1": "lyon", "PC-L2": "lyon", "PC-DONE": "nantes"})
    store.transition("PC-DONE", "pending", "migrated", "test")
    return store


def test_sites_without_a_live_worker_are_named_with_the_last_heartbeat(tmp_path: Path) -> None:
    """paris has a live worker; lyon's worker beat last an hour ago; devices without a site were never served
    (the only worker left serves paris); nantes has only settled devices: not named."""
    clock = [T0]
    with _store(tmp_path / "state", clock) as store:
        assert collect_status(store, now=lambda: clock[0]).unserved == ()  # no worker rows: nothing said
        store.register_worker("lyon-worker", ["lyon"])
        clock[0] = T0 + timedelta(hours=1)
        store.register_worker("paris-worker", ["paris"])
        view = collect_status(store, now=lambda: clock[0])
    lines = [u.line() for u in view.unserved]
    assert lines == [
        "site lyon: no live worker since 2026-11-02T08:00:00Z (2 open devices wait for one)",
        "devices without a site: no live worker ever (1 open devices wait for one)",
    ]
    result = runner.invoke(app, ["status", "--state", str(tmp_path / "state")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "site lyon: no live worker since" in result.output
    assert "devices without a site: no live worker ever" in result.output


def test_a_worker_without_sites_serves_every_site_until_it_stops(tmp_path: Path) -> None:
    """A live worker without --site serves every device; once it stops cleanly, every open site is named."""
    clock = [T0]
    with _store(tmp_path / "state", clock) as store:
        store.register_worker("everyone", [])
        assert collect_status(store, now=lambda: clock[0]).unserved == ()
        store.worker_stopped("everyone")
        sites = [u.site for u in collect_status(store, now=lambda: clock[0]).unserved]
    assert sites == ["lyon", "paris", None]
