"""The interpreter's own syntax tree, built once per script text from the tree-sitter concrete tree.

tree-sitter-powershell nests every expression eight levels deep (logical -> bitwise -> comparison -> ...);
walking that on every evaluation would be slow, so ``parser.py`` folds it into these compact nodes, which
``interpreter.py`` evaluates. Nodes are plain slotted dataclasses; ``line`` is 1-based.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class Expr:
    """Base of expression nodes."""

    __slots__ = ()


class Stmt:
    """Base of statement nodes."""

    __slots__ = ()


Block = tuple[Stmt, ...]


@dataclass(slots=True, frozen=True)
class TypeName:
    """A type literal as written: ``[string]``, ``[string[]]``, ``[System.Collections.Generic.List[int]]``."""

    name: str  # without the array suffix / generic arguments, e.g. "string", "System.Collections.Generic.List"
    array: bool = False
    generic_args: tuple[TypeName, ...] = ()

    def __str__(self) -> str:
        text = self.name
        if self.generic_args:
            text += "[" + ",".join(str(a) for a in self.generic_args) + "]"
        if self.array:
            text += "[]"
        return text


# ---- expressions -----------------------------------------------------------------------------------------


@dataclass(slots=True)
class Const(Expr):
    value: Any


@dataclass(slots=True)
class ExpandableString(Expr):
    """A double-quoted string (or bare word) whose parts are literal text or embedded expressions."""

    parts: tuple[str | Expr, ...]


@dataclass(slots=True)
class VarRef(Expr):
    name: str  # as written, without scope
    scope: str | None = None  # "global", "script", "local", "private", "env", "variable" or None
    splat: bool = False  # @name in argument position
    key: str = field(init=False)

    def __post_init__(self) -> None:
        self.key = self.name.casefold()


@dataclass(slots=True)
class MemberAccess(Expr):
    target: Expr
    member: str | Expr
    static: bool = False


@dataclass(slots=True)
class MethodCall(Expr):
    target: Expr
    member: str | Expr
    args: tuple[Expr, ...]
    static: bool = False
    line: int = 0


@dataclass(slots=True)
class IndexExpr(Expr):
    target: Expr
    index: Expr


@dataclass(slots=True)
class UnaryOp(Expr):
    op: str  # "-not", "!", "-bnot", "+", "-", ",", "-split", "-join"
    operand: Expr


@dataclass(slots=True)
class BinaryOp(Expr):
    op: str  # lower-cased operator text: "+", "-eq", "-and", "..", "-f", ...
    left: Expr
    right: Expr
    line: int = 0


@dataclass(slots=True)
class CastExpr(Expr):
    type: TypeName
    operand: Expr


@dataclass(slots=True)
class TypeExpr(Expr):
    type: TypeName


@dataclass(slots=True)
class ArrayLiteral(Expr):
    items: tuple[Expr, ...]


@dataclass(slots=True)
class HashLiteral(Expr):
    entries: tuple[tuple[Expr, Stmt], ...]


@dataclass(slots=True)
class ScriptBlockExpr(Expr):
    block: ScriptBlockAst


@dataclass(slots=True)
class SubExpression(Expr):
    """``$( ... )``: the statements' output, unrolled (0 -> $null, 1 -> the object, n -> array)."""

    body: Block


@dataclass(slots=True)
class ArrayExpression(Expr):
    """``@( ... )``: the statements' output, always an array."""

    body: Block


@dataclass(slots=True)
class ParenExpression(Expr):
    """``( pipeline )``: an expression keeps its value; a command pipeline is collected."""

    inner: Stmt


@dataclass(slots=True)
class IncDec(Expr):
    target: Expr
    delta: int
    prefix: bool


# ---- commands --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class CmdParam:
    """``-Name`` or ``-Name:value`` in a command's arguments."""

    name: str
    value: Expr | None
    text: str


@dataclass(slots=True)
class CmdArg:
    value: Expr
    bare: bool = False  # a bare word (generic token): natives get it verbatim


