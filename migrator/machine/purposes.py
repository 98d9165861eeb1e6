"""What each step does, by purpose: one registered handler per :class:`~migrator.machine.commands.Purpose`.

A handler (psrpcore's ``_process_<Message>`` shape) knows one purpose whole:

* ``command(...)``: the step to run, with its parameters (values only: they reach PowerShell as parameters);
* :meth:`Handler.answer`: what the device's answer means, as a trigger fired through the machine's funnel;
* :meth:`Handler.step`: the step a journalled intent was for, rebuilt from its parameters (to resolve or replay);
* :meth:`Handler.resolution_read` and :meth:`Handler.resolve`: after a crash or a lost answer, whether the
  intent took effect, decided by re-reading the device (fresh facts plus the one thing the step changed), never
  by repeating it;
* :meth:`Handler.result`: a journalled answer read back into its typed form, to replay it.

The machine dispatches answers with ``HANDLERS[command.purpose].answer(...)``; the deciders of
:mod:`migrator.machine.decide` build commands with the module-level handler instances (``SET_POLICY.command``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import BaseModel

from migrator.facts import (
    CERT_TRUST,
    DeleteGuard,
    DeleteOutcome,
    DeviceFacts,
    HelloState,
    LogonTaskArmed,
    LogonTaskDisarmed,
    LogonTaskResult,
    PolicyRefresh,
    PolicyValue,
    PromptResult,
    RestoreAction,
)
from migrator.machine import guards as guard_mod
from migrator.machine.commands import Purpose, Resolution, RunStep, StepSucceeded, Wait
from migrator.machine.context import NoCloudTgt, UserContext
from migrator.machine.plan import PlanItem, snapshot_entries
from migrator.playbook import Playbook
from migrator.steps import (
    ArmLogonTask,
    CollectFacts,
    DeleteHelloContainer,
    DisarmLogonTask,
    PolicyWrite,
    PromptUser,
    ReadHelloState,
    ReadLogonTaskResult,
    RefreshPolicy,
    RestorePolicy,
    SetPolicy,
    SnapshotPolicy,
    Step,
)

if TYPE_CHECKING:
    from migrator.machine.core import DeviceMachine, UserEntry


class Handler:
    """The base of every purpose handler; each subclass is registered once, in :data:`HANDLERS`."""

    purpose: ClassVar[Purpose]
    result_type: ClassVar[type[BaseModel] | None] = None  # the typed answer (None: the answer carries nothing)
    # Read the facts again after this journalled answer even when the step changes none of them
    # (StepInfo.changes_facts): what comes next is decided only on facts read after it.
    reread_facts: ClassVar[bool] = False

    def step(self, params: Mapping[str, Any]) -> Step[Any] | None:
        """The step a journalled intent was for (None: nothing to resolve for this purpose)."""
        return None

    def answer(self, m: DeviceMachine, event: StepSucceeded) -> None:
        """Take the device's answer into the machine."""
        raise NotImplementedError(f"{type(self).__name__} takes no answer")

    def resolution_read(self, m: DeviceMachine, command: RunStep) -> RunStep | None:
        """The read (besides fresh facts) that tells whether an in-doubt intent took effect."""
        return None

    def resolve(self, m: DeviceMachine, command: RunStep, read: Any, at: datetime, journal_id: int) -> Resolution:
        """Whether an in-doubt intent took effect, from fresh facts and ``read``; never by repeating it."""
        return Resolution(False, {"applied": False, "why": f"nothing to resolve for {self.purpose}"})

    def companion(self, m: DeviceMachine, event: StepSucceeded) -> None:
        """The answer of this step sent as another step's companion (:attr:`RunStep.companions`)."""
        raise NotImplementedError(f"{type(self).__name__} is never a companion")

    def result(self, raw: Any) -> Any:
        """A journalled answer read back into its typed form (what :meth:`answer` takes)."""
        if self.result_type is None:
            return None
        return self.result_type.model_validate(raw)


HANDLERS: dict[Purpose, Handler] = {}
H = TypeVar("H", bound=Handler)


def register(handler: H) -> H:
    if handler.purpose in HANDLERS:
        raise ValueError(f"purpose {handler.purpose} has two handlers")
    HANDLERS[handler.purpose] = handler
    return handler


