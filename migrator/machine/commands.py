"""What the machine asks for (commands) and what it is told (events). Plain data: the machine does no I/O.

Commands: :class:`RunStep` (run this step, for this :class:`Purpose`, for this user; journalled or not),
:class:`Wait` (nothing to do until then, and why), :class:`Done` (a final or parked state). Events:
:class:`StepSucceeded` (typed facts), :class:`StepFailed` (error class, whether it is transient, whether the
device may have acted, whether it concerns the whole device). The clock is in the events (``at``) and in
:meth:`~migrator.machine.core.DeviceMachine.advance`'s ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # the type only: reports read purposes without loading the steps and transports behind them
    from migrator.steps import Step


class Purpose(StrEnum):
    """Why a step runs: the machine reads the answer by purpose, through that purpose's registered handler
    (:mod:`migrator.machine.purposes`)."""

    FACTS = "facts"  # collect_facts (read)
    SNAPSHOT = "snapshot"  # snapshot_policy (read)
    SET_POLICY = "set_policy"  # set_policy (journalled)
    REFRESH = "refresh"  # refresh_policy (journalled)
    IDENTIFY = "identify"  # hello_state in the user's session, to record the container (journalled: registers a task)
    DELETE = "delete"  # delete_hello_container: THE point of no return (journalled)
    ARM = "arm"  # arm_logon_task (journalled)
    READ_TASK = "read_task"  # read_logon_task_result (read)
    DISARM = "disarm"  # disarm_logon_task (journalled)
    PROMPT = "prompt"  # prompt_user (journalled)
    VERIFY = "verify"  # hello_state, for the cloud TGT (journalled)
    RESTORE = "restore"  # restore_policy, rollback (journalled)
    READ_BACK = "read_back"  # a read that resolves an in-doubt step (read)
    DISCOVER = "discover"  # snapshot_policy of every value a plan may write, riding in preflight's facts read (read)


# Journalled: the intent is committed before the step is sent and the outcome after (architecture rule 3).
JOURNALLED = frozenset(
    {
        Purpose.SET_POLICY,
        Purpose.REFRESH,
        Purpose.IDENTIFY,
        Purpose.DELETE,
        Purpose.ARM,
        Purpose.DISARM,
        Purpose.PROMPT,
        Purpose.VERIFY,
        Purpose.RESTORE,
    }
)


@dataclass(frozen=True)
class RunStep:
    step: Step[Any]
    purpose: Purpose
    user: str | None = None  # the store's user name when the step concerns one user
    point_of_no_return: bool = False
    # Reads that ride in this step's pipeline, right after it (one request pair fewer each): the facts the next
    # decision needs after a write, a read the next state will need. Only reads ride (a journalled step never
    # does: its intent is committed alone, before it is sent); their answers go to the machine after this
    # step's own, in order, as if read next. Not journalled, so not part of the command's identity either: a
    # command rebuilt from its intent is the same command.
    riders: tuple[RunStep, ...] = field(default=(), compare=False)
    # Journalled steps of *other* subjects (users) sent in this step's pipeline, right after it and before the
    # riders: each is journalled on its own (its intent committed before the pipeline is sent, its outcome after),
    # so a pipeline holds at most one journalled step per subject. Their answers go to the machine through their
    # handler's ``companion`` (the subject may not have reached the state that asks for the step yet).
    companions: tuple[RunStep, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if any(rider.side_effect or rider.riders or rider.companions for rider in self.riders):
            raise ValueError("only reads ride in another step's pipeline, and they carry no riders of their own")
        subjects = [self.user, *(c.user for c in self.companions)]
        if self.companions and (not self.side_effect or len(set(subjects)) != len(subjects)):
            raise ValueError("companions go with a journalled step, at most one journalled step per subject")
        if any(not c.side_effect or c.riders or c.companions for c in self.companions):
            raise ValueError("a companion is a journalled step alone")

    @property
    def side_effect(self) -> bool:
        """Journalled: the intent is committed before the step is sent, the outcome after."""
        return self.purpose in JOURNALLED

    @property
    def name(self) -> str:
        return self.step.info.name

    def payload(self) -> dict[str, Any]:
        """The journal intent: enough to re-read the device if the outcome is lost (no secret is a parameter)."""
        return {
            "purpose": self.purpose.value,
            "step": self.name,
            "user": self.user,
            "parameters": self.step.parameters(),
        }


@dataclass(frozen=True)
class Wait:
    until: datetime
    reason: str
    kind: Literal["user", "dc", "device", "retry", "window", "policy"] = "user"


@dataclass(frozen=True)
class Done:
    state: str
    reason: str | None = None


Command = RunStep | Wait | Done


@dataclass(frozen=True)
class StepSucceeded:
    command: RunStep
    result: Any
    at: datetime
    journal_id: int | None = None  # the journal entry this answer settled (None for reads)


@dataclass(frozen=True)
class StepFailed:
    command: RunStep
    error_class: str
    message: str
    transient: bool
    may_have_run: bool
    at: datetime
    journal_id: int | None = None
    # The error is about the device, not this step (credentials refused, connection settings): the device fails,
    # its users keep their states (a user is never failed for what the account or the connection did).
    device_wide: bool = False


Event = StepSucceeded | StepFailed


@dataclass(frozen=True)
class Resolution:
    """What re-reading the device said about an in-doubt intent."""

    applied: bool
    summary: dict[str, Any]
    event: StepSucceeded | None = None
