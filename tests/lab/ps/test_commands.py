"""Commands: device cmdlets through the binder, common parameters and error actions, pipeline binding,
native commands (argument mode, stdout lines, stderr records, $LASTEXITCODE), CommandNotFound."""

from __future__ import annotations

from typing import Any

import pytest

from migrator.lab.shell import CmdletSpec, ErrorRecord, Param


def calls(host: Any, name: str) -> list[Any]:
    return [params for command, params in host.journal if command == name]


def test_binding_by_name_prefix_alias_and_position(out: Any, host: Any) -> None:
    """Exact names, unambiguous prefixes, cmdlet aliases and positions bind the same parameter."""
    out("Get-Thing -Name a; Get-Thing -Na b; gth c; Get-Thing d -Cou 1")
    assert [c["Name"] for c in calls(host, "Get-Thing")] == ["a", "b", "c", "d"]
    assert calls(host, "Get-Thing")[3]["Count"] == 1


def test_switches_and_kind_coercion(out: Any, host: Any) -> None:
    """-Switch, -Switch:$false, string[] from a scalar, int from a string, datetime from a string."""
    out(
        "Get-Thing -Warn:$false -Count '1' -Since '2024-01-02' | Out-Null\n"
        "Set-Thing x -Tags one -Enabled 1 -Options @{a=1}"
    )
    (get,) = calls(host, "Get-Thing")
    assert get["Warn"] is False and get["Count"] == 1 and get["Since"].year == 2024
    (set_,) = calls(host, "Set-Thing")
    assert set_["Tags"] == ["one"] and set_["Enabled"] is True and set_["Options"]["a"] == 1
    assert "PassThru" not in set_


@pytest.mark.parametrize(
    ("script", "error_id", "message"),
    [
        (
            "Get-Thing -Nope 1",
            "NamedParameterNotFound,Get-Thing",
            "A parameter cannot be found that matches parameter name 'Nope'.",
        ),
        (
            "Set-Thing",
            "MissingMandatoryParameter,Set-Thing",
            "Cannot process command because of one or more missing mandatory parameters: Name.",
        ),
        (
            "Get-Thing -Count",
            "MissingArgument,Get-Thing",
            "Missing an argument for parameter 'Count'. Specify a parameter of type 'System.Int32' and try again.",
        ),
        (
            "Get-Thing a b",
            "PositionalParameterNotFound,Get-Thing",
            "A positional parameter cannot be found that accepts argument 'b'.",
        ),
        (
            "Set-Thing x -Enabled 'yes'",
            "ParameterArgumentTransformationError,Set-Thing",
            "Boolean parameters accept only",
        ),
        ("Get-Thing -Name a -Name b", "ParameterAlreadyBound,Get-Thing", "specified more than once"),
    ],
)
def test_binding_errors(ps: Any, host: Any, script: str, error_id: str, message: str) -> None:
    """Binding failures are ParameterBindingException records with Windows' ids; the cmdlet does not run."""
    result = ps(script + "\n'next'")
    assert result.output == ["next"]
    (record,) = result.errors
    assert record.fully_qualified_error_id == error_id
    assert message in record.message
    assert record.exception_type == "System.Management.Automation.ParameterBindingException"
    assert record.category == "InvalidArgument"
    assert host.journal == []


def test_ambiguous_prefix(ps: Any) -> None:
    """A prefix matching two parameters (here one is a common parameter) is ambiguous."""
    result = ps("Set-Thing x -V 1")
    assert result.errors[0].fully_qualified_error_id == "AmbiguousParameter,Set-Thing"
    assert "Possible matches include: -Value -Verbose." in result.errors[0].message


def test_pipeline_binding_by_value_and_property_name(out: Any, host: Any) -> None:
    """The cmdlet runs once per input object; by-value and by-property-name binding both apply."""
    assert out("'v1', 'v2' | Set-Thing -Name n -PassThru") == ["n=v1", "n=v2"]
    assert out("[pscustomobject]@{ Name = 'from-prop' } | Set-Thing -PassThru")[0].startswith("from-prop=")
    assert len(calls(host, "Set-Thing")) == 3


def test_pipeline_input_to_a_cmdlet_without_pipeline_parameters(ps: Any) -> None:
    """Objects piped to a cmdlet that takes no pipeline input are InputObjectNotBound errors."""
    result = ps("1 | Get-Thing")
    assert result.errors[0].fully_qualified_error_id == "InputObjectNotBound,Get-Thing"


