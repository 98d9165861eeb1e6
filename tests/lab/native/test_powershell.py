"""powershell.exe: argument handling, stdout rendering, errors on stderr, exit codes (executor is a double)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from migrator.lab import native
from migrator.lab.model import VFile
from migrator.lab.native import powershell
from migrator.lab.shell import ErrorRecord, InvocationResult, NativeResult, Principal
from tests.lab.native.conftest import Fleet, out_lines


@dataclass
class ScriptDouble:
    """Stands in for LabExecutor.run_script: records the call, answers a prepared result."""

    result: InvocationResult = field(default_factory=InvocationResult)
    calls: list[tuple[str, Principal, str, Mapping[str, Any] | None]] = field(default_factory=list)

    def run_script(
        self,
        device_name: str,
        principal: Principal,
        script: str,
        parameters: Mapping[str, Any] | None = None,
        stdin: str | None = None,
    ) -> InvocationResult:
        self.calls.append((device_name, principal, script, parameters))
        return self.result


@pytest.fixture
def runner(fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> ScriptDouble:
    double = ScriptDouble()
    monkeypatch.setattr(fleet.lab, "_executor", double)
    # Out-Default rendering belongs to the interpreter package; a plain one-line-per-object stand-in here.
    monkeypatch.setattr(powershell, "format_default", lambda objects: "".join(f"{o}\n" for o in objects))
    return double


def _run(fleet: Fleet, line: str) -> NativeResult:
    return native.run_command_line(fleet.lab, fleet.hybrid, fleet.as_user(fleet.hybrid, fleet.alice), line)


def test_encoded_command_is_utf16le_base64(fleet: Fleet, runner: ScriptDouble) -> None:
    """-NoProfile -NonInteractive -ExecutionPolicy Bypass -WindowStyle Hidden -EncodedCommand runs the script."""
    script = "Get-Date; 'héllo'"
    encoded = base64.b64encode(script.encode("utf-16-le")).decode()
    runner.result = InvocationResult(output=["one", 2])
    result = _run(
        fleet,
        "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe -NoProfile -NonInteractive "
        f"-ExecutionPolicy Bypass -WindowStyle Hidden -EncodedCommand {encoded}",
    )
    assert runner.calls[0][0] == "PC-HYB" and runner.calls[0][2] == script
    assert runner.calls[0][1].sid == fleet.alice.sid
    assert out_lines(result) == ["one", "2"] and result.exit_code == 0


@pytest.mark.parametrize(
    ("line", "script"),
    [
        (
            'powershell -Command "Get-Item HKLM:\\SOFTWARE | Select-Object Name"',
            "Get-Item HKLM:\\SOFTWARE | Select-Object Name",
        ),
        ("powershell.exe -nop -noni -ep bypass -c Write-Output 1", "Write-Output 1"),
        ("powershell Get-Date", "Get-Date"),
        ("powershell -enc " + base64.b64encode("$x".encode("utf-16-le")).decode(), "$x"),
    ],
)
def test_command_forms(fleet: Fleet, runner: ScriptDouble, line: str, script: str) -> None:
    """-Command takes the rest of the line; parameter prefixes work; a bare argument is an implicit -Command."""
    _run(fleet, line)
    assert runner.calls[-1][2] == script


def test_file_reads_the_device_file_with_parameters(fleet: Fleet, runner: ScriptDouble) -> None:
    """-File runs a script stored on the device and passes named parameters."""
    path = "C:\\ProgramData\\migrator\\step.ps1"
    fleet.hybrid.files[path.casefold()] = VFile(path=path, content="param($Mode) $Mode")
    _run(fleet, f"powershell -NoProfile -File {path} -Mode Delete -Force")
    assert runner.calls[-1][2] == "param($Mode) $Mode"
    assert runner.calls[-1][3] == {"Mode": "Delete", "Force": True}
    missing = _run(fleet, "powershell -File C:\\nope.ps1")
    assert missing.exit_code == -196608 and "to the -File parameter does not exist" in missing.stderr


def test_errors_go_to_stderr_in_normal_view(fleet: Fleet, runner: ScriptDouble) -> None:
    """A terminating error prints message, CategoryInfo and FullyQualifiedErrorId; exit code 1."""
    record = ErrorRecord(
        message="Cannot find path 'C:\\nope' because it does not exist.",
        fully_qualified_error_id="PathNotFound,Microsoft.PowerShell.Commands.GetItemCommand",
        category="ObjectNotFound",
        exception_type="System.Management.Automation.ItemNotFoundException",
        target_object="C:\\nope",
        activity="Get-Item",
        reason="ItemNotFoundException",
    )
    runner.result = InvocationResult(errors=[record], had_errors=True, terminating_error=record)
    result = _run(fleet, "powershell -Command Get-Item C:\\nope")
    assert out_lines(result, "stderr") == [
        "Get-Item : Cannot find path 'C:\\nope' because it does not exist.",
        "    + CategoryInfo          : ObjectNotFound: (C:\\nope:String) [Get-Item], ItemNotFoundException",
        "    + FullyQualifiedErrorId : PathNotFound,Microsoft.PowerShell.Commands.GetItemCommand",
        " ",
    ]
    assert result.exit_code == 1


def test_non_terminating_errors_exit_codes(fleet: Fleet, runner: ScriptDouble) -> None:
    """-Command with errors exits 1; -File with only non-terminating errors exits 0."""
    record = ErrorRecord(message="boom", fully_qualified_error_id="boom")
    runner.result = InvocationResult(output=["x"], errors=[record], had_errors=True)
    assert _run(fleet, "powershell -Command x").exit_code == 1
    fleet.hybrid.files["c:\\programdata\\s.ps1"] = VFile(path="C:\\ProgramData\\s.ps1", content="x")
    file_run = _run(fleet, "powershell -File C:\\ProgramData\\s.ps1")
    assert file_run.exit_code == 0 and "boom" in file_run.stderr


def test_output_redirected_to_a_device_file(fleet: Fleet, runner: ScriptDouble) -> None:
    """A task action's output redirection captures what the script wrote, warnings included."""
    runner.result = InvocationResult(output=['{"NgcSet":true}'], warnings=["careful"], information=["hi"])
    _run(fleet, "powershell -NoProfile -Command x > C:\\ProgramData\\out.json 2>&1")
    content = fleet.hybrid.files["c:\\programdata\\out.json"].content
    assert content == 'hi\r\n{"NgcSet":true}\r\nWARNING: careful\r\n'


def test_bad_encoded_command(fleet: Fleet, runner: ScriptDouble) -> None:
    """Not base64: powershell.exe's argument error and exit code -196608; nothing runs."""
    result = _run(fleet, "powershell -EncodedCommand not*base64")
    assert result.exit_code == -196608 and "not properly encoded" in result.stderr
    assert runner.calls == []


def test_run_native_from_powershell_reaches_cmd(fleet: Fleet) -> None:
    """The interpreter's `& cmd /c ...` runs a command line (arguments re-quoted)."""
    result = native.run_native(
        fleet.lab, fleet.hybrid, fleet.admin(fleet.hybrid), "cmd.exe", ["/c", "echo a b&& hostname"]
    )
    assert out_lines(result) == ["a b", "PC-HYB"]
