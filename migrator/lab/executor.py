"""The executor: runs PowerShell and command lines on a simulated device as a principal.

Theory of operation
-------------------
The wire server (and the powershell.exe emulation of :mod:`migrator.lab.native`) talk to a
:class:`LabExecutor`. For each device and principal it builds a :class:`DeviceHost`, the
:class:`~migrator.lab.shell.Host` the interpreter (:mod:`migrator.lab.ps`) runs against: the principal's
``$env:``, the device cmdlets of :mod:`migrator.lab.cmdlets` and the native executables of
:mod:`migrator.lab.native`.

Locking: every device cmdlet call and every native command runs under the device's lock (an RLock, so a
native ``powershell.exe`` that runs a nested script on the same thread re-enters it). The lock is never held
across ``clock.sleep`` (Start-Sleep belongs to the interpreter and calls ``host.clock.sleep`` directly), so a
virtual clock can run due callbacks (a scheduled task starting) while a script sleeps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from migrator.lab import native
from migrator.lab.cmdlets import device_cmdlets
from migrator.lab.cmdlets._base import process_environment
from migrator.lab.model import Device
from migrator.lab.ps import PSRunspace, run_script
from migrator.lab.shell import (
    Clock,
    CmdletSpec,
    Command,
    InvocationResult,
    NativeResult,
    Principal,
    Runspace,
)

if TYPE_CHECKING:
    from migrator.lab.windows import Lab


class DeviceHost:
    """The :class:`~migrator.lab.shell.Host` of one device for one principal."""

    def __init__(self, lab: Lab, device: Device, principal: Principal, stdin: str | None = None) -> None:
        self._lab = lab
        self._device = device
        self._principal = principal
        self._stdin = stdin

    def standard_input(self) -> str | None:
        return self._stdin

    # ---- what device cmdlets use -----------------------------------------------------------------------

    @property
    def lab(self) -> Lab:
        return self._lab

    @property
    def device(self) -> Device:
        return self._device

    # ---- shell.Host ----------------------------------------------------------------------------------------

    @property
    def principal(self) -> Principal:
        return self._principal

    @property
    def clock(self) -> Clock:
        return self._lab.clock

    @property
    def computer_name(self) -> str:
        return self._device.name

    def environment(self) -> Mapping[str, str]:
        """``$env:`` of a process started for the principal (values as Windows 10/11 sets them)."""
        return process_environment(self._lab, self._device, self._principal)

    def cmdlets(self) -> Mapping[str, CmdletSpec]:
        return device_cmdlets()

    def has_native(self, command: str) -> bool:
        return native.has_native(command)

    def run_native(self, command: str, args: list[str], stdin: str | None = None) -> NativeResult:
        if _is_script_host(command):
            # powershell.exe / cmd.exe only host other commands, which lock for themselves; holding the lock
            # for the whole nested script would hold it across its Start-Sleep.
            return native.run_native(self._lab, self._device, self._principal, command, args, stdin)
        with self._device.lock:
            return native.run_native(self._lab, self._device, self._principal, command, args, stdin)


_SCRIPT_HOSTS = frozenset({"powershell", "pwsh", "cmd"})


def stdin_lines(stdin: str) -> list[Any]:
    """Standard input as powershell.exe's text input reader splits it (TextReader.ReadLine: CR, LF or CRLF end a
    line; no other separator): the lines without their ends."""
    text = stdin.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    return lines if text else []


def _is_script_host(command: str) -> bool:
    name = command.replace("/", "\\").rsplit("\\", 1)[-1].casefold()
    return name.removesuffix(".exe") in _SCRIPT_HOSTS


def _first_line(commands: list[Command]) -> str:
    """What the command log shows for a pipeline: the first script line or the cmdlet name."""
    for command in commands:
        for line in command.text.splitlines():
            if line.strip():
                return line.strip()
    return ""


class _RecordingRunspace:
    """A device runspace that writes each invocation to the device's command log (truth for tests)."""

    def __init__(self, lab: Lab, device: Device, principal: Principal, inner: Runspace) -> None:
        self._lab = lab
        self._device = device
        self._principal = principal
        self._inner = inner

    def invoke(self, commands: list[Command], input: list[Any] | None = None) -> InvocationResult:
        self._lab.record_command(self._device, self._principal, "powershell", _first_line(commands))
        return self._inner.invoke(commands, input)

    def stop(self) -> None:
        self._inner.stop()

    def close(self) -> None:
        self._inner.close()


class LabExecutor:
    """:class:`~migrator.lab.shell.Executor` for a whole :class:`~migrator.lab.windows.Lab`."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab

    def host(self, device_name: str, principal: Principal) -> DeviceHost:
        """The host a script on ``device_name`` runs against as ``principal`` (unknown device → LabError)."""
        return DeviceHost(self.lab, self.lab.device(device_name), principal)

    def open_runspace(self, device: str, principal: Principal) -> Runspace:
        host = self.host(device, principal)
        return _RecordingRunspace(self.lab, host.device, principal, PSRunspace(host))

    def run_command_line(
        self, device: str, principal: Principal, command_line: str, stdin: str | None = None
    ) -> NativeResult:
        target = self.lab.device(device)
        return native.run_command_line(self.lab, target, principal, command_line, stdin)

    def run_script(
        self,
        device_name: str,
        principal: Principal,
        script: str,
        parameters: Mapping[str, Any] | None = None,
        stdin: str | None = None,
    ) -> InvocationResult:
        """Run one script to completion (what ``powershell.exe -Command/-EncodedCommand/-File`` does)."""
        host = DeviceHost(self.lab, self.lab.device(device_name), principal, stdin)
        self.lab.record_command(host.device, principal, "powershell", _first_line([Command(script)]))
        # powershell.exe with redirected standard input (-InputFormat Text, the default) hands the script its
        # lines as pipeline input: `$input` enumerates them. Ansible's winrm bootstrap reads its payload so.
        lines = stdin_lines(stdin) if stdin is not None else None
        return run_script(host, script, dict(parameters) if parameters is not None else None, lines)
