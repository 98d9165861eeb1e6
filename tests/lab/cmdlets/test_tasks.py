"""ScheduledTasks cmdlets: CIM-shaped objects, registration rules, the module's errors and task runs."""

from __future__ import annotations

from datetime import timedelta

import pytest

from migrator.lab.clock import VirtualClock
from migrator.lab.cmdlets.tasks import NEVER_RUN, TASK_HAS_NOT_RUN
from migrator.lab.executor import DeviceHost
from migrator.lab.model import Device
from migrator.lab.shell import PowerShellError, PSObject
from migrator.lab.windows import Lab
from tests.lab.cmdlets.conftest import run

NS = "Microsoft.Management.Infrastructure.CimInstance#Root/Microsoft/Windows/TaskScheduler/"


def _parts(host: DeviceHost, user: str, logon: str = "Interactive") -> dict[str, PSObject]:
    [action] = run(host, "New-ScheduledTaskAction", Execute="whoami.exe", Argument="/upn").output
    [principal] = run(host, "New-ScheduledTaskPrincipal", UserId=user, LogonType=logon, RunLevel="Limited").output
    [settings] = run(host, "New-ScheduledTaskSettingsSet", AllowStartIfOnBatteries=True, Hidden=True).output
    return {"Action": action, "Principal": principal, "Settings": settings}


def test_builders_emit_cim_objects(admin: DeviceHost) -> None:
    """New-ScheduledTask* return the module's CIM classes with their properties."""
    parts = _parts(admin, "CORP\\alice")
    assert parts["Action"].type_names[0] == NS + "MSFT_TaskExecAction"
    assert parts["Action"]["Execute"] == "whoami.exe" and parts["Action"]["Arguments"] == "/upn"
    assert parts["Principal"].type_names[0] == NS + "MSFT_TaskPrincipal2"
    assert parts["Principal"]["LogonType"] == "Interactive" and parts["Principal"]["Id"] == "Author"
    assert parts["Settings"]["DisallowStartIfOnBatteries"] is False and parts["Settings"]["Hidden"] is True
    assert parts["Settings"]["ExecutionTimeLimit"] == "PT72H"
    [trigger] = run(admin, "New-ScheduledTaskTrigger", AtLogOn=True, User="CORP\\bob").output
    assert trigger.type_names[0] == NS + "MSFT_TaskLogonTrigger" and trigger["UserId"] == "CORP\\bob"


def test_bad_logon_type_is_a_binding_error(admin: DeviceHost) -> None:
    """An unknown -LogonType fails argument transformation like the CDXML enum does."""
    with pytest.raises(PowerShellError) as caught:
        run(admin, "New-ScheduledTaskPrincipal", UserId="CORP\\alice", LogonType="Batch")
    assert caught.value.record.fully_qualified_error_id == (
        "ParameterArgumentTransformationError,New-ScheduledTaskPrincipal"
    )


def test_register_get_info_and_unregister(admin: DeviceHost, device: Device) -> None:
    """Registering stores the task (author = caller); Get/Info show it; Unregister removes it."""
    [task] = run(
        admin,
        "Register-ScheduledTask",
        TaskName="Migrator-Probe",
        TaskPath="\\Migrator\\",
        **_parts(admin, "CORP\\alice"),
    ).output
    assert task.type_names[0] == NS + "MSFT_ScheduledTask"
    assert task["State"] == "Ready" and task["URI"] == "\\Migrator\\Migrator-Probe"
    assert task["Author"] == "LAB\\migrator-admin"
    assert task["Principal"]["UserId"] == "CORP\\alice"
    [stored] = device.tasks
    assert stored.user_id == "CORP\\alice" and stored.logon_type == "Interactive" and stored.path == "\\Migrator\\"
    [got] = run(admin, "Get-ScheduledTask", TaskName=["Migrator-Probe"]).output
    assert got["TaskPath"] == "\\Migrator\\"
    [info] = run(admin, "Get-ScheduledTaskInfo", InputObject=got).output
    assert info["LastTaskResult"] == TASK_HAS_NOT_RUN and info["LastRunTime"] == NEVER_RUN
    assert info.type_names[0] == NS + "MSFT_TaskDynamicInfo"
    assert run(admin, "Unregister-ScheduledTask", TaskName=["Migrator-Probe"], Confirm=False).errors == []
    assert device.tasks == []


def test_register_existing_without_force(admin: DeviceHost) -> None:
    """A second registration fails with HRESULT 0x800700b7 unless -Force replaces the task."""
    run(admin, "Register-ScheduledTask", TaskName="T", **_parts(admin, "SYSTEM", "ServiceAccount"))
    with pytest.raises(PowerShellError) as caught:
        run(admin, "Register-ScheduledTask", TaskName="T", **_parts(admin, "SYSTEM", "ServiceAccount"))
    record = caught.value.record
    assert record.message == "Cannot create a file when that file already exists."
    assert record.fully_qualified_error_id == "HRESULT 0x800700b7,Register-ScheduledTask"
    assert record.category == "ResourceExists"
    assert record.exception_type == "Microsoft.Management.Infrastructure.CimException"
    assert run(admin, "Register-ScheduledTask", TaskName="T", Force=True, **_parts(admin, "SYSTEM")).errors == []


