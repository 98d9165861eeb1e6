"""cmd.exe command lines: operators, redirection into the device's files, built-ins, unknown commands."""

from __future__ import annotations

import pytest

from migrator.lab import native
from migrator.lab.executor import DeviceHost
from migrator.lab.native.cmd import command_line_to_argv, quote_argument, split_pipelines
from migrator.lab.shell import NativeResult
from tests.lab.native.conftest import Fleet, out_lines


def _line(fleet: Fleet, line: str, who: str = "admin") -> NativeResult:
    device = fleet.hybrid
    principal = fleet.admin(device) if who == "admin" else fleet.as_user(device, fleet.alice)
    return native.run_command_line(fleet.lab, device, principal, line)


def _file(fleet: Fleet, path: str) -> str:
    entry = fleet.hybrid.files.get(path.casefold())
    assert entry is not None, f"{path} was not written"
    return entry.content


@pytest.mark.parametrize(
    ("line", "argv"),
    [
        ('a b "c d"', ["a", "b", "c d"]),
        (r'"a\"b" c\\d', ['a"b', r"c\\d"]),
        (r'"x\\" y', ["x\\", "y"]),
        ('"say ""hi"""', ['say "hi"']),
        ("  spaced\targs  ", ["spaced", "args"]),
        ("", []),
    ],
)
def test_command_line_to_argv_rules(line: str, argv: list[str]) -> None:
    """Arguments split as CommandLineToArgvW does (quotes, backslash runs, doubled quotes)."""
    assert command_line_to_argv(line) == argv


@pytest.mark.parametrize("arg", ["plain", "with space", 'quo"te', "trail\\", "tr ail\\", ""])
def test_quote_argument_round_trips(arg: str) -> None:
    """quote_argument is the inverse of the splitter."""
    assert command_line_to_argv(quote_argument(arg)) == [arg]


def test_operators_outside_quotes_only() -> None:
    """&, &&, || and | split commands; inside quotes and after ^ they are text; 2>&1 is a redirection."""
    pipelines = split_pipelines('echo "a & b" ^& c && x 2>&1 || y | z & w')
    assert [(p.operator, p.commands) for p in pipelines] == [
        ("", ['echo "a & b" ^& c ']),
        ("&&", [" x 2>&1 "]),
        ("||", [" y ", " z "]),
        ("&", [" w"]),
    ]


def test_redirect_into_temp_per_principal(fleet: Fleet) -> None:
    """%TEMP% is the caller's; echo keeps the blank before '>' as cmd.exe does; files use CRLF."""
    result = _line(fleet, "echo hello > %TEMP%\\out.txt", who="user")
    assert (result.stdout, result.exit_code) == ("", 0)
    assert _file(fleet, "C:\\Users\\alice\\AppData\\Local\\Temp\\out.txt") == "hello \r\n"


def test_native_output_and_errors_to_a_file(fleet: Fleet) -> None:
    """A native command's stdout and stderr both go to the file with '> file 2>&1'; nothing reaches the console."""
    result = _line(fleet, 'dsregcmd /status > "%ProgramData%\\dsreg.txt" 2>&1 & klist >> %ProgramData%\\dsreg.txt 2>&1')
    assert result.stdout == "" and result.stderr == ""
    content = _file(fleet, "C:\\ProgramData\\dsreg.txt")
    assert "| Device State" in content and "klist failed with 0xc000005f" in content
    assert "\r\n" in content and "\n" not in content.replace("\r\n", "")


def test_append_and_type(fleet: Fleet) -> None:
    """'>>' appends; type prints a file; a missing file is reported on stderr with exit code 1."""
    # The blank before "&&" belongs to the first echo, as with cmd.exe.
    _line(fleet, "echo one> C:\\ProgramData\\log.txt && echo two>>C:\\ProgramData\\log.txt")
    assert out_lines(_line(fleet, "type C:\\ProgramData\\log.txt")) == ["one ", "two"]
    missing = _line(fleet, "type C:\\ProgramData\\nope.txt")
    assert out_lines(missing, "stderr") == ["The system cannot find the file specified."] and missing.exit_code == 1


def test_missing_folder_stops_the_command(fleet: Fleet) -> None:
    """A redirection into a folder that does not exist fails before the command runs."""
    result = _line(fleet, "certutil -deletehellocontainer > C:\\NoSuchDir\\x.txt", who="user")
    assert out_lines(result, "stderr") == ["The system cannot find the path specified."]
    assert result.exit_code == 1 and fleet.alice.container is not None


def test_nul_and_stderr_redirection(fleet: Fleet) -> None:
    """'> nul' discards stdout; '2> file' captures only stderr."""
    assert _line(fleet, "hostname > nul").stdout == ""
    result = _line(fleet, "frobnicate 2> C:\\ProgramData\\err.txt")
    assert result.stderr == "" and result.exit_code == 9009
    assert "'frobnicate' is not recognized" in _file(fleet, "C:\\ProgramData\\err.txt")