def _done(command: RunStep, result: Any, at: datetime, journal_id: int, **summary: Any) -> Resolution:
    return Resolution(True, {"applied": True, **summary}, StepSucceeded(command, result, at, journal_id))


def _applied(journal_id: int | None) -> dict[str, Any]:
    return {"applied": journal_id} if journal_id is not None else {}


# ---------------------------------------------------------------------------------------------------------
# Device steps
# ---------------------------------------------------------------------------------------------------------


def confirmed(command: RunStep) -> RunStep:
    """``command`` with the facts read right after it riding in its pipeline: the next decision is taken on them."""
    return replace(command, riders=(*command.riders, FACTS.command()))


class Facts(Handler):
    purpose = Purpose.FACTS
    result_type = DeviceFacts

    def command(self) -> RunStep:
        return RunStep(CollectFacts(), self.purpose)

    def answer(self, m: DeviceMachine, event: StepSucceeded) -> None:
        m.take_facts(event.result)
        if m.state == "waiting_for_device":
            since = m.context.unreachable_since
            m.fire(
                "reached",
                now=event.at,
                context=replace(m.context, return_to=None, unreachable_since=None),
                before={"unreachable_since": since.isoformat() if since else None},
            )


class Snapshot(Handler):
    purpose = Purpose.SNAPSHOT

    def command(self, plan: Sequence[PlanItem]) -> RunStep:
        return RunStep(SnapshotPolicy(snapshot_entries(plan)), self.purpose)

    def answer(self, m: DeviceMachine, event: StepSucceeded) -> None:
        self.take(m, event.result, event.at)

    def take(self, m: DeviceMachine, values: Sequence[PolicyValue], at: datetime) -> None:
        """Save the snapshot (first wins), then move on: nothing is written before it is in the store."""
        m.funnel.policy_snapshot(values)
        m.fire("snapshot_taken", now=at, after={"snapshot": [f"{v.path}\\{v.name}" for v in values]})

    def discovered(self, m: DeviceMachine, plan: Sequence[PlanItem]) -> tuple[PolicyValue, ...] | None:
        """The snapshot of ``plan`` from what preflight's pipeline discovered in this visit (None: not all of it
        was read there, so the snapshot reads it)."""
        if m.discovered is None:
            return None
        found = {(v.path.casefold(), v.name.casefold()): v for v in m.discovered}
        values: list[PolicyValue] = []
        for path, name in snapshot_entries(plan):
            value = found.get((path.casefold(), name.casefold()))
            if value is None:
                return None
            values.append(value.model_copy(update={"path": path, "name": name}))
        return tuple(values)


class Discover(Handler):
    """Every value a policy plan may write (the Group Policy trust values, and certificate trust in every user
    and MDM scope), read in preflight's facts pipeline before the plan is known: the snapshot state then takes
    its values from it (:meth:`Snapshot.discovered`) instead of a read of its own. Held for this visit only."""

    purpose = Purpose.DISCOVER

    def command(self) -> RunStep:
        return RunStep(SnapshotPolicy(snapshot_entries(()), scoped_name=CERT_TRUST), self.purpose)

    def answer(self, m: DeviceMachine, event: StepSucceeded) -> None:
        m.discovered = tuple(event.result)


class ReadBack(Handler):
    """A read made only to resolve an in-doubt step: its answer goes to :meth:`Handler.resolve`, never here."""

    purpose = Purpose.READ_BACK


def _writes(command: RunStep) -> tuple[PolicyWrite, ...]:
    step = command.step
    assert isinstance(step, SetPolicy), f"not a set_policy step: {step!r}"
    return step.writes


