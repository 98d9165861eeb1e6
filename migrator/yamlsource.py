"""The one hardened reader of user-written files: YAML and CSV, with limits, keeping where each value came from.

Every user-written file (inventory, playbook, fault profile, fleet file) goes through :func:`read_text` (size
checked with ``stat`` before a byte is read, strict UTF-8, no control characters), then :func:`load_yaml` or
:func:`read_csv`, then :func:`validate` with a pydantic model: a bad file is reported as ``inventory.yaml, line
12, column 7: devices[3].address: <what is wrong>``, never as a Python traceback.

Theory of operation (YAML)
--------------------------
libyaml (PyYAML's C parser) turns the text into a flat stream of events without recursion; :func:`load_yaml`
builds plain Python data from that stream with an explicit stack, and refuses, while it builds and before any
consumer walks the data:

- nesting deeper than :data:`MAX_DEPTH` (400 brackets would otherwise end in a ``RecursionError``);
- more than :data:`MAX_ALIASES` aliases, or aliases that would expand to more than :data:`MAX_ALIAS_NODES`
  nodes (an alias bomb is a few hundred bytes that expand exponentially when walked);
- more than :data:`MAX_NODES` values (ten megabytes of ``1,`` would be five million objects and as many errors);
- duplicate keys (YAML says a key is unique; the last one silently winning hides mistakes), tags other than the
  core schema's, merge keys and more than one document.

Scalars resolve as PyYAML's ``SafeLoader`` resolves them (YAML 1.1: ``yes`` is true, ``0x1F`` an integer). Each
mapping key and sequence item keeps its line and column in a side table, so pydantic's error locations map back
to the file. Past :data:`MAX_PROBLEMS_VALIDATED` validation errors the first ones are found on a pruned copy of
the data and the total is counted. The whole is linear in the size of the input: a 10,000-device inventory
loads in a fraction of a second (``python bench/inputs.py``).
"""

from __future__ import annotations

import codecs
import csv
import gc
import io
import re
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

ModelT = TypeVar("ModelT", bound=BaseModel)

MiB = 1024 * 1024
INPUT_LIMIT = 10 * MiB  # inventories, playbooks, fault profiles (a 10 MiB inventory is ~100,000 devices)
FLEET_LIMIT = 128 * MiB  # lab fleet files (a device's registry and people make them much larger per device)
MAX_DEPTH = 32  # nesting of mappings and sequences; our formats need fewer than 10 levels
MAX_ALIASES = 100  # aliases (*name) in one document
MAX_ALIAS_NODES = 100_000  # nodes the aliases of one document may stand for, once expanded
# Values (scalars, mappings, sequences, aliases) in one inventory, playbook or fault profile: a 100,000-device
# inventory has about 800,000; ten megabytes of "1," would be five million, each costing memory and an error.
MAX_NODES = 1_000_000
FLEET_MAX_NODES = 10_000_000  # a generated fleet file has about 70,000 values per MiB
MAX_PROBLEMS_VALIDATED = 200  # past this many validation errors, the first ones are found on a pruned copy
CSV_FIELD_LIMIT = 64 * 1024  # characters in one CSV field
MAX_CSV_ROWS = 200_000  # rows of one CSV file (a 10 MiB inventory of short rows has about 180,000)
MAX_SHOWN = 20  # problems shown in one error (the count of the rest follows)
_CLIP = 200  # characters of a user value shown in a message

Mark = tuple[int, int]  # 1-based line and column


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file."""

    file: str
    line: int | None  # 1-based
    field: str  # devices[3].address
    message: str
    column: int | None = None  # 1-based

    def __str__(self) -> str:
        where = self.file
        if self.line:
            where += f", line {self.line}"
            if self.column:
                where += f", column {self.column}"
        message = clip(self.message, 4 * _CLIP)
        return f"{where}: {self.field}: {message}" if self.field else f"{where}: {message}"


class InputFileError(ValueError):
    """A user-written file is unreadable or invalid; ``problems`` lists every finding."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        shown = [str(p) for p in self.problems[:MAX_SHOWN]]
        if len(self.problems) > MAX_SHOWN:
            shown.append(f"... and {len(self.problems) - MAX_SHOWN} more problems")
        super().__init__("\n".join(shown))


