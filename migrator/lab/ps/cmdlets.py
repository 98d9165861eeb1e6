"""The generic cmdlets the interpreter itself provides (Microsoft.PowerShell.Utility and friends).

Each is a class registered with :func:`cmdlet`, with PowerShell's ``begin``/``process``/``end`` life cycle
(``process`` receives the pipeline object, or ``NOTHING`` when the cmdlet runs without pipeline input).
Device cmdlets from ``host.cmdlets()`` win over these when names clash. Error ids use the .NET class names
Windows reports (``...,Microsoft.PowerShell.Commands.GetVariableCommand``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import cmp_to_key
from typing import TYPE_CHECKING, Any

from migrator.lab import windows_names
from migrator.lab.ps import members as mem
from migrator.lab.ps import operators as ops
from migrator.lab.ps import views
from migrator.lab.ps.binder import NOTHING, ParamSpec
from migrator.lab.ps.errors import NotSupportedByLab, StopUpstream, make_record
from migrator.lab.ps.formatting import cell_text, format_datetime, format_default, uformat_datetime
from migrator.lab.ps.jsonconv import from_json, to_json
from migrator.lab.ps.parser import parse_script
from migrator.lab.ps.session import VOID
from migrator.lab.ps.values import (
    PSException,
    PSType,
    ScriptBlock,
    as_local,
    enumerate_value,
    is_enumerable,
    resolve_type_name,
    to_bool,
    to_datetime,
    to_double,
    to_int,
    to_str,
    type_names_of,
    unroll,
)
from migrator.lab.shell import ErrorRecord, Hashtable, PowerShellError, PSObject

if TYPE_CHECKING:
    from migrator.lab.ps.commands import Context
    from migrator.lab.ps.interpreter import Interpreter
    from migrator.lab.ps.session import Scope


class GenericCmdlet:
    """Base of the lab's cmdlets."""

    def __init__(self, ctx: Context, params: dict[str, Any]) -> None:
        self.ctx = ctx
        self.params = params
        self.interp: Interpreter = ctx.interp

    def begin(self) -> None:
        return None

    def process(self, item: Any) -> None:
        return None

    def end(self) -> None:
        return None

    def emit(self, item: Any) -> None:
        self.ctx.out.append(item)

    def emit_all(self, value: Any) -> None:
        for item in enumerate_value(value):
            self.ctx.out.append(item)

    def has(self, name: str) -> bool:
        return name in self.params

    def flag(self, name: str) -> bool:
        return bool(self.params.get(name, False))

    def input_or(self, item: Any, name: str = "InputObject") -> list[Any]:
        """Objects to work on: the pipeline object, or the -InputObject argument (not enumerated)."""
        if item is not NOTHING:
            return [item]
        if name in self.params:
            return [self.params[name]]
        return []


@dataclass(frozen=True)
class GenericCmdletSpec:
    name: str
    params: tuple[ParamSpec, ...]
    factory: Callable[[Context, dict[str, Any]], GenericCmdlet]
    aliases: tuple[str, ...] = ()
    dotnet_class: str = ""

    @property
    def error_name(self) -> str:
        return self.dotnet_class or self.name


REGISTRY: dict[str, GenericCmdletSpec] = {}


def cmdlet(
    name: str, *params: ParamSpec, aliases: tuple[str, ...] = (), dotnet_class: str = ""
) -> Callable[[type[GenericCmdlet]], type[GenericCmdlet]]:
    """Register a lab cmdlet under its name and aliases (lower-cased, like ``host.cmdlets()``)."""

    def register(cls: type[GenericCmdlet]) -> type[GenericCmdlet]:
        spec = GenericCmdletSpec(name, tuple(params), cls, aliases, dotnet_class)
        REGISTRY[name.casefold()] = spec
        for alias in aliases:
            REGISTRY[alias.casefold()] = spec
        return cls

    return register


def P(
    name: str,
    kind: str = "any",
    *,
    position: int | None = None,
    aliases: tuple[str, ...] = (),
    mandatory: bool = False,
    pipeline: bool = False,
    by_property: bool = False,
    remaining: bool = False,
) -> ParamSpec:
    return ParamSpec(
        name=name,
        aliases=aliases,
        kind=kind,
        mandatory=mandatory,
        position=position,
        switch=kind == "switch",
        from_pipeline=pipeline,
        by_property=by_property,
        remaining=remaining,
    )


_INPUT = P("InputObject", pipeline=True)


# ---- helpers ---------------------------------------------------------------------------------------------


def property_value(interp: Interpreter, item: Any, name: Any) -> Any:
    """A property by name, a script block evaluated with ``$_``, as Select/Sort/Group/Measure use them."""
    if isinstance(name, ScriptBlock):
        return unroll(interp.invoke_with_item(name, item))
    return mem.get_member(interp, item, to_str(name))


def _property_names(item: Any) -> list[str]:
    if isinstance(item, PSObject):
        return list(item.properties.keys())
    if isinstance(item, Hashtable):
        return []
    return []


def _safe_compare(a: Any, b: Any, case_sensitive: bool = False) -> int:
    try:
        return ops.compare_order(a, b, case_sensitive)
    except PowerShellError:
        x, y = to_str(a), to_str(b)
        if not case_sensitive:
            x, y = x.casefold(), y.casefold()
        return (x > y) - (x < y)


# ---- Where-Object ----------------------------------------------------------------------------------------

_WHERE_OPERATORS = (
    "EQ",
    "NE",
    "GT",
    "GE",
    "LT",
    "LE",
    "Like",
    "NotLike",
    "Match",
    "NotMatch",
    "Contains",
    "NotContains",
    "In",
    "NotIn",
    "Is",
    "IsNot",
    "CEQ",
    "CNE",
    "CGT",
    "CGE",
    "CLT",
    "CLE",
    "CLike",
    "CNotLike",
    "CMatch",
    "CNotMatch",
    "CContains",
    "CNotContains",
    "CIn",
    "CNotIn",
)


class _Collecting(GenericCmdlet):
    """A cmdlet that needs all its input before it answers: pipeline items, or -InputObject given whole."""

    def begin(self) -> None:
        self.items: list[Any] = []

    def process(self, item: Any) -> None:
        if item is NOTHING:
            if "InputObject" in self.params:
                self.items.append(self.params["InputObject"])
            return
        self.items.append(item)


