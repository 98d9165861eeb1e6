"""The device machine: the table run by ``transitions``; the loop that asks the deciders; the funnel.

Theory of operation
-------------------
One :class:`DeviceMachine` per device and visit, rebuilt from the store (device state and context, users'
states and contexts, latest facts). :meth:`DeviceMachine.advance` is called with the time; it asks the decider
of the current state (:mod:`migrator.machine.decide`) until one returns the next :class:`Command`: run a step,
wait until a time, or done (parked and final states, by their category in the table). The caller runs the step
and hands the answer to :meth:`DeviceMachine.handle`, which gives it to the handler of the step's purpose
(:mod:`migrator.machine.purposes`). Every state change, device or user, goes through the *funnel* the caller
supplies (:class:`Funnel`) before ``transitions`` moves the state: if the funnel raises (the store refused,
another worker holds the lease), nothing moved. Triggers are always called by name; an illegal one raises
:class:`InvalidTransition`, a refused guard :class:`GuardRefused`. Events from outside (a device that does not
answer, an operator's retry, a bug) enter through :meth:`DeviceMachine.on`, which honours the table's
``IGNORED`` decisions.

Facts are *fresh* only when read in the current visit and after the last side effect that may change them
(``StepInfo.changes_facts``: not a message on screen, not a read in the user's session): every decision the point
of no return depends on is taken on fresh facts, and the delete script checks the container again on the device
in the same run that deletes.

The context of the device and of each user (:mod:`migrator.machine.context`) is persisted by the funnel with the
state. ``applied`` (the id of the last journal entry whose answer moved the subject) lets a restarted driver
replay an answer that was journalled but whose transition was lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Protocol

from transitions import Machine, MachineError

from migrator.facts import DeviceFacts, HelloState, PathDecision, PathSettings, PolicyValue
from migrator.facts import path as decide_path
from migrator.machine import guards as guard_mod
from migrator.machine.commands import (
    Command,
    Done,
    Event,
    Purpose,
    Resolution,
    RunStep,
    StepFailed,
    StepSucceeded,
    Wait,
)
from migrator.machine.context import DeviceContext, UserContext, dump, load_device, load_user
from migrator.machine.decide import DEVICE_DECIDERS, TrackedUser
from migrator.machine.errors import GuardRefused, InvalidTransition
from migrator.machine.purposes import FACTS, HANDLERS, phase
from migrator.machine.table import (
    DEVICE_STATES,
    IGNORED,
    PONR_GUARDS,
    RETRY_TARGETS,
    USER_STATES,
    Category,
    Row,
    device_rows,
    device_state,
    user_rows,
)
from migrator.playbook import Playbook

log = logging.getLogger(__name__)

WindowCheck = Callable[[datetime], bool]


@dataclass(frozen=True)
class Change:
    """One state change handed to the funnel (device when ``user`` is None)."""

    trigger: str
    source: str
    dest: str
    context: dict[str, Any]  # the new context, as the store keeps it (JSON)
    user: str | None = None
    last_error: str | None = None
    path: str | None = None
    before: dict[str, Any] | None = None  # audit: what the device had
    after: dict[str, Any] | None = None  # audit: what it has now
    warning: str | None = None  # audit + log: e.g. passkeys in a container about to be deleted


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
    context: Mapping[str, Any] | None = None
    container_trust: str | None = None
    key_id: str | None = None
    last_error: str | None = None


class _Model:
    """What ``transitions`` drives: it holds ``state`` and says whose it is (the device machine, and the user
    for a user's sub-machine), so that the table's machine, shared by every device (:func:`shared_machine`),
    finds the guards' input and the funnel from the event."""

    __slots__ = ("machine", "owner", "state", "user")

    def __init__(self, owner: DeviceMachine, user: str | None, state: str, machine: Machine) -> None:
        self.owner = owner
        self.user = user
        self.state = state
        self.machine = machine

    def trigger(self, name: str) -> bool:
        """Fire ``name`` on this model (``transitions``' own ``Event.trigger``, which reads and sets the model's
        ``state`` attribute: the model need not be registered with the machine)."""
        return bool(self.machine.events[name].trigger(self))


def _guard(name: str) -> Callable[[Any], bool]:
    if name not in guard_mod.GUARDS:
        raise ValueError(f"the table names guard {name!r}, which migrator.machine.guards does not define")

    def check(event: Any) -> bool:
        model: _Model = event.model
        return guard_mod.check(name, model.owner._guard_input(model.user))

    return check


def _persist(event: Any) -> None:
    model: _Model = event.model
    model.owner._persist(event)


@lru_cache(maxsize=16)
def shared_machine(states: tuple[str, ...], rows: tuple[Row, ...]) -> Machine:
    """One ``transitions`` machine per transition table (states and rows: a playbook's steps choose the rows),
    shared by every device and user that walks it.

    Building a machine compiles every row into ``transitions``' objects; doing it for each device and each user
    at every visit was a tenth of the orchestrator's own CPU. Nothing in it is per device: the models are not
    registered with it (:meth:`_Model.trigger`), the guards and the funnel find their device through the event's
    model, and with no queue (``queued=False``) a trigger keeps no state in the machine between calls, so
    threads share it. Bounded: a process sees a handful of playbooks, and a table not seen for a while is
    rebuilt at its next use."""
    transitions = []
    for row in rows:
        spec = row.as_transition()
        spec["conditions"] = [_guard(name) for name in row.conditions]
        spec["unless"] = [_guard(name) for name in row.unless]
        transitions.append(spec)
    return Machine(
        model=None,
        states=list(states),
        transitions=transitions,
        initial=states[0],
        auto_transitions=False,
        send_event=True,
        ignore_invalid_triggers=False,
        before_state_change=[_persist],
        model_attribute="state",
    )


@dataclass
class UserEntry:
    """One user's sub-machine, context and what this visit learnt about them."""

    record: UserRecord
    model: _Model
    machine: Machine
    context: UserContext
    waited: Wait | None = None  # this visit's decision to wait (no more work for this user now)
    hello: HelloState | None = None
    prompted_now: bool = False  # asked to sign out in this visit: nothing to verify before the next one
    error: str | None = None  # the user's last_error as the funnel last recorded it


@dataclass
class _Pending:
    context: dict[str, Any]
    user: str | None = None
    last_error: str | None = None
    path: str | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    warning: str | None = None
    change: Change | None = field(default=None)


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
        context: DeviceContext | Mapping[str, Any] | None = None,
        users: Sequence[UserRecord] = (),
        facts: DeviceFacts | None = None,
        path_settings: PathSettings | None = None,
        window: WindowCheck = _always_open,
        snapshot: Sequence[PolicyValue] = (),
    ) -> None:
        if not playbook.has("confirm_policy"):
            raise ValueError(
                f"playbook {playbook.name!r}: the machine needs 'confirm_policy' (the point of no return and "
                "verification depend on the confirmed policy)"
            )
        self.device = device
        self.playbook = playbook
        self.funnel = funnel
        # The playbook's own RequireSecurityDevice counts as much as the device's: it will be in force by the
        # time a new container must be provisioned.
        self._settings = (path_settings or PathSettings()).model_copy(
            update={"require_security_device": playbook.policy.require_security_device}
        )
        self.window = window
        self.facts = facts
        self.facts_fresh = False
        self.context = context if isinstance(context, DeviceContext) else load_device(context)
        self.snapshot = tuple(snapshot)  # the policy values rollback restores (from the store)
        self.refreshed_this_visit = False
        self.discovered: tuple[PolicyValue, ...] | None = None  # policy values read ahead in this visit
        self._pending: _Pending | None = None
        self._now: datetime | None = None
        self._deferred: Wait | None = None  # the device did not answer in this visit: wait for the next
        self._rows = device_rows(playbook)
        self._user_rows = user_rows(playbook)
        self._model = self._build(DEVICE_STATES, self._rows, state, None)
        self._machine = self._model.machine
        self.users: dict[str, UserEntry] = {}
        for record in users:
            self._add_user(record)

    # ------------------------------------------------------------------------------------- building

    def _build(self, states: Sequence[str], rows: Sequence[Row], initial: str, user: str | None) -> _Model:
        if initial not in states:
            raise ValueError(f"{'user ' + user if user else self.device}: unknown state {initial!r}")
        return _Model(self, user, initial, shared_machine(tuple(states), tuple(rows)))

    def _add_user(self, record: UserRecord) -> UserEntry:
        model = self._build(USER_STATES, self._user_rows, record.state, record.name)
        machine = model.machine
        context = load_user(record.context) if record.context else self._initial_user_context(record)
        if record.key_id and not context.key_id:
            context = replace(context, key_id=record.key_id)
        entry = UserEntry(record, model, machine, context, error=record.last_error)
        self.users[record.name] = entry
        return entry

    def track(self, user: TrackedUser) -> None:
        """A user preflight decided to track (kept if already known)."""
        if user.name not in self.users:
            self._add_user(UserRecord(user.name, user.sid, container_trust=user.container_trust))

    def _initial_user_context(self, record: UserRecord) -> UserContext:
        device_path = self.context.path
        needs_delete = record.container_trust is not None and (
            device_path == "cert" or (device_path == "key" and self.playbook.reset_key_trust_containers)
        )
        return UserContext(
            sid=record.sid,
            trust=record.container_trust,
            needs_delete=needs_delete and self.playbook.has("delete_container"),
            # What the directory says before any device is visited (msDS-NeverRevealGroup, transitively): data
            # handed in with the path settings, so preflight can park the user without asking the device.
            protected_groups=tuple(self._settings.never_reveal.get(record.sid, ())),
        )

    def _guard_input(self, user: str | None) -> guard_mod.GuardInput:
        # Guards read the context of the state being left (what a row's guard is about), never the new one.
        user_context = UserContext()
        hello = None
        if user is not None:
            entry = self.users[user]
            user_context, hello = entry.context, entry.hello
        now = self.now
        return guard_mod.GuardInput(
            playbook=self.playbook,
            now=now,
            facts=self.facts,
            facts_fresh=self.facts_fresh,
            decision=self.decision,
            device_context=self.context,
            user_context=user_context,
            user_states=[u.model.state for u in self.users.values()],
            hello=hello,
            window_open=self.window(now),
        )

    # ---------------------------------------------------------------------------------------- state

    @property
    def state(self) -> str:
        return self._model.state

    @property
    def now(self) -> datetime:
        return self._now or datetime.now().astimezone()

    @property
    def decision(self) -> PathDecision | None:
        if self.facts is None:
            return None
        return decide_path(self.facts, self._settings)

    def learn_entra_devices(self, states: Mapping[str, str]) -> None:
        """What Entra ID says of device objects (deviceId → present, disabled, missing, unknown), learnt during a
        visit before the machine decides the device's path (a device first seen by its wave)."""
        known = {**self._settings.entra_devices, **{k.casefold(): v for k, v in states.items()}}
        self._settings = self._settings.model_copy(update={"entra_devices": known})

    def user_state(self, name: str) -> str:
        return self.users[name].model.state

    def user_entry(self, command: RunStep) -> UserEntry:
        assert command.user is not None, f"{command.purpose} is a user step"
        return self.users[command.user]

    def legal_triggers(self, user: str | None = None) -> list[str]:
        if user is None:
            return sorted(self._machine.get_triggers(self.state))
        entry = self.users[user]
        return sorted(entry.machine.get_triggers(entry.model.state))

    def guard(self, name: str, user: str | None = None) -> bool:
        return guard_mod.check(name, self._guard_input(user))

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

    def failing_ponr_guards(self, user: str) -> list[str]:
        data = self._guard_input(user)
        return [g for g in PONR_GUARDS if not guard_mod.check(g, data)]

    def session_id(self, entry: UserEntry) -> int | None:
        """The user's session as the facts last read show it (None: not signed in, or no facts)."""
        person = self.facts.user(entry.context.sid or entry.record.sid) if self.facts is not None else None
        return person.session.id if person is not None and person.session is not None else None

    def recheck(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.playbook.waits.recheck_every)

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
            context=pending.context,
            user=pending.user,
            last_error=pending.last_error,
            path=pending.path,
            before=pending.before,
            after=pending.after,
            warning=pending.warning,
        )
        self.funnel.change(change)
        pending.change = change

    def fire(
        self,
        trigger: str,
        *,
        user: str | None = None,
        context: DeviceContext | UserContext | None = None,
        last_error: str | None = None,
        path: str | None = None,
        before: Mapping[str, Any] | None = None,
        after: Mapping[str, Any] | None = None,
        warning: str | None = None,
        now: datetime | None = None,
    ) -> Change:
        """Take the transition ``trigger`` (of a user when ``user`` is given) through the funnel, with ``context``
        as the subject's new context (None: unchanged)."""
        if now is not None:
            self._now = now
        base: DeviceContext | UserContext
        if user is not None:
            entry = self.users[user]
            model, machine, base = entry.model, entry.machine, entry.context
            subject = f"user {user} of {self.device}"
        else:
            model, machine, base = self._model, self._machine, self.context
            subject = self.device
        new = base if context is None else context
        if type(new) is not type(base):
            raise TypeError(f"{subject}: {trigger} was given a {type(new).__name__}, not a {type(base).__name__}")
        current = model.state
        if trigger not in machine.events:  # no row for it in this playbook's machine
            raise InvalidTransition(trigger, current, self.legal_triggers(user), subject)
        self._pending = _Pending(
            context=dump(new),
            user=user,
            last_error=last_error,
            path=path,
            before=dict(before) if before else None,
            after=dict(after) if after else None,
            warning=warning,
        )
        try:
            try:
                moved = model.trigger(trigger)
            except MachineError:  # not legal from this state
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
            assert isinstance(new, UserContext)
            self.users[user].context = new
            self.users[user].error = last_error
        else:
            assert isinstance(new, DeviceContext)
            self.context = new
        return change

    def try_fire(self, trigger: str, **kwargs: Any) -> Change | None:
        """Fire ``trigger`` if a row allows it now; None (nothing changed) if its guards refuse."""
        try:
            return self.fire(trigger, **kwargs)
        except GuardRefused:
            return None

    def on(self, event: str, *, user: str | None = None, **kwargs: Any) -> Change | None:
        """An event from outside the machine's own decisions: taken through its row, or, where the table says
        the event changes nothing in this state (``IGNORED``), logged and left alone (None)."""
        state = self.user_state(user) if user is not None else self.state
        why = IGNORED.get((event, state))
        if why is not None:
            log.debug("%s: %s ignored in %s: %s", self.device, event, state, why)
            return None
        return self.fire(event, user=user, **kwargs)

    # ---------------------------------------------------------------------------------------- visits

    def begin_visit(self, now: datetime) -> None:
        """A new visit: facts read before are stale (the device may have changed meanwhile)."""
        self._now = now
        self.facts_fresh = False
        self._deferred = None
        self.refreshed_this_visit = False
        self.discovered = None
        for entry in self.users.values():
            entry.waited = None
            entry.hello = None
            entry.prompted_now = False

    def take_facts(self, facts: DeviceFacts) -> None:
        self.facts = facts
        self.facts_fresh = True

    def read_facts(self) -> RunStep:
        return FACTS.command()

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
        info = device_state(state)
        assert info is not None, f"{self.device}: state {state!r} is not in the table"
        if info.category in (Category.PARKED, Category.FINAL):
            return Done(state, self.context.reason)
        if self._deferred is not None:
            return self._deferred
        decider = DEVICE_DECIDERS[state]
        if decider.fresh and not self.facts_fresh:
            return replace(self.read_facts(), riders=decider.ahead(self)) if decider.ahead else self.read_facts()
        return decider.decide(self, now)

    # ------------------------------------------------------------------------------------------ events

    def handle(self, event: Event) -> None:
        """Take a step's answer (or failure) into the machine, through the handler of the step's purpose."""
        self._now = event.at
        if isinstance(event, StepFailed):
            self._failed(event)
            return
        command = event.command
        handler = HANDLERS[command.purpose]
        if command.side_effect and (command.step.info.changes_facts or handler.reread_facts):
            self.facts_fresh = False  # the device changed (or may have): read it again before deciding
        handler.answer(self, event)

    def _failed(self, event: StepFailed) -> None:
        now = event.at
        command = event.command
        message = f"{command.name}: {event.error_class}: {event.message}"
        if event.transient:
            self.unreachable(now, message)
            return
        if command.user is not None and not event.device_wide:
            entry = self.users[command.user]
            context = replace(entry.context, applied=event.journal_id) if event.journal_id else None
            self.fire("step_failed", user=command.user, now=now, last_error=message, context=context)
            return
        self.on(
            "step_failed",
            now=now,
            last_error=message,
            context=replace(
                self.context,
                reason=message,
                applied=event.journal_id or self.context.applied,
                return_to=self._return_point(),
            ),
        )

    def _return_point(self) -> str | None:
        """Where a retry carries on: the state the device stopped in (waiting for the device: where it was)."""
        state = self.state
        return state if state in RETRY_TARGETS else self.context.return_to

    def unreachable(self, now: datetime, message: str) -> Wait | None:
        """The device did not answer (after the transport's own retries): wait for it at the next recheck, or
        park it as ``unreachable`` past the playbook's unreachable deadline. Never a failure."""
        self._now = now
        self.facts_fresh = False
        state = self.state
        # A spell of unreachability starts at its first failure and lasts while the device waits for the device.
        since = (self.context.unreachable_since if state == "waiting_for_device" else None) or now
        deadline = since + timedelta(seconds=self.playbook.waits.unreachable_deadline)
        context = replace(self.context, unreachable_since=since, return_to=self._return_point())
        # Since when is in the context (reports show it); the error says what the transport saw, and what next.
        parked = f"{message} (no answer for longer than waits.unreachable_deadline; `migrator resume` tries again)"
        if state == "waiting_for_device" and self.try_fire(
            "unreachable_too_long", now=now, context=replace(context, reason=parked), last_error=parked
        ):
            return None
        waiting = f"{message} (tried again at each recheck until {deadline:%Y-%m-%d %H:%M %Z})"
        if self.on("unreachable", now=now, context=context, last_error=waiting) is None:
            return None
        self._deferred = Wait(
            self.recheck(now), f"the device does not answer since {since:%Y-%m-%d %H:%M %Z}: {waiting}", "device"
        )
        return self._deferred

    def crash(self, summary: str, traceback_text: str, now: datetime) -> Change:
        """An unexpected exception (a bug): the device goes to ``error`` with it, never a plausible other state."""
        self._now = now
        context = replace(self.context, traceback=traceback_text, return_to=self._return_point())
        return self.fire("internal_error", now=now, context=context, last_error=summary)

    def retry(self, now: datetime) -> Change | None:
        """`migrator resume` (error, unreachable) or an operator (failed, stalled): try again where it stopped."""
        self._now = now
        state = self.state
        if state == "unreachable":
            context = replace(self.context, unreachable_since=now, reason=None)
            return self.on("retry", now=now, context=context)
        for name, entry in sorted(self.users.items()):
            if state in ("failed", "stalled") and entry.model.state in ("failed", "stalled"):
                fresh = replace(entry.context, phase=None, since=None, deadline_seconds=None, deadline_due=False)
                if fresh.deleted:  # back to waiting for re-provisioning, with a new deadline
                    fresh = phase(fresh, "reprovision", now, self)
                self.fire("retry", user=name, now=now, context=fresh)
        context = replace(
            self.context, return_to=None, traceback=None, reason=None, unreachable_since=None, policy_since=None
        )
        try:
            return self.on("retry", now=now, context=context)
        except GuardRefused:
            # No state recorded to carry on from (an error before the first state change of a store written
            # by an older version): it stays parked, with its reason, for a person.
            log.warning("%s: %s cannot be retried: no state to return to", self.device, state)
            return None

    def begin_rollback(self, now: datetime) -> Change | None:
        self._now = now
        return self.on("begin_rollback", now=now, after={"snapshot_values": len(self.snapshot)})

    # ------------------------------------------------------------------------------- in-doubt intents

    @staticmethod
    def command_for(payload: Mapping[str, Any]) -> RunStep | None:
        """The command a journalled intent was for (None for purposes the machine does not resolve)."""
        try:
            purpose = Purpose(str(payload.get("purpose")))
        except ValueError:
            return None
        step = HANDLERS[purpose].step(dict(payload.get("parameters") or {}))
        if step is None:
            return None
        user = payload.get("user")
        return RunStep(step, purpose, str(user) if user else None, point_of_no_return=purpose is Purpose.DELETE)

    def resolution_read(self, command: RunStep) -> RunStep | None:
        """The read (besides fresh facts) that tells whether an in-doubt intent took effect."""
        return HANDLERS[command.purpose].resolution_read(self, command)

    def resolve(self, command: RunStep, read: Any, at: datetime, journal_id: int) -> Resolution:
        """Decide from fresh facts (and ``read``) whether an in-doubt intent took effect — never by repeating."""
        return HANDLERS[command.purpose].resolve(self, command, read, at, journal_id)

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
        if (context.applied or 0) >= journal_id:
            return False
        handler = HANDLERS[command.purpose]
        event: Event
        if outcome.get("ok") or outcome.get("applied"):
            raw = outcome.get("result")
            if raw is None and handler.result_type is not None:
                return False
            event = StepSucceeded(command, handler.result(raw), at, journal_id)
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
            # Not a bug: the subject already moved past this answer (its transition committed, `applied` not
            # recorded by the purposes that fire none, such as identify), so the answer no longer applies.
            log.info("journal entry %s not replayed: %s", journal_id, err)
            return False
        return True