@dataclass(slots=True)
class Redirect:
    stream: str  # "1", "2", "3"..., "*"
    merge_to: str | None  # "1" for 2>&1; None for a file redirection
    target: Expr | None  # file redirections: the target ($null is the only supported one)
    append: bool = False


@dataclass(slots=True)
class Command:
    name: str | Expr
    invocation: str | None  # None, "&" or "."
    elements: tuple[CmdParam | CmdArg, ...]
    redirects: tuple[Redirect, ...]
    line: int
    column: int
    text: str


# ---- statements ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Pipeline(Stmt):
    """A pipeline: an optional leading expression then commands. A lone expression is ``head`` only."""

    head: Expr | None
    commands: tuple[Command, ...]
    head_redirects: tuple[Redirect, ...]
    line: int
    column: int = 1


@dataclass(slots=True)
class Assignment(Stmt):
    target: Expr
    op: str  # "=", "+=", "-=", "*=", "/=", "%="
    value: Stmt
    line: int


@dataclass(slots=True)
class IfStmt(Stmt):
    clauses: tuple[tuple[Stmt, Block], ...]
    else_body: Block | None
    line: int


@dataclass(slots=True)
class WhileStmt(Stmt):
    cond: Stmt
    body: Block
    label: str | None
    line: int


@dataclass(slots=True)
class DoStmt(Stmt):
    body: Block
    cond: Stmt
    until: bool
    label: str | None
    line: int


@dataclass(slots=True)
class ForStmt(Stmt):
    init: Stmt | None
    cond: Stmt | None
    step: Stmt | None
    body: Block
    label: str | None
    line: int


@dataclass(slots=True)
class ForeachStmt(Stmt):
    var: VarRef
    iterable: Stmt
    body: Block
    label: str | None
    line: int


@dataclass(slots=True)
class SwitchClause:
    condition: Expr | None  # None = default
    body: Block


@dataclass(slots=True)
class SwitchStmt(Stmt):
    regex: bool
    wildcard: bool
    exact: bool
    case_sensitive: bool
    subject: Stmt
    clauses: tuple[SwitchClause, ...]
    label: str | None
    line: int


@dataclass(slots=True)
class CatchClause:
    types: tuple[TypeName, ...]
    body: Block


@dataclass(slots=True)
class TryStmt(Stmt):
    body: Block
    catches: tuple[CatchClause, ...]
    finally_body: Block | None
    line: int


@dataclass(slots=True)
class FunctionDef(Stmt):
    name: str
    block: ScriptBlockAst
    filter: bool
    line: int


@dataclass(slots=True)
class FlowStmt(Stmt):
    kind: str  # "break", "continue", "return", "throw", "exit"
    value: Stmt | None
    label: str | None
    line: int


@dataclass(slots=True)
class BlockStmt(Stmt):
    """A bare statement list run in place (the body of a hash entry value, a for-initialiser...)."""

    body: Block


# ---- script blocks ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class ParamDef:
    name: str
    type: TypeName | None = None
    default: Expr | None = None
    mandatory: bool = False
    position: int | None = None
    from_pipeline: bool = False
    from_pipeline_by_property_name: bool = False
    aliases: tuple[str, ...] = ()
    validate_set: tuple[str, ...] | None = None
    validate_not_null_or_empty: bool = False
    validate_not_null: bool = False
    validate_range: tuple[Any, Any] | None = None
    validate_pattern: str | None = None
    allow_empty: bool = False

    @property
    def is_switch(self) -> bool:
        return self.type is not None and self.type.name.casefold() in (
            "switch",
            "system.management.automation.switchparameter",
            "switchparameter",
        )


@dataclass(slots=True)
class ScriptBlockAst:
    params: tuple[ParamDef, ...] | None  # None = no param block (then $args gets everything)
    begin: Block | None
    process: Block | None
    end: Block | None
    cmdlet_binding: bool
    text: str
    line: int = 1
    using_namespaces: tuple[str, ...] = ()  # ``using namespace X`` statements at the top of a script
