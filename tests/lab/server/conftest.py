"""A small fleet on loopback with a scripted test-double Executor (test code, not product)."""

from __future__ import annotations

import base64
import datetime
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from migrator.lab import shell
from migrator.lab.server import Account, BackgroundLab, FaultPlan, LabServer, VirtualClock
from tests.loopback import free_addresses

PASSWORD = "Lab-Passw0rd!"
ADMIN = Account("labadmin", PASSWORD, sid="S-1-5-21-1-2-3-500")
DOMAIN_ADMIN = Account("svc-migrator", PASSWORD, sid="S-1-5-21-9-9-9-1105", domain="LAB", dns_domain="lab.example")
NOT_ADMIN = Account("clerk", PASSWORD, sid="S-1-5-21-1-2-3-1001", admin=False)


FIXED_OBJECTS: list[Any] = [
    "text",
    42,
    2**40,
    True,
    2.5,
    None,
    b"\x00\x01",
    datetime.datetime(2024, 5, 1, 12, 30, tzinfo=datetime.UTC),
    [1, "two"],
    shell.Hashtable({"Key": "value", "Count": 3}),
    shell.PSObject(
        {"Name": "dsregcmd", "AzureAdJoined": True, "Nested": shell.PSObject({"Inner": 1})},
        type_names=["Lab.JoinState", "System.Object"],
    ),
]


@dataclass
class FakeRunspace:
    """Answers a few fixed scripts; records every invocation."""

    device: str
    principal: shell.Principal
    calls: list[tuple[list[shell.Command], list[Any] | None]] = field(default_factory=list)
    stopped: threading.Event = field(default_factory=threading.Event)
    closed: bool = False

    def invoke(self, commands: list[shell.Command], input: list[Any] | None = None) -> shell.InvocationResult:
        self.calls.append((commands, input))
        script = commands[0].text.strip()
        params = {name: value for name, value in commands[0].parameters if name}
        if script == "fixed":
            return shell.InvocationResult(output=list(FIXED_OBJECTS))
        if script == "echo":
            return shell.InvocationResult(output=[shell.PSObject(params)])
        if script == "whoami":
            return shell.InvocationResult(output=[self.principal.name, self.device])
        if script == "input":
            return shell.InvocationResult(
                output=[{"count": len(input or [])} and shell.Hashtable({"Count": len(input or [])}), *(input or [])]
            )
        if script == "big":
            size = int(params.get("Size", 400_000))
            return shell.InvocationResult(output=["x" * size, "tail"])
        if script == "error":
            record = shell.ErrorRecord(
                message="Cannot find path 'HKLM:\\SOFTWARE\\Nope' because it does not exist.",
                fully_qualified_error_id="PathNotFound,Microsoft.PowerShell.Commands.GetItemPropertyCommand",
                category="ObjectNotFound",
                exception_type="System.Management.Automation.ItemNotFoundException",
                target_object="HKLM:\\SOFTWARE\\Nope",
                target_name="HKLM:\\SOFTWARE\\Nope",
                activity="Get-ItemProperty",
            )
            return shell.InvocationResult(output=["after"], errors=[record], had_errors=True)
        if script == "throw":
            record = shell.ErrorRecord(message="boom", fully_qualified_error_id="boom")
            return shell.InvocationResult(errors=[record], had_errors=True, terminating_error=record)
        if script == "streams":
            return shell.InvocationResult(
                output=[1], warnings=["careful"], verbose=["chatty"], debug=["dbg"], information=["info"]
            )
        if script == "wait":
            self.stopped.wait(10)
            return shell.InvocationResult()
        return shell.InvocationResult(output=[f"ran: {script}"])

    def stop(self) -> None:
        self.stopped.set()

    def close(self) -> None:
        self.closed = True


class FakeExecutor:
    """The test double behind the lab server: a cmd.exe that knows three command lines."""

    def __init__(self) -> None:
        self.runspaces: list[FakeRunspace] = []
        self.command_lines: list[tuple[str, shell.Principal, str]] = []
        self.stdin: list[str | None] = []

    def open_runspace(self, device: str, principal: shell.Principal) -> shell.Runspace:
        runspace = FakeRunspace(device, principal)
        self.runspaces.append(runspace)
        return runspace

    def run_command_line(
        self, device: str, principal: shell.Principal, command_line: str, stdin: str | None = None
    ) -> shell.NativeResult:
        self.command_lines.append((device, principal, command_line))
        self.stdin.append(stdin)
        words = command_line.split()
        if command_line == "hostname":
            return shell.NativeResult(stdout=f"{device.upper()}\r\n")
        if command_line == "whoami":
            return shell.NativeResult(stdout=f"{principal.name}\r\n")
        if len(words) == 3 and words[0].lower() == "powershell" and words[1].lower() == "-encodedcommand":
            script = base64.b64decode(words[2]).decode("utf-16-le")
            return shell.NativeResult(stdout=f"PS> {script}\r\n")
        if words[:1] == ["big"]:
            return shell.NativeResult(stdout="y" * int(words[1]))
        if words[:1] == ["fail"]:
            return shell.NativeResult(
                stderr="'fail' is not recognized as an internal or external command\r\n", exit_code=9009
            )
        return shell.NativeResult(stdout=f"ran {command_line}\r\n")


@dataclass
class Fleet:
    lab: BackgroundLab
    executor: FakeExecutor
    faults: FaultPlan
    clock: VirtualClock
    devices: list[str]

    @property
    def server(self) -> LabServer:
        return self.lab.server

    def address(self, name: str) -> str:
        return self.server.devices[name].address

    @property
    def http_port(self) -> int:
        assert self.server.http_port  # chosen when the lab started
        return self.server.http_port

    @property
    def https_port(self) -> int:
        assert self.server.https_port
        return self.server.https_port


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    """Two devices on random 127.x addresses and free ports (the same two for both), served from one background loop."""
    executor = FakeExecutor()
    faults = FaultPlan()
    clock = VirtualClock()
    server = LabServer(executor, tmp_path, http_port=0, https_port=0, faults=faults, clock=clock)
    names = []
    for index, address in enumerate(free_addresses(2)):
        name = f"pc-{index + 1:03d}"
        server.add_device(name, address, [ADMIN, DOMAIN_ADMIN, NOT_ADMIN])
        names.append(name)
    lab = BackgroundLab(server)
    with lab.running():
        yield Fleet(lab, executor, faults, clock, names)
