"""PowerShell operators (about_Operators, about_Comparison_Operators, about_Arithmetic_Operators).

The left operand decides: it picks the type the right operand is converted to, and an array on the left
turns comparison operators into filters. String comparisons are case-insensitive unless the ``c``-prefixed
form is used. Regular expressions are .NET's; ``dotnet_regex`` translates the syntax that differs from
Python's ``re`` and refuses (NotSupportedByLab) what has no equivalent.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from migrator.lab.ps.ast import TypeName
from migrator.lab.ps.errors import NotSupportedByLab, runtime_error
from migrator.lab.ps.formatting import composite_format
from migrator.lab.ps.values import (
    EnumValue,
    PSList,
    PSType,
    PSVersion,
    as_list,
    convert_to,
    is_instance,
    normalise_int,
    parse_number,
    resolve_type_name,
    to_bool,
    to_datetime,
    to_int,
    to_number,
    to_str,
    to_timespan,
    type_names_of,
    type_not_found,
)
from migrator.lab.shell import Hashtable, PowerShellError

# ---- comparison ------------------------------------------------------------------------------------------


def normalise_operator(op: str) -> tuple[str, bool]:
    """'-ceq' -> ('-eq', True); '-ieq'/'-eq' -> ('-eq', False)."""
    if len(op) > 2 and op[1] in "ci" and op[2:] in _CASE_FAMILY:
        return "-" + op[2:], op[1] == "c"
    return op, False


_CASE_FAMILY = frozenset(
    {
        "eq",
        "ne",
        "gt",
        "ge",
        "lt",
        "le",
        "like",
        "notlike",
        "match",
        "notmatch",
        "contains",
        "notcontains",
        "in",
        "notin",
        "replace",
        "split",
    }
)


def values_equal(left: Any, right: Any, case_sensitive: bool = False) -> bool:
    if left is None:
        return right is None
    if isinstance(left, str):
        if right is None:
            return False
        other = to_str(right)
        return left == other if case_sensitive else left.casefold() == other.casefold()
    if isinstance(left, bool):
        return left == to_bool(right)
    if isinstance(left, int | float):
        if right is None:
            return False
        try:
            number = to_number(right, "System.Double")
        except PowerShellError:
            return False
        return left == number
    if isinstance(left, datetime):
        try:
            return left == to_datetime(right)
        except PowerShellError:
            return False
    if isinstance(left, timedelta):
        try:
            return left == to_timespan(right)
        except PowerShellError:
            return False
    if isinstance(left, PSVersion):
        try:
            return left == (right if isinstance(right, PSVersion) else PSVersion.parse(to_str(right)))
        except PowerShellError:
            return False
    if isinstance(left, uuid.UUID):
        return to_str(left).casefold() == to_str(right).casefold()
    if isinstance(left, EnumValue):
        if isinstance(right, int) and not isinstance(right, bool):
            return left.value == right
        return left.name.casefold() == to_str(right).casefold()
    if isinstance(left, PSType):
        return isinstance(right, PSType) and left.full_name.casefold() == right.full_name.casefold()
    if isinstance(left, bytes | bytearray):
        return left is right
    return left is right


def compare_order(left: Any, right: Any, case_sensitive: bool = False) -> int:
    """-1/0/1 as PowerShell's -lt/-gt see it; raises for values that are not comparable."""
    if left is None:
        return 0 if right is None else -1
    if right is None:
        return 1 if not (isinstance(left, str) and left == "") else 0
    try:
        if isinstance(left, str):
            a, b = left, to_str(right)
            if not case_sensitive:
                a, b = a.casefold(), b.casefold()
            return (a > b) - (a < b)
        if isinstance(left, bool | int | float):
            x, y = float(left), float(to_number(right, "System.Double"))
            return (x > y) - (x < y)
        if isinstance(left, datetime):
            d = to_datetime(right)
            return (left > d) - (left < d)
        if isinstance(left, timedelta):
            t = to_timespan(right)
            return (left > t) - (left < t)
        if isinstance(left, PSVersion):
            v = right if isinstance(right, PSVersion) else PSVersion.parse(to_str(right))
            return (left > v) - (left < v)
        if isinstance(left, EnumValue):
            n = right.value if isinstance(right, EnumValue) else to_int(right)
            return (left.value > n) - (left.value < n)
    except PowerShellError as error:
        raise runtime_error(
            f'Could not compare "{to_str(left)}" to "{to_str(right)}". Error: "{error.record.message}"',
            "ComparisonFailure",
            "InvalidOperation",
        ) from None
    raise runtime_error(
        f'Cannot compare "{to_str(left)}" because it is not IComparable.', "NotIcomparable", "InvalidOperation"
    )