@cmdlet(
    "Where-Object",
    _INPUT,
    P("FilterScript", position=0),
    P("Property", "string"),
    P("Value", position=1),
    *(P(op, "switch") for op in _WHERE_OPERATORS),
    aliases=("where", "?"),
    dotnet_class="Microsoft.PowerShell.Commands.WhereObjectCommand",
)
class WhereObject(GenericCmdlet):
    def begin(self) -> None:
        script = self.params.get("FilterScript")
        self.script = script if isinstance(script, ScriptBlock) else None
        self.property: str | None = self.params.get("Property")
        if script is not None and self.script is None:
            self.property = to_str(script)
        operators = [op for op in _WHERE_OPERATORS if self.params.get(op)]
        if len(operators) > 1:
            raise NotSupportedByLab("Where-Object with several comparison operators")
        self.operator = operators[0] if operators else None
        if self.script is None and self.property is None:
            raise NotSupportedByLab("Where-Object without a filter")

    def process(self, item: Any) -> None:
        if item is NOTHING:
            item = self.params.get("InputObject")
            if item is None and "InputObject" not in self.params:
                return
        if self.script is not None:
            if to_bool(unroll(self.interp.invoke_with_item(self.script, item))):
                self.emit(item)
            return
        assert self.property is not None
        value = mem.get_member(self.interp, item, self.property)
        if self.operator is None:
            if to_bool(value):
                self.emit(item)
            return
        operand = self.params.get("Value")
        op = "-" + self.operator.casefold()
        if op in ("-in", "-notin", "-cin", "-cnotin"):
            result = ops.comparison(op, value, operand)
        else:
            result = ops.comparison(op, value, operand)
        if to_bool(result) if not isinstance(result, list) else bool(result):
            self.emit(item)


# ---- ForEach-Object --------------------------------------------------------------------------------------


@cmdlet(
    "ForEach-Object",
    _INPUT,
    P("Process", position=0),
    P("Begin"),
    P("End"),
    P("MemberName", "string"),
    P("ArgumentList", "object[]", aliases=("Args",)),
    P("RemainingScripts", remaining=True, position=1),
    aliases=("foreach", "%"),
    dotnet_class="Microsoft.PowerShell.Commands.ForEachObjectCommand",
)
class ForEachObject(GenericCmdlet):
    def begin(self) -> None:
        process = self.params.get("Process")
        self.member: str | None = self.params.get("MemberName")
        if "RemainingScripts" in self.params:
            raise NotSupportedByLab("ForEach-Object with several positional script blocks")
        if isinstance(process, list) and len(process) == 1:
            process = process[0]
        if isinstance(process, list):
            raise NotSupportedByLab("ForEach-Object with several -Process script blocks")
        self.script = process if isinstance(process, ScriptBlock) else None
        if process is not None and self.script is None:
            self.member = to_str(process)
        begin = self.params.get("Begin")
        if isinstance(begin, ScriptBlock):
            self.interp.run_with_item(begin, None, self.ctx.out)

    def process(self, item: Any) -> None:
        if item is NOTHING:
            item = self.params.get("InputObject")
        if self.script is not None:
            self.interp.run_with_item(self.script, item, self.ctx.out)
            return
        if self.member is None:
            return
        args = self.params.get("ArgumentList")
        if args is not None or self._is_method(item, self.member):
            result = mem.call_method(self.interp, item, self.member, list(args or []))
            if result is not VOID:
                self.emit_all(result)
            return
        value = mem.get_member(self.interp, item, self.member)
        if value is not None:
            self.emit_all(value)

    def _is_method(self, item: Any, name: str) -> bool:
        if isinstance(item, PSObject | Hashtable):
            return False
        try:
            mem.get_member(self.interp, item, name)
        except NotSupportedByLab:
            return True
        return isinstance(item, str) and name.casefold() != "length"

    def end(self) -> None:
        end = self.params.get("End")
        if isinstance(end, ScriptBlock):
            self.interp.run_with_item(end, None, self.ctx.out)


# ---- Select-Object ---------------------------------------------------------------------------------------


@cmdlet(
    "Select-Object",
    _INPUT,
    P("Property", "object[]", position=0),
    P("ExcludeProperty", "string[]"),
    P("ExpandProperty", "string"),
    P("First", "int"),
    P("Last", "int"),
    P("Skip", "int"),
    P("Unique", "switch"),
    P("Index", "object[]"),
    aliases=("select",),
    dotnet_class="Microsoft.PowerShell.Commands.SelectObjectCommand",
)
class SelectObject(GenericCmdlet):
    def begin(self) -> None:
        self.first = self.params.get("First")
        self.last = self.params.get("Last")
        self.skip = self.params.get("Skip") or 0
        self.index = [to_int(i) for i in self.params["Index"]] if "Index" in self.params else None
        self.seen = 0
        self.emitted = 0
        self.buffer: list[Any] = []
        self.unique_keys: list[Any] = []
        if self.has("ExpandProperty") and self.has("Property"):
            raise NotSupportedByLab("Select-Object with both -Property and -ExpandProperty")
        if self.has("ExcludeProperty") and not self.has("Property"):
            raise NotSupportedByLab("Select-Object -ExcludeProperty without -Property")

    def process(self, item: Any) -> None:
        if item is NOTHING:
            if "InputObject" not in self.params:
                return
            item = self.params["InputObject"]
        position = self.seen
        self.seen += 1
        if self.index is not None:
            if position in self.index:
                self._output(item)
            return
        if position < self.skip:
            return
        if self.last is not None:
            self.buffer.append(item)
            return
        if self.first is not None and self.emitted >= self.first:
            raise StopUpstream(self.ctx.processor)
        self._output(item)
        if self.first is not None and self.emitted >= self.first and not self.flag("Unique"):
            raise StopUpstream(self.ctx.processor)

    def end(self) -> None:
        if self.last is not None:
            items = self.buffer[-self.last :] if self.last else []
            if self.first is not None:
                items = self.buffer[: self.first] + [i for i in items if i not in self.buffer[: self.first]]
            for item in items:
                self._output(item)

    def _output(self, item: Any) -> None:
        results = self._select(item)
        for result in results:
            if self.flag("Unique"):
                key = _unique_key(result)
                if key in self.unique_keys:
                    continue
                self.unique_keys.append(key)
            self.emitted += 1
            self.emit(result)

    def _select(self, item: Any) -> list[Any]:
        if self.has("ExpandProperty"):
            name = self.params["ExpandProperty"]
            if isinstance(item, PSObject | Hashtable) and not _has_property(item, name):
                self.ctx.write_error(
                    make_record(
                        f'Property "{name}" cannot be found.',
                        "ExpandPropertyNotFound,Microsoft.PowerShell.Commands.SelectObjectCommand",
                        "InvalidArgument",
                        "System.Management.Automation.PSArgumentException",
                        target=item,
                    )
                )
                return []
            value = mem.get_member(self.interp, item, name)
            return list(value) if is_enumerable(value) else [value]
        if not self.has("Property"):
            return [item]
        properties: list[tuple[str, Any]] = []
        excluded = [e.casefold() for e in self.params.get("ExcludeProperty") or []]
        for spec in self.params["Property"]:
            if isinstance(spec, Hashtable):
                name, expression = _calculated(spec)
                properties.append((name, property_value(self.interp, item, expression)))
                continue
            if isinstance(spec, ScriptBlock):
                properties.append((str(spec).strip(), property_value(self.interp, item, spec)))
                continue
            name = to_str(spec)
            if any(ch in name for ch in "*?["):
                for candidate in _property_names(item):
                    if ops.like(candidate, name) and candidate.casefold() not in excluded:
                        properties.append((candidate, mem.get_member(self.interp, item, candidate)))
                continue
            if name.casefold() in excluded:
                continue
            properties.append((name, mem.get_member(self.interp, item, name)))
        original = type_names_of(item)[0] if type_names_of(item) else "System.Object"
        result = PSObject(
            [],
            [f"Selected.{original}", "System.Management.Automation.PSCustomObject", "System.Object"],
        )
        for name, value in properties:
            if name not in result.properties:
                result.properties[name] = value
        return [result]


