"""The language subset: variables and scopes, strings, numbers, collections, casts, operators, control flow,
functions, script blocks and error handling, each checked against Windows PowerShell 5.1 behaviour."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from migrator.lab.shell import Hashtable, PSObject


def test_variables_and_automatic_values(out: Any) -> None:
    """$null/$true/$false, $PSVersionTable (5.1 Desktop), $env: reads, assignment and read back."""
    assert out("$x = 5; $x; $null; $true; $false") == [5, None, True, False]
    assert out("$PSVersionTable.PSVersion.Major; $PSVersionTable.PSVersion.Minor; $PSVersionTable.PSEdition") == [
        5,
        1,
        "Desktop",
    ]
    assert out("$env:computername; $env:NOPE -eq $null") == ["PC-0001", True]


def test_env_assignment_stays_in_the_runspace(out: Any, host: Any) -> None:
    """$env:X = ... is visible to the script and does not change the host's environment."""
    assert out("$env:MIGRATOR_X = 'on'; $env:migrator_x; ${env:MIGRATOR_X}") == ["on", "on"]
    assert "MIGRATOR_X" not in host.env


def test_scopes_script_global_local(out: Any) -> None:
    """A function's assignment is local; $script: reaches the script scope; lookup is dynamic."""
    script = """
    $x = 'outer'
    function Set-Local { $x = 'inner'; $x }
    function Set-Script { $script:x = 'changed' }
    function Read-Caller { $y }
    Set-Local
    $x
    Set-Script
    $x
    $y = 'dynamic'
    Read-Caller
    """
    assert out(script) == ["inner", "outer", "changed", "dynamic"]


def test_string_expansion(out: Any) -> None:
    """$var, $($expr), ${name}, $env:, and $obj.Prop (not expanded beyond the variable)."""
    script = '''
    $name = 'World'; $o = [pscustomobject]@{ P = 1 }
    "Hello $name!"
    "sum=$(1 + 2)"
    "${name}s"
    "user=$env:USERNAME"
    "prop=$o.P"
    "prop=$($o.P)"
    'literal $name'
    "a`tb`nc `$x ""q"""
    '''
    assert out(script) == [
        "Hello World!",
        "sum=3",
        "Worlds",
        "user=admin",
        "prop=@{P=1}.P",
        "prop=1",
        "literal $name",
        'a\tb\nc $x "q"',
    ]


def test_here_strings(out: Any) -> None:
    """Expandable and verbatim here-strings keep inner quotes and line breaks."""
    script = '$n = 3\n$a = @"\nline "one" $n\nline two\n"@\n$b = @\'\nno $n here\n\'@\n$a\n$b'
    assert out(script) == ['line "one" 3\nline two', "no $n here"]


def test_numbers(out: Any) -> None:
    """Integers, longs, doubles, hex, division and banker's rounding on [int] casts."""
    assert out("7 / 2; 6 / 2; 7 % 3; -7 % 3; 2147483647 + 1; 0x10; 1.5e2") == [3.5, 3, 1, -1, 2147483648, 16, 150.0]
    assert out("[int]2.5; [int]3.5; [int]'42'; [double]'1.25'") == [2, 4, 42, 1.25]


def test_arrays(out: Any) -> None:
    """@(), comma, ranges, negative indexes, slices, += copies, member enumeration."""
    script = """
    $a = @()
    $a.Count
    $a += 1; $a += 2,3
    $a.Count
    $a[-1]
    $a[0,2]
    $b = ,1
    $b.Count
    $c = @(@{N=1}, @{N=2})
    $c.N
    @(1,2,3)[5] -eq $null
    """
    assert out(script) == [0, 3, 3, 1, 3, 1, 1, 2, True]


