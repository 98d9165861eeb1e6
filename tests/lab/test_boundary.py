"""The lab's boundary and its list of real Windows names (migrator.lab.boundary, migrator.lab.windows_names)."""

from __future__ import annotations

from migrator.lab import boundary, windows_names
from migrator.lab.native.cmd import NOT_RECOGNIZED_EXIT


def test_the_refusal_names_what_and_where() -> None:
    """One phrase, the refusing module, an error id and an exit code of its own (not cmd's 9009)."""
    refusal = boundary.NotModelledByLab("Version.Revision")
    # The module is the raiser's, inferred from the call site (here the test module itself).
    assert str(refusal) == "'Version.Revision' is not modelled by the lab (tests/lab/test_boundary)"
    assert refusal.record.fully_qualified_error_id == boundary.ERROR_ID == "NotModelledByLab"
    assert refusal.record.exception_type == boundary.EXCEPTION_TYPE
    assert boundary.EXIT_CODE != NOT_RECOGNIZED_EXIT
    explicit = boundary.NotModelledByLab("The term 'ipconfig'", 3, module="lab/native", column=5, target="ipconfig")
    assert explicit.message == "The term 'ipconfig' is not modelled by the lab (lab/native)"
    assert explicit.record.position_message == "At line:3 char:5" and explicit.record.target_object == "ipconfig"
    assert boundary.native_refusal("robocopy") == "'robocopy' is not modelled by the lab (lab/native)."


def test_windows_names_decide_not_recognized_versus_not_modelled() -> None:
    """System32 programs (by name or System32 path), cmd built-ins, in-box cmdlets and aliases, .NET types."""
    for program in ("ipconfig", "IPCONFIG.EXE", "C:\\Windows\\System32\\robocopy.exe", "chcp.com", "schtasks"):
        assert windows_names.is_windows_executable(program), program
    for program in ("frobnicate", "C:\\Tools\\robocopy.exe", "ver"):
        assert not windows_names.is_windows_executable(program), program
    assert all(windows_names.is_cmd_builtin(name) for name in ("ver", "SET", "dir", "mklink", "pushd"))
    assert all(windows_names.is_inbox_command(name) for name in ("New-Module", "get-netadapter", "gsv", "ft"))
    assert not windows_names.is_inbox_command("Frob-Nicate")
    real_types = ("System.Text.UTF8Encoding", "PowerShell", "[System.Management.Automation.Language.Parser]",
                  "Text.UTF8Encoding", "IO.File", "pscredential")  # fmt: skip
    assert all(windows_names.is_dotnet_type(name) for name in real_types)
    assert not any(windows_names.is_dotnet_type(name) for name in ("Frob.Nicate", "Lab.Nothing", "UTF8Encoding"))
