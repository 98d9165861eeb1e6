"""PowerShell values in Python, and the conversions between them (LanguagePrimitives, invariant culture).

Representation: ``None`` ($null), ``bool``, ``int`` (Int32/Int64), ``float`` (Double), ``str``, ``bytes``
(byte[]), ``list`` (object[]), :class:`shell.Hashtable`, :class:`shell.PSObject`, ``datetime`` (DateTime,
UTC aware), ``timedelta`` (TimeSpan), ``uuid.UUID`` (Guid), and the few lab classes below (Version,
ArrayList/List[T], script blocks, type literals, exception objects). Conversion rules follow
about_Type_Conversion / LanguagePrimitives.ConvertTo with the invariant culture, which is what casts and
string expansion use in Windows PowerShell 5.1.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, get_args

from migrator.lab import windows_names
from migrator.lab.ps.errors import (
    NotSupportedByLab,
    exception_base_names,
    invalid_cast,
    resolve_exception_type,
    runtime_error,
)
from migrator.lab.shell import ErrorCategory, ErrorRecord, Hashtable, PowerShellError, PSObject

if TYPE_CHECKING:
    from migrator.lab.ps.ast import ScriptBlockAst, TypeName

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
EPOCH_TICKS = 621355968000000000  # DateTime ticks of 1970-01-01


# ---- lab value classes -----------------------------------------------------------------------------------


class ScriptBlock:
    """A ``{ ... }`` value. Not a closure: PowerShell resolves its variables dynamically when invoked."""

    __slots__ = ("ast",)

    def __init__(self, block: ScriptBlockAst) -> None:
        self.ast = block

    def __str__(self) -> str:
        return self.ast.text

    def __repr__(self) -> str:
        return f"ScriptBlock({self.ast.text!r})"


class PSList(list[Any]):
    """System.Collections.ArrayList (``Add`` returns the index) or Generic.List[T] (``Add`` returns void)."""

    def __init__(self, items: Any = (), type_name: str = "System.Collections.ArrayList", element: Any = None):
        super().__init__(items)
        self.type_name = type_name
        self.element = element  # TypeName of List[T], or None


@dataclass(frozen=True, order=True)
class PSVersion:
    """System.Version: Major.Minor[.Build[.Revision]]; unset parts are -1 as in .NET."""

    major: int
    minor: int
    build: int = -1
    revision: int = -1

    @classmethod
    def parse(cls, text: str) -> PSVersion:
        parts = text.strip().split(".")
        if not 2 <= len(parts) <= 4 or not all(p.isdigit() for p in parts):
            raise invalid_cast(text, "System.Version", "Version string portion was too short or too long.")
        numbers = [int(p) for p in parts] + [-1] * (4 - len(parts))
        return cls(numbers[0], numbers[1], numbers[2], numbers[3])

    def __str__(self) -> str:
        parts = [self.major, self.minor, self.build, self.revision]
        return ".".join(str(p) for p in parts if p >= 0)


@dataclass(frozen=True)
class PSType:
    """A type literal used as a value (``[int]``, ``[System.IO.Path]``): static members hang off it."""

    full_name: str
    display: str

    @property
    def short_name(self) -> str:
        return self.full_name.rsplit(".", 1)[-1]

    def __str__(self) -> str:
        return self.display


@dataclass(frozen=True)
class PSException:
    """An exception object: ``$_.Exception`` or ``[System.Exception]::new('m')``."""

    type_name: str
    message: str
    record: ErrorRecord | None = None
    inner: PSException | None = None

    def __str__(self) -> str:
        return f"{self.type_name}: {self.message}"


@dataclass(frozen=True)
class EnumValue:
    """A .NET enum value (ErrorCategory, DayOfWeek, StringSplitOptions...): name and number."""

    type_name: str
    name: str
    value: int

    def __str__(self) -> str:
        return self.name


# ---- .NET enums ------------------------------------------------------------------------------------------


def _sequential(*names: str) -> dict[str, int]:
    return {name: index for index, name in enumerate(names)}


# Enum type -> member name -> value, in declaration order (the order error messages list them in).
ENUMS: dict[str, dict[str, int]] = {
    "System.StringComparison": _sequential(
        "CurrentCulture",
        "CurrentCultureIgnoreCase",
        "InvariantCulture",
        "InvariantCultureIgnoreCase",
        "Ordinal",
        "OrdinalIgnoreCase",
    ),
    "System.StringSplitOptions": _sequential("None", "RemoveEmptyEntries"),
    "System.Management.Automation.ActionPreference": _sequential(
        "SilentlyContinue", "Stop", "Continue", "Inquire", "Ignore", "Suspend"
    ),
    # ErrorCategory enum order: the index is the numeric value.
    "System.Management.Automation.ErrorCategory": _sequential(*get_args(ErrorCategory)),
    "System.DayOfWeek": _sequential("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"),
    "System.DateTimeKind": _sequential("Unspecified", "Utc", "Local"),
    "System.MidpointRounding": _sequential("ToEven", "AwayFromZero"),
    # System.Reflection.BindingFlags ([Flags], .NET Framework 4.x values).
    "System.Reflection.BindingFlags": {
        "Default": 0,
        "IgnoreCase": 1,
        "DeclaredOnly": 2,
        "Instance": 4,
        "Static": 8,
        "Public": 16,
        "NonPublic": 32,
        "FlattenHierarchy": 64,
        "InvokeMethod": 256,
        "CreateInstance": 512,
        "GetField": 1024,
        "SetField": 2048,
        "GetProperty": 4096,
        "SetProperty": 8192,
        "PutDispProperty": 16384,
        "PutRefDispProperty": 32768,
        "ExactBinding": 65536,
        "SuppressChangeType": 131072,
        "OptionalParamBinding": 262144,
        "IgnoreReturn": 16777216,
    },
}
FLAG_ENUMS = frozenset({"System.Reflection.BindingFlags"})


def _enum_cast_error(text: str, type_name: str, bad_name: str) -> PowerShellError:
    names = ENUMS[type_name]
    return PowerShellError(
        ErrorRecord(
            message=f'Cannot convert value "{text}" to type "{type_name}". Error: "Unable to match the identifier '
            f"name {bad_name} to a valid enumerator name. Specify one of the following enumerator names and try "
            f'again:\r\n{", ".join(names)}"',
            fully_qualified_error_id="InvalidCastParseTargetInvocation",
            category="InvalidArgument",
            exception_type="System.Management.Automation.PSInvalidCastException",
            reason="PSInvalidCastException",
        )
    )


def enum_name(type_name: str, value: int) -> str:
    """Enum.ToString(): the member's name; for [Flags] the set members, ascending, joined by ", "."""
    names = ENUMS[type_name]
    for name, number in names.items():
        if number == value:
            return name
    if type_name in FLAG_ENUMS:
        parts: list[str] = []
        rest = value
        for name, number in sorted(names.items(), key=lambda item: -item[1]):
            if number and rest & number == number:
                parts.append(name)
                rest &= ~number
        if rest == 0 and parts:
            return ", ".join(reversed(parts))
    return str(value)


