"""The interpreter's generic cmdlets: Where/Select/ForEach/Sort/Measure/Group-Object, Get-Date,
Start-Sleep, Write-*, Out-String/Out-Null, Join-Path/Split-Path, New-Object, variables, Add-Member."""

from __future__ import annotations

from typing import Any

from migrator.lab.shell import Hashtable, PSObject

THINGS = (
    "$t = @([pscustomobject]@{N='b'; V=2; G='x'}, [pscustomobject]@{N='a'; V=3; G='y'}, "
    "[pscustomobject]@{N='c'; V=1; G='x'})\n"
)


def test_where_object(out: Any) -> None:
    """Script block filter and the simplified `Where-Object Prop -op value` syntax."""
    script = (
        THINGS
        + """
    ($t | Where-Object { $_.V -gt 1 }).N
    ($t | Where-Object V -eq 1).N
    ($t | ? N -like 'a*').N
    ($t | where G -in 'y').N
    """
    )
    assert out(script) == ["b", "a", "c", "a", "a"]


def test_select_object(out: Any) -> None:
    """-Property (with calculated properties), -First/-Last/-Skip, -ExpandProperty, -Unique."""
    script = (
        THINGS
        + """
    $s = $t | Select-Object -Property N, @{ Name = 'Double'; Expression = { $_.V * 2 } } -First 2
    $s.Count; $s[1].Double; $s[0].PSObject.Properties.Name
    ($t | Select-Object -Last 1).N
    ($t | Select-Object -Skip 1 -First 1).N
    $t | Select-Object -ExpandProperty G -Unique
    $t | Select-Object @{n='L'; e='N'} | ForEach-Object L
    """
    )
    assert out(script) == [2, 6, "N", "Double", "c", "a", "x", "y", "b", "a", "c"]


def test_select_first_stops_upstream(out: Any, host: Any) -> None:
    """Select-Object -First stops the commands before it (no more objects are produced)."""
    script = "$n = 0; 1..100 | ForEach-Object { $script:n++; $_ } | Select-Object -First 3; $n"
    assert out(script) == [1, 2, 3, 3]


def test_foreach_object(out: Any) -> None:
    """Script block with $_, -Begin/-End, -MemberName for properties and methods."""
    script = (
        THINGS
        + """
    1..3 | ForEach-Object { $_ * 10 }
    1..2 | ForEach-Object -Begin { 'start' } -Process { $_ } -End { 'stop' }
    $t | ForEach-Object N
    'a', 'b' | % ToUpper
    """
    )
    assert out(script) == [10, 20, 30, "start", 1, 2, "stop", "b", "a", "c", "A", "B"]


def test_sort_object(out: Any) -> None:
    """By property, descending, by script block, unique, default (case-insensitive) ordering."""
    script = (
        THINGS
        + """
    ($t | Sort-Object V).N -join ''
    ($t | Sort-Object -Property N -Descending).N -join ''
    ($t | Sort-Object { -$_.V }).N -join ''
    (3, 1, 2, 1 | Sort-Object -Unique) -join ''
    ('b', 'A', 'c' | Sort-Object) -join ''
    ($t | Sort-Object G, @{ Expression = 'V'; Descending = $true }).N -join ''
    """
    )
    assert out(script) == ["cba", "cba", "abc", "123", "Abc", "bca"]


def test_measure_object(out: Any) -> None:
    """Count, and -Sum/-Average/-Maximum/-Minimum (doubles), on values or a property."""
    script = (
        THINGS
        + """
    ($t | Measure-Object).Count
    $m = $t | Measure-Object -Property V -Sum -Average -Maximum -Minimum
    $m.Sum; $m.Average; $m.Maximum; $m.Minimum; $m.Property
    (1..4 | Measure-Object -Sum).Sum
    """
    )
    assert out(script) == [3, 6.0, 2.0, 3.0, 1.0, "V", 10.0]


def test_group_object(out: Any) -> None:
    """Groups in first-seen order with Count/Name/Group; -AsHashTable."""
    script = (
        THINGS
        + """
    $g = $t | Group-Object G
    $g.Count; $g[0].Name; $g[0].Count; $g[0].Group.N -join ','
    $h = $t | Group-Object -Property G -AsHashTable
    $h['y'].N
    """
    )
    assert out(script) == [2, "x", 2, "b,c", "a"]


