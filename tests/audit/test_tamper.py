"""The audit tamper suite: someone with the database file changes the audit log behind the store's back (triggers
dropped with sqlite3) and `migrator audit verify` says so, exit 1, naming what.

Each kind of tampering is tried three ways: with the anchor pasted into the change ticket (always detected),
without any anchor but with the heads the store keeps outside the chain (audit_head, the wave rows) and the
JSON log (detected, each case says by what), and with the attacker forging those too (the anchor, or a report
written before, is then what catches it).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from migrator.cli import app
from migrator.logs import configure_logging
from migrator.report.anchors import log_audit_head
from migrator.store import AuditEntry, AuditHead, Store, content_hash
from migrator.store.audit import entry_hash
from migrator.store.codec import canonical
from tests.store.conftest import FakeClock

runner = CliRunner()
AUDIT_COLUMNS = ("id", "at", "actor", "action", "device", "change_ticket", "before", "after", "prev_hash", "hash")


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    """A store of three waves with devices that moved (every move audited), its log holding the head at the
    end, as a `run` leaves it: 22 audit entries."""
    folder = tmp_path / "state"
    clock = FakeClock()
    configure_logging(folder / "logs")
    with Store.open(folder, now=clock) as store:
        for n in (1, 2, 3):
            wave = f"wave-{n}"
            store.create_wave(
                wave,
                playbook_name="key-trust-to-cloud-kerberos",
                playbook_hash=content_hash("steps: []"),
                change_ticket=f"CHG000{n}",
                audit=AuditEntry("alice", "create wave", after={"wave": wave}),
            )
            devices = [f"PC-{n}{i}" for i in range(2)]
            store.enroll(wave, devices)
            store.set_wave_state(wave, "running", audit=AuditEntry("alice", "start wave", after={"wave": wave}))
            for device in devices:
                for source, dest in (("pending", "preflight"), ("preflight", "snapshot")):
                    store.transition(device, source, dest, "go", audit=AuditEntry("engine", f"{source}->{dest}"))
            store.set_wave_state(wave, "completed", audit=AuditEntry("alice", "end wave", after={"wave": wave}))
        head = store.record_audit_head()
        log_audit_head(head, why="run")
    configure_logging(None)
    assert head.entries == 3 * (3 + 4)
    yield folder


def _verify(state: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["audit", "verify", "--state", str(state), *args])
    return result.exit_code, result.output


def _anchor(state: Path) -> str:
    result = runner.invoke(app, ["audit", "anchor", "--state", str(state)])
    assert result.exit_code == 0, result.output
    line = result.output.strip().splitlines()[-1]
    assert AuditHead.parse(line)
    return line


def _sql(state: Path, *statements: str, forge_heads: bool = False) -> None:
    """Change the database with sqlite3, as someone holding the file would: the append-only triggers first.

    ``forge_heads``: then also make the store's own heads (audit_head, every wave row) agree with the tampered
    chain, and delete the log's heads, so only an anchor kept elsewhere is left."""
    db = sqlite3.connect(state / "migrator.db")
    db.execute("DROP TRIGGER IF EXISTS audit_no_update")
    db.execute("DROP TRIGGER IF EXISTS audit_no_delete")
    for statement in statements:
        db.execute(statement)
    if forge_heads:
        last = db.execute("SELECT COUNT(*), (SELECT hash FROM audit ORDER BY id DESC LIMIT 1) FROM audit").fetchone()
        count, tip = last[0], last[1] or "0" * 64
        db.execute("UPDATE audit_head SET entries = ?, hash = ?", (count, tip))
        db.execute("UPDATE waves SET audit_entries = ?, audit_head = ?", (count, tip))
        (state / "logs" / "migrator.jsonl").write_text("")
    db.commit()
    db.close()


def _rows(state: Path) -> list[tuple[object, ...]]:
    db = sqlite3.connect(state / "migrator.db")
    rows = db.execute(f"SELECT {', '.join(AUDIT_COLUMNS)} FROM audit ORDER BY id").fetchall()
    db.close()
    return rows


