"""Parameter binding (about_Parameters, about_CommonParameters, about_Functions_Advanced_Parameters).

One binder serves device cmdlets (:class:`shell.Param`), the lab's generic cmdlets and script functions
(``param()`` blocks): named arguments by exact name, alias or unambiguous prefix; ``-Switch`` and
``-Switch:$false``; positional arguments by Position; conversion to the parameter's type; mandatory checks
(``MissingMandatoryParameter``, never a prompt: remoting hosts are non-interactive); and pipeline input by
value or by property name. Errors carry Windows PowerShell's messages and FullyQualifiedErrorIds.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from migrator.lab.ps import ast
from migrator.lab.ps.errors import NotSupportedByLab, binding_error
from migrator.lab.ps.operators import compare_order, regex_match
from migrator.lab.ps.session import normalise_action
from migrator.lab.ps.values import (
    as_list,
    convert_to,
    is_instance,
    resolve_type_name,
    to_bool,
    to_datetime,
    to_int,
    to_str,
)
from migrator.lab.shell import Hashtable, Param, PowerShellError, PSObject


class _Nothing:
    def __repr__(self) -> str:
        return "NOTHING"


NOTHING: Any = _Nothing()


@dataclass(slots=True)
class Arg:
    """One evaluated command argument: ``-Name``/``-Name:value`` (name set) or a positional value."""

    name: str | None
    value: Any = NOTHING
    text: str = ""  # the parameter token as written, for native commands


@dataclass(slots=True)
class ParamSpec:
    name: str
    aliases: tuple[str, ...] = ()
    kind: str = "any"  # a shell.Param kind, or "typed" for script parameters
    type: ast.TypeName | None = None
    mandatory: bool = False
    position: int | None = None
    switch: bool = False
    from_pipeline: bool = False
    by_property: bool = False
    definition: ast.ParamDef | None = None
    common: bool = False
    remaining: bool = False  # ValueFromRemainingArguments: takes every positional argument left over


@dataclass
class CommonParams:
    error_action: str | None = None
    warning_action: str | None = None
    information_action: str | None = None
    error_variable: str | None = None
    warning_variable: str | None = None
    information_variable: str | None = None
    out_variable: str | None = None
    verbose: bool | None = None
    debug: bool | None = None
    what_if: bool | None = None
    confirm: bool | None = None


@dataclass
class Binding:
    values: dict[str, Any] = field(default_factory=dict)
    common: CommonParams = field(default_factory=CommonParams)
    leftovers: list[Any] = field(default_factory=list)


_COMMON = (
    ParamSpec("ErrorAction", ("ea",), "string", common=True),
    ParamSpec("WarningAction", ("wa",), "string", common=True),
    ParamSpec("InformationAction", ("infa",), "string", common=True),
    ParamSpec("ErrorVariable", ("ev",), "string", common=True),
    ParamSpec("WarningVariable", ("wv",), "string", common=True),
    ParamSpec("InformationVariable", ("iv",), "string", common=True),
    ParamSpec("OutVariable", ("ov",), "string", common=True),
    ParamSpec("OutBuffer", ("ob",), "int", common=True),
    ParamSpec("PipelineVariable", ("pv",), "string", common=True),
    ParamSpec("Verbose", ("vb",), "switch", switch=True, common=True),
    ParamSpec("Debug", ("db",), "switch", switch=True, common=True),
    ParamSpec("WhatIf", ("wi",), "switch", switch=True, common=True),
    ParamSpec("Confirm", ("cf",), "switch", switch=True, common=True),
)

_KIND_TYPES = {
    "any": "System.Object",
    "string": "System.String",
    "int": "System.Int32",
    "bool": "System.Boolean",
    "switch": "System.Management.Automation.SwitchParameter",
    "string[]": "System.String[]",
    "hashtable": "System.Collections.Hashtable",
    "datetime": "System.DateTime",
    "object[]": "System.Object[]",
}


def specs_from_cmdlet(params: Sequence[Param]) -> list[ParamSpec]:
    return [
        ParamSpec(
            name=p.name,
            aliases=p.aliases,
            kind=p.kind,
            mandatory=p.mandatory,
            position=p.position,
            switch=p.kind == "switch",
            from_pipeline=p.from_pipeline,
            by_property=p.from_pipeline_by_property_name,
        )
        for p in params
    ]


def is_advanced(block: ast.ScriptBlockAst) -> bool:
    """CmdletBinding or any [Parameter()] attribute makes a function advanced (common parameters, strict binding)."""
    if block.cmdlet_binding:
        return True
    return any(
        p.mandatory or p.position is not None or p.from_pipeline or p.from_pipeline_by_property_name
        for p in block.params or ()
    )


def specs_from_function(block: ast.ScriptBlockAst) -> list[ParamSpec]:
    params = block.params or ()
    explicit = any(p.position is not None for p in params)
    specs: list[ParamSpec] = []
    next_position = 0
    for definition in params:
        position = definition.position
        if position is None and not explicit and not definition.is_switch:
            # Without explicit positions, parameters are positional in declaration order (about_Functions).
            position = next_position
            next_position += 1
        specs.append(
            ParamSpec(
                name=definition.name,
                aliases=definition.aliases,
                kind="switch" if definition.is_switch else "typed",
                type=definition.type,
                mandatory=definition.mandatory,
                position=position,
                switch=definition.is_switch,
                from_pipeline=definition.from_pipeline,
                by_property=definition.from_pipeline_by_property_name,
                definition=definition,
            )
        )
    return specs


def _resolve(specs: Sequence[ParamSpec], name: str, command: str) -> ParamSpec | None:
    folded = name.casefold()
    for spec in specs:
        if spec.name.casefold() == folded or any(a.casefold() == folded for a in spec.aliases):
            return spec
    matches: list[ParamSpec] = []
    for spec in specs:
        names = (spec.name, *spec.aliases)
        if any(n.casefold().startswith(folded) for n in names) and spec not in matches:
            matches.append(spec)
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        options = " ".join(f"-{m.name}" for m in matches)
        raise binding_error(
            f"Parameter cannot be processed because the parameter name '{name}' is ambiguous. Possible matches "
            f"include: {options}.",
            "AmbiguousParameter",
            command,
            name,
        )
    return None


def bind(
    specs: Sequence[ParamSpec],
    args: Sequence[Arg],
    command: str,
    *,
    advanced: bool = True,
    common: bool = True,
) -> Binding:
    """Bind arguments to parameters; conversion and validation happen here, mandatory checks in ``check``."""
    everything = list(specs) + (list(_COMMON) if common else [])
    binding = Binding()
    positional: list[Any] = []
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg.name is None:
            positional.append(arg.value)
            continue
        spec = _resolve(everything, arg.name, command) if arg.name else None
        if spec is None:
            if not advanced:
                binding.leftovers.append(arg.text or f"-{arg.name}")
                if arg.value is not NOTHING:
                    binding.leftovers.append(arg.value)
                continue
            raise binding_error(
                f"A parameter cannot be found that matches parameter name '{arg.name}'.",
                "NamedParameterNotFound",
                command,
                arg.name,
            )
        if spec.switch:
            value = True if arg.value is NOTHING else arg.value
        elif arg.value is not NOTHING:
            value = arg.value
        elif index < len(args) and args[index].name is None:
            value = args[index].value
            index += 1
        else:
            raise binding_error(
                f"Missing an argument for parameter '{spec.name}'. Specify a parameter of type "
                f"'{_type_display(spec)}' and try again.",
                "MissingArgument",
                command,
                spec.name,
            )
        if spec.name in binding.values or (spec.common and _common_is_set(binding.common, spec.name)):
            raise binding_error(
                f"Cannot bind parameter because parameter '{spec.name}' is specified more than once. To provide "
                "multiple values to parameters that can accept multiple values, use the array syntax. For "
                'example, "-parameter value1,value2,value3".',
                "ParameterAlreadyBound",
                command,
                spec.name,
            )
        if spec.common:
            _set_common(binding.common, spec.name, value, command)
        else:
            binding.values[spec.name] = convert_argument(spec, value, command)
    open_positions = sorted(
        (s for s in specs if s.position is not None and s.name not in binding.values), key=lambda s: s.position or 0
    )
    remaining = next((s for s in specs if s.remaining and s.name not in binding.values), None)
    if remaining is not None:
        open_positions = [s for s in open_positions if s is not remaining]
        before = [s for s in open_positions if (s.position or 0) < (remaining.position or 0)]
        taken = positional[len(before) :]
        positional = positional[: len(before)]
        if taken:
            value = taken[0] if len(taken) == 1 else list(taken)
            binding.values[remaining.name] = convert_argument(remaining, value, command)
        open_positions = before
    for value in positional:
        if open_positions:
            spec = open_positions.pop(0)
            binding.values[spec.name] = convert_argument(spec, value, command)
        elif not advanced:
            binding.leftovers.append(value)
        else:
            raise binding_error(
                f"A positional parameter cannot be found that accepts argument '{to_str(value)}'.",
                "PositionalParameterNotFound",
                command,
                value,
            )
    return binding


def _common_is_set(common: CommonParams, name: str) -> bool:
    attribute = re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()
    return getattr(common, attribute, None) is not None


def _set_common(common: CommonParams, name: str, value: Any, command: str) -> None:
    if name in ("ErrorAction", "WarningAction", "InformationAction"):
        action = normalise_action(value, name)
        setattr(common, re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower(), action)
    elif name in ("ErrorVariable", "WarningVariable", "InformationVariable", "OutVariable"):
        setattr(common, re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower(), to_str(value))
    elif name in ("Verbose", "Debug", "WhatIf", "Confirm"):
        setattr(common, re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower(), to_bool(value))
    # OutBuffer and PipelineVariable are accepted; OutBuffer does not change results, PipelineVariable is rare.
    elif name == "PipelineVariable":
        raise NotSupportedByLab("-PipelineVariable")


def _type_display(spec: ParamSpec) -> str:
    if spec.type is not None:
        full = resolve_type_name(spec.type.name) or spec.type.name
        return full + ("[]" if spec.type.array else "")
    return _KIND_TYPES.get(spec.kind, "System.Object")


def convert_argument(spec: ParamSpec, value: Any, command: str) -> Any:
    """Coerce an argument to the parameter's type (ArgumentTransformation) and validate it."""
    try:
        if spec.kind == "typed":
            if spec.type is not None:
                if value is None and spec.type.name.casefold() in ("string", "system.string") and not spec.type.array:
                    converted: Any = ""
                else:
                    converted = convert_to(value, spec.type)
            else:
                converted = value
        else:
            converted = _convert_kind(spec, value, command)
    except PowerShellError as error:
        if error.record.fully_qualified_error_id.startswith("ParameterArgumentTransformationError,"):
            raise
        if spec.kind == "typed":
            raise binding_error(
                f"Cannot process argument transformation on parameter '{spec.name}'. {error.record.message}",
                "ParameterArgumentTransformationError",
                command,
                value,
            ) from None
        raise binding_error(
            f"Cannot bind parameter '{spec.name}'. {error.record.message}",
            "CannotConvertArgumentNoMessage",
            command,
            value,
        ) from None
    if spec.definition is not None:
        _validate(spec, spec.definition, converted, command)
    elif spec.mandatory:
        _check_not_null(spec, converted, command, allow_empty=False)
    return converted


