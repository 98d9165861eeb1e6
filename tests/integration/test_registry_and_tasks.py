"""HKEY_USERS as Windows lists it and scheduled-task states as Windows reports them, through pypsrp (item 4 of
issue 11)."""

from __future__ import annotations

import pytest

from migrator.lab import boundary
from migrator.lab.model import Device
from tests.integration.clients import run_ps, runspace_pool
from tests.integration.conftest import LabHandle

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _device(lab: LabHandle) -> Device:
    return lab.first(lambda d: d.join_type == "hybrid" and len(d.users) >= 1)


def test_hkey_users_lists_the_loaded_hives(lab: LabHandle) -> None:
    """.DEFAULT, S-1-5-18/19/20, then each loaded profile's SID and its _Classes hive; no SOFTWARE/SYSTEM."""
    device = _device(lab)
    with runspace_pool(lab, device.name) as pool:
        names = run_ps(pool, "Get-ChildItem Registry::HKEY_USERS | ForEach-Object { $_.PSChildName }").output
        admin_sid = run_ps(pool, "[System.Security.Principal.WindowsIdentity]::GetCurrent().User.Value").output
        table = run_ps(pool, "Get-ChildItem Registry::HKEY_USERS | Out-String").output[0]
        every_one_exists = run_ps(
            pool, "Get-ChildItem Registry::HKEY_USERS | ForEach-Object { Test-Path $_.PSPath }"
        ).output
        classes = run_ps(pool, f"Get-ChildItem 'Registry::HKEY_USERS\\{device.users[0].sid}_Classes'")
    assert names[:4] == [".DEFAULT", "S-1-5-18", "S-1-5-19", "S-1-5-20"]
    assert "SOFTWARE" not in names and "SYSTEM" not in names
    sids = {user.sid for user in device.users} | set(admin_sid)
    assert set(names[4:]) == sids | {f"{sid}_Classes" for sid in sids}
    assert names == sorted(names, key=str.casefold)
    assert all(every_one_exists) and len(every_one_exists) == len(names)
    lines = table.split("\r\n")
    assert "    Hive: HKEY_USERS" in lines
    header = lines.index("Name                           Property")
    assert lines[header + 1] == "----                           --------"
    assert lines[header + 2].rstrip() == ".DEFAULT"
    assert classes.error_ids == [boundary.ERROR_ID]


def test_a_started_task_is_running_then_ready_with_its_result(lab: LabHandle) -> None:
    """Start-ScheduledTask → State Running (LastTaskResult 0x41301) → Ready with the action's exit code."""
    device = _device(lab)
    script = r"""
$a = New-ScheduledTaskAction -Execute 'cmd.exe' -Argument '/c exit 3'
$p = New-ScheduledTaskPrincipal -UserId 'SYSTEM' -LogonType ServiceAccount
Register-ScheduledTask -TaskName 'lab-states' -Action $a -Principal $p -Force | Out-Null
$before = (Get-ScheduledTaskInfo -TaskName 'lab-states').LastTaskResult
Start-ScheduledTask -TaskName 'lab-states'
$running = [string](Get-ScheduledTask -TaskName 'lab-states').State
$during = (Get-ScheduledTaskInfo -TaskName 'lab-states').LastTaskResult
while ((Get-ScheduledTask -TaskName 'lab-states').State -eq 'Running') { Start-Sleep -Milliseconds 200 }
$after = [string](Get-ScheduledTask -TaskName 'lab-states').State
$result = (Get-ScheduledTaskInfo -TaskName 'lab-states').LastTaskResult
Unregister-ScheduledTask -TaskName 'lab-states' -Confirm:$false
"$before|$running|$during|$after|$result"
"""
    with runspace_pool(lab, device.name) as pool:
        result = run_ps(pool, script)
    assert not result.had_errors, result.error_text
    assert result.output == ["267011|Running|267009|Ready|3"]
