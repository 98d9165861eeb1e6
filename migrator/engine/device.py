"""The device driver: one visit of one device, durable — lease, rebuild, resolve, then step until it waits.

Theory of operation
-------------------
:func:`visit` is a plain synchronous function (the wave engine runs many in a thread pool). It

1. takes the device's **lease** (``store.acquire``, through a :class:`~migrator.engine.leases.LeaseKeeper`
   that renews it every third of its TTL while the visit runs); every write below passes ``owner=``, so a
   worker whose lease expired cannot act any more (the store refuses: fencing);
2. **rebuilds** the machine from the store: device state and context, users, latest facts, journal (one read,
   ``store.visit_record``);
3. **replays** the latest settled journal entry of each subject (the device, each user) whose transition was
   lost (a crash after the outcome's commit), then **resolves** every in-doubt intent (a crash or a lost answer
   after the intent's commit) by re-reading the device — fresh facts plus, where needed, a read of the one
   thing the step changed (the policy value, the user's container, the at-logon task) — never by repeating it;
4. **loops**: the machine's command → for a side-effecting step ``store.intent`` (committed before anything is
   sent) → the transport, retrying per ``call_with_retry(idempotent=step.idempotent)`` → ``store.outcome`` →
   the answer back into the machine; until the machine waits (``next_due``) or is done. Before each step the
   lease is checked and renewed and the wave's state read (is it paused?) — by the fenced writes the visit made
   since the last step's answer (a transition, an intent: each renews the lease it checks, in its transaction),
   or else by one ``store.renew_and_read`` — never by a transaction of its own per step.

Every state change goes through the funnel (:class:`StoreFunnel`: ``store.transition`` / ``user_transition``
with the audit entry — who: the connecting account's name, never its password; the change ticket comes from
the wave — in the same transaction). Facts are saved on every read; the policy snapshot is saved first-wins.

Crash points (tests only)
-------------------------
``MIGRATOR_CRASH_AT=<n>`` makes the process kill itself with SIGKILL right after the n-th journal commit of
the process (intent, outcome or resolution, counted together): :func:`journal_point`. Never active unless the
variable is set; the crash tests (``tests/crash``) use it to stop the driver at every journal point in turn.
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from migrator.engine.leases import DEFAULT_LEASE_SECONDS, LeaseKeeper
from migrator.errors import ConfigurationError, CredentialsError, RemoteError, TransientError
from migrator.facts import DeviceFacts, PathSettings
from migrator.facts import PolicyValue as FactPolicyValue
from migrator.inventory import Connection, DeviceEntry
from migrator.logs import get_logger, redact_text, register_secret
from migrator.machine.commands import Done, RunStep, StepFailed, StepSucceeded, Wait
from migrator.machine.context import load_user
from migrator.machine.core import Change, DeviceMachine, UserRecord
from migrator.machine.decide import TrackedUser
from migrator.machine.plan import GPO_OVERWRITES
from migrator.machine.purposes import FACTS, HANDLERS
from migrator.machine.table import DEVICE_ACTIVE, DEVICE_RESUMED, DEVICE_WAITING, USER_SETTLED
from migrator.playbook import Playbook
from migrator.remote import open_transport
from migrator.remote.credentials import Credentials
from migrator.remote.retry import RetryPolicy
from migrator.remote.transport import Transport
from migrator.steps import run_step, run_steps
from migrator.store import (
    AuditEntry,
    DeviceRow,
    JournalEntry,
    LeaseOwner,
    PolicyValue,
    Store,
    StoreError,
    UserRow,
    VisitRecord,
    utc_now,
)
from migrator.store.errors import LeaseNotHeld

TransportFactory = Callable[[DeviceEntry, Connection, Credentials], Transport]
# Asked before each step of a visit: a reason to stop before it (the device waits), or None to go on.
Hold = Callable[[str, RunStep], str | None]
# Asked before each step of a visit with the state of the device's wave, read after the last step's answer in a
# transaction that also checked the device's lease: True stops the visit before the step (paused, halted).
ShouldStop = Callable[[str | None], bool]
WindowCallback = Callable[[str, datetime], bool]
# Handed a device's fresh facts before the machine reads them: what Entra ID says of device objects (deviceId →
# present, disabled, missing, unknown), read then for a device its wave had not read yet (EntraPreflight.device).
EntraLookup = Callable[[str, DeviceFacts], Mapping[str, str]]
Clock = Callable[[], datetime]

CRASH_ENV = "MIGRATOR_CRASH_AT"
_journal_points = itertools.count(1)
_journal_lock = threading.Lock()


def journal_point(kind: str) -> None:
    """Crash-test hook: SIGKILL this process right after the n-th journal commit when ``MIGRATOR_CRASH_AT=n``.

    ``kind`` (intent, outcome, resolve) is only for readers; every kind counts. Does nothing without the
    variable, which the product never sets."""
    target = os.environ.get(CRASH_ENV)
    if not target:
        return
    with _journal_lock:
        number = next(_journal_points)
    if number == int(target):
        os.kill(os.getpid(), signal.SIGKILL)


def _always(_device: str, _now: datetime) -> bool:
    return True


@dataclass(frozen=True)
class VisitResult:
    """What one visit left: what the wave engine reads to schedule the next one."""

    device: str
    state: str
    users: dict[str, str] = field(default_factory=dict)
    next_due: datetime | None = None  # None: final or parked, no visit needed
    waiting_for: str | None = None  # why it waits (for status and reports)
    last_error: str | None = None
    steps_run: int = 0
    requests: int = 0  # WS-Man requests sent in this visit
    busy: bool = False  # another worker holds the device's lease: nothing was done

    @property
    def done(self) -> bool:
        return self.next_due is None and not self.busy


def journal_json(result: Any) -> Any:
    """An answer as journal JSON that reads back into its model (computed fields left out)."""
    if isinstance(result, BaseModel):
        return result.model_dump(mode="json", exclude_computed_fields=True)
    if isinstance(result, list | tuple):
        return [journal_json(item) for item in result]
    return result


class StoreFunnel:
    """The machine's funnel: every state change is one store transaction with its audit entry.

    With ``lease_seconds``, each of those fenced transactions also renews the device's lease, and the funnel keeps
    what they read: the device's row and its users' states as the visit last wrote or read them (``row``,
    ``users``), and whether a fenced write has checked the lease (``lease_checked``) and read the wave's state
    (``wave_state``) since the visit last sent a step (:meth:`sent` clears both). A visit checks its lease and asks
    the wave's state before every step; one such write since the last step stands for that check."""

    def __init__(
        self,
        store: Store,
        device: str,
        *,
        owner: str,
        actor: str,
        row: DeviceRow,
        users: Sequence[UserRow] = (),
        lease_seconds: float | None = None,
    ) -> None:
        self.store = store
        self.device = device
        self.owner = owner
        self.actor = actor
        self.wave = row.wave
        self.lease_seconds = lease_seconds
        self.row = row
        self.users = {u.name: u.state for u in users}
        self.lease_checked = False
        self.wave_state: str | None = None
        self.log = get_logger("engine.device", device=device, wave=row.wave)

    def checked(self, row: DeviceRow | None = None) -> None:
        """A fenced transaction renewed the lease (and read ``row``, with the wave's state, when given)."""
        self.lease_checked = True
        if row is not None:
            self.row = row
            self.wave_state = row.wave_state

    def sent(self) -> None:
        """A step leaves for the device: what was checked before it is not fresh for the next one."""
        self.lease_checked = False
        self.wave_state = None

    def change(self, change: Change) -> None:
        before: dict[str, Any] = {"state": change.source, **(change.before or {})}
        after: dict[str, Any] = {"state": change.dest, **(change.after or {})}
        if change.warning:
            after["warning"] = change.warning
        subject = f"user {change.user}: " if change.user else ""
        audit = AuditEntry(self.actor, f"{subject}{change.trigger}", before=before, after=after)
        error = redact_text(change.last_error) if change.last_error else None
        if change.user is None:
            row = self.store.transition(
                self.device,
                change.source,
                change.dest,
                change.trigger,
                last_error=error,
                path=change.path,
                owner=self.owner,
                audit=audit,
                context=change.context,
                lease_seconds=self.lease_seconds,
            )
            self.checked(row)
        else:
            user = self.store.user_transition(
                self.device,
                change.user,
                change.source,
                change.dest,
                change.trigger,
                last_error=error,
                owner=self.owner,
                audit=audit,
                context=change.context,
                lease_seconds=self.lease_seconds,
            )
            self.users[user.name] = user.state
            self.checked()
        self.log.info(
            "transition",
            user=change.user,
            trigger=change.trigger,
            source=change.source,
            dest=change.dest,
            error=error,
        )
        if change.warning:
            self.log.warning("warning", user=change.user, trigger=change.trigger, warning=change.warning)
        if change.after and change.after.get("gpo_managed") and self.wave is not None:
            # Listed with the wave (reports and the recap show it): its local writes will not last on this device.
            self.store.add_to_wave_list(self.wave, GPO_OVERWRITES, [self.device])

    def add_users(self, users: Sequence[TrackedUser]) -> None:
        for user in users:
            row = self.store.add_user(self.device, user.name, sid=user.sid, container_trust=user.container_trust)
            self.users[row.name] = row.state

    def policy_snapshot(self, values: Sequence[FactPolicyValue]) -> None:
        self.store.snapshot_policy(
            self.device,
            [
                PolicyValue(v.path, v.name, v.existed, v.type if v.existed else None, v.data if v.existed else None)
                for v in values
            ],
        )

    def identify(self, user: str, container_trust: str | None, key_id: str) -> None:
        self.store.identify_user(self.device, user, container_trust=container_trust, key_id=key_id)


