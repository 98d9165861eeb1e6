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

from migrator.lab.cmdlets import device_cmdlets
from migrator.lab.cmdlets._base import account_parts, profile_of, temp_of
from migrator.lab.model import Device
from migrator.lab.shell import (
    Clock,
    CmdletSpec,
    Command,
    InvocationResult,
    NativeResult,
    Principal,
    PrincipalKind,
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
        lab, device, principal = self._lab, self._device, self._principal
        user_domain, user_name = account_parts(lab, device, principal)
        profile = profile_of(lab, device, principal)
        temp = temp_of(lab, device, principal)
        env: dict[str, str] = {
            "ALLUSERSPROFILE": "C:\\ProgramData",
            "APPDATA": f"{profile}\\AppData\\Roaming",
            "CommonProgramFiles": "C:\\Program Files\\Common Files",
            "CommonProgramFiles(x86)": "C:\\Program Files (x86)\\Common Files",
            "CommonProgramW6432": "C:\\Program Files\\Common Files",
            "COMPUTERNAME": device.name.upper(),
            "ComSpec": "C:\\Windows\\system32\\cmd.exe",
            "DriverData": "C:\\Windows\\System32\\Drivers\\DriverData",
            "LOCALAPPDATA": f"{profile}\\AppData\\Local",
            "NUMBER_OF_PROCESSORS": "8",
            "OS": "Windows_NT",
            "Path": "C:\\Windows\\system32;C:\\Windows;C:\\Windows\\System32\\Wbem;"
            "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\;C:\\Windows\\System32\\OpenSSH\\;"
            f"{profile}\\AppData\\Local\\Microsoft\\WindowsApps",
            "PATHEXT": ".COM;.EXE;.BAT;.CMD;.VBS;.VBE;.JS;.JSE;.WSF;.WSH;.MSC;.CPL",
            "PROCESSOR_ARCHITECTURE": "AMD64",
            "PROCESSOR_IDENTIFIER": "Intel64 Family 6 Model 186 Stepping 2, GenuineIntel",
            "PROCESSOR_LEVEL": "6",
            "PROCESSOR_REVISION": "ba02",
            "ProgramData": "C:\\ProgramData",
            "ProgramFiles": "C:\\Program Files",
            "ProgramFiles(x86)": "C:\\Program Files (x86)",
            "ProgramW6432": "C:\\Program Files",
            "PSModulePath": f"{profile}\\Documents\\WindowsPowerShell\\Modules;"
            "C:\\Program Files\\WindowsPowerShell\\Modules;"
            "C:\\Windows\\system32\\WindowsPowerShell\\v1.0\\Modules",
            "PUBLIC": "C:\\Users\\Public",
            "SystemDrive": "C:",
            "SystemRoot": "C:\\Windows",
            "TEMP": temp,
            "TMP": temp,
            "USERDOMAIN": user_domain,
            "USERNAME": user_name,
            "USERPROFILE": profile,
            "windir": "C:\\Windows",
        }
        if principal.kind is not PrincipalKind.SYSTEM:
            env["HOMEDRIVE"] = "C:"
            env["HOMEPATH"] = profile[2:]
        domain = lab.domain_of(device)
        user = device.user(principal.sid) if principal.kind is PrincipalKind.USER else None
        if user is not None and (user_domain_obj := lab.user_domain(user)) is not None:
            # Domain accounts get the DNS domain and the DC that logged them on.
            env["USERDNSDOMAIN"] = user_domain_obj.dns_name.upper()
            env["LOGONSERVER"] = "\\\\" + user_domain_obj.dc_name.split(".")[0]
            env["USERDOMAIN_ROAMINGPROFILE"] = user_domain
        elif principal.kind is PrincipalKind.ADMIN and domain is not None:
            env["USERDNSDOMAIN"] = domain.dns_name.upper()
        return dict(sorted(env.items(), key=lambda kv: kv[0].casefold()))

    def cmdlets(self) -> Mapping[str, CmdletSpec]:
        return device_cmdlets()

    def has_native(self, command: str) -> bool:
        from migrator.lab import native

        return native.has_native(command)

    def run_native(self, command: str, args: list[str], stdin: str | None = None) -> NativeResult:
        from migrator.lab import native

        if _is_script_host(command):
            # powershell.exe / cmd.exe only host other commands, which lock for themselves; holding the lock
            # for the whole nested script would hold it across its Start-Sleep.
            return native.run_native(self._lab, self._device, self._principal, command, args, stdin)
        with self._device.lock:
            return native.run_native(self._lab, self._device, self._principal, command, args, stdin)


_SCRIPT_HOSTS = frozenset({"powershell", "pwsh", "cmd"})


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
        from migrator.lab.ps import PSRunspace

        return _RecordingRunspace(self.lab, host.device, principal, PSRunspace(host))

    def run_command_line(
        self, device: str, principal: Principal, command_line: str, stdin: str | None = None
    ) -> NativeResult:
        from migrator.lab import native

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
        from migrator.lab.ps import run_script

        self.lab.record_command(host.device, principal, "powershell", _first_line([Command(script)]))
        return run_script(host, script, dict(parameters) if parameters is not None else None)