class SetPolicyValue(Handler):
    """The rest of the policy plan, written in one call (one journal entry for the call); its answer moves the
    machine once per value (one transition, so one audit entry, per value written)."""

    purpose = Purpose.SET_POLICY

    def command(self, items: Sequence[PlanItem]) -> RunStep:
        writes = tuple(
            PolicyWrite(item.path, item.name, remove=True)
            if item.remove
            else PolicyWrite(item.path, item.name, item.value)
            for item in items
        )
        return RunStep(SetPolicy(writes), self.purpose)

    def step(self, params: Mapping[str, Any]) -> Step[Any]:
        return SetPolicy(tuple(PolicyWrite.from_record(r) for r in params.get("Values") or ()))

    def result(self, raw: Any) -> Any:
        return None  # set_policy's answer (the values it replaced) is in the journal; the machine needs none

    def answer(self, m: DeviceMachine, event: StepSucceeded) -> None:
        # The call wrote the plan's values from plan_done on (the command is always the rest of the plan): each
        # of them is one transition. Only the last records the journal entry as applied, so a crash between two
        # of them replays the rest from the journal, and a replay after the last changes nothing.
        written = {(w.path.casefold(), w.name.casefold()) for w in _writes(event.command)}
        plan = m.context.plan
        todo = [
            i
            for i in range(m.context.plan_done, len(plan))
            if (plan[i].path.casefold(), plan[i].name.casefold()) in written
        ]
        for n, index in enumerate(todo):
            item = plan[index]
            last = n + 1 == len(todo)
            applied = (event.journal_id or m.context.applied) if last else m.context.applied
            m.fire(
                "policy_value_set",
                now=event.at,
                context=replace(m.context, plan_done=index + 1, applied=applied),
                before={"path": item.path, "name": item.name, "value": item.before},
                after={"path": item.path, "name": item.name, "value": None if item.remove else item.value},
            )

    def resolution_read(self, m: DeviceMachine, command: RunStep) -> RunStep:
        entries = tuple((w.path, w.name) for w in _writes(command))
        return RunStep(SnapshotPolicy(entries), Purpose.READ_BACK)

    def resolve(self, m: DeviceMachine, command: RunStep, read: Any, at: datetime, journal_id: int) -> Resolution:
        values: Sequence[PolicyValue] = read
        current = {(v.path.casefold(), v.name.casefold()): v for v in values}
        found: list[dict[str, Any]] = []
        for write in _writes(command):
            value = current.get((write.path.casefold(), write.name.casefold()))
            if write.remove:
                ok = value is not None and not value.existed
            else:
                ok = value is not None and value.existed and value.data == write.value
            if not ok or value is None:
                # Not every value is the intended one: the call is sent again (idempotent: what was written
                # already is left as it is).
                return Resolution(
                    False, {"applied": False, "why": f"{write.name} is not the intended value: not written"}
                )
            found.append({"name": write.name, "existed": value.existed, "data": value.data})
        return _done(command, None, at, journal_id, read=found)


class Refresh(Handler):
    purpose = Purpose.REFRESH
    result_type = PolicyRefresh

    def command(self) -> RunStep:
        return RunStep(RefreshPolicy(), self.purpose)

    def step(self, params: Mapping[str, Any]) -> Step[Any]:
        return RefreshPolicy()

    def answer(self, m: DeviceMachine, event: StepSucceeded) -> None:
        refresh: PolicyRefresh = event.result
        m.refreshed_this_visit = True
        m.fire(
            "policy_refreshed",
            now=event.at,
            context=replace(m.context, applied=event.journal_id or m.context.applied),
            last_error=None if refresh.succeeded else "gpupdate did not complete: " + "; ".join(refresh.errors),
        )

    def resolve(self, m: DeviceMachine, command: RunStep, read: Any, at: datetime, journal_id: int) -> Resolution:
        return _done(command, PolicyRefresh(succeeded=True), at, journal_id, why="confirmed by reading the policy")


