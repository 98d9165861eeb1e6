"""Load YAML keeping where each value came from, so validation errors can name file, line and field.

Every user-written file (inventory, playbook, fault profile) goes through :func:`load_yaml` and then
:func:`validate` with a pydantic model: a bad file is reported as ``inventory.yaml, line 12, devices[3].address:
<what is wrong>``, never as a Python traceback.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file."""

    file: str
    line: int | None  # 1-based
    field: str  # devices[3].address
    message: str

    def __str__(self) -> str:
        where = f"{self.file}, line {self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class InputFileError(ValueError):
    """A user-written file is unreadable or invalid; ``problems`` lists every finding."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class YamlDocument:
    path: Path
    data: Any  # plain Python data (dicts, lists, scalars)
    tree: Any  # ruamel's commented tree, for line numbers

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        """1-based line of the value at ``loc`` (or of the nearest ancestor ruamel knows)."""
        node: Any = self.tree
        line: int | None = None
        for part in loc:
            if isinstance(node, CommentedMap) and isinstance(part, str) and part in node:
                with contextlib.suppress(KeyError, TypeError, AttributeError):
                    line = node.lc.key(part)[0] + 1
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
                with contextlib.suppress(KeyError, TypeError, AttributeError):
                    line = node.lc.item(part)[0] + 1
            else:
                break
            node = node[part]
        return line


def _plain(node: Any) -> Any:
    if isinstance(node, CommentedMap):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, CommentedSeq):
        return [_plain(v) for v in node]
    return node


def load_yaml(path: Path, what: str = "file") -> YamlDocument:
    """Read a YAML file; unreadable or malformed files raise :class:`InputFileError` with the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputFileError([Problem(str(path), None, "", f"{what} not found")]) from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputFileError([Problem(str(path), None, "", f"cannot read {what}: {err}")]) from None
    yaml = YAML(typ="rt")
    try:
        tree = yaml.load(text)
    except MarkedYAMLError as err:
        mark = err.problem_mark
        line = mark.line + 1 if mark is not None else None
        problem = err.problem or "invalid YAML"
        raise InputFileError([Problem(str(path), line, "", f"invalid YAML: {problem}")]) from None
    except YAMLError as err:
        raise InputFileError([Problem(str(path), None, "", f"invalid YAML: {err}")]) from None
    return YamlDocument(path, _plain(tree), tree)


def format_loc(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def validate(doc: YamlDocument, model: type[ModelT], data: Any = None) -> ModelT:
    """Validate the document (or ``data`` derived from it) against ``model``; name file, line, field."""
    try:
        return model.model_validate(doc.data if data is None else data)
    except ValidationError as err:
        problems = []
        for error in err.errors():
            loc = [p for p in error["loc"] if isinstance(p, str | int)]
            # pydantic appends union-member names and validator tags to loc; keep the path to real fields.
            message = error["msg"]
            if error["type"] == "extra_forbidden":
                message = "unknown field"
            elif error["type"] == "missing":
                message = "field required"
            problems.append(Problem(str(doc.path), doc.line_of(loc), format_loc(loc), message))
        raise InputFileError(problems) from None