def _has_property(item: Any, name: str) -> bool:
    if isinstance(item, PSObject):
        return name in item.properties
    return name in item


def _calculated(spec: Hashtable) -> tuple[str, Any]:
    """A calculated property @{Name/N/Label/L = ...; Expression/E = ...} (keys may be abbreviated)."""
    name: str | None = None
    expression: Any = None
    for key, value in spec.items():
        folded = to_str(key).casefold()
        if "name".startswith(folded) or "label".startswith(folded):
            name = to_str(value)
        elif "expression".startswith(folded):
            expression = value
        elif folded not in ("formatstring", "width", "alignment", "ascending", "descending"):
            raise NotSupportedByLab(f"calculated property key '{key}'")
    if expression is None:
        raise PowerShellError(
            make_record(
                "The Expression key is missing.",
                "DictionaryKeyMissing,Microsoft.PowerShell.Commands.SelectObjectCommand",
                "InvalidArgument",
                "System.NotSupportedException",
            )
        )
    if name is None:
        name = str(expression).strip() if isinstance(expression, ScriptBlock) else to_str(expression)
    return name, expression


def _unique_key(value: Any) -> Any:
    if isinstance(value, PSObject):
        return ("psobject", tuple((k, _unique_key(v)) for k, v in value.properties.items()))
    if isinstance(value, list):
        return ("list", tuple(_unique_key(v) for v in value))
    if isinstance(value, Hashtable):
        return ("hashtable", id(value))
    if isinstance(value, str):
        return ("str", value)
    return ("value", to_str(value))


# ---- Sort-Object -----------------------------------------------------------------------------------------


@cmdlet(
    "Sort-Object",
    _INPUT,
    P("Property", "object[]", position=0),
    P("Descending", "switch"),
    P("Unique", "switch"),
    P("CaseSensitive", "switch"),
    aliases=("sort",),
    dotnet_class="Microsoft.PowerShell.Commands.SortObjectCommand",
)
class SortObject(_Collecting):
    def end(self) -> None:
        descending = self.flag("Descending")
        case_sensitive = self.flag("CaseSensitive")
        keys: list[tuple[Any, bool]] = []
        for spec in self.params.get("Property") or []:
            if isinstance(spec, Hashtable):
                expression: Any = None
                direction = descending
                for key, value in spec.items():
                    folded = to_str(key).casefold()
                    if "expression".startswith(folded):
                        expression = value
                    elif folded == "descending":
                        direction = to_bool(value)
                    elif folded == "ascending":
                        direction = not to_bool(value)
                keys.append((expression, direction))
            else:
                keys.append((spec, descending))
        decorated = [
            ([property_value(self.interp, item, k) for k, _ in keys] if keys else [item], item) for item in self.items
        ]

        def compare(a: tuple[list[Any], Any], b: tuple[list[Any], Any]) -> int:
            directions = [d for _, d in keys] if keys else [descending]
            for x, y, direction in zip(a[0], b[0], directions, strict=True):
                result = _safe_compare(x, y, case_sensitive)
                if result:
                    return -result if direction else result
            return 0

        decorated.sort(key=cmp_to_key(compare))
        previous: tuple[list[Any], Any] | None = None
        for entry in decorated:
            if self.flag("Unique") and previous is not None and compare(previous, entry) == 0:
                continue
            previous = entry
            self.emit(entry[1])


# ---- Measure-Object --------------------------------------------------------------------------------------


@cmdlet(
    "Measure-Object",
    _INPUT,
    P("Property", "object[]", position=0),
    P("Sum", "switch"),
    P("Average", "switch"),
    P("Maximum", "switch"),
    P("Minimum", "switch"),
    P("Line", "switch"),
    P("Word", "switch"),
    P("Character", "switch"),
    aliases=("measure",),
    dotnet_class="Microsoft.PowerShell.Commands.MeasureObjectCommand",
)
class MeasureObject(_Collecting):
    def begin(self) -> None:
        if self.flag("Line") or self.flag("Word") or self.flag("Character"):
            raise NotSupportedByLab("Measure-Object -Line/-Word/-Character")
        super().begin()

    def end(self) -> None:
        properties = self.params.get("Property") or [None]
        for name in properties:
            values: list[Any] = []
            for item in self.items:
                if name is None:
                    values.append(item)
                elif isinstance(item, PSObject) and not isinstance(name, ScriptBlock) and to_str(name) not in item:
                    continue
                else:
                    values.append(property_value(self.interp, item, name))
            self.emit(self._measure(values, name))

    def _measure(self, values: list[Any], name: Any) -> PSObject:
        wanted = {k: self.flag(k) for k in ("Sum", "Average", "Maximum", "Minimum")}
        numbers: list[float] = []
        if any(wanted.values()):
            for value in values:
                if value is None:
                    continue
                try:
                    numbers.append(to_double(value))
                except PowerShellError:
                    raise PowerShellError(
                        make_record(
                            f'Input object "{to_str(value)}" is not numeric.',
                            "NonNumericInputObject,Microsoft.PowerShell.Commands.MeasureObjectCommand",
                            "InvalidType",
                            "System.Management.Automation.PSInvalidOperationException",
                            target=value,
                        )
                    ) from None
        count = len(values)

        def pick(flag: str, compute: Callable[[], Any]) -> Any:
            return compute() if wanted[flag] and numbers else None

        return PSObject(
            [
                ("Count", count),
                ("Average", pick("Average", lambda: sum(numbers) / len(numbers))),
                ("Sum", pick("Sum", lambda: float(sum(numbers)))),
                ("Maximum", pick("Maximum", lambda: max(numbers))),
                ("Minimum", pick("Minimum", lambda: min(numbers))),
                ("Property", None if name is None else to_str(name)),
            ],
            [
                "Microsoft.PowerShell.Commands.GenericMeasureInfo",
                "Microsoft.PowerShell.Commands.MeasureInfo",
                "System.Object",
            ],
        )


