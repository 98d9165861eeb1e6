"""The WQL subset Get-CimInstance -Filter/-Query and Get-WmiObject accept: ``SELECT * FROM Class WHERE ...``.

WHERE clauses compare a property with a literal (``=``, ``<>``, ``!=``, ``<``, ``>``, ``<=``, ``>=``), match with
``LIKE`` (``%`` any run, ``_`` one character, ``[...]`` a set), test ``IS [NOT] NULL`` and combine with
``AND``/``OR``/``NOT`` and parentheses. String comparison is case-insensitive, as WMI's is.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")|(?P<num>-?\d+(?:\.\d+)?)|(?P<op><>|!=|<=|>=|=|<|>)"
    r"|(?P<paren>[()])|(?P<word>[A-Za-z_][A-Za-z0-9_]*)|(?P<star>\*)|(?P<comma>,))"
)


class WqlError(ValueError):
    """Text that is not valid WQL (WMI answers "Invalid query")."""


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise WqlError(f"unexpected text at {pos}: {text[pos : pos + 10]!r}")
        kind = match.lastgroup or ""
        out.append(_Tok(kind, match.group(kind)))
        pos = match.end()
    return out


class _Parser:
    def __init__(self, tokens: list[_Tok]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek_word(self, *words: str) -> bool:
        if self.i < len(self.tokens):
            tok = self.tokens[self.i]
            return tok.kind == "word" and tok.text.casefold() in words
        return False

    def take(self) -> _Tok:
        if self.i >= len(self.tokens):
            raise WqlError("unexpected end of query")
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expr(self) -> Any:
        node = self.term()
        while self.peek_word("or"):
            self.take()
            node = ("or", node, self.term())
        return node

    def term(self) -> Any:
        node = self.factor()
        while self.peek_word("and"):
            self.take()
            node = ("and", node, self.factor())
        return node

    def factor(self) -> Any:
        if self.peek_word("not"):
            self.take()
            return ("not", self.factor())
        tok = self.take()
        if tok.kind == "paren" and tok.text == "(":
            node = self.expr()
            close = self.take()
            if close.text != ")":
                raise WqlError("missing )")
            return node
        if tok.kind != "word":
            raise WqlError(f"expected a property name, got {tok.text!r}")
        name = tok.text
        if self.peek_word("is"):
            self.take()
            negate = False
            if self.peek_word("not"):
                self.take()
                negate = True
            if not self.peek_word("null"):
                raise WqlError("expected NULL")
            self.take()
            return ("isnull", name, negate)
        if self.peek_word("like"):
            self.take()
            return ("like", name, self.literal())
        op = self.take()
        if op.kind != "op":
            raise WqlError(f"expected an operator, got {op.text!r}")
        return ("cmp", name, op.text, self.literal())

    def literal(self) -> Any:
        tok = self.take()
        if tok.kind == "str":
            body = tok.text[1:-1]
            return re.sub(r"\\(.)", r"\1", body)
        if tok.kind == "num":
            return float(tok.text) if "." in tok.text else int(tok.text)
        if tok.kind == "word" and tok.text.casefold() in ("true", "false"):
            return tok.text.casefold() == "true"
        if tok.kind == "word" and tok.text.casefold() == "null":
            return None
        raise WqlError(f"expected a literal, got {tok.text!r}")


def parse_where(text: str) -> Any:
    parser = _Parser(_tokens(text))
    node = parser.expr()
    if parser.i != len(parser.tokens):
        raise WqlError("unexpected text after the condition")
    return node


def parse_query(text: str) -> tuple[str, Any | None]:
    """``SELECT ... FROM Class [WHERE cond]`` → (class name, parsed condition or None)."""
    match = re.match(r"\s*select\s+.+?\s+from\s+(\w+)\s*(?:where\s+(.*))?$", text, re.IGNORECASE | re.DOTALL)
    if match is None:
        raise WqlError("not a SELECT query")
    where = match.group(2)
    return match.group(1), (parse_where(where) if where and where.strip() else None)


def _get(props: Mapping[str, Any], name: str) -> Any:
    for key, value in props.items():
        if key.casefold() == name.casefold():
            return value
    return None


def _compare(left: Any, op: str, right: Any) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        left, right = bool(left), bool(right)
    elif isinstance(left, int | float) and isinstance(right, str):
        try:
            right = float(right)
        except ValueError:
            return False
    elif isinstance(left, str) or isinstance(right, str):
        left, right = str(left).casefold(), str(right).casefold()
    if left is None or right is None:
        return False
    try:
        result: bool = {
            "=": left == right,
            "<>": left != right,
            "!=": left != right,
            "<": left < right,
            ">": left > right,
            "<=": left <= right,
            ">=": left >= right,
        }[op]
    except TypeError:
        return False
    return result


def _like(value: Any, pattern: Any) -> bool:
    if value is None or pattern is None:
        return False
    glob = "".join("*" if c == "%" else "?" if c == "_" else c for c in str(pattern))
    return fnmatch.fnmatchcase(str(value).casefold(), glob.casefold())


def evaluate(node: Any, props: Mapping[str, Any]) -> bool:
    """Does an instance's property set satisfy a parsed condition."""
    kind = node[0]
    if kind == "or":
        return evaluate(node[1], props) or evaluate(node[2], props)
    if kind == "and":
        return evaluate(node[1], props) and evaluate(node[2], props)
    if kind == "not":
        return not evaluate(node[1], props)
    if kind == "isnull":
        is_null = _get(props, node[1]) is None
        return not is_null if node[2] else is_null
    if kind == "like":
        return _like(_get(props, node[1]), node[2])
    return _compare(_get(props, node[1]), node[2], node[3])