def test_hashtables_and_custom_objects(out: Any) -> None:
    """@{} and [ordered]@{} are case-insensitive and ordered; [pscustomobject] keeps property order."""
    script = """
    $h = [ordered]@{ Zeta = 1; alpha = 2 }
    $h.ZETA
    $h['Alpha']
    $h.Keys
    $h.ContainsKey('zeta')
    $h.Add('c', 3); $h.Count
    $h.Remove('c'); $h.Count
    $o = [pscustomobject]@{ B = 1; A = 2 }
    $o.PSObject.Properties.Name
    $o.b = 5; $o.B
    """
    assert out(script) == [1, 2, "Zeta", "alpha", True, 3, 2, "B", "A", 5]


def test_custom_object_value(out: Any) -> None:
    """[pscustomobject] becomes shell.PSObject; hashtables stay shell.Hashtable."""
    result = out("[pscustomobject]@{ A = 1; B = 'x' }; @{ K = 'v' }")
    assert isinstance(result[0], PSObject) and dict(result[0].properties) == {"A": 1, "B": "x"}
    assert isinstance(result[1], Hashtable) and result[1]["k"] == "v"


def test_casts(out: Any) -> None:
    """[string], [bool], [datetime], [array], [guid], [version], [void]."""
    script = """
    [string]$null -eq ''
    [bool]'false'
    [bool]0
    ([datetime]'2024-01-02T03:04:05').Year
    ([array]5).Count
    ([guid]'5a9c1e2f-0b3d-4c6e-8f7a-9b0c1d2e3f40').Guid
    [version]'10.0.19044' -gt [version]'10.0.19043.9'
    [void](1 + 1)
    [string[]](1, 2)
    """
    assert out(script) == [True, True, False, 2024, 1, "5a9c1e2f-0b3d-4c6e-8f7a-9b0c1d2e3f40", True, "1", "2"]


def test_typed_variables_keep_their_type(out: Any) -> None:
    """[int]$x = '5' converts, and later assignments convert too."""
    assert out("[int]$x = '5'; $x += '2'; $x; $x.GetType().Name") == [7, "Int32"]


def test_comparison_operators(out: Any) -> None:
    """Case-insensitive by default, -c variants, right side converted to the left's type, arrays filter."""
    script = """
    'ABC' -eq 'abc'
    'ABC' -ceq 'abc'
    1 -eq '1'
    '01' -eq 1
    5 -gt 3; 5 -le 3
    @(1, 2, 3, 2) -eq 2
    @(1, 2, 3) -ne 2
    'file.txt' -like '*.TXT'
    'x' -notlike 'y*'
    @('a','b') -contains 'B'
    'b' -in @('a','b')
    'z' -notin @('a')
    5 -is [int]
    'x' -isnot [int]
    $null -eq $null
    """
    assert out(script) == [
        True,
        False,
        True,
        False,
        True,
        False,
        2,
        2,
        1,
        3,
        True,
        True,
        True,
        True,
        True,
        True,
        True,
        True,
    ]


def test_match_sets_matches_with_named_groups(out: Any) -> None:
    """-match fills $Matches: .NET named groups, numbered groups counted after unnamed ones."""
    script = """
    if ('AzureAdJoined : YES' -match '^\\s*(?<name>\\w+)\\s*:\\s*(\\w+)$') { $Matches.name; $Matches[1]; $Matches[0] }
    'abc' -notmatch 'x'
    @('a1', 'b2', 'c') -match '\\d'
    """
    assert out(script) == ["AzureAdJoined", "YES", "AzureAdJoined : YES", True, "a1", "b2"]


def test_replace_split_join_format(out: Any) -> None:
    """-replace (regex, $1), -split (regex, max), -join, -f with .NET format strings."""
    script = """
    'John Smith' -replace '(\\w+) (\\w+)', '$2, $1'
    'a.b.c' -replace '\\.'
    'a1b22c' -split '\\d+'
    'a,b,c' -split ',', 2
    -split ' x  y '
    (1,2,3) -join ', '
    -join ('a','b')
    '{0:N2}|{1:D4}|{2,-4}|{3:X}|{4:P0}' -f 1234.567, 42, 'ab', 255, 0.5
    '{0:yyyy-MM-dd HH:mm}' -f [datetime]'2024-05-06T07:08:09'
    '{0:0.00}' -f 2.345
    """
    assert out(script) == [
        "Smith, John",
        "abc",
        "a",
        "b",
        "c",
        "a",
        "b,c",
        "x",
        "y",
        "1, 2, 3",
        "ab",
        "1,234.57|0042|ab  |FF|50 %",
        "2024-05-06 07:08",
        "2.35",
    ]