def test_splatting(out: Any, host: Any) -> None:
    """@hashtable splats named parameters (switches as $true), @array positional ones."""
    out("$p = @{ Name = 'x'; Count = 1; Warn = $true }; Get-Thing @p | Out-Null; $a = @('y'); Get-Thing @a | Out-Null")
    first, second = calls(host, "Get-Thing")
    assert first == {"Name": "x", "Count": 1, "Warn": True}
    assert second == {"Name": "y"}


def test_error_action_semantics(ps: Any) -> None:
    """Continue writes, SilentlyContinue only records in $Error, Ignore drops, Stop ends the script."""
    result = ps(
        "Get-Thing -Name missing\n"
        "Get-Thing -Name missing -ErrorAction SilentlyContinue\n"
        "Get-Thing -Name missing -ea Ignore\n"
        "$Error.Count\n"
        "Get-Thing -Name missing -ErrorAction Stop\n"
        "'not reached'"
    )
    assert result.output == [2]
    assert len(result.errors) == 2
    assert result.terminating_error is not None
    assert result.terminating_error.fully_qualified_error_id == "ThingNotFound,Lab.GetThingCommand"
    assert result.terminating_error.activity == "Get-Thing"


def test_error_action_preference_stop_in_try(out: Any) -> None:
    """$ErrorActionPreference = 'Stop' makes non-terminating errors catchable, with their own exception type."""
    script = """
    $ErrorActionPreference = 'Stop'
    try { Get-Thing -Name missing; 'no' }
    catch [System.Management.Automation.ItemNotFoundException] { 'caught ' + $_.CategoryInfo.Category }
    """
    assert out(script) == ["caught ObjectNotFound"]


def test_error_variable(out: Any) -> None:
    """-ErrorVariable collects the command's errors (and +name appends)."""
    script = """
    Get-Thing -Name missing -ErrorAction SilentlyContinue -ErrorVariable problems
    $problems.Count
    $problems[0].Exception.Message
    Get-Thing -Name missing -ErrorAction SilentlyContinue -ErrorVariable +problems
    $problems.Count
    """
    assert out(script) == [1, "Cannot find thing 'missing'.", 2]


def test_terminating_cmdlet_error_is_statement_terminating(ps: Any) -> None:
    """A cmdlet's PowerShellError fails its statement; -ErrorAction SilentlyContinue does not hide it."""
    result = ps("Get-Thing -Name boom -ErrorAction SilentlyContinue\n'after'")
    assert result.output == ["after"]
    assert result.errors[0].fully_qualified_error_id == "ThingExploded,Lab.GetThingCommand"


def test_warning_verbose_and_information_streams(ps: Any) -> None:
    """Warnings by default, verbose only with -Verbose or $VerbosePreference, Write-Host always; a
    Write-Information under SilentlyContinue is recorded, not displayed."""
    result = ps(
        "Get-Thing -Warn -Count 0\nGet-Thing -Count 0 -Verbose\n"
        "Get-Thing -Warn -Count 0 -WarningAction SilentlyContinue\n"
        "Write-Verbose 'quiet'\n$VerbosePreference = 'Continue'\nWrite-Verbose 'loud'\n"
        "Write-Host 'to host' -ForegroundColor Red\n"
        "Write-Information 'not shown'\nWrite-Information 'shown' -InformationAction Continue"
    )
    assert result.warnings == ["thing is old"]
    assert result.verbose == ["Getting *", "loud"]
    shown = [(r.text, r.source, r.tags) for r in result.information if r.displayed]
    assert shown == [("to host", "Write-Host", ("PSHOST",)), ("shown", "Write-Information", ())]
    assert [r.text for r in result.information if not r.displayed] == ["not shown"]
    assert result.errors == [] and not result.had_errors


def test_command_not_found(ps: Any) -> None:
    """Unknown commands fail with Windows' CommandNotFoundException text; the script continues."""
    result = ps("Foo-Bar -x 1\n'after'")
    assert result.output == ["after"]
    (record,) = result.errors
    assert record.message == (
        "The term 'Foo-Bar' is not recognized as the name of a cmdlet, function, script file, or operable program. "
        "Check the spelling of the name, or if a path was included, verify that the path is correct and try again."
    )
    assert record.fully_qualified_error_id == "CommandNotFoundException"
    assert record.category == "ObjectNotFound"
    assert record.exception_type == "System.Management.Automation.CommandNotFoundException"


