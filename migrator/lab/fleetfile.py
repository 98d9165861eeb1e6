"""Fleet files: a :class:`~migrator.lab.model.Fleet` saved as JSON or YAML, and loaded back with clear errors.

Format
------
The file is the fleet model's JSON form (``Fleet.model_dump(mode="json")``) with one change that makes it
readable and about half the size: each device's registry is written as a tree-ordered mapping of key paths (in
their display spelling) to their values, each value as ``[type, data]``::

    registry:
      HKLM\\SOFTWARE\\Policies\\Microsoft\\PassportForWork:
        Enabled: [REG_DWORD, 1]
        UseCertificateForOnPremAuth: [REG_DWORD, 1]

A key with no values is omitted when a key below it implies it (same spelling): loading re-creates parent keys
exactly as ``Registry.create_key`` does. ``REG_BINARY`` data is base64 text, ``REG_MULTI_SZ`` a list.

The format (JSON or YAML) follows the file extension (``.json``, ``.yaml``, ``.yml``). Saving is atomic (a
temporary file in the same directory, then ``os.replace``). Loading checks ``schema_version`` first (a newer
file is refused rather than misread) and reports every problem as a :class:`FleetFileError` naming the file,
the line, and the field path (``devices[3].os.build``).
"""

from __future__ import annotations

import gc
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, get_args

import pydantic_core
import yaml
from pydantic import ValidationError

from migrator.lab.model import SCHEMA_VERSION, Fleet
from migrator.lab.registry import RegType
from migrator.yamlsource import FLEET_LIMIT, FLEET_MAX_NODES, InputFileError, parse_yaml, read_text

FileFormat = Literal["json", "yaml"]
_SUFFIXES: dict[str, FileFormat] = {".json": "json", ".yaml": "yaml", ".yml": "yaml"}
_REG_TYPES: frozenset[str] = frozenset(get_args(RegType))
Loc = tuple[str | int, ...]

# The C emitter of PyYAML (libyaml) is several times faster than the pure-Python one (loading goes through
# migrator.yamlsource, which reads libyaml's events).
_YamlDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _FleetDumper(_YamlDumper):  # type: ignore[misc,valid-type]
    """Block style for mappings, flow style for lists of scalars (registry values, groups stay one line)."""


def _represent_mapping(dumper: yaml.SafeDumper, data: dict[Any, Any]) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=False)


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flat = all(not isinstance(item, dict | list) for item in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flat)


_FleetDumper.add_representer(dict, _represent_mapping)
_FleetDumper.add_representer(list, _represent_list)


