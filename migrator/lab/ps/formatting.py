""".NET formatting as PowerShell uses it: composite format strings (``-f``), numeric and date format
specifiers (``ToString('N2')``, ``Get-Date -Format``), and the default text rendering of objects
(Out-String / Out-Default: table for up to four properties, list beyond).

Culture: the lab's machines are en-US (the culture of the outputs the migration parses); casts and string
expansion use the invariant culture and live in ``values.to_str``.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from migrator.lab.ps import views
from migrator.lab.ps.errors import runtime_error
from migrator.lab.ps.values import (
    EnumValue,
    PSVersion,
    datetime_kind,
    dotnet_to_string,
    format_double,
    format_timespan,
    to_str,
)
from migrator.lab.shell import ErrorRecord, Hashtable, PSObject

_DAY_NAMES = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_MONTH_NAMES = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
# en-US DateTimeFormatInfo standard patterns (DateTimeFormatInfo.GetAllDateTimePatterns).
_STANDARD_DATE = {
    "d": "M/d/yyyy",
    "D": "dddd, MMMM d, yyyy",
    "t": "h:mm tt",
    "T": "h:mm:ss tt",
    "f": "dddd, MMMM d, yyyy h:mm tt",
    "F": "dddd, MMMM d, yyyy h:mm:ss tt",
    "g": "M/d/yyyy h:mm tt",
    "G": "M/d/yyyy h:mm:ss tt",
    "M": "MMMM d",
    "m": "MMMM d",
    "Y": "MMMM yyyy",
    "y": "MMMM yyyy",
    "s": "yyyy'-'MM'-'dd'T'HH':'mm':'ss",
    "u": "yyyy'-'MM'-'dd HH':'mm':'ss'Z'",
    "o": "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",
    "O": "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",
    "r": "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",
    "R": "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",
}
_DATE_TOKEN = re.compile(r"d{1,4}|M{1,4}|y{1,5}|h{1,2}|H{1,2}|m{1,2}|s{1,2}|f{1,7}|F{1,7}|t{1,2}|z{1,3}|K|g{1,2}")


def format_datetime(value: datetime, pattern: str | None) -> str:
    """DateTime.ToString(format) for the en-US culture."""
    if not pattern:
        pattern = "G"
    if len(pattern) == 1 and pattern in _STANDARD_DATE:
        if pattern in "uUrR" and datetime_kind(value) != "Utc":
            pass  # 'u'/'r' do not convert; they print the value as is (like .NET)
        pattern = _STANDARD_DATE[pattern]
    elif len(pattern) == 1:
        raise runtime_error(
            "Input string was not in a correct format.", "FormatException", "NotSpecified", "System.FormatException"
        )
    if pattern.startswith("%") and len(pattern) == 2:
        pattern = pattern[1:]
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch in "'\"":
            end = pattern.find(ch, i + 1)
            end = n if end < 0 else end
            out.append(pattern[i + 1 : end])
            i = end + 1
            continue
        if ch == "\\" and i + 1 < n:
            out.append(pattern[i + 1])
            i += 2
            continue
        if ch == "%":
            i += 1
            continue
        match = _DATE_TOKEN.match(pattern, i)
        if match is None:
            out.append(ch)
            i += 1
            continue
        out.append(_date_token(value, match.group(0)))
        i = match.end()
    return "".join(out)


def _date_token(value: datetime, token: str) -> str:
    kind = token[0]
    size = len(token)
    if kind == "d":
        if size == 1:
            return str(value.day)
        if size == 2:
            return f"{value.day:02d}"
        name = _DAY_NAMES[value.weekday()]
        return name[:3] if size == 3 else name
    if kind == "M":
        if size == 1:
            return str(value.month)
        if size == 2:
            return f"{value.month:02d}"
        name = _MONTH_NAMES[value.month - 1]
        return name[:3] if size == 3 else name
    if kind == "y":
        if size == 1:
            return str(value.year % 100)
        if size == 2:
            return f"{value.year % 100:02d}"
        return str(value.year).rjust(size, "0")
    if kind == "h":
        hour = value.hour % 12 or 12
        return str(hour) if size == 1 else f"{hour:02d}"
    if kind == "H":
        return str(value.hour) if size == 1 else f"{value.hour:02d}"
    if kind == "m":
        return str(value.minute) if size == 1 else f"{value.minute:02d}"
    if kind == "s":
        return str(value.second) if size == 1 else f"{value.second:02d}"
    if kind in "fF":
        digits = f"{value.microsecond:06d}0"[:size]
        return digits.rstrip("0") if kind == "F" else digits
    if kind == "t":
        marker = "AM" if value.hour < 12 else "PM"
        return marker[0] if size == 1 else marker
    if kind == "z":
        offset = value.utcoffset() or timedelta(0)
        minutes = int(offset.total_seconds() // 60)
        sign = "+" if minutes >= 0 else "-"
        hours, mins = divmod(abs(minutes), 60)
        if size == 1:
            return f"{sign}{hours}"
        if size == 2:
            return f"{sign}{hours:02d}"
        return f"{sign}{hours:02d}:{mins:02d}"
    if kind == "K":
        kind_name = datetime_kind(value)
        return "Z" if kind_name == "Utc" else "+00:00" if kind_name == "Local" else ""
    if kind == "g":
        return "A.D."
    return token


def uformat_datetime(value: datetime, pattern: str) -> str:
    """Get-Date -UFormat (Unix strftime-like specifiers, Windows PowerShell 5.1 subset)."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch != "%" or i + 1 >= len(pattern):
            out.append(ch)
            i += 1
            continue
        spec = pattern[i + 1]
        i += 2
        mapping = {
            "Y": f"{value.year:04d}",
            "y": f"{value.year % 100:02d}",
            "m": f"{value.month:02d}",
            "d": f"{value.day:02d}",
            "e": f"{value.day:>2d}",
            "H": f"{value.hour:02d}",
            "I": f"{value.hour % 12 or 12:02d}",
            "M": f"{value.minute:02d}",
            "S": f"{value.second:02d}",
            "p": "AM" if value.hour < 12 else "PM",
            "A": _DAY_NAMES[value.weekday()],
            "a": _DAY_NAMES[value.weekday()][:3],
            "B": _MONTH_NAMES[value.month - 1],
            "b": _MONTH_NAMES[value.month - 1][:3],
            "h": _MONTH_NAMES[value.month - 1][:3],
            "j": f"{value.timetuple().tm_yday:03d}",
            "u": str(value.isoweekday()),
            "w": str(value.isoweekday() % 7),
            "Z": "+00",
            "z": "+00",
            "D": f"{value.month:02d}/{value.day:02d}/{value.year % 100:02d}",
            "F": f"{value.year:04d}-{value.month:02d}-{value.day:02d}",
            "T": f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}",
            "R": f"{value.hour:02d}:{value.minute:02d}",
            "n": "\n",
            "t": "\t",
            "%": "%",
        }
        if spec == "s":
            # 5.1 prints seconds since the epoch with a fraction for local times; the lab keeps the integer.
            epoch = datetime(1970, 1, 1, tzinfo=value.tzinfo)
            out.append(str(int((value - epoch).total_seconds())))
        elif spec in mapping:
            out.append(mapping[spec])
        else:
            out.append("%" + spec)
    return "".join(out)


