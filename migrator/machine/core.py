"""The device machine: the table run by ``transitions``, decisions from facts, commands out, events in.

Theory of operation
-------------------
One :class:`DeviceMachine` per device and visit, rebuilt from the store (device state and context, users'
states and contexts, latest facts). :meth:`DeviceMachine.advance` is called with the time; it takes every
transition that needs no I/O (decisions on facts read in this visit) and returns the next :class:`Command`:
run a step, wait until a time, or done. The caller runs the step and hands the answer to
:meth:`DeviceMachine.handle`. Every state change — device or user — goes through the *funnel* the caller
supplies (:class:`Funnel`), before ``transitions`` moves the state: if the funnel raises (the store refused,
another worker holds the lease), nothing moved. Triggers are always called by name (``model.trigger(name)``);
an illegal one raises :class:`InvalidTransition`, a refused guard :class:`GuardRefused`.

Facts are *fresh* only when read in the current visit and after the last side effect: every decision the
point of no return depends on is taken on fresh facts, and the delete script checks the container again on the
device in the same run that deletes.

The context of each state (the policy plan, the container recorded for a user, when a waiting phase began, the
journal entry last applied) is JSON, persisted by the funnel with the state. ``applied`` (the id of the last
journal entry whose answer moved the subject) lets a restarted driver replay an answer that was journalled but
whose transition was lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from transitions import Machine, MachineError

from migrator.facts import (
    DeleteGuard,
    DeleteOutcome,
    DeviceFacts,
    HelloState,
    LogonTaskArmed,
    LogonTaskDisarmed,
    LogonTaskResult,
    PathDecision,
    PathSettings,
    PolicyRefresh,
    PolicyValue,
    PromptResult,
    UserFacts,
)
from migrator.facts import path as decide_path
from migrator.machine import guards as guard_mod
from migrator.machine.commands import (
    RESULT_TYPES,
    Command,
    Done,
    Event,
    Resolution,
    RunStep,
    StepFailed,
    StepSucceeded,
    Wait,
)
from migrator.machine.errors import GuardRefused, InvalidTransition
from migrator.machine.plan import policy_plan, snapshot_entries
from migrator.machine.table import (
    DEVICE_FINAL,
    DEVICE_STATES,
    PAUSABLE,
    PONR_GUARDS,
    USER_FINAL,
    USER_STATES,
    Row,
    device_rows,
    user_rows,
)
from migrator.playbook import Playbook
from migrator.steps import (
    ArmLogonTask,
    CollectFacts,
    DeleteHelloContainer,
    DisarmLogonTask,
    PromptUser,
    ReadHelloState,
    ReadLogonTaskResult,
    RefreshPolicy,
    SetPolicy,
    SnapshotPolicy,
)

log = logging.getLogger(__name__)

WindowCheck = Callable[[datetime], bool]


@dataclass(frozen=True)
class Change:
    """One state change handed to the funnel (device when ``user`` is None)."""

    trigger: str
    source: str
    dest: str
    context: dict[str, Any]
    user: str | None = None
    last_error: str | None = None
    path: str | None = None
    before: dict[str, Any] | None = None  # audit: what the device had
    after: dict[str, Any] | None = None  # audit: what it has now
    warning: str | None = None  # audit + log: e.g. passkeys in a container about to be deleted


@dataclass(frozen=True)
class TrackedUser:
    name: str
    sid: str
    container_trust: str | None


class Funnel(Protocol):
    """Where the machine's state changes go (the driver persists them with ``store.transition``)."""

    def change(self, change: Change) -> None: ...

    def add_users(self, users: Sequence[TrackedUser]) -> None: ...

    def policy_snapshot(self, values: Sequence[PolicyValue]) -> None: ...

    def identify(self, user: str, container_trust: str | None, key_id: str) -> None: ...


@dataclass
class UserRecord:
    """A user as the store holds it."""

    name: str
    sid: str
    state: str = "pending"
    context: dict[str, Any] | None = None
    container_trust: str | None = None
    key_id: str | None = None
    last_error: str | None = None


class _Model:
    """What ``transitions`` drives: it holds ``state``; ``transitions`` adds ``trigger(name)``."""

    state: str
    trigger: Callable[..., bool]


@dataclass
class _User:
    record: UserRecord
    model: _Model
    machine: Machine
    context: dict[str, Any]
    waited: Wait | None = None  # this visit's decision to wait (no more work for this user now)
    hello: HelloState | None = None
    prompted_now: bool = False  # asked to sign out in this visit: nothing to verify before the next one
    error: str | None = None  # the user's last_error as the funnel last recorded it


@dataclass
class _Pending:
    change: Change | None = None
    context: dict[str, Any] = field(default_factory=dict)
    user: str | None = None
    last_error: str | None = None
    path: str | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    warning: str | None = None


def _always_open(_now: datetime) -> bool:
    return True


