"""A store with two waves and realistic device histories, written the way the engine writes them: every state
change through the engine's funnel (:class:`migrator.engine.device.StoreFunnel`: the transition, the typed
context the machine hands it, and the audit entry, in one transaction), every journalled step as intent then
outcome with the machine's own payload (:meth:`migrator.machine.RunStep.payload`), approvals through the wave
engine's store (:class:`migrator.engine.wavestore.StoreWaves`). States and triggers are rows of the table.

pilot (CHG0042, running, one batch approved):
  PC-KEY-01   key path, migrated; alice migrated after signing out and in (nothing deleted)
  PC-CERT-02  cert path, Windows 11, migrated; bob's container deleted by the guarded delete, with the passkeys
              warning recorded; carol's found already gone (not deleted by us: not listed)
  PC-FAIL-03  cert path, failed: the written policy is not effective (certificate trust from GPO)
  PC-STALL-04 key path, stalled: dave never signed in
wave-2 (CHG0043, halted):
  PC-WAIT-05  key path, waiting_for_dc
  PC-RB-06    cert path, Windows 10: erin's container deleted by the at-logon task (no warning recorded), then
              rolled back
  PC-DOWN-07  waiting_for_device: no answer since DOWN_SINCE, still failing at the last recheck
  PC-GONE-08  unreachable: parked past the unreachable deadline
  PC-BUG-09   error: an unexpected exception, its traceback in the context
  HOSTILE     a device named <script>alert(1)</script> with a hostile user and a formula-looking error
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from migrator.engine.device import StoreFunnel, journal_json
from migrator.engine.wavestore import StoreWaves
from migrator.facts import DeleteOutcome, LogonTaskArmed, PromptResult, RestoreAction
from migrator.facts import PolicyValue as FactPolicyValue
from migrator.machine.commands import Purpose, RunStep
from migrator.machine.context import DeviceContext, UserContext, dump
from migrator.machine.core import Change
from migrator.steps import ArmLogonTask, DeleteHelloContainer, PromptUser, RestorePolicy
from migrator.store import AuditEntry, JournalEntry, PolicyValue, Store, content_hash

START = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)
PFW = r"HKLM\SOFTWARE\Policies\Microsoft\PassportForWork"
OWNER = "worker-1"
ACTOR = "svc-migrator@contoso"
PASSKEY_WARNING = "Windows 11: the Hello container may also hold device-bound passkeys, which are deleted with it"
TRACEBACK = "Traceback (most recent call last):\n  File \"decide.py\", line 1\nKeyError: 'session'"
HOSTILE_DEVICE = "<script>alert(1)</script>"
HOSTILE_USER = '"><img src=x onerror=alert(2)>'
HOSTILE_ERROR = '=HYPERLINK("http://evil.example/","click")'


class Clock:
    """A UTC clock that moves 1 s per reading and on request, so timelines have distinct, ordered times."""

    def __init__(self, start: datetime = START) -> None:
        self.current = start

    def __call__(self) -> datetime:
        self.current += timedelta(seconds=1)
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


@dataclass
class Fleet:
    state_dir: Path
    store: Store
    clock: Clock


class History:
    """One device's history, written as the engine's driver writes it (see the module docstring)."""

    def __init__(self, store: Store, device: str, wave: str, clock: Clock) -> None:
        assert store.acquire(device, OWNER, 10**9)
        self.store, self.device, self.clock = store, device, clock
        self.funnel = StoreFunnel(store, device, owner=OWNER, actor=ACTOR, row=store.get_device(device))
        self.state = "pending"
        self.context = DeviceContext()
        self.users: dict[str, tuple[str, UserContext]] = {}
        self._keys = itertools.count(1)

    def move(self, trigger: str, dest: str, *, last_error: str | None = None, **changes: Any) -> None:
        """A device transition with its new context (the old one with ``changes``)."""
        self.context = replace(self.context, **changes)
        path = changes.get("path")
        self.funnel.change(Change(trigger, self.state, dest, dump(self.context), last_error=last_error, path=path))
        self.state = dest

    def walk(self, *moves: tuple[str, str]) -> None:
        for trigger, dest in moves:
            self.move(trigger, dest)

    def to_users(self, path: str, *, snapshot: bool = True) -> None:
        """Preflight, snapshot, policy written and confirmed: the device works through its users."""
        self.move("start", "preflight")
        self.move("preflight_done", "snapshot", path=path, users=tuple(self.users))
        if snapshot:
            self.store.snapshot_policy(
                self.device,
                [
                    PolicyValue(PFW, "UseCertificateForOnPremAuth", True, "DWord", 1),
                    PolicyValue(PFW, "UseCloudTrustForOnPremAuth", False),
                ],
            )
        self.walk(("snapshot_taken", "policy"), ("policy_value_set", "policy"), ("policy_written", "confirming"))
        self.move("policy_confirmed", "users")

    def user(self, name: str, sid: str, trust: str, key_id: str) -> None:
        self.store.add_user(self.device, name, sid=sid, container_trust=trust, key_id=key_id)
        self.users[name] = ("pending", UserContext(sid=sid, trust=trust, key_id=key_id, needs_delete=trust == "cert"))

    def user_context(self, name: str) -> UserContext:
        return self.users[name][1]

    def move_user(
        self,
        name: str,
        trigger: str,
        dest: str,
        *,
        last_error: str | None = None,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        warning: str | None = None,
        **changes: Any,
    ) -> None:
        """A user transition with the user's new context, as the machine fires it."""
        state, context = self.users[name]
        context = replace(context, **changes)
        change = Change(
            trigger,
            state,
            dest,
            dump(context),
            user=name,
            last_error=last_error,
            before=before,
            after=after,
            warning=warning,
        )
        self.funnel.change(change)
        self.users[name] = (dest, context)

    def journal(self, command: RunStep, result: Any = None, *, error: dict[str, Any] | None = None) -> JournalEntry:
        """Intent, then outcome (``result``; or the failure ``error``; neither: left in doubt)."""
        attempt = 1 + sum(
            1 for e in self.store.journal_entries(self.device) if e.step == command.name and e.user == command.user
        )
        key = f"{self.device}/{command.user or '-'}/{command.name}/{next(self._keys)}"
        entry = self.store.intent(
            self.device, command.name, attempt, command.payload(), key=key, user=command.user, owner=OWNER
        )
        if error is not None:
            return self.store.outcome(entry.id, {"ok": False, "error": error}, ok=False)
        if result is not None:
            return self.store.outcome(entry.id, {"ok": True, "result": journal_json(result)}, ok=True)
        return entry

    def delete(self, name: str, *, warning: str | None) -> None:
        """The point of no return (the warning recorded with it), the guarded delete, and the prompt."""
        context = self.user_context(name)
        key = {"key_id": context.key_id, "trust": context.trust}
        self.move_user(
            name,
            "identified",
            "deleting",
            before=key,
            after={"point_of_no_return": "delete_container"},
            warning=warning,
            delete_warning=warning,
        )
        step = DeleteHelloContainer(context.sid, str(context.key_id), "cert")
        outcome = DeleteOutcome(status="completed", user=context.sid, deleted=True, sign_out_required=True)
        self.journal(RunStep(step, Purpose.DELETE, name, point_of_no_return=True), outcome)
        at = self.clock()
        self.move_user(
            name,
            "container_deleted",
            "prompted",
            before=key,
            after={"deleted": True, "ran_as": name, "sign_out_required": True},
            deleted=True,
            deleted_by_us=True,
            deleted_at=at,
        )
        prompt = PromptUser(2, "Please sign out and sign in again")
        self.journal(RunStep(prompt, Purpose.PROMPT, name), PromptResult(session_id=2, seconds=300, delivered=True))
        self.move_user(name, "prompt_sent", "waiting_for_reprovision", prompted_at=at, phase="reprovision")


