"""``migrator resume`` names the devices another live worker holds, and until when; ``--lease-seconds``. The
resume tests run on SQLite (``--state``) and on PostgreSQL (``--store URL``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from migrator.cli import app
from migrator.engine.leases import DEFAULT_LEASE_SECONDS
from migrator.playbook import builtin_path
from migrator.store import LeaseOwner, Store, content_hash

ENV = {"MIGRATOR_USERNAME": "LAB\\migrator-admin", "MIGRATOR_PASSWORD": "not-used-here", "MIGRATOR_STORE": ""}


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the store is: the --state folder (SQLite), or a PostgreSQL schema of the test's own."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return str(tmp_path / "state")


def _store_args(location: str, tmp_path: Path) -> list[str]:
    return ["--state", str(tmp_path / "state"), "--store", location]


def _interrupted_wave(tmp_path: Path, location: str, second: str = "pending") -> str:
    """A store whose running wave has PC-1 migrated and PC-2 in ``second`` (its inventory and playbook on disk;
    the inventory's address is never reached: the tests keep every visit from connecting)."""
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        "devices:\n  - {name: PC-1, address: 127.0.0.1}\n  - {name: PC-2, address: 127.0.0.1}\n", encoding="utf-8"
    )
    settings = {
        "inventory": str(inventory),
        "playbook": "to-cloud-kerberos",
        "batch_size": 50,
        "concurrency": 2,
        "max_fail_percent": 10.0,
        "canary": 0,
        "approval": False,
        "windows": [],
        "entra_kerberos": {},
        "limit": None,
        "devices": ["PC-1", "PC-2"],
    }
    with Store.open(location) as store:
        playbook_hash = content_hash(builtin_path("to-cloud-kerberos").read_text(encoding="utf-8"))
        store.create_wave(
            "w1", playbook_name="to-cloud-kerberos", playbook_hash=playbook_hash, settings=settings, state="running"
        )
        store.enroll("w1", ["PC-1"], state="migrated", path="key")
        store.enroll("w1", ["PC-2"], state=second, path="key" if second == "migrated" else None)
    return location


def test_resume_names_the_devices_another_worker_holds_and_until_when(tmp_path: Path, location: str) -> None:
    """A device leased by a worker of another host is named with host, pid and expiry before the run, and is
    left alone (its visit is busy); nothing is sent to it."""
    state = _interrupted_wave(tmp_path, location)
    elsewhere = LeaseOwner("build-7.example", 4242, None, "0badcafe")
    with Store.open(state) as store:
        assert store.acquire("PC-2", str(elsewhere), 3600)
        expires = store.get_device("PC-2").lease_expires_at
    assert expires is not None
    result = CliRunner().invoke(app, ["resume", *_store_args(state, tmp_path), "--no-wait"], env=ENV)
    assert result.exit_code == 0, result.output
    holder = "PC-2 leased by host build-7.example pid 4242"
    assert f"{holder} until {expires:%H:%M:%S} UTC (another host: free when it expires)\n" in result.output
    with Store.open(state) as store:
        device = store.get_device("PC-2")
        assert (device.state, device.lease_owner) == ("pending", str(elsewhere))


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="process start times come from /proc")
def test_resume_does_not_name_a_dead_workers_lease(tmp_path: Path, location: str) -> None:
    """A lease of this host whose process is gone is not waited for, so resume does not list it."""
    state = _interrupted_wave(tmp_path, location, second="migrated")
    me = LeaseOwner.current()
    gone = LeaseOwner(me.host, me.pid, "000000000000.1.1", "0badcafe")  # a boot that is over
    with Store.open(state) as store:
        assert store.acquire("PC-1", str(gone), 3600)
        assert store.leases()[0].liveness == "dead"
    result = CliRunner().invoke(app, ["resume", *_store_args(state, tmp_path), "--no-wait"], env=ENV)
    assert result.exit_code == 0 and "leased by" not in result.output, result.output


def test_lease_seconds_default_is_the_engines_and_must_be_positive(tmp_path: Path) -> None:
    """run and resume default --lease-seconds to the engine's TTL (written out in the CLI) and refuse below 1 s."""
    for command in ("run", "resume"):
        result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
        assert "--lease-seconds" in result.output
        assert f"[default: {DEFAULT_LEASE_SECONDS}]" in result.output
    result = CliRunner().invoke(app, ["resume", "--state", str(tmp_path), "--lease-seconds", "0.5"], env=ENV)
    assert result.exit_code == 2 and "--lease-seconds" in result.output