# ---- numbers ---------------------------------------------------------------------------------------------


def _decimal(value: int | float) -> Decimal:
    if isinstance(value, float):
        # .NET Framework formats doubles from their 15-significant-digit form, then rounds half away from 0.
        return Decimal(format_double(value)) if "E" not in format_double(value) else Decimal(repr(value))
    return Decimal(value)


def _group(digits: str) -> str:
    groups: list[str] = []
    while len(digits) > 3:
        groups.insert(0, digits[-3:])
        digits = digits[:-3]
    groups.insert(0, digits)
    return ",".join(groups)


def _fixed(value: Decimal, decimals: int, grouping: bool) -> str:
    quantised = value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP) if decimals >= 0 else value
    negative = quantised < 0
    text = f"{abs(quantised):f}"
    integer, _, fraction = text.partition(".")
    if grouping:
        integer = _group(integer)
    result = integer + ("." + fraction if decimals > 0 else "")
    if negative and quantised != 0:
        result = "-" + result
    return result


def format_number(value: int | float, pattern: str) -> str:
    """Number.ToString(format), en-US: standard (N2, D5, X, F, P, E, G, C, R) and custom ('0.00', '#,##0')."""
    if isinstance(value, bool):
        return to_str(value)
    match = re.fullmatch(r"([CcDdEeFfGgNnPpRrXx])(\d{0,2})", pattern)
    if match:
        return _standard_number(value, match.group(1), match.group(2))
    return _custom_number(value, pattern)