class FleetFileError(Exception):
    """A fleet file that cannot be read or written; the message names the file, line and field."""

    def __init__(self, path: Path | str, message: str, *, line: int | None = None, field: str | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.field = field
        self.reason = message
        where = f"{self.path}:{line}" if line is not None else f"{self.path}"
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")


def file_format(path: Path | str) -> FileFormat:
    """JSON or YAML, from the file extension."""
    suffix = Path(path).suffix.lower()
    if suffix not in _SUFFIXES:
        raise FleetFileError(path, f"unknown fleet file extension {suffix or '(none)'!r}: use .json, .yaml or .yml")
    return _SUFFIXES[suffix]


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic collector while millions of acyclic objects are built (it would rescan them over and
    over, making large fleets quadratic)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


# ---- save ---------------------------------------------------------------------------------------------------


def fleet_to_data(fleet: Fleet) -> dict[str, Any]:
    """The file form of a fleet: JSON-compatible data with compact registries."""
    data = fleet.model_dump(mode="json")
    if not data.get("directory_changes"):
        data.pop("directory_changes", None)  # fleets whose directory nobody changed keep their former form
    if data.get("entra") is None:
        data.pop("entra", None)  # likewise fleets no lab tenant has served
    for device in data["devices"]:
        device["registry"] = _compact_registry(device["registry"]["keys"])
    return data


def _compact_registry(keys: dict[str, dict[str, Any]]) -> dict[str, dict[str, list[Any]]]:
    ordered = sorted(keys.values(), key=lambda key: key["path"].casefold().split("\\"))
    # A key without values is implied (re-created on load) when the first key below it, in the order written
    # (tree order: a key's subtree follows it), spells its path the same way.
    first_below: dict[str, str] = {}
    for key in ordered:
        parts = key["path"].split("\\")
        for depth in range(2, len(parts)):
            first_below.setdefault("\\".join(parts[:depth]).casefold(), "\\".join(parts[:depth]))
    out: dict[str, dict[str, list[Any]]] = {}
    for key in ordered:
        path = key["path"]
        if not key["values"] and first_below.get(path.casefold()) == path:
            continue
        out[path] = {value["name"]: [value["type"], value["data"]] for value in key["values"].values()}
    return out


def dumps_fleet(fleet: Fleet, fmt: FileFormat) -> bytes:
    """The fleet as file content, JSON or YAML (UTF-8)."""
    data = fleet_to_data(fleet)
    if fmt == "json":
        # pydantic-core's serializer indents in Rust; json.dumps(indent=...) falls back to pure Python.
        return pydantic_core.to_json(data, indent=1) + b"\n"
    text = yaml.dump(
        data,
        Dumper=_FleetDumper,
        sort_keys=False,
        allow_unicode=True,
        width=4096,
    )
    return text.encode("utf-8")


def save_fleet(fleet: Fleet, path: Path | str) -> Path:
    """Write the fleet to ``path`` (format by extension), atomically, creating its folder; returns the path."""
    target = Path(path)
    fmt = file_format(target)
    with _gc_paused():
        content = dumps_fleet(fleet, fmt)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)  # `lab up` saves to state/lab/ even in a fresh clone
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise FleetFileError(target, f"cannot write the fleet file: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o644)  # mkstemp creates 0600; a fleet file holds no secret
        os.replace(tmp_name, target)
    except OSError as exc:
        Path(tmp_name).unlink(missing_ok=True)
        raise FleetFileError(target, f"cannot write the fleet file: {exc.strerror or exc}") from exc
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target


# ---- load ---------------------------------------------------------------------------------------------------


def load_fleet(path: Path | str) -> Fleet:
    """Read a fleet file written by :func:`save_fleet` (or by hand); raises :class:`FleetFileError`.

    The file goes through the hardened reader: at most :data:`~migrator.yamlsource.FLEET_LIMIT` bytes (checked
    before reading), UTF-8; YAML with the depth, alias and duplicate-key limits of every user-written file."""
    source = Path(path)
    fmt = file_format(source)
    try:
        text = read_text(source, "fleet", FLEET_LIMIT)
    except InputFileError as exc:
        raise _fleet_error(source, exc) from None
    return loads_fleet(text, fmt, source)


def _fleet_error(source: Path, exc: InputFileError) -> FleetFileError:
    problem = exc.problems[0]
    column = f" (column {problem.column})" if problem.column else ""
    return FleetFileError(source, problem.message + column, line=problem.line, field=problem.field or None)


def loads_fleet(text: str, fmt: FileFormat, source: Path | str = "<fleet>") -> Fleet:
    """Parse fleet file content; ``source`` names it in errors."""
    origin = Path(source)
    with _gc_paused():
        if fmt == "json":
            data = _parse_json(text, origin)
            return fleet_from_data(data, origin, lambda loc: _json_line(text, loc))
        try:
            doc = parse_yaml(text, origin, FLEET_MAX_NODES)
        except InputFileError as exc:
            raise _fleet_error(origin, exc) from None
        return fleet_from_data(doc.data, origin, doc.line_of)


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json's object hook: a key given twice is refused (json.loads would silently keep the last)."""
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return out


def _parse_json(text: str, source: Path) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_unique_pairs)
    except _DuplicateKey as exc:
        # Where: JSON is YAML, and the YAML reader names the line of a duplicate key (error path only).
        try:
            parse_yaml(text, source, FLEET_MAX_NODES)
        except InputFileError as located:
            first = located.problems[0]
            if "duplicate key" in first.message:
                message = first.message.replace("invalid YAML: ", "invalid JSON: ")
                raise FleetFileError(source, message, line=first.line) from None
        raise FleetFileError(source, f"duplicate key {exc.key!r}") from None
    except json.JSONDecodeError as exc:
        raise FleetFileError(source, f"invalid JSON: {exc.msg} (column {exc.colno})", line=exc.lineno) from exc
    except RecursionError:
        raise FleetFileError(source, "invalid JSON: nested too deeply") from None


def fleet_from_data(data: Any, source: Path | str, line_of: Callable[[Loc], int | None] = lambda loc: None) -> Fleet:
    """Validate file-form data into a fleet; errors name ``source``, the line (via ``line_of``) and the field."""
    origin = Path(source)

    def fail(message: str, loc: Loc) -> FleetFileError:
        return FleetFileError(origin, message, line=line_of(loc), field=format_loc(loc) or None)

    if not isinstance(data, dict):
        raise fail(f"expected a mapping at the top, got {_kind(data)}", ())
    version = data.get("schema_version", SCHEMA_VERSION)
    if isinstance(version, bool) or not isinstance(version, int):
        raise fail(f"schema_version must be an integer, got {version!r}", ("schema_version",))
    if version > SCHEMA_VERSION:
        raise fail(
            f"written by a newer migrator (schema version {version}; this one reads up to {SCHEMA_VERSION}): "
            "upgrade migrator to read it",
            ("schema_version",),
        )
    if version < 1:
        raise fail(f"unsupported schema version {version}", ("schema_version",))
    devices = data.get("devices")
    if isinstance(devices, list):
        data = {**data, "devices": [_expand_device(d, i, fail) for i, d in enumerate(devices)]}
    try:
        return Fleet.model_validate(data)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        loc = _file_loc(tuple(error["loc"]))
        more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        message = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
        if error["type"] not in ("missing", "extra_forbidden"):
            message += f", got {_short(error.get('input'))}"
        raise fail(message + more, loc) from None