class Restore(Handler):
    """Rollback: the snapshot values written back; the answer ends the rollback."""

    purpose = Purpose.RESTORE

    def command(self, records: Sequence[PolicyValue]) -> RunStep:
        return RunStep(RestorePolicy(tuple(records)), self.purpose)

    def step(self, params: Mapping[str, Any]) -> Step[Any]:
        records = [PolicyValue.model_validate(r) for r in params.get("Records", [])]
        return RestorePolicy(tuple(records))

    def result(self, raw: Any) -> Any:
        return tuple(RestoreAction.model_validate(r) for r in raw or ())

    def answer(self, m: DeviceMachine, event: StepSucceeded) -> None:
        actions: Sequence[RestoreAction] = event.result
        restored = tuple(f"{a.path}\\{a.name}: {a.action}" for a in actions)
        m.fire(
            "restored",
            now=event.at,
            context=replace(m.context, restored=restored, applied=event.journal_id or m.context.applied),
            before={"snapshot": [f"{v.path}\\{v.name}" for v in m.snapshot]},
            after={"restored": [{"path": a.path, "name": a.name, "action": a.action} for a in actions]},
        )

    def resolution_read(self, m: DeviceMachine, command: RunStep) -> RunStep:
        return RunStep(SnapshotPolicy(tuple((v.path, v.name) for v in m.snapshot)), Purpose.READ_BACK)

    def resolve(self, m: DeviceMachine, command: RunStep, read: Any, at: datetime, journal_id: int) -> Resolution:
        current = {(c.path.casefold(), c.name.casefold()): c for c in read}
        for record in m.snapshot:
            value = current.get((record.path.casefold(), record.name.casefold()))
            if value is None or value.existed != record.existed or (record.existed and value.data != record.data):
                return Resolution(False, {"applied": False, "why": "a value is not back yet: restored again"})
        return _done(command, (), at, journal_id, why="every snapshot value reads back as it was")


# ---------------------------------------------------------------------------------------------------------
# User steps (in the user's own session, through scheduled tasks: windows-facts §6)
# ---------------------------------------------------------------------------------------------------------


def _sid(entry: UserEntry) -> str:
    return entry.context.sid or entry.record.sid


def expected_trust(context: UserContext) -> str:
    """The trust the delete script must find on the device ("" = key id only)."""
    trust = context.trust or ""
    return trust if trust in ("key", "cert", "cloud") else ""


def task_not_done(
    m: DeviceMachine, entry: UserEntry, status: str, message: str | None, now: datetime, context: UserContext
) -> None:
    """A user-context task did not complete: wait and read again (verifying goes back to waiting)."""
    verifying = entry.model.state == "verifying"
    if status == "not-started":
        # The user signed out between reading the facts and the task: read the device again next time.
        reason = "the user signed out before their task could run"
    else:
        reason = f"user-context task {status}" + (f": {message}" if message else "")
    m.fire(
        "not_yet_cloud" if verifying else "deferred",
        user=entry.record.name,
        now=now,
        context=context,
        last_error=reason,
    )
    wait_user(m, entry, now, reason)


def delete_outcome(
    m: DeviceMachine,
    entry: UserEntry,
    outcome: DeleteOutcome,
    now: datetime,
    context: UserContext,
    *,
    from_task: bool = False,
) -> None:
    """What a guarded delete (or the at-logon task that ran it) did to the user's container."""
    name = entry.record.name
    before = {"key_id": entry.context.key_id, "trust": entry.context.trust}
    if outcome.deleted:
        trigger = "task_deleted_container" if from_task else "container_deleted"
        deleted = replace(context, deleted=True, deleted_by_us=True, deleted_at=now)
        m.fire(
            trigger,
            user=name,
            now=now,
            context=phase(deleted, "reprovision", now, m) if from_task else deleted,
            before=before,
            after={"deleted": True, "ran_as": outcome.ran_as, "sign_out_required": outcome.sign_out_required},
        )
        if outcome.prompt is not None and not from_task:
            # The prompt rode in the delete's run: its answer is the prompt step's. A crash between the two
            # transitions leaves the user in `prompted`, which shows the prompt again (a repeated request to
            # sign out and in, never a repeated delete).
            prompt_sent(m, m.users[name], now, skipped=not outcome.prompt.delivered)
        return
    if outcome.refused:
        refusals = outcome.guard.refusals if outcome.guard is not None else ()
        gone = phase(replace(context, deleted=True), "reprovision", now, m)
        if "no Hello container" in refusals:
            m.fire("container_gone", user=name, now=now, context=gone, after={"refused": list(refusals)})
            return
        m.fire(
            "container_replaced",
            user=name,
            now=now,
            context=gone,
            before=before,
            after={"refused": list(refusals), "observed_key_id": outcome.guard.key_id if outcome.guard else None},
        )
        return
    if outcome.status != "completed":
        task_not_done(m, entry, outcome.status, outcome.message, now, context)
        return
    error = outcome.certutil_error or outcome.message or "certutil -deletehellocontainer failed"
    m.fire("step_failed", user=name, now=now, context=context, last_error=f"container not deleted: {error}")