def _rechain(state: Path, rows: list[tuple[object, ...]]) -> None:
    """Replace the whole log with ``rows`` renumbered 1.. and re-hashed: a chain that verifies on its own."""
    with Store.open(state, read_only=True) as store:  # to read the stored rows as the store does
        records = {r.id: r for r in store.audit_entries()}
    db = sqlite3.connect(state / "migrator.db")
    db.execute("DROP TRIGGER IF EXISTS audit_no_update")
    db.execute("DROP TRIGGER IF EXISTS audit_no_delete")
    db.execute("DELETE FROM audit")
    previous = "0" * 64
    for new_id, row in enumerate(rows, start=1):
        record = records[int(str(row[0]))]
        actor = str(row[2])
        digest = entry_hash(
            entry_id=new_id,
            at=record.at,
            actor=actor,
            action=record.action,
            device=record.device,
            change_ticket=record.change_ticket,
            before=record.before,
            after=record.after,
            prev_hash=previous,
        )
        db.execute(
            f"INSERT INTO audit ({', '.join(AUDIT_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (new_id, row[1], actor, row[3], row[4], row[5], row[6], row[7], previous, digest),
        )
        previous = digest
    db.commit()
    db.close()


# ------------------------------------------------------------------------------------------------ the cases


def _edit(column: str) -> Callable[[Path], None]:
    values = {
        "id": "UPDATE audit SET id = 99 WHERE id = 7",
        "at": "UPDATE audit SET at = '2024-01-01 00:00:00.000000' WHERE id = 7",
        "actor": "UPDATE audit SET actor = 'mallory' WHERE id = 7",
        "action": "UPDATE audit SET action = 'approve' WHERE id = 7",
        "device": "UPDATE audit SET device = 'PC-99' WHERE id = 7",
        "change_ticket": "UPDATE audit SET change_ticket = 'CHG9999' WHERE id = 7",
        "before": 'UPDATE audit SET before = \'{"state":"x"}\' WHERE id = 7',
        "after": 'UPDATE audit SET after = \'{"wave":"wave-9"}\' WHERE id = 7',
        "prev_hash": f"UPDATE audit SET prev_hash = '{'a' * 64}' WHERE id = 7",
        "hash": f"UPDATE audit SET hash = '{'b' * 64}' WHERE id = 7",
    }
    return lambda state: _sql(state, values[column])


def _forged_append(state: Path) -> None:
    """A well-formed entry 22 + 1 linked to the head with a correctly computed hash (the algorithm is public)."""
    last = _rows(state)[-1]
    at = datetime(2025, 3, 2, tzinfo=UTC)
    digest = entry_hash(
        entry_id=int(str(last[0])) + 1,
        at=at,
        actor="mallory",
        action="approve",
        device=None,
        change_ticket=None,
        before=None,
        after=None,
        prev_hash=str(last[9]),
    )
    _sql(
        state,
        f"INSERT INTO audit ({', '.join(AUDIT_COLUMNS)}) VALUES ({int(str(last[0])) + 1}, "
        f"'{at:%Y-%m-%d %H:%M:%S.%f}', 'mallory', 'approve', NULL, NULL, NULL, NULL, '{last[9]}', '{digest}')",
    )


def _rebuilt(state: Path) -> None:
    """Entry 7's actor rewritten and every hash recomputed from there: the chain alone verifies."""
    rows = _rows(state)
    rows[6] = (*rows[6][:2], "mallory", *rows[6][3:])
    _rechain(state, rows)


def _rebuilt_without(first: int, last: int) -> Callable[[Path], None]:
    """Entries first..last dropped and the rest renumbered and re-hashed: the chain alone verifies."""

    def tamper(state: Path) -> None:
        _rechain(state, [row for row in _rows(state) if not first <= int(str(row[0])) <= last])

    return tamper


def _reorder(state: Path) -> None:
    _sql(
        state,
        "UPDATE audit SET id = -1 WHERE id = 8",
        "UPDATE audit SET id = 8 WHERE id = 9",
        "UPDATE audit SET id = 9 WHERE id = -1",
    )


