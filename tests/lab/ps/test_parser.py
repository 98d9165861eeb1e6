"""Parsing on the real grammar: ParseException records, grammar quirks handled as PowerShell does, and
constructs outside the subset refused with NotSupportedByLab."""

from __future__ import annotations

from typing import Any

import pytest

from migrator.lab.ps.errors import NOT_SUPPORTED_EXCEPTION


@pytest.mark.parametrize(
    ("script", "error_id", "line", "column"),
    [
        ("if ($x) {\n  1\n", "MissingEndCurlyBrace", 1, 9),
        ('$a = "abc', "TerminatorExpectedAtEndOfString", 1, 6),
        ("Write-Output (1", "MissingEndParenthesisInExpression", 1, 14),
        ("$h = @{a=1", "IncompleteHashLiteral", 1, 7),
        ("$x =", "ExpectedValueExpression", 1, 5),
        ("a && b", "InvalidEndOfLine", 1, 3),
    ],
)
def test_parse_errors_are_parse_exceptions_with_position(
    ps: Any, script: str, error_id: str, line: int, column: int
) -> None:
    """A script the grammar rejects ends with a ParserError record naming line and column."""
    result = ps(script)
    record = result.terminating_error
    assert record is not None
    assert record.fully_qualified_error_id == error_id
    assert record.category == "ParserError"
    assert record.exception_type == "System.Management.Automation.ParseException"
    assert record.position_message == f"At line:{line} char:{column}"
    assert result.had_errors and result.output == []


def test_parse_error_runs_nothing(ps: Any, host: Any) -> None:
    """Nothing of a script with a syntax error runs, not even the statements before the error."""
    result = ps("Get-Thing\ndsregcmd /status\nif (")
    assert result.terminating_error is not None
    assert host.journal == []


@pytest.mark.parametrize(
    ("script", "construct"),
    [
        ("class Foo { [int]$x }", "class"),
        ("enum Color { Red }", "enum"),
        ("workflow W { 'x' }", "workflow"),
        ("trap { 'x' }\n1", "trap"),
        ("Add-Type -TypeDefinition 'public class X {}'", "'Add-Type'"),
        ("Start-Job { Get-Thing }", "'Start-Job'"),
        ("$x = $using:y", "$using:y"),
        ("Get-Thing > C:\\out.txt", "file redirection"),
        ("[xml]'<a/>'", "[xml]"),
    ],
)
def test_unsupported_constructs_are_refused_not_guessed(ps: Any, host: Any, script: str, construct: str) -> None:
    """Outside the subset the invocation stops with the lab's "not modelled" refusal naming the construct, the lab
    module that refused and the line."""
    result = ps(script)
    record = result.terminating_error
    assert record is not None
    assert record.fully_qualified_error_id == "NotModelledByLab"
    assert record.exception_type == NOT_SUPPORTED_EXCEPTION
    assert construct in record.message
    assert "is not modelled by the lab (lab/" in record.message
    assert record.position_message.startswith("At line:1 char:")
    assert not any(name == "Get-Thing" for name, _ in host.journal)


def test_unsupported_is_not_caught_by_catch(ps: Any) -> None:
    """A catch-all block cannot turn an unsupported construct into success."""
    result = ps("try { [xml]'<a/>' } catch { 'swallowed' }\n'after'")
    assert result.output == []
    assert result.terminating_error is not None
    assert result.terminating_error.fully_qualified_error_id == "NotModelledByLab"


def test_range_at_statement_start_is_an_expression(out: Any) -> None:
    """The grammar reads `1..3` as a command name; PowerShell reads a range."""
    assert out("foreach ($i in 1..3) { $i * 10 }") == [10, 20, 30]
    assert out("$n = 2; $x = 1..$n; $x") == [1, 2]
    assert out("$a = @(5, 6, 7); 0..($a.Count - 1) | ForEach-Object { $a[$_] }") == [5, 6, 7]


def test_number_suffixes_in_any_case(out: Any) -> None:
    """Multiplier suffixes are case-insensitive (10MB == 10mb), at statement start and inside expressions."""
    assert out("10MB") == [10485760]
    assert out("$x = 2KB; $x") == [2048]
    assert out("5000 -gt 4KB") == [True]
    assert out("0x1F") == [31]


def test_switch_clauses_on_one_line(out: Any) -> None:
    """`switch ($x) { 1 {'a'} 2 {'b'} }` is valid PowerShell although the grammar wants terminators."""
    assert out("switch (2) { 1 {'one'} 2 {'two'} default {'other'} }") == ["two"]


def test_bare_word_lists_in_argument_mode(out: Any) -> None:
    """`Name, Id` after a command is one array argument."""
    script = (
        "[pscustomobject]@{Name='n'; Id=1; X=2} | Select-Object Name, Id | "
        "ForEach-Object { $_.PSObject.Properties.Name }"
    )
    assert out(script) == ["Name", "Id"]
    assert out("Write-Output a,b") == ["a", "b"]


def test_foreach_method_call(out: Any) -> None:
    """`.ForEach(...)` is the intrinsic method, not the grammar's `.foreach{}` form."""
    assert out("@(1,2).Where({ $_ -gt 1 }).ForEach({ $_ * 3 })") == [6]


def test_param_block_on_the_same_line(out: Any) -> None:
    """`function f { param($a) $a }` needs no newline after param()."""
    assert out("function f { param($a) $a + 1 }; f 2") == [3]


def test_labelled_break(out: Any) -> None:
    """`break outer` leaves the labelled loop."""
    script = ':outer foreach ($i in 1..3) { foreach ($j in 1..3) { if ($j -eq 2) { break outer }; "$i$j" } }'
    assert out(script) == ["11"]


def test_parse_cache_reuses_trees(out: Any) -> None:
    """The same text twice gives the same result (parsed once, cached)."""
    assert out("1 + 1") == out("1 + 1") == [2]