@dataclass
class _Visit:
    device: str
    store: Store
    playbook: Playbook
    transport_factory: TransportFactory
    entry: DeviceEntry
    connection: Connection
    credentials: Credentials
    clock: Clock
    owner: str
    retry: RetryPolicy
    sleep: Callable[[float], None] | None
    lease_seconds: float
    machine: DeviceMachine
    funnel: StoreFunnel
    journal: list[JournalEntry]
    transport: Transport | None = None
    steps_run: int = 0
    ridden: list[tuple[RunStep, Any]] = field(default_factory=list)  # the riders' answers (see run)
    accompanied: list[tuple[RunStep, Any]] = field(default_factory=list)  # the companions' answers (see run)
    entra: EntraLookup | None = None

    @property
    def log(self) -> Any:
        return get_logger("engine.device", device=self.device)

    def _transport(self) -> Transport:
        if self.transport is None:
            self.transport = self.transport_factory(self.entry, self.connection, self.credentials)
        return self.transport

    def run(self, command: RunStep) -> Any:
        """Send one step (no journal): what a read, or the body of a journalled step, does.

        A step's riders (reads) go in the same pipeline, right after it: their answers are kept in ``ridden``
        (facts saved here) for the caller to hand to the machine once the step's own answer is in
        (:meth:`take_ridden`). A rider that answered badly is left out: what it reads is read again when needed."""
        self.steps_run += 1
        self.ridden = []
        self.accompanied = []
        self.check_lease()
        self.funnel.sent()
        if command.riders or command.companions:
            steps = [command.step, *(c.step for c in command.companions), *(r.step for r in command.riders)]
            answers = run_steps(self._transport(), steps, policy=self.retry, sleep=self.sleep)
            result = answers[0]
            if command.purpose == "facts":
                self.take_facts(result)
            self.accompanied = list(zip(command.companions, answers[1:], strict=False))
            if len(self.accompanied) < len(command.companions):
                return result  # a companion answered badly: the riders after it are not read either
            for rider, answer in zip(command.riders, answers[1 + len(command.companions) :], strict=False):
                if rider.purpose == "facts":
                    self.take_facts(answer)
                self.ridden.append((rider, answer))
            return result
        result = run_step(self._transport(), command.step, policy=self.retry, sleep=self.sleep)
        if command.purpose == "facts":
            self.take_facts(result)
        return result

    def check_lease(self, *, wave_state: bool = False) -> DeviceRow:
        """The device's row with the lease checked and renewed (and, if asked, the wave's state read) since the last
        step was sent: by a fenced write of the visit, or else now, in one transaction (fencing: a worker whose
        lease was taken over stops here, before the step leaves)."""
        funnel = self.funnel
        if not funnel.lease_checked or (wave_state and funnel.wave_state is None):
            funnel.checked(self.store.renew_and_read(self.device, self.owner, self.lease_seconds))
        return funnel.row

    def take_ridden(self) -> None:
        """The riders' answers, into the machine after the step's own answer (as if read next, in order)."""
        ridden, self.ridden = self.ridden, []
        for rider, answer in ridden:
            self.machine.handle(StepSucceeded(rider, answer, self.clock()))

    def save_facts(self, facts: DeviceFacts) -> None:
        self.store.save_facts(self.device, facts.model_dump(mode="json"))

    def take_facts(self, facts: DeviceFacts) -> None:
        """A facts read (alone or riding in another step's pipeline): recorded, then what Entra ID says of the
        device and its users learnt, before the machine decides the device's path from these facts."""
        self.save_facts(facts)
        if self.entra is not None:
            self.machine.learn_entra_devices(self.entra(self.device, facts))

    def read_facts(self) -> None:
        """Fresh facts, through the machine (a device waiting for the device carries on when it answers)."""
        command = FACTS.command()
        self.machine.handle(StepSucceeded(command, self.run(command), self.clock()))

    # ---- the journal ---------------------------------------------------------------------------------

    def intent(self, command: RunStep) -> JournalEntry:
        attempt = 1 + sum(1 for e in self.journal if e.step == command.name and e.user == command.user)
        key = f"{self.device}/{command.user or '-'}/{command.name}/{len(self.journal) + 1}"
        entry = self.store.intent(
            self.device,
            command.name,
            attempt,
            command.payload(),
            key=key,
            user=command.user,
            owner=self.owner,
            lease_seconds=self.lease_seconds,
        )
        self.funnel.checked()
        self.journal.append(entry)
        journal_point("intent")
        return entry

    def outcome(self, entry: JournalEntry, payload: dict[str, Any], ok: bool) -> None:
        self.store.outcome(entry.id, payload, ok)
        journal_point("outcome")

    def resolve_in_doubt(self, entry: JournalEntry) -> bool:
        """Settle one in-doubt intent by re-reading the device; False when the device cannot be read now."""
        command = DeviceMachine.command_for(entry.intent)
        log = self.log.bind(user=entry.user, step=entry.step, attempt=entry.attempt)
        if command is None:
            self._settled(self.store.resolve(entry.id, {"applied": None, "why": "not a step the machine resolves"}))
            journal_point("resolve")
            return True
        try:
            self.read_facts()
            extra = self.machine.resolution_read(command)
            read = self.run(extra) if extra is not None else None
        except (RemoteError, StoreError) as err:
            if isinstance(err, StoreError):
                raise
            message = redact_text(err.detail)
            log.warning("in-doubt step not resolved: the device cannot be read", error=message)
            if isinstance(err, TransientError):
                self.machine.unreachable(self.clock(), f"{entry.step}: in doubt, the device does not answer: {message}")
            else:
                self.machine.handle(self._failure(command, err, entry.id))
            return False
        now = self.clock()
        resolution = self.machine.resolve(command, read, now, entry.id)
        summary = dict(resolution.summary)
        if resolution.event is not None:
            summary["result"] = journal_json(resolution.event.result)
        self._settled(self.store.resolve(entry.id, summary))
        journal_point("resolve")
        log.info("in-doubt step resolved by re-reading the device", applied=resolution.applied)
        if resolution.event is not None:
            self.machine.handle(resolution.event)
        return True

    def _settled(self, entry: JournalEntry) -> None:
        """The visit's copy of the journal, with ``entry`` as the store now has it (resolved)."""
        self.journal = [entry if e.id == entry.id else e for e in self.journal]

    def execute(self, command: RunStep) -> bool:
        """Run one command; False when the visit must stop and wait (an intent could not be resolved)."""
        log = self.log.bind(user=command.user, step=command.name)
        if not command.side_effect:
            try:
                result = self.run(command)
            except RemoteError as err:  # the device's errors are the machine's events; anything else is not
                self.machine.handle(self._failure(command, err, None))
                return True
            self.machine.handle(StepSucceeded(command, result, self.clock()))
            self.take_ridden()
            return True
        entry = self.intent(command)
        # Each companion (another subject's journalled step in the same pipeline) has its own intent, committed
        # before anything is sent, and its own outcome after.
        companions = [(companion, self.intent(companion)) for companion in command.companions]
        log = log.bind(attempt=entry.attempt)
        if command.point_of_no_return:
            log.warning("point of no return: deleting the Hello container in the user's own context")
        try:
            result = self.run(command)
        except RemoteError as err:
            for _companion, companion_entry in companions:
                # A companion runs after the step in the pipeline: whatever it did, it is read again when its
                # subject's state asks for it (transient: nothing to replay, never resolved by read-back).
                self.outcome(
                    companion_entry, _not_answered(f"{type(err).__name__}: {redact_text(err.detail)}"), ok=False
                )
            if err.may_have_run and isinstance(err, TransientError) and not command.step.info.idempotent:
                log.warning("answer lost after the request left: resolving by re-reading", error=redact_text(str(err)))
                return self.resolve_in_doubt(entry)
            failure = self._failure(command, err, entry.id)
            payload = self._failed_payload(failure)
            self.outcome(entry, payload, ok=False)
            log.warning("step failed", error_class=failure.error_class, error=failure.message)
            self.machine.handle(failure)
            return True
        self.outcome(entry, {"ok": True, "result": journal_json(result)}, ok=True)
        answered = dict((id(c), a) for c, a in self.accompanied)
        for companion, companion_entry in companions:
            if id(companion) in answered:
                payload = {"ok": True, "result": journal_json(answered[id(companion)])}
                self.outcome(companion_entry, payload, ok=True)
            else:
                self.outcome(companion_entry, _not_answered("no answer in the pipeline"), ok=False)
        log.info("step done")
        self.machine.handle(StepSucceeded(command, result, self.clock(), entry.id))
        for (companion, companion_entry), (_, answer) in zip(companions, self.accompanied, strict=False):
            HANDLERS[companion.purpose].companion(
                self.machine, StepSucceeded(companion, answer, self.clock(), companion_entry.id)
            )
        self.accompanied = []
        self.take_ridden()
        return True

    @staticmethod
    def _failed_payload(failure: StepFailed) -> dict[str, Any]:
        return {
            "ok": False,
            "error": {
                "class": failure.error_class,
                "message": failure.message,
                "transient": failure.transient,
                "may_have_run": failure.may_have_run,
            },
        }

    def _failure(self, command: RunStep, err: RemoteError, journal_id: int | None) -> StepFailed:
        return StepFailed(
            command,
            type(err).__name__,
            redact_text(err.detail),
            transient=isinstance(err, TransientError),
            may_have_run=err.may_have_run,
            at=self.clock(),
            journal_id=journal_id,
            device_wide=isinstance(err, CredentialsError | ConfigurationError),
        )