def test_register_for_unknown_account(admin: DeviceHost) -> None:
    """An account Windows cannot resolve fails with "No mapping between account names and security IDs"."""
    with pytest.raises(PowerShellError) as caught:
        run(admin, "Register-ScheduledTask", TaskName="T", **_parts(admin, "CORP\\mallory"))
    assert caught.value.record.message == "No mapping between account names and security IDs was done."
    assert caught.value.record.fully_qualified_error_id == "HRESULT 0x80070534,Register-ScheduledTask"


def test_standard_user_cannot_register_for_others(alice: DeviceHost) -> None:
    """A standard user may register tasks for themselves, not for another account."""
    assert run(alice, "Register-ScheduledTask", TaskName="Mine", **_parts(alice, "CORP\\alice")).errors == []
    with pytest.raises(PowerShellError) as caught:
        run(alice, "Register-ScheduledTask", TaskName="Theirs", **_parts(alice, "CORP\\bob"))
    assert caught.value.record.fully_qualified_error_id == "HRESULT 0x80070005,Register-ScheduledTask"


def test_missing_task_errors(admin: DeviceHost) -> None:
    """Get-ScheduledTask misses with the CDXML query error; Start-ScheduledTask with file-not-found."""
    result = run(admin, "Get-ScheduledTask", TaskName=["X"])
    assert result.error.message == (
        "No MSFT_ScheduledTask objects found with property 'TaskName' equal to 'X'.  "
        "Verify the value of the property and retry."
    )
    assert result.error.fully_qualified_error_id == "CmdletizationQuery_NotFound_TaskName,Get-ScheduledTask"
    assert result.error.category == "ObjectNotFound"
    assert run(admin, "Get-ScheduledTask", TaskName=["X*"]).errors == []  # wildcards do not complain
    started = run(admin, "Start-ScheduledTask", TaskName=["X"])
    assert started.error.fully_qualified_error_id == "HRESULT 0x80070002,Start-ScheduledTask"
    gone = run(admin, "Unregister-ScheduledTask", TaskName=["X"], Confirm=False)
    assert gone.error.fully_qualified_error_id == "CmdletizationQuery_NotFound_TaskName,Unregister-ScheduledTask"


def test_interactive_task_without_session_does_nothing(admin: DeviceHost, device: Device, clock: VirtualClock) -> None:
    """Start-ScheduledTask on an Interactive task of a user with no session leaves it Ready with 0x41303."""
    run(admin, "Register-ScheduledTask", TaskName="ForBob", **_parts(admin, "CORP\\bob"))
    run(admin, "Start-ScheduledTask", TaskName=["ForBob"])
    clock.advance(5)
    [info] = run(admin, "Get-ScheduledTaskInfo", TaskName=["ForBob"]).output
    assert info["LastTaskResult"] == TASK_HAS_NOT_RUN
    assert device.tasks[0].state == "Ready"


def test_start_runs_as_the_user_a_second_later(admin: DeviceHost, device: Device, clock: VirtualClock) -> None:
    """Start-ScheduledTask: Windows shows the task Running (LastTaskResult 0x41301) at once; its action runs as
    its user about a second later, then the task is Ready with the action's exit code."""
    run(admin, "Register-ScheduledTask", TaskName="AsAlice", **_parts(admin, "CORP\\alice"))
    run(admin, "Start-ScheduledTask", TaskName=["AsAlice"])
    assert run(admin, "Get-ScheduledTask", TaskName=["AsAlice"]).output[0]["State"] == "Running"
    assert run(admin, "Get-ScheduledTaskInfo", TaskName=["AsAlice"]).output[0]["LastTaskResult"] == 0x41301
    clock.advance(2)
    [info] = run(admin, "Get-ScheduledTaskInfo", TaskName=["AsAlice"]).output
    assert info["LastTaskResult"] == 0 and info["LastRunTime"] == clock.now() - timedelta(seconds=1)
    assert run(admin, "Get-ScheduledTask", TaskName=["AsAlice"]).output[0]["State"] == "Ready"
    task_runs = [c for c in device.counters.commands if c.kind == "task"]
    assert [(c.principal, c.command) for c in task_runs] == [("corp\\alice", "whoami.exe /upn")]
    assert device.users[0].counters.tasks_run == 1


def test_disable_enable_and_once_trigger(admin: DeviceHost, device: Device, clock: VirtualClock, lab: Lab) -> None:
    """A disabled task does not start; a Once trigger runs the task at its time on the clock."""
    parts = _parts(admin, "SYSTEM", "ServiceAccount")
    [trigger] = run(admin, "New-ScheduledTaskTrigger", Once=True, At=clock.now() + timedelta(minutes=5)).output
    run(admin, "Register-ScheduledTask", TaskName="Later", Trigger=[trigger], **parts)
    [disabled] = run(admin, "Disable-ScheduledTask", TaskName=["Later"]).output
    assert disabled["State"] == "Disabled"
    refused = run(admin, "Start-ScheduledTask", TaskName=["Later"])
    assert refused.error.fully_qualified_error_id == "HRESULT 0x80041326,Start-ScheduledTask"
    run(admin, "Enable-ScheduledTask", TaskName=["Later"])
    [info] = run(admin, "Get-ScheduledTaskInfo", TaskName=["Later"]).output
    assert info["NextRunTime"] == clock.now() + timedelta(minutes=5)
    clock.advance(301)
    assert device.tasks[0].last_run_time == clock.now() - timedelta(seconds=1)
    assert [c.principal for c in device.counters.commands if c.kind == "task"] == ["nt authority\\system"]