def _expand_device(device: Any, index: int, fail: Callable[[str, Loc], FleetFileError]) -> Any:
    """Turn a device's compact registry back into the model's form (keys by folded path, parents created)."""
    if not isinstance(device, dict) or "registry" not in device:
        return device
    compact = device["registry"]
    base: Loc = ("devices", index, "registry")
    if not isinstance(compact, dict):
        raise fail(f"expected a mapping of key paths to values, got {_kind(compact)}", base)
    keys: dict[str, dict[str, Any]] = {}
    for path, given in compact.items():
        values = {} if given is None else given
        if not isinstance(path, str) or "\\" not in path:
            raise fail("a registry key path looks like HKLM\\SOFTWARE\\...", (*base, str(path)))
        if not isinstance(values, dict):
            raise fail(f"expected a mapping of value names to [type, data], got {_kind(values)}", (*base, path))
        entry: dict[str, Any] = {}
        for name, pair in values.items():
            loc = (*base, path, str(name))
            if not (isinstance(pair, list) and len(pair) == 2):
                raise fail(f"expected [type, data], got {_short(pair)}", loc)
            reg_type, reg_data = pair
            if reg_type not in _REG_TYPES:
                raise fail(f"unknown registry type {reg_type!r}; known: {', '.join(sorted(_REG_TYPES))}", loc)
            if not _data_fits(reg_type, reg_data):
                raise fail(f"data {_short(reg_data)} does not fit {reg_type}", loc)
            entry[str(name).casefold()] = {"name": str(name), "type": reg_type, "data": reg_data}
        keys[path.casefold()] = {"path": path, "values": entry}
    for path in list(compact):
        parts = path.split("\\")
        for depth in range(2, len(parts)):  # parents, as Registry.create_key makes them
            parent = "\\".join(parts[:depth])
            keys.setdefault(parent.casefold(), {"path": parent, "values": {}})
    return {**device, "registry": {"keys": keys}}


def _data_fits(reg_type: str, data: Any) -> bool:
    if reg_type in ("REG_DWORD", "REG_QWORD"):
        bits = 32 if reg_type == "REG_DWORD" else 64
        return isinstance(data, int) and not isinstance(data, bool) and 0 <= data < 2**bits
    if reg_type == "REG_MULTI_SZ":
        return isinstance(data, list) and all(isinstance(item, str) for item in data)
    return isinstance(data, str)


def _file_loc(loc: Loc) -> Loc:
    """Map a model error location to the file's layout (the registry is stored compactly)."""
    if len(loc) >= 3 and loc[0] == "devices" and loc[2] == "registry":
        return loc[:3]
    return loc


_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def format_loc(loc: Iterable[str | int]) -> str:
    """``('devices', 3, 'os', 'build')`` → ``devices[3].os.build``; odd keys in brackets."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENTIFIER.match(part):
            out += f".{part}" if out else part
        else:
            out += "[" + json.dumps(part) + "]"
    return out


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text", type(None): "nothing"}.get(
        type(value), type(value).__name__
    )


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---- where in the file: line numbers for a field path -----------------------------------------------------

_WS = re.compile(r"[ \t\n\r]*")


def _skip_ws(text: str, pos: int) -> int:
    match = _WS.match(text, pos)
    return match.end() if match else pos


def _json_line(text: str, loc: Loc) -> int | None:
    """The line of the deepest part of ``loc`` found in JSON text. Walks only along the path and skips every
    other value with the C decoder, so it stays fast on large files."""
    decoder = json.JSONDecoder()
    pos = found = _skip_ws(text, 0)
    try:
        for part in loc:
            if isinstance(part, str) and text.startswith("{", pos):
                pos = _skip_ws(text, pos + 1)
                while text.startswith('"', pos):
                    key, pos = _scanstring(text, pos + 1)
                    pos = _skip_ws(text, _skip_ws(text, pos) + 1)  # past the colon
                    if key == part:
                        break
                    pos = _skip_value(decoder, text, pos)
                else:
                    break
            elif isinstance(part, int) and text.startswith("[", pos):
                pos = _skip_ws(text, pos + 1)
                for _ in range(part):
                    if text.startswith("]", pos):
                        break
                    pos = _skip_value(decoder, text, pos)
                if text.startswith("]", pos):
                    break
            else:
                break
            found = pos
    except (ValueError, IndexError):
        pass
    return text.count("\n", 0, found) + 1


def _scanstring(text: str, end: int) -> tuple[str, int]:
    """Decode the JSON string whose opening quote is just before ``end``."""
    value, after = json.JSONDecoder().raw_decode(text, end - 1)
    return str(value), after


def _skip_value(decoder: json.JSONDecoder, text: str, pos: int) -> int:
    """Position after the value at ``pos`` and its separating comma."""
    _, pos = decoder.raw_decode(text, pos)
    pos = _skip_ws(text, pos)
    return _skip_ws(text, pos + 1) if text.startswith(",", pos) else pos