def prompt_sent(
    m: DeviceMachine, entry: UserEntry, now: datetime, *, skipped: bool, journal_id: int | None = None
) -> None:
    context = phase(entry.context, "reprovision" if entry.context.deleted else "sign_in", now, m)
    if journal_id is not None:
        context = replace(context, applied=journal_id)
    entry.prompted_now = not skipped
    if not skipped:
        # The session asked to sign out: a later verify in a *different* session proves a new sign-in.
        context = replace(context, prompted_at=now, prompted_session=m.session_id(entry))
    m.fire(
        "prompt_sent",
        user=entry.record.name,
        now=now,
        context=context,
        after={"prompted": True} if not skipped else {"prompted": False, "why": "user not signed in"},
    )


def phase(context: UserContext, name: str, now: datetime, m: DeviceMachine) -> UserContext:
    """The context for entering a waiting phase: its start and deadline are kept while the phase lasts."""
    if context.phase == name:
        return context
    waits = m.playbook.waits
    limits = {
        "identify": waits.user_deadline,
        "dc": waits.dc_deadline,
        "sign_in": waits.user_deadline,
        "reprovision": waits.reprovision_deadline,
    }
    return replace(context, phase=name, since=now, deadline_seconds=limits[name])  # type: ignore[arg-type]


def wait_user(m: DeviceMachine, entry: UserEntry, now: datetime, reason: str, kind: Any = "user") -> None:
    """No more work for this user in this visit: look again at the recheck (or the phase's deadline if sooner)."""
    until = m.recheck(now)
    since, limit = entry.context.since, entry.context.deadline_seconds
    if since is not None and limit is not None:
        until = max(min(until, since + timedelta(seconds=limit)), now)
    entry.waited = Wait(until, reason, kind)


def refused_account(m: DeviceMachine, entry: UserEntry, now: datetime, context: UserContext | None = None) -> bool:
    """Park a user whose token holds a group Entra Kerberos refuses; True when it did."""
    groups = entry.context.protected_groups
    if not groups:
        return False
    kept = "its key trust container stays" if entry.context.trust == "key" else "nothing was deleted"
    if entry.context.deleted:
        kept = "its container was already deleted: it signs in with a password until an admin acts"
    m.fire(
        "account_refused",
        user=entry.record.name,
        now=now,
        context=context,
        last_error=(
            f"the account is in {', '.join(groups)}: Microsoft Entra Kerberos gives it no partial TGT "
            f"(msDS-NeverRevealGroup of AzureADKerberos), so cloud Kerberos trust cannot serve it; {kept}"
        ),
    )
    return True


def _with_applied(entry: UserEntry, journal_id: int | None) -> UserContext:
    return replace(entry.context, applied=journal_id) if journal_id is not None else entry.context


class _SessionRead(Handler):
    """hello_state in the user's own session (an Interactive task): journalled for the task it registers, and
    never resolved by reading back: a lost answer is simply read again."""

    result_type = HelloState

    def command(self, entry: UserEntry) -> RunStep:
        return RunStep(ReadHelloState(_sid(entry)), self.purpose, entry.record.name)

    def step(self, params: Mapping[str, Any]) -> Step[Any]:
        return ReadHelloState(params["User"])

    def resolve(self, m: DeviceMachine, command: RunStep, read: Any, at: datetime, journal_id: int) -> Resolution:
        return Resolution(False, {"applied": False, "why": "a read in the user's session: read again"})