def clip(value: object, limit: int = _CLIP) -> str:
    """A value for a message: its repr if it is not text, at most ``limit`` characters."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 20] + f"... ({len(text):,} characters)"


def _fail(path: Path | str, message: str, line: int | None = None, column: int | None = None) -> InputFileError:
    return InputFileError([Problem(str(path), line, "", message, column)])


# ---- reading: size first, then strict UTF-8 ------------------------------------------------------------------

# YAML 1.1 "printable" characters (tab, line breaks, and everything but C0/C1 controls and surrogates); a CSV
# inventory is held to the same rule. NUL bytes, escape sequences and the like are refused with where they are.
_NOT_PRINTABLE = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_FOREIGN_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


def _size(value: int) -> str:
    return f"{value / MiB:.1f} MiB" if value >= MiB else f"{value:,} bytes"


def read_text(path: Path, what: str = "file", limit: int = INPUT_LIMIT) -> str:
    """The file's text: its size is checked before reading (over ``limit`` it is refused at once), it must be
    UTF-8 (a UTF-8 byte order mark is dropped) without control characters; errors name the file and line."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise _fail(path, f"{what} not found") from None
    except OSError as err:
        raise _fail(path, f"cannot read {what}: {err.strerror or err}") from None
    if stat.S_ISDIR(info.st_mode):
        raise _fail(path, f"cannot read {what}: it is a directory")
    if not stat.S_ISREG(info.st_mode):
        raise _fail(path, f"cannot read {what}: not a regular file")
    if info.st_size > limit:
        raise _fail(path, f"{what} is {_size(info.st_size)}, over the {_size(limit)} limit for {what} files")
    try:
        with path.open("rb") as handle:
            raw = handle.read(limit + 1)
    except OSError as err:
        raise _fail(path, f"cannot read {what}: {err.strerror or err}") from None
    if len(raw) > limit:  # grew since stat
        raise _fail(path, f"{what} is over the {_size(limit)} limit for {what} files")
    for bom, encoding in _FOREIGN_BOMS:
        if raw.startswith(bom):
            raise _fail(path, f"{what} is {encoding} text: save it as UTF-8", 1, 1)
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        raise _fail(path, f"not UTF-8 text (byte 0x{raw[err.start]:02x}: {err.reason})", line, column) from None
    bad = _NOT_PRINTABLE.search(text)
    if bad is not None:
        line = text.count("\n", 0, bad.start()) + 1
        column = bad.start() - (text.rfind("\n", 0, bad.start()) + 1) + 1
        name = "a NUL byte" if bad.group() == "\x00" else f"control character U+{ord(bad.group()):04X}"
        raise _fail(path, f"{name} is not allowed in a {what} file", line, column)
    return text


# ---- YAML ----------------------------------------------------------------------------------------------------

_Loader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_CORE = "tag:yaml.org,2002:"
_STR, _MAP, _SEQ = _CORE + "str", _CORE + "map", _CORE + "seq"
_IMPLICIT: dict[str, list[tuple[str, re.Pattern[str]]]] = dict(yaml.resolver.Resolver.yaml_implicit_resolvers)
_SCALAR_TAGS = frozenset(_CORE + t for t in ("str", "int", "float", "bool", "null", "timestamp"))
_CONSTRUCTOR = yaml.constructor.SafeConstructor()


@dataclass(frozen=True)
class YamlDocument:
    """Plain data (dicts, lists, scalars) and where each mapping key and sequence item was written."""

    path: Path
    data: Any
    marks: dict[int, Any]  # id(container) -> {key: (line, column)} or [(line, column), ...]

    def mark_of(self, loc: Sequence[str | int]) -> Mark | None:
        """Line and column of the value at ``loc`` (or of the nearest ancestor found)."""
        node: Any = self.data
        found: Mark | None = (1, 1) if isinstance(node, dict | list) else None  # the document itself
        for part in loc:
            marks = self.marks.get(id(node))
            if isinstance(node, dict) and isinstance(marks, dict) and part in node:
                found = marks.get(part, found)
            elif isinstance(node, list) and isinstance(marks, list) and isinstance(part, int) and 0 <= part < len(node):
                found = marks[part]
            else:
                break
            node = node[part]
        return found

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        mark = self.mark_of(loc)
        return mark[0] if mark else None


