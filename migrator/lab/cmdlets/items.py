"""Item and property cmdlets over the device's providers: Registry, FileSystem and (read-only) Environment.

Behaviour follows Windows PowerShell 5.1's providers (about_Registry_Provider, about_FileSystem_Provider and the
RegistryProvider source): HKCU is the hive of whoever runs the script (``HKU\\<SID>``), Get-ItemProperty returns
REG_EXPAND_SZ data expanded, a key without values yields no object, Set-ItemProperty keeps an existing value's
type, New-ItemProperty refuses an existing value without -Force ("The property already exists."), and
``New-Item -Force`` on an existing key recreates it empty (the provider removes the key first).
Errors carry the provider's exception types and ids; "not found" errors are non-terminating.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from migrator.lab.boundary import NotModelledByLab
from migrator.lab.cmdlets import certs
from migrator.lab.cmdlets._base import (
    DeviceBinding,
    as_list,
    as_str_list,
    binding,
    error_record,
    flag,
    opt_str,
    profile_of,
)
from migrator.lab.cmdlets.filesystem import DeviceFiles, parent_of
from migrator.lab.cmdlets.paths import (
    ItemPath,
    PathResolutionError,
    is_wildcard,
    path_not_found_record,
    resolve,
    wildcard_match,
)
from migrator.lab.ps import format_default
from migrator.lab.registry import VALUE_KIND_TO_TYPE, RegData, RegType, RegValue
from migrator.lab.shell import (
    CmdletContext,
    CmdletSpec,
    ErrorRecord,
    Hashtable,
    Param,
    PowerShellError,
    PrincipalKind,
    PSObject,
)

REGISTRY_KEY_TYPES = ("Microsoft.Win32.RegistryKey", "System.MarshalByRefObject", "System.Object")
FILE_TYPES = ("System.IO.FileInfo", "System.IO.FileSystemInfo", "System.MarshalByRefObject", "System.Object")
DIRECTORY_TYPES = ("System.IO.DirectoryInfo", "System.IO.FileSystemInfo", "System.MarshalByRefObject", "System.Object")
ENTRY_TYPES = ("System.Collections.DictionaryEntry", "System.ValueType", "System.Object")

_PATH = Param("Path", "string[]", position=0, from_pipeline_by_property_name=True)
_LITERAL = Param("LiteralPath", "string[]", aliases=("PSPath", "LP"), from_pipeline_by_property_name=True)


# ---- shared helpers ----------------------------------------------------------------------------------


def current_location(b: DeviceBinding) -> str:
    """Where relative paths start: a WinRM session opens in the profile's Documents; tasks in System32."""
    if b.principal.kind is PrincipalKind.ADMIN:
        return profile_of(b.lab, b.device, b.principal) + "\\Documents"
    return "C:\\Windows\\system32"


def _user_sid(b: DeviceBinding) -> str:
    return b.principal.sid


def _paths(args: Mapping[str, Any], default: str | None = None) -> tuple[list[str], bool]:
    """(paths, literal): -LiteralPath wins and disables wildcard expansion."""
    if args.get("LiteralPath") is not None:
        return as_str_list(args["LiteralPath"]), True
    paths = as_str_list(args.get("Path"))
    if not paths and default is not None:
        paths = [default]
    return paths, False


def _check_not_empty(ctx: CmdletContext, paths: list[str], parameter: str = "Path") -> None:
    """Mandatory path parameters refuse null and empty strings (ParameterBindingValidationException)."""
    if not paths:
        raise PowerShellError(
            error_record(
                ctx.command_name,
                f"Cannot bind argument to parameter '{parameter}' because it is null.",
                "ParameterArgumentValidationErrorNullNotAllowed",
                "InvalidData",
                "System.Management.Automation.ParameterBindingValidationException",
            )
        )
    if any(p == "" for p in paths):
        raise PowerShellError(
            error_record(
                ctx.command_name,
                f"Cannot bind argument to parameter '{parameter}' because it is an empty string.",
                "ParameterArgumentValidationErrorEmptyStringNotAllowed",
                "InvalidData",
                "System.Management.Automation.ParameterBindingValidationException",
            )
        )


def _resolve(ctx: CmdletContext, b: DeviceBinding, path: str) -> ItemPath | None:
    try:
        return resolve(ctx.command_name, path, current_location(b))
    except PathResolutionError as exc:
        ctx.write_error(exc.record)
        return None


def _not_found(ctx: CmdletContext, ip: ItemPath) -> None:
    typed = ip.typed if ip.provider != "FileSystem" else ip.display
    ctx.write_error(path_not_found_record(ctx.command_name, typed))


def _loaded_hives(b: DeviceBinding) -> list[str]:
    """The hives under HKEY_USERS, as Windows lists them: .DEFAULT, the three service accounts (S-1-5-18/19/20),
    and for the running principal and every profile on the device its SID and its ``<SID>_Classes`` hive."""
    sids = {b.principal.sid, *(u.sid for u in b.device.users)} - {"S-1-5-18", "S-1-5-19", "S-1-5-20"}
    names = [".DEFAULT", "S-1-5-18", "S-1-5-19", "S-1-5-20"]
    for sid in sids:
        names += [sid, f"{sid}_Classes"]
    return sorted(names, key=str.casefold)


def _hive_loaded(b: DeviceBinding, canonical: str) -> bool:
    parts = canonical.split("\\")
    if len(parts) != 2 or parts[0] != "HKU":
        return False
    return parts[1].casefold() in {name.casefold() for name in _loaded_hives(b)}


# Top-level keys every hive has on Windows 10/11 (they exist even when the lab stores nothing below them).
_HKLM_TOP = ("BCD00000000", "HARDWARE", "SAM", "SECURITY", "SOFTWARE", "SYSTEM")
_USER_HIVE_TOP = (
    "AppEvents",
    "Console",
    "Control Panel",
    "Environment",
    "EUDC",
    "Keyboard Layout",
    "Network",
    "Printers",
    "Software",
    "System",
    "Volatile Environment",
)


def _implicit_subkeys(b: DeviceBinding, canonical: str) -> tuple[str, ...]:
    if canonical == "HKLM":
        return _HKLM_TOP
    if _hive_loaded(b, canonical) and not canonical.casefold().endswith("_classes"):
        return _USER_HIVE_TOP
    return ()


