"""The lab's explicit boundary, through unmodified pywinrm and pypsrp: what Windows has and the lab does not model
is refused with the one "not modelled by the lab" error; only what Windows lacks too is "not recognized"."""

from __future__ import annotations

import pytest

from migrator.lab import boundary
from tests.integration.clients import encoded, run_cmd, run_ps, runspace_pool, winrm_session
from tests.integration.conftest import LabHandle

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _device(lab: LabHandle) -> str:
    return lab.runtime.fleet.devices[0].name


def test_cmd_refuses_a_real_windows_tool_and_does_not_recognise_a_made_up_one(lab: LabHandle) -> None:
    """robocopy and cmd's ``vol`` exist on Windows: refused with the lab's exit code; ``frobnicate`` is 9009."""
    session = winrm_session(lab, _device(lab))
    code, out, err = run_cmd(session, "robocopy", ("C:\\a", "C:\\b"))
    assert (code, out) == (boundary.EXIT_CODE, "")
    assert err == "'robocopy' is not modelled by the lab (lab/native).\r\n"
    code, _, err = run_cmd(session, "vol")
    assert code == boundary.EXIT_CODE and boundary.PHRASE in err
    code, _, err = run_cmd(session, "frobnicate")
    assert code == 9009
    assert (
        err
        == "'frobnicate' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n"
    )


def test_powershell_refuses_real_cmdlets_types_and_programs(lab: LabHandle) -> None:
    """In-box cmdlets, .NET types and System32 programs the lab lacks: NotModelledByLab, never CommandNotFound."""
    with runspace_pool(lab, _device(lab)) as pool:
        for script, module in (
            ("Get-NetAdapter", "lab/cmdlets"),
            ("New-Module -ScriptBlock { 1 }", "lab/cmdlets"),
            ("netsh advfirewall show allprofiles", "lab/native"),
            ("[System.Xml.Linq.XDocument]::Parse('<a/>')", "lab/ps/"),
        ):
            result = run_ps(pool, script)
            assert result.had_errors, script
            assert result.error_ids[-1] == boundary.ERROR_ID, (script, result.error_text)
            assert f"{boundary.PHRASE} ({module}" in result.error_text, script
        missing = run_ps(pool, "Frob-Nicate")
        assert missing.error_ids == ["CommandNotFoundException"]
        assert "The term 'Frob-Nicate' is not recognized" in missing.error_text
        unknown_type = run_ps(pool, "[Frob.Nicate]::New()")
        assert unknown_type.error_ids == ["TypeNotFound"]
        assert "Unable to find type [Frob.Nicate]" in unknown_type.error_text


def test_a_catch_block_does_not_swallow_the_refusal(lab: LabHandle) -> None:
    """``try { Get-NetAdapter } catch { 'fine' }`` must not turn "not modelled" into success."""
    with runspace_pool(lab, _device(lab)) as pool:
        result = run_ps(pool, "try { Get-NetAdapter } catch { 'fine' }; 'after'")
    assert result.output == [] and result.error_ids == [boundary.ERROR_ID]


def test_powershell_exe_prints_errors_with_their_position_lines(lab: LabHandle) -> None:
    """powershell.exe's stderr as Windows PowerShell 5.1 prints it: "At line", "+ <line>", "+ ~~~~"."""
    session = winrm_session(lab, _device(lab))
    script = "'before'\nFrob-Nicate -Now\nGet-NetAdapter | Select-Object Name"
    code, out, err = run_cmd(session, "powershell.exe", ("-NoProfile", "-EncodedCommand", encoded(script)))
    assert code == 1 and out == "before\r\n"
    lines = err.split("\r\n")
    first = lines.index("At line:2 char:1")
    assert lines[first - 1].startswith("Frob-Nicate : The term 'Frob-Nicate' is not recognized as the name of a ")
    assert lines[first + 1 : first + 3] == ["+ Frob-Nicate -Now", "+ ~~~~~~~~~~~"]
    assert "    + FullyQualifiedErrorId : CommandNotFoundException" in lines
    second = lines.index("At line:3 char:1")
    assert lines[second - 1] == "Get-NetAdapter : The term 'Get-NetAdapter' is not modelled by the lab (lab/cmdlets)"
    assert lines[second + 1 : second + 3] == ["+ Get-NetAdapter | Select-Object Name", "+ ~~~~~~~~~~~~~~"]
    assert "    + FullyQualifiedErrorId : NotModelledByLab" in lines


def test_psrp_error_records_carry_the_position_message(lab: LabHandle) -> None:
    """Over PSRP an error's InvocationInfo has PowerShell's PositionMessage, "+ <line>" and "+ ~~~~" included."""
    with runspace_pool(lab, _device(lab)) as pool:
        result = run_ps(pool, "'before'\nFrob-Nicate -Now")
        refused = run_ps(pool, "Get-NetAdapter | Select-Object Name")
    (record,) = result.errors
    assert record.invocation_position_message == "At line:2 char:1\n+ Frob-Nicate -Now\n+ ~~~~~~~~~~~"
    assert record.invocation_line == "Frob-Nicate -Now" and record.invocation_script_line_number == 2
    (refusal,) = refused.errors
    assert refusal.invocation_position_message.split("\n")[1:] == [
        "+ Get-NetAdapter | Select-Object Name",
        "+ ~~~~~~~~~~~~~~",
    ]
