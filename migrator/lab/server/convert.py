"""Values across the PSRP seam: psrpcore's CLIXML types ↔ the lab's plain values (see ``shell.py``).

Inbound (parameters and pipeline input) psrpcore hands us ``PSString``, ``PSInt``, ``PSList``, ``PSDict``,
rehydrated ``PSObject`` s...; the device only sees ``str``, ``int``, ``list``, :class:`Hashtable`,
:class:`~migrator.lab.shell.PSObject`. Outbound, lab values become the CLIXML Windows PowerShell would emit
([MS-PSRP] 2.2.5): ``float`` → ``<Db>`` (a Python float would otherwise go out as ``<Sg>``), ``list`` →
``System.Object[]``, :class:`Hashtable` → ``System.Collections.Hashtable``, :class:`PSObject` → an object
with its type names in ``<TN>`` and its properties as note properties in ``<MS>``.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import re
import uuid
from typing import Any

from psrpcore.types import (
    CommandOrigin,
    ErrorCategory,
    ErrorCategoryInfo,
    InvocationInfo,
    NETException,
    PSByteArray,
    PSDateTime,
    PSDict,
    PSDouble,
    PSGuid,
    PSListBase,
    PSNoteProperty,
    PSObject,
    PSSecureString,
    PSString,
    PSType,
    PSVersion,
)
from psrpcore.types import ErrorRecord as PSErrorRecord

from migrator.lab import shell

_DESERIALIZED = "Deserialized."
_NET_TYPE_NAMES = {
    str: "String",
    bool: "Boolean",
    int: "Int32",
    float: "Double",
    bytes: "Byte[]",
    list: "Object[]",
    datetime.datetime: "DateTime",
    shell.Hashtable: "Hashtable",
    shell.PSObject: "PSCustomObject",
}


def net_type_name(value: Any) -> str:
    """The short .NET type name PowerShell shows in CategoryInfo.TargetType."""
    if isinstance(value, shell.PSObject) and value.type_names:
        return value.type_names[0].rsplit(".", 1)[-1]
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**31) <= value < 2**31:
        return "Int64"
    return _NET_TYPE_NAMES.get(type(value), type(value).__name__)


@PSType(["System.Object[]", "System.Array", "System.Object"], tag="LST", skip_inheritance=True)
class ObjectArray(PSListBase):
    """``object[]``: what PowerShell arrays (``@(...)``, ``1,2``) serialise as."""


class LabErrorCategoryInfo(ErrorCategoryInfo):
    """CategoryInfo whose text is .NET's ``ErrorCategoryInfo.ToString()`` (psrpcore drops the colon)."""

    def __str__(self) -> str:
        return (
            f"{self.Category.name}: ({self.TargetName or ''}:{self.TargetType or ''}) "
            f"[{self.Activity or ''}], {self.Reason or ''}"
        )


