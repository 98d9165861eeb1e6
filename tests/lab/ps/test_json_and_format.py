"""ConvertTo-Json as Windows PowerShell 5.1 prints it, ConvertFrom-Json, and format_default."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from migrator.lab.ps import format_default, jsonconv
from migrator.lab.shell import Hashtable, PSObject


def test_json_51_layout(out: Any) -> None:
    """Four-space indent, ':  ' after keys, nested containers aligned under their opening column."""
    (text,) = out(
        "[ordered]@{ dan = 15; foo = [ordered]@{ second = 'b'; first = 'a' }; list = @(1, 'x') } | ConvertTo-Json"
    )
    assert text == (
        "{\r\n"
        '    "dan":  15,\r\n'
        '    "foo":  {\r\n'
        '                "second":  "b",\r\n'
        '                "first":  "a"\r\n'
        "            },\r\n"
        '    "list":  [\r\n'
        "                 1,\r\n"
        '                 "x"\r\n'
        "             ]\r\n"
        "}"
    )


def test_json_arrays_of_objects_and_empty_containers(out: Any) -> None:
    """Objects inside arrays, empty hashtables and arrays as 5.1 prints them."""
    (text,) = out("@([pscustomobject]@{ a = 1 }) + @([pscustomobject]@{ a = @() }) | ConvertTo-Json")
    assert text == (
        '[\r\n    {\r\n        "a":  1\r\n    },\r\n    {\r\n        "a":  [\r\n\r\n              ]\r\n    }\r\n]'
    )
    assert out("@{} | ConvertTo-Json") == ["{\r\n\r\n}"]


def test_json_compress_escapes_and_scalars(out: Any) -> None:
    """-Compress; JavaScriptSerializer escapes (quotes, <>&', control characters); dates as \\/Date(ms)\\/."""
    script = (
        '''[ordered]@{ s = "it's <a&b>`t""q"""; n = $null; b = $false; d = 1.5; i = 7 } | ConvertTo-Json -Compress'''
    )
    assert out(script) == ['{"s":"it\\u0027s \\u003ca\\u0026b\\u003e\\t\\"q\\"","n":null,"b":false,"d":1.5,"i":7}']
    assert out("'plain' | ConvertTo-Json") == ['"plain"']
    assert out("[datetime]::UtcNow | ConvertTo-Json") == ['"\\/Date(1772600767000)\\/"']


def test_json_depth_truncates_to_strings(out: Any) -> None:
    """Containers deeper than -Depth (default 2) become their ToString()."""
    script = "@{ a = @{ b = @{ c = @{ d = 1 } } } } | ConvertTo-Json -Compress"
    assert out(script) == ['{"a":{"b":{"c":"System.Collections.Hashtable"}}}']
    deep = (
        "[pscustomobject]@{ a = [pscustomobject]@{ b = [pscustomobject]@{ c = [pscustomobject]@{ d = 1 } } } }"
        " | ConvertTo-Json -Compress -Depth 2"
    )
    assert out(deep) == ['{"a":{"b":{"c":"@{d=1}"}}}']
    assert out("@{ a = @{ b = @{ c = @{ d = 1 } } } } | ConvertTo-Json -Compress -Depth 5") == [
        '{"a":{"b":{"c":{"d":1}}}}'
    ]


def test_json_pipeline_collects_into_an_array(out: Any) -> None:
    """Several pipeline objects make one JSON array; key order is preserved."""
    assert out("1, 2 | ConvertTo-Json -Compress") == ["[1,2]"]
    assert out("[ordered]@{ z = 1; a = 2 } | ConvertTo-Json -Compress") == ['{"z":1,"a":2}']


def test_json_round_trip(out: Any) -> None:
    """ConvertFrom-Json reads what ConvertTo-Json wrote, including \\/Date()\\/ values."""
    script = (
        "$j = [ordered]@{ when = [datetime]::UtcNow; list = @(1, 2); name = 'x' } | ConvertTo-Json\n"
        "$o = $j | ConvertFrom-Json; $o.when.Year; $o.list[1]; $o.name"
    )
    assert out(script) == [2026, 2, "x"]


def test_convert_from_json_errors(ps: Any) -> None:
    """Invalid JSON is an ArgumentException record from ConvertFrom-Json."""
    result = ps("'{ nope' | ConvertFrom-Json")
    assert result.errors[0].fully_qualified_error_id == (
        "System.ArgumentException,Microsoft.PowerShell.Commands.ConvertFromJsonCommand"
    )


def test_format_default_scalars_and_arrays() -> None:
    """Strings as they are, numbers and booleans, arrays flattened one item a line."""
    assert format_default(["a", 1, True, [2, 3]]) == "a\r\n1\r\nTrue\r\n2\r\n3\r\n"
    assert format_default([]) == ""


def test_format_default_table_and_list() -> None:
    """Up to four properties: a table; more: a list."""
    table = format_default([PSObject([("Name", "x"), ("Size", 10)]), PSObject([("Name", "longer"), ("Size", 2)])])
    assert table == "\r\nName   Size\r\n----   ----\r\nx        10\r\nlonger    2\r\n\r\n"
    wide = format_default([PSObject([(k, i) for i, k in enumerate("ABCDE")])])
    assert wide == "\r\nA : 0\r\nB : 1\r\nC : 2\r\nD : 3\r\nE : 4\r\n\r\n"


def test_format_default_hashtable_and_date() -> None:
    """Hashtables print as Name/Value; dates in the long en-US form."""
    text = format_default([Hashtable([("key", "value")])])
    assert text.splitlines()[1].startswith("Name") and "key" in text and "value" in text
    assert "Wednesday, March 4, 2026 5:06:07 AM" in format_default([datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)])


def _escaped_one_by_one(text: str) -> str:
    """The oracle: JavaScriptSerializer's string escaping, character by character."""
    table = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    table |= {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "'": "\\u0027"}
    out = []
    for ch in text:
        out.append(table.get(ch) or (f"\\u{ord(ch):04x}" if ord(ch) < 0x20 else ch))
    return '"' + "".join(out) + '"'


@given(st.text())
def test_string_escaping_matches_the_serializer_character_by_character(text: str) -> None:
    """ConvertTo-Json's one-pass escaping equals the per-character rules for any text."""
    assert jsonconv._string(text) == _escaped_one_by_one(text)
