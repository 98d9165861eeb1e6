"""The lab executor: device hosts per principal, the shared cmdlet table, locking and delegation."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from typing import Any

import pytest

from migrator.lab.clock import VirtualClock
from migrator.lab.cmdlets import _locked, all_specs, device_cmdlets
from migrator.lab.executor import DeviceHost, LabExecutor, _is_script_host
from migrator.lab.model import Device
from migrator.lab.ps import run_script
from migrator.lab.runtime import new_lab
from migrator.lab.shell import Command
from migrator.lab.windows import Lab, LabError
from tests.lab.cmdlets.conftest import FakeContext
from tests.lab.conftest import T0, make_device, make_fleet, make_user


@pytest.fixture
def lab(lab_of: Callable[..., Lab]) -> Lab:
    device = make_device()
    lab = lab_of(device)
    lab.sign_in(device, device.users[0])
    return lab


def _device(lab: Lab) -> Device:
    return lab.fleet.devices[0]


def test_environment_per_principal(lab: Lab) -> None:
    """$env: names the principal: admin and user profiles and TEMP, SYSTEM as the computer account."""
    device = _device(lab)
    admin = DeviceHost(lab, device, lab.admin_principal(device)).environment()
    assert (admin["USERDOMAIN"], admin["USERNAME"]) == ("LAB", "migrator-admin")
    assert admin["USERPROFILE"] == "C:\\Users\\migrator-admin"
    assert admin["TEMP"] == admin["TMP"] == "C:\\Users\\migrator-admin\\AppData\\Local\\Temp"
    system = DeviceHost(lab, device, lab.system_principal()).environment()
    assert (system["USERDOMAIN"], system["USERNAME"]) == ("CORP", "PC-0001$")
    assert system["TEMP"] == "C:\\Windows\\TEMP"
    assert system["USERPROFILE"] == "C:\\Windows\\system32\\config\\systemprofile"
    user = DeviceHost(lab, device, lab.user_principal(device, device.users[0])).environment()
    assert (user["USERDOMAIN"], user["USERNAME"], user["USERDNSDOMAIN"]) == ("CORP", "alice", "CORP.CONTOSO.COM")
    assert user["TEMP"] == "C:\\Users\\alice\\AppData\\Local\\Temp"
    for env in (admin, system, user):
        assert env["COMPUTERNAME"] == "PC-0001" and env["SystemRoot"] == "C:\\Windows"
        assert env["windir"] == "C:\\Windows" and env["ProgramData"] == "C:\\ProgramData"
        assert env["PROCESSOR_ARCHITECTURE"] == "AMD64" and env["OS"] == "Windows_NT"
        assert "WindowsPowerShell\\v1.0\\Modules" in env["PSModulePath"]


def test_host_basics(lab: Lab) -> None:
    """The host exposes the lab clock, the computer name and the shared cmdlet table."""
    device = _device(lab)
    host = DeviceHost(lab, device, lab.system_principal())
    assert host.clock is lab.clock and host.computer_name == "PC-0001"
    assert host.cmdlets() is device_cmdlets()
    assert host.has_native("dsregcmd.exe") and not host.has_native("nope.exe")
    assert host.run_native("whoami", []).stdout.strip() == "nt authority\\system"


def test_cmdlet_table_names_and_aliases() -> None:
    """Cmdlets are keyed by lower-cased name and Windows alias, each exactly once."""
    table = device_cmdlets()
    for alias, name in {
        "gp": "Get-ItemProperty",
        "gci": "Get-ChildItem",
        "sp": "Set-ItemProperty",
        "ni": "New-Item",
        "rp": "Remove-ItemProperty",
        "ri": "Remove-Item",
        "gc": "Get-Content",
        "gcim": "Get-CimInstance",
        "gwmi": "Get-WmiObject",
    }.items():
        assert table[alias].name == name
    assert table["get-scheduledtask"].name == "Get-ScheduledTask"
    assert len({spec.name for spec in all_specs()}) == len(all_specs())


def test_cmdlet_bodies_run_under_the_device_lock(lab: Lab) -> None:
    """A locked body holds the device's lock: another thread cannot take it meanwhile."""
    device = _device(lab)
    host = DeviceHost(lab, device, lab.system_principal())
    seen: list[bool] = []

    def body(ctx: Any, args: dict[str, Any]) -> list[Any]:
        probe = threading.Thread(target=lambda: seen.append(device.lock.acquire(blocking=False)))
        probe.start()
        probe.join()
        return []

    _locked(body)(FakeContext(host, "Probe"), {})
    assert seen == [False]


