"""Reports of what the real machine recorded: the transcript machine (tests/machine/transcript.py) drives a device
through the engine's funnel into a store, journalling each side effect as the driver does, and the report reads
the outcomes back (a deleted container with and without the passkeys warning, a rollback, a device that does not
answer, an error)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from migrator.engine.device import StoreFunnel, journal_json, rebuild
from migrator.facts import DeviceFacts, RestoreAction
from migrator.machine.commands import RunStep, StepSucceeded
from migrator.report import collect_report, collect_status, render_html
from migrator.store import Store, content_hash
from tests.machine.transcript import OLD_KEY, SETTINGS, SID, START, USER, Device, Transcript
from tests.report.conftest import OWNER

DEVICE = "PC-0001"  # the transcript machine's device
WINDOWS_11_WARNING = "Windows 11: the Hello container may also hold device-bound passkeys, which are deleted with it"
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


class Windows10(Device):
    """The transcript's device on a Windows 10 build (no passkeys in its Hello container)."""

    def facts(self) -> DeviceFacts:
        facts = super().facts()
        os = facts.os.model_copy(update={"caption": "Microsoft Windows 10 Enterprise", "build": 19045})
        return facts.model_copy(update={"os": os})


@dataclass
class StoredTranscript(Transcript):
    """A transcript whose funnel is the engine's (StoreFunnel) and whose journalled answers go through the
    store's journal, intent then outcome, as the driver writes them."""

    store: Store | None = None
    attempts: dict[str, int] = field(default_factory=dict)

    def answer(self, result: Any) -> None:
        command = self.pending
        assert command is not None and self.store is not None
        if not command.side_effect:
            super().answer(result)
            return
        self.pending = None
        self.attempts[command.name] = self.attempts.get(command.name, 0) + 1
        attempt = self.attempts[command.name]
        key = f"{DEVICE}/{command.user or '-'}/{command.name}/{attempt}"
        entry = self.store.intent(
            DEVICE, command.name, attempt, command.payload(), key=key, user=command.user, owner=OWNER
        )
        self.store.outcome(entry.id, {"ok": True, "result": journal_json(result)}, ok=True)
        self.machine.handle(StepSucceeded(command, result, self.now, entry.id))


@dataclass
class Lab:
    store: Store
    state_dir: Path
    transcript: StoredTranscript | None = None

    def start(self, device: Device | None = None) -> StoredTranscript:
        funnel = StoreFunnel(self.store, DEVICE, owner=OWNER, actor="svc-migrator", row=self.store.get_device(DEVICE))
        t = StoredTranscript(device=device or Device(), funnel=funnel, store=self.store)  # type: ignore[arg-type]
        self.transcript = t
        return t


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    holder: list[Lab] = []

    def now() -> Any:  # the store's clock is the transcript's: stored times and context times agree
        t = holder[0].transcript if holder else None
        return t.now if t is not None else START

    store = Store.open(tmp_path / "state", now=now, synchronous="NORMAL")
    store.create_wave("pilot", playbook_name="cert-trust-to-cloud-kerberos", playbook_hash=content_hash("p"))
    store.enroll("pilot", [DEVICE])
    assert store.acquire(DEVICE, OWNER, 10**9)
    holder.append(Lab(store, tmp_path / "state"))
    yield holder[0]
    store.close()


def _deleted(t: StoredTranscript) -> None:
    """Walk the certificate trust path to the guarded delete and the prompt: the user waits to re-provision."""
    t.run_until_wait_or_done()
    assert (t.state_now, t.user_state()) == ("waiting_for_user", "waiting_for_reprovision")


def test_the_machines_delete_on_windows_11_is_reported_with_the_passkeys_warning(lab: Lab) -> None:
    """The delete the machine journalled and recorded: device, wave, user, SID, the NgcKeyId recorded before
    the point of no return, when, and the Windows 11 passkeys warning, in JSON, CSV data and HTML."""
    t = lab.start()
    _deleted(t)
    deleted_at = t.now
    t.device.sign_in_again()
    t.visit(HOUR)
    t.run_until_wait_or_done()
    assert t.state_now == "migrated"
    report = collect_report(lab.store)
    (gone,) = report.deleted_containers
    assert (gone.device, gone.wave, gone.user, gone.sid) == (DEVICE, "pilot", USER, SID)
    assert (gone.key_id, gone.container_trust, gone.deleted_at) == (OLD_KEY, "cert", deleted_at)
    assert gone.delete_warning == WINDOWS_11_WARNING
    assert f"WARNING: {WINDOWS_11_WARNING}" in render_html(report)