def _convert_kind(spec: ParamSpec, value: Any, command: str) -> Any:
    kind = spec.kind
    if kind == "any":
        return value
    if kind == "switch":
        return to_bool(value)
    if kind == "string":
        if value is None:
            return None
        return to_str(value)
    if kind == "int":
        return to_int(value)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float):
            return value != 0
        raise binding_error(
            f"Cannot process argument transformation on parameter '{spec.name}'. Cannot convert value "
            f'"{to_str(value)}" to type "System.Boolean". Boolean parameters accept only Boolean values and '
            "numbers, such as $True, $False, 1 or 0.",
            "ParameterArgumentTransformationError",
            command,
            value,
        )
    if kind == "string[]":
        if value is None:
            return None
        return [to_str(item) for item in as_list(value)]
    if kind == "hashtable":
        if value is None or isinstance(value, Hashtable):
            return value
        raise binding_error(
            f"Cannot process argument transformation on parameter '{spec.name}'. Cannot convert the "
            f'"{to_str(value)}" value of type "{type(value).__name__}" to type "System.Collections.Hashtable".',
            "ParameterArgumentTransformationError",
            command,
            value,
        )
    if kind == "datetime":
        return None if value is None else to_datetime(value)
    if kind == "object[]":
        return None if value is None else as_list(value)
    return value


