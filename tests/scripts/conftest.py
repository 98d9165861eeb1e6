"""Fixtures for script tests: a generated fleet on a virtual clock and a helper that runs one of our scripts on
a device through the lab's interpreter, in-process, as a given principal (the admin by default)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from migrator.lab.clock import VirtualClock
from migrator.lab.fleet import generate_fleet, parse_mix
from migrator.lab.model import Device, User
from migrator.lab.runtime import new_lab
from migrator.lab.shell import Hashtable, InvocationResult, Principal
from migrator.lab.windows import Lab
from migrator.scripts import load


@dataclass
class Run:
    result: InvocationResult
    data: dict[str, Any] | None  # the script's one JSON object, None when it wrote none


RunScript = Callable[..., Run]


def make_lab(devices: int = 12, seed: int = 5, mix: str = "key=50,cert=40,cloud=5,none=5") -> Lab:
    fleet = generate_fleet(devices, seed, parse_mix(mix))
    return new_lab(fleet, VirtualClock(fleet.clock))


def to_lab(value: Any) -> Any:
    """Python parameters as PSRP delivers them to the runspace (dict -> Hashtable, recursively)."""
    if isinstance(value, dict):
        return Hashtable({k: to_lab(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return [to_lab(v) for v in value]
    return value


def run_on(
    lab: Lab, device: Device, name: str, parameters: Mapping[str, Any] | None = None, principal: Principal | None = None
) -> Run:
    """Run script ``name`` on ``device`` as ``principal`` (the WinRM admin by default), as powershell.exe would."""
    who = principal or lab.admin_principal(device)
    result = lab.executor.run_script(
        device.name, who, load(name).text, {k: to_lab(v) for k, v in (parameters or {}).items()}
    )  # type: ignore[attr-defined]
    texts = [o for o in result.output if isinstance(o, str) and o.strip()]
    data = json.loads(texts[-1]) if texts and not result.terminating_error else None
    return Run(result, data)


@pytest.fixture
def lab() -> Lab:
    return make_lab()


def signed_in_user(lab: Lab, trust: str | None = None) -> tuple[Device, User]:
    """A device with a signed-in user who has a container (of ``trust`` when given)."""
    for device in lab.fleet.devices:
        for user in device.users:
            session = device.session_of(user)
            if session is None or user.container is None or session.kind != "console":
                continue
            if trust is None or user.container.trust == trust:
                return device, user
    raise LookupError("no such user in the fleet")