class _Frame:
    """A mapping or sequence being built."""

    __slots__ = ("anchor", "height", "key", "key_mark", "marks", "nodes", "start", "value")

    def __init__(self, value: Any, marks: Any, anchor: str | None, start: Mark) -> None:
        self.value = value
        self.marks = marks
        self.anchor = anchor
        self.start = start
        self.key: Any = _NO_KEY
        self.key_mark: Mark = start
        self.nodes = 1  # nodes in this subtree, aliases expanded
        self.height = 1  # levels of nesting in this subtree, aliases expanded


_NO_KEY = object()


class _Refused(Exception):
    def __init__(self, message: str, mark: Mark | None) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark


def _mark(event: Any) -> Mark:
    mark = event.start_mark
    return (mark.line + 1, mark.column + 1)


def _scalar(event: Any, cache: dict[str, Any]) -> Any:
    value: str = event.value
    tag = event.tag
    if tag is None and event.implicit[0]:
        # plain scalars repeat (ports, groups, yes/no): resolved once per document
        if value in cache:
            return cache[value]
        resolved = _resolve(event)
        if len(cache) < 10_000:
            cache[value] = resolved
        return resolved
    return _resolve(event)


def _resolve(event: Any) -> Any:
    value: str = event.value
    tag = event.tag
    if tag is None or tag == "!":
        if tag == "!" or not event.implicit[0]:
            return value  # quoted, block or '!'-tagged: text
        for candidate, pattern in _IMPLICIT.get(value[:1], ()):
            if pattern.match(value):
                tag = candidate
                break
        else:
            return value
    if tag == _STR or tag == _CORE + "value":  # a lone '=' is text, as PyYAML's SafeLoader would fail on it
        return value
    if tag == _CORE + "merge":
        raise _Refused("merge keys (<<) are not supported: write the values out", _mark(event))
    if tag not in _SCALAR_TAGS:
        raise _Refused(f"unsupported tag {clip(tag, 60)}: use plain values", _mark(event))
    if tag == _CORE + "null":
        return None
    try:
        return _CONSTRUCTOR.yaml_constructors[tag](_CONSTRUCTOR, yaml.ScalarNode(tag, value))
    except (ValueError, TypeError, yaml.YAMLError):
        raise _Refused(f"{clip(value, 60)!r} is not a valid {tag[len(_CORE) :]}", _mark(event)) from None


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic collector while many acyclic objects are built (it would rescan them again and again)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _build(text: str, max_nodes: int | None) -> tuple[Any, dict[int, Any]]:
    """Plain data and marks from YAML text, refusing depth, alias and duplicate-key abuse as it goes."""
    marks: dict[int, Any] = {}
    anchors: dict[str, tuple[Any, int, int]] = {}  # name -> (value, nodes, height)
    open_anchors: set[str] = set()
    stack: list[_Frame] = []
    aliases = 0
    alias_nodes = 0
    documents = 0
    result: Any = None

    def add(value: Any, mark: Mark, nodes: int, height: int, is_container: bool) -> None:
        nonlocal result
        if not stack:
            result = value
            return
        frame = stack[-1]
        frame.nodes += nodes
        frame.height = max(frame.height, height + 1)
        if frame.marks.__class__ is list:
            frame.value.append(value)
            frame.marks.append(mark)
            return
        if frame.key is _NO_KEY:
            if is_container:
                raise _Refused("a mapping key must be text or a number, not a mapping or a list", mark)
            key = value if isinstance(value, str) else ("null" if value is None else str(value))
            if key in frame.value:
                first = frame.marks[key]
                raise _Refused(f"duplicate key {clip(key, 60)!r} (first at line {first[0]})", mark)
            frame.key = key
            frame.key_mark = mark
            return
        frame.value[frame.key] = value
        frame.marks[frame.key] = frame.key_mark
        frame.key = _NO_KEY

    def others(event: Any, kind: type) -> None:
        nonlocal aliases, alias_nodes, documents
        if kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
            if len(stack) >= MAX_DEPTH:
                raise _Refused(f"nested more than {MAX_DEPTH} levels deep", _mark(event))
            is_map = kind is yaml.MappingStartEvent
            if event.tag not in (None, "!", _MAP if is_map else _SEQ):
                raise _Refused(f"unsupported tag {clip(event.tag, 60)}: use plain values", _mark(event))
            frame = _Frame({} if is_map else [], {} if is_map else [], event.anchor, _mark(event))
            marks[id(frame.value)] = frame.marks
            if event.anchor is not None:
                open_anchors.add(event.anchor)
            stack.append(frame)
        elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
            frame = stack.pop()
            if frame.anchor is not None:
                open_anchors.discard(frame.anchor)
                anchors[frame.anchor] = (frame.value, frame.nodes, frame.height)
            add(frame.value, frame.start, frame.nodes, frame.height, True)
        elif kind is yaml.AliasEvent:
            aliases += 1
            if aliases > MAX_ALIASES:
                raise _Refused(f"more than {MAX_ALIASES} aliases", _mark(event))
            if event.anchor in open_anchors:
                raise _Refused(f"alias *{clip(event.anchor, 60)} refers to a node that contains it", _mark(event))
            if event.anchor not in anchors:
                raise _Refused(f"alias *{clip(event.anchor, 60)} has no anchor before it", _mark(event))
            value, nodes, height = anchors[event.anchor]
            alias_nodes += nodes
            if alias_nodes > MAX_ALIAS_NODES:
                raise _Refused(f"aliases expand to more than {MAX_ALIAS_NODES:,} nodes", _mark(event))
            if len(stack) + height > MAX_DEPTH:
                raise _Refused(f"nested more than {MAX_DEPTH} levels deep (through an alias)", _mark(event))
            add(value, _mark(event), nodes, height, height > 0)
        elif kind is yaml.DocumentStartEvent:
            documents += 1
            if documents > 1:
                raise _Refused("more than one YAML document (---) in the file", _mark(event))
            anchors.clear()

    loader = _Loader(text)
    get_event = loader.get_event
    plain: dict[str, Any] = {}
    events = 0
    max_events = 2 * max_nodes if max_nodes is not None else None  # a mapping or sequence is two events
    try:
        while True:
            event = get_event()
            events += 1
            if max_events is not None and events > max_events:
                raise _Refused(f"more than {max_nodes:,} values", _mark(event))
            kind = event.__class__
            if kind is yaml.ScalarEvent:
                value = _scalar(event, plain)
                if event.anchor is not None:
                    anchors[event.anchor] = (value, 1, 0)
                start = event.start_mark
                mark = (start.line + 1, start.column + 1)
                frame = stack[-1] if stack else None
                # the common case inline (a value of a mapping, an item of a list); keys and the root via add()
                if frame is not None and frame.key is not _NO_KEY:
                    frame.nodes += 1
                    frame.value[frame.key] = value
                    frame.marks[frame.key] = frame.key_mark
                    frame.key = _NO_KEY
                elif frame is not None and frame.marks.__class__ is list:
                    frame.nodes += 1
                    frame.value.append(value)
                    frame.marks.append(mark)
                else:
                    add(value, mark, 1, 0, False)
            elif kind is yaml.StreamEndEvent:
                break
            else:
                others(event, kind)
    finally:
        loader.dispose()
    return result, marks