class Identify(_SessionRead):
    """Read the user's container (NgcKeyId, trust, token groups) in their session before the guarded delete."""

    purpose = Purpose.IDENTIFY
    # The point of no return comes next: its guards are taken on facts read after every journalled step, the
    # identify task included (verify, the other session read, needs no such read: nothing irreversible follows).
    reread_facts = True

    def answer(self, m: DeviceMachine, event: StepSucceeded) -> None:
        entry = m.user_entry(event.command)
        if entry.model.state == "pending":  # sent with the policy write (or replayed) before the user started
            self.companion(m, event)
            return
        hello: HelloState = event.result
        context = _with_applied(entry, event.journal_id)
        if hello.status != "completed":
            task_not_done(m, entry, hello.status, hello.message, event.at, context)
            return
        if hello.ngc_set is not True or not hello.ngc_key_id:
            gone = phase(replace(context, deleted=True), "reprovision", event.at, m)
            m.fire("container_gone", user=entry.record.name, now=event.at, context=gone)
            return
        self._record(m, entry, hello)

    def companion(self, m: DeviceMachine, event: StepSucceeded) -> None:
        """Sent in the policy write's pipeline, before the user started: a container read is kept in the user's
        context (the identifying state then goes on without a read of its own); any other answer is left for
        the identifying state, which reads the container again."""
        entry = m.user_entry(event.command)
        hello: HelloState = event.result
        if entry.model.state == "pending" and hello.status == "completed" and hello.ngc_set and hello.ngc_key_id:
            self._record(m, entry, hello)

    def _record(self, m: DeviceMachine, entry: UserEntry, hello: HelloState) -> None:
        assert hello.ngc_key_id is not None
        trust = entry.context.trust
        if hello.cert_enrollment in ("enrollment authority", "mobile device management"):
            trust = "cert"
        # Kept with the user's next change (the funnel persists it); the store records the container now.
        entry.context = replace(
            entry.context, key_id=hello.ngc_key_id, trust=trust, protected_groups=tuple(hello.protected_groups)
        )
        m.funnel.identify(entry.record.name, trust, hello.ngc_key_id)


class Delete(Handler):
    """THE point of no return: the guarded delete, in the user's own context, checking the container again."""

    purpose = Purpose.DELETE
    result_type = DeleteOutcome

    def command(self, entry: UserEntry, prompt: PromptUser | None = None) -> RunStep:
        """``prompt``: the request to sign out and in, shown in the same run once the container is deleted."""
        key_id = str(entry.context.key_id)
        trust = expected_trust(entry.context)
        step = DeleteHelloContainer(_sid(entry), key_id, trust, prompt=prompt)  # type: ignore[arg-type]
        return RunStep(step, self.purpose, entry.record.name, point_of_no_return=True)

    def step(self, params: Mapping[str, Any]) -> Step[Any]:
        prompt = None
        if params.get("PromptSession") is not None:
            prompt = PromptUser(int(params["PromptSession"]), str(params["PromptText"]), int(params["PromptSeconds"]))
        return DeleteHelloContainer(
            params["User"], params["ExpectedKeyId"], params.get("ExpectedTrust", ""), prompt=prompt
        )

    def answer(self, m: DeviceMachine, event: StepSucceeded) -> None:
        entry = m.user_entry(event.command)
        delete_outcome(m, entry, event.result, event.at, _with_applied(entry, event.journal_id))

    def resolution_read(self, m: DeviceMachine, command: RunStep) -> RunStep | None:
        params = command.step.parameters()
        person = m.facts.user(params["User"]) if m.facts is not None else None
        if person is not None and person.has_hello and person.signed_in:
            return RunStep(ReadHelloState(params["User"]), Purpose.READ_BACK, command.user)
        return None

    def resolve(self, m: DeviceMachine, command: RunStep, read: Any, at: datetime, journal_id: int) -> Resolution:
        params = command.step.parameters()
        user = params["User"]
        person = m.facts.user(user) if m.facts is not None else None
        gone = DeleteOutcome(status="completed", user=user, deleted=True, message="resolved: container gone")
        if person is not None and not person.has_hello:
            return _done(command, gone, at, journal_id, container="gone")
        if isinstance(read, HelloState) and read.status == "completed":
            if read.ngc_set is not True:
                return _done(command, gone, at, journal_id, container="gone")
            if not guard_mod.same_key_id(read.ngc_key_id, params["ExpectedKeyId"]):
                guard = DeleteGuard(ngc_set=True, key_id=read.ngc_key_id, refusals=("container key id changed",))
                outcome = DeleteOutcome(status="completed", user=user, refused=True, guard=guard)
                return _done(command, outcome, at, journal_id, container="replaced", key_id=read.ngc_key_id)
        return Resolution(False, {"applied": False, "container": "still the recorded one (or unreadable)"})


