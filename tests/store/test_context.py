"""Schema v2: the machine's context travels with the state through the funnel; containers identified later."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from migrator.store import SCHEMA_VERSION, ConcurrentUpdate, SecretInStore, Store, content_hash
from tests.store.conftest import FakeClock


def test_context_is_written_with_the_state_and_kept_when_not_given(store: Store, wave: str) -> None:
    """transition(context=...) replaces the context in the same transaction; without it the context stays."""
    store.transition("PC-001", "pending", "preflight", "start", context={"plan": [1, 2], "plan_done": 0})
    assert store.get_device("PC-001").context == {"plan": [1, 2], "plan_done": 0}
    store.transition("PC-001", "preflight", "snapshot", "preflight_done")
    assert store.get_device("PC-001").context == {"plan": [1, 2], "plan_done": 0}
    store.add_user("PC-001", "CORP\\alice", sid="S-1-5-21-1")
    store.user_transition("PC-001", "CORP\\alice", "pending", "identifying", "start", context={"since": "x"})
    assert store.get_user("PC-001", "CORP\\alice").context == {"since": "x"}


def test_a_refused_transition_leaves_the_context(store: Store, wave: str) -> None:
    """A stale expected state changes neither state nor context; a secret-looking key is refused outright."""
    store.transition("PC-001", "pending", "preflight", "start", context={"a": 1})
    with pytest.raises(ConcurrentUpdate):
        store.transition("PC-001", "pending", "preflight", "start", context={"a": 2})
    with pytest.raises(SecretInStore):
        store.transition("PC-001", "preflight", "snapshot", "x", context={"password": "hunter2"})
    row = store.get_device("PC-001")
    assert (row.state, row.context) == ("preflight", {"a": 1})


def test_identify_user_records_the_first_container_only(store: Store, wave: str) -> None:
    """A key id read after preflight is recorded once; a later one does not replace it."""
    store.add_user("PC-001", "CORP\\bob", sid="S-1-5-21-2", container_trust="cert")
    first = store.identify_user("PC-001", "corp\\BOB", container_trust="cert", key_id="{AAA}")
    second = store.identify_user("PC-001", "CORP\\bob", container_trust="key", key_id="{BBB}")
    assert (first.key_id, second.key_id, second.container_trust) == ("{AAA}", "{AAA}", "cert")


def test_a_v1_store_gains_the_context_columns(tmp_path: Path, clock: FakeClock) -> None:
    """Opening a version-1 store adds devices.context and users.context and keeps every row."""
    with Store.open(tmp_path, now=clock) as store:
        store.create_wave("old", playbook_name="p", playbook_hash=content_hash("x"))
        store.enroll("old", ["PC-OLD"])
        store.transition("PC-OLD", "pending", "preflight", "start")
    db = sqlite3.connect(tmp_path / "migrator.db")
    db.executescript(
        "ALTER TABLE devices DROP COLUMN context; ALTER TABLE users DROP COLUMN context; "
        "UPDATE schema_version SET version = 1;"
    )
    db.close()
    with Store.open(tmp_path, now=clock) as store:
        assert store.schema_version() == SCHEMA_VERSION
        row = store.get_device("PC-OLD")
        assert (row.state, row.context) == ("preflight", None)
        store.transition("PC-OLD", "preflight", "snapshot", "x", context={"ok": True})
        assert store.get_device("PC-OLD").context == {"ok": True}