# ---- Group-Object ----------------------------------------------------------------------------------------


@cmdlet(
    "Group-Object",
    _INPUT,
    P("Property", "object[]", position=0),
    P("NoElement", "switch"),
    P("AsHashTable", "switch"),
    P("AsString", "switch"),
    P("CaseSensitive", "switch"),
    aliases=("group",),
    dotnet_class="Microsoft.PowerShell.Commands.GroupObjectCommand",
)
class GroupObject(GenericCmdlet):
    def begin(self) -> None:
        self.groups: list[tuple[str, list[Any], list[Any]]] = []

    def process(self, item: Any) -> None:
        if item is NOTHING:
            if "InputObject" not in self.params:
                return
            item = self.params["InputObject"]
        properties = self.params.get("Property") or []
        values = [property_value(self.interp, item, p) for p in properties] if properties else [item]
        name = ", ".join(to_str(v) for v in values)
        case_sensitive = self.flag("CaseSensitive")
        for group_name, _values, members in self.groups:
            same = group_name == name if case_sensitive else group_name.casefold() == name.casefold()
            if same:
                members.append(item)
                return
        self.groups.append((name, values, [item]))

    def end(self) -> None:
        if self.flag("AsHashTable"):
            table = Hashtable()
            for name, values, members in self.groups:
                key = name if self.flag("AsString") or len(values) != 1 else values[0]
                table[key] = members
            self.emit(table)
            return
        for name, values, members in self.groups:
            properties: list[tuple[str, Any]] = [("Count", len(members)), ("Name", name)]
            if not self.flag("NoElement"):
                properties.append(("Group", members))
            properties.append(("Values", values))
            self.emit(
                PSObject(
                    properties,
                    ["Microsoft.PowerShell.Commands.GroupInfo", "System.Object"]
                    if not self.flag("NoElement")
                    else ["Microsoft.PowerShell.Commands.GroupInfoNoElement", "System.Object"],
                )
            )


# ---- dates and time --------------------------------------------------------------------------------------


@cmdlet(
    "Get-Date",
    P("Date", "datetime", position=0, pipeline=True, aliases=("LastWriteTime",)),
    P("Year", "int"),
    P("Month", "int"),
    P("Day", "int"),
    P("Hour", "int"),
    P("Minute", "int"),
    P("Second", "int"),
    P("Millisecond", "int"),
    P("Format", "string"),
    P("UFormat", "string"),
    P("DisplayHint", "string"),
    dotnet_class="Microsoft.PowerShell.Commands.GetDateCommand",
)
class GetDate(GenericCmdlet):
    def process(self, item: Any) -> None:
        value = to_datetime(item) if item is not NOTHING else self.params.get("Date")
        if value is None:
            value = as_local(self.interp.host.clock.now())
        replacements = {
            "Year": "year",
            "Month": "month",
            "Day": "day",
            "Hour": "hour",
            "Minute": "minute",
            "Second": "second",
        }
        changes = {attr: self.params[name] for name, attr in replacements.items() if name in self.params}
        if changes:
            value = value.replace(**changes)
        if "Millisecond" in self.params:
            value = value.replace(microsecond=self.params["Millisecond"] * 1000)
        if "Format" in self.params:
            self.emit(format_datetime(value, self.params["Format"]))
        elif "UFormat" in self.params:
            self.emit(uformat_datetime(value, self.params["UFormat"]))
        else:
            self.emit(value)


@cmdlet(
    "New-TimeSpan",
    P("Start", "datetime", position=0),
    P("End", "datetime", position=1),
    P("Days", "int"),
    P("Hours", "int"),
    P("Minutes", "int"),
    P("Seconds", "int"),
    dotnet_class="Microsoft.PowerShell.Commands.NewTimeSpanCommand",
)
class NewTimeSpan(GenericCmdlet):
    def process(self, item: Any) -> None:
        if "Start" in self.params or "End" in self.params:
            now = as_local(self.interp.host.clock.now())
            start = self.params.get("Start") or now
            end = self.params.get("End") or now
            self.emit(end - start)
            return
        self.emit(
            timedelta(
                days=self.params.get("Days", 0),
                hours=self.params.get("Hours", 0),
                minutes=self.params.get("Minutes", 0),
                seconds=self.params.get("Seconds", 0),
            )
        )


_SLEEP_SLICE = 0.25  # seconds: Runspace.stop() is honoured within this much (virtual or real) time


@cmdlet(
    "Start-Sleep",
    P("Seconds", "int", position=0, aliases=("s",)),
    P("Milliseconds", "int", aliases=("ms",)),
    aliases=("sleep",),
    dotnet_class="Microsoft.PowerShell.Commands.StartSleepCommand",
)
class StartSleep(GenericCmdlet):
    def process(self, item: Any) -> None:
        if "Seconds" in self.params:
            remaining = float(self.params["Seconds"])
        elif "Milliseconds" in self.params:
            remaining = self.params["Milliseconds"] / 1000
        else:
            raise PowerShellError(
                make_record(
                    "Parameter set cannot be resolved using the specified named parameters.",
                    "AmbiguousParameterSet,Microsoft.PowerShell.Commands.StartSleepCommand",
                    "InvalidArgument",
                    "System.Management.Automation.ParameterBindingException",
                )
            )
        clock = self.interp.host.clock
        while remaining > 0:
            self.interp.check_stop()
            step = min(_SLEEP_SLICE, remaining)
            clock.sleep(step)
            remaining -= step
        self.interp.check_stop()