def test_start_sleep_uses_the_host_clock(out: Any, host: Any) -> None:
    """Start-Sleep advances the host clock in small slices (so stop() is honoured)."""
    out("Start-Sleep -Seconds 2; Start-Sleep -Milliseconds 100; Start-Sleep 1")
    assert abs(sum(host.clock.slept) - 3.1) < 1e-9
    assert max(host.clock.slept) <= 0.25


def test_write_output(out: Any) -> None:
    """Enumerates arrays unless -NoEnumerate; several positional arguments."""
    assert out("Write-Output 1 2 3") == [1, 2, 3]
    assert out("(Write-Output @(1, 2) -NoEnumerate).Count") == [2]
    assert out("echo 'x'") == ["x"]


def test_out_string_and_out_null(out: Any) -> None:
    """Out-String renders like the console; Out-Null swallows."""
    (text,) = out("[pscustomobject]@{ Name = 'a'; Id = 1 } | Out-String")
    assert text == "\r\nName Id\r\n---- --\r\na     1\r\n\r\n"
    assert out("1..3 | Out-Null") == []
    assert out("'x', 'y' | Out-String -Stream") == ["x", "y"]


def test_paths(out: Any) -> None:
    """Join-Path and Split-Path -Parent/-Leaf/-Qualifier."""
    script = """
    Join-Path 'C:\\Windows' 'System32'
    Join-Path 'HKLM:\\SOFTWARE\\' '\\Policies'
    Split-Path 'C:\\Windows\\System32\\certutil.exe'
    Split-Path 'C:\\Windows\\System32\\certutil.exe' -Leaf
    Split-Path 'HKLM:\\SOFTWARE' -Qualifier
    Split-Path 'C:\\Windows' -Parent
    """
    assert out(script) == [
        "C:\\Windows\\System32",
        "HKLM:\\SOFTWARE\\Policies",
        "C:\\Windows\\System32",
        "certutil.exe",
        "HKLM:",
        "C:\\",
    ]


def test_new_object(out: Any) -> None:
    """New-Object PSObject -Property, ArrayList (Add returns the index), List[string]."""
    script = """
    $o = New-Object PSObject -Property @{ A = 1 }
    $o.A
    $l = New-Object System.Collections.ArrayList
    $l.Add('x'); [void]$l.Add('y'); $l.Count
    $g = New-Object 'System.Collections.Generic.List[string]'
    $g.Add(5); $g[0].GetType().Name
    """
    assert out(script) == [1, 0, 2, "String"]


def test_variable_cmdlets(out: Any, ps: Any) -> None:
    """Get-Variable/Set-Variable/New-Variable/Remove-Variable."""
    script = """
    Set-Variable -Name v -Value 5
    (Get-Variable v).Value
    Get-Variable -Name v -ValueOnly
    New-Variable -Name w -Value 'x'; $w
    Remove-Variable w; $w -eq $null
    """
    assert out(script) == [5, 5, "x", True]
    result = ps("Get-Variable nope")
    assert (
        result.errors[0].fully_qualified_error_id == "VariableNotFound,Microsoft.PowerShell.Commands.GetVariableCommand"
    )


def test_add_member(out: Any) -> None:
    """Add-Member -NotePropertyName/-MemberType NoteProperty, -PassThru, clash without -Force."""
    script = """
    $o = [pscustomobject]@{ A = 1 }
    $o | Add-Member -NotePropertyName B -NotePropertyValue 2
    Add-Member -InputObject $o -MemberType NoteProperty -Name C -Value 3
    ($o | Add-Member -NotePropertyMembers @{ D = 4 } -PassThru).D
    $o.PSObject.Properties.Name -join ''
    """
    assert out(script) == [4, "ABCD"]


def test_new_timespan_and_get_date_parts(out: Any) -> None:
    """New-TimeSpan and Get-Date -Year/-Month, -Date."""
    assert out("(New-TimeSpan -Minutes 90).TotalHours; (Get-Date -Year 2020).Year") == [1.5, 2020]


def test_convert_from_json_objects(out: Any) -> None:
    """ConvertFrom-Json gives PSCustomObjects; a top-level array is one object (5.1)."""
    result = out("""'{"a": 1, "b": [1, 2], "c": {"d": "x"}}' | ConvertFrom-Json""")
    assert isinstance(result[0], PSObject)
    assert result[0]["c"]["d"] == "x" and result[0]["b"] == [1, 2]
    assert out("""('[1, 2, 3]' | ConvertFrom-Json | Measure-Object).Count""") == [1]
    assert isinstance(out("@{ k = 1 }")[0], Hashtable)
