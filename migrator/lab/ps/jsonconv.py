"""ConvertTo-Json / ConvertFrom-Json as Windows PowerShell 5.1 does them.

5.1 serialises with JavaScriptSerializer (``\\u0027`` for quotes, ``\\/Date(ms)\\/`` for dates, enums as
numbers), replaces anything nested deeper than ``-Depth`` (default 2) by its ToString(), then re-indents the
compact text with its own formatter: four spaces per level, ``":  "`` after keys, and nested containers
aligned under the column where they open. ``_pretty`` reproduces that formatter; our scripts emit its output
and the migration's parsers read it, so the lab must print the same bytes.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from migrator.lab.ps.errors import NotSupportedByLab, make_record, runtime_error
from migrator.lab.ps.values import (
    EnumValue,
    PSVersion,
    as_utc,
    dotnet_to_string,
    format_double,
    format_double_roundtrip,
    psobject_to_string,
    timespan_ticks,
    to_str,
)
from migrator.lab.shell import Hashtable, PowerShellError, PSObject

_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    # JavaScriptSerializer HTML-encodes these.
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "'": "\\u0027",
}


# Every character _string rewrites: the table's, and the other control characters (as \uXXXX).
_NEEDS_ESCAPE = re.compile("[" + re.escape("".join(_ESCAPES)) + "\x00-\x1f]")


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    return _ESCAPES.get(ch) or f"\\u{ord(ch):04x}"


def _string(text: str) -> str:
    # One regex pass (C speed) instead of a Python loop per character: scripts emit kilobytes of command output.
    return '"' + _NEEDS_ESCAPE.sub(_escape, text) + '"'


def _too_deep(value: Any) -> str:
    if isinstance(value, PSObject):
        return psobject_to_string(value)
    return dotnet_to_string(value)


def _compact(value: Any, depth: int, limit: int) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return _string(format_double(value))
        return format_double_roundtrip(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, EnumValue):
        return str(value.value)
    if isinstance(value, datetime):
        milliseconds = int((as_utc(value) - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1000)
        return f'"\\/Date({milliseconds})\\/"'
    if isinstance(value, uuid.UUID):
        return _string(str(value))
    containers = (list, tuple, bytes, bytearray, Hashtable, PSObject, PSVersion, timedelta)
    if isinstance(value, containers) and depth > limit:
        return _string(_too_deep(value))
    if isinstance(value, list | tuple | bytes | bytearray):
        return "[" + ",".join(_compact(item, depth + 1, limit) for item in value) + "]"
    if isinstance(value, Hashtable):
        return (
            "{"
            + ",".join(f"{_string(to_str(key))}:{_compact(item, depth + 1, limit)}" for key, item in value.items())
            + "}"
        )
    if isinstance(value, PSObject):
        return (
            "{"
            + ",".join(f"{_string(key)}:{_compact(item, depth + 1, limit)}" for key, item in value.properties.items())
            + "}"
        )
    if isinstance(value, PSVersion):
        fields = [
            ("Major", value.major),
            ("Minor", value.minor),
            ("Build", value.build),
            ("Revision", value.revision),
            ("MajorRevision", value.revision >> 16 if value.revision >= 0 else -1),
            ("MinorRevision", value.revision & 0xFFFF if value.revision >= 0 else -1),
        ]
        return "{" + ",".join(f'"{k}":{v}' for k, v in fields) + "}"
    if isinstance(value, timedelta):
        ticks = timespan_ticks(value)
        fields_ts: list[tuple[str, Any]] = [
            ("Ticks", ticks),
            ("Days", int(ticks / 864000000000)),
            ("Hours", int(ticks / 36000000000) % 24),
            ("Milliseconds", int(ticks / 10000) % 1000),
            ("Minutes", int(ticks / 600000000) % 60),
            ("Seconds", int(ticks / 10000000) % 60),
            ("TotalDays", ticks / 864000000000),
            ("TotalHours", ticks / 36000000000),
            ("TotalMilliseconds", ticks / 10000),
            ("TotalMinutes", ticks / 600000000),
            ("TotalSeconds", ticks / 10000000),
        ]
        return "{" + ",".join(f'"{k}":{_compact(v, depth + 1, limit)}' for k, v in fields_ts) + "}"
    raise NotSupportedByLab(f"ConvertTo-Json of a {type(value).__name__}")


def to_json(value: Any, depth: int = 2, compress: bool = False) -> str:
    compact = _compact(value, 0, depth)
    return compact if compress else _pretty(compact)


# ---- the 5.1 re-indenter ---------------------------------------------------------------------------------


def _string_end(text: str, start: int) -> int:
    """Index of the closing quote of the JSON string opening at ``start``."""
    index = start + 1
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text[index] == '"':
            return index
        index += 1
    return len(text) - 1


def _pretty(text: str) -> str:
    if not text or text[0] not in "{[":
        return text
    out: list[str] = [text[0]]
    if text[0] == "{":
        _dictionary(text, 1, out, "", 0)
    else:
        _list(text, 1, out, "", 0)
    return "".join(out)


def _dictionary(text: str, index: int, out: list[str], pad: str, spaces: int) -> int:
    out.append("\r\n")
    inner = pad + " " * spaces + "    "
    head = True
    expecting_key = True
    key_length = 0
    while index < len(text):
        ch = text[index]
        if ch == '"':
            end = _string_end(text, index)
            if head:
                out.append(inner)
            out.append(text[index : end + 1])
            if expecting_key:
                key_length = end + 1 - index
            head = False
            index = end
        elif ch == ":":
            out.append(":  ")
            expecting_key = False
        elif ch == "{":
            out.append("{")
            index = _dictionary(text, index + 1, out, inner, key_length + 3)
            head = False
        elif ch == "[":
            out.append("[")
            index = _list(text, index + 1, out, inner, key_length + 3)
            head = False
        elif ch == ",":
            out.append(",\r\n")
            head = True
            expecting_key = True
        elif ch == "}":
            out.append("\r\n" + pad + " " * spaces + "}")
            return index
        else:
            if head:
                out.append(inner)
            out.append(ch)
            head = False
        index += 1
    return index


def _list(text: str, index: int, out: list[str], pad: str, spaces: int) -> int:
    out.append("\r\n")
    inner = pad + " " * spaces + "    "
    head = True
    while index < len(text):
        ch = text[index]
        if ch == "{":
            out.append(inner + "{")
            index = _dictionary(text, index + 1, out, inner, 0)
            head = False
        elif ch == "[":
            out.append(inner + "[")
            index = _list(text, index + 1, out, inner, 0)
            head = False
        elif ch == "]":
            out.append("\r\n" + pad + " " * spaces + "]")
            return index
        elif ch == '"':
            end = _string_end(text, index)
            if head:
                out.append(inner)
            out.append(text[index : end + 1])
            head = False
            index = end
        elif ch == ",":
            out.append(",\r\n")
            head = True
        else:
            if head:
                out.append(inner)
            out.append(ch)
            head = False
        index += 1
    return index


# ---- ConvertFrom-Json ------------------------------------------------------------------------------------

_DATE = re.compile(r"^/Date\((-?\d+)(?:[+-]\d{4})?\)/$")


def from_json(text: str) -> Any:
    """Parse like 5.1: objects -> PSCustomObject, arrays -> object[], ``\\/Date(ms)\\/`` -> DateTime."""
    dates = "\\/Date(" in text

    def pairs(items: list[tuple[str, Any]]) -> PSObject:
        seen: dict[str, str] = {}
        for key, _ in items:
            folded = key.casefold()
            if folded in seen:
                raise runtime_error(
                    "Cannot convert the JSON string because a dictionary that was converted from the string "
                    f"contains the duplicated keys '{seen[folded]}' and '{key}'.",
                    "DuplicateKeysInJsonString,Microsoft.PowerShell.Commands.ConvertFromJsonCommand",
                    "InvalidOperation",
                    "System.InvalidOperationException",
                )
            seen[folded] = key
        return PSObject([(key, _convert(value)) for key, value in items])

    def _convert(value: Any) -> Any:
        if dates and isinstance(value, str):
            match = _DATE.match(value)
            if match:
                return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=int(match.group(1)))
        return value

    try:
        result = json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as error:
        near = text[error.pos : error.pos + 20].split(maxsplit=1)[0] if text[error.pos : error.pos + 20].split() else ""
        raise PowerShellError(_invalid_json(f"Invalid JSON primitive: {near}.")) from None
    except RecursionError:
        raise PowerShellError(_invalid_json("RecursionLimit exceeded.")) from None
    return _convert(result) if not isinstance(result, list) else [_convert(v) for v in result]


def _invalid_json(message: str) -> Any:
    return make_record(
        message,
        "System.ArgumentException,Microsoft.PowerShell.Commands.ConvertFromJsonCommand",
        "NotSpecified",
        "System.ArgumentException",
    )