def test_arithmetic_on_strings_and_arrays(out: Any) -> None:
    """string + number, string * int, array + array, hashtable + hashtable."""
    script = """
    'a' + 1
    1 + '2'
    'ab' * 3
    (@(1) + @(2, 3)).Count
    $h = @{a=1} + @{b=2}; $h.Count
    """
    assert out(script) == ["a1", 3, "ababab", 3, 2]


def test_logical_operators(out: Any) -> None:
    """-and/-or short-circuit, -not, !, -xor."""
    script = "$true -and $false; $false -or 1; -not 0; !'x'; $true -xor $true; $false -and (1/0)"
    assert out(script) == [False, True, True, False, False, False]


def test_assignment_operators(out: Any) -> None:
    """=, +=, -=, *=, /=, %=, ++, -- and multiple assignment."""
    script = "$i = 10; $i -= 3; $i *= 2; $i /= 7; $i %= 3; $i; $i++; $i--; --$i; $i; $a, $b = 1, 2, 3; $a; $b"
    assert out(script) == [2, 1, 1, 2, 3]


def test_string_methods(out: Any) -> None:
    """The common System.String methods."""
    script = """
    $s = '  Hello World  '
    $s.Trim(); $s.TrimStart(); $s.TrimEnd()
    'Hello'.ToUpper(); 'Hello'.ToLower()
    'Hello'.Contains('ell'); 'Hello'.StartsWith('he'); 'Hello'.EndsWith('lo')
    'Hello'.Substring(1, 3); 'Hello'.IndexOf('l'); 'Hello'.Replace('l', 'L')
    '5'.PadLeft(3, '0'); 'a'.PadRight(3) + '|'
    'a,b;c'.Split(',;')
    'x'.Length
    (12).ToString('D4')
    """
    assert out(script) == [
        "Hello World",
        "Hello World  ",
        "  Hello World",
        "HELLO",
        "hello",
        True,
        False,
        True,
        "ell",
        2,
        "HeLLo",
        "005",
        "a  |",
        "a",
        "b",
        "c",
        1,
        "0012",
    ]


def test_static_members(out: Any, host: Any) -> None:
    """The whitelisted static .NET members."""
    script = """
    [Convert]::ToBase64String([System.Text.Encoding]::Unicode.GetBytes('hi'))
    [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String('aMOp'))
    [string]::IsNullOrWhiteSpace('  ')
    [string]::Join('-', @('a', 'b'))
    [Math]::Round(2.5); [Math]::Round(1.234, 2); [Math]::Max(3, 9)
    [Environment]::MachineName
    [datetime]::UtcNow.Year
    ([guid]::NewGuid()).ToString().Length
    [int]::MaxValue
    [System.IO.Path]::GetFileName('C:\\x\\y.txt')
    [regex]::Escape('a.b')
    """
    assert out(script) == [
        "aABpAA==",
        "hé",
        True,
        "a-b",
        2.0,
        1.23,
        9,
        "PC-0001",
        2026,
        36,
        2147483647,
        "y.txt",
        "a\\.b",
    ]


def test_control_flow(out: Any) -> None:
    """if/elseif/else, while, do/while, do/until, for, foreach, break, continue."""
    script = """
    foreach ($n in 1..6) { if ($n -eq 2) { continue }; if ($n -eq 5) { break }; $n }
    $i = 0; while ($true) { $i++; if ($i -ge 3) { break } }; $i
    $j = 0; do { $j++ } while ($j -lt 2); $j
    $k = 5; do { $k-- } until ($k -le 3); $k
    for ($m = 0; $m -lt 3; $m += 2) { "m$m" }
    if ($false) { 'a' } elseif ($null) { 'b' } else { 'c' }
    """
    assert out(script) == [1, 3, 4, 3, 2, 3, "m0", "m2", "c"]