# ---- JSON ------------------------------------------------------------------------------------------------


@cmdlet(
    "ConvertTo-Json",
    P("InputObject", position=0, pipeline=True, mandatory=True),
    P("Depth", "int"),
    P("Compress", "switch"),
    dotnet_class="Microsoft.PowerShell.Commands.ConvertToJsonCommand",
)
class ConvertToJson(GenericCmdlet):
    def begin(self) -> None:
        self.items: list[Any] = []

    def process(self, item: Any) -> None:
        if item is NOTHING:
            self.items.append(self.params.get("InputObject"))
        else:
            self.items.append(item)

    def end(self) -> None:
        if not self.items:
            return
        value = self.items[0] if len(self.items) == 1 else self.items
        depth = self.params.get("Depth", 2)
        if not 0 <= depth <= 100:
            raise PowerShellError(
                make_record(
                    f"Cannot validate argument on parameter 'Depth'. The {depth} argument is greater than the maximum "
                    "allowed range of 100. Supply an argument that is less than or equal to 100 and then try the "
                    "command again.",
                    "ParameterArgumentValidationError,Microsoft.PowerShell.Commands.ConvertToJsonCommand",
                    "InvalidData",
                    "System.Management.Automation.ParameterBindingException",
                )
            )
        self.emit(to_json(value, depth, self.flag("Compress")))


@cmdlet(
    "ConvertFrom-Json",
    P("InputObject", "string", position=0, pipeline=True, mandatory=True),
    dotnet_class="Microsoft.PowerShell.Commands.ConvertFromJsonCommand",
)
class ConvertFromJson(GenericCmdlet):
    def begin(self) -> None:
        self.lines: list[str] = []

    def process(self, item: Any) -> None:
        self.lines.append(to_str(self.params.get("InputObject") if item is NOTHING else item))

    def end(self) -> None:
        text = "\n".join(self.lines)
        if not text.strip():
            return
        # Windows PowerShell 5.1 writes a top-level JSON array as one object (it does not enumerate it).
        self.emit(from_json(text))


# ---- output streams --------------------------------------------------------------------------------------


@cmdlet(
    "Write-Output",
    P("InputObject", position=0, pipeline=True, remaining=True),
    P("NoEnumerate", "switch"),
    aliases=("echo", "write"),
    dotnet_class="Microsoft.PowerShell.Commands.WriteOutputCommand",
)
class WriteOutput(GenericCmdlet):
    def process(self, item: Any) -> None:
        if item is not NOTHING:
            self.emit(item)
            return
        if "InputObject" not in self.params:
            return
        value = self.params["InputObject"]
        if self.flag("NoEnumerate"):
            self.emit(value)
        else:
            self.emit_all(value)


def _caller_suffix(interp: Interpreter) -> str:
    return f",{interp.function_stack[-1]}" if interp.function_stack else ""


@cmdlet(
    "Write-Error",
    P("Message", "string", position=0, pipeline=True, aliases=("Msg",)),
    P("Exception"),
    P("ErrorRecord"),
    P("Category", "string"),
    P("ErrorId", "string"),
    P("TargetObject"),
    P("RecommendedAction", "string"),
    P("CategoryActivity", "string", aliases=("Activity",)),
    P("CategoryReason", "string", aliases=("Reason",)),
    P("CategoryTargetName", "string", aliases=("TargetName",)),
    P("CategoryTargetType", "string", aliases=("TargetType",)),
    dotnet_class="Microsoft.PowerShell.Commands.WriteErrorCommand",
)
class WriteError(GenericCmdlet):
    def process(self, item: Any) -> None:
        if "ErrorRecord" in self.params:
            record = self.params["ErrorRecord"]
            if not isinstance(record, ErrorRecord):
                raise NotSupportedByLab("Write-Error -ErrorRecord with a non-ErrorRecord")
            self.ctx.write_error(record)
            return
        exception = self.params.get("Exception")
        message = to_str(item) if item is not NOTHING else self.params.get("Message")
        exception_type = "Microsoft.PowerShell.Commands.WriteErrorException"
        if isinstance(exception, PSException):
            exception_type = exception.type_name
            message = message or exception.message
        elif exception is not None:
            message = message or to_str(exception)
        category = mem.category_value(self.params.get("Category") or "NotSpecified").name
        error_id = self.params.get("ErrorId") or exception_type
        record = ErrorRecord(
            message=message or "",
            fully_qualified_error_id=error_id + _caller_suffix(self.interp),
            category=category,  # type: ignore[arg-type]
            exception_type=exception_type,
            target_object=self.params.get("TargetObject"),
            target_name=self.params.get("CategoryTargetName", ""),
            activity=self.params.get("CategoryActivity") or "Write-Error",
            reason=self.params.get("CategoryReason") or exception_type.rsplit(".", 1)[-1],
        )
        self.ctx.write_error(record)


@cmdlet(
    "Write-Warning",
    P("Message", "string", position=0, pipeline=True, mandatory=True, aliases=("Msg",)),
    dotnet_class="Microsoft.PowerShell.Commands.WriteWarningCommand",
)
class WriteWarning(GenericCmdlet):
    def process(self, item: Any) -> None:
        self.ctx.write_warning(to_str(item) if item is not NOTHING else self.params["Message"] or "")


@cmdlet(
    "Write-Verbose",
    P("Message", "string", position=0, pipeline=True, mandatory=True, aliases=("Msg",)),
    dotnet_class="Microsoft.PowerShell.Commands.WriteVerboseCommand",
)
class WriteVerbose(GenericCmdlet):
    def process(self, item: Any) -> None:
        self.ctx.write_verbose(to_str(item) if item is not NOTHING else self.params["Message"] or "")


@cmdlet(
    "Write-Debug",
    P("Message", "string", position=0, pipeline=True, mandatory=True, aliases=("Msg",)),
    dotnet_class="Microsoft.PowerShell.Commands.WriteDebugCommand",
)
class WriteDebug(GenericCmdlet):
    def process(self, item: Any) -> None:
        self.ctx.write_debug(to_str(item) if item is not NOTHING else self.params["Message"] or "")


