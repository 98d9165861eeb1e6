"""At-logon tasks: run the guarded container delete at a user's next sign-in, read what it did, remove it.

Three steps over one task per user SID (``\\migrator\\migrator-logon-<SID>``): arm (idempotent: same name,
registered with -Force), read the result, disarm (returns the result first, so a deletion's evidence is kept)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from migrator.facts import DeleteOutcome, LogonTaskArmed, LogonTaskDisarmed, LogonTaskResult
from migrator.steps._base import StepInfo, as_dict, opt_int, opt_str
from migrator.steps._user_task import read_delete

ARM = StepInfo(
    name="arm_logon_task",
    script="arm_logon_task",
    idempotent=True,
    point_of_no_return=False,  # the delete it arms is guarded and happens later, at the user's sign-in
    summary="register an at-logon task that runs the guarded container delete at the user's next sign-in",
)
READ = StepInfo(
    name="read_logon_task_result",
    script="read_logon_task_result",
    idempotent=True,
    point_of_no_return=False,
    summary="read the at-logon task's state and the result its run left",
)
DISARM = StepInfo(
    name="disarm_logon_task",
    script="disarm_logon_task",
    idempotent=True,
    point_of_no_return=False,
    summary="unregister the at-logon task and delete its files (returning its result first)",
)


def _outcome(user: str, raw: Any) -> DeleteOutcome | None:
    inner = as_dict(raw)
    if not inner:
        return None
    return read_delete(user, "completed", inner, exit_code=None, cleaned_up=False, message=None)


@dataclass(frozen=True)
class ArmLogonTask:
    user_sid: str
    expected_key_id: str
    expected_trust: Literal["key", "cert", "cloud", ""] = "cert"
    info: ClassVar[StepInfo] = ARM

    def parameters(self) -> dict[str, Any]:
        return {"UserSid": self.user_sid, "ExpectedKeyId": self.expected_key_id, "ExpectedTrust": self.expected_trust}

    def read(self, device: str, data: Mapping[str, Any]) -> LogonTaskArmed:
        return LogonTaskArmed(
            task=str(data.get("task") or ""),
            armed=bool(data.get("armed")),
            replaced=bool(data.get("replaced")),
            pending_result=bool(data.get("pending_result")),
        )


@dataclass(frozen=True)
class ReadLogonTaskResult:
    user_sid: str
    info: ClassVar[StepInfo] = READ

    def parameters(self) -> dict[str, Any]:
        return {"UserSid": self.user_sid}

    def read(self, device: str, data: Mapping[str, Any]) -> LogonTaskResult:
        info = as_dict(data.get("task_info"))
        return LogonTaskResult(
            task=str(data.get("task") or ""),
            task_exists=bool(data.get("task_exists")),
            state=opt_str(info.get("state")),
            last_run_time=opt_str(info.get("last_run_time")),
            last_task_result=opt_int(info.get("last_task_result")),
            outcome=_outcome(self.user_sid, data.get("result")),
        )


@dataclass(frozen=True)
class DisarmLogonTask:
    user_sid: str
    info: ClassVar[StepInfo] = DISARM

    def parameters(self) -> dict[str, Any]:
        return {"UserSid": self.user_sid}

    def read(self, device: str, data: Mapping[str, Any]) -> LogonTaskDisarmed:
        return LogonTaskDisarmed(
            task=str(data.get("task") or ""),
            task_removed=bool(data.get("task_removed")),
            task_left=bool(data.get("task_left")),
            files_left=bool(data.get("files_left")),
            outcome=_outcome(self.user_sid, data.get("result")),
        )