def _not_answered(why: str) -> dict[str, Any]:
    """The outcome of a companion without an answer: transient (its subject's state reads it again; a replay
    moves nothing), and it may have run."""
    return {"ok": False, "error": {"class": "NotAnswered", "message": why, "transient": True, "may_have_run": True}}


def _latest_settled(journal: Sequence[JournalEntry]) -> list[JournalEntry]:
    """Per subject (device or user): its latest entry, if settled (done/failed/resolved)."""
    latest: dict[str | None, JournalEntry] = {}
    for entry in journal:
        latest[entry.user] = entry
    return [e for e in latest.values() if e.status != "intent"]


def _strip_computed(model: type[BaseModel], data: Any) -> Any:
    """Saved facts carry computed fields (reports read them); the model refuses them as input."""
    if not isinstance(data, Mapping):
        return data
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in model.model_computed_fields:
            continue
        field_info = model.model_fields.get(key)
        inner = field_info.annotation if field_info is not None else None
        nested = isinstance(inner, type) and issubclass(inner, BaseModel)
        out[key] = _strip_computed(inner, value) if nested else value  # type: ignore[arg-type]
    return out


def _policy_values(snapshot: Sequence[PolicyValue]) -> tuple[FactPolicyValue, ...]:
    """The device's snapshot as the machine's rollback writes it back."""
    return tuple(
        FactPolicyValue(
            path=v.key,
            name=v.name,
            existed=v.existed,
            type=v.type if v.existed else None,  # type: ignore[arg-type]
            data=v.data,
        )
        for v in snapshot
    )