def test_the_machines_delete_on_windows_10_records_no_warning(lab: Lab) -> None:
    """On Windows 10 the machine records no warning with the delete: the report says 'not recorded'."""
    _deleted(lab.start(Windows10()))
    report = collect_report(lab.store)
    (gone,) = report.deleted_containers
    assert gone.key_id == OLD_KEY and gone.delete_warning is None
    section = render_html(report).split('id="entra-keys"')[1].split('id="timelines"')[0]
    assert "not recorded" in section and "WARNING" not in section


def test_the_machines_rollback_is_reported_from_its_context(lab: Lab) -> None:
    """Rolled back by the machine (rebuilt from the store, as `migrator rollback` does): the values it restored,
    each with the action the restore step reported, and the deleted container that cannot come back."""
    t = lab.start()
    _deleted(t)
    funnel = StoreFunnel(lab.store, DEVICE, owner=OWNER, actor="svc-migrator", row=lab.store.get_device(DEVICE))
    machine = rebuild(lab.store.visit_record(DEVICE), t.playbook, funnel, path_settings=SETTINGS, rollback=True)
    t.machine = machine
    t.visit(HOUR)
    machine.begin_rollback(t.now)
    command = t.next()
    assert isinstance(command, RunStep) and command.purpose == "restore"
    records = command.step.parameters()["Records"]
    t.answer(tuple(RestoreAction(path=r["path"], name=r["name"], action="removed") for r in records))
    assert machine.state == "rolled_back"
    (view,) = collect_report(lab.store).rollbacks
    assert view.complete and view.problems == ()
    assert view.restored and all(v.action == "removed" for v in view.restored)
    assert {v.name for v in view.restored} == {r["name"] for r in records}
    assert [c.user for c in view.not_restorable] == [USER]


def test_a_device_that_stops_answering_is_reported_with_since_when(lab: Lab) -> None:
    """The machine's waiting_for_device, then unreachable past the deadline: status shows since when the device
    has not answered (the first failure, not the last recheck) and its last error; resume retries the parked one."""
    t = lab.start()
    _deleted(t)
    t.visit(HOUR)
    first_failure = t.now
    t.expect("facts")
    t.fail("DeviceUnreachable", "connection refused", transient=True)
    t.visit(HOUR)
    t.expect("facts")
    t.fail("DeviceUnreachable", "connection refused", transient=True)
    (status,) = collect_status(lab.store, now=lambda: t.now).devices
    assert status.device.state == "waiting_for_device"
    assert status.unreachable_since == first_failure == status.since
    assert "connection refused" in status.reason and "migrator resume" not in status.reason
    for _ in range(3):  # past waits.unreachable_deadline (3 days) it is parked
        t.visit(DAY)
        t.expect("facts")
        t.fail("DeviceUnreachable", "connection refused", transient=True)
    (status,) = collect_status(lab.store, now=lambda: t.now).devices
    assert status.device.state == "unreachable" and status.unreachable_since == first_failure
    assert status.reason.endswith("`migrator resume` retries it")


def test_an_error_is_reported_with_its_summary_and_traceback(lab: Lab) -> None:
    """The machine parks a bug in error: status gives the summary and that resume retries it; the traceback is
    in the JSON and on the device's page."""
    t = lab.start()
    _deleted(t)
    t.visit(HOUR)
    t.machine.crash("internal error: KeyError: 'x'", "Traceback (most recent call last): ...", t.now)
    (status,) = collect_status(lab.store).devices
    assert status.reason == "internal error: KeyError: 'x'; `migrator resume` retries it once the cause is fixed"
    assert status.as_json()["traceback"] == "Traceback (most recent call last): ..."
    assert "Traceback (most recent call last): ..." in render_html(collect_report(lab.store))