def parse_yaml(text: str, path: Path | str, max_nodes: int | None = MAX_NODES) -> YamlDocument:
    """YAML text to a :class:`YamlDocument`; malformed or abusive text raises :class:`InputFileError`."""
    try:
        with gc_paused():
            data, marks = _build(text, max_nodes)
    except _Refused as err:
        line, column = err.mark if err.mark else (None, None)
        raise _fail(path, f"invalid YAML: {err.message}", line, column) from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        problem = " ".join(part for part in (err.context, err.problem) if part) or "invalid YAML"
        line = mark.line + 1 if mark is not None else None
        column = mark.column + 1 if mark is not None else None
        raise _fail(path, f"invalid YAML: {problem}", line, column) from None
    except yaml.YAMLError as err:
        raise _fail(path, f"invalid YAML: {clip(str(err))}") from None
    return YamlDocument(Path(path), data, marks)


def load_yaml(
    path: Path, what: str = "file", limit: int = INPUT_LIMIT, max_nodes: int | None = MAX_NODES
) -> YamlDocument:
    """Read and parse a YAML file within ``limit`` bytes and ``max_nodes`` values; every problem raises
    :class:`InputFileError`."""
    return parse_yaml(read_text(path, what, limit), path, max_nodes)


# ---- CSV -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CsvRow:
    line: int  # 1-based line where the row starts
    values: dict[str, str]


