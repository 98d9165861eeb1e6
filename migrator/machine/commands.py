"""What the machine asks for (commands) and what it is told (events). Plain data: the machine does no I/O.

Commands: :class:`RunStep` (run this step, for this user, journalled or not), :class:`Wait` (nothing to do
until then, and why), :class:`Done` (a final or parked state). Events: :class:`StepSucceeded` (typed facts),
:class:`StepFailed` (error class, whether it is transient and whether the device may have acted). The clock is
in the events (``at``) and in :meth:`~migrator.machine.core.DeviceMachine.advance`'s ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from migrator.facts import (
    DeleteOutcome,
    DeviceFacts,
    HelloState,
    LogonTaskArmed,
    LogonTaskDisarmed,
    LogonTaskResult,
    PolicyChange,
    PolicyRefresh,
    PromptResult,
)
from migrator.steps import Step

# Why a step runs; the machine reads the answer by purpose.
Purpose = Literal[
    "facts",  # collect_facts (read)
    "snapshot",  # snapshot_policy (read)
    "set_policy",  # set_policy (journalled)
    "refresh",  # refresh_policy (journalled)
    "identify",  # hello_state in the user's session, to record the container (journalled: registers a task)
    "delete",  # delete_hello_container: THE point of no return (journalled)
    "arm",  # arm_logon_task (journalled)
    "read_task",  # read_logon_task_result (read)
    "disarm",  # disarm_logon_task (journalled)
    "prompt",  # prompt_user (journalled)
    "verify",  # hello_state, for the cloud TGT (journalled)
    "restore",  # restore_policy, rollback (journalled)
    "read_back",  # snapshot_policy read to resolve an in-doubt policy write (read)
]

# The typed answer of each purpose (how a journalled outcome is read back when it is replayed).
RESULT_TYPES: dict[str, type[Any]] = {
    "facts": DeviceFacts,
    "set_policy": PolicyChange,
    "refresh": PolicyRefresh,
    "identify": HelloState,
    "delete": DeleteOutcome,
    "arm": LogonTaskArmed,
    "read_task": LogonTaskResult,
    "disarm": LogonTaskDisarmed,
    "prompt": PromptResult,
    "verify": HelloState,
}
SIDE_EFFECTS = frozenset(
    {"set_policy", "refresh", "identify", "delete", "arm", "disarm", "prompt", "verify", "restore"}
)


@dataclass(frozen=True)
class RunStep:
    step: Step[Any]
    purpose: Purpose
    user: str | None = None  # the store's user name when the step concerns one user
    point_of_no_return: bool = False

    @property
    def side_effect(self) -> bool:
        """Journalled: the intent is committed before the step is sent, the outcome after."""
        return self.purpose in SIDE_EFFECTS

    @property
    def name(self) -> str:
        return self.step.info.name

    def payload(self) -> dict[str, Any]:
        """The journal intent: enough to re-read the device if the outcome is lost (no secret is a parameter)."""
        return {"purpose": self.purpose, "step": self.name, "user": self.user, "parameters": self.step.parameters()}


@dataclass(frozen=True)
class Wait:
    until: datetime
    reason: str
    kind: Literal["user", "dc", "retry", "window", "policy"] = "user"


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


Event = StepSucceeded | StepFailed


@dataclass(frozen=True)
class Resolution:
    """What re-reading the device said about an in-doubt intent."""

    applied: bool
    summary: dict[str, Any]
    event: StepSucceeded | None = None
