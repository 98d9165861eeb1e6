"""``reg query``: a registry key's values and subkeys as reg.exe prints them.

Modelled: ``reg query <KeyName> [/v <ValueName> | /ve] [/s]`` (``reg query /?``; learn.microsoft.com
windows-commands/reg-query; sample ``tests/lab/outputs/reg_query.txt``): a blank line, the key's full name
(``HKEY_LOCAL_MACHINE\\...``), each value as ``    Name    TYPE    data`` (DWORD/QWORD as ``0x`` hex, binary as hex
digits, REG_MULTI_SZ joined with ``\\0``, REG_EXPAND_SZ unexpanded, the default value as ``(Default)``), a blank
line, then each subkey's full name (``/s``: each subkey's own block, and "End of search: N match(es) found.").
A key the device does not have: "ERROR: The system was unable to find the specified registry key or value."
and exit code 1. The keys are the lab's registry, the same the PowerShell registry provider reads; a hive root or a
key that exists only as the parent of the keys the lab holds, and the top keys of a hive (``HKLM\\SOFTWARE``), are
refused as not modelled: Windows has far more below them than the lab holds.
``reg add``, ``delete``, ``export``, ``import``, ``load``, ``save``, ``compare``, ``copy``, ``/f`` searches and
remote computers are refused as not modelled.
"""

from __future__ import annotations

from migrator.lab import boundary
from migrator.lab.native._common import NativeContext, text
from migrator.lab.registry import Registry, RegistryPathError, RegValue, normalize_path
from migrator.lab.shell import NativeResult

NOT_FOUND = "ERROR: The system was unable to find the specified registry key or value."
_LONG = {"HKLM": "HKEY_LOCAL_MACHINE", "HKU": "HKEY_USERS", "HKCR": "HKEY_CLASSES_ROOT", "HKCC": "HKEY_CURRENT_CONFIG"}


def _refuse(args: list[str]) -> NativeResult:
    message = boundary.native_refusal("reg " + " ".join(args), "lab/native/reg")
    return NativeResult(stderr=text([message]), exit_code=boundary.EXIT_CODE)


def _long_name(canonical: str) -> str:
    root, _, rest = canonical.partition("\\")
    return _LONG.get(root, root) + ("\\" + rest if rest else "")


def _data(value: RegValue) -> str:
    data = value.data
    if value.type in ("REG_DWORD", "REG_QWORD"):
        return f"0x{int(data) if isinstance(data, int) else 0:x}"
    if value.type == "REG_BINARY":
        return data.hex().upper() if isinstance(data, bytes) else ""
    if value.type == "REG_MULTI_SZ":
        return "\\0".join(data) if isinstance(data, list) else str(data)
    return str(data)


def _value_line(value: RegValue) -> str:
    return f"    {value.name or '(Default)'}    {value.type}    {_data(value)}"


def run(ctx: NativeContext, args: list[str]) -> NativeResult:
    words = [a.casefold() for a in args]
    if len(args) < 2 or words[0] != "query" or args[1].startswith("\\\\"):
        return _refuse(args)
    options = words[2:]
    name: str | None = None
    default_only = recurse = False
    index = 0
    while index < len(options):
        option = options[index]
        if option == "/v" and index + 1 < len(options):
            name, index = args[2 + index + 1], index + 2
            continue
        if option == "/ve":
            default_only, index = True, index + 1
            continue
        if option == "/s":
            recurse, index = True, index + 1
            continue
        return _refuse(args)
    try:
        canonical = normalize_path(args[1], ctx.principal.sid)
    except RegistryPathError:
        return NativeResult(stderr=text(["ERROR: Invalid key name.", 'Type "REG QUERY /?" for usage.']), exit_code=1)
    registry = ctx.device.registry
    with ctx.device.lock:
        broad = canonical.count("\\") < 2 and name is None and not default_only  # HKLM, HKLM\SOFTWARE, HKU\<sid>
        if broad or not registry.key_exists(canonical):
            prefix = canonical.casefold() + "\\"
            if broad or any(key.startswith(prefix) for key in registry.keys):
                # A hive root or a key that exists only as the parent of modelled keys (HKLM\SOFTWARE): Windows
                # has far more below it than the lab holds, so listing it is refused rather than shown short.
                return _refuse(args)
            return NativeResult(stderr=text([NOT_FOUND]), exit_code=1)
        if name is not None or default_only:
            if recurse:
                return _refuse(args)
            value = registry.get_value(canonical, "" if default_only else name or "")
            if value is None:
                return NativeResult(stderr=text([NOT_FOUND]), exit_code=1)
            return NativeResult(stdout=text(["", _long_name(canonical), _value_line(value), ""]))
        lines: list[str] = []
        matches = _block(registry, canonical, recurse, lines)
    if recurse:
        lines += ["", f"End of search: {matches} match(es) found."]
    return NativeResult(stdout=text(lines))


def _block(registry: Registry, canonical: str, recurse: bool, lines: list[str]) -> int:
    lines += ["", _long_name(canonical)]
    values = list(registry.values(canonical))
    lines += [_value_line(value) for value in values]
    count = len(values)
    subkeys = registry.subkeys(canonical)
    if not recurse:
        lines.append("")
        lines += [_long_name(sub) for sub in subkeys]
        if subkeys:
            lines.append("")
        return count
    for sub in subkeys:
        count += 1 + _block(registry, sub, recurse, lines)
    return count