def enum_value(type_name: str, name: str) -> EnumValue:
    """``[T]::Name`` and ``[T]'Name'``: the member by case-insensitive name (``'A, B'`` for [Flags] enums)."""
    names = ENUMS[type_name]
    wanted = [name] if type_name not in FLAG_ENUMS else [part.strip() for part in name.split(",")]
    total = 0
    for part in wanted:
        match = next((number for candidate, number in names.items() if candidate.casefold() == part.casefold()), None)
        if match is None:
            raise _enum_cast_error(name, type_name, part)
        total |= match
    return EnumValue(type_name, enum_name(type_name, total), total)


def to_enum(value: Any, type_name: str) -> EnumValue:
    """LanguagePrimitives' conversion to an enum: a member, its name(s), or a number the enum defines."""
    if isinstance(value, EnumValue) and value.type_name == type_name:
        return value
    if isinstance(value, int | EnumValue) and not isinstance(value, bool):
        number = value.value if isinstance(value, EnumValue) else value
        defined = ENUMS[type_name].values()
        covered = 0
        for member in defined:
            covered |= member
        if number in defined or (type_name in FLAG_ENUMS and number & ~covered == 0 and number >= 0):
            return EnumValue(type_name, enum_name(type_name, number), number)
        raise PowerShellError(
            ErrorRecord(
                message=f'Cannot convert value "{number}" to type "{type_name}" due to enumeration values that are '
                "not valid. Specify one of the following enumeration values and try again. The possible enumeration "
                f'values are "{",".join(ENUMS[type_name])}".',
                fully_qualified_error_id="RuntimeException",
                category="InvalidArgument",
                exception_type="System.Management.Automation.PSInvalidCastException",
                reason="PSInvalidCastException",
            )
        )
    text = to_str(value)
    if text.strip().lstrip("-").isdigit():
        return to_enum(int(text.strip()), type_name)
    return enum_value(type_name, text.strip())