def test_switch_forms(out: Any) -> None:
    """switch with -Regex ($Matches), -Wildcard, script-block conditions, arrays, default and break."""
    script = """
    switch -Regex ('NgcSet : YES') { '^NgcSet : (\\w+)' { $Matches[1] } default { 'none' } }
    switch -Wildcard ('dsregcmd.exe') { 'dsreg*' { 'dsreg' } '*.exe' { 'exe' } }
    switch (1, 5) { { $_ -gt 3 } { "big $_" } default { "small $_" } }
    switch ('a', 'b') { 'a' { 'A'; break } 'b' { 'B' } }
    """
    assert out(script) == ["YES", "dsreg", "exe", "small 1", "big 5", "A"]


def test_conditional_statement_values(out: Any) -> None:
    """if/switch/foreach as values on the right of = and inside hash literals."""
    script = """
    $v = if ($true) { 'yes' } else { 'no' }
    $v
    $h = @{ k = switch (2) { 2 { 'two' } } }
    $h.k
    $list = foreach ($i in 1..3) { $i * 2 }
    $list.Count
    """
    assert out(script) == ["yes", "two", 3]


def test_functions(out: Any) -> None:
    """param blocks with types, defaults, mandatory, switches, ValidateSet, $args, return, pipeline input."""
    script = """
    function Get-Greeting {
        [CmdletBinding()]
        param(
            [Parameter(Mandatory = $true)][string]$Name,
            [ValidateSet('Hi', 'Hello')][string]$Word = 'Hello',
            [int]$Times = 1,
            [switch]$Shout
        )
        $text = (@("$Word $Name") * $Times) -join ' '
        if ($Shout) { return $text.ToUpper() }
        $text
    }
    Get-Greeting -Name bob
    Get-Greeting bob -Word Hi -Times 2 -Shout
    function Loose { $args.Count; $args[1] }
    Loose a b c
    function Double { process { $_ * 2 } }
    1, 2 | Double
    function Total { $sum = 0; foreach ($i in $input) { $sum += $i }; $sum }
    1, 2, 3 | Total
    filter Plus1 { $_ + 1 }
    5 | Plus1
    """
    assert out(script) == ["Hello bob", "HI BOB HI BOB", 3, "b", 2, 4, 6, 6]


def test_function_binding_errors(ps: Any) -> None:
    """Advanced functions reject unknown parameters and values outside ValidateSet."""
    result = ps("function F { [CmdletBinding()] param([ValidateSet('a')][string]$X) $X }\nF -Y 1\nF -X b\n'after'")
    assert result.output == ["after"]
    assert [e.fully_qualified_error_id for e in result.errors] == [
        "NamedParameterNotFound,F",
        "ParameterArgumentValidationError,F",
    ]
    assert 'does not belong to the set "a"' in result.errors[1].message


def test_script_blocks(out: Any) -> None:
    """& { } runs in a child scope, . { } in the current one, .Invoke() returns a collection."""
    script = """
    $x = 1
    & { $x = 2; $x }
    $x
    . { $x = 3 }
    $x
    $sb = { param($a, $b) $a + $b }
    & $sb 2 3
    $sb.Invoke(4, 5)
    """
    assert out(script) == [2, 1, 3, 5, 9]


def test_try_catch_finally_and_throw(out: Any) -> None:
    """throw string -> RuntimeException (FQEID = message, OperationStopped); typed catch; finally always runs."""
    script = """
    try { throw 'bad thing' } catch {
        $_.Exception.Message; $_.FullyQualifiedErrorId; [string]$_.CategoryInfo.Category
        $_.Exception.GetType().FullName
    }
    try { 1/0 } catch [System.Management.Automation.RuntimeException] { 'runtime: ' + $_.Exception.Message }
    try { throw [System.IO.FileNotFoundException]::new('nope') }
    catch [System.IO.IOException] { 'io' } catch { 'other' }
    try { try { throw 'inner' } finally { 'finally ran' } } catch { "outer got $_" }
    try { throw 'x' } catch { try { throw } catch { "rethrown $_" } }
    """
    assert out(script) == [
        "bad thing",
        "bad thing",
        "OperationStopped",
        "System.Management.Automation.RuntimeException",
        "runtime: Attempted to divide by zero.",
        "io",
        "finally ran",
        "outer got inner",
        "rethrown x",
    ]


