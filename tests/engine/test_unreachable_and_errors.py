"""No device stranded: a device that stops answering while it waits, one unreachable past its deadline, and a bug
in a visit, each against the lab (real pypsrp) on a virtual clock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from migrator.engine.device import StoreFunnel
from migrator.logs import configure_logging
from migrator.machine import purposes
from migrator.machine.context import load_device
from migrator.machine.core import Change
from migrator.playbook import Playbook, Waits
from tests.engine.labkit import LabKit, drive, open_store, playbook, running_lab, sign_everyone_in, visit_device
from tests.engine.test_device import one_hybrid_device

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CERT_ONLY = "key=0,cert=100,cloud=0,none=0"


def _book() -> Playbook:
    """The certificate trust playbook with days shortened: recheck every 6 h, unreachable for 1 day at most."""
    waits = Waits(
        recheck_every=6 * 3600,
        user_deadline=3 * 86400,
        dc_deadline=3 * 86400,
        reprovision_deadline=3 * 86400,
        unreachable_deadline=86400,
    )
    return playbook("cert-trust-to-cloud-kerberos").model_copy(update={"waits": waits})


def _offline(kit: LabKit, name: str) -> None:
    kit.background.call(kit.server.take_offline(name))


def _online(kit: LabKit, name: str) -> None:
    kit.background.call(kit.server.bring_online(name))


def test_a_device_that_stops_answering_while_its_user_is_awaited_waits_for_it_then_migrates(tmp_path: Path) -> None:
    """Waiting for the user, the device refuses connections for two visits: it waits for the device (not
    failed, its user untouched, the error and since when recorded), then carries on and migrates; the container
    was deleted exactly once."""
    fleet, target = one_hybrid_device(CERT_ONLY, single_user=True)
    book = _book()
    with running_lab(fleet, tmp_path / "lab") as kit:
        sign_everyone_in(kit)
        store = open_store(tmp_path / "state", kit, book, [target.name])
        seen: list[tuple[str, str | None]] = []

        def weather(lab: LabKit, _number: int) -> None:
            row = store.get_device(target.name)
            seen.append((row.state, row.last_error))
            if row.state == "waiting_for_user" and not any(s == "waiting_for_device" for s, _ in seen):
                _offline(lab, target.name)
            if [s for s, _ in seen].count("waiting_for_device") == 2:
                _online(lab, target.name)

        drive(kit, store, book, [target.name], between=weather)
        assert store.get_device(target.name).state == "migrated"
        waiting = [error for state, error in seen if state == "waiting_for_device"]
        assert waiting and all("tried again at each recheck" in (e or "") for e in waiting)
        assert "failed" not in {s for s, _ in seen}
        transitions = store.export_device_timeline(target.name).transitions
        assert [t.event for t in transitions if t.subject == "device"].count("reached") == 1
        assert [u.counters.container_deletions for u in target.users] == [1]


def test_a_device_unreachable_past_its_deadline_is_parked_and_a_new_visit_tries_again(tmp_path: Path) -> None:
    """Down for longer than waits.unreachable_deadline: parked as unreachable (no further visit is due), not
    failed; once it is back, the next visit (what `migrator resume` does) tries again and it migrates."""
    fleet, target = one_hybrid_device(CERT_ONLY, single_user=True)
    book = _book()
    with running_lab(fleet, tmp_path / "lab") as kit:
        sign_everyone_in(kit)
        store = open_store(tmp_path / "state", kit, book, [target.name])
        _offline(kit, target.name)
        results = drive(kit, store, book, [target.name])
        row = store.get_device(target.name)
        assert row.state == "unreachable" and results[target.name].next_due is None
        assert "unreachable_deadline" in (row.last_error or "") and load_device(row.context).unreachable_since
        _online(kit, target.name)
        drive(kit, store, book, [target.name])
        assert store.get_device(target.name).state == "migrated"
        events = [t.event for t in store.export_device_timeline(target.name).transitions if t.subject == "device"]
        assert events.count("unreachable_too_long") == 1 and "retry" in events


def test_a_bug_in_a_visit_parks_the_device_in_error_with_its_traceback_and_resume_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected exception while the answer of a step is read: the device goes to `error` with the exception
    in last_error, the traceback in its context and in the JSON log; nothing else moved. With the bug fixed, the
    next visit retries it from where it was, and it migrates."""
    fleet, target = one_hybrid_device(CERT_ONLY, single_user=True)
    book = _book()
    log_file = configure_logging(tmp_path / "logs")

    def broken(self: object, m: object, event: object) -> None:
        raise KeyError("no_such_field")

    with running_lab(fleet, tmp_path / "lab") as kit:
        sign_everyone_in(kit)
        store = open_store(tmp_path / "state", kit, book, [target.name])
        monkeypatch.setattr(purposes.Verify, "answer", broken)
        drive(kit, store, book, [target.name])
        row = store.get_device(target.name)
        assert row.state == "error" and row.last_error == "internal error: KeyError: 'no_such_field'"
        context = load_device(row.context)
        assert context.return_to == "users" and "KeyError" in (context.traceback or "")
        assert log_file is not None
        records = [json.loads(line) for line in log_file.read_text().splitlines()]
        assert any(
            r.get("event", "").startswith("internal error") and "Traceback" in r.get("traceback", "") for r in records
        )

        monkeypatch.undo()
        drive(kit, store, book, [target.name])
        assert store.get_device(target.name).state == "migrated"
        assert [u.counters.container_deletions for u in target.users] == [1]


def test_a_device_whose_record_cannot_be_rebuilt_is_parked_in_error(tmp_path: Path) -> None:
    """A stored context that no longer reads (a corrupt record): the visit records `error` with the exception
    through the funnel instead of failing the whole wave, and the device keeps where it was for a person."""
    fleet, target = one_hybrid_device(CERT_ONLY, single_user=True)
    book = _book()
    with running_lab(fleet, tmp_path / "lab") as kit:
        store = open_store(tmp_path / "state", kit, book, [target.name])
        funnel = StoreFunnel(store, target.name, owner="test", actor="test", row=store.get_device(target.name))
        store.acquire(target.name, "test", 60)
        funnel.change(Change("start", "pending", "preflight", {"plan_done": "not a number"}))
        store.release(target.name, "test")
        result = visit_device(kit, store, book, target.name)
        row = store.get_device(target.name)
        assert result.state == row.state == "error" and "internal error" in (row.last_error or "")
        assert load_device(row.context).return_to == "preflight"
        assert row.context is not None and row.context["unreadable"] == {"plan_done": "not a number"}