# ---- enumeration -----------------------------------------------------------------------------------------


def is_enumerable(value: Any) -> bool:
    """Whether PowerShell unrolls the value in a pipeline (arrays and lists; not strings or hashtables)."""
    return isinstance(value, list | tuple | bytes | bytearray)


def enumerate_value(value: Any) -> Iterator[Any]:
    if isinstance(value, list | tuple | bytes | bytearray):
        yield from value
    else:
        yield value


def unroll(items: list[Any]) -> Any:
    """Pipeline output as a value: nothing -> $null, one object -> it, several -> object[]."""
    if not items:
        return None
    if len(items) == 1:
        return items[0]
    return items


def as_list(value: Any) -> list[Any]:
    """``@(value)``: enumerate arrays, wrap scalars, $null -> empty."""
    if value is None:
        return []
    if isinstance(value, list | tuple | bytes | bytearray):
        return list(value)
    return [value]


# ---- to string / bool / number ---------------------------------------------------------------------------


def format_double(value: float) -> str:
    """Double.ToString() on .NET Framework: 15 significant digits, E+XX exponents, Infinity/NaN."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"
    text = f"{value:.15G}"
    if "E" in text:
        mantissa, exponent = text.split("E")
        sign = exponent[0]
        digits = exponent[1:].lstrip("0").rjust(2, "0")
        text = f"{mantissa}E{sign}{digits}"
    return text


def format_double_roundtrip(value: float) -> str:
    """Double.ToString("R") on .NET Framework: 15 digits if they round-trip, else 17."""
    if math.isnan(value) or math.isinf(value) or value == 0:
        return format_double(value)
    text = f"{value:.15G}"
    if float(text) != value:
        text = f"{value:.17G}"
    if "E" in text:
        mantissa, exponent = text.split("E")
        text = f"{mantissa}E{exponent[0]}{exponent[1:].lstrip('0').rjust(2, '0')}"
    return text


def format_timespan(value: timedelta) -> str:
    """TimeSpan.ToString() 'c' format: [-][d.]hh:mm:ss[.fffffff]."""
    ticks = timespan_ticks(value)
    sign = "-" if ticks < 0 else ""
    ticks = abs(ticks)
    days, rest = divmod(ticks, 864000000000)
    hours, rest = divmod(rest, 36000000000)
    minutes, rest = divmod(rest, 600000000)
    seconds, fraction = divmod(rest, 10000000)
    text = f"{sign}{f'{days}.' if days else ''}{hours:02d}:{minutes:02d}:{seconds:02d}"
    if fraction:
        text += f".{fraction:07d}"
    return text


def timespan_ticks(value: timedelta) -> int:
    return (value.days * 86400 + value.seconds) * 10000000 + value.microseconds * 10


def datetime_ticks(value: datetime) -> int:
    naive = value.replace(tzinfo=None)
    delta = naive - datetime(1970, 1, 1)
    return EPOCH_TICKS + timespan_ticks(delta)


def psobject_to_string(value: PSObject) -> str:
    if value.to_string is not None:
        return value.to_string
    parts = [f"{key}={dotnet_to_string(item)}" for key, item in value.properties.items()]
    return "@{" + "; ".join(parts) + "}"


def dotnet_to_string(value: Any) -> str:
    """Object.ToString() (not PowerShell's conversion): arrays and hashtables show their type name."""
    if isinstance(value, list | tuple):
        return "System.Object[]"
    if isinstance(value, bytes | bytearray):
        return "System.Byte[]"
    if isinstance(value, Hashtable):
        return "System.Collections.Hashtable"
    return to_str(value)


def to_str(value: Any) -> str:
    """PowerShell's conversion to [string] (invariant culture; arrays joined by $OFS, a space)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_double(value)
    if isinstance(value, list | tuple | bytes | bytearray):
        return " ".join(to_str(item) for item in value)
    if isinstance(value, PSObject):
        return psobject_to_string(value)
    if isinstance(value, Hashtable):
        return "System.Collections.Hashtable"
    if isinstance(value, datetime):
        return value.strftime("%m/%d/%Y %H:%M:%S")
    if isinstance(value, timedelta):
        return format_timespan(value)
    if isinstance(value, ErrorRecord):
        return value.message
    if isinstance(value, PSException | PSVersion | PSType | EnumValue | ScriptBlock | uuid.UUID):
        return str(value)
    if isinstance(value, ExceptionHolder):
        return str(value.exception)
    text = getattr(value, "ps_to_string", None)
    if callable(text):
        result: str = text()
        return result
    raise NotSupportedByLab(f"conversion of a {type(value).__name__} to string")


class ExceptionHolder:
    """Marker base for objects that wrap an exception (see members.ErrorRecordView)."""

    exception: PSException


def to_bool(value: Any) -> bool:
    """about_Booleans: $null, 0, '', empty arrays are false; a one-element array is its element's truth."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        return len(value) > 0
    if isinstance(value, list | tuple | bytes | bytearray):
        if len(value) == 0:
            return False
        if len(value) == 1:
            return to_bool(value[0])
        return True
    return True


_INT_TEXT = re.compile(r"^\s*([+-]?)(0x[0-9a-fA-F]+|[0-9]+)\s*$")
_FLOAT_TEXT = re.compile(r"^\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$")


def parse_number(text: str) -> int | float | None:
    """A string as PowerShell reads it in arithmetic ('0x10', ' 12 ', '1e3'); None if it is not a number."""
    if text.strip() == "":
        return 0
    match = _INT_TEXT.match(text)
    if match:
        sign, digits = match.groups()
        value = int(digits, 16) if digits.lower().startswith("0x") else int(digits)
        return -value if sign == "-" else value
    if _FLOAT_TEXT.match(text):
        return float(text)
    return None


def to_number(value: Any, for_type: str = "System.Int32") -> int | float:
    if value is None:
        return 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        number = parse_number(value)
        if number is None:
            raise invalid_cast(value, for_type, "Input string was not in a correct format.")
        return number
    if isinstance(value, EnumValue):
        return value.value
    if isinstance(value, list | tuple) and len(value) == 1:
        return to_number(value[0], for_type)
    raise invalid_cast(to_str(value), for_type)


def to_int(value: Any, type_name: str = "System.Int32", low: int = INT32_MIN, high: int = INT32_MAX) -> int:
    number = to_number(value, type_name)
    if isinstance(number, float):
        if math.isnan(number) or math.isinf(number):
            raise invalid_cast(to_str(value), type_name, "Value was either too large or too small for an Int32.")
        number = round(number)  # .NET Convert: banker's rounding, like Python's round()
    if not low <= number <= high:
        short = type_name.rsplit(".", maxsplit=1)[-1]
        raise invalid_cast(to_str(value), type_name, f"Value was either too large or too small for an {short}.")
    return number


def to_double(value: Any) -> float:
    return float(to_number(value, "System.Double"))


def normalise_int(value: int) -> int | float:
    """Integer arithmetic widens Int32 -> Int64 -> Double like PowerShell's operators."""
    if INT64_MIN <= value <= INT64_MAX:
        return value
    return float(value)


# ---- dates -----------------------------------------------------------------------------------------------

# DateTime.Kind rides on the tzinfo object: the lab's machines run in UTC, so Local and Unspecified times are
# the same instant as UTC but print differently ('o' format: "+00:00", "" and "Z").
LOCAL = timezone(timedelta(0), "Local")
UNSPECIFIED = timezone(timedelta(0), "Unspecified")


def datetime_kind(value: datetime) -> str:
    if value.tzinfo is LOCAL:
        return "Local"
    if value.tzinfo is UNSPECIFIED or value.tzinfo is None:
        return "Unspecified"
    return "Utc"


def as_local(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=LOCAL)


def as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo in (None, UNSPECIFIED) else value.astimezone(UTC)


_DATE_FORMATS = (
    "%Y-%m-%dT%H:%M:%S.%f%z",
    "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%dT%H:%M:%S.%f",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d",
    "%d %B %Y",
    "%B %d, %Y",
)


def parse_datetime(text: str) -> datetime:
    """[datetime]'...' with the invariant culture (ISO 8601, MM/dd/yyyy and a few long forms)."""
    candidate = text.strip()
    if candidate.endswith("Z"):
        candidate = candidate[:-1] + "+0000"
    # .NET takes 7 fractional digits; Python's %f takes at most 6.
    candidate = re.sub(r"(\.\d{6})\d+", r"\1", candidate)
    for pattern in _DATE_FORMATS:
        try:
            parsed = datetime.strptime(candidate, pattern)
        except ValueError:
            continue
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UNSPECIFIED)
        return as_local(parsed)
    raise invalid_cast(text, "System.DateTime", "String was not recognized as a valid DateTime.")


