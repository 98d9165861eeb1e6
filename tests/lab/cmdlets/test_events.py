"""Get-WinEvent over the device's User Device Registration events."""

from __future__ import annotations

from datetime import timedelta

import pytest

from migrator.lab.clock import VirtualClock
from migrator.lab.executor import DeviceHost
from migrator.lab.model import Device
from migrator.lab.shell import Hashtable, PowerShellError
from migrator.lab.windows import UDR_LOG, Lab
from tests.lab.cmdlets.conftest import run


@pytest.fixture
def logged(lab: Lab, device: Device, clock: VirtualClock) -> Device:
    lab.log_event(device, 358, "Windows Hello for Business provisioning will be launched. ")
    clock.advance(60)
    lab.log_event(device, 360, "Windows Hello for Business provisioning will not be launched. ", "Warning")
    clock.advance(60)
    lab.log_event(device, 300, "The Microsoft Passport key was successfully registered with Azure AD. ")
    return device


def test_log_name_newest_first(admin: DeviceHost, logged: Device) -> None:
    """-LogName returns records newest first with EventLogRecord properties."""
    events = run(admin, "Get-WinEvent", LogName=[UDR_LOG]).output
    assert [e["Id"] for e in events] == [300, 360, 358]
    first = events[1]
    assert first["LevelDisplayName"] == "Warning" and first["Level"] == 3
    assert first["ProviderName"] == "Microsoft-Windows-User Device Registration"
    assert first["LogName"] == UDR_LOG and first["MachineName"] == "PC-0001.corp.contoso.com"
    assert first.type_names[0] == "System.Diagnostics.Eventing.Reader.EventLogRecord"
    assert run(admin, "Get-WinEvent", LogName=[UDR_LOG], MaxEvents=1).output[0]["Id"] == 300


def test_filter_hashtable_ids_and_start_time(admin: DeviceHost, logged: Device, clock: VirtualClock) -> None:
    """-FilterHashtable filters by LogName, Id list and StartTime."""
    table = Hashtable({"LogName": UDR_LOG, "Id": [358, 360]})
    assert [e["Id"] for e in run(admin, "Get-WinEvent", FilterHashtable=[table]).output] == [360, 358]
    recent = Hashtable({"LogName": UDR_LOG, "Id": [358, 360], "StartTime": clock.now() - timedelta(seconds=90)})
    assert [e["Id"] for e in run(admin, "Get-WinEvent", FilterHashtable=[recent]).output] == [360]


def test_no_match_is_a_non_terminating_error(admin: DeviceHost, logged: Device) -> None:
    """No matching event writes NoMatchingEventsFound (so -ErrorAction SilentlyContinue gives nothing)."""
    result = run(admin, "Get-WinEvent", FilterHashtable=[Hashtable({"LogName": UDR_LOG, "Id": 362})])
    assert result.output == []
    assert result.error.message == "No events were found that match the specified selection criteria."
    assert (
        result.error.fully_qualified_error_id
        == "NoMatchingEventsFound,Microsoft.PowerShell.Commands.GetWinEventCommand"
    )
    assert result.error.category == "ObjectNotFound"


def test_unknown_log(admin: DeviceHost) -> None:
    """An unknown log name is NoMatchingLogsFound."""
    with pytest.raises(PowerShellError) as caught:
        run(admin, "Get-WinEvent", LogName=["Nope/Admin"])
    assert (
        caught.value.record.message == 'There is not an event log on the localhost computer that matches "Nope/Admin".'
    )