def _standard_number(value: int | float, spec: str, precision_text: str) -> str:
    precision = int(precision_text) if precision_text else None
    upper = spec.upper()
    if upper == "D":
        if isinstance(value, float):
            raise runtime_error(
                "Format specifier was invalid.", "FormatException", "NotSpecified", "System.FormatException"
            )
        digits = str(abs(value)).rjust(precision or 0, "0")
        return ("-" if value < 0 else "") + digits
    if upper == "X":
        if isinstance(value, float):
            raise runtime_error(
                "Format specifier was invalid.", "FormatException", "NotSpecified", "System.FormatException"
            )
        unsigned = value if value >= 0 else value + (1 << (32 if value >= -(1 << 31) else 64))
        text = f"{unsigned:x}".rjust(precision or 0, "0")
        return text.upper() if spec == "X" else text
    number = _decimal(value)
    if upper == "F":
        return _fixed(number, 2 if precision is None else precision, False)
    if upper == "N":
        return _fixed(number, 2 if precision is None else precision, True)
    if upper == "P":
        return _fixed(number * 100, 2 if precision is None else precision, True) + " %"
    if upper == "C":
        text = _fixed(abs(number), 2 if precision is None else precision, True)
        return f"(${text})" if number < 0 else f"${text}"
    if upper == "E":
        exponent_digits = 6 if precision is None else precision
        scientific = f"{float(value):.{exponent_digits}E}"
        mantissa, exponent = scientific.split("E")
        result = f"{mantissa}E{exponent[0]}{exponent[1:].rjust(3, '0')}"
        return result if spec == "E" else result.replace("E", "e")
    if upper in ("R", "G"):
        if precision and isinstance(value, float):
            return f"{value:.{precision}G}"
        return to_str(value)
    return to_str(value)


def _custom_number(value: int | float, pattern: str) -> str:
    sections = _split_sections(pattern)
    number = _decimal(value)
    if len(sections) > 1 and number < 0:
        section = sections[1]
        number = -number
        negative_prefix = ""
    elif len(sections) > 2 and number == 0:
        section = sections[2]
        negative_prefix = ""
    else:
        section = sections[0]
        negative_prefix = "-" if number < 0 else ""
        number = abs(number)
    percent = "%" in section
    if percent:
        number *= 100
    # Split the placeholder run (0 # , .) from literal text around it.
    match = re.search(r"[0#][0#,]*(\.[0#]*)?|\.[0#]+", section)
    if match is None:
        return section
    body = match.group(0)
    integer_part, _, fraction_part = body.partition(".")
    grouping = "," in integer_part.strip(",")
    scale_commas = len(integer_part) - len(integer_part.rstrip(","))
    number = number / (Decimal(1000) ** scale_commas)
    min_int = integer_part.replace(",", "").count("0")
    required = fraction_part.count("0")
    optional = fraction_part.count("#")
    quantised = number.quantize(Decimal(1).scaleb(-(required + optional)), rounding=ROUND_HALF_UP)
    text = f"{quantised:f}"
    integer, _, fraction = text.partition(".")
    integer = integer.lstrip("0")
    integer = integer.rjust(min_int, "0")
    if grouping and integer:
        integer = _group(integer)
    fraction = fraction[: required + optional]
    while len(fraction) > required and fraction.endswith("0"):
        fraction = fraction[:-1]
    result = integer + ("." + fraction if fraction else "")
    if negative_prefix and quantised == 0:
        negative_prefix = ""
    return _literal(section[: match.start()]) + negative_prefix + result + _literal(section[match.end() :])