def wildcard_regex(pattern: str, case_sensitive: bool = False) -> re.Pattern[str]:
    return _wildcard(pattern, case_sensitive)


@lru_cache(maxsize=1024)
def _wildcard(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    # about_Wildcards: * ? [abc] [a-z], backtick escapes the next character.
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "`" and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
        elif ch == "*":
            out.append(".*")
            i += 1
        elif ch == "?":
            out.append(".")
            i += 1
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise runtime_error(
                    f"The specified wildcard character pattern is not valid: {pattern}",
                    "RuntimeException",
                    "NotSpecified",
                    "System.Management.Automation.WildcardPatternException",
                )
            body = pattern[i + 1 : end]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(ch))
            i += 1
    flags = re.DOTALL | (0 if case_sensitive else re.IGNORECASE)
    return re.compile("".join(out) + r"\Z", flags)


def like(value: Any, pattern: Any, case_sensitive: bool = False) -> bool:
    return wildcard_regex(to_str(pattern), case_sensitive).match(to_str(value)) is not None


@lru_cache(maxsize=1024)
def _dotnet_regex(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            if nxt in "pP" and i + 2 < n and pattern[i + 2] == "{":
                raise NotSupportedByLab(f"regular expression Unicode category '{pattern[i : i + 10]}'")
            if nxt == "k" and i + 2 < n and pattern[i + 2] in "<'":
                close = ">" if pattern[i + 2] == "<" else "'"
                end = pattern.find(close, i + 3)
                out.append(f"(?P={pattern[i + 3 : end]})")
                i = end + 1
                continue
            if nxt == "z" and not in_class:
                out.append(r"\Z")
            elif nxt == "Z" and not in_class:
                out.append(r"(?=\n?\Z)")
            else:
                out.append(ch + nxt)
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
            elif ch == "-" and i + 1 < n and pattern[i + 1] == "[":
                raise NotSupportedByLab("regular expression character class subtraction")
            out.append(ch)
            i += 1
            continue
        if ch == "[":
            in_class = True
            out.append(ch)
            if i + 1 < n and pattern[i + 1] == "^":
                out.append("^")
                i += 1
            if i + 1 < n and pattern[i + 1] == "]":
                out.append("\\]")
                i += 1
            i += 1
            continue
        if ch == "(" and pattern.startswith("(?<", i) and i + 3 < n and pattern[i + 3] not in "=!":
            end = pattern.find(">", i)
            out.append(f"(?P<{pattern[i + 3 : end]}>")
            i = end + 1
            continue
        if ch == "(" and pattern.startswith("(?'", i):
            end = pattern.find("'", i + 3)
            out.append(f"(?P<{pattern[i + 3 : end]}>")
            i = end + 1
            continue
        if ch == "(" and re.match(r"\(\?[imsx]*n", pattern[i:]):
            raise NotSupportedByLab("regular expression option 'n' (ExplicitCapture)")
        out.append(ch)
        i += 1
    flags = 0 if case_sensitive else re.IGNORECASE
    try:
        return re.compile("".join(out), flags)
    except re.error as error:
        raise runtime_error(
            f"Invalid regular expression pattern: {pattern}. ({error})",
            "InvalidRegularExpression",
            "InvalidOperation",
            "System.ArgumentException",
            target=pattern,
        ) from None


def dotnet_regex(pattern: str, case_sensitive: bool = False) -> re.Pattern[str]:
    return _dotnet_regex(pattern, case_sensitive)


def matches_table(match: re.Match[str]) -> Hashtable:
    """``$Matches``: group 0 and every group that took part; named groups by name. .NET numbers the unnamed
    groups first (1..n, left to right) and gives named groups their names, which is what PowerShell keys by."""
    table = Hashtable()
    names = {index: name for name, index in match.re.groupindex.items()}
    numbered: list[tuple[int | str, str | None]] = []
    number = 0
    for index in range(1, match.re.groups + 1):
        if index in names:
            continue
        number += 1
        numbered.append((number, match.group(index)))
    entries: list[tuple[int | str, str | None]] = [(name, match.group(index)) for index, name in names.items()]
    for key, value in [*entries, *reversed(numbered), (0, match.group(0))]:
        if value is not None:
            table[key] = value  # type: ignore[index]  # .NET group numbers are int keys
    return table


def regex_match(value: Any, pattern: Any, case_sensitive: bool = False) -> re.Match[str] | None:
    return dotnet_regex(to_str(pattern), case_sensitive).search(to_str(value))


def dotnet_replacement(replacement: str) -> Callable[[re.Match[str]], str]:
    """A .NET substitution pattern ($1, ${name}, $0, $&, $$, $`, $', $+, $_) as a re.sub callback."""
    tokens = re.compile(r"\$(\d+|\{[^}]+\}|[&$`'+_])")

    def expand(match: re.Match[str]) -> str:
        out: list[str] = []
        position = 0
        for token in tokens.finditer(replacement):
            out.append(replacement[position : token.start()])
            key = token.group(1)
            position = token.end()
            if key == "$":
                out.append("$")
            elif key == "&":
                out.append(match.group(0))
            elif key == "`":
                out.append(match.string[: match.start()])
            elif key == "'":
                out.append(match.string[match.end() :])
            elif key == "_":
                out.append(match.string)
            elif key == "+":
                out.append(match.group(match.re.groups) or "" if match.re.groups else "")
            else:
                name = key.strip("{}")
                group: int | str = int(name) if name.isdigit() else name
                try:
                    out.append(match.group(group) or "")
                except (IndexError, error_type()):
                    out.append(token.group(0))
        out.append(replacement[position:])
        return "".join(out)

    return expand


def error_type() -> type[Exception]:
    return re.error


def replace_op(left: Any, right: Any, case_sensitive: bool) -> Any:
    items = as_list(right)
    if not 1 <= len(items) <= 2:
        raise runtime_error(
            f"The -replace operator allows only two elements to follow it, not {len(items)}.",
            "BadReplaceArgument",
            "InvalidOperation",
        )
    pattern = dotnet_regex(to_str(items[0]), case_sensitive)
    replacement = to_str(items[1]) if len(items) == 2 else ""
    if isinstance(items[-1], object) and callable(getattr(items[-1], "ast", None)):
        raise NotSupportedByLab("-replace with a script block")
    expand = dotnet_replacement(replacement)
    if isinstance(left, list | tuple):
        return [pattern.sub(expand, to_str(item)) for item in left]
    return pattern.sub(expand, to_str(left))


def split_op(left: Any, right: Any | None, case_sensitive: bool) -> list[str]:
    if right is None:
        # Unary -split: on runs of whitespace, empty entries dropped.
        return [part for item in as_list(left) for part in to_str(item).split()]
    items = as_list(right)
    if not items or len(items) > 3:
        raise NotSupportedByLab("-split with these operands")
    if hasattr(items[0], "ast"):
        raise NotSupportedByLab("-split with a script block")
    count = to_int(items[1]) if len(items) > 1 else 0
    options = to_str(items[2]).casefold() if len(items) > 2 else ""
    if options and options not in ("regexmatch", "simplematch", "ignorecase"):
        raise NotSupportedByLab(f"-split option '{options}'")
    delimiter = to_str(items[0])
    if "simplematch" in options:
        delimiter = re.escape(delimiter)
    pattern = dotnet_regex(delimiter, case_sensitive and "ignorecase" not in options)
    result: list[str] = []
    for item in as_list(left):
        result.extend(pattern.split(to_str(item), maxsplit=max(count - 1, 0)))
    return [part if part is not None else "" for part in result]


def join_op(left: Any, right: Any | None) -> str:
    separator = "" if right is None else to_str(right)
    return separator.join(to_str(item) for item in as_list(left))


def contains(collection: Any, value: Any, case_sensitive: bool) -> bool:
    return any(values_equal(item, value, case_sensitive) for item in as_list(collection))


def type_of_operand(right: Any) -> str:
    if isinstance(right, PSType):
        return right.full_name
    name = to_str(right)
    full = resolve_type_name(name.removesuffix("[]"))
    if full is None:
        raise type_not_found(name)
    return full + ("[]" if name.endswith("[]") else "")


def comparison(op: str, left: Any, right: Any) -> Any:
    """The comparison family, including the array-on-left filter form."""
    name, case_sensitive = normalise_operator(op)
    if name in ("-contains", "-notcontains"):
        found = contains(left, right, case_sensitive)
        return found if name == "-contains" else not found
    if name in ("-in", "-notin"):
        found = contains(right, left, case_sensitive)
        return found if name == "-in" else not found
    if name in ("-is", "-isnot"):
        result = is_instance(left, type_of_operand(right))
        return result if name == "-is" else not result
    if name == "-as":
        target = right.full_name if isinstance(right, PSType) else to_str(right)
        array = target.endswith("[]")
        try:
            return convert_to(left, TypeName(target.removesuffix("[]"), array=array))
        except PowerShellError:
            return None
    test = _PREDICATES.get(name)
    if test is None:
        raise NotSupportedByLab(f"operator {op}")
    if isinstance(left, list | tuple):
        return [item for item in left if test(item, right, case_sensitive)]
    return test(left, right, case_sensitive)


_PREDICATES: dict[str, Callable[[Any, Any, bool], bool]] = {
    "-eq": values_equal,
    "-ne": lambda a, b, c: not values_equal(a, b, c),
    "-gt": lambda a, b, c: compare_order(a, b, c) > 0,
    "-ge": lambda a, b, c: compare_order(a, b, c) >= 0,
    "-lt": lambda a, b, c: compare_order(a, b, c) < 0,
    "-le": lambda a, b, c: compare_order(a, b, c) <= 0,
    "-like": like,
    "-notlike": lambda a, b, c: not like(a, b, c),
    "-match": lambda a, b, c: regex_match(a, b, c) is not None,
    "-notmatch": lambda a, b, c: regex_match(a, b, c) is None,
}


# ---- arithmetic ------------------------------------------------------------------------------------------


def _op_not_defined(left: Any, method: str) -> PowerShellError:
    names = type_names_of(left)
    type_name = names[0] if names else "System.Object"
    return runtime_error(
        f"Method invocation failed because [{type_name}] does not contain a method named '{method}'.",
        "MethodNotFound",
        "InvalidOperation",
    )


def _arith(left: int | float, right: int | float, operation: Callable[[Any, Any], Any]) -> int | float:
    result = operation(left, right)
    if isinstance(result, int) and not isinstance(result, bool):
        return normalise_int(result)
    return float(result)


def _number_operand(value: Any) -> int | float:
    if isinstance(value, str):
        number = parse_number(value)
        if number is None:
            raise runtime_error(
                f'Cannot convert value "{value}" to type "System.Int32". Error: "Input string was not in a '
                'correct format."',
                "InvalidCastFromStringToInteger",
                "InvalidArgument",
                "System.Management.Automation.PSInvalidCastException",
            )
        return number
    return to_number(value)


def add(left: Any, right: Any) -> Any:
    if left is None:
        if isinstance(right, list):
            return list(right)
        return right
    if isinstance(left, str):
        return left + to_str(right)
    if isinstance(left, PSList):
        raise _op_not_defined(left, "op_Addition")
    if isinstance(left, list | tuple | bytes | bytearray):
        items = list(left)
        if isinstance(right, list | tuple | bytes | bytearray):
            items.extend(right)
        else:
            items.append(right)
        return items
    if isinstance(left, Hashtable):
        if not isinstance(right, Hashtable):
            raise runtime_error(
                "A hash table can only be added to another hash table.",
                "AddHashTableToNonHashTable",
                "InvalidOperation",
            )
        merged = Hashtable(left.items())
        for key, value in right.items():
            if key in merged:
                raise runtime_error(
                    f"Item has already been added. Key in dictionary: '{key}'  Key being added: '{key}'",
                    "System.ArgumentException",
                    "NotSpecified",
                    "System.ArgumentException",
                )
            merged[key] = value
        return merged
    if isinstance(left, datetime):
        if isinstance(right, timedelta):
            return left + right
        raise _op_not_defined(left, "op_Addition")
    if isinstance(left, timedelta):
        if isinstance(right, timedelta):
            return left + right
        if isinstance(right, datetime):
            return right + left
        raise _op_not_defined(left, "op_Addition")
    if isinstance(left, bool | int | float):
        return _arith(to_number(left), _number_operand(right), lambda a, b: a + b)
    raise _op_not_defined(left, "op_Addition")


def subtract(left: Any, right: Any) -> Any:
    if isinstance(left, datetime):
        if isinstance(right, datetime):
            return left - right
        if isinstance(right, timedelta):
            return left - right
        raise _op_not_defined(left, "op_Subtraction")
    if isinstance(left, timedelta) and isinstance(right, timedelta):
        return left - right
    if left is None or isinstance(left, bool | int | float | str):
        return _arith(_number_operand(left), _number_operand(right), lambda a, b: a - b)
    raise _op_not_defined(left, "op_Subtraction")


def multiply(left: Any, right: Any) -> Any:
    if isinstance(left, str):
        count = to_int(right)
        return left * max(count, 0)
    if isinstance(left, list | tuple) and not isinstance(left, PSList):
        return list(left) * max(to_int(right), 0)
    if left is None or isinstance(left, bool | int | float):
        return _arith(_number_operand(left), _number_operand(right), lambda a, b: a * b)
    raise _op_not_defined(left, "op_Multiply")


def _divide_by_zero() -> PowerShellError:
    return runtime_error(
        "Attempted to divide by zero.",
        "RuntimeException",
        "NotSpecified",
        "System.Management.Automation.RuntimeException",
    )


def divide(left: Any, right: Any) -> Any:
    if left is None or isinstance(left, bool | int | float | str):
        a, b = _number_operand(left), _number_operand(right)
        if b == 0:
            if isinstance(a, float) or isinstance(b, float):
                if a == 0:
                    return math.nan
                return math.inf if a > 0 else -math.inf
            raise _divide_by_zero()
        if isinstance(a, int) and isinstance(b, int) and a % b == 0:
            return normalise_int(a // b)
        return a / b
    if isinstance(left, timedelta):
        return left / to_number(right)
    raise _op_not_defined(left, "op_Division")


def modulo(left: Any, right: Any) -> Any:
    if left is None or isinstance(left, bool | int | float | str):
        a, b = _number_operand(left), _number_operand(right)
        if b == 0:
            if isinstance(a, float) or isinstance(b, float):
                return math.nan
            raise _divide_by_zero()
        if isinstance(a, int) and isinstance(b, int):
            remainder = abs(a) % abs(b)
            return -remainder if a < 0 else remainder
        return math.fmod(a, b)
    raise _op_not_defined(left, "op_Modulus")


def negate(value: Any) -> Any:
    if isinstance(value, timedelta):
        return -value
    number = _number_operand(value)
    return normalise_int(-number) if isinstance(number, int) else -number


def bitwise(op: str, left: Any, right: Any) -> int:
    a = to_int(left, "System.Int64", -(1 << 63), (1 << 64) - 1)
    b = to_int(right, "System.Int64", -(1 << 63), (1 << 64) - 1)
    if op == "-band":
        return a & b
    if op == "-bor":
        return a | b
    if op == "-bxor":
        return a ^ b
    if op == "-shl":
        return a << b
    if op == "-shr":
        return a >> b
    raise NotSupportedByLab(f"operator {op}")


def range_op(left: Any, right: Any) -> list[int]:
    start, end = to_int(left), to_int(right)
    step = 1 if end >= start else -1
    if abs(end - start) > 50_000_000:
        raise runtime_error(
            "The range operator produced more elements than the lab allows.", "RangeTooLarge", "LimitsExceeded"
        )
    return list(range(start, end + step, step))


def format_op(left: Any, right: Any) -> str:
    args = list(right) if isinstance(right, list | tuple) else [right]
    return composite_format(to_str(left), args)


def arithmetic(op: str, left: Any, right: Any) -> Any:
    if op == "+":
        return add(left, right)
    if op == "-":
        return subtract(left, right)
    if op == "*":
        return multiply(left, right)
    if op == "/":
        return divide(left, right)
    if op == "%":
        return modulo(left, right)
    raise NotSupportedByLab(f"operator {op}")