def _check_not_null(spec: ParamSpec, value: Any, command: str, allow_empty: bool) -> None:
    if allow_empty:
        return
    if value is None:
        raise binding_error(
            f"Cannot bind argument to parameter '{spec.name}' because it is null.",
            "ParameterArgumentValidationErrorNullNotAllowed",
            command,
        )
    if isinstance(value, str) and value == "":
        raise binding_error(
            f"Cannot bind argument to parameter '{spec.name}' because it is an empty string.",
            "ParameterArgumentValidationErrorEmptyStringNotAllowed",
            command,
        )


def _validate(spec: ParamSpec, definition: ast.ParamDef, value: Any, command: str) -> None:
    if definition.mandatory and not spec.switch:
        _check_not_null(spec, value, command, definition.allow_empty)
    prefix = f"Cannot validate argument on parameter '{spec.name}'."
    if definition.validate_not_null and value is None:
        raise binding_error(
            f"{prefix} The argument is null. Provide a valid value for the argument, and then try running the "
            "command again.",
            "ParameterArgumentValidationError",
            command,
        )
    if definition.validate_not_null_or_empty and (value is None or value in ("", [])):
        raise binding_error(
            f"{prefix} The argument is null or empty. Provide an argument that is not null or empty, and then try "
            "the command again.",
            "ParameterArgumentValidationError",
            command,
        )
    if definition.validate_set is not None and value is not None:
        allowed = {v.casefold() for v in definition.validate_set}
        for item in as_list(value):
            if to_str(item).casefold() not in allowed:
                raise binding_error(
                    f'{prefix} The argument "{to_str(item)}" does not belong to the set '
                    f'"{",".join(definition.validate_set)}" specified by the ValidateSet attribute. Supply an argument '
                    "that is in the set and then try the command again.",
                    "ParameterArgumentValidationError",
                    command,
                    item,
                )
    if definition.validate_range is not None and value is not None:
        low, high = definition.validate_range
        for item in as_list(value):
            if compare_order(item, low) < 0:
                raise binding_error(
                    f"{prefix} The {to_str(item)} argument is less than the minimum allowed range of {to_str(low)}. "
                    "Supply an argument that is greater than or equal to "
                    f"{to_str(low)} and then try the command again.",
                    "ParameterArgumentValidationError",
                    command,
                    item,
                )
            if compare_order(item, high) > 0:
                raise binding_error(
                    f"{prefix} The {to_str(item)} argument is greater than the maximum allowed range of "
                    f"{to_str(high)}. Supply an argument that is less than or equal to {to_str(high)} and then try "
                    "the command again.",
                    "ParameterArgumentValidationError",
                    command,
                    item,
                )
    if definition.validate_pattern is not None and value is not None:
        for item in as_list(value):
            if regex_match(item, definition.validate_pattern) is None:
                raise binding_error(
                    f'{prefix} The argument "{to_str(item)}" does not match the "{definition.validate_pattern}" '
                    "pattern. Supply an argument that matches "
                    f'"{definition.validate_pattern}" and try the command again.',
                    "ParameterArgumentValidationError",
                    command,
                    item,
                )