def test_script_hosts_are_not_run_under_the_lock() -> None:
    """powershell.exe and cmd.exe host nested commands, which lock for themselves."""
    assert _is_script_host("powershell.exe") and _is_script_host("C:\\Windows\\System32\\cmd.exe")
    assert _is_script_host("pwsh") and not _is_script_host("dsregcmd.exe")


def test_unknown_device_is_a_lab_error(lab: Lab) -> None:
    """Naming a device the lab does not have is a caller mistake (LabError)."""
    executor = LabExecutor(lab)
    with pytest.raises(LabError):
        executor.run_command_line("PC-9999", lab.system_principal(), "whoami")
    with pytest.raises(LabError):
        executor.open_runspace("PC-9999", lab.system_principal())


def test_run_command_line_delegates_to_native(lab: Lab) -> None:
    """run_command_line runs a cmd.exe line as the principal."""
    device = _device(lab)
    result = lab.executor.run_command_line(device.name, lab.user_principal(device, device.users[0]), "whoami")
    assert result.exit_code == 0 and result.stdout.strip() == "corp\\alice"


# ---- end to end through the interpreter ---------------------------------------------------------------------

TASK_SCRIPT = r"""
param($User, $Encoded)
$arguments = "-NoProfile -NonInteractive -EncodedCommand $Encoded"
$action = New-ScheduledTaskAction -Execute 'powershell.exe' -Argument $arguments
$principal = New-ScheduledTaskPrincipal -UserId $User -LogonType Interactive -RunLevel Limited
$settings = New-ScheduledTaskSettingsSet -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries `
    -ExecutionTimeLimit (New-TimeSpan -Minutes 5)
Register-ScheduledTask -TaskName 'Probe' -TaskPath '\Migrator\' -Action $action -Principal $principal `
    -Settings $settings -Force | Out-Null
Start-ScheduledTask -TaskName 'Probe' -TaskPath '\Migrator\'
$polls = 0
do {
    Start-Sleep -Seconds 1
    $polls++
    $state = (Get-ScheduledTask -TaskName 'Probe' -TaskPath '\Migrator\').State
} while ($state -ne 'Ready' -and $polls -lt 30)
$info = Get-ScheduledTask -TaskName 'Probe' -TaskPath '\Migrator\' | Get-ScheduledTaskInfo
$content = Get-Content -Path 'C:\ProgramData\Migrator\whoami.txt' -Raw
Unregister-ScheduledTask -TaskName 'Probe' -TaskPath '\Migrator\' -Confirm:$false
[pscustomobject]@{ State = "$state"; Result = $info.LastTaskResult; Content = $content.Trim(); Polls = $polls }
"""

USER_PAYLOAD = (
    "New-Item -ItemType Directory -Path 'C:\\ProgramData\\Migrator' -Force | Out-Null; "
    "\"$env:USERDOMAIN\\$env:USERNAME\" | Out-File -FilePath 'C:\\ProgramData\\Migrator\\whoami.txt' -Encoding utf8"
)


def _encode(script: str) -> str:
    return base64.b64encode(script.encode("utf-16-le")).decode("ascii")


def test_interactive_task_lifecycle_runs_as_the_user(lab: Lab) -> None:
    """Admin registers an Interactive task for the signed-in user, starts it, polls it and reads its output file."""
    device = _device(lab)
    runspace = lab.executor.open_runspace(device.name, lab.admin_principal(device))
    result = runspace.invoke(
        [Command(TASK_SCRIPT, parameters=(("User", "CORP\\alice"), ("Encoded", _encode(USER_PAYLOAD))))]
    )
    assert result.errors == [] and result.terminating_error is None, result.errors or result.terminating_error
    [summary] = result.output
    assert summary["State"] == "Ready" and summary["Result"] == 0
    assert summary["Content"] == "CORP\\alice"
    assert device.tasks == []
    runs = [(c.principal, c.kind) for c in device.counters.commands if c.kind == "task"]
    assert runs == [("corp\\alice", "task")]
    assert ("corp\\alice", "powershell") in [(c.principal, c.kind) for c in device.counters.commands]
    assert device.users[0].counters.tasks_run == 1