def rebuild(
    record: VisitRecord,
    playbook: Playbook,
    funnel: StoreFunnel,
    *,
    path_settings: PathSettings | None = None,
    window: Callable[[datetime], bool] | None = None,
    rollback: bool = False,
) -> DeviceMachine:
    """The device's machine as the store has it (with the policy snapshot when it rolls back)."""
    row = record.device
    users = [
        UserRecord(
            u.name,
            u.sid or u.name,
            u.state,
            dict(u.context) if u.context else None,
            u.container_trust,
            u.key_id,
            u.last_error,
        )
        for u in record.users
    ]
    latest = record.facts
    facts = DeviceFacts.model_validate(_strip_computed(DeviceFacts, latest.facts)) if latest is not None else None
    return DeviceMachine(
        row.name,
        playbook,
        funnel,
        state=row.state,
        context=dict(row.context) if row.context else None,
        users=users,
        facts=facts,
        path_settings=path_settings,
        window=window or (lambda _now: True),
        snapshot=_policy_values(record.policy) if rollback or row.state == "rolling_back" else (),
    )


def _begin(
    device: str,
    *,
    store: Store,
    playbook: Playbook,
    transport_factory: TransportFactory,
    entry: DeviceEntry,
    connection: Connection,
    credentials: Credentials,
    clock: Clock,
    owner: str,
    retry: RetryPolicy,
    sleep: Callable[[float], None] | None,
    lease_seconds: float,
    path_settings: PathSettings | None = None,
    window: Callable[[datetime], bool] | None = None,
    rollback: bool = False,
    entra: EntraLookup | None = None,
) -> _Visit:
    """What a visit and a rollback both work with, right after the device's lease was taken: its machine rebuilt
    from the store (transitions through a funnel in this owner's name, each renewing the lease) and its journal,
    all read in one transaction."""
    record = store.visit_record(device)
    funnel = StoreFunnel(
        store,
        device,
        owner=owner,
        actor=credentials.username,
        row=record.device,
        users=record.users,
        lease_seconds=lease_seconds,
    )
    # Taking the lease (the caller's acquire, just before) checked and renewed it, and the record was read after
    # it: the first step needs no check of its own.
    funnel.checked(record.device)
    machine = rebuild(record, playbook, funnel, path_settings=path_settings, window=window, rollback=rollback)
    return _Visit(
        device,
        store,
        playbook,
        transport_factory,
        entry,
        connection,
        credentials,
        clock,
        owner,
        retry,
        sleep,
        lease_seconds,
        machine,
        funnel,
        record.journal,
        entra=entra,
    )