def test_throw_ends_the_script(ps: Any) -> None:
    """An uncaught throw is the invocation's terminating error; later statements do not run."""
    result = ps("'before'\nthrow 'stop here'\n'after'")
    assert result.output == ["before"]
    assert result.terminating_error is not None
    assert result.terminating_error.message == "stop here"
    assert result.terminating_error.fully_qualified_error_id == "stop here"
    assert result.terminating_error.category == "OperationStopped"


def test_statement_terminating_errors_continue(ps: Any) -> None:
    """A failed method call ends its statement only; the error is written and the script goes on."""
    result = ps("$null.Trim()\n'after'\n1/0\n'end'")
    assert result.output == ["after", "end"]
    assert [e.fully_qualified_error_id for e in result.errors] == ["InvokeMethodOnNull", "RuntimeException"]
    assert result.terminating_error is None and result.had_errors


def test_error_variable_and_dollar_question(out: Any) -> None:
    """$? after success/failure, $Error keeps records newest first."""
    script = """
    Get-Thing -Name ok | Out-Null; $?
    Get-Thing -Name missing -ErrorAction SilentlyContinue; $?
    $Error[0].FullyQualifiedErrorId
    """
    assert out(script) == [True, False, "ThingNotFound,Lab.GetThingCommand"]


def test_dates(out: Any) -> None:
    """Get-Date from the host clock, AddDays, ToString('o'), ToUniversalTime, -Format."""
    script = """
    (Get-Date).AddDays(1).Day
    (Get-Date).ToUniversalTime().ToString('o')
    Get-Date -Format 'yyyyMMdd-HHmmss'
    (Get-Date -Date '2024-02-28').AddDays(1).ToString('yyyy-MM-dd')
    ((Get-Date) - (Get-Date).AddHours(-2)).TotalHours
    Get-Date -UFormat '%Y/%m/%d'
    """
    assert out(script) == [5, "2026-03-04T05:06:07.0000000Z", "20260304-050607", "2024-02-29", 2.0, "2026/03/04"]


def test_dates_leave_as_utc_datetimes(out: Any) -> None:
    """Datetimes crossing the seam are timezone-aware UTC."""
    (value,) = out("Get-Date")
    assert isinstance(value, datetime) and value.utcoffset() is not None
    assert value.isoformat() == "2026-03-04T05:06:07+00:00"


def test_where_and_foreach_methods(out: Any) -> None:
    """.Where({}) with modes and .ForEach() with a property name."""
    script = """
    (1..10).Where({ $_ % 2 -eq 0 }, 'First', 2)
    @([pscustomobject]@{ N = 'a' }, [pscustomobject]@{ N = 'b' }).ForEach('N')
    """
    assert out(script) == [2, 4, "a", "b"]


def test_null_redirection_forms(out: Any, host: Any) -> None:
    """> $null, | Out-Null, $null = ..., [void](...) all discard output but still run the command."""
    script = "Get-Thing > $null; Get-Thing | Out-Null; $null = Get-Thing; [void](Get-Thing); 'done'"
    assert out(script) == ["done"]
    assert sum(1 for name, _ in host.journal if name == "Get-Thing") == 4


@pytest.mark.parametrize("script", ["$x.NoSuchProperty -eq $null", "@{}.Missing -eq $null"])
def test_missing_properties_are_null(out: Any, script: str) -> None:
    """Absent properties of PowerShell objects read as $null (non-strict mode)."""
    assert out(script) == [True]
