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
from migrator.steps.prompt_user import PromptUser, read_prompt

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
    # The request to sign out and back in, shown in the same run right after a delete (no request of its own).
    prompt: PromptUser | None = None
    info: ClassVar[StepInfo] = INFO

    def parameters(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            "User": self.user,
            "Command": "delete-container",
            "ExpectedKeyId": self.expected_key_id,
            "ExpectedTrust": self.expected_trust,
            "TimeoutSeconds": self.timeout_seconds,
        }
        if self.prompt is not None:
            params.update(
                PromptSession=self.prompt.session_id, PromptText=self.prompt.text, PromptSeconds=self.prompt.seconds
            )
        return params

    def read(self, device: str, data: Mapping[str, Any]) -> DeleteOutcome:
        shown = as_dict(data.get("prompt"))
        outcome = read_delete(
            self.user,
            status_of(data),
            as_dict(data.get("result")),
            exit_code=opt_int(data.get("last_task_result")),
            cleaned_up=cleaned(data),
            message=opt_str(data.get("message")),
        )
        if self.prompt is None or not shown:
            return outcome
        return outcome.model_copy(update={"prompt": read_prompt(shown, self.prompt.session_id, self.prompt.seconds)})
