"""Default table formatting, Format-List/Format-Table, .NET types Windows has, ``using namespace`` and New-Module,
through unmodified pypsrp (item 6 of issue 11)."""

from __future__ import annotations

import pytest

from migrator.lab import boundary
from migrator.lab.model import Device
from tests.integration.clients import run_ps, runspace_pool
from tests.integration.conftest import LabHandle

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _device(lab: LabHandle) -> Device:
    return lab.first(lambda d: d.join_type == "hybrid")


def test_out_string_uses_the_default_views(lab: LabHandle) -> None:
    """Win32_OperatingSystem's six columns; registry keys under a Hive line with their values in Property."""
    device = _device(lab)
    with runspace_pool(lab, device.name) as pool:
        os_text = run_ps(pool, "Get-CimInstance Win32_OperatingSystem | Out-String").output[0].split("\r\n")
        run_ps(pool, "New-Item -Path HKLM:\\SOFTWARE\\LabView -Force | Out-Null")
        run_ps(pool, "New-ItemProperty -Path HKLM:\\SOFTWARE\\LabView -Name Enabled -Value 1 -PropertyType DWord")
        run_ps(pool, "New-ItemProperty -Path HKLM:\\SOFTWARE\\LabView -Name Name -Value lab -PropertyType String")
        reg_text = run_ps(pool, "Get-Item HKLM:\\SOFTWARE\\LabView | Out-String").output[0].split("\r\n")
        run_ps(pool, "Remove-Item -Path HKLM:\\SOFTWARE\\LabView -Recurse")
    assert os_text[1].split() == [
        "SystemDirectory",
        "Organization",
        "BuildNumber",
        "RegisteredUser",
        "SerialNumber",
        "Version",
    ]
    assert os_text[3].split()[0] == "C:\\WINDOWS\\system32" and str(device.os.build) in os_text[3]
    assert reg_text[:5] == [
        "",
        "    Hive: HKEY_LOCAL_MACHINE\\SOFTWARE",
        "",
        "",
        "Name                           Property",
    ]
    assert reg_text[5:8] == [
        "----                           --------",
        "LabView                        Enabled : 1",
        "                               Name    : lab",
    ]


def test_format_list_and_format_table(lab: LabHandle) -> None:
    """Format-List's ``Name : value`` lines and Format-Table's columns, as Out-String prints them."""
    with runspace_pool(lab, _device(lab).name) as pool:
        listed = run_ps(pool, "Get-Service WinRM | Format-List Name, Status | Out-String").output[0]
        table = run_ps(pool, "[pscustomobject]@{Name='a'; Value=10} | Format-Table | Out-String").output[0]
        wildcard = run_ps(pool, "Get-Service WinRM | Format-List * | Out-String").output[0]
    assert "Name   : WinRM\r\nStatus : Running\r\n" in listed
    assert "Name Value\r\n---- -----\r\na       10\r\n" in table
    assert "DisplayName         : Windows Remote Management (WS-Management)" in wildcard


def test_types_windows_has_are_modelled_or_refused_never_missing(lab: LabHandle) -> None:
    """UTF8Encoding works; [PowerShell] and the Parser are refused as not modelled; a made-up type is missing."""
    with runspace_pool(lab, _device(lab).name) as pool:
        utf8 = run_ps(pool, "[System.Text.UTF8Encoding]::new($false).GetBytes('é').Count")
        bootstrap = run_ps(
            pool, "try { [Console]::InputEncoding = New-Object Text.UTF8Encoding $false } catch {}; 'ok'"
        )
        powershell = run_ps(pool, "[PowerShell]::Create()")
        parser = run_ps(pool, "[System.Management.Automation.Language.Parser]::ParseInput('1', [ref]$null, [ref]$null)")
        made_up = run_ps(pool, "[Lab.Nothing]::Here")
    assert utf8.output == [2] and bootstrap.output == ["ok"]
    for refused in (powershell, parser):
        assert refused.error_ids == [boundary.ERROR_ID] and boundary.PHRASE in refused.error_text
    assert made_up.error_ids == ["TypeNotFound"]


def test_using_namespace_new_module_and_empty_blocks(lab: LabHandle) -> None:
    """``using namespace`` resolves short names; ``using module`` and New-Module are refused; ``{}`` parses."""
    with runspace_pool(lab, _device(lab).name) as pool:
        using = run_ps(pool, "using namespace System.IO\n[Path]::GetFileName('C:\\x\\y.txt')")
        module = run_ps(pool, "using module PSReadLine\n1")
        new_module = run_ps(pool, "New-Module -ScriptBlock {} | Import-Module")
        empty = run_ps(pool, "$b = {}; & $b; 'parsed'")
    assert using.output == ["y.txt"] and not using.had_errors
    assert module.error_ids == [boundary.ERROR_ID]
    assert new_module.error_ids == [boundary.ERROR_ID] and "'New-Module'" in new_module.error_text
    assert empty.output == ["parsed"]
