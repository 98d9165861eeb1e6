"""Refresh computer Group Policy now (``gpupdate /target:computer /force``), read with migrator.parse.gpupdate."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from migrator.facts import PolicyRefresh
from migrator.parse import parse_gpupdate
from migrator.steps._base import StepInfo, native_text

INFO = StepInfo(
    name="refresh_policy",
    script="refresh_policy",
    idempotent=True,
    point_of_no_return=False,
    summary="gpupdate /target:computer /force (raw text and exit code)",
)


@dataclass(frozen=True)
class RefreshPolicy:
    info: ClassVar[StepInfo] = INFO

    def parameters(self) -> dict[str, Any]:
        return {}

    def read(self, device: str, data: Mapping[str, Any]) -> PolicyRefresh:
        text, code = native_text(data)
        parsed = parse_gpupdate(text)
        return PolicyRefresh(
            succeeded=code == 0 and parsed.computer_policy_completed is not False,
            computer_policy_completed=parsed.computer_policy_completed,
            restart_required=parsed.restart_required,
            errors=tuple(parsed.errors),
            exit_code=code,
        )