@cmdlet(
    "Write-Information",
    P("MessageData", position=0, mandatory=True, aliases=("Msg", "Message")),
    P("Tags", "string[]"),
    dotnet_class="Microsoft.PowerShell.Commands.WriteInformationCommand",
)
class WriteInformation(GenericCmdlet):
    def process(self, item: Any) -> None:
        tags = tuple(to_str(t) for t in enumerate_value(self.params.get("Tags") or []))
        # Source: the command that wrote it (Write-Information at a script's top level).
        self.interp.write_information(
            self.params["MessageData"], self.ctx.common.information_action, "Write-Information", tags
        )


@cmdlet(
    "Write-Host",
    P("Object", position=0, pipeline=True, remaining=True, aliases=("Msg", "Message")),
    P("NoNewline", "switch"),
    P("Separator"),
    P("ForegroundColor", "string"),
    P("BackgroundColor", "string"),
    dotnet_class="Microsoft.PowerShell.Commands.WriteHostCommand",
)
class WriteHost(GenericCmdlet):
    def process(self, item: Any) -> None:
        value = item if item is not NOTHING else self.params.get("Object")
        separator = to_str(self.params.get("Separator", " "))
        parts = [to_str(v) for v in enumerate_value(value)] if value is not None else []
        # Write-Host always reaches the information stream (Windows PowerShell 5.0+): a HostInformationMessage
        # tagged PSHOST, source Write-Host, displayed unless -InformationAction says otherwise.
        text = separator.join(parts)
        message = PSObject(
            [
                ("Message", text),
                ("ForegroundColor", self.params.get("ForegroundColor")),
                ("BackgroundColor", self.params.get("BackgroundColor")),
                ("NoNewLine", bool(self.params.get("NoNewline"))),
            ],
            ["System.Management.Automation.HostInformationMessage", "System.Object"],
            to_string=text,
        )
        action = self.ctx.common.information_action or "Continue"
        self.interp.write_information(message, action, "Write-Host", ("PSHOST",))


class _FormatCmdlet(_Collecting):
    """Format-List / Format-Table: the lab emits the formatted text as lines (what ``| Out-String -Stream``
    gives); Windows emits format objects that only Out-* cmdlets read, so ``| Out-String`` and a console show
    the same text."""

    name = "Format-*"

    def wanted(self) -> list[str] | None:
        value = self.params.get("Property")
        if value is None:
            return None
        names = [v for v in enumerate_value(value)]
        if any(not isinstance(v, str) for v in names):
            raise NotSupportedByLab(f"{self.name} with calculated properties")
        return [to_str(v) for v in names]


@cmdlet(
    "Format-List",
    P("Property", position=0),
    P("InputObject", pipeline=True),
    aliases=("fl",),
    dotnet_class="Microsoft.PowerShell.Commands.FormatListCommand",
)
class FormatList(_FormatCmdlet):
    name = "Format-List"

    def end(self) -> None:
        for line in views.format_list(self.items, self.wanted(), cell_text):
            self.emit(line)


@cmdlet(
    "Format-Table",
    P("Property", position=0),
    P("InputObject", pipeline=True),
    P("AutoSize", "switch"),
    P("HideTableHeaders", "switch"),
    P("Wrap", "switch"),
    aliases=("ft",),
    dotnet_class="Microsoft.PowerShell.Commands.FormatTableCommand",
)
class FormatTable(_FormatCmdlet):
    name = "Format-Table"

    def end(self) -> None:
        if self.flag("Wrap"):
            raise NotSupportedByLab("Format-Table -Wrap")
        for line in views.format_table(self.items, self.wanted(), cell_text, self.flag("HideTableHeaders")):
            self.emit(line)


@cmdlet(
    "Out-String",
    P("InputObject", pipeline=True),
    P("Stream", "switch"),
    P("Width", "int"),
    dotnet_class="Microsoft.PowerShell.Commands.OutStringCommand",
)
class OutString(_Collecting):
    def end(self) -> None:
        text = format_default(self.items)
        if self.flag("Stream"):
            for line in text.split("\r\n")[:-1] if text else []:
                self.emit(line)
        else:
            self.emit(text)


@cmdlet(
    "Out-Null",
    P("InputObject", pipeline=True),
    dotnet_class="Microsoft.PowerShell.Commands.OutNullCommand",
)
class OutNull(GenericCmdlet):
    pass


# ---- paths -----------------------------------------------------------------------------------------------


@cmdlet(
    "Join-Path",
    P("Path", "string[]", position=0, mandatory=True, by_property=True, aliases=("PSPath",)),
    P("ChildPath", "string", position=1, mandatory=True, by_property=True),
    P("Resolve", "switch"),
    dotnet_class="Microsoft.PowerShell.Commands.JoinPathCommand",
)
class JoinPath(GenericCmdlet):
    def process(self, item: Any) -> None:
        if self.flag("Resolve"):
            raise NotSupportedByLab("Join-Path -Resolve (the lab has no file system)")
        child = (self.params.get("ChildPath") or "").replace("/", "\\")
        for path in self.params["Path"]:
            base = path.replace("/", "\\")
            if not child:
                self.emit(base)
            elif not base:
                self.emit(child)
            else:
                self.emit(base.rstrip("\\") + "\\" + child.lstrip("\\"))


@cmdlet(
    "Split-Path",
    P("Path", "string[]", position=0, mandatory=True, pipeline=True, by_property=True),
    P("Parent", "switch"),
    P("Leaf", "switch"),
    P("Qualifier", "switch"),
    P("NoQualifier", "switch"),
    P("IsAbsolute", "switch"),
    dotnet_class="Microsoft.PowerShell.Commands.SplitPathCommand",
)
class SplitPath(GenericCmdlet):
    def process(self, item: Any) -> None:
        paths = [to_str(item)] if item is not NOTHING else self.params["Path"]
        for path in paths:
            self.emit(self._split(path))

    def _split(self, path: str) -> Any:
        normal = path.replace("/", "\\")
        qualifier_match = re.match(r"^([A-Za-z][A-Za-z0-9]*:)", normal)
        qualifier = qualifier_match.group(1) if qualifier_match else ""
        if self.flag("Qualifier"):
            if not qualifier:
                raise PowerShellError(
                    make_record(
                        f"Cannot parse path because path '{path}' does not have a qualifier specified.",
                        "ParsePathFormatError,Microsoft.PowerShell.Commands.SplitPathCommand",
                        "InvalidArgument",
                        "System.Management.Automation.PSArgumentException",
                    )
                )
            return qualifier
        if self.flag("NoQualifier"):
            return normal[len(qualifier) :]
        if self.flag("IsAbsolute"):
            return bool(re.match(r"^[A-Za-z]:\\|^\\\\", normal))
        trimmed = normal.rstrip("\\") if len(normal.rstrip("\\")) > len(qualifier) else normal
        if self.flag("Leaf"):
            return trimmed.rsplit("\\", 1)[-1] if "\\" in trimmed else trimmed[len(qualifier) :] or trimmed
        if "\\" not in trimmed:
            return ""
        parent = trimmed.rsplit("\\", 1)[0]
        if parent == qualifier:
            return qualifier + "\\"
        return parent