def build_fleet(store: Store, clock: Clock) -> None:
    store.create_wave(
        "pilot",
        playbook_name="to-cloud-kerberos",
        playbook_hash=content_hash("name: to-cloud-kerberos\n"),
        change_ticket="CHG0042",
        settings={"batch_size": 5, "max_fail_percent": 20},
        state="running",
        audit=AuditEntry(actor="admin@contoso", action="wave.create", after={"wave": "pilot"}),
    )
    store.create_wave(
        "wave-2",
        playbook_name="cert-trust-to-cloud-kerberos",
        playbook_hash=content_hash("cert"),
        change_ticket="CHG0043",
        state="halted",
    )
    StoreWaves(store, "change.manager@contoso").approve("pilot")
    store.enroll("pilot", ["PC-KEY-01", "PC-CERT-02", "PC-FAIL-03", "PC-STALL-04"])
    store.enroll("wave-2", ["PC-WAIT-05", "PC-RB-06", "PC-DOWN-07", "PC-GONE-08", "PC-BUG-09", HOSTILE_DEVICE])

    # PC-KEY-01: key trust, one user, migrated; nothing deleted (key trust without a reset).
    h = History(store, "PC-KEY-01", "pilot", clock)
    h.user(r"CONTOSO\alice", "S-1-5-21-1-1001", "key", "k-ali")
    h.to_users("key")
    h.move_user(r"CONTOSO\alice", "start", "prompted")
    h.move_user(r"CONTOSO\alice", "prompt_sent", "waiting_for_sign_in")
    h.move("users_waiting", "waiting_for_user")
    clock.advance(hours=2)
    h.move("recheck", "users")
    h.move_user(r"CONTOSO\alice", "signed_in", "verifying")
    h.move_user(r"CONTOSO\alice", "cloud_verified", "migrated")
    h.move("all_migrated", "migrated")

    # PC-CERT-02: certificate trust on Windows 11; bob's container deleted (the passkeys warning recorded with the
    # delete), carol's already gone when her container was read (she reset Windows Hello herself).
    h = History(store, "PC-CERT-02", "pilot", clock)
    h.user(r"CONTOSO\bob", "S-1-5-21-1-1002", "cert", "k-bob")
    h.user(r"CONTOSO\carol", "S-1-5-21-1-1003", "cert", "k-rol")
    h.to_users("cert")
    h.move_user(r"CONTOSO\bob", "start", "identifying")
    h.delete(r"CONTOSO\bob", warning=PASSKEY_WARNING)
    h.move_user(r"CONTOSO\carol", "start", "identifying")
    h.move_user(r"CONTOSO\carol", "container_gone", "waiting_for_reprovision", deleted=True)
    h.move("users_waiting", "waiting_for_user")
    clock.advance(hours=5)
    h.move("recheck", "users")
    for name in (r"CONTOSO\bob", r"CONTOSO\carol"):
        h.move_user(name, "signed_in", "verifying")
        h.move_user(name, "cloud_verified", "migrated")
    h.move("all_migrated", "migrated")

    # PC-FAIL-03: the written policy is not effective: certificate trust still delivered by Group Policy.
    h = History(store, "PC-FAIL-03", "pilot", clock)
    h.user(r"CONTOSO\frank", "S-1-5-21-1-1006", "cert", "k-ank")
    h.move("start", "preflight")
    h.move("preflight_done", "snapshot", path="cert")
    h.walk(("snapshot_taken", "policy"), ("policy_written", "confirming"))
    h.move(
        "policy_not_effective",
        "failed",
        last_error="confirm_policy: certificate trust policy from GPO wins over cloud trust",
        reason="confirm_policy: certificate trust policy from GPO wins over cloud trust",
    )

    # PC-STALL-04: key trust, the user never signed in before the deadline.
    h = History(store, "PC-STALL-04", "pilot", clock)
    h.user(r"CONTOSO\dave", "S-1-5-21-1-1004", "key", "k-ave")
    h.to_users("key")
    h.move_user(r"CONTOSO\dave", "start", "waiting_for_sign_in", phase="sign_in", since=clock.current)
    h.move("users_waiting", "waiting_for_user")
    clock.advance(days=7)
    h.move("recheck", "users")
    h.move_user(r"CONTOSO\dave", "deadline", "stalled", last_error="no sign-in within 7 days")
    h.move("some_stalled", "stalled", last_error="dave did not sign in within 7 days")

    # PC-WAIT-05: hybrid, no line of sight to a DC.
    h = History(store, "PC-WAIT-05", "wave-2", clock)
    h.user(r"CONTOSO\gina", "S-1-5-21-1-1007", "key", "k-ina")
    h.to_users("key")
    h.move_user(r"CONTOSO\gina", "start", "dc_check")
    h.move_user(r"CONTOSO\gina", "dc_missing", "waiting_for_dc", phase="dc", since=clock.current)
    h.move("users_waiting_for_dc", "waiting_for_dc")

    # PC-RB-06: cert path on Windows 10 (no warning recorded with the delete): erin was not signed in, so an
    # at-logon task deleted her container at her next sign-in; then the halted wave was rolled back.
    h = History(store, "PC-RB-06", "wave-2", clock)
    h.user(r"CONTOSO\erin", "S-1-5-21-1-1005", "cert", "k-rin")
    h.to_users("cert")
    h.move_user(r"CONTOSO\erin", "start", "identifying")
    erin = h.user_context(r"CONTOSO\erin")
    h.move_user(r"CONTOSO\erin", "identified", "deleting", before={"key_id": "k-rin", "trust": "cert"})
    arm = ArmLogonTask(erin.sid, "k-rin", "cert")
    h.journal(
        RunStep(arm, Purpose.ARM, r"CONTOSO\erin"),
        LogonTaskArmed(task="migrator-delete", armed=True, replaced=False, pending_result=False),
    )
    h.move_user(r"CONTOSO\erin", "logon_task_armed", "armed", task_armed=True)
    h.move("users_waiting", "waiting_for_user")
    clock.advance(hours=3)
    h.move("recheck", "users")
    h.move_user(
        r"CONTOSO\erin",
        "task_deleted_container",
        "waiting_for_reprovision",
        after={"deleted": True, "ran_as": r"CONTOSO\erin", "sign_out_required": False},
        deleted=True,
        deleted_by_us=True,
        deleted_at=clock(),
        task_armed=False,
        phase="reprovision",
    )
    h.move("users_waiting", "waiting_for_user")
    h.move("begin_rollback", "rolling_back")
    snapshot = (
        FactPolicyValue(path=PFW, name="UseCertificateForOnPremAuth", existed=True, type="DWord", data=1),
        FactPolicyValue(path=PFW, name="UseCloudTrustForOnPremAuth", existed=False),
    )
    # The restore script spells the hive as PowerShell does (HKLM:\...): the report folds both spellings.
    actions = (
        RestoreAction(path=PFW.replace("HKLM", "HKLM:"), name="UseCertificateForOnPremAuth", action="set"),
        RestoreAction(path=PFW, name="UseCloudTrustForOnPremAuth", action="removed"),
    )
    h.journal(RunStep(RestorePolicy(snapshot), Purpose.RESTORE), actions)
    h.move("restored", "rolled_back", restored=tuple(f"{a.path}\\{a.name}: {a.action}" for a in actions))

    # PC-DOWN-07: waiting for its user, then the device stopped answering; the last recheck failed again.
    h = History(store, "PC-DOWN-07", "wave-2", clock)
    h.user(r"CONTOSO\hana", "S-1-5-21-1-1008", "key", "k-ana")
    h.to_users("key")
    h.move_user(r"CONTOSO\hana", "start", "waiting_for_sign_in")
    h.move("users_waiting", "waiting_for_user")
    clock.advance(hours=1)
    since = clock()
    refused = "collect_facts: DeviceUnreachable: connection refused"
    h.move(
        "unreachable",
        "waiting_for_device",
        last_error=f"{refused} (no answer since {since:%Y-%m-%d %H:%M %Z})",
        unreachable_since=since,
        return_to="waiting_for_user",
    )
    clock.advance(hours=6)
    h.move("unreachable", "waiting_for_device", last_error=f"{refused} (no answer since {since:%Y-%m-%d %H:%M %Z})")

    # PC-GONE-08: unreachable for longer than the playbook's unreachable deadline: parked.
    h = History(store, "PC-GONE-08", "wave-2", clock)
    h.user(r"CONTOSO\ivan", "S-1-5-21-1-1009", "key", "k-van")
    h.to_users("key")
    gone_since = clock()
    timeout = f"collect_facts: ConnectTimeout: connect timeout (no answer since {gone_since:%Y-%m-%d %H:%M %Z})"
    h.move("unreachable", "waiting_for_device", last_error=timeout, unreachable_since=gone_since, return_to="users")
    clock.advance(days=3, hours=1)
    h.move("unreachable_too_long", "unreachable", last_error=timeout, reason=timeout)

    # PC-BUG-09: a bug in the middle of the users' work: parked in error with the traceback.
    h = History(store, "PC-BUG-09", "wave-2", clock)
    h.user(r"CONTOSO\jane", "S-1-5-21-1-1010", "key", "k-ane")
    h.to_users("key")
    h.move(
        "internal_error",
        "error",
        last_error="internal error: KeyError: 'session'",
        traceback=TRACEBACK,
        return_to="users",
    )

    # The hostile device: names and errors that would be markup, script or a spreadsheet formula.
    store.add_user(HOSTILE_DEVICE, HOSTILE_USER, sid="S-1-5-21-1-666", container_trust="key", key_id="<b>k</b>")
    store.transition(HOSTILE_DEVICE, "pending", "preflight", "<i>start</i>", path="key")
    store.transition(HOSTILE_DEVICE, "preflight", "failed", "step_failed", last_error=HOSTILE_ERROR)
    store.save_facts(HOSTILE_DEVICE, {"name": HOSTILE_DEVICE, "note": "</pre><script>alert(3)</script>"})


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fleet(tmp_path: Path, clock: Clock) -> Iterator[Fleet]:
    state_dir = tmp_path / "state"
    store = Store.open(state_dir, now=clock, synchronous="NORMAL")
    build_fleet(store, clock)
    for device in store.list_devices():  # the driver releases a device's lease when its visit ends
        store.release(device.name, OWNER)
    yield Fleet(state_dir, store, clock)
    store.close()


@pytest.fixture
def empty_store(tmp_path: Path, clock: Clock) -> Iterator[Fleet]:
    state_dir = tmp_path / "empty"
    store = Store.open(state_dir, now=clock, synchronous="NORMAL")
    yield Fleet(state_dir, store, clock)
    store.close()