CASES: dict[str, Callable[[Path], None]] = {
    **{f"edit-{column}": _edit(column) for column in AUDIT_COLUMNS},
    "delete-first": lambda s: _sql(s, "DELETE FROM audit WHERE id = 1"),
    "delete-middle": lambda s: _sql(s, "DELETE FROM audit WHERE id = 11"),
    "delete-last": lambda s: _sql(s, "DELETE FROM audit WHERE id = (SELECT MAX(id) FROM audit)"),
    "delete-last-five": lambda s: _sql(s, "DELETE FROM audit WHERE id > (SELECT MAX(id) - 5 FROM audit)"),
    "delete-all": lambda s: _sql(s, "DELETE FROM audit"),
    "reorder": _reorder,
    "append-forged-row": _forged_append,
    "rebuild-chain-after-edit": _rebuilt,
    "rebuild-chain-without-tail": _rebuilt_without(20, 21),
    "rebuild-chain-without-start": _rebuilt_without(1, 3),
}


# Cases that leave a chain consistent on its own (a shorter, longer or re-hashed one): only heads show them.
CONSISTENT = {
    "delete-last",
    "delete-last-five",
    "delete-all",
    "append-forged-row",
    "rebuild-chain-after-edit",
    "rebuild-chain-without-tail",
    "rebuild-chain-without-start",
}


@pytest.mark.parametrize("case", CASES)
def test_each_tampering_is_detected_against_the_anchor(state: Path, case: str) -> None:
    """With the anchor from the change ticket, every kind of tampering exits 1 and says TAMPERED."""
    anchor = _anchor(state)
    assert _verify(state, "--anchor", anchor)[0] == 0
    CASES[case](state)
    code, output = _verify(state, "--anchor", anchor)
    assert code == 1, output
    assert "TAMPERED" in output and "intact" not in output


@pytest.mark.parametrize("case", CASES)
def test_each_tampering_is_detected_without_an_anchor(state: Path, case: str) -> None:
    """Without an anchor, the heads kept outside the chain (the store's audit_head, the wave rows, the log) still
    show every case: the chain's own checks catch edits, gaps and reorders; the heads catch a lost tail, a
    forged append and a rebuilt chain."""
    CASES[case](state)
    code, output = _verify(state)
    assert code == 1, output
    assert "TAMPERED" in output


@pytest.mark.parametrize("case", [c for c in CASES if not c.startswith("edit-") or c == "edit-actor"])
def test_with_every_head_in_the_store_and_log_forged_the_anchor_still_detects(state: Path, case: str) -> None:
    """Someone who also rewrites audit_head, every wave's head and the log: only a head kept outside their reach
    (the change ticket's anchor, or a report written before) shows what they did; without it, the chain's own
    checks still catch what was not re-hashed."""
    anchor = _anchor(state)
    report = state.parent / "report.html"
    assert runner.invoke(app, ["report", "--state", str(state), "--out", str(report)]).exit_code == 0
    CASES[case](state)
    _sql(state, forge_heads=True)
    if case in CONSISTENT:
        # The documented limit: a consistent rewrite of the store and its log verifies without an outside anchor.
        assert _verify(state)[0] == 0
    for proof in (anchor, str(report)):
        code, output = _verify(state, "--anchor", proof)
        if case == "append-forged-row" and proof == str(report):
            # A report holds a head the log has since grown past, which is how a log grows legitimately too: an
            # appended entry shows only against the ticket's anchor (the log must end there).
            assert code == 0, output
            continue
        assert code == 1, (proof, output)
        assert "TAMPERED" in output


def test_an_untouched_store_verifies_against_everything(state: Path) -> None:
    """No tampering: the chain, the store's heads, the log, an anchor and a report all agree, exit 0."""
    anchor = _anchor(state)
    report = state.parent / "report.json"
    written = runner.invoke(app, ["report", "--state", str(state), "--format", "json", "--out", str(report)])
    assert written.exit_code == 0
    code, output = _verify(state, "--anchor", anchor, "--anchor", str(report))
    assert code == 0, output
    assert f"audit log intact: 21 entries, head {anchor}" in output