def test_at_logon_task_runs_when_the_user_signs_in(lab: Lab) -> None:
    """A task with an at-logon trigger for a user who is not signed in runs at their sign-in, as them."""
    device = _device(lab)
    bob = make_user("bob", 1102)
    device.users.append(bob)
    script = r"""
    param($User, $Encoded)
    $action = New-ScheduledTaskAction -Execute 'powershell.exe' -Argument "-NoProfile -EncodedCommand $Encoded"
    $trigger = New-ScheduledTaskTrigger -AtLogOn -User $User
    $principal = New-ScheduledTaskPrincipal -UserId $User -LogonType Interactive
    Register-ScheduledTask -TaskName 'AtLogon' -Action $action -Trigger $trigger -Principal $principal | Out-Null
    (Get-ScheduledTaskInfo -TaskName 'AtLogon').LastTaskResult
    """
    runspace = lab.executor.open_runspace(device.name, lab.admin_principal(device))
    result = runspace.invoke([Command(script, parameters=(("User", "CORP\\bob"), ("Encoded", _encode(USER_PAYLOAD))))])
    assert result.errors == [] and result.output == [0x41303]
    lab.sign_in(device, bob)
    assert device.files["c:\\programdata\\migrator\\whoami.txt"].content.strip().lstrip("\ufeff") == "CORP\\bob"
    assert [c.principal for c in device.counters.commands if c.kind == "task"] == ["corp\\bob"]


def test_registry_and_errors_through_the_interpreter(lab: Lab) -> None:
    """Scripts read policy values, catch a missing key with -ErrorAction Stop and silence Get-WinEvent misses."""
    device = _device(lab)
    script = r"""
    $p = 'HKLM:\SOFTWARE\Policies\Microsoft\PassportForWork'
    $cert = (Get-ItemProperty -Path $p -Name UseCertificateForOnPremAuth).UseCertificateForOnPremAuth
    $missing = 'found'
    try { Get-ItemProperty -Path 'HKLM:\SOFTWARE\Nope' -ErrorAction Stop | Out-Null }
    catch { $missing = $_.FullyQualifiedErrorId }
    $filter = @{ LogName = 'Microsoft-Windows-User Device Registration/Admin'; Id = 362 }
    $events = @(Get-WinEvent -FilterHashtable $filter -ErrorAction SilentlyContinue)
    [pscustomobject]@{ Cert = $cert; Missing = $missing; Events = $events.Count; Exists = (Test-Path $p) }
    """
    result = lab.executor.open_runspace(device.name, lab.admin_principal(device)).invoke([Command(script)])
    assert result.errors == [], result.errors
    [obj] = result.output
    assert obj["Cert"] == 1 and obj["Events"] == 0 and obj["Exists"] is True
    assert obj["Missing"] == "PathNotFound,Microsoft.PowerShell.Commands.GetItemPropertyCommand"
    assert [c.kind for c in device.counters.commands][-1] == "powershell"


def test_run_script_is_what_powershell_exe_runs(lab: Lab) -> None:
    """powershell.exe on a command line runs the script through LabExecutor.run_script as the caller."""
    device = _device(lab)
    result = lab.executor.run_command_line(
        device.name, lab.system_principal(), 'powershell.exe -NoProfile -Command "$env:USERNAME"'
    )
    assert result.exit_code == 0 and result.stdout.strip() == "PC-0001$"
    executor = lab.executor
    assert isinstance(executor, LabExecutor)
    direct = executor.run_script(device.name, lab.system_principal(), "param($n) $n * 2", {"n": 21})
    assert direct.output == [42]


def test_terminating_error_is_one_record_and_exit_code_is_kept() -> None:
    """A terminating error is the same object in errors and terminating_error; `exit N` sets exit_code."""
    device = make_device()
    lab = new_lab(make_fleet([device]), VirtualClock(T0))
    host = DeviceHost(lab, device, lab.admin_principal(device))
    failed = run_script(host, "throw 'boom'")
    assert failed.terminating_error is not None and failed.errors[-1] is failed.terminating_error
    assert run_script(host, "Write-Output 1; exit 3").exit_code == 3