def _implicit_key(b: DeviceBinding, canonical: str) -> bool:
    parent, _, name = canonical.rpartition("\\")
    return bool(parent) and name.casefold() in {k.casefold() for k in _implicit_subkeys(b, parent)}


def key_exists(b: DeviceBinding, ip: ItemPath) -> bool:
    if not ip.parts and ip.root in ("HKLM", "HKU", "HKCR", "HKCC"):
        return True
    canonical = ip.registry_key(_user_sid(b))
    return b.device.registry.key_exists(canonical) or _hive_loaded(b, canonical) or _implicit_key(b, canonical)


def _subkey_names(b: DeviceBinding, ip: ItemPath, listing: bool = True) -> list[str]:
    canonical = ip.registry_key(_user_sid(b))
    if canonical == "HKU":
        return _loaded_hives(b)
    if canonical.startswith("HKU\\") and canonical.split("\\")[1].casefold().endswith("_classes"):
        # A user's classes hive (file associations, COM registrations) is not modelled: listing it is refused,
        # never answered empty (only the key's SubKeyCount, which Get-ChildItem of its parent shows, reads 0).
        if listing:
            raise NotModelledByLab(f"The subkeys of {canonical}", module="lab/cmdlets/items")
        return []
    stored = [sub.rsplit("\\", 1)[-1] for sub in b.device.registry.subkeys(canonical)]
    names = {n.casefold(): n for n in _implicit_subkeys(b, canonical)}
    names.update({n.casefold(): n for n in stored})
    return sorted(names.values(), key=str.casefold)


def _files(b: DeviceBinding) -> DeviceFiles:
    return DeviceFiles(b.lab, b.device)


def exists(b: DeviceBinding, ip: ItemPath) -> bool:
    if ip.provider == "Registry":
        return key_exists(b, ip)
    if ip.provider == "FileSystem":
        return _files(b).exists(ip.display)
    return not ip.parts or _env_lookup(b, ip.parts[0]) is not None


def _children(b: DeviceBinding, ip: ItemPath) -> list[ItemPath]:
    if ip.provider == "Registry":
        return [ip.child(name) for name in _subkey_names(b, ip)]
    if ip.provider == "FileSystem":
        return [ip.child(display.rsplit("\\", 1)[-1]) for display, _ in _files(b).children(ip.display)]
    return [ip.child(name) for name in sorted(b.environment(), key=str.casefold)] if not ip.parts else []


def expand(b: DeviceBinding, ip: ItemPath) -> list[ItemPath]:
    """Expand wildcards segment by segment against what exists (no wildcard: the path itself)."""
    if not ip.has_wildcard:
        return [ip]
    current = [ItemPath(ip.provider, ip.root, (), ip.drive, ip.typed)]
    for part in ip.parts:
        following: list[ItemPath] = []
        for base in current:
            if is_wildcard(part):
                following.extend(c for c in _children(b, base) if wildcard_match(part, c.name))
            else:
                candidate = base.child(part)
                if exists(b, candidate):
                    following.append(candidate)
        current = following
    return current


def _env_lookup(b: DeviceBinding, name: str) -> str | None:
    for key, value in b.environment().items():
        if key.casefold() == name.casefold():
            return value
    return None


def _env_entry(name: str, value: str) -> PSObject:
    return PSObject([("Name", name), ("Key", name), ("Value", value)], ENTRY_TYPES, to_string=name)


def expand_environment(text: str, env: Mapping[str, str]) -> str:
    """%VAR% expansion as ExpandEnvironmentStrings does it (unknown names stay as written)."""
    folded = {k.casefold(): v for k, v in env.items()}
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "%":
            end = text.find("%", i + 1)
            if end > i + 1 and text[i + 1 : end].casefold() in folded:
                out.append(folded[text[i + 1 : end].casefold()])
                i = end + 1
                continue
        out.append(text[i])
        i += 1
    return "".join(out)


def _value_data(b: DeviceBinding, value: RegValue) -> Any:
    data = value.coerced()
    if value.type == "REG_EXPAND_SZ" and isinstance(data, str):
        return expand_environment(data, b.environment())
    return data


def _value_name(value: RegValue) -> str:
    return value.name or "(default)"


def registry_key_object(b: DeviceBinding, ip: ItemPath) -> PSObject:
    """A Microsoft.Win32.RegistryKey as Get-Item / Get-ChildItem emit it."""
    canonical = ip.registry_key(_user_sid(b))
    values = list(b.device.registry.values(canonical))
    props: list[tuple[str, Any]] = [("Property", [_value_name(v) for v in values])]
    props += ip.ps_properties()
    props += [
        ("PSIsContainer", True),
        ("SubKeyCount", len(_subkey_names(b, ip, listing=False))),
        ("View", "Default"),
        ("Handle", "Microsoft.Win32.SafeHandles.SafeRegistryHandle"),
        ("ValueCount", len(values)),
        ("Name", ip.display),
    ]
    shown = [(_value_name(v), _view_text(_value_data(b, v))) for v in values]  # the view's Property column
    return PSObject(props, REGISTRY_KEY_TYPES, to_string=ip.display, view_data=shown)


def _view_text(value: Any) -> str:
    """A value as the registry view's Property column shows it (collections as ``{a, b}``)."""
    if isinstance(value, bytes):
        value = list(value)
    if isinstance(value, list):
        return "{" + ", ".join(to_text(v) for v in value) + "}"
    return to_text(value)


def _mode(is_dir: bool) -> str:
    return "d-----" if is_dir else "-a----"


