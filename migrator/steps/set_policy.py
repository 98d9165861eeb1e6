"""Set or remove Windows Hello for Business policy values, the whole plan in one call; the previous value of each
comes back for the audit log and rollback."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from migrator.errors import ProtocolError
from migrator.facts import PolicyChange, PolicyValue, RegistryType
from migrator.steps._base import StepInfo, as_dict, as_list, require

INFO = StepInfo(
    name="set_policy",
    script="set_policy",
    idempotent=True,
    point_of_no_return=False,
    summary="set or remove a list of PassportForWork policy values, returning each one's previous value",
)


def read_value(data: Any) -> PolicyValue:
    raw = as_dict(data)
    return PolicyValue(
        path=str(raw.get("path") or ""),
        name=str(raw.get("name") or ""),
        existed=bool(raw.get("existed")),
        type=raw.get("type") if raw.get("existed") else None,
        data=raw.get("data") if raw.get("existed") else None,
    )


@dataclass(frozen=True)
class PolicyWrite:
    """One value to write; ``path`` as PowerShell writes it (``HKLM:\\SOFTWARE\\Policies\\...\\PassportForWork``)."""

    path: str
    name: str
    value: int | str | list[str] | list[int] | None = None
    type: RegistryType = "DWord"
    remove: bool = False

    def record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"path": self.path, "name": self.name, "type": self.type}
        if self.remove:
            record["remove"] = True
        else:
            record["value"] = self.value
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> PolicyWrite:
        if record.get("remove"):
            return cls(str(record["path"]), str(record["name"]), remove=True)
        return cls(str(record["path"]), str(record["name"]), record.get("value"), record.get("type") or "DWord")


@dataclass(frozen=True)
class SetPolicy:
    """The values, written in order in one script run (one request pair on the wire for the whole plan)."""

    writes: tuple[PolicyWrite, ...]
    info: ClassVar[StepInfo] = INFO

    def parameters(self) -> dict[str, Any]:
        return {"Values": [write.record() for write in self.writes]}

    def read(self, device: str, data: Mapping[str, Any]) -> tuple[PolicyChange, ...]:
        changes = tuple(
            PolicyChange(
                previous=read_value(require(device, as_dict(raw), "previous", INFO.script)),
                current=read_value(require(device, as_dict(raw), "current", INFO.script)),
                changed=bool(as_dict(raw).get("changed")),
            )
            for raw in as_list(require(device, data, "changes", INFO.script))
        )
        if len(changes) != len(self.writes):
            raise ProtocolError(device, f"script {INFO.script} answered {len(changes)} values for {len(self.writes)}")
        return changes