def test_legitimate_growth_after_an_anchor_needs_allow_appended(state: Path) -> None:
    """An anchor says where the log ended then; later entries are an error unless --allow-appended says they may
    be there (an older ticket's anchor)."""
    anchor = _anchor(state)
    with Store.open(state) as store:
        store.append_audit(AuditEntry("alice", "approve", after={"wave": "wave-3"}))
    code, output = _verify(state, "--anchor", anchor)
    assert code == 1 and "1 entries were added after it" in output
    assert _verify(state, "--anchor", anchor, "--allow-appended")[0] == 0


def test_the_message_names_what_happened(state: Path) -> None:
    """A deleted tail is named as such: how many entries the store's head counts and how many are left."""
    _sql(state, "DELETE FROM audit WHERE id > 16")
    code, output = _verify(state)
    assert code == 1
    assert "the store's head says the audit log ends at entry 21" in output and "5 entries were deleted" in output
    payload = json.loads(runner.invoke(app, ["audit", "verify", "--state", str(state), "--json"]).output)
    assert payload["ok"] is False and {p["kind"] for p in payload["problems"]} >= {"head", "wave head"}


@pytest.mark.parametrize(
    "statement", ["DROP TABLE audit_head", "ALTER TABLE waves DROP COLUMN audit_head"], ids=["table", "column"]
)
def test_removing_where_the_heads_are_kept_is_tampering(state: Path, statement: str) -> None:
    """Dropping the audit_head table or the waves' head column is reported as tampering, not as a broken store."""
    _sql(state, statement)
    code, output = _verify(state)
    assert code == 1 and "audit heads were removed" in output


def test_a_bad_anchor_is_bad_input(state: Path) -> None:
    """An --anchor that is neither an anchor line nor a file holding one exits 2 and says what an anchor is."""
    code, output = _verify(state, "--anchor", "audit-head:12:xyz")
    assert code == 2 and "audit-head:<entries>:<64 lowercase hex digits>" in output


def test_anchor_refuses_a_tampered_log_and_logs_a_good_head(state: Path) -> None:
    """`audit anchor` prints one line and writes it to the JSON log; on a tampered log it prints none, exit 1."""
    line = _anchor(state)
    logged = [json.loads(x) for x in (state / "logs" / "migrator.jsonl").read_text().splitlines()]
    assert logged[-1]["anchor"] == line
    _sql(state, "DELETE FROM audit WHERE id = 21")
    result = runner.invoke(app, ["audit", "anchor", "--state", str(state)])
    assert result.exit_code == 1 and "audit-head:" not in result.stdout


def test_a_damaged_store_is_never_called_intact(state: Path) -> None:
    """A store whose devices pages are damaged (what `status` calls malformed) does not verify: exit 2."""
    database = state / "migrator.db"
    db = sqlite3.connect(database)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'devices'").fetchone()[0]
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    data = bytearray(database.read_bytes())
    start = (root - 1) * page_size
    data[start : start + page_size] = hashlib.sha256(b"x").digest() * (page_size // 32)
    database.write_bytes(bytes(data))
    status = runner.invoke(app, ["status", "--state", str(state)])
    assert status.exit_code == 2, status.output
    code, output = _verify(state)
    assert code == 2 and "intact" not in output and "damaged" in output


def test_canonical_is_what_the_chain_hashes() -> None:
    """The tamper helpers hash entries as the store does (a guard against a suite that forges wrongly)."""
    assert canonical({"b": 1, "a": [1, 2]}, where="t") == '{"a":[1,2],"b":1}'


def test_the_head_is_printed_as_is(tmp_path: Path) -> None:
    """An anchor such as audit-head:100:… reaches the terminal verbatim (Rich would draw `:100:` as an emoji)."""
    with Store.open(tmp_path) as store:
        for n in range(100):
            store.append_audit(AuditEntry("alice", f"step {n}"))
        head = store.audit_head()
    assert head is not None and head.entries == 100
    code, output = _verify(tmp_path)
    assert code == 0 and f"head {head.anchor};" in output
