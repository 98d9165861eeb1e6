"""Fixtures for device-cmdlet tests: a hybrid device with a signed-in user, hosts per principal, and a
minimal CmdletContext that records streams the way the interpreter would."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from migrator.lab.cmdlets import device_cmdlets
from migrator.lab.executor import DeviceHost
from migrator.lab.model import Device
from migrator.lab.shell import ErrorRecord, PowerShellError
from migrator.lab.windows import Lab
from tests.lab.conftest import make_device, make_user


@dataclass(eq=False)
class FakeContext:
    """A CmdletContext: collects non-terminating errors, or raises them under -ErrorAction Stop."""

    host: DeviceHost
    command_name: str
    stop: bool = False
    errors: list[ErrorRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    verbose: list[str] = field(default_factory=list)
    information: list[Any] = field(default_factory=list)

    def write_error(self, record: ErrorRecord) -> None:
        if self.stop:
            raise PowerShellError(record)
        self.errors.append(record)

    def write_warning(self, message: str) -> None:
        self.warnings.append(message)

    def write_verbose(self, message: str) -> None:
        self.verbose.append(message)

    def write_information(self, message: Any) -> None:
        self.information.append(message)


@dataclass
class Result:
    output: list[Any]
    ctx: FakeContext

    @property
    def errors(self) -> list[ErrorRecord]:
        return self.ctx.errors

    @property
    def error(self) -> ErrorRecord:
        assert len(self.ctx.errors) == 1, self.ctx.errors
        return self.ctx.errors[0]


Invoke = Callable[..., Result]


def run(host: DeviceHost, name: str, **args: Any) -> Result:
    """Call a device cmdlet through the shared table (locked body) with already-bound parameters."""
    spec = device_cmdlets()[name.casefold()]
    ctx = FakeContext(host, spec.name)
    return Result(list(spec.func(ctx, dict(args))), ctx)


@pytest.fixture
def device() -> Device:
    bob = make_user("bob", 1102, None)
    return make_device(users=[make_user("alice", 1101, "cert"), bob])


@pytest.fixture
def lab(lab_of: Callable[..., Lab], device: Device) -> Lab:
    lab = lab_of(device)
    lab.sign_in(device, device.users[0])  # alice at the console; bob not signed in
    return lab


@pytest.fixture
def admin(lab: Lab, device: Device) -> DeviceHost:
    return DeviceHost(lab, device, lab.admin_principal(device))


@pytest.fixture
def system(lab: Lab, device: Device) -> DeviceHost:
    return DeviceHost(lab, device, lab.system_principal())


@pytest.fixture
def alice(lab: Lab, device: Device) -> DeviceHost:
    return DeviceHost(lab, device, lab.user_principal(device, device.users[0]))
