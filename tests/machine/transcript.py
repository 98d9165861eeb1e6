"""Drive the machine without the lab, as psrpcore's tests drive a client/server pair: feed answers, read the
commands it asks for and the states it takes.

A :class:`Transcript` holds one :class:`DeviceMachine` with a recording funnel and a clock. ``expect(purpose)``
takes the next command and checks what it asks for; ``answer(result)`` hands the device's answer back (with a
journal id when the step is journalled, as the driver does); ``fail(...)`` hands a failure; ``visit()`` starts
a new visit (facts are stale again). :class:`Device` makes the device's answers from a few facts that tests
change between visits (the user signs in, the DC goes away...).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from migrator.facts import (
    DcFacts,
    DeleteOutcome,
    DeviceFacts,
    HelloState,
    OsFacts,
    PathSettings,
    PolicyChange,
    PolicyValue,
    PromptResult,
    SessionFacts,
    TpmFacts,
    UserFacts,
    evaluate_policy,
)
from migrator.machine.commands import Command, Done, RunStep, StepFailed, StepSucceeded, Wait
from migrator.machine.core import Change, DeviceMachine, UserRecord
from migrator.playbook import Playbook, load_playbook

START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
SID = "S-1-5-21-1004336348-1177238915-682003330-1104"
USER = "CORP\\alice"
OLD_KEY = "{1B2C3D4E-1111-4222-8333-444455556666}"
NEW_KEY = "{2A9E8F4C-1111-4222-8333-444455556666}"
SETTINGS = PathSettings(entra_kerberos={"corp.contoso.com": True})


class RecordingFunnel:
    """Records every change (what the store would persist)."""

    def __init__(self) -> None:
        self.changes: list[Change] = []
        self.users: list[Any] = []
        self.snapshots: list[Any] = []

    def change(self, change: Change) -> None:
        self.changes.append(change)

    def add_users(self, users: Sequence[Any]) -> None:
        self.users.extend(users)

    def policy_snapshot(self, values: Sequence[PolicyValue]) -> None:
        self.snapshots.append(tuple(values))

    def identify(self, user: str, container_trust: str | None, key_id: str) -> None: ...


@dataclass
class Device:
    """A hybrid joined Windows 11 device with one user, as collect_facts and the user-context scripts see it."""

    trust: str = "cert"  # the policy before the migration: cert or key
    cloud: bool = False  # cloud trust policy written
    signed_in: bool = True
    session: int = 2
    has_hello: bool = True
    key_id: str = OLD_KEY
    dc: bool = True
    cloud_tgt: bool = False

    def facts(self) -> DeviceFacts:
        values: dict[str, Any] = {"Enabled": 1, "RequireSecurityDevice": 1}
        values |= {"UseCloudTrustForOnPremAuth": 1} if self.cloud else {"UseCertificateForOnPremAuth": 1}
        if self.trust == "key" and not self.cloud:
            values.pop("UseCertificateForOnPremAuth")
        session = SessionFacts(id=self.session, kind="console", state="Active", name="console")
        return DeviceFacts(
            name="PC-0001",
            computer_name="PC-0001",
            join_type="hybrid",
            azure_ad_joined=True,
            domain_joined=True,
            domain="corp.contoso.com",
            os=OsFacts(caption="Microsoft Windows 11 Enterprise", build=22631, ubr=4602, display_version="23H2"),
            tpm=TpmFacts(present=True, ready=True),
            policy=evaluate_policy(values, {}, [], user_sids=[SID]),
            users=(
                UserFacts(
                    sid=SID,
                    name=USER,
                    signed_in=self.signed_in,
                    session=session if self.signed_in else None,
                    has_hello=self.has_hello,
                    policy="cloud" if self.cloud else self.trust,  # type: ignore[arg-type]
                ),
            ),
            dc=DcFacts(domain="corp.contoso.com", checked=True, reachable=self.dc, dc="\\\\DC01.corp.contoso.com"),
        )

    def hello(self) -> HelloState:
        return HelloState(
            status="completed",
            user=SID,
            ngc_set=self.has_hello,
            ngc_key_id=self.key_id if self.has_hello else None,
            on_prem_tgt=self.cloud_tgt,
            cloud_primary_tgt=self.cloud_tgt,
            cleaned_up=True,
        )

    def snapshot(self, command: RunStep) -> tuple[PolicyValue, ...]:
        entries = command.step.parameters()["Entries"]
        return tuple(PolicyValue(path=e["path"], name=e["name"], existed=False) for e in entries)

    def set_policy(self, command: RunStep) -> tuple[PolicyChange, ...]:
        self.cloud = True
        changes = []
        for record in command.step.parameters()["Values"]:
            value = PolicyValue(path=record["path"], name=record["name"], existed=True, type="DWord", data=1)
            changes.append(PolicyChange(previous=value, current=value, changed=True))
        return tuple(changes)

    def delete(self) -> DeleteOutcome:
        self.has_hello = False
        return DeleteOutcome(status="completed", user=SID, deleted=True, certutil_succeeded=True, cleaned_up=True)

    def prompt(self) -> PromptResult:
        return PromptResult(session_id=self.session, seconds=600, delivered=True, exit_code=0)

    def sign_in_again(self, *, reprovision: bool = True, cloud_tgt: bool = True) -> None:
        """The user signed out and in: a new session; Windows provisioned a new container (cert path)."""
        self.signed_in = True
        self.session += 1
        if reprovision:
            self.has_hello, self.key_id = True, NEW_KEY
        self.cloud_tgt = cloud_tgt


@dataclass
class Transcript:
    playbook: Playbook = field(default_factory=lambda: load_playbook("cert-trust-to-cloud-kerberos"))
    device: Device = field(default_factory=Device)
    now: datetime = START
    state: str = "pending"
    context: dict[str, Any] | None = None
    users: Sequence[UserRecord] = ()
    funnel: RecordingFunnel = field(default_factory=RecordingFunnel)
    settings: PathSettings = SETTINGS  # what the orchestrator knows beyond the device (the directory's answers)

    def __post_init__(self) -> None:
        self.machine = DeviceMachine(
            "PC-0001",
            self.playbook,
            self.funnel,
            state=self.state,
            context=self.context,
            users=self.users,
            path_settings=self.settings,
        )
        self.machine.begin_visit(self.now)
        self._journal = itertools.count(1)
        self.pending: RunStep | None = None
        self.asked: list[str] = []  # every purpose asked for, in order

    # ---- reading the machine -----------------------------------------------------------------------------

    @property
    def state_now(self) -> str:
        return self.machine.state

    def user_state(self, name: str = USER) -> str:
        return self.machine.user_state(name)

    def triggers(self) -> list[str]:
        return [c.trigger for c in self.funnel.changes]

    def next(self) -> Command:
        command = self.machine.advance(self.now)
        if isinstance(command, RunStep):
            self.pending = command
            self.asked.append(command.purpose.value)
        return command

    def expect(self, purpose: str, user: str | None = None, **parameters: Any) -> RunStep:
        command = self.next()
        assert isinstance(command, RunStep), f"expected a {purpose} step, got {command}"
        assert command.purpose == purpose, f"expected {purpose}, got {command.purpose} ({self.state_now})"
        assert command.user == user, f"{purpose}: expected user {user}, got {command.user}"
        given = command.step.parameters()
        for key, value in parameters.items():
            assert given.get(key) == value, f"{purpose}: {key} is {given.get(key)!r}, not {value!r}"
        return command

    def expect_wait(self, kind: str | None = None) -> Wait:
        command = self.next()
        assert isinstance(command, Wait), f"expected a wait, got {command} in {self.state_now}"
        assert kind is None or command.kind == kind, f"expected a {kind} wait, got {command}"
        return command

    def expect_done(self, state: str) -> Done:
        command = self.next()
        assert isinstance(command, Done) and command.state == state, f"expected done in {state}, got {command}"
        return command

    # ---- answering ---------------------------------------------------------------------------------------

    def answer(self, result: Any) -> None:
        command = self.pending
        assert command is not None, "no command to answer"
        self.pending = None
        journal = next(self._journal) if command.side_effect else None
        self.machine.handle(StepSucceeded(command, result, self.now, journal))

    def answer_as_device(self) -> None:
        """Answer the pending command as the :class:`Device` would."""
        command = self.pending
        assert command is not None
        answers = {
            "facts": self.device.facts,
            "snapshot": lambda: self.device.snapshot(command),
            "set_policy": lambda: self.device.set_policy(command),
            "identify": self.device.hello,
            "verify": self.device.hello,
            "delete": self.device.delete,
            "prompt": self.device.prompt,
        }
        self.answer(answers[command.purpose.value]())

    def step(self, purpose: str, user: str | None = None) -> None:
        """Expect ``purpose`` and answer it as the device would."""
        self.expect(purpose, user)
        self.answer_as_device()

    def fail(self, error_class: str, message: str, *, transient: bool, device_wide: bool = False) -> None:
        command = self.pending
        assert command is not None, "no command to fail"
        self.pending = None
        journal = next(self._journal) if command.side_effect else None
        failure = StepFailed(command, error_class, message, transient, False, self.now, journal, device_wide)
        self.machine.handle(failure)

    def visit(self, after: timedelta = timedelta(0)) -> None:
        """Time passes; a new visit starts (facts read before are stale)."""
        self.now += after
        self.machine.begin_visit(self.now)

    def until_user(self, state: str, name: str = USER) -> None:
        """Answer as the device would until the user is in ``state`` (before the command that state asks)."""
        while True:
            command = self.next()
            if name in self.machine.users and self.user_state(name) == state:
                self.pending = None  # asked again by the next expect(): deciding is repeatable
                self.asked.pop()
                return
            assert isinstance(command, RunStep), f"the user never reached {state}: {command}"
            self.answer_as_device()

    def run_until_wait_or_done(self) -> Command:
        """Answer every step as the device would until the machine waits or ends."""
        while True:
            command = self.next()
            if isinstance(command, Wait | Done):
                return command
            self.answer_as_device()
