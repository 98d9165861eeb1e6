"""Set or remove one Windows Hello for Business policy value; the previous value comes back for rollback."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from migrator.facts import PolicyChange, PolicyValue, RegistryType
from migrator.steps._base import StepInfo, as_dict, require

INFO = StepInfo(
    name="set_policy",
    script="set_policy",
    idempotent=True,
    point_of_no_return=False,
    summary="set or remove one PassportForWork policy value, returning the previous value",
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
class SetPolicy:
    """``path`` as PowerShell writes it (``HKLM:\\SOFTWARE\\Policies\\Microsoft\\PassportForWork``)."""

    path: str
    name: str
    value: int | str | list[str] | list[int] | None = None
    type: RegistryType = "DWord"
    remove: bool = False
    info: ClassVar[StepInfo] = INFO

    def parameters(self) -> dict[str, Any]:
        params: dict[str, Any] = {"Path": self.path, "Name": self.name, "Type": self.type}
        if self.remove:
            params["Remove"] = True
        else:
            params["Value"] = self.value
        return params

    def read(self, device: str, data: Mapping[str, Any]) -> PolicyChange:
        return PolicyChange(
            previous=read_value(require(device, data, "previous", INFO.script)),
            current=read_value(require(device, data, "current", INFO.script)),
            changed=bool(data.get("changed")),
        )