def to_lab(value: Any) -> Any:
    """A value psrpcore deserialised → the lab's plain value."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, enum.Enum):
        return int(value.value) if isinstance(value.value, int) else str(value.value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes):
        return bytes(value)
    if isinstance(value, datetime.datetime):
        plain = datetime.datetime(
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
            value.microsecond,
            tzinfo=value.tzinfo,
        )
        return plain.astimezone(datetime.UTC) if plain.tzinfo else plain.replace(tzinfo=datetime.UTC)
    if isinstance(value, datetime.timedelta):
        return datetime.timedelta(seconds=value.total_seconds())
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, PSVersion):
        return str(value)
    if isinstance(value, PSSecureString):
        # The client encrypted it with the session key; the device never needs the clear text through this path.
        return str(value)
    if isinstance(value, dict):
        return shell.Hashtable((str(to_lab(k)), to_lab(v)) for k, v in value.items())
    if isinstance(value, list):
        return [to_lab(v) for v in value]
    if isinstance(value, PSObject):
        meta = value.PSObject
        type_names = [t.removeprefix(_DESERIALIZED) for t in meta.type_names]
        properties = [(p.name, to_lab(p.get_value(value))) for p in meta.adapted_properties]
        properties += [(p.name, to_lab(p.get_value(value))) for p in meta.extended_properties]
        return shell.PSObject(properties, type_names=type_names or ["System.Object"], to_string=meta.to_string)
    return value


def to_clixml(value: Any) -> Any:
    """A lab value → the psrpcore object that serialises as Windows PowerShell would."""
    if value is None or isinstance(value, bool | str | bytes):
        if isinstance(value, bytes):
            return PSByteArray(value)
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return PSDouble(value)
    if isinstance(value, datetime.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
        return PSDateTime(
            aware.year,
            aware.month,
            aware.day,
            aware.hour,
            aware.minute,
            aware.second,
            aware.microsecond,
            tzinfo=aware.tzinfo,
        )
    if isinstance(value, uuid.UUID):
        return PSGuid(str(value))
    if isinstance(value, shell.Hashtable | dict):
        table = PSDict()
        for key, item in value.items():
            table[key] = to_clixml(item)
        return table
    if isinstance(value, list | tuple):
        return ObjectArray([to_clixml(v) for v in value])
    if isinstance(value, shell.PSObject):
        obj = PSObject()
        obj.PSObject.type_names = list(value.type_names)
        for name, item in value.properties.items():
            obj.PSObject.extended_properties.append(PSNoteProperty(name, value=to_clixml(item)))
        if value.to_string is not None:
            obj.PSObject.to_string = value.to_string
        return obj
    return PSString(str(value))


def error_record(record: shell.ErrorRecord) -> PSErrorRecord:
    """A lab :class:`~migrator.lab.shell.ErrorRecord` → psrpcore's ErrorRecord (exception, category, FQEID)."""
    exception = NETException(Message=record.message, HResult=-2146233087)
    # The exception's .NET type chain goes first in <TN> so clients see e.g. ItemNotFoundException.
    type_names = [record.exception_type]
    if record.exception_type != "System.Exception":
        type_names.append("System.Exception")
    type_names.append("System.Object")
    exception.PSObject.type_names = type_names
    exception.PSObject.to_string = f"{record.exception_type}: {record.message}"
    reason = record.reason or record.exception_type.rsplit(".", 1)[-1]
    category_info = LabErrorCategoryInfo(
        Category=ErrorCategory[record.category],
        Activity=record.activity,
        Reason=reason,
        TargetName=record.target_name,
        TargetType=net_type_name(record.target_object) if record.target_object is not None else "",
    )
    ps_record = PSErrorRecord(
        Exception=exception,
        CategoryInfo=category_info,
        TargetObject=to_clixml(record.target_object),
        FullyQualifiedErrorId=record.fully_qualified_error_id,
        InvocationInfo=invocation_info(record),
        ScriptStackTrace=record.script_stack_trace or None,
    )
    ps_record.serialize_extended_info = ps_record.InvocationInfo is not None
    return ps_record


_POSITION = re.compile(r"^At line:(\d+) char:(\d+)")


def invocation_info(record: shell.ErrorRecord) -> InvocationInfo | None:
    """The record's InvocationInfo with its PositionMessage ("At line:1 char:1", "+ <line>", "+ ~~~~"): what
    a client prints under the message ([MS-PSRP] 2.2.3.15.1, serialised with SerializeExtendedInfo)."""
    match = _POSITION.match(record.position_message)
    if match is None:
        return None
    lines = record.position_message.split("\n")
    line_text = lines[1][2:] if len(lines) > 1 and lines[1].startswith("+ ") else ""
    return InvocationInfo(
        BoundParameters=PSDict(),
        CommandOrigin=CommandOrigin.Internal,
        ExpectingInput=False,
        HistoryId=1,
        InvocationName=record.activity,
        Line=line_text,
        OffsetInLine=int(match.group(2)),
        PipelineLength=0,
        PipelinePosition=0,
        PositionMessage=record.position_message,
        PSCommandPath=None,
        PSScriptRoot="",
        ScriptLineNumber=int(match.group(1)),
        ScriptName="",
        UnboundArguments=[],
    )
