"""Show a message in a user's session (``msg``): ask them to sign out and back in. Not idempotent."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from migrator.facts import PromptResult
from migrator.steps._base import StepInfo, opt_int

INFO = StepInfo(
    name="prompt_user",
    script="prompt_user",
    idempotent=False,
    point_of_no_return=False,
    summary="msg <session> /TIME:<seconds> with the text on standard input",
    changes_facts=False,
)


@dataclass(frozen=True)
class PromptUser:
    session_id: int
    text: str
    seconds: int = 300
    info: ClassVar[StepInfo] = INFO

    def parameters(self) -> dict[str, Any]:
        return {"SessionId": self.session_id, "Text": self.text, "Seconds": self.seconds}

    def read(self, device: str, data: Mapping[str, Any]) -> PromptResult:
        return read_prompt(data, self.session_id, self.seconds)


def read_prompt(data: Mapping[str, Any], session_id: int, seconds: int) -> PromptResult:
    """What Invoke-SignOutPrompt answered (the prompt_user script, or a delete that carried the prompt)."""
    code = opt_int(data.get("exit_code"))
    return PromptResult(
        session_id=opt_int(data.get("session_id")) or session_id,
        seconds=opt_int(data.get("seconds")) or seconds,
        delivered=code == 0,
        exit_code=code,
        text=str(data.get("text") or ""),
    )
