"""Read a list of policy values as snapshot records (for rollback with restore_policy)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from migrator.facts import PolicyValue
from migrator.steps._base import StepInfo, as_list
from migrator.steps.set_policy import read_value

INFO = StepInfo(
    name="snapshot_policy",
    script="snapshot_policy",
    idempotent=True,
    point_of_no_return=False,
    summary="read (path, name) policy values: existed, type, data",
)


@dataclass(frozen=True)
class SnapshotPolicy:
    entries: tuple[tuple[str, str], ...]  # (path, name)
    # Also this value in every user and MDM policy scope that exists on the device (what a plan may write).
    scoped_name: str | None = None
    info: ClassVar[StepInfo] = INFO

    def parameters(self) -> dict[str, Any]:
        params: dict[str, Any] = {"Entries": [{"path": path, "name": name} for path, name in self.entries]}
        if self.scoped_name:
            params["ScopedName"] = self.scoped_name
        return params

    def read(self, device: str, data: Mapping[str, Any]) -> tuple[PolicyValue, ...]:
        return tuple(read_value(r) for r in as_list(data.get("records")))
