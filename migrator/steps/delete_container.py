"""Delete a user's Hello container, in the user's own context, only if it is still the expected one.

The point of no return of the certificate trust path (MS docs "cloud Kerberos trust": run
``certutil -deletehellocontainer`` in the user's context): the old credential is gone until the user
re-provisions. Never retried blindly; a lost answer is resolved by reading the user's state again."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from migrator.facts import DeleteOutcome
from migrator.steps._base import StepInfo, as_dict, opt_int, opt_str
from migrator.steps._user_task import cleaned, read_delete, status_of

INFO = StepInfo(
    name="delete_hello_container",
    script="user_context",
    idempotent=False,
    point_of_no_return=True,
    summary="as the user: certutil -deletehellocontainer if NgcKeyId and trust are still the expected ones",
)


@dataclass(frozen=True)
class DeleteHelloContainer:
    user: str
    expected_key_id: str
    expected_trust: Literal["key", "cert", "cloud", ""] = "cert"
    timeout_seconds: int = 120
    info: ClassVar[StepInfo] = INFO

    def parameters(self) -> dict[str, Any]:
        return {
            "User": self.user,
            "Command": "delete-container",
            "ExpectedKeyId": self.expected_key_id,
            "ExpectedTrust": self.expected_trust,
            "TimeoutSeconds": self.timeout_seconds,
        }

    def read(self, device: str, data: Mapping[str, Any]) -> DeleteOutcome:
        return read_delete(
            self.user,
            status_of(data),
            as_dict(data.get("result")),
            exit_code=opt_int(data.get("last_task_result")),
            cleaned_up=cleaned(data),
            message=opt_str(data.get("message")),
        )