def file_object(b: DeviceBinding, ip: ItemPath, name_only_string: bool = False) -> PSObject:
    """A System.IO.FileInfo / DirectoryInfo with the provider's PS* note properties."""
    files = _files(b)
    is_dir = files.is_dir(ip.display)
    entry = files.get(ip.display)
    modified = (entry.modified if entry and entry.modified else None) or b.lab.clock.now()
    name = ip.name
    base, dot, ext = name.rpartition(".")
    props: list[tuple[str, Any]] = list(ip.ps_properties())
    props += [("PSIsContainer", is_dir), ("Mode", _mode(is_dir)), ("BaseName", base if dot and not is_dir else name)]
    if is_dir:
        parent = ip.parent
        props += [
            ("Name", name),
            ("FullName", ip.display),
            ("Parent", parent.name if parent else None),
            ("Exists", True),
            ("Root", "C:\\"),
            ("Extension", ""),
        ]
    else:
        props += [
            ("Name", name),
            ("Length", entry.size if entry else 0),
            ("DirectoryName", parent_of(ip.display)),
            ("IsReadOnly", False),
            ("Exists", True),
            ("FullName", ip.display),
            ("Extension", dot + ext if dot else ""),
        ]
    props += [
        ("CreationTime", modified),
        ("CreationTimeUtc", modified),
        ("LastAccessTime", modified),
        ("LastAccessTimeUtc", modified),
        ("LastWriteTime", modified),
        ("LastWriteTimeUtc", modified),
        ("Attributes", "Directory" if is_dir else "Archive"),
    ]
    # FileInfo.ToString() gives the path it was created with: Get-ChildItem builds children from names
    # (Windows PowerShell 5.1 prints just the name), Get-Item from the full path.
    text = name if name_only_string else ip.display
    return PSObject(props, DIRECTORY_TYPES if is_dir else FILE_TYPES, to_string=text)


def item_object(b: DeviceBinding, ip: ItemPath, child: bool = False) -> PSObject:
    if ip.provider == "Registry":
        return registry_key_object(b, ip)
    if ip.provider == "FileSystem":
        return file_object(b, ip, name_only_string=child)
    name = ip.parts[0] if ip.parts else ""
    return _env_entry(name, _env_lookup(b, name) or "")


def _property_missing(ctx: CmdletContext, name: str, ip: ItemPath) -> ErrorRecord:
    # RegistryProviderStrings.PropertyNotAtPath, raised as PSArgumentException by the provider.
    return error_record(
        ctx.command_name,
        f"Property {name} does not exist at path {ip.display}.",
        "System.Management.Automation.PSArgumentException",
        "InvalidArgument",
        "System.Management.Automation.PSArgumentException",
        name,
    )


def _each_item(
    ctx: CmdletContext, b: DeviceBinding, args: Mapping[str, Any], default: str | None = None
) -> Iterator[ItemPath]:
    """Resolve and expand the -Path/-LiteralPath items; a missing one gets PathNotFound (non-terminating)."""
    paths, literal = _paths(args, default)
    for path in paths:
        ip = _resolve(ctx, b, path)
        if ip is None:
            continue
        matches = [ip] if literal else expand(b, ip)
        if ip.has_wildcard and not literal:
            yield from matches  # no match for a wildcard is not an error
            continue
        if not exists(b, ip):
            _not_found(ctx, ip)
            continue
        yield ip


# ---- registry value conversion --------------------------------------------------------------------------


class ValueConversionError(ValueError):
    pass


def parse_kind(text: str | None) -> RegType | None:
    """-Type/-PropertyType (RegistryValueKind names); None for Unknown/absent."""
    if text is None or text.casefold() in ("unknown", ""):
        return None
    kind = VALUE_KIND_TO_TYPE.get(text.casefold())
    if kind is None:
        raise ValueConversionError(
            f'Could not bind parameter \'Type\'. Could not convert "{text}" to "Microsoft.Win32.RegistryValueKind". '
            'The possible enumeration values are "String, ExpandString, Binary, DWord, MultiString, QWord, Unknown".'
        )
    return kind


def _int_of(value: Any, type_name: str) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    text = str(value).strip()
    try:
        return int(text, 16) if text.casefold().startswith("0x") else int(text)
    except ValueError:
        raise ValueConversionError(
            f'Cannot convert value "{value}" to type "{type_name}". Error: "Input string was not in a correct format."'
        ) from None


