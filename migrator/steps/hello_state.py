"""Read a signed-in user's own Hello container and Kerberos state through an Interactive task (not idempotent:
it registers a task; read-only otherwise)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from migrator.facts import HelloState
from migrator.steps._base import StepInfo
from migrator.steps._user_task import read_hello_state

INFO = StepInfo(
    name="hello_state",
    script="user_context",
    idempotent=False,
    point_of_no_return=False,
    summary="as the user: dsregcmd /status, klist, klist cloud_debug (NgcKeyId, OnPremTgt, cloud TGT)",
    # Journalled for the task it registers (and removes), yet it changes nothing collect_facts reads: not the
    # policy, the containers (the PIN provider's list), the sessions nor the DC line of sight. Reading the facts
    # again after it cost a whole collect_facts pipeline per identify and per verify.
    changes_facts=False,
)


@dataclass(frozen=True)
class ReadHelloState:
    """``user``: the user's SID or DOMAIN\\name; the user must be signed in (Interactive task)."""

    user: str
    timeout_seconds: int = 120
    info: ClassVar[StepInfo] = INFO

    def parameters(self) -> dict[str, Any]:
        return {"User": self.user, "Command": "hello-state", "TimeoutSeconds": self.timeout_seconds}

    def read(self, device: str, data: Mapping[str, Any]) -> HelloState:
        return read_hello_state(self.user, data)