class DeviceMachine:
    """The sans-IO machine of one device and its users."""

    def __init__(
        self,
        device: str,
        playbook: Playbook,
        funnel: Funnel,
        *,
        state: str = "pending",
        context: Mapping[str, Any] | None = None,
        users: Sequence[UserRecord] = (),
        facts: DeviceFacts | None = None,
        path_settings: PathSettings | None = None,
        window: WindowCheck = _always_open,
    ) -> None:
        if not playbook.has("confirm_policy"):
            raise ValueError(
                f"playbook {playbook.name!r}: the machine needs 'confirm_policy' (the point of no return and "
                "verification depend on the confirmed policy)"
            )
        self.device = device
        self.playbook = playbook
        self._funnel = funnel
        # The playbook's own RequireSecurityDevice counts as much as the device's: it will be in force by the
        # time a new container must be provisioned.
        self._settings = (path_settings or PathSettings()).model_copy(
            update={"require_security_device": playbook.policy.require_security_device}
        )
        self._window = window
        self.facts = facts
        self.facts_fresh = False
        self.context: dict[str, Any] = dict(context or {})
        self._pending: _Pending | None = None
        self._now: datetime | None = None
        self._deferred: Wait | None = None
        self._refreshed_this_visit = False
        self._rows = device_rows(playbook)
        self._user_rows = user_rows(playbook)
        self._model = _Model()
        self._machine = self._build(self._model, DEVICE_STATES, self._rows, state, None)
        self.users: dict[str, _User] = {}
        for record in users:
            self._add_user(record)

    # ------------------------------------------------------------------------------------- building

    def _build(
        self, model: _Model, states: Sequence[str], rows: Sequence[Row], initial: str, user: str | None
    ) -> Machine:
        if initial not in states:
            raise ValueError(f"{'user ' + user if user else self.device}: unknown state {initial!r}")
        transitions = []
        for row in rows:
            spec = row.as_transition()
            spec["conditions"] = [self._guard_callable(name, user) for name in row.conditions]
            spec["unless"] = [self._guard_callable(name, user) for name in row.unless]
            transitions.append(spec)
        return Machine(
            model=model,
            states=list(states),
            transitions=transitions,
            initial=initial,
            auto_transitions=False,
            send_event=True,
            ignore_invalid_triggers=False,
            before_state_change=[self._persist],
            model_attribute="state",
        )

    def _add_user(self, record: UserRecord) -> _User:
        model = _Model()
        machine = self._build(model, USER_STATES, self._user_rows, record.state, record.name)
        context = dict(record.context) if record.context else self._initial_user_context(record)
        if record.key_id and not context.get("key_id"):
            context["key_id"] = record.key_id
        user = _User(record, model, machine, context, error=record.last_error)
        self.users[record.name] = user
        return user

    def _initial_user_context(self, record: UserRecord) -> dict[str, Any]:
        device_path = self.context.get("path")
        needs_delete = record.container_trust is not None and (
            device_path == "cert" or (device_path == "key" and self.playbook.reset_key_trust_containers)
        )
        return {
            "sid": record.sid,
            "trust": record.container_trust,
            "needs_delete": bool(needs_delete and self.playbook.has("delete_container")),
            "deleted": False,
            "task_armed": False,
        }

    def _guard_callable(self, name: str, user: str | None) -> Callable[[Any], bool]:
        if name not in guard_mod.GUARDS:
            raise ValueError(f"the table names guard {name!r}, which migrator.machine.guards does not define")

        def check(_event: Any) -> bool:
            return guard_mod.check(name, self._guard_input(user))

        return check

    def _guard_input(self, user: str | None) -> guard_mod.GuardInput:
        # Guards read the context of the state being left (what a row's guard is about), never the new one.
        device_context = self.context
        user_context: Mapping[str, Any] = {}
        hello = None
        if user is not None:
            entry = self.users[user]
            user_context = entry.context
            hello = entry.hello
        now = self._now or datetime.now().astimezone()
        return guard_mod.GuardInput(
            playbook=self.playbook,
            now=now,
            facts=self.facts,
            facts_fresh=self.facts_fresh,
            decision=self.decision,
            device_context=device_context,
            user_context=user_context,
            user_states=[u.model.state for u in self.users.values()],
            hello=hello,
            window_open=self._window(now),
        )

    # ---------------------------------------------------------------------------------------- state

    @property
    def state(self) -> str:
        return self._model.state

    @property
    def decision(self) -> PathDecision | None:
        if self.facts is None:
            return None
        return decide_path(self.facts, self._settings)

    def user_state(self, name: str) -> str:
        return self.users[name].model.state

    def legal_triggers(self, user: str | None = None) -> list[str]:
        if user is None:
            return sorted(self._machine.get_triggers(self.state))
        entry = self.users[user]
        return sorted(entry.machine.get_triggers(entry.model.state))

    def failing_guards(self, trigger: str, user: str | None = None) -> list[str]:
        rows = self._user_rows if user is not None else self._rows
        current = self.user_state(user) if user is not None else self.state
        failing: list[str] = []
        data = self._guard_input(user)
        for row in rows:
            if row.trigger == trigger and current in row.source:
                failing += [g for g in row.conditions if not guard_mod.check(g, data)]
                failing += [f"not {g}" for g in row.unless if guard_mod.check(g, data)]
        return sorted(set(failing))

    # ---------------------------------------------------------------------------------------- the funnel

    def _persist(self, event: Any) -> None:
        pending = self._pending
        assert pending is not None, "every trigger goes through fire()"
        source = event.transition.source
        dest = event.transition.dest if event.transition.dest not in (None, "=") else source
        change = Change(
            trigger=event.event.name,
            source=source,
            dest=dest,
            context=dict(pending.context),
            user=pending.user,
            last_error=pending.last_error,
            path=pending.path,
            before=pending.before,
            after=pending.after,
            warning=pending.warning,
        )
        self._funnel.change(change)
        pending.change = change

    def fire(
        self,
        trigger: str,
        *,
        user: str | None = None,
        context: Mapping[str, Any] | None = None,
        last_error: str | None = None,
        path: str | None = None,
        before: Mapping[str, Any] | None = None,
        after: Mapping[str, Any] | None = None,
        warning: str | None = None,
        now: datetime | None = None,
    ) -> Change:
        """Take the transition ``trigger`` (of a user when ``user`` is given) through the funnel."""
        if now is not None:
            self._now = now
        if user is not None:
            entry = self.users[user]
            model, base = entry.model, entry.context
        else:
            model, base = self._model, self.context
        current = model.state
        merged = dict(base)
        merged.update(context or {})
        self._pending = _Pending(
            context=merged,
            user=user,
            last_error=last_error,
            path=path,
            before=dict(before) if before else None,
            after=dict(after) if after else None,
            warning=warning,
        )
        subject = f"user {user} of {self.device}" if user else self.device
        try:
            try:
                moved = model.trigger(trigger)
            except (MachineError, AttributeError):  # not legal here / no such row in this playbook's machine
                raise InvalidTransition(trigger, current, self.legal_triggers(user), subject) from None
            if not moved:
                raise GuardRefused(
                    trigger, current, self.legal_triggers(user), self.failing_guards(trigger, user), subject
                )
            change = self._pending.change
            assert change is not None
        finally:
            self._pending = None
        if user is not None:
            self.users[user].context = merged
            self.users[user].error = last_error
        else:
            self.context = merged
        return change

    def _try(self, trigger: str, **kwargs: Any) -> Change | None:
        """Fire ``trigger`` if a row allows it now; None (nothing changed) if its guards refuse."""
        try:
            return self.fire(trigger, **kwargs)
        except GuardRefused:
            return None

    # ---------------------------------------------------------------------------------------- visits

    def begin_visit(self, now: datetime) -> None:
        """A new visit: facts read before are stale (the device may have changed meanwhile)."""
        self._now = now
        self.facts_fresh = False
        self._deferred = None
        self._refreshed_this_visit = False
        for entry in self.users.values():
            entry.waited = None
            entry.hello = None
            entry.prompted_now = False

    def take_facts(self, facts: DeviceFacts) -> None:
        self.facts = facts
        self.facts_fresh = True

    def _read_facts(self) -> RunStep:
        return RunStep(CollectFacts(), "facts")

    def _recheck(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.playbook.waits.recheck_every)

    def advance(self, now: datetime) -> Command:
        """Take every decision that needs no I/O; return the next command."""
        self._now = now
        for _ in range(500):
            command = self._decide(now)
            if command is not None:
                return command
        raise RuntimeError(f"{self.device}: the machine did not settle in state {self.state!r}")

    def _decide(self, now: datetime) -> Command | None:
        state = self.state
        if state in DEVICE_FINAL or state in ("paused", "stalled", "rolling_back"):
            return Done(state, self.context.get("reason"))
        if self._deferred is not None:
            return self._deferred
        if state == "pending":
            self.fire("start", now=now)
            return None
        if state == "policy" and self.facts is not None:
            # Writing the plan decides nothing from the facts (the plan and its progress are in the context);
            # they are read again once, before the writes are confirmed, not after every value.
            return self._decide_policy(now)
        if not self.facts_fresh:
            return self._read_facts()
        assert self.facts is not None
        if state == "preflight":
            return self._decide_preflight(now)
        if state == "snapshot":
            plan = list(self.context.get("plan", []))
            return RunStep(SnapshotPolicy(snapshot_entries(plan)), "snapshot")
        if state == "policy":
            return self._decide_policy(now)
        if state == "confirming":
            return self._decide_confirming(now)
        if state in ("waiting_for_user", "waiting_for_dc"):
            self.fire("recheck", now=now)
            return None
        if state == "users":
            return self._decide_users(now)
        raise RuntimeError(f"{self.device}: no decision for state {state!r}")  # pragma: no cover

    # ---- device decisions -------------------------------------------------------------------------------

    def _tracked(self, facts: DeviceFacts) -> list[TrackedUser]:
        tracked: list[TrackedUser] = []
        for user in facts.users:
            if self.playbook.users == "with_container" and not user.has_hello:
                continue
            if self.playbook.users == "signed_in" and not user.signed_in:
                continue
            trust = None
            if user.has_hello:
                effective = facts.policy.user_effective.get(user.sid, facts.policy.effective)
                trust = effective if effective in ("key", "cert", "cloud") else "key"
            tracked.append(TrackedUser(user.name or user.sid, user.sid, trust))
        return tracked

    def _decide_preflight(self, now: datetime) -> Command | None:
        assert self.facts is not None
        decision = self.decision
        assert decision is not None
        reasons = list(decision.reasons)
        summary = "; ".join(reasons) if reasons else None
        for trigger in ("found_ineligible", "found_cloud", "found_off_path"):
            if trigger == "found_off_path":
                summary = f"device is on the {decision.path} trust path; playbook {self.playbook.name} migrates " + (
                    f"{self.playbook.path} trust devices"
                )
            if self._try(
                trigger,
                now=now,
                context={"reasons": reasons, "reason": summary},
                last_error=summary if trigger != "found_cloud" else None,
                path=decision.path,
            ):
                return None
        tracked = self._tracked(self.facts)
        plan = policy_plan(self.facts, self.playbook)
        self._funnel.add_users(tracked)
        context = {
            "path": decision.path,
            "reasons": reasons,
            "plan": plan,
            "plan_done": 0,
            "tracked_sids": [u.sid for u in tracked],
            "users": [u.name for u in tracked],
        }
        self.fire(
            "preflight_done",
            now=now,
            context=context,
            path=decision.path,
            before={"effective_policy": self.facts.policy.effective, "join_type": self.facts.join_type},
            after={"path": decision.path, "users": [u.name for u in tracked], "planned": len(plan)},
        )
        for user in tracked:
            if user.name not in self.users:
                self._add_user(UserRecord(user.name, user.sid, container_trust=user.container_trust))
        return None

    def _decide_policy(self, now: datetime) -> Command | None:
        plan = list(self.context.get("plan", []))
        done = int(self.context.get("plan_done", 0))
        if "policy_since" not in self.context:
            self.context["policy_since"] = now.isoformat()
        if done < len(plan):
            item = plan[done]
            step = (
                SetPolicy(item["path"], item["name"], remove=True)
                if item["remove"]
                else SetPolicy(item["path"], item["name"], value=item["value"])
            )
            return RunStep(step, "set_policy")
        if self.playbook.has("refresh_policy"):
            if self._refreshed_this_visit:
                return Wait(self._recheck(now), "waiting for Group Policy / Intune to deliver the policy", "policy")
            return RunStep(RefreshPolicy(), "refresh")
        self.fire("policy_written", now=now)
        return None

    def _decide_confirming(self, now: datetime) -> Command | None:
        assert self.facts is not None
        policy = self.facts.policy
        described = f"effective policy {policy.effective} (source {policy.source})"
        if policy.notes:
            described += "; " + "; ".join(policy.notes)
        if self._try("policy_confirmed", now=now, after={"effective_policy": policy.effective}):
            return None
        if self._try("policy_deadline", now=now, last_error=f"policy did not arrive in time: {described}"):
            return None
        if self._try("policy_pending", now=now, last_error=f"waiting for the policy: {described}"):
            return Wait(self._recheck(now), "waiting for Group Policy / Intune to deliver cloud trust", "policy")
        self.fire(
            "policy_not_effective",
            now=now,
            last_error=f"cloud trust is not effective after the writes: {described}",
            context={"reason": described},
        )
        return None

    def _decide_users(self, now: datetime) -> Command | None:
        waits: list[Wait] = []
        for name in sorted(self.users):
            entry = self.users[name]
            if entry.model.state in USER_FINAL:
                continue
            if entry.waited is not None:
                waits.append(entry.waited)
                continue
            command = self._decide_user(entry, now)
            if command is not None:
                return command
            return None  # a user moved: decide again from the top
        if waits:
            until = min(w.until for w in waits)
            if all(w.kind == "dc" for w in waits):
                self.fire("users_waiting_for_dc", now=now)
                return Wait(until, "every unfinished user waits for line of sight to a domain controller", "dc")
            self.fire("users_waiting", now=now)
            reasons = sorted({w.reason for w in waits})
            return Wait(until, "; ".join(reasons), "user")
        for trigger, error in (("all_migrated", None), ("some_failed", "a user failed"), ("some_stalled", None)):
            failed = [u.record.name for u in self.users.values() if u.model.state == "failed"]
            message = error
            if trigger == "some_failed":
                message = "user(s) failed: " + ", ".join(failed)
            elif trigger == "some_stalled":
                # Each stalled user with their own reason: the device's one line is what recaps and reports show.
                message = "user(s) stalled: " + "; ".join(
                    f"{u.record.name} ({u.error})" if u.error else u.record.name
                    for u in self.users.values()
                    if u.model.state == "stalled"
                )
            if self._try(trigger, now=now, last_error=message, context={"reason": message}):
                return None
        raise RuntimeError(f"{self.device}: users finished but no final row applies")  # pragma: no cover

    # ---- user decisions ---------------------------------------------------------------------------------

    def _phase(self, entry: _User, phase: str, now: datetime) -> dict[str, Any]:
        """Context for entering a waiting phase: its start and deadline are kept while the phase lasts."""
        if entry.context.get("phase") == phase:
            return {}
        limits = {
            "identify": self.playbook.waits.user_deadline,
            "dc": self.playbook.waits.dc_deadline,
            "sign_in": self.playbook.waits.user_deadline,
            "reprovision": self.playbook.waits.reprovision_deadline,
        }
        return {"phase": phase, "since": now.isoformat(), "deadline_seconds": limits[phase]}

    def _wait_user(self, entry: _User, now: datetime, reason: str, kind: str = "user") -> None:
        until = self._recheck(now)
        since = entry.context.get("since")
        limit = entry.context.get("deadline_seconds")
        if isinstance(since, str) and isinstance(limit, int | float):
            until = min(until, datetime.fromisoformat(since) + timedelta(seconds=float(limit)))
            until = max(until, now)
        entry.waited = Wait(until, reason, kind)  # type: ignore[arg-type]

    def _ponr_guards_hold(self, name: str) -> list[str]:
        data = self._guard_input(name)
        return [g for g in PONR_GUARDS if not guard_mod.check(g, data)]

    def _passkey_warning(self) -> str | None:
        facts = self.facts
        if facts is not None and (facts.os.build or 0) >= guard_mod.WINDOWS_11_FIRST_BUILD:
            # Windows 11 keeps device-bound passkeys in the Hello container: deleting it deletes them too
            # (windows-facts §5, §9.11). The device does not tell whether this container holds any.
            return "Windows 11: the Hello container may also hold device-bound passkeys, which are deleted with it"
        return None

    def _decide_user(self, entry: _User, now: datetime) -> Command | None:
        name = entry.record.name
        sid = str(entry.context.get("sid") or entry.record.sid)
        state = entry.model.state
        assert self.facts is not None
        person = self.facts.user(sid)
        if person is None:
            self.fire("step_failed", user=name, now=now, last_error="the user's profile is no longer on the device")
            return None
        if state == "pending":
            extra: dict[str, Any] = {}
            if entry.context.get("needs_delete"):
                extra = self._phase(entry, "identify", now)
            self.fire("start", user=name, now=now, context=extra)
            return None
        if state == "identifying":
            if entry.context.get("key_id"):
                return self._identified(entry, now)
            if not person.has_hello:
                self.fire(
                    "container_gone",
                    user=name,
                    now=now,
                    context={"deleted": True, **self._phase(entry, "reprovision", now)},
                )
                return None
            if self._try("deadline", user=name, now=now, last_error="never signed in: the container was not read"):
                return None
            if person.signed_in:
                return RunStep(ReadHelloState(sid), "identify", name)
            self._wait_user(entry, now, "user not signed in: their container is read at their next sign-in")
            return None
        if state == "dc_check":
            return self._dc_check(entry, now)
        if state == "waiting_for_dc":
            if self._try("deadline", user=name, now=now, last_error="no line of sight to a domain controller"):
                return None
            if guard_mod.check("dc_line_of_sight", self._guard_input(name)):
                self.fire("recheck", user=name, now=now)
                return None
            self._wait_user(entry, now, "no line of sight to a domain controller", "dc")
            return None
        if state == "deleting":
            failing = self._ponr_guards_hold(name)
            if failing or not self._window(now):
                self.fire(
                    "guards_lost", user=name, now=now, last_error="guard(s) no longer hold: " + ", ".join(failing)
                )
                return None
            key_id = str(entry.context["key_id"])
            expected = self._expected_trust(entry)
            if person.signed_in:
                return RunStep(DeleteHelloContainer(sid, key_id, expected), "delete", name, point_of_no_return=True)  # type: ignore[arg-type]
            return RunStep(ArmLogonTask(sid, key_id, expected), "arm", name)  # type: ignore[arg-type]
        if state == "armed":
            if entry.context.get("deadline_due"):
                return RunStep(DisarmLogonTask(sid), "disarm", name)
            return RunStep(ReadLogonTaskResult(sid), "read_task", name)
        if state == "prompted":
            session = person.session
            if self.playbook.has("prompt_sign_out") and person.signed_in and session is not None:
                text = self.playbook.prompt.text
                return RunStep(PromptUser(session.id, text, self.playbook.prompt.seconds), "prompt", name)
            self._prompt_sent(entry, now, skipped=True)
            return None
        if state in ("waiting_for_reprovision", "waiting_for_sign_in"):
            if entry.context.get("task_armed"):
                return RunStep(DisarmLogonTask(sid), "disarm", name)
            if self._try(
                "deadline", user=name, now=now, last_error=self._deadline_message(state, entry.context, person)
            ):
                return None
            if entry.prompted_now:
                # People need minutes to save their work and sign out: reading their session right after the
                # message would only find the old one.
                self._wait_user(entry, now, "asked to sign out and back in: looking again at the next recheck")
                return None
            ready = person.signed_in and (person.has_hello or state == "waiting_for_sign_in")
            if ready and entry.hello is None:
                self.fire("signed_in", user=name, now=now)
                return None
            if entry.hello is not None and self._try(
                "remind",
                user=name,
                now=now,
                context={"reminders": int(entry.context.get("reminders", 0)) + 1, "no_cloud_tgt": None},
            ):
                return None
            reason = (
                "waiting for the user to set up Windows Hello again"
                if state == "waiting_for_reprovision"
                else "waiting for the user to sign in again with Windows Hello"
            )
            self._wait_user(entry, now, reason)
            return None
        if state == "verifying":
            if entry.context.get("task_armed"):
                return RunStep(DisarmLogonTask(sid), "disarm", name)
            return RunStep(ReadHelloState(sid), "verify", name)
        raise RuntimeError(f"{self.device}: no decision for user state {state!r}")  # pragma: no cover

    def _refused_account(self, entry: _User, now: datetime, applied: Mapping[str, Any] | None = None) -> bool:
        """Park a user whose token holds a group Entra Kerberos refuses; True when it did."""
        groups = [str(g) for g in entry.context.get("protected_groups") or []]
        if not groups:
            return False
        kept = "its key trust container stays" if entry.context.get("trust") == "key" else "nothing was deleted"
        if entry.context.get("deleted"):
            kept = "its container was already deleted: it signs in with a password until an admin acts"
        self.fire(
            "account_refused",
            user=entry.record.name,
            now=now,
            context=dict(applied or {}),
            last_error=(
                f"the account is in {', '.join(groups)}: Microsoft Entra Kerberos gives it no partial TGT "
                f"(msDS-NeverRevealGroup of AzureADKerberos), so cloud Kerberos trust cannot serve it; {kept}"
            ),
        )
        return True

    def _expected_trust(self, entry: _User) -> str:
        """The trust the delete script must find on the device ("" = key id only)."""
        trust = str(entry.context.get("trust") or "")
        return trust if trust in ("key", "cert", "cloud") else ""

    @staticmethod
    def _deadline_message(state: str, context: Mapping[str, Any], person: UserFacts | None = None) -> str:
        if person is not None and person.session is not None and person.session.kind == "rdp":
            # Provisioning's own prerequisite check (event 358: "User is not connected to the machine via Remote
            # Desktop") fails in an RDP session: a user who only signs in remotely never gets a container.
            return (
                "the user signs in only over Remote Desktop, where Windows Hello is not set up: "
                + ("no new container" if state == "waiting_for_reprovision" else "no Hello sign-in")
                + " before the deadline; a console sign-in is needed"
            )
        seen = context.get("no_cloud_tgt")
        if isinstance(seen, Mapping):
            # The user did sign in with Hello under cloud trust policy; Windows just never got a partial TGT.
            # Documented causes (MS Learn, cloud Kerberos trust deployment; windows-facts §9.6, §9.7, §9.9): the
            # account is in msDS-NeverRevealGroup of AzureADKerberos (Domain Admins and other privileged groups, by
            # default), its AD domain has no Entra Kerberos object, or the user has no Entra PRT.
            prt = " (and no Entra PRT: AzureAdPrt NO)" if seen.get("prt") is False else ""
            return (
                "signed in again with Windows Hello but never got a cloud TGT (partial TGT) before the deadline"
                + prt
                + ": each sign-in had no line of sight to a DC (off the network or VPN), or the account is "
                "privileged (msDS-NeverRevealGroup of AzureADKerberos) or its domain has no Microsoft Entra "
                "Kerberos, which cloud Kerberos trust cannot serve"
            )
        if state == "waiting_for_reprovision":
            return "the user did not set up Windows Hello again before the deadline"
        return "the user did not sign in again before the deadline"

    def _identified(self, entry: _User, now: datetime) -> Command | None:
        name = entry.record.name
        if self._refused_account(entry, now):
            return None
        data = self._guard_input(name)
        if guard_mod.check("dc_check_applies", data):
            self.fire("identified", user=name, now=now)
            return None
        return self._toward_point_of_no_return(entry, now, "identified")

    def _dc_check(self, entry: _User, now: datetime) -> Command | None:
        name = entry.record.name
        data = self._guard_input(name)
        if not guard_mod.check("dc_line_of_sight", data):
            self.fire("dc_missing", user=name, now=now, context=self._phase(entry, "dc", now))
            return None
        if not entry.context.get("needs_delete"):
            phase = self._phase(entry, "sign_in", now)
            self.fire("dc_ok", user=name, now=now, context=phase)
            return None
        return self._toward_point_of_no_return(entry, now, "dc_ok")

    def _toward_point_of_no_return(self, entry: _User, now: datetime, trigger: str) -> Command | None:
        name = entry.record.name
        assert self.facts is not None
        person = self.facts.user(str(entry.context.get("sid")))
        if person is not None and not person.has_hello:
            self.fire(
                "container_gone",
                user=name,
                now=now,
                context={"deleted": True, **self._phase(entry, "reprovision", now)},
            )
            return None
        failing = self._ponr_guards_hold(name)
        if failing:
            self.fire(
                "step_failed",
                user=name,
                now=now,
                last_error="not deleting the container: guard(s) " + ", ".join(failing) + " do not hold "
                f"(effective policy {self.facts.policy.effective}, certificate trust anywhere: "
                f"{self.facts.policy.cert_trust_any_source})",
            )
            return None
        if not self._window(now):
            self._wait_user(entry, now, "outside the change window: the point of no return waits", "window")
            return None
        warning = self._passkey_warning()
        self.fire(
            trigger,
            user=name,
            now=now,
            before={"key_id": entry.context.get("key_id"), "trust": entry.context.get("trust")},
            after={"point_of_no_return": "delete_container"},
            warning=warning,
        )
        return None

    def _session_id(self, entry: _User) -> int | None:
        """The user's session as the facts last read show it (None: not signed in, or no facts)."""
        person = self.facts.user(str(entry.context.get("sid"))) if self.facts is not None else None
        return person.session.id if person is not None and person.session is not None else None

    def _prompt_sent(self, entry: _User, now: datetime, *, skipped: bool, journal_id: int | None = None) -> None:
        phase = "reprovision" if entry.context.get("deleted") else "sign_in"
        context = self._phase(entry, phase, now)
        if journal_id is not None:
            context["applied"] = journal_id
        entry.prompted_now = not skipped
        if not skipped:
            # The session asked to sign out: a later verify in a *different* session proves a new sign-in.
            session = self._session_id(entry)
            context["prompted_at"] = now.isoformat()
            context["prompted_session"] = session
        self.fire(
            "prompt_sent",
            user=entry.record.name,
            now=now,
            context=context,
            after={"prompted": not skipped} if not skipped else {"prompted": False, "why": "user not signed in"},
        )

    # ------------------------------------------------------------------------------------------ events

    def handle(self, event: Event) -> None:
        """Take a step's answer (or failure) into the machine."""
        self._now = event.at
        command = event.command
        if isinstance(event, StepFailed):
            self._handle_failure(event)
            return
        result = event.result
        purpose = command.purpose
        self.context.pop("unreachable_since", None)  # the device answered
        if command.side_effect and command.step.info.changes_facts:
            self.facts_fresh = False  # the device changed (or may have): read it again before deciding
        if purpose == "facts":
            self.take_facts(result)
            return
        applied = {"applied": event.journal_id} if event.journal_id is not None else {}
        if command.user is None:
            self._handle_device(event, applied)
        else:
            self._handle_user(event, self.users[command.user], applied)

    def _handle_device(self, event: StepSucceeded, applied: dict[str, Any]) -> None:
        purpose = event.command.purpose
        now = event.at
        if purpose == "snapshot":
            values: Sequence[PolicyValue] = event.result
            self._funnel.policy_snapshot(values)
            self.fire(
                "snapshot_taken",
                now=now,
                after={"snapshot": [f"{v.path}\\{v.name}" for v in values]},
            )
            return
        if purpose == "set_policy":
            plan = list(self.context.get("plan", []))
            done = int(self.context.get("plan_done", 0))
            item = plan[done] if done < len(plan) else {}
            self.fire(
                "policy_value_set",
                now=now,
                context={"plan_done": done + 1, **applied},
                before={"path": item.get("path"), "name": item.get("name"), "value": item.get("before")},
                after={
                    "path": item.get("path"),
                    "name": item.get("name"),
                    "value": None if item.get("remove") else item.get("value"),
                },
            )
            return
        if purpose == "refresh":
            refresh: PolicyRefresh = event.result
            self._refreshed_this_visit = True
            self.fire(
                "policy_refreshed",
                now=now,
                context=applied,
                last_error=None if refresh.succeeded else "gpupdate did not complete: " + "; ".join(refresh.errors),
            )
            return
        raise RuntimeError(f"{self.device}: no device handler for {purpose!r}")  # pragma: no cover

    def _handle_user(self, event: StepSucceeded, entry: _User, applied: dict[str, Any]) -> None:
        purpose = event.command.purpose
        name = entry.record.name
        now = event.at
        if purpose == "identify":
            hello: HelloState = event.result
            if hello.status != "completed":
                self._task_not_done(entry, hello.status, hello.message, now, applied)
                return
            if hello.ngc_set is not True or not hello.ngc_key_id:
                self.fire(
                    "container_gone",
                    user=name,
                    now=now,
                    context={"deleted": True, **applied, **self._phase(entry, "reprovision", now)},
                )
                return
            trust = entry.context.get("trust")
            if hello.cert_enrollment in ("enrollment authority", "mobile device management"):
                trust = "cert"
            entry.context["key_id"] = hello.ngc_key_id
            entry.context["trust"] = trust
            entry.context["protected_groups"] = list(hello.protected_groups)
            self._funnel.identify(name, trust, hello.ngc_key_id)
            return
        if purpose == "delete":
            self._delete_outcome(entry, event.result, now, applied)
            return
        if purpose == "arm":
            armed: LogonTaskArmed = event.result
            self.fire(
                "logon_task_armed",
                user=name,
                now=now,
                context={"task_armed": True, **applied, **self._phase(entry, "sign_in", now)},
                after={"task": armed.task, "armed": armed.armed},
            )
            return
        if purpose == "read_task":
            task: LogonTaskResult = event.result
            if task.outcome is not None:
                self._delete_outcome(entry, task.outcome, now, applied, from_task=True)
                return
            if guard_mod.check("deadline_passed", self._guard_input(name)):
                entry.context["deadline_due"] = True
                return
            self._wait_user(entry, now, "at-logon task armed: waiting for the user's next sign-in")
            return
        if purpose == "disarm":
            disarmed: LogonTaskDisarmed = event.result
            if entry.model.state == "armed":
                if disarmed.outcome is not None:
                    self._delete_outcome(entry, disarmed.outcome, now, applied, from_task=True, armed=False)
                    return
                self.fire(
                    "deadline",
                    user=name,
                    now=now,
                    context={"task_armed": False, "deadline_due": False, **applied},
                    last_error="the user did not sign in before the deadline (at-logon task removed)",
                )
                return
            self.fire(
                "logon_task_removed",
                user=name,
                now=now,
                context={"task_armed": False, **applied},
                after={"task_removed": disarmed.task_removed},
            )
            return
        if purpose == "prompt":
            prompt: PromptResult = event.result
            self._prompt_sent(entry, now, skipped=not prompt.delivered, journal_id=event.journal_id)
            return
        if purpose == "verify":
            hello = event.result
            entry.hello = hello
            if hello.status != "completed":
                self._task_not_done(entry, hello.status, hello.message, now, applied, verifying=True)
                return
            evidence = {
                "ngc_key_id": hello.ngc_key_id,
                "on_prem_tgt": hello.on_prem_tgt,
                "cloud_primary_tgt": hello.cloud_primary_tgt,
            }
            entry.context["protected_groups"] = list(hello.protected_groups)
            if self._try(
                "cloud_verified",
                user=name,
                now=now,
                context=applied,
                before={"key_id": entry.context.get("key_id")},
                after=evidence,
            ):
                return
            if self._refused_account(entry, now, applied):
                return
            session = self._session_id(entry)
            new_session = session is not None and session != entry.context.get("prompted_session")
            if hello.ngc_set and not hello.cloud_trust_active and new_session:
                # Remembered for the deadline's reason and the reminder: the user signed in again since the
                # prompt (another session: session ids only repeat after a reboot, which errs towards "not
                # yet"), and the partial TGT did not come.
                applied = {**applied, "no_cloud_tgt": {"at": now.isoformat(), "prt": hello.azure_ad_prt}}
            self.fire("not_yet_cloud", user=name, now=now, context=applied, after=evidence)
            return
        raise RuntimeError(f"{self.device}: no user handler for {purpose!r}")  # pragma: no cover

    def _task_not_done(
        self,
        entry: _User,
        status: str,
        message: str | None,
        now: datetime,
        applied: dict[str, Any],
        *,
        verifying: bool = False,
    ) -> None:
        name = entry.record.name
        if status == "not-started":
            # The user signed out between reading the facts and the task: read the device again next time.
            reason = "the user signed out before their task could run"
            self.fire(
                "not_yet_cloud" if verifying else "deferred", user=name, now=now, context=applied, last_error=reason
            )
            self._wait_user(entry, now, reason)
            return
        reason = f"user-context task {status}" + (f": {message}" if message else "")
        self.fire("not_yet_cloud" if verifying else "deferred", user=name, now=now, context=applied, last_error=reason)
        self._wait_user(entry, now, reason)

    def _delete_outcome(
        self,
        entry: _User,
        outcome: DeleteOutcome,
        now: datetime,
        applied: dict[str, Any],
        *,
        from_task: bool = False,
        armed: bool = True,
    ) -> None:
        name = entry.record.name
        keep_task = {"task_armed": armed} if from_task else {}
        before = {"key_id": entry.context.get("key_id"), "trust": entry.context.get("trust")}
        if outcome.deleted:
            trigger = "task_deleted_container" if from_task else "container_deleted"
            phase = self._phase(entry, "reprovision", now) if from_task else {}
            self.fire(
                trigger,
                user=name,
                now=now,
                context={"deleted": True, **keep_task, **applied, **phase},
                before=before,
                after={"deleted": True, "ran_as": outcome.ran_as, "sign_out_required": outcome.sign_out_required},
            )
            return
        if outcome.refused:
            refusals = outcome.guard.refusals if outcome.guard is not None else ()
            if "no Hello container" in refusals:
                self.fire(
                    "container_gone",
                    user=name,
                    now=now,
                    context={"deleted": True, **keep_task, **applied, **self._phase(entry, "reprovision", now)},
                    after={"refused": list(refusals)},
                )
                return
            self.fire(
                "container_replaced",
                user=name,
                now=now,
                context={"deleted": True, **keep_task, **applied, **self._phase(entry, "reprovision", now)},
                before=before,
                after={"refused": list(refusals), "observed_key_id": outcome.guard.key_id if outcome.guard else None},
            )
            return
        if outcome.status != "completed":
            self._task_not_done(entry, outcome.status, outcome.message, now, applied)
            return
        error = outcome.certutil_error or outcome.message or "certutil -deletehellocontainer failed"
        self.fire("step_failed", user=name, now=now, context=applied, last_error=f"container not deleted: {error}")

    def _handle_failure(self, event: StepFailed) -> None:
        now = event.at
        command = event.command
        message = f"{command.name}: {event.error_class}: {event.message}"
        applied = {"applied": event.journal_id} if event.journal_id is not None else {}
        if event.transient:
            self.facts_fresh = False
            since = self.context.get("unreachable_since") or now.isoformat()
            if self._try("unreachable_too_long", now=now, last_error=message, context={"unreachable_since": since}):
                return
            self.fire("deferred", now=now, last_error=message, context={"unreachable_since": since})
            self._deferred = Wait(self._recheck(now), message, "retry")
            return
        if command.user is not None:
            self.fire("step_failed", user=command.user, now=now, last_error=message, context=applied)
            return
        self.fire("step_failed", now=now, last_error=message, context={"reason": message, **applied})

    # ------------------------------------------------------------------------------- in-doubt intents

    @staticmethod
    def command_for(payload: Mapping[str, Any]) -> RunStep | None:
        """The command a journalled intent was for (None for purposes the machine does not resolve)."""
        purpose = str(payload.get("purpose"))
        user = payload.get("user")
        params = dict(payload.get("parameters") or {})
        step: Any
        if purpose == "set_policy":
            step = (
                SetPolicy(params["Path"], params["Name"], remove=True)
                if params.get("Remove")
                else SetPolicy(
                    params["Path"], params["Name"], value=params.get("Value"), type=params.get("Type", "DWord")
                )
            )
        elif purpose == "refresh":
            step = RefreshPolicy()
        elif purpose in ("identify", "verify"):
            step = ReadHelloState(params["User"])
        elif purpose == "delete":
            step = DeleteHelloContainer(params["User"], params["ExpectedKeyId"], params.get("ExpectedTrust", ""))
        elif purpose == "arm":
            step = ArmLogonTask(params["UserSid"], params["ExpectedKeyId"], params.get("ExpectedTrust", ""))
        elif purpose == "disarm":
            step = DisarmLogonTask(params["UserSid"])
        elif purpose == "prompt":
            step = PromptUser(int(params["SessionId"]), str(params["Text"]), int(params["Seconds"]))
        else:
            return None
        return RunStep(step, purpose, str(user) if user else None, point_of_no_return=purpose == "delete")  # type: ignore[arg-type]

    def resolution_read(self, command: RunStep) -> RunStep | None:
        """The read (besides fresh facts) that tells whether an in-doubt intent took effect."""
        params = command.step.parameters()
        if command.purpose == "set_policy":
            return RunStep(SnapshotPolicy(((params["Path"], params["Name"]),)), "read_back")
        if command.purpose in ("arm", "disarm"):
            return RunStep(ReadLogonTaskResult(params["UserSid"]), "read_task", command.user)
        if command.purpose == "delete" and self.facts is not None:
            person = self.facts.user(params["User"])
            if person is not None and person.has_hello and person.signed_in:
                return RunStep(ReadHelloState(params["User"]), "read_back", command.user)
        return None

    def resolve(self, command: RunStep, read: Any, at: datetime, journal_id: int) -> Resolution:
        """Decide from fresh facts (and ``read``) whether an in-doubt intent took effect — never by repeating."""
        params = command.step.parameters()
        purpose = command.purpose

        def done(result: Any, **summary: Any) -> Resolution:
            return Resolution(True, {"applied": True, **summary}, StepSucceeded(command, result, at, journal_id))

        if purpose == "set_policy":
            values: Sequence[PolicyValue] = read
            current = values[0] if values else None
            if params.get("Remove"):
                ok = current is not None and not current.existed
            else:
                ok = current is not None and current.existed and current.data == params.get("Value")
            if ok and current is not None:
                return done(None, read={"existed": current.existed, "data": current.data})
            return Resolution(False, {"applied": False, "why": "the value is not the intended one: not written"})
        if purpose == "refresh":
            return done(PolicyRefresh(succeeded=True), why="a policy refresh is confirmed by reading the policy")
        if purpose in ("identify", "verify"):
            return Resolution(False, {"applied": False, "why": "a read in the user's session: read again"})
        if purpose == "prompt":
            # A message on screen cannot be read back. Counting it as shown would leave a user who never saw it
            # waiting until the deadline (stalled); showing it twice only repeats a request to sign out and in.
            return Resolution(False, {"applied": False, "why": "a prompt cannot be read back: it is shown again"})
        if purpose == "arm":
            task: LogonTaskResult = read
            if task.task_exists or task.outcome is not None:
                return done(
                    LogonTaskArmed(task=task.task, armed=True, replaced=False, pending_result=task.outcome is not None),
                    task_exists=True,
                )
            return Resolution(False, {"applied": False, "task_exists": False})
        if purpose == "disarm":
            task = read
            if not task.task_exists:
                return done(
                    LogonTaskDisarmed(
                        task=task.task, task_removed=True, task_left=False, files_left=False, outcome=task.outcome
                    ),
                    task_exists=False,
                )
            return Resolution(False, {"applied": False, "task_exists": True})
        if purpose == "delete":
            user = params["User"]
            person = self.facts.user(user) if self.facts is not None else None
            if person is not None and not person.has_hello:
                outcome = DeleteOutcome(status="completed", user=user, deleted=True, message="resolved: container gone")
                return done(outcome, container="gone")
            if isinstance(read, HelloState) and read.status == "completed":
                if read.ngc_set is not True:
                    outcome = DeleteOutcome(
                        status="completed", user=user, deleted=True, message="resolved: container gone"
                    )
                    return done(outcome, container="gone")
                if not guard_mod.same_key_id(read.ngc_key_id, params["ExpectedKeyId"]):
                    guard = DeleteGuard(ngc_set=True, key_id=read.ngc_key_id, refusals=("container key id changed",))
                    outcome = DeleteOutcome(status="completed", user=user, refused=True, guard=guard)
                    return done(outcome, container="replaced", key_id=read.ngc_key_id)
            return Resolution(False, {"applied": False, "container": "still the recorded one (or unreadable)"})
        return Resolution(False, {"applied": False, "why": f"nothing to resolve for {purpose}"})

    def replay(self, payload: Mapping[str, Any], outcome: Any, at: datetime, journal_id: int) -> bool:
        """Apply a journalled answer whose transition was lost (a crash after the outcome's commit).

        Only a subject's (device's or one user's) latest settled entry can be in that case: the machine takes
        each answer, through the funnel, before it asks for the next step. The caller passes that entry; it is
        applied unless the subject's context says it already was (``applied``)."""
        command = self.command_for(payload)
        if command is None or not isinstance(outcome, Mapping):
            return False
        if command.user is not None and command.user not in self.users:
            return False
        context = self.users[command.user].context if command.user is not None else self.context
        if int(context.get("applied", 0) or 0) >= journal_id:
            return False
        event: Event
        if outcome.get("ok") or outcome.get("applied"):
            raw = outcome.get("result")
            kind = RESULT_TYPES.get(command.purpose)
            result: Any
            if command.purpose == "set_policy":
                result = None
            elif kind is not None and isinstance(raw, Mapping):
                result = kind.model_validate(raw)
            elif command.purpose == "refresh":
                result = PolicyRefresh(succeeded=True)
            else:
                return False
            event = StepSucceeded(command, result, at, journal_id)
        else:
            error = outcome.get("error")
            if not isinstance(error, Mapping) or error.get("transient"):
                return False  # a transient failure moved nothing worth replaying: the step is simply tried again
            event = StepFailed(
                command, str(error.get("class")), str(error.get("message")), False, False, at, journal_id
            )
        try:
            self.handle(event)
        except InvalidTransition as err:
            log.info("journal entry %s not replayed: %s", journal_id, err)
            return False
        return True

    # ------------------------------------------------------------------------------------ operators

    def pause(self, now: datetime) -> Change:
        if self.state not in PAUSABLE:
            raise InvalidTransition("pause", self.state, self.legal_triggers())
        return self.fire("pause", now=now, context={"paused_from": self.state})

    def resume(self, now: datetime) -> Change:
        return self.fire("resume", now=now, context={"paused_from": None})