def _text_of(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(to_text(v) for v in value)  # $OFS joins arrays converted to [string]
    return to_text(value)


def convert_value(value: Any, kind: RegType | None) -> tuple[RegData, RegType]:
    """The data and type RegistryKey.SetValue stores for -Value (kind None: inferred from the .NET type)."""
    if kind is None:
        if value is None:
            return "", "REG_SZ"
        if isinstance(value, bool):
            return str(value), "REG_SZ"  # SetValue(object) stores a Boolean's ToString()
        if isinstance(value, int):
            if -(2**31) <= value < 2**31:
                return value & 0xFFFFFFFF, "REG_DWORD"
            return str(value), "REG_SZ"  # Int64 is not a DWORD: SetValue writes its text
        if isinstance(value, bytes):
            return value, "REG_BINARY"
        if isinstance(value, list):
            return [to_text(v) for v in value], "REG_MULTI_SZ"
        return to_text(value), "REG_SZ"
    if kind in ("REG_DWORD", "REG_QWORD"):
        bits = 32 if kind == "REG_DWORD" else 64
        type_name = "System.Int32" if bits == 32 else "System.Int64"
        number = 0 if value is None else _int_of(value[0] if isinstance(value, list) and value else value, type_name)
        if not -(2 ** (bits - 1)) <= number < 2**bits:
            raise ValueConversionError(
                f'Cannot convert value "{number}" to type "{type_name}". '
                f'Error: "Value was either too large or too small for an {type_name.rsplit(".", 1)[-1]}."'
            )
        return number & (2**bits - 1), kind
    if kind == "REG_MULTI_SZ":
        return (
            [to_text(v) for v in value] if isinstance(value, list) else ([] if value is None else [to_text(value)])
        ), kind
    if kind == "REG_BINARY":
        if value is None:
            return b"", kind
        if isinstance(value, bytes):
            return value, kind
        items = value if isinstance(value, list) else [value]
        try:
            data = bytes(_int_of(v, "System.Byte") for v in items)
        except ValueError:
            raise ValueConversionError(f'Cannot convert value "{_text_of(value)}" to type "System.Byte[]".') from None
        return data, kind
    return ("" if value is None else _text_of(value)), kind


# ---- text of objects (Set-Content, Add-Content) ----------------------------------------------------------


def to_text(value: Any) -> str:
    """An object's ToString() as PowerShell (en-US) renders it when writing content."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        hour = value.hour % 12 or 12
        suffix = "AM" if value.hour < 12 else "PM"
        return f"{value.month}/{value.day}/{value.year} {hour}:{value.minute:02d}:{value.second:02d} {suffix}"
    if isinstance(value, float):
        return repr(value) if not value.is_integer() else str(int(value))
    if isinstance(value, PSObject):
        if value.to_string is not None:
            return value.to_string
        inner = "; ".join(f"{k}={to_text(v)}" for k, v in value.properties.items())
        return "@{" + inner + "}"
    if isinstance(value, Hashtable | dict):
        return "System.Collections.Hashtable"
    if isinstance(value, bytes):
        return "System.Byte[]"
    if isinstance(value, list):
        return " ".join(to_text(v) for v in value)
    return str(value)


def _content_lines(values: Iterable[Any]) -> list[str]:
    lines: list[str] = []
    for value in values:
        if isinstance(value, list):
            lines.extend(to_text(v) for v in value)
        else:
            lines.append(to_text(value))
    return lines


# ---- Get-ItemProperty / Get-ItemPropertyValue ------------------------------------------------------------


def _get_item_property(ctx: CmdletContext, args: dict[str, Any]) -> Iterator[Any]:
    b = binding(ctx)
    names = as_str_list(args.get("Name"))
    for ip in _each_item(ctx, b, args):
        if ip.provider == "Registry":
            obj = _registry_properties(ctx, b, ip, names)
            if obj is not None:
                yield obj
        elif ip.provider == "FileSystem":
            item = file_object(b, ip)
            wanted = names or [k for k in item.properties if not k.startswith("PS")]
            props = [(k, item.get(k)) for k in wanted if k in item]
            yield PSObject([*props, *ip.ps_properties()])
        else:
            yield item_object(b, ip)


def _registry_properties(ctx: CmdletContext, b: DeviceBinding, ip: ItemPath, names: list[str]) -> PSObject | None:
    canonical = ip.registry_key(_user_sid(b))
    values = list(b.device.registry.values(canonical))
    chosen: list[RegValue] = []
    if names:
        for name in names:
            if is_wildcard(name):
                chosen.extend(v for v in values if wildcard_match(name, _value_name(v)))
                continue
            match = next((v for v in values if v.name.casefold() == name.casefold()), None)
            if match is None and name.casefold() == "(default)":
                match = next((v for v in values if v.name == ""), None)
            if match is None:
                ctx.write_error(_property_missing(ctx, name, ip))
            else:
                chosen.append(match)
    else:
        chosen = values
    if not chosen:
        return None  # a key without (matching) values produces no object
    props: list[tuple[str, Any]] = [(_value_name(v), _value_data(b, v)) for v in chosen]
    return PSObject([*props, *ip.ps_properties()])


def _get_item_property_value(ctx: CmdletContext, args: dict[str, Any]) -> Iterator[Any]:
    b = binding(ctx)
    names = as_str_list(args.get("Name"))
    for ip in _each_item(ctx, b, args):
        if ip.provider != "Registry":
            item = file_object(b, ip) if ip.provider == "FileSystem" else item_object(b, ip)
            for name in names:
                if name in item:
                    yield item.get(name)
                else:
                    ctx.write_error(_property_missing(ctx, name, ip))
            continue
        canonical = ip.registry_key(_user_sid(b))
        for name in names:
            lookup = "" if name.casefold() == "(default)" else name
            value = b.device.registry.get_value(canonical, lookup)
            if value is None:
                ctx.write_error(_property_missing(ctx, name, ip))
            else:
                yield _value_data(b, value)


# ---- Set-ItemProperty / New-ItemProperty / Remove-ItemProperty -------------------------------------------


def _write_value_error(ctx: CmdletContext, exc: ValueConversionError, ip: ItemPath) -> None:
    ctx.write_error(
        error_record(
            ctx.command_name,
            str(exc),
            "System.ArgumentException",
            "WriteError",
            "System.ArgumentException",
            ip.drive_form,
        )
    )


def _property_object(b: DeviceBinding, ip: ItemPath, name: str) -> PSObject:
    value = b.device.registry.get_value(ip.registry_key(_user_sid(b)), name)
    data = _value_data(b, value) if value is not None else None
    return PSObject([(name or "(default)", data), *ip.ps_properties()])


def _set_item_property(ctx: CmdletContext, args: dict[str, Any]) -> Iterator[Any]:
    b = binding(ctx)
    name = opt_str(args, "Name") or ""
    lookup = "" if name.casefold() == "(default)" else name
    for ip in _each_item(ctx, b, args):
        if ip.provider != "Registry":
            ctx.write_error(_not_supported(ctx, ip))
            continue
        canonical = ip.registry_key(_user_sid(b))
        try:
            kind = parse_kind(opt_str(args, "Type"))
            existing = b.device.registry.get_value(canonical, lookup)
            # Without -Type the provider keeps an existing value's kind (GetValueKindForProperty).
            data, reg_type = convert_value(args.get("Value"), kind or (existing.type if existing else None))
        except ValueConversionError as exc:
            _write_value_error(ctx, exc, ip)
            continue
        b.device.registry.set_value(canonical, lookup, data, reg_type)
        if flag(args, "PassThru"):
            yield _property_object(b, ip, lookup)


def _new_item_property(ctx: CmdletContext, args: dict[str, Any]) -> Iterator[Any]:
    b = binding(ctx)
    name = opt_str(args, "Name") or ""
    lookup = "" if name.casefold() == "(default)" else name
    for ip in _each_item(ctx, b, args):
        if ip.provider != "Registry":
            ctx.write_error(_not_supported(ctx, ip))
            continue
        canonical = ip.registry_key(_user_sid(b))
        try:
            kind = parse_kind(opt_str(args, "PropertyType"))
        except ValueConversionError as exc:
            _write_value_error(ctx, exc, ip)
            continue
        if not flag(args, "Force") and b.device.registry.get_value(canonical, lookup) is not None:
            ctx.write_error(
                error_record(
                    ctx.command_name,
                    "The property already exists.",
                    "System.IO.IOException",
                    "ResourceExists",
                    "System.IO.IOException",
                    ip.display,
                )
            )
            continue
        try:
            data, reg_type = convert_value(args.get("Value"), kind)
        except ValueConversionError as exc:
            _write_value_error(ctx, exc, ip)
            continue
        key = b.device.registry.get_key(canonical) or b.device.registry.create_key(canonical)
        key.values.pop(lookup.casefold(), None)  # -Force replaces the value, type included
        b.device.registry.set_value(canonical, lookup, data, reg_type)
        yield _property_object(b, ip, lookup)


def _remove_item_property(ctx: CmdletContext, args: dict[str, Any]) -> Iterator[Any]:
    b = binding(ctx)
    names = as_str_list(args.get("Name"))
    for ip in _each_item(ctx, b, args):
        if ip.provider != "Registry":
            ctx.write_error(_not_supported(ctx, ip))
            continue
        canonical = ip.registry_key(_user_sid(b))
        values = list(b.device.registry.values(canonical))
        for name in names:
            matched = [
                v
                for v in values
                if (wildcard_match(name, _value_name(v)) if is_wildcard(name) else v.name.casefold() == name.casefold())
            ]
            if not matched:
                ctx.write_error(_property_missing(ctx, name, ip))
            for value in matched:
                b.device.registry.delete_value(canonical, value.name)
    return
    yield


def _not_supported(ctx: CmdletContext, ip: ItemPath) -> ErrorRecord:
    return error_record(
        ctx.command_name,
        "Provider operation stopped because the provider does not support this operation.",
        "NotSupported",
        "NotImplemented",
        "System.Management.Automation.PSNotSupportedException",
        ip.typed,
    )


# ---- Test-Path ---------------------------------------------------------------------------------------------


def _test_path(ctx: CmdletContext, args: dict[str, Any]) -> Iterator[Any]:
    b = binding(ctx)
    paths, literal = _paths(args)
    _check_not_empty(ctx, paths, "LiteralPath" if literal else "Path")
    path_type = (opt_str(args, "PathType") or "Any").casefold()
    for path in paths:
        if certs.is_cert_path(path):
            yield certs.test_path(ctx, path)
            continue
        try:
            ip = resolve(ctx.command_name, path, current_location(b))
        except PathResolutionError:
            yield False  # Test-Path answers False for a missing drive instead of failing
            continue
        if flag(args, "IsValid"):
            yield True
            continue
        matches = [ip] if literal or not ip.has_wildcard else expand(b, ip)
        found = [m for m in matches if exists(b, m)]
        if path_type == "container":
            yield any(_is_container(b, m) for m in found)
        elif path_type == "leaf":
            yield any(not _is_container(b, m) for m in found)
        else:
            yield bool(found)


def _is_container(b: DeviceBinding, ip: ItemPath) -> bool:
    if ip.provider == "Registry":
        return True
    if ip.provider == "FileSystem":
        return _files(b).is_dir(ip.display)
    return not ip.parts


# ---- Get-Item / Get-ChildItem ------------------------------------------------------------------------------


def _get_item(ctx: CmdletContext, args: dict[str, Any]) -> Iterator[Any]:
    cert = certs.cert_paths(args)
    if cert is not None:
        for path in cert:
            yield from certs.get_items(ctx, path, children=False)
        return
    b = binding(ctx)
    for ip in _each_item(ctx, b, args):
        yield item_object(b, ip)


def _get_child_item(ctx: CmdletContext, args: dict[str, Any]) -> Iterator[Any]:
    cert = certs.cert_paths(args)
    if cert is not None:
        for path in cert:
            yield from certs.get_items(ctx, path, children=True)
        return
    b = binding(ctx)
    filters = [f for f in [opt_str(args, "Filter"), *as_str_list(args.get("Include"))] if f]
    excludes = as_str_list(args.get("Exclude"))
    only_files, only_dirs = flag(args, "File"), flag(args, "Directory")
    names_only = flag(args, "Name")
    for ip in _each_item(ctx, b, args, default=current_location(b)):
        if not _is_container(b, ip):
            yield ip.name if names_only else item_object(b, ip)
            continue
        for child, relative in _walk(b, ip, flag(args, "Recurse")):
            if filters and not any(wildcard_match(f, child.name) for f in filters):
                continue
            if any(wildcard_match(x, child.name) for x in excludes):
                continue
            if child.provider == "FileSystem":
                is_dir = _files(b).is_dir(child.display)
                if (only_files and is_dir) or (only_dirs and not is_dir):
                    continue
            yield relative if names_only else item_object(b, child, child=True)


def _walk(b: DeviceBinding, ip: ItemPath, recurse: bool, prefix: str = "") -> Iterator[tuple[ItemPath, str]]:
    for child in _children(b, ip):
        relative = f"{prefix}{child.name}"
        yield child, relative
        if recurse and child.provider != "Environment" and _is_container(b, child):
            yield from _walk(b, child, recurse, relative + "\\")


# ---- New-Item / Remove-Item ---------------------------------------------------------------------------------


def _new_item(ctx: CmdletContext, args: dict[str, Any]) -> Iterator[Any]:
    b = binding(ctx)
    paths = as_str_list(args.get("Path")) or [current_location(b)]
    name = opt_str(args, "Name")
    for path in paths:
        ip = _resolve(ctx, b, path)
        if ip is None:
            continue
        if name:
            ip = ip.child(name) if not name.startswith(("\\", "/")) else ip.child(name.strip("\\/"))
        if ip.provider == "Registry":
            yield from _new_registry_key(ctx, b, ip, args)
        elif ip.provider == "FileSystem":
            yield from _new_file_item(ctx, b, ip, args)
        else:
            ctx.write_error(_not_supported(ctx, ip))


def _new_registry_key(ctx: CmdletContext, b: DeviceBinding, ip: ItemPath, args: Mapping[str, Any]) -> Iterator[Any]:
    registry = b.device.registry
    canonical = ip.registry_key(_user_sid(b))
    force = flag(args, "Force")
    if key_exists(b, ip):
        if not force:
            # 5.1 wording (docs transcript "New-Item : A key at this path already exists").
            ctx.write_error(
                error_record(
                    ctx.command_name,
                    "A key at this path already exists.",
                    "System.IO.IOException",
                    "ResourceExists",
                    "System.IO.IOException",
                    ip.display,
                )
            )
            return
        registry.delete_key(canonical, recurse=True)  # RegistryProvider.NewItem removes it, then recreates
    parent = ip.parent
    if not force and parent is not None and not key_exists(b, parent):
        ctx.write_error(
            error_record(
                ctx.command_name,
                "The registry key at the specified path does not exist.",
                "System.ArgumentException",
                "InvalidArgument",
                "System.ArgumentException",
                parent.drive_form,
            )
        )
        return
    registry.create_key(canonical)
    if args.get("Value") is not None:
        data, reg_type = convert_value(args.get("Value"), "REG_SZ")
        registry.set_value(canonical, "", data, reg_type)
    yield registry_key_object(b, ip)


def _new_file_item(ctx: CmdletContext, b: DeviceBinding, ip: ItemPath, args: Mapping[str, Any]) -> Iterator[Any]:
    files = _files(b)
    kind = (opt_str(args, "ItemType") or "File").casefold()
    force = flag(args, "Force")
    now = b.lab.clock.now()
    target = ip.display
    if kind in ("directory", "d", "dir", "container"):
        if files.exists(target):
            if files.is_dir(target) and force:
                yield file_object(b, ip)
                return
            ctx.write_error(
                error_record(
                    ctx.command_name,
                    f"An item with the specified name {target} already exists.",
                    "DirectoryExist",
                    "ResourceExists",
                    "System.IO.IOException",
                    target,
                )
            )
            return
        files.mkdir(target, now)  # Directory.CreateDirectory creates the missing parents too
        yield file_object(b, ip)
        return
    if kind not in ("file", "f", "leaf"):
        ctx.write_error(
            error_record(
                ctx.command_name,
                'The type is not a known type for the file system. Only "file","directory" or "symboliclink" '
                "can be specified.",
                "Argument",
                "InvalidArgument",
                "System.ArgumentException",
                target,
            )
        )
        return
    if files.is_dir(target) or (files.is_file(target) and not force):
        ctx.write_error(
            error_record(
                ctx.command_name,
                f"The file '{target}' already exists.",
                "NewItemIOError",
                "WriteError",
                "System.IO.IOException",
                target,
            )
        )
        return
    parent = parent_of(target)
    if not files.is_dir(parent):
        if not force:
            ctx.write_error(_missing_part(ctx, target, "NewItemIOError", "WriteError"))
            return
        files.mkdir(parent, now)
    files.write(target, "" if args.get("Value") is None else to_text(args.get("Value")), now)
    yield file_object(b, ip)


def _missing_part(ctx: CmdletContext, target: str, error_id: str, category: Any) -> ErrorRecord:
    return error_record(
        ctx.command_name,
        f"Could not find a part of the path '{target}'.",
        error_id,
        category,
        "System.IO.DirectoryNotFoundException",
        target,
    )


def _non_interactive_prompt(ctx: CmdletContext, ip: ItemPath) -> ErrorRecord:
    # Removing a container with children without -Recurse asks ShouldContinue; a remote (non-interactive)
    # session cannot prompt, so the removal fails instead of deleting the children.
    return error_record(
        ctx.command_name,
        "Windows PowerShell is in NonInteractive mode. Read and Prompt functionality is not available.",
        "System.Management.Automation.PSInvalidOperationException",
        "InvalidOperation",
        "System.Management.Automation.PSInvalidOperationException",
        ip.drive_form,
    )


def _remove_item(ctx: CmdletContext, args: dict[str, Any]) -> Iterator[Any]:
    b = binding(ctx)
    recurse = flag(args, "Recurse")
    if flag(args, "WhatIf"):
        return
    for ip in _each_item(ctx, b, args):
        if ip.provider == "Registry":
            canonical = ip.registry_key(_user_sid(b))
            if not ip.parts or (_hive_loaded(b, canonical) and len(ip.parts) <= 1):
                ctx.write_error(_not_supported(ctx, ip))
                continue
            if _subkey_names(b, ip) and not recurse:
                ctx.write_error(_non_interactive_prompt(ctx, ip))
                continue
            b.device.registry.delete_key(canonical, recurse=True)
        elif ip.provider == "FileSystem":
            files = _files(b)
            if files.is_builtin_dir(ip.display):
                ctx.write_error(
                    error_record(
                        ctx.command_name,
                        f"Access to the path '{ip.display}' is denied.",
                        "RemoveItemUnauthorizedAccessError",
                        "PermissionDenied",
                        "System.UnauthorizedAccessException",
                        ip.display,
                    )
                )
                continue
            if files.is_dir(ip.display) and files.children(ip.display) and not recurse:
                ctx.write_error(_non_interactive_prompt(ctx, ip))
                continue
            files.remove(ip.display)
        else:
            ctx.write_error(_not_supported(ctx, ip))
    return
    yield


# ---- content: Get-Content / Set-Content / Add-Content / Out-File ----------------------------------------------

# Cmdlets called once per pipeline object must know whether this pipeline already wrote a file: the first
# write truncates (Set-Content, Out-File without -Append), later ones append. Keyed on the identity of the cmdlet
# context, which lives as long as that pipeline step (a weak reference drops the entry with it).
_WRITTEN: dict[int, tuple[weakref.ref[Any], set[str]]] = {}
_WRITTEN_LOCK = threading.Lock()


def _first_write(ctx: CmdletContext, path: str) -> bool:
    key = id(ctx)
    with _WRITTEN_LOCK:
        entry = _WRITTEN.get(key)
        if entry is None or entry[0]() is not ctx:

            def forget(ref: weakref.ref[Any], key: int = key) -> None:
                with _WRITTEN_LOCK:
                    if key in _WRITTEN and _WRITTEN[key][0] is ref:
                        del _WRITTEN[key]

            try:
                entry = (weakref.ref(ctx, forget), set())
            except TypeError:  # a context that cannot be weakly referenced: every call is a whole invocation
                return True
            _WRITTEN[key] = entry
        folded = path.casefold()
        if folded in entry[1]:
            return False
        entry[1].add(folded)
        return True


def _get_content(ctx: CmdletContext, args: dict[str, Any]) -> Iterator[Any]:
    b = binding(ctx)
    files = _files(b)
    total = args.get("TotalCount")
    tail = args.get("Tail")
    for ip in _each_item(ctx, b, args):
        if ip.provider == "Environment":
            if ip.parts:
                yield _env_lookup(b, ip.parts[0])
            continue
        if ip.provider == "Registry":
            ctx.write_error(_not_supported(ctx, ip))
            continue
        if files.is_dir(ip.display):
            ctx.write_error(
                error_record(
                    ctx.command_name,
                    f"Access to the path '{ip.display}' is denied.",
                    "GetContentReaderUnauthorizedAccessError",
                    "PermissionDenied",
                    "System.UnauthorizedAccessException",
                    ip.display,
                )
            )
            continue
        if _byte_encoding(args):
            # -Encoding Byte (FileSystemCmdletProviderEncoding.Byte): the bytes as numbers; -Raw gives one byte[].
            data = files.read_bytes(ip.display)
            if flag(args, "Raw"):
                if data:
                    yield data
                continue
            numbers = list(data)
            if total is not None and int(total) >= 0:
                numbers = numbers[: int(total)]
            if tail is not None and int(tail) >= 0:
                numbers = numbers[len(numbers) - int(tail) :] if int(tail) else []
            yield from numbers
            continue
        text = files.read(ip.display)
        if flag(args, "Raw"):
            if text:
                yield text
            continue
        lines = text.replace("\r\n", "\n").split("\n")
        if lines and lines[-1] == "":
            lines.pop()  # a trailing newline ends the last line, it does not start another
        if total is not None and int(total) >= 0:
            lines = lines[: int(total)]
        if tail is not None and int(tail) >= 0:
            lines = lines[len(lines) - int(tail) :] if int(tail) else []
        yield from lines


def _byte_encoding(args: Mapping[str, Any]) -> bool:
    encoding = opt_str(args, "Encoding")
    return encoding is not None and encoding.casefold() == "byte"


def _content_bytes(ctx: CmdletContext, values: list[Any]) -> bytes:
    """Set-Content/Add-Content -Encoding Byte: every value (or element of a byte array) is one byte."""
    data = bytearray()
    for value in values:
        items = value if isinstance(value, bytes | bytearray | list | tuple) else [value]
        for item in items:
            if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item <= 255:
                raise PowerShellError(
                    error_record(
                        ctx.command_name,
                        f'Cannot convert value "{to_text(item)}" to type "System.Byte".',
                        "InvalidCastToByte",
                        "InvalidArgument",
                        "System.Management.Automation.PSInvalidCastException",
                        item,
                    )
                )
            data.append(item)
    return bytes(data)


def _write_content(ctx: CmdletContext, args: dict[str, Any], append: bool) -> Iterator[Any]:
    b = binding(ctx)
    files = _files(b)
    now = b.lab.clock.now()
    values = as_list(args.get("Value"))
    newline = "" if flag(args, "NoNewline") else "\r\n"
    data = _content_bytes(ctx, values) if _byte_encoding(args) else None
    text = "" if data is not None else "".join(line + newline for line in _content_lines(values))
    paths, literal = _paths(args)
    for path in paths:
        ip = _resolve(ctx, b, path)
        if ip is None:
            continue
        targets = expand(b, ip) if ip.has_wildcard and not literal else [ip]
        for target_ip in targets:
            if target_ip.provider != "FileSystem":
                ctx.write_error(_not_supported(ctx, target_ip))
                continue
            target = target_ip.display
            if files.is_dir(target):
                ctx.write_error(
                    error_record(
                        ctx.command_name,
                        f"Access to the path '{target}' is denied.",
                        "GetContentWriterUnauthorizedAccessError",
                        "PermissionDenied",
                        "System.UnauthorizedAccessException",
                        target,
                    )
                )
                continue
            if not files.is_dir(parent_of(target)):
                ctx.write_error(_missing_part(ctx, target, "System.IO.DirectoryNotFoundException", "ObjectNotFound"))
                continue
            first = _first_write(ctx, target)
            if data is not None:
                keep = append or not first
                previous = files.read_bytes(target) if keep and files.is_file(target) else b""
                files.write_bytes(target, previous + data, now)
            else:
                files.write(target, text, now, append=append or not first)
            if flag(args, "PassThru"):
                yield from values


def _set_content(ctx: CmdletContext, args: dict[str, Any]) -> Iterator[Any]:
    return _write_content(ctx, args, append=False)


def _add_content(ctx: CmdletContext, args: dict[str, Any]) -> Iterator[Any]:
    return _write_content(ctx, args, append=True)


def _format_for_file(values: list[Any]) -> str:
    """Out-File writes what the console would show: strings as they are, objects through default formatting."""
    if all(isinstance(v, str | int | float | bool) or v is None for v in values):
        return "".join(to_text(v) + "\r\n" for v in values if v is not None)
    formatted = format_default(values)
    return formatted.replace("\r\n", "\n").replace("\n", "\r\n")


def _out_file(ctx: CmdletContext, args: dict[str, Any]) -> Iterator[Any]:
    b = binding(ctx)
    files = _files(b)
    path = opt_str(args, "LiteralPath") or opt_str(args, "FilePath")
    _check_not_empty(ctx, [] if path is None else [path], "FilePath")
    assert path is not None
    try:
        ip = resolve(ctx.command_name, path, current_location(b))
    except PathResolutionError as exc:
        raise PowerShellError(exc.record) from None
    target = ip.display
    if ip.provider != "FileSystem" or files.is_dir(target):
        raise PowerShellError(
            error_record(
                ctx.command_name,
                f"Access to the path '{target}' is denied.",
                "FileOpenFailure",
                "OpenError",
                "System.UnauthorizedAccessException",
                target,
            )
        )
    if not files.is_dir(parent_of(target)):
        raise PowerShellError(_missing_part(ctx, target, "FileOpenFailure", "OpenError"))
    first = _first_write(ctx, target)
    if first and flag(args, "NoClobber") and not flag(args, "Append") and files.is_file(target):
        raise PowerShellError(
            error_record(
                ctx.command_name,
                f"The file '{target}' already exists.",
                "NoClobber",
                "ResourceExists",
                "System.IO.IOException",
                target,
            )
        )
    values = as_list(args.get("InputObject")) if "InputObject" in args else []
    text = _format_for_file(values)
    if flag(args, "NoNewline"):
        text = text.replace("\r\n", "")
    files.write(target, text, b.lab.clock.now(), append=flag(args, "Append") or not first)
    return
    yield


# ---- specs -----------------------------------------------------------------------------------------------------

_NAME = Param("Name", "string[]", position=1, aliases=("PSProperty",))

SPECS: tuple[CmdletSpec, ...] = (
    CmdletSpec(
        "Get-ItemProperty",
        (_PATH, _NAME, _LITERAL, Param("Filter", "string"), Param("Include", "string[]"), Param("Exclude", "string[]")),
        _get_item_property,
        aliases=("gp",),
    ),
    CmdletSpec(
        "Get-ItemPropertyValue",
        (_PATH, Param("Name", "string[]", mandatory=True, position=1, aliases=("PSProperty",)), _LITERAL),
        _get_item_property_value,
        aliases=("gpv",),
    ),
    CmdletSpec(
        "Set-ItemProperty",
        (
            _PATH,
            Param("Name", "string", position=1, aliases=("PSProperty",), from_pipeline_by_property_name=True),
            Param("Value", "any", position=2, from_pipeline_by_property_name=True),
            Param("Type", "string", aliases=("PropertyType",)),
            _LITERAL,
            Param("PassThru", "switch"),
            Param("Force", "switch"),
            Param("WhatIf", "switch"),
            Param("Confirm", "switch"),
        ),
        _set_item_property,
        aliases=("sp",),
    ),
    CmdletSpec(
        "New-ItemProperty",
        (
            _PATH,
            Param("Name", "string", mandatory=True, position=1, aliases=("PSProperty",)),
            Param("PropertyType", "string", aliases=("Type",)),
            Param("Value", "any"),
            _LITERAL,
            Param("Force", "switch"),
            Param("WhatIf", "switch"),
            Param("Confirm", "switch"),
        ),
        _new_item_property,
    ),
    CmdletSpec(
        "Remove-ItemProperty",
        (
            _PATH,
            Param("Name", "string[]", mandatory=True, position=1, aliases=("PSProperty",)),
            _LITERAL,
            Param("Force", "switch"),
            Param("WhatIf", "switch"),
            Param("Confirm", "switch"),
        ),
        _remove_item_property,
        aliases=("rp",),
    ),
    CmdletSpec(
        "Test-Path",
        (
            Param("Path", "string[]", position=0, from_pipeline=True, from_pipeline_by_property_name=True),
            _LITERAL,
            Param("PathType", "string", aliases=("Type",)),
            Param("IsValid", "switch"),
            Param("Filter", "string"),
            Param("Include", "string[]"),
            Param("Exclude", "string[]"),
        ),
        _test_path,
    ),
    CmdletSpec(
        "Get-Item",
        (_PATH, _LITERAL, Param("Force", "switch"), Param("Filter", "string"), Param("Include", "string[]")),
        _get_item,
        aliases=("gi",),
    ),
    CmdletSpec(
        "Get-ChildItem",
        (
            Param("Path", "string[]", position=0, from_pipeline=True, from_pipeline_by_property_name=True),
            Param("Filter", "string", position=1),
            _LITERAL,
            Param("Include", "string[]"),
            Param("Exclude", "string[]"),
            Param("Recurse", "switch", aliases=("s",)),
            Param("Force", "switch"),
            Param("Name", "switch"),
            Param("File", "switch"),
            Param("Directory", "switch", aliases=("ad", "d")),
        ),
        _get_child_item,
        aliases=("gci", "ls", "dir"),
    ),
    CmdletSpec(
        "New-Item",
        (
            Param("Path", "string[]", position=0, from_pipeline_by_property_name=True),
            Param("Name", "string", from_pipeline_by_property_name=True),
            Param("ItemType", "string", aliases=("Type",)),
            Param("Value", "any", from_pipeline=True),
            Param("Force", "switch"),
            Param("WhatIf", "switch"),
            Param("Confirm", "switch"),
        ),
        _new_item,
        aliases=("ni",),
    ),
    CmdletSpec(
        "Remove-Item",
        (
            Param("Path", "string[]", position=0, from_pipeline=True, from_pipeline_by_property_name=True),
            _LITERAL,
            Param("Recurse", "switch"),
            Param("Force", "switch"),
            Param("Filter", "string"),
            Param("Include", "string[]"),
            Param("Exclude", "string[]"),
            Param("WhatIf", "switch"),
            Param("Confirm", "switch"),
        ),
        _remove_item,
        aliases=("ri", "rm", "rmdir", "del", "erase", "rd"),
    ),
    CmdletSpec(
        "Get-Content",
        (
            _PATH,
            _LITERAL,
            Param("Raw", "switch"),
            Param("Encoding", "string"),
            Param("TotalCount", "int", aliases=("First", "Head")),
            Param("Tail", "int", aliases=("Last",)),
            Param("Force", "switch"),
        ),
        _get_content,
        aliases=("gc", "cat", "type"),
    ),
    CmdletSpec(
        "Set-Content",
        (
            _PATH,
            Param("Value", "object[]", position=1, from_pipeline=True, from_pipeline_by_property_name=True),
            _LITERAL,
            Param("Encoding", "string"),
            Param("NoNewline", "switch"),
            Param("Force", "switch"),
            Param("PassThru", "switch"),
            Param("WhatIf", "switch"),
            Param("Confirm", "switch"),
        ),
        _set_content,
        aliases=("sc",),
    ),
    CmdletSpec(
        "Add-Content",
        (
            _PATH,
            Param("Value", "object[]", position=1, from_pipeline=True, from_pipeline_by_property_name=True),
            _LITERAL,
            Param("Encoding", "string"),
            Param("NoNewline", "switch"),
            Param("Force", "switch"),
            Param("PassThru", "switch"),
            Param("WhatIf", "switch"),
            Param("Confirm", "switch"),
        ),
        _add_content,
        aliases=("ac",),
    ),
    CmdletSpec(
        "Out-File",
        (
            Param("FilePath", "string", position=0, aliases=("Path",)),
            Param("Encoding", "string", position=1),
            Param("LiteralPath", "string", aliases=("PSPath", "LP")),
            Param("InputObject", "any", from_pipeline=True),
            Param("Append", "switch"),
            Param("Force", "switch"),
            Param("NoClobber", "switch", aliases=("NoOverwrite",)),
            Param("NoNewline", "switch"),
            Param("Width", "int"),
            Param("WhatIf", "switch"),
            Param("Confirm", "switch"),
        ),
        _out_file,
    ),
)