def _crashed(
    store: Store, device: str, owner: str, actor: str, err: BaseException, machine: DeviceMachine | None, now: datetime
) -> None:
    """An unexpected exception (a bug, a corrupt record): the device goes to ``error`` with the exception in
    ``last_error`` and its traceback in the context and the log (secrets redacted), through the funnel: never
    swallowed, never shown as an illegal transition or a plausible other state. ``resume`` retries it."""
    summary = redact_text(f"internal error: {type(err).__name__}: {err}")
    text = redact_text("".join(traceback.format_exception(err)))
    log = get_logger("engine.device", device=device)
    log.error("internal error: the device is parked in 'error'", error=summary, traceback=text)
    if machine is not None:
        machine.crash(summary, text, now)
        return
    # The machine itself could not be built from the store (an unreadable record): record the error with the
    # state the store has. The unreadable context is kept as it was, under a key the machine does not read, so
    # nothing recorded is lost and the device's record reads again.
    row = store.get_device(device)
    funnel = StoreFunnel(store, device, owner=owner, actor=actor, row=row)
    context = {"return_to": row.state, "traceback": text, "unreadable": dict(row.context or {})}
    funnel.change(Change("internal_error", row.state, "error", context, last_error=summary))


def visit(
    device: str,
    *,
    store: Store,
    playbook: Playbook,
    entry: DeviceEntry,
    connection: Connection,
    credentials: Credentials,
    transport_factory: TransportFactory = open_transport,
    clock: Clock = utc_now,
    owner: str | None = None,
    may_pass_point_of_no_return: WindowCallback = _always,
    path_settings: PathSettings | None = None,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] | None = None,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    max_steps: int = 200,
    should_stop: ShouldStop | None = None,
    leases: LeaseKeeper | None = None,
    hold: Hold | None = None,
    entra: EntraLookup | None = None,
) -> VisitResult:
    """Visit one device: resolve what a crash left, then run its machine until it waits or ends.

    ``should_stop`` (the wave was paused or halted) is asked before every step, with the wave's state as the
    transaction that last checked the device's lease read it (see :class:`ShouldStop`): the step under way finishes,
    the next one is not sent, and the device keeps its state for ``migrator resume``. ``leases`` renews the
    device's lease while the visit runs (a wave's visits share one; without it the visit keeps its own). An
    unexpected exception parks the device in ``error`` (:func:`_crashed`); store errors and a lost lease end the
    visit unchanged. ``hold`` is asked before every step: a reason stops the visit before that step (the device
    keeps its state and is looked at again after ``waits.recheck_every``, or sooner by the wave) — how the
    ``ad-group`` channel keeps a device from refreshing its policy before its computer account has moved. ``entra``
    is handed each fresh read of the device's facts before the machine sees them (Entra ID read for a device the
    wave had not read yet)."""
    owner = owner or str(LeaseOwner.current())
    keeper = leases or LeaseKeeper(store, ttl_seconds=lease_seconds)
    register_secret(credentials.password.get_secret_value())
    log = get_logger("engine.device", device=device)
    if not keeper.acquire(device, owner):
        row = store.get_device(device)
        return VisitResult(device, row.state, next_due=clock() + timedelta(seconds=60), busy=True)
    work: _Visit | None = None
    try:
        work = _begin(
            device,
            store=store,
            playbook=playbook,
            transport_factory=transport_factory,
            entry=entry,
            connection=connection,
            credentials=credentials,
            clock=clock,
            owner=owner,
            retry=retry
            or RetryPolicy(
                attempts=playbook.retries.attempts,
                initial_wait=playbook.retries.initial_wait,
                max_wait=playbook.retries.max_wait,
                total_seconds=playbook.retries.total,
            ),
            sleep=sleep,
            lease_seconds=keeper.ttl_seconds,
            path_settings=path_settings,
            window=lambda now: may_pass_point_of_no_return(device, now),
            entra=entra,
        )
        return _visit(work, max_steps, should_stop, hold)
    except LeaseNotHeld as err:
        # The lease_lost event: ignored by the machine in every state (the table says why); the visit stops.
        log.warning("lease lost: stopping this visit", error=str(err))
        row = store.get_device(device)
        return VisitResult(device, row.state, next_due=clock() + timedelta(seconds=60), busy=True)
    except StoreError:
        raise  # the store cannot record anything now: the wave decides (it halts), the device keeps its state
    except Exception as err:  # a bug: recorded on the device, never swallowed
        _crashed(store, device, owner, credentials.username, err, work.machine if work else None, clock())
        row = store.get_device(device)
        return VisitResult(device, row.state, next_due=None, last_error=row.last_error)
    finally:
        if work is not None and work.transport is not None:
            work.transport.close()
        keeper.release(device)