def test_unknown_command_text_and_9009(fleet: Fleet) -> None:
    """cmd.exe's exact two-line message and ERRORLEVEL 9009."""
    result = _line(fleet, "foo /bar")
    assert out_lines(result, "stderr") == [
        "'foo' is not recognized as an internal or external command,",
        "operable program or batch file.",
    ]
    assert result.exit_code == 9009


def test_conditional_operators_and_exit(fleet: Fleet) -> None:
    """&& runs on success, || on failure; exit /b N ends the line with N."""
    assert out_lines(_line(fleet, "hostname && echo yes|| echo no")) == ["PC-HYB", "yes"]
    assert out_lines(_line(fleet, "foo 2>nul && echo yes || echo no")) == ["no"]
    result = _line(fleet, "echo before& exit /b 3 & echo after")
    assert out_lines(result) == ["before"] and result.exit_code == 3
    assert _line(fleet, "nltest /dsgetdc:fabrikam.com > nul").exit_code == 1355


def test_cmd_c_with_quotes_and_nested_exit(fleet: Fleet) -> None:
    """cmd /c "..." strips the outer quotes; the nested cmd's exit code becomes the command's."""
    result = _line(fleet, 'cmd /c "whoami && exit /b 4"')
    assert out_lines(result) == ["lab\\migrator-admin"] and result.exit_code == 4
    assert out_lines(_line(fleet, 'cmd.exe /s /c ""C:\\Windows\\System32\\hostname.exe""')) == ["PC-HYB"]


def test_variables_expand_per_principal(fleet: Fleet) -> None:
    """%USERNAME%, %COMPUTERNAME%, %USERPROFILE% follow the principal; unknown names stay as typed."""
    assert out_lines(_line(fleet, "echo %USERNAME%@%COMPUTERNAME% %NOPE%", who="user")) == ["alice@PC-HYB %NOPE%"]
    assert out_lines(_line(fleet, "echo %USERPROFILE%")) == ["C:\\Users\\migrator-admin"]
    system = native.run_command_line(fleet.lab, fleet.hybrid, fleet.lab.system_principal(), "echo %TEMP% %USERNAME%")
    assert out_lines(system) == ["C:\\Windows\\TEMP PC-HYB$"]


def test_task_action_runs_as_the_user(fleet: Fleet) -> None:
    """A task action (cmd line as the signed-in user) deletes the container and logs the output file."""
    result = _line(fleet, "certutil.exe -deleteHelloContainer > %TEMP%\\whfb.log 2>&1", who="user")
    assert result.exit_code == 0 and fleet.alice.container is None
    assert "completed successfully" in _file(fleet, "C:\\Users\\alice\\AppData\\Local\\Temp\\whfb.log")


def test_every_run_is_recorded(fleet: Fleet) -> None:
    """run_command_line and run_native record who ran what."""
    before = len(fleet.hybrid.counters.commands)
    _line(fleet, "hostname")
    native.run_native(fleet.lab, fleet.hybrid, fleet.admin(fleet.hybrid), "klist", ["get", "krbtgt/CORP"])
    records = fleet.hybrid.counters.commands[before:]
    assert [(r.kind, r.command, r.principal) for r in records] == [
        ("native", "hostname", "lab\\migrator-admin"),
        ("native", "klist get krbtgt/CORP", "lab\\migrator-admin"),
    ]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("dsregcmd", True),
        ("DSREGCMD.EXE", True),
        ("C:\\Windows\\System32\\dsregcmd.exe", True),
        ("c:/windows/system32/certutil.exe", True),
        ("C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe", True),
        ("C:\\Temp\\dsregcmd.exe", False),
        ("echo", False),
        ("notepad", False),
    ],
)
def test_has_native(name: str, expected: bool) -> None:
    """Executables by name, with .exe, or by their System32 path, case-insensitively."""
    assert native.has_native(name) is expected


@pytest.mark.parametrize("who", ["admin", "system", "user"])
def test_cmd_variables_agree_with_powershell_env(fleet: Fleet, who: str) -> None:
    """%TEMP%, %USERPROFILE%, ... in a command line name what $env: names in the same principal's script."""
    principal = {
        "admin": fleet.admin(fleet.hybrid),
        "system": fleet.lab.system_principal(),
        "user": fleet.as_user(fleet.hybrid, fleet.alice),
    }[who]
    ours = native.environment(fleet.lab, fleet.hybrid, principal)
    theirs = DeviceHost(fleet.lab, fleet.hybrid, principal).environment()
    for name in ("TEMP", "TMP", "USERPROFILE", "USERNAME", "USERDOMAIN", "COMPUTERNAME", "ProgramData", "APPDATA"):
        assert ours[name] == theirs[name], name