@cmdlet(
    "Test-Path",
    P("Path", "string[]", position=0, mandatory=True, pipeline=True, by_property=True),
    P("PathType", "string"),
    P("IsValid", "switch"),
    dotnet_class="Microsoft.PowerShell.Commands.TestPathCommand",
)
class TestPath(GenericCmdlet):
    """Test-Path for the session providers (env:, variable:, function:). Registry and file paths belong to the
    device: when it does not supply Test-Path, asking about them is NotSupportedByLab."""

    def process(self, item: Any) -> None:
        paths = [to_str(item)] if item is not NOTHING else self.params["Path"]
        for path in paths:
            match = re.match(r"^(env|variable|function):\\?(.*)$", path, re.IGNORECASE)
            if match is None:
                raise NotSupportedByLab(f"Test-Path '{path}' (registry and file system paths are device-side)")
            drive, name = match.group(1).casefold(), match.group(2)
            if not name:
                self.emit(True)
            elif drive == "env":
                self.emit(self.interp.session.env_get(name) is not None)
            elif drive == "variable":
                self.emit(self.interp.has_var(name.casefold()))
            else:
                self.emit(self.interp.lookup_function(name) is not None)


# ---- objects and variables -------------------------------------------------------------------------------


@cmdlet(
    "New-Object",
    P("TypeName", "string", position=0),
    P("ArgumentList", "object[]", position=1, aliases=("Args",)),
    P("Property", "hashtable"),
    P("ComObject", "string"),
    dotnet_class="Microsoft.PowerShell.Commands.NewObjectCommand",
)
class NewObject(GenericCmdlet):
    def process(self, item: Any) -> None:
        if "ComObject" in self.params:
            raise NotSupportedByLab("New-Object -ComObject")
        type_name = self.params.get("TypeName") or ""
        full = resolve_type_name(re.sub(r"\[.*\]$", "", type_name))
        if full is None and windows_names.is_dotnet_type(type_name):
            raise NotSupportedByLab(f"New-Object {type_name}")
        if full is None:
            raise PowerShellError(
                make_record(
                    f"Cannot find type [{type_name}]: verify that the assembly containing this type is loaded.",
                    "TypeNotFound,Microsoft.PowerShell.Commands.NewObjectCommand",
                    "InvalidType",
                    "System.Management.Automation.PSArgumentException",
                )
            )
        if full in (
            "System.Management.Automation.PSObject",
            "System.Object",
            "System.Management.Automation.PSCustomObject",
        ):
            result: Any = PSObject()
        else:
            generic = re.search(r"\[(.*)\]$", type_name)
            display = full + (f"[{generic.group(1)}]" if generic else "")
            result = mem.construct(self.interp, PSType(display, type_name), list(self.params.get("ArgumentList") or []))
        properties = self.params.get("Property")
        if properties is not None:
            if not isinstance(result, PSObject):
                raise NotSupportedByLab(f"New-Object {type_name} -Property")
            for key, value in properties.items():
                result.properties[to_str(key)] = value
        self.emit(result)


@cmdlet(
    "Invoke-Expression",
    P("Command", "string", position=0, pipeline=True, mandatory=True),
    aliases=("iex",),
    dotnet_class="Microsoft.PowerShell.Commands.InvokeExpressionCommand",
)
class InvokeExpression(GenericCmdlet):
    """Runs text as script in the caller's scope, as Windows does (pypsrp's ``Client.execute_ps`` sends its
    script this way). The migration's own scripts never use it: their values arrive as parameters."""

    def process(self, item: Any) -> None:
        text = to_str(item) if item is not NOTHING else to_str(self.params.get("Command", ""))
        for value in self.interp.invoke_scriptblock(ScriptBlock(parse_script(text)), [], new_scope=False):
            self.emit(value)


@cmdlet(
    "Add-Member",
    P("InputObject", pipeline=True, mandatory=True),
    P("MemberType", "string", position=0, aliases=("Type",)),
    P("Name", "string", position=1),
    P("Value", position=2),
    P("NotePropertyName", "string"),
    P("NotePropertyValue"),
    P("NotePropertyMembers", "hashtable"),
    P("PassThru", "switch"),
    P("Force", "switch"),
    dotnet_class="Microsoft.PowerShell.Commands.AddMemberCommand",
)
class AddMember(GenericCmdlet):
    def process(self, item: Any) -> None:
        target = self.params.get("InputObject") if item is NOTHING else item
        if not isinstance(target, PSObject):
            raise NotSupportedByLab("Add-Member on an object that is not a PSCustomObject")
        members: list[tuple[str, Any]] = []
        if "NotePropertyMembers" in self.params:
            members.extend((to_str(k), v) for k, v in self.params["NotePropertyMembers"].items())
        elif "NotePropertyName" in self.params:
            members.append((self.params["NotePropertyName"], self.params.get("NotePropertyValue")))
        else:
            member_type = (self.params.get("MemberType") or "").casefold()
            if member_type not in ("noteproperty",):
                raise NotSupportedByLab(f"Add-Member -MemberType {self.params.get('MemberType')}")
            members.append((self.params.get("Name") or "", self.params.get("Value")))
        for name, value in members:
            if name in target.properties and not self.flag("Force"):
                self.ctx.write_error(
                    make_record(
                        f'Cannot add a member with the name "{name}" because a member with that name already exists. '
                        "To overwrite the member anyway, add the Force parameter to your command.",
                        "MemberAlreadyExists,Microsoft.PowerShell.Commands.AddMemberCommand",
                        "InvalidOperation",
                        "System.InvalidOperationException",
                        target=target,
                    )
                )
                continue
            target.properties[name] = value
        if self.flag("PassThru"):
            self.emit(target)


def _variable_object(name: str, value: Any) -> PSObject:
    return PSObject(
        [("Name", name), ("Value", value), ("Description", ""), ("Options", "None")],
        ["System.Management.Automation.PSVariable", "System.Object"],
    )