def _resolve_journal(work: _Visit, now: datetime) -> Wait | None:
    """Replay answers whose transition was lost, then resolve every in-doubt intent by re-reading the device; a
    Wait when one cannot be resolved now (the device does not answer: it waits for the device)."""
    machine = work.machine
    for settled in _latest_settled(work.journal):
        machine.replay(settled.intent, settled.outcome if isinstance(settled.outcome, Mapping) else {}, now, settled.id)
    for doubt in [e for e in work.journal if e.status == "intent"]:
        if not work.resolve_in_doubt(doubt):
            return Wait(now + timedelta(seconds=work.playbook.waits.recheck_every), "an in-doubt step", "device")
    return None


def _visit(work: _Visit, max_steps: int, should_stop: ShouldStop | None, hold: Hold | None = None) -> VisitResult:
    machine = work.machine
    now = work.clock()
    machine.begin_visit(now)
    if machine.state in DEVICE_RESUMED:
        # Unreachable past its deadline, or in error: a new run or `migrator resume` tries again (the retry row),
        # once per visit; a device that fails the same way is parked again with the newest error.
        machine.retry(now)
    if machine.state in (*DEVICE_ACTIVE, *DEVICE_WAITING):
        waiting = _resolve_journal(work, now)
        if waiting is not None:
            return _result(work, waiting)
    for _ in range(max_steps):
        command = machine.advance(work.clock())
        if isinstance(command, Wait | Done):
            return _result(work, command)
        if should_stop is not None and should_stop(work.check_lease(wave_state=True).wave_state):
            # The pause and halt events: ignored by the machine in every state (the table says why).
            work.log.info("wave paused or halted: stopping before the next step", step=command.name)
            return _result(work, Wait(work.clock(), "the wave was paused or halted before this step", "retry"))
        held = hold(work.device, command) if hold is not None else None
        if held:
            work.log.info("held before this step", step=command.name, why=held)
            until = work.clock() + timedelta(seconds=work.playbook.waits.recheck_every)
            return _result(work, Wait(until, held, "policy"))
        if not work.execute(command):
            return _result(
                work,
                Wait(work.clock() + timedelta(seconds=work.playbook.waits.recheck_every), "in-doubt step", "device"),
            )
    return _result(work, Wait(work.clock(), "step budget of one visit used up: continue at once", "retry"))


