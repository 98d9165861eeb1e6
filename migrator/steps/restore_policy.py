"""Write snapshot records back: existing values get their data again, values that did not exist are removed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from migrator.facts import PolicyValue, RestoreAction
from migrator.steps._base import StepInfo, as_dict, as_list

INFO = StepInfo(
    name="restore_policy",
    script="restore_policy",
    idempotent=True,
    point_of_no_return=False,
    summary="write snapshot records back (remove values that did not exist)",
)


@dataclass(frozen=True)
class RestorePolicy:
    records: tuple[PolicyValue, ...]
    info: ClassVar[StepInfo] = INFO

    def parameters(self) -> dict[str, Any]:
        return {
            "Records": [
                {"path": r.path, "name": r.name, "existed": r.existed, "type": r.type, "data": r.data}
                for r in self.records
            ]
        }

    def read(self, device: str, data: Mapping[str, Any]) -> tuple[RestoreAction, ...]:
        return tuple(
            RestoreAction(path=str(r.get("path")), name=str(r.get("name")), action=r.get("action", "unchanged"))
            for r in map(as_dict, as_list(data.get("restored")))
        )