def _task_read(command: RunStep) -> RunStep:
    return RunStep(ReadLogonTaskResult(command.step.parameters()["UserSid"]), Purpose.READ_TASK, command.user)


class Arm(Handler):
    """The user is not signed in: an at-logon task runs the guarded delete at their next sign-in."""

    purpose = Purpose.ARM
    result_type = LogonTaskArmed

    def command(self, entry: UserEntry) -> RunStep:
        step = ArmLogonTask(_sid(entry), str(entry.context.key_id), expected_trust(entry.context))  # type: ignore[arg-type]
        return RunStep(step, self.purpose, entry.record.name)

    def step(self, params: Mapping[str, Any]) -> Step[Any]:
        return ArmLogonTask(params["UserSid"], params["ExpectedKeyId"], params.get("ExpectedTrust", ""))

    def answer(self, m: DeviceMachine, event: StepSucceeded) -> None:
        entry = m.user_entry(event.command)
        armed: LogonTaskArmed = event.result
        context = phase(replace(_with_applied(entry, event.journal_id), task_armed=True), "sign_in", event.at, m)
        m.fire(
            "logon_task_armed",
            user=entry.record.name,
            now=event.at,
            context=context,
            after={"task": armed.task, "armed": armed.armed},
        )

    def resolution_read(self, m: DeviceMachine, command: RunStep) -> RunStep:
        return _task_read(command)

    def resolve(self, m: DeviceMachine, command: RunStep, read: Any, at: datetime, journal_id: int) -> Resolution:
        task: LogonTaskResult = read
        if task.task_exists or task.outcome is not None:
            armed = LogonTaskArmed(task=task.task, armed=True, replaced=False, pending_result=task.outcome is not None)
            return _done(command, armed, at, journal_id, task_exists=True)
        return Resolution(False, {"applied": False, "task_exists": False})


class ReadTask(Handler):
    purpose = Purpose.READ_TASK
    result_type = LogonTaskResult

    def command(self, entry: UserEntry) -> RunStep:
        return RunStep(ReadLogonTaskResult(_sid(entry)), self.purpose, entry.record.name)

    def answer(self, m: DeviceMachine, event: StepSucceeded) -> None:
        entry = m.user_entry(event.command)
        task: LogonTaskResult = event.result
        if task.outcome is not None:
            delete_outcome(m, entry, task.outcome, event.at, entry.context, from_task=True)
            return
        if m.guard("deadline_passed", entry.record.name):
            entry.context = replace(entry.context, deadline_due=True)  # disarm next, then stall
            return
        wait_user(m, entry, event.at, "at-logon task armed: waiting for the user's next sign-in")


class Disarm(Handler):
    purpose = Purpose.DISARM
    result_type = LogonTaskDisarmed

    def command(self, entry: UserEntry) -> RunStep:
        return RunStep(DisarmLogonTask(_sid(entry)), self.purpose, entry.record.name)

    def step(self, params: Mapping[str, Any]) -> Step[Any]:
        return DisarmLogonTask(params["UserSid"])

    def answer(self, m: DeviceMachine, event: StepSucceeded) -> None:
        entry = m.user_entry(event.command)
        disarmed: LogonTaskDisarmed = event.result
        name, now = entry.record.name, event.at
        context = replace(_with_applied(entry, event.journal_id), task_armed=False, deadline_due=False)
        if entry.model.state == "armed":
            if disarmed.outcome is not None:
                # The task ran before it was removed: what it did is the user's outcome.
                delete_outcome(m, entry, disarmed.outcome, now, context, from_task=True)
                return
            if m.state == "rolling_back":
                m.fire(
                    "step_failed",
                    user=name,
                    now=now,
                    context=context,
                    last_error="rolled back before the at-logon task ran: the container was not deleted",
                )
                return
            m.fire(
                "deadline",
                user=name,
                now=now,
                context=context,
                last_error="the user did not sign in before the deadline (at-logon task removed)",
            )
            return
        m.fire("logon_task_removed", user=name, now=now, context=context, after={"task_removed": disarmed.task_removed})

    def resolution_read(self, m: DeviceMachine, command: RunStep) -> RunStep:
        return _task_read(command)

    def resolve(self, m: DeviceMachine, command: RunStep, read: Any, at: datetime, journal_id: int) -> Resolution:
        task: LogonTaskResult = read
        if not task.task_exists:
            disarmed = LogonTaskDisarmed(
                task=task.task, task_removed=True, task_left=False, files_left=False, outcome=task.outcome
            )
            return _done(command, disarmed, at, journal_id, task_exists=False)
        return Resolution(False, {"applied": False, "task_exists": True})