def read_csv(
    path: Path,
    what: str = "file",
    limit: int = INPUT_LIMIT,
    *,
    field_limit: int = CSV_FIELD_LIMIT,
    max_rows: int = MAX_CSV_ROWS,
) -> tuple[list[str], list[CsvRow]]:
    """Header and rows of a CSV file within ``limit`` bytes; a row with more or fewer fields than the header, a
    field over ``field_limit`` characters or bad quoting raise :class:`InputFileError` naming the line."""
    text = read_text(path, what, limit)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    rows: list[CsvRow] = []
    start = 1
    # The csv module's own limit (131,072 by default) is process-wide; ours is set for this read only.
    previous = csv.field_size_limit(field_limit)
    try:
        for record in reader:
            if header is None:
                header = [h.strip() for h in record]
            elif record and any(v.strip() for v in record):
                if len(rows) >= max_rows:
                    raise InputFileError([Problem(str(path), start, "", f"more than {max_rows:,} rows")])
                if len(record) != len(header):
                    raise InputFileError(
                        [
                            Problem(
                                str(path),
                                start,
                                "row",
                                f"{len(record)} fields where the header has {len(header)}",
                            )
                        ]
                    )
                rows.append(CsvRow(start, {h: v for h, v in zip(header, record, strict=True)}))
            start = reader.line_num + 1
    except csv.Error as err:
        message = f"invalid CSV: {err}"
        if "field larger than field limit" in str(err):
            message = f"a field is over the {field_limit:,} character limit"
        raise InputFileError([Problem(str(path), start, "", message)]) from None
    finally:
        csv.field_size_limit(previous)
    return header or [], rows


# ---- validation ----------------------------------------------------------------------------------------------


def format_loc(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def problems_of(err: ValidationError, path: Path | str, mark_of: Any, root: Sequence[str | int] = ()) -> list[Problem]:
    """pydantic's errors as problems naming file, line, column and field (``mark_of(loc)`` finds the mark); an
    error of the whole model (a check across fields) is reported at ``root``."""
    problems = []
    for error in err.errors(include_url=False):
        loc = [p for p in error["loc"] if isinstance(p, str | int)] or list(root)
        # pydantic appends union-member names and validator tags to loc; keep the path to real fields.
        message = error["msg"]
        if error["type"] == "value_error":
            message = message.removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        elif error["type"] == "missing":
            message = "field required"
        mark = mark_of(loc)
        line, column = mark if mark else (None, None)
        problems.append(Problem(str(path), line, format_loc(loc), message, column))
    return problems


def _pruned(value: Any, keep: int = 50) -> Any:
    """The first ``keep`` items of every mapping and sequence (same keys and indexes): its errors are the first
    errors of the whole, found without materialising millions of them."""
    if isinstance(value, dict):
        return {k: _pruned(v, keep) for k, v in list(value.items())[:keep]}
    if isinstance(value, list):
        return [_pruned(v, keep) for v in value[:keep]]
    return value


def validate_data(
    model: type[ModelT], data: Any, path: Path | str, mark_of: Any, root: Sequence[str | int] = ()
) -> ModelT:
    """Validate ``data`` against ``model``; problems name file, line, field. Thousands of errors (a list of a
    million wrong items) are counted, and the first ones reported from a pruned copy of the data."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        total = err.error_count()
        if total <= MAX_PROBLEMS_VALIDATED:
            raise InputFileError(problems_of(err, path, mark_of, root)) from None
        first: list[Problem] = []
        try:
            model.model_validate(_pruned(data))
        except ValidationError as small:
            first = problems_of(small, path, mark_of, root)[: MAX_SHOWN - 1]
        first.append(Problem(str(path), None, "", f"{total:,} problems in all; the first are shown"))
        raise InputFileError(first) from None


def validate(doc: YamlDocument, model: type[ModelT], data: Any = None, root: Sequence[str | int] = ()) -> ModelT:
    """Validate the document (or ``data`` derived from it) against ``model``; name file, line, field (an error of
    the whole model is reported at ``root``, the field its checks are about)."""
    return validate_data(model, doc.data if data is None else data, doc.path, doc.mark_of, root)