def _result(work: _Visit, command: Wait | Done) -> VisitResult:
    # The rows as the visit's own transactions left them: every change of them went through its funnel.
    row = work.funnel.row
    users = dict(work.funnel.users)
    requests = work.transport.requests_sent if work.transport is not None else 0
    if isinstance(command, Done):
        return VisitResult(work.device, row.state, users, None, None, row.last_error, work.steps_run, requests)
    return VisitResult(
        work.device, row.state, users, command.until, command.reason, row.last_error, work.steps_run, requests
    )


def unfinished_users(result: VisitResult) -> list[str]:
    return [name for name, state in result.users.items() if state not in USER_SETTLED]


# ---------------------------------------------------------------------------------------------------------
# Rollback
# ---------------------------------------------------------------------------------------------------------

CANNOT_RESTORE = (
    "the Hello container of {user} was deleted{key}: it cannot be restored; the user re-provisions Windows Hello "
    "under the restored policy, and the old Hello key stays registered in Microsoft Entra ID until an admin "
    "removes it"
)


@dataclass(frozen=True)
class RollbackResult:
    """What a rollback did on one device, and what it cannot undo."""

    device: str
    state: str
    restored: list[dict[str, Any]] = field(default_factory=list)  # {path, name, action: set|removed|unchanged}
    cannot_restore: list[str] = field(default_factory=list)
    disarmed: list[str] = field(default_factory=list)  # users whose at-logon delete task was removed first
    nothing_new: bool = False  # a repeated rollback: everything was already restored
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "state": self.state,
            "restored": self.restored,
            "cannot_restore": self.cannot_restore,
            "disarmed": self.disarmed,
            "nothing_new": self.nothing_new,
            "error": self.error,
        }