def check_mandatory(specs: Sequence[ParamSpec], bound: dict[str, Any], command: str) -> None:
    missing = [s.name for s in specs if s.mandatory and s.name not in bound]
    if missing:
        raise binding_error(
            f"Cannot process command because of one or more missing mandatory parameters: {' '.join(missing)}.",
            "MissingMandatoryParameter",
            command,
        )


def pipeline_specs(specs: Sequence[ParamSpec]) -> list[ParamSpec]:
    return [s for s in specs if s.from_pipeline or s.by_property]


def _property(item: Any, spec: ParamSpec) -> tuple[bool, Any]:
    names = (spec.name, *spec.aliases)
    if isinstance(item, PSObject):
        for name in names:
            if name in item.properties:
                return True, item.properties[name]
    elif isinstance(item, Hashtable):
        # Windows PowerShell 5.1 binds by property name from hashtable keys only when they are properties;
        # a hashtable's keys are not. Keep to that.
        return False, None
    return False, None


def _exact_kind(spec: ParamSpec, item: Any) -> bool:
    if spec.kind in ("any", "object[]"):
        return True
    if spec.kind == "typed":
        if spec.type is None:
            return True
        full = resolve_type_name(spec.type.name)
        return (full is not None and not spec.type.array and is_instance(item, full)) or full == "System.Object"
    checks = {
        "string": lambda v: isinstance(v, str),
        "string[]": lambda v: isinstance(v, str),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "bool": lambda v: isinstance(v, bool),
        "hashtable": lambda v: isinstance(v, Hashtable),
    }
    check = checks.get(spec.kind)
    return bool(check and check(item))


def bind_pipeline_item(
    specs: Sequence[ParamSpec], item: Any, explicit: dict[str, Any], command: str
) -> dict[str, Any] | None:
    """Values bound from one pipeline object: by value (exact type), by property name, by value (converted)."""
    by_value = [s for s in specs if s.from_pipeline and s.name not in explicit]
    by_property = [s for s in specs if s.by_property and s.name not in explicit]
    bound: dict[str, Any] = {}
    for spec in by_value:
        if _exact_kind(spec, item):
            bound[spec.name] = convert_argument(spec, item, command)
            break
    for spec in by_property:
        if spec.name in bound:
            continue
        found, value = _property(item, spec)
        if found:
            bound[spec.name] = convert_argument(spec, value, command)
    if bound:
        return bound
    for spec in by_value:
        try:
            return {spec.name: convert_argument(spec, item, command)}
        except PowerShellError:
            continue
    return None


def input_not_bound(command: str, item: Any) -> PowerShellError:
    return binding_error(
        "The input object cannot be bound to any parameters for the command either because the command does not "
        "take pipeline input or the input and its properties do not match any of the parameters that take "
        "pipeline input.",
        "InputObjectNotBound",
        command,
        item,
    )