def test_native_output_lines_and_exit_code(out: Any, host: Any) -> None:
    """Native stdout becomes lines (one line -> a string), $LASTEXITCODE and $? follow the exit code."""
    script = """
    $lines = dsregcmd /status
    $lines.Count
    $lines[3].Trim()
    $one = & 'oneline'
    $one
    $LASTEXITCODE; $?
    """
    assert out(script) == [4, "AzureAdJoined : YES", "only line", 0, True]
    assert host.journal[0] == ("native", ("dsregcmd", ["/status"], None))


def test_native_stderr_and_redirection(ps: Any) -> None:
    """stderr lines are NativeCommandError records; 2>&1 merges them into the output as ErrorRecords."""
    result = ps("failing.exe\n$?\n$LASTEXITCODE")
    assert result.output == ["partial", False, 5]
    assert [e.fully_qualified_error_id for e in result.errors] == ["NativeCommandError", "NativeCommandErrorMessage"]
    assert result.errors[0].message == "first problem"
    assert result.errors[0].exception_type == "System.Management.Automation.RemoteException"
    merged = ps(
        "$all = failing.exe 2>&1\n$all.Count\n"
        "$all[1] -is [System.Management.Automation.ErrorRecord]\n$all[1].Exception.Message"
    )
    assert merged.output == [3, True, "first problem"]
    assert merged.errors == []
    quiet = ps("failing.exe 2>$null")
    assert quiet.output == ["partial"] and quiet.errors == []


def test_native_argument_mode(out: Any, host: Any) -> None:
    """Bare words, quoted strings, variables, arrays splatted, -param:value; $null and '' dropped (5.1)."""
    script = """
    $dom = 'corp.contoso.com'; $many = @('x', 'y')
    echoargs /dsgetdc:$dom 'two words' "q=$dom" $many -flag -opt:3 $null ''
    """
    assert out(script) == ["/dsgetdc:corp.contoso.com", "two words", "q=corp.contoso.com", "x", "y", "-flag", "-opt:3"]


def test_native_stdin_from_pipeline(out: Any, host: Any) -> None:
    """Objects piped to a native command arrive as text lines on stdin."""
    out("'a', 'b' | echoargs")
    assert host.journal[-1] == ("native", ("echoargs", [], "a\r\nb\r\n"))


def test_device_cmdlet_wins_over_lab_cmdlet(out: Any, host: Any) -> None:
    """A device cmdlet with a lab cmdlet's name is the one that runs."""

    def device_test_path(ctx: Any, params: dict[str, Any]) -> Any:
        yield f"device:{params['Path']}"

    host.add_cmdlet(CmdletSpec("Test-Path", (Param("Path", "string", position=0),), device_test_path))
    assert out("Test-Path 'HKLM:\\SOFTWARE\\X'") == ["device:HKLM:\\SOFTWARE\\X"]


def test_lab_test_path_without_device(out: Any, ps: Any) -> None:
    """The lab's Test-Path answers for env:/variable:/function: and refuses registry paths."""
    assert out("$v = 1; Test-Path env:COMPUTERNAME; Test-Path variable:v; Test-Path env:NOPE") == [True, True, False]
    result = ps("Test-Path 'HKLM:\\SOFTWARE'")
    assert result.terminating_error is not None
    assert result.terminating_error.fully_qualified_error_id == "NotModelledByLab"


def test_write_error_records(ps: Any) -> None:
    """Write-Error: WriteErrorException, -ErrorId/-Category, the function name suffix in the FQEID."""
    result = ps(
        "Write-Error 'plain'\n"
        "function Fail { Write-Error -Message 'in function' -ErrorId 'MyId' -Category InvalidData -TargetObject 7 }\n"
        "Fail"
    )
    plain, inner = result.errors
    assert isinstance(plain, ErrorRecord)
    assert plain.fully_qualified_error_id == "Microsoft.PowerShell.Commands.WriteErrorException"
    assert plain.exception_type == "Microsoft.PowerShell.Commands.WriteErrorException"
    assert inner.fully_qualified_error_id == "MyId,Fail"
    assert inner.category == "InvalidData" and inner.target_object == 7


def test_redirection_merges_function_errors(out: Any) -> None:
    """2>&1 on a function call merges errors written inside it into the output."""
    script = "function F { Write-Error 'e1'; 'o1' }; $r = F 2>&1; $r.Count; $r[0].GetType().Name"
    assert out(script) == [2, "ErrorRecord"]