def to_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UNSPECIFIED)
    if isinstance(value, str):
        return parse_datetime(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return datetime(1, 1, 1, tzinfo=UNSPECIFIED) + timedelta(microseconds=value // 10)
    raise invalid_cast(to_str(value), "System.DateTime")


def to_timespan(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return timedelta(microseconds=value / 10)
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(-)?(?:(\d+)\.)?(\d+):(\d+)(?::(\d+)(?:\.(\d+))?)?\s*", value)
        if match:
            sign, days, hours, minutes, seconds, fraction = match.groups()
            total = timedelta(
                days=int(days or 0),
                hours=int(hours),
                minutes=int(minutes),
                seconds=int(seconds or 0),
                microseconds=int((fraction or "0").ljust(7, "0")[:7]) / 10,
            )
            return -total if sign else total
        if value.strip().isdigit():
            return timedelta(days=int(value))
    raise invalid_cast(to_str(value), "System.TimeSpan")


# ---- types -----------------------------------------------------------------------------------------------

# Accelerators and full names -> canonical full name (about_Type_Accelerators).
_TYPE_NAMES: dict[str, str] = {}


def _register(full: str, *aliases: str) -> None:
    _TYPE_NAMES[full.casefold()] = full
    for alias in aliases:
        _TYPE_NAMES[alias.casefold()] = full


_register("System.String", "string")
_register("System.Int32", "int", "int32")
_register("System.Int64", "long", "int64")
_register("System.Int16", "int16", "short")
_register("System.UInt16", "uint16", "ushort")
_register("System.UInt32", "uint32", "uint")
_register("System.UInt64", "uint64", "ulong")
_register("System.Byte", "byte")
_register("System.SByte", "sbyte")
_register("System.Double", "double")
_register("System.Single", "float", "single")
_register("System.Boolean", "bool", "boolean")
_register("System.Char", "char")
_register("System.DateTime", "datetime")
_register("System.TimeSpan", "timespan")
_register("System.Guid", "guid")
_register("System.Version", "version")
_register("System.Object", "object")
_register("System.Array", "array")
_register("System.Collections.Hashtable", "hashtable")
_register("System.Collections.Specialized.OrderedDictionary", "ordered")
_register("System.Management.Automation.PSObject", "psobject")
_register("System.Management.Automation.PSCustomObject", "pscustomobject")
_register("System.Management.Automation.SwitchParameter", "switch")
_register("System.Void", "void")
_register("System.Text.RegularExpressions.Regex", "regex")
_register("System.Management.Automation.ScriptBlock", "scriptblock")
_register("System.Management.Automation.ErrorRecord", "errorrecord")
_register("System.Collections.ArrayList", "collections.arraylist")
_register("System.Collections.Generic.List", "collections.generic.list")
_register("System.Collections.IDictionary", "collections.idictionary")
_register("System.Collections.IEnumerable", "collections.ienumerable")
_register("System.Convert", "convert")
_register("System.Math", "math")
_register("System.Environment", "environment")
_register("System.Text.Encoding", "text.encoding")
_register("System.Text.UTF8Encoding", "text.utf8encoding")
_register("System.IO.Path", "io.path")
_register("System.Net.Dns", "net.dns")
_register("System.Console", "console")
_register("System.StringComparison", "stringcomparison")
_register("System.StringSplitOptions", "stringsplitoptions")
_register("System.Management.Automation.ActionPreference", "management.automation.actionpreference")
_register("System.Management.Automation.ErrorCategory", "management.automation.errorcategory")
_register("System.Security.Principal.WindowsIdentity", "security.principal.windowsidentity")
_register("System.DayOfWeek", "dayofweek")
_register("System.DateTimeKind", "datetimekind")
_register("System.Management.Automation.PSCredential", "pscredential")
_register("System.Security.SecureString", "securestring")
_register("System.Xml.XmlDocument", "xml")
_register("System.Net.IPAddress", "ipaddress")
_register("System.Decimal", "decimal")
_register("System.Reflection.BindingFlags")
_register("System.MidpointRounding")
_register("System.IO.File")
_register("System.IO.FileInfo")
_register("System.IO.FileStream")
_register("System.BitConverter")
for _hash_type in (
    "HashAlgorithm",
    "SHA1",
    "SHA1CryptoServiceProvider",
    "SHA1Managed",
    "SHA256",
    "SHA256Managed",
    "SHA256CryptoServiceProvider",
    "MD5",
    "MD5CryptoServiceProvider",
):
    _register(f"System.Security.Cryptography.{_hash_type}")

_SHORT_DISPLAY = {
    "System.String": "string",
    "System.Int32": "int",
    "System.Int64": "long",
    "System.Double": "double",
    "System.Boolean": "bool",
    "System.Object": "System.Object",
    "System.Collections.Hashtable": "hashtable",
}
_UNSUPPORTED_TYPES = {
    "System.Management.Automation.PSCredential",
    "System.Security.SecureString",
    "System.Xml.XmlDocument",
    "System.Net.IPAddress",
    "System.Decimal",
}


# The ``using namespace`` names of the script now running (set by the runspace around an invocation).
USING_NAMESPACES: ContextVar[tuple[str, ...]] = ContextVar("using_namespaces", default=())


def resolve_type_name(name: str) -> str | None:
    """Canonical full name for a type as written, or None if PowerShell would not find it."""
    found = _resolve_type_name(name)
    if found is None:
        for namespace in USING_NAMESPACES.get():
            found = _resolve_type_name(f"{namespace}.{name}")
            if found is not None:
                break
    return found


def _resolve_type_name(name: str) -> str | None:
    folded = name.casefold()
    if folded in _TYPE_NAMES:
        return _TYPE_NAMES[folded]
    if folded.startswith("system.") and folded[7:] in _TYPE_NAMES:
        return _TYPE_NAMES[folded[7:]]
    if ("system." + folded) in _TYPE_NAMES:
        return _TYPE_NAMES["system." + folded]
    return resolve_exception_type(name)


def type_not_found(name: str) -> Exception:
    """ "Unable to find type" only for a name Windows lacks too; a real .NET type the lab has not modelled is the
    boundary's refusal (architecture rule 8), never a claim that Windows has no such type."""
    candidates = [name, *(f"{namespace}.{name}" for namespace in USING_NAMESPACES.get())]
    if any(windows_names.is_dotnet_type(candidate) for candidate in candidates):
        return NotSupportedByLab(f"The type [{name}]")
    return runtime_error(f"Unable to find type [{name}].", "TypeNotFound", "InvalidOperation", target=name)


def type_value(type_name: TypeName) -> PSType:
    full = resolve_type_name(type_name.name)
    if full is None:
        raise type_not_found(str(type_name))
    if type_name.array:
        return PSType(full + "[]", str(type_name))
    if type_name.generic_args:
        return PSType(full + "[" + ",".join(str(a) for a in type_name.generic_args) + "]", str(type_name))
    return PSType(full, str(type_name) if "." not in type_name.name else full)


def type_names_of(value: Any) -> list[str]:
    """The .NET type hierarchy of a value, most derived first (``-is`` and ``GetType()``)."""
    if value is None:
        return []
    if isinstance(value, bool):
        return ["System.Boolean", "System.ValueType", "System.Object"]
    if isinstance(value, int):
        name = "System.Int32" if INT32_MIN <= value <= INT32_MAX else "System.Int64"
        return [name, "System.ValueType", "System.Object"]
    if isinstance(value, float):
        return ["System.Double", "System.ValueType", "System.Object"]
    if isinstance(value, str):
        return ["System.String", "System.Object"]
    if isinstance(value, PSList):
        return [value.type_name, "System.Object"]
    if isinstance(value, list | tuple):
        return ["System.Object[]", "System.Array", "System.Object"]
    if isinstance(value, bytes | bytearray):
        return ["System.Byte[]", "System.Array", "System.Object"]
    if isinstance(value, Hashtable):
        return ["System.Collections.Hashtable", "System.Object"]
    if isinstance(value, PSObject):
        return list(value.type_names)
    if isinstance(value, datetime):
        return ["System.DateTime", "System.ValueType", "System.Object"]
    if isinstance(value, timedelta):
        return ["System.TimeSpan", "System.ValueType", "System.Object"]
    if isinstance(value, uuid.UUID):
        return ["System.Guid", "System.ValueType", "System.Object"]
    if isinstance(value, PSVersion):
        return ["System.Version", "System.Object"]
    if isinstance(value, ScriptBlock):
        return ["System.Management.Automation.ScriptBlock", "System.Object"]
    if isinstance(value, ErrorRecord):
        return ["System.Management.Automation.ErrorRecord", "System.Object"]
    if isinstance(value, PSException):
        return [*exception_base_names(value.type_name), "System.Object"]
    if isinstance(value, PSType):
        return ["System.RuntimeType", "System.Type", "System.Object"]
    if isinstance(value, EnumValue):
        return [value.type_name, "System.Enum", "System.ValueType", "System.Object"]
    names = getattr(value, "ps_type_names", None)
    if names is not None:
        return list(names)
    return ["System.Object"]


def is_instance(value: Any, full_name: str) -> bool:
    folded = full_name.casefold()
    if folded == "system.object":
        return value is not None
    if folded in ("system.management.automation.psobject",):
        return value is not None
    if folded == "system.management.automation.pscustomobject":
        return isinstance(value, PSObject)
    if folded == "system.collections.idictionary":
        return isinstance(value, Hashtable)
    if folded == "system.collections.ienumerable":
        return isinstance(value, list | tuple | bytes | str | Hashtable)
    if folded == "system.management.automation.switchparameter":
        return isinstance(value, bool)
    if folded == "system.int64" and isinstance(value, int) and not isinstance(value, bool):
        return not INT32_MIN <= value <= INT32_MAX
    return any(name.casefold() == folded for name in type_names_of(value))


# ---- conversion ------------------------------------------------------------------------------------------


def convert_to(value: Any, type_name: TypeName) -> Any:
    """``[T]value`` (and parameter/variable type constraints)."""
    full = resolve_type_name(type_name.name)
    if full is None:
        raise type_not_found(str(type_name))
    if full in _UNSUPPORTED_TYPES:
        raise NotSupportedByLab(f"[{type_name}]")
    if type_name.array:
        element = type(type_name)(type_name.name)
        items = as_list(value)
        if full == "System.Byte" and isinstance(value, bytes | bytearray):
            return bytes(value)
        converted = [convert_to(item, element) for item in items]
        if full == "System.Byte":
            return bytes(converted)
        return converted
    if type_name.generic_args:
        if full == "System.Collections.Generic.List":
            element = type_name.generic_args[0]
            return PSList(
                (convert_to(v, element) for v in as_list(value)), f"System.Collections.Generic.List[{element}]", element
            )
        raise NotSupportedByLab(f"[{type_name}]")
    return convert_scalar(value, full, str(type_name))


def convert_scalar(value: Any, full: str, written: str = "") -> Any:
    written = written or full
    if full in ENUMS:
        return to_enum(value, full)
    if full == "System.String":
        if value is None:
            return ""
        return to_str(value)
    if full in (
        "System.Int32",
        "System.Int64",
        "System.Int16",
        "System.UInt16",
        "System.UInt32",
        "System.UInt64",
        "System.Byte",
        "System.SByte",
    ):
        bounds = {
            "System.Int32": (INT32_MIN, INT32_MAX),
            "System.Int64": (INT64_MIN, INT64_MAX),
            "System.Int16": (-(1 << 15), (1 << 15) - 1),
            "System.UInt16": (0, (1 << 16) - 1),
            "System.UInt32": (0, (1 << 32) - 1),
            "System.UInt64": (0, (1 << 64) - 1),
            "System.Byte": (0, 255),
            "System.SByte": (-128, 127),
        }[full]
        return to_int(value, full, *bounds)
    if full in ("System.Double", "System.Single"):
        return to_double(value)
    if full == "System.Boolean":
        return to_bool(value)
    if full == "System.Char":
        if isinstance(value, int) and not isinstance(value, bool):
            return chr(value)
        text = to_str(value)
        if len(text) != 1:
            raise invalid_cast(text, "System.Char", "String must be exactly one character long.")
        return text
    if full == "System.DateTime":
        return to_datetime(value)
    if full == "System.TimeSpan":
        return to_timespan(value)
    if full == "System.Guid":
        if isinstance(value, uuid.UUID):
            return value
        try:
            return uuid.UUID(to_str(value).strip())
        except ValueError:
            raise invalid_cast(
                to_str(value),
                "System.Guid",
                "Guid should contain 32 digits with 4 dashes (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx).",
            ) from None
    if full == "System.Version":
        if isinstance(value, PSVersion):
            return value
        return PSVersion.parse(to_str(value))
    if full in ("System.Object", "System.Management.Automation.PSObject"):
        return value
    if full == "System.Array":
        return as_list(value)
    if full in ("System.Collections.Hashtable", "System.Collections.Specialized.OrderedDictionary"):
        if isinstance(value, Hashtable):
            return value
        if isinstance(value, PSObject):
            raise invalid_cast(to_str(value), "System.Collections.Hashtable")
        raise invalid_cast(to_str(value), "System.Collections.Hashtable")
    if full == "System.Management.Automation.PSCustomObject":
        if isinstance(value, Hashtable):
            return PSObject(value.items())
        if isinstance(value, PSObject):
            return value
        return value
    if full == "System.Management.Automation.SwitchParameter":
        return to_bool(value)
    if full == "System.Management.Automation.ScriptBlock":
        if isinstance(value, ScriptBlock):
            return value
        raise invalid_cast(to_str(value), "System.Management.Automation.ScriptBlock")
    if full == "System.Text.RegularExpressions.Regex":
        return to_str(value)
    if full == "System.Void":
        return None
    if full == "System.Collections.ArrayList":
        return PSList(as_list(value))
    if full.endswith("Exception"):
        if isinstance(value, PSException):
            return value
        return PSException(full, to_str(value))
    if is_instance(value, full):
        return value
    raise NotSupportedByLab(f"conversion to [{written}]")


def try_convert(value: Any, type_name: TypeName) -> tuple[bool, Any]:
    try:
        return True, convert_to(value, type_name)
    except PowerShellError:
        return False, None
