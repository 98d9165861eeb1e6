"""ipconfig, cmd's ver/set/dir, schtasks /query and Get-Service through unmodified pywinrm and pypsrp (item 3 of
issue 11). Layouts: ``tests/lab/outputs/``."""

from __future__ import annotations

import pytest

from migrator.lab import boundary
from migrator.lab.model import Device
from tests.integration.clients import run_cmd, run_ps, runspace_pool, winrm_session
from tests.integration.conftest import LabHandle

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _hybrid(lab: LabHandle) -> Device:
    return lab.first(lambda d: d.join_type == "hybrid" and d.dc_reachable)


def test_ipconfig_all_describes_the_devices_adapter(lab: LabHandle) -> None:
    """ipconfig /all: the host, the DNS suffix, the address the lab answers on and the DC as DNS server."""
    device = _hybrid(lab)
    domain = lab.runtime.lab.domain_of(device)
    assert domain is not None
    code, out, err = run_cmd(winrm_session(lab, device.name), "ipconfig", ("/all",))
    lines = out.split("\r\n")
    assert (code, err) == (0, "")
    assert lines[:3] == ["", "Windows IP Configuration", ""]
    assert f"   Host Name . . . . . . . . . . . . : {device.name}" in lines
    assert f"   Primary Dns Suffix  . . . . . . . : {device.domain}" in lines
    assert "Ethernet adapter Ethernet:" in lines
    assert f"   IPv4 Address. . . . . . . . . . . : {device.address}(Preferred) " in lines
    assert f"   DNS Servers . . . . . . . . . . . : {domain.dc_address}" in lines
    assert all(line[36:39] == " : " for line in lines if line.startswith("   "))
    code, _, err = run_cmd(winrm_session(lab, device.name), "ipconfig", ("/release",))
    assert code == boundary.EXIT_CODE and boundary.PHRASE in err


def test_cmd_ver_set_and_dir(lab: LabHandle) -> None:
    """cmd's built-ins: the version banner, the environment block and a folder listing."""
    device = _hybrid(lab)
    session = winrm_session(lab, device.name)
    version = f"Microsoft Windows [Version 10.0.{device.os.build}.{device.os.ubr}]"
    assert run_cmd(session, "ver") == (0, f"\r\n{version}\r\n", "")
    assert run_cmd(session, "set", ("COMPUTERNAME",)) == (0, f"COMPUTERNAME={device.name}\r\n", "")
    assert run_cmd(session, "set LABVAR=1 & set LABVAR")[1] == "LABVAR=1\r\n"
    code, _, err = run_cmd(session, "set", ("LABNOPE",))
    assert (code, err) == (1, "Environment variable LABNOPE not defined\r\n")
    everything = run_cmd(session, "set")[1].split("\r\n")[:-1]
    assert everything == sorted(everything, key=lambda line: line.split("=")[0].casefold())
    code, out, _ = run_cmd(session, "echo hello> C:\\ProgramData\\lab-dir.txt & dir C:\\ProgramData")
    lines = out.split("\r\n")
    assert code == 0
    assert lines[:5] == [" Volume in drive C has no label.", lines[1], "", " Directory of C:\\ProgramData", ""]
    assert any(line.endswith(" 8 lab-dir.txt") for line in lines)
    assert any(line.strip().endswith("bytes free") for line in lines)
    assert run_cmd(session, "dir", ("/b", "C:\\ProgramData"))[1].split("\r\n").count("lab-dir.txt") == 1
    code, _, err = run_cmd(session, "dir", ("/s", "C:\\"))
    assert code == boundary.EXIT_CODE and boundary.PHRASE in err


def test_schtasks_query_verbose_list_reads_the_registered_task(lab: LabHandle) -> None:
    """A task registered with the ScheduledTasks cmdlets, as schtasks /query /tn ... /v /fo list prints it."""
    device = _hybrid(lab)
    script = (
        "$a = New-ScheduledTaskAction -Execute 'cmd.exe' -Argument '/c ver'; "
        "$p = New-ScheduledTaskPrincipal -UserId 'SYSTEM' -LogonType ServiceAccount; "
        "Register-ScheduledTask -TaskName 'lab-schtasks' -TaskPath '\\lab\\' -Action $a -Principal $p -Force | Out-Null"
    )
    with runspace_pool(lab, device.name) as pool:
        assert not run_ps(pool, script).had_errors
        code, out, err = run_cmd(
            winrm_session(lab, device.name), "schtasks", ("/query", "/tn", "\\lab\\lab-schtasks", "/v", "/fo", "list")
        )
        run_ps(pool, "Unregister-ScheduledTask -TaskName 'lab-schtasks' -TaskPath '\\lab\\' -Confirm:$false")
    lines = out.split("\r\n")
    assert (code, err) == (0, "")
    assert lines[:3] == ["", "Folder: \\lab", f"HostName:                             {device.name}"]
    fields = {line[:38].rstrip().rstrip(":"): line[38:] for line in lines[2:] if line}
    assert fields["TaskName"] == "\\lab\\lab-schtasks"
    assert fields["Status"] == "Ready"
    assert fields["Last Result"] == "267011" and fields["Last Run Time"] == "11/30/1999 12:00:00 AM"
    assert fields["Task To Run"] == "cmd.exe /c ver"
    assert fields["Run As User"] == "SYSTEM" and fields["Logon Mode"] == "Interactive/Background"
    code, _, err = run_cmd(winrm_session(lab, device.name), "schtasks", ("/query", "/tn", "\\lab\\nope"))
    assert (code, err) == (1, "ERROR: The system cannot find the file specified.\r\n")


def test_get_service_answers_for_the_services_the_migration_uses(lab: LabHandle) -> None:
    """Get-Service WinRM/Netlogon/NgcSvc: ServiceController objects; listing every service is refused."""
    device = _hybrid(lab)
    with runspace_pool(lab, device.name) as pool:
        result = run_ps(pool, "Get-Service WinRM, Netlogon, NgcSvc | ForEach-Object { $_.Name + '=' + $_.Status }")
        assert result.output == ["WinRM=Running", "Netlogon=Running", "NgcSvc=Running"]
        table = run_ps(pool, "Get-Service WinRM | Out-String").output[0].split("\r\n")
        assert table[1:4] == [
            "Status   Name               DisplayName",
            "------   ----               -----------",
            "Running  WinRM              Windows Remote Management (WS-Manag...",
        ]
        assert run_ps(pool, "Get-Service").error_ids == [boundary.ERROR_ID]