def _split_sections(pattern: str) -> list[str]:
    sections: list[str] = []
    current: list[str] = []
    quote: str | None = None
    for ch in pattern:
        if quote:
            current.append(ch)
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
            current.append(ch)
        elif ch == ";":
            sections.append("".join(current))
            current = []
        else:
            current.append(ch)
    sections.append("".join(current))
    return sections


def _literal(text: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in "'\"":
            end = text.find(ch, i + 1)
            end = len(text) if end < 0 else end
            out.append(text[i + 1 : end])
            i = end + 1
        elif ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def culture_string(value: Any) -> str:
    """Object.ToString() in the current (en-US) culture: what ``-f`` and Out-String print for scalars."""
    if isinstance(value, datetime):
        return format_datetime(value, "G")
    if isinstance(value, float):
        return format_double(value)
    if isinstance(value, list | tuple):
        return "System.Object[]"
    return dotnet_to_string(value)


def format_value(value: Any, spec: str | None) -> str:
    if spec:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return format_number(value, spec)
        if isinstance(value, datetime):
            return format_datetime(value, spec)
        if isinstance(value, timedelta):
            return format_timespan(value)
        if isinstance(value, EnumValue) and spec.upper() == "D":
            return str(value.value)
    if value is None:
        return ""
    return culture_string(value)


def composite_format(pattern: str, args: list[Any]) -> str:
    """String.Format: ``{index[,alignment][:format]}`` with ``{{``/``}}`` escapes."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "{":
            if i + 1 < n and pattern[i + 1] == "{":
                out.append("{")
                i += 2
                continue
            end = pattern.find("}", i)
            if end < 0:
                raise _format_error()
            item = pattern[i + 1 : end]
            match = re.fullmatch(r"\s*(\d+)\s*(?:,\s*(-?\d+)\s*)?(?::(.*))?", item, re.S)
            if match is None:
                raise _format_error()
            index = int(match.group(1))
            if index >= len(args):
                raise runtime_error(
                    "Error formatting a string: Index (zero based) must be greater than or equal to zero and less "
                    "than the size of the argument list..",
                    "FormatError",
                    "InvalidOperation",
                    "System.Management.Automation.RuntimeException",
                    target=pattern,
                )
            text = format_value(args[index], match.group(3))
            if match.group(2):
                width = int(match.group(2))
                text = text.ljust(-width) if width < 0 else text.rjust(width)
            out.append(text)
            i = end + 1
            continue
        if ch == "}":
            if i + 1 < n and pattern[i + 1] == "}":
                out.append("}")
                i += 2
                continue
            raise _format_error()
        out.append(ch)
        i += 1
    return "".join(out)


def _format_error() -> Exception:
    return runtime_error(
        "Error formatting a string: Input string was not in a correct format..",
        "FormatError",
        "InvalidOperation",
    )


# ---- Out-String / Out-Default ----------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        # Format-Table shows collections as {a, b, c} (FormatEnumerationLimit = 4).
        shown = [_cell(v) for v in value[:4]]
        return "{" + ", ".join(shown) + (", ..." if len(value) > 4 else "") + "}"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, PSObject | Hashtable | ErrorRecord):
        return to_str(value) if isinstance(value, PSObject | ErrorRecord) else "System.Collections.Hashtable"
    return culture_string(value)


cell_text = _cell  # a value as a table or list cell shows it (Format-Table/-List use the same rendering)


def _is_numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _table(headers: list[str], rows: list[list[Any]], widths: list[int] | None = None) -> list[str]:
    cells = [[_cell(v) for v in row] for row in rows]
    if widths is None:
        widths = [len(h) for h in headers]
        for row in cells:
            for index, text in enumerate(row):
                widths[index] = max(widths[index], len(text))
    numeric = [bool(rows) and all(_is_numeric(row[i]) or row[i] is None for row in rows) for i in range(len(headers))]
    lines: list[str] = []

    def render(values: list[str], right: list[bool]) -> str:
        parts = []
        for index, text in enumerate(values):
            width = widths[index]
            last = index == len(values) - 1
            if right[index]:
                parts.append(text.rjust(width))
            else:
                parts.append(text if last else text.ljust(width))
        return " ".join(parts).rstrip()

    lines.append(render(headers, numeric))
    lines.append(render(["-" * len(h) for h in headers], numeric))
    lines.extend(render(row, numeric) for row in cells)
    return lines


def _properties(value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, PSObject):
        return list(value.properties.items())
    if isinstance(value, ErrorRecord):
        return []
    return []


def format_default(objects: list[Any]) -> str:
    """Text as Out-String / Out-Default prints the objects (Windows PowerShell 5.1 layout, approximated)."""
    flat: list[Any] = []
    for item in objects:
        if isinstance(item, list | tuple | bytes | bytearray):
            flat.extend(item)
        else:
            flat.append(item)
    lines: list[str] = []
    index = 0
    while index < len(flat):
        item = flat[index]
        if isinstance(item, Hashtable):
            group = [item]
            index += 1
            while index < len(flat) and isinstance(flat[index], Hashtable):
                group.append(flat[index])
                index += 1
            rows = [[key, value] for table in group for key, value in table.items()]
            lines.append("")
            # The Hashtable view pins Name to 30 characters (DotNetTypes.format.ps1xml).
            name_width = 30
            value_width = max([5] + [len(_cell(v)) for _, v in rows])
            lines.extend(_table(["Name", "Value"], rows, [name_width, value_width]))
            lines.append("")
            continue
        view = views.view_for(item)
        if view is not None:
            run: list[PSObject] = [item]
            index += 1
            while index < len(flat) and views.view_for(flat[index]) is view:
                run.append(flat[index])
                index += 1
            lines.extend(views.render(run, view, _cell))
            continue
        if isinstance(item, PSObject) and item.to_string is None and item.properties:
            objects_group: list[PSObject] = [item]
            names = list(item.properties.keys())
            index += 1
            # Consecutive objects of the same shape share one table (Format-Table groups by type).
            while (
                index < len(flat)
                and isinstance(flat[index], PSObject)
                and flat[index].type_names == item.type_names
                and len(names) <= 4
            ):
                objects_group.append(flat[index])
                index += 1
            lines.append("")
            if len(names) <= 4:
                rows = [[obj.get(name) for name in names] for obj in objects_group]
                lines.extend(_table(names, rows))
                lines.append("")
            else:
                width = max(len(name) for name in names)
                for obj in objects_group:
                    for name in names:
                        lines.append(f"{name.ljust(width)} : {_cell(obj.get(name))}".rstrip())
                    lines.append("")
            continue
        if isinstance(item, ErrorRecord):
            lines.append(item.message)
        elif isinstance(item, PSVersion):
            lines.append(str(item))
        elif isinstance(item, datetime):
            lines.append("")
            lines.append(format_datetime(item, "F").replace(" ", " ", 1))
            lines.append("")
        elif isinstance(item, uuid.UUID):
            lines.extend(["", "Guid", "----", str(item), ""])
        elif item is None:
            pass
        else:
            lines.append(culture_string(item) if not isinstance(item, str) else item)
        index += 1
    if not lines:
        return ""
    return "\r\n".join(lines) + "\r\n"