def _scope_name(value: Any) -> str | None:
    if value is None:
        return None
    folded = to_str(value).casefold()
    if folded in ("global", "script", "local"):
        return folded
    raise NotSupportedByLab(f"-Scope {to_str(value)}")


@cmdlet(
    "Get-Variable",
    P("Name", "string[]", position=0),
    P("ValueOnly", "switch"),
    P("Scope", "string"),
    aliases=("gv",),
    dotnet_class="Microsoft.PowerShell.Commands.GetVariableCommand",
)
class GetVariable(GenericCmdlet):
    def process(self, item: Any) -> None:
        if "Scope" in self.params:
            raise NotSupportedByLab("Get-Variable -Scope")
        names = self.params.get("Name")
        if not names:
            raise NotSupportedByLab("Get-Variable without -Name")
        for name in names:
            key = name.casefold()
            if self.interp.has_var(key) or key in ("null", "true", "false"):
                value = self.interp.get_var(key) if key not in ("true", "false") else key == "true"
                self.emit(value if self.flag("ValueOnly") else _variable_object(name, value))
            else:
                self.ctx.write_error(
                    make_record(
                        f"Cannot find a variable with the name '{name}'.",
                        "VariableNotFound,Microsoft.PowerShell.Commands.GetVariableCommand",
                        "ObjectNotFound",
                        "System.Management.Automation.ItemNotFoundException",
                        target=name,
                    )
                )


@cmdlet(
    "Set-Variable",
    P("Name", "string[]", position=0, mandatory=True),
    P("Value", position=1, pipeline=True),
    P("Scope", "string"),
    P("PassThru", "switch"),
    P("Option", "string"),
    aliases=("sv", "set"),
    dotnet_class="Microsoft.PowerShell.Commands.SetVariableCommand",
)
class SetVariable(GenericCmdlet):
    def process(self, item: Any) -> None:
        if "Option" in self.params:
            raise NotSupportedByLab("Set-Variable -Option")
        value = item if item is not NOTHING else self.params.get("Value")
        for name in self.params["Name"]:
            self.interp.set_var(name, value, _scope_name(self.params.get("Scope")))
            if self.flag("PassThru"):
                self.emit(_variable_object(name, value))


@cmdlet(
    "New-Variable",
    P("Name", "string", position=0, mandatory=True),
    P("Value", position=1),
    P("Scope", "string"),
    P("Force", "switch"),
    P("PassThru", "switch"),
    aliases=("nv",),
    dotnet_class="Microsoft.PowerShell.Commands.NewVariableCommand",
)
class NewVariable(GenericCmdlet):
    def process(self, item: Any) -> None:
        name = self.params["Name"]
        scope = _scope_name(self.params.get("Scope"))
        target = self.interp._scope_for(scope)
        if name.casefold() in target.vars and not self.flag("Force"):
            self.ctx.write_error(
                make_record(
                    f"A variable with name '{name}' already exists.",
                    "VariableAlreadyExists,Microsoft.PowerShell.Commands.NewVariableCommand",
                    "ResourceExists",
                    "System.Management.Automation.SessionStateUnauthorizedAccessException",
                    target=name,
                )
            )
            return
        self.interp.set_var(name, self.params.get("Value"), scope)
        if self.flag("PassThru"):
            self.emit(_variable_object(name, self.params.get("Value")))


@cmdlet(
    "Remove-Variable",
    P("Name", "string[]", position=0, mandatory=True),
    P("Scope", "string"),
    aliases=("rv",),
    dotnet_class="Microsoft.PowerShell.Commands.RemoveVariableCommand",
)
class RemoveVariable(GenericCmdlet):
    def process(self, item: Any) -> None:
        scope_name = _scope_name(self.params.get("Scope"))
        for name in self.params["Name"]:
            key = name.casefold()
            scope: Scope | None = self.interp._scope_for(scope_name) if scope_name else self.interp.scope
            while scope is not None and scope_name is None and key not in scope.vars:
                scope = scope.parent
            if scope is None or key not in scope.vars:
                self.ctx.write_error(
                    make_record(
                        f"Cannot find a variable with the name '{name}'.",
                        "VariableNotFound,Microsoft.PowerShell.Commands.RemoveVariableCommand",
                        "ObjectNotFound",
                        "System.Management.Automation.ItemNotFoundException",
                        target=name,
                    )
                )
                continue
            del scope.vars[key]


@cmdlet(
    "Clear-Variable",
    P("Name", "string[]", position=0, mandatory=True),
    P("Scope", "string"),
    aliases=("clv",),
    dotnet_class="Microsoft.PowerShell.Commands.ClearVariableCommand",
)
class ClearVariable(GenericCmdlet):
    def process(self, item: Any) -> None:
        for name in self.params["Name"]:
            self.interp.set_var(name, None, _scope_name(self.params.get("Scope")))


# ---- $PSCmdlet for advanced functions --------------------------------------------------------------------


class CmdletHandle:
    """``$PSCmdlet`` inside an advanced function (the members scripts use)."""

    ps_type_names = ("System.Management.Automation.PSScriptCmdlet", "System.Object")

    def __init__(self, interp: Interpreter, name: str, what_if: bool) -> None:
        self.interp = interp
        self.name = name
        self.what_if = what_if

    def ps_to_string(self) -> str:
        return self.name

    def ps_get_member(self, name: str) -> Any:
        folded = name.casefold()
        if folded == "parametersetname":
            return "__AllParameterSets"
        if folded == "myinvocation":
            return PSObject([("MyCommand", PSObject([("Name", self.name)], to_string=self.name))])
        raise NotSupportedByLab(f"$PSCmdlet.{name}")

    def ps_call_method(self, name: str, args: list[Any]) -> Any:
        folded = name.casefold()
        if folded == "shouldprocess":
            return not self.what_if
        if folded == "writeerror":
            record = args[0]
            if not isinstance(record, ErrorRecord):
                raise NotSupportedByLab("$PSCmdlet.WriteError with a non-ErrorRecord")
            self.interp.write_error(record)
            return VOID
        if folded == "throwterminatingerror":
            record = args[0]
            if not isinstance(record, ErrorRecord):
                raise NotSupportedByLab("$PSCmdlet.ThrowTerminatingError with a non-ErrorRecord")
            raise PowerShellError(record)
        if folded == "writeverbose":
            self.interp.write_verbose(to_str(args[0]))
            return VOID
        if folded == "writewarning":
            self.interp.write_warning(to_str(args[0]))
            return VOID
        raise NotSupportedByLab(f"$PSCmdlet.{name}()")