class Prompt(Handler):
    purpose = Purpose.PROMPT
    result_type = PromptResult

    def command(self, entry: UserEntry, session: int, playbook: Playbook) -> RunStep:
        step = PromptUser(session, playbook.prompt.text, playbook.prompt.seconds)
        return RunStep(step, self.purpose, entry.record.name)

    def step(self, params: Mapping[str, Any]) -> Step[Any]:
        return PromptUser(int(params["SessionId"]), str(params["Text"]), int(params["Seconds"]))

    def answer(self, m: DeviceMachine, event: StepSucceeded) -> None:
        prompt: PromptResult = event.result
        prompt_sent(m, m.user_entry(event.command), event.at, skipped=not prompt.delivered, journal_id=event.journal_id)

    def resolve(self, m: DeviceMachine, command: RunStep, read: Any, at: datetime, journal_id: int) -> Resolution:
        # A message on screen cannot be read back. Counting it as shown would leave a user who never saw it
        # waiting until the deadline (stalled); showing it twice only repeats a request to sign out and in.
        return Resolution(False, {"applied": False, "why": "a prompt cannot be read back: it is shown again"})


class Verify(_SessionRead):
    """The new container is cloud trust and the session holds the partial TGT (dsregcmd OnPremTgt / klist)."""

    purpose = Purpose.VERIFY

    def answer(self, m: DeviceMachine, event: StepSucceeded) -> None:
        entry = m.user_entry(event.command)
        name, now = entry.record.name, event.at
        hello: HelloState = event.result
        entry.hello = hello
        context = _with_applied(entry, event.journal_id)
        if hello.status != "completed":
            task_not_done(m, entry, hello.status, hello.message, now, context)
            return
        evidence = {
            "ngc_key_id": hello.ngc_key_id,
            "on_prem_tgt": hello.on_prem_tgt,
            "cloud_primary_tgt": hello.cloud_primary_tgt,
        }
        entry.context = replace(entry.context, protected_groups=tuple(hello.protected_groups))
        context = replace(context, protected_groups=tuple(hello.protected_groups))
        if m.try_fire(
            "cloud_verified",
            user=name,
            now=now,
            context=context,
            before={"key_id": entry.context.key_id},
            after=evidence,
        ):
            return
        if refused_account(m, entry, now, context):
            return
        session = m.session_id(entry)
        new_session = session is not None and session != entry.context.prompted_session
        if hello.ngc_set and not hello.cloud_trust_active and new_session:
            # Remembered for the deadline's reason and the reminder: the user signed in again since the prompt
            # (another session: session ids only repeat after a reboot, which errs towards "not yet"), and the
            # partial TGT did not come.
            context = replace(context, no_cloud_tgt=NoCloudTgt(at=now, prt=hello.azure_ad_prt))
        m.fire("not_yet_cloud", user=name, now=now, context=context, after=evidence)


FACTS = register(Facts())
SNAPSHOT = register(Snapshot())
DISCOVER = register(Discover())
READ_BACK = register(ReadBack())
SET_POLICY = register(SetPolicyValue())
REFRESH = register(Refresh())
RESTORE = register(Restore())
IDENTIFY = register(Identify())
DELETE = register(Delete())
ARM = register(Arm())
READ_TASK = register(ReadTask())
DISARM = register(Disarm())
PROMPT = register(Prompt())
VERIFY = register(Verify())
assert set(HANDLERS) == set(Purpose), "every purpose has its handler"