def _cannot_restore(store: Store, device: str) -> list[str]:
    notes = []
    for user in store.list_users(device):
        if load_user(user.context).deleted_by_us:  # one found already gone was not ours to undo
            key = f" (key id {user.key_id})" if user.key_id else ""
            notes.append(CANNOT_RESTORE.format(user=user.name, key=key))
    return notes


def rollback_device(
    device: str,
    *,
    store: Store,
    playbook: Playbook,
    entry: DeviceEntry,
    connection: Connection,
    credentials: Credentials,
    transport_factory: TransportFactory = open_transport,
    clock: Clock = utc_now,
    owner: str | None = None,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] | None = None,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
) -> RollbackResult:
    """Restore a device's snapshot policy values: the machine's rollback rows, through the journalled path.

    ``begin_rollback`` moves the device to ``rolling_back``; there the machine first removes every armed
    at-logon delete task (it would delete a container under the restored policy), then writes the snapshot back
    (``restore_policy``), and its answer ends in ``rolled_back``. Resumable (an in-doubt restore is resolved by
    reading the values back) and idempotent: a device already ``rolled_back`` is left alone and the result says
    nothing new was restored. What cannot come back (deleted containers) is listed plainly."""
    owner = owner or str(LeaseOwner.current())
    keeper = LeaseKeeper(store, ttl_seconds=lease_seconds)
    register_secret(credentials.password.get_secret_value())
    row = store.get_device(device)
    if row.state == "rolled_back":
        return RollbackResult(device, row.state, cannot_restore=_cannot_restore(store, device), nothing_new=True)
    if not keeper.acquire(device, owner):
        return RollbackResult(device, row.state, error="another worker holds this device's lease; try again")
    log = get_logger("engine.rollback", device=device)
    work: _Visit | None = None
    try:
        work = _begin(
            device,
            store=store,
            playbook=playbook,
            transport_factory=transport_factory,
            entry=entry,
            connection=connection,
            credentials=credentials,
            clock=clock,
            owner=owner,
            retry=retry or RetryPolicy(),
            sleep=sleep,
            lease_seconds=lease_seconds,
            rollback=True,
        )
        machine = work.machine
        first = max((e.id for e in work.journal), default=0)
        machine.begin_visit(clock())
        machine.begin_rollback(clock())
        waiting = _resolve_journal(work, clock())
        if waiting is None:
            for _ in range(50):
                command = machine.advance(clock())
                if isinstance(command, Wait | Done) or not work.execute(command):
                    break
        result = _rollback_result(work, first)
        log.info("rollback", state=result.state, restored=len(result.restored), error=result.error)
        return result
    except LeaseNotHeld as err:
        return RollbackResult(device, store.get_device(device).state, error=redact_text(str(err)))
    except StoreError:
        raise
    except Exception as err:  # a bug: recorded on the device, never swallowed
        _crashed(store, device, owner, credentials.username, err, work.machine if work else None, clock())
        row = store.get_device(device)
        return RollbackResult(device, row.state, error=row.last_error)
    finally:
        if work is not None and work.transport is not None:
            work.transport.close()
        keeper.release(device)


def _rollback_result(work: _Visit, after: int) -> RollbackResult:
    """What this rollback did, read from the device's journal entries after ``after`` (restore actions, disarmed
    users)."""
    row = work.store.get_device(work.device)
    restored: list[dict[str, Any]] = []
    disarmed: list[str] = []
    for entry in work.store.journal_entries(work.device):
        if entry.id <= after:
            continue
        outcome = entry.outcome if isinstance(entry.outcome, Mapping) else {}
        actions = outcome.get("result")
        if entry.intent.get("purpose") == "restore" and isinstance(actions, list):
            restored = [dict(a) for a in actions if isinstance(a, Mapping)]
        if entry.intent.get("purpose") == "disarm" and entry.status != "intent" and entry.user:
            disarmed.append(entry.user)
    error = None if row.state == "rolled_back" else (row.last_error or "the rollback could not finish yet")
    return RollbackResult(
        work.device,
        row.state,
        restored,
        _cannot_restore(work.store, work.device),
        sorted(set(disarmed)),
        error=error,
    )
