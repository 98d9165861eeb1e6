"""From script text to the lab's syntax tree, on the real grammar (tree-sitter-powershell).

Theory of operation
-------------------
1. tree-sitter parses the text. Where the grammar is known to reject valid Windows PowerShell (see
   ``_repair``), the text is patched in a length- or line-preserving way and parsed again; any other
   ERROR/MISSING node is a ParseException, classified like PowerShell's parser does (MissingEndCurlyBrace,
   TerminatorExpectedAtEndOfString, UnexpectedToken, ...).
2. ``_Builder`` folds the concrete tree into ``ast`` nodes. Grammar quirks are handled as PowerShell would:
   a statement starting with a number (``1..3``, ``10MB``) is an expression, not a command named ``1..3``;
   bare words joined by commas (``Select-Object Name,Id``) are one array argument; ``$x.Method()`` in
   argument mode is a method call.
3. Constructs outside the lab's subset raise :class:`NotSupportedByLab` naming the construct and line
   (classes, enums, workflows, traps, data sections, ``$using:``, file redirection, ``--%``...).

Parsed scripts are cached by text: the migration sends the same few scripts to thousands of devices.
"""

from __future__ import annotations

import dataclasses
import re
from functools import lru_cache
from typing import Any

import tree_sitter_powershell as tsp
from tree_sitter import Language, Node, Parser

from migrator.lab.ps import ast
from migrator.lab.ps.errors import NotSupportedByLab, ParseFailure, parse_error_record

_LANGUAGE = Language(tsp.language())

_BINARY_LEVELS = frozenset(
    {
        "logical_expression",
        "bitwise_expression",
        "comparison_expression",
        "additive_expression",
        "multiplicative_expression",
        "format_expression",
        "range_expression",
        "logical_argument_expression",
        "bitwise_argument_expression",
        "comparison_argument_expression",
        "additive_argument_expression",
        "multiplicative_argument_expression",
        "format_argument_expression",
        "range_argument_expression",
    }
)
_PASSTHROUGH = frozenset(
    {
        "unary_expression",
        "left_assignment_expression",
        "argument_expression",
        "key_expression",
        "for_initializer",
        "for_condition",
        "for_iterator",
        "while_condition",
        "redirected_file_name",
    }
)
_SCOPES = frozenset({"global", "local", "private", "script", "env", "variable"})
_NUMBER_START = re.compile(
    r"(?i)^(0x[0-9a-f]+|[0-9]+(\.[0-9]+)?(e[+-]?[0-9]+)?|\.[0-9]+)(l|d)?(kb|mb|gb|tb|pb)?(?=$|\.\.|[^a-z0-9_.])"
)
_NUMBER_TOKEN = re.compile(
    r"(?i)^(?P<hex>0x[0-9a-f]+)?(?P<num>[0-9]+(\.[0-9]+)?(e[+-]?[0-9]+)?|\.[0-9]+)?(?P<type>l|d)?(?P<mult>kb|mb|gb|tb|pb)?$"
)
_MULTIPLIERS = {"kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "tb": 1 << 40, "pb": 1 << 50}
_BACKTICK = {"0": "\0", "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_BARE_VARIABLE = re.compile(r"\$(\{[^}]+\}|(?:[A-Za-z0-9_]+:)?[A-Za-z0-9_]+|[?^$])")


def new_parser() -> Parser:
    return Parser(_LANGUAGE)


_USING = re.compile(r"^[ \t]*using[ \t]+(namespace|module|assembly)[ \t]+([^;\r\n]+?)[ \t]*;?[ \t]*$", re.I | re.M)


@lru_cache(maxsize=512)
def parse_script(text: str) -> ast.ScriptBlockAst:
    """Parse a whole script (the body of ``add_script``); raises ParseFailure or NotSupportedByLab."""
    text, namespaces = _using_statements(text)
    source, root = _parse_with_repairs(text)
    block = _Builder(source).program(root)
    return dataclasses.replace(block, using_namespaces=namespaces) if namespaces else block


def _using_statements(text: str) -> tuple[str, tuple[str, ...]]:
    """``using namespace X`` lines (about_Using; they must open the script): taken out, blanked so line numbers
    hold, and returned; ``using module`` / ``using assembly`` are not modelled."""
    if "using" not in text.casefold():
        return text, ()
    namespaces: list[str] = []
    lines = text.split("\n")
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _USING.match(line)
        if match is None:
            break  # using statements come before any other statement
        kind, name = match.group(1).casefold(), match.group(2).strip().strip("'\"")
        if kind != "namespace":
            raise NotSupportedByLab(f"using {kind} {name}", index + 1)
        namespaces.append(name)
        lines[index] = ""
    return "\n".join(lines), tuple(namespaces)


# ---- parse, repair, classify -----------------------------------------------------------------------------


def _parse_with_repairs(text: str) -> tuple[bytes, Node]:
    parser = new_parser()
    source = text.encode("utf-8")
    error: Node | None = None
    for _ in range(256):
        tree = parser.parse(source)
        error = _first_error(tree.root_node)
        if error is None:
            return source, tree.root_node
        repaired = _repair(source, error)
        if repaired is None or repaired == source:
            raise ParseFailure(_classify(source, error))
        source = repaired
    assert error is not None
    raise ParseFailure(_classify(source, error))


def _is_glue(node: Node) -> bool:
    # A zero-width MISSING separator between two bare words: the grammar's way of writing ``a,b``.
    if not node.is_missing:
        return False
    return node.type == "command_argument_sep" or (
        node.parent is not None and node.parent.type == "command_argument_sep"
    )


def _first_error(root: Node) -> Node | None:
    if not root.has_error:
        return None
    stack = [root]
    while stack:
        node = stack.pop()
        if node.is_error or (node.is_missing and not _is_glue(node)):
            return node
        stack.extend(child for child in reversed(node.children) if child.has_error or child.is_missing)
    return None


def _repair(source: bytes, error: Node) -> bytes | None:
    """Patch text the grammar rejects although Windows PowerShell accepts it; None if not a known case."""
    start, end = error.start_byte, error.end_byte
    # 1c. An empty script block (``Write-Output {}``, ``$x = {}``, ``& {}``): the grammar wants a statement;
    # ``{;}`` is the same empty block.
    empty = re.compile(rb"(?<![@$\w])\{([ \t]*)\}").search(source, max(start - 2, 0), min(len(source), end + 2))
    if empty is not None:
        return source[: empty.start()] + b"{;" + empty.group(1) + b"}" + source[empty.end() :]
    if not error.is_error:
        return None
    children = error.children
    parent = error.parent
    # 1. Switch clauses on one line (``1 {'a'} 2 {'b'}``): the grammar wants a terminator after each block.
    if (
        parent is not None
        and parent.type in ("switch_clause", "switch_clauses", "switch_body")
        and children
        and children[0].type == "statement_block"
    ):
        at = children[0].end_byte
        return source[:at] + b";" + source[at:]
    # 1b. ``function f { param($a) $a }``: the grammar wants a terminator after a function's param block.
    if children and children[0].type == "param_block":
        at = children[0].end_byte
        if source[at:].lstrip(b" \t")[:1] not in (b";", b"\n", b"\r", b""):
            return source[:at] + b";" + source[at:]
    # 2. ``.ForEach(`` / ``.Where(``-style method calls: the grammar's ``.foreach{}`` token swallows them.
    match = re.compile(rb"(?i)\.foreach(?=\s*\()").search(source, start, min(len(source), end + 16))
    if match is not None:
        return source[: match.start()] + b".'ForEach'" + source[match.end() :]
    for index, child in enumerate(children):
        # 3. ``Select-Object Name, Id``: move the comma next to the word (same length, same lines).
        previous = children[index - 1] if index > 0 else error.prev_sibling
        if child.type == "," and previous is not None and previous.type in _LIST_NEIGHBOURS:
            after = child.end_byte
            stop = after
            while stop < len(source) and source[stop : stop + 1] in (b" ", b"\t"):
                stop += 1
            if stop > after:
                return source[: child.start_byte] + source[after:stop] + b"," + source[stop:]
        # 4. Upper-case multiplier suffixes (``10MB``): the grammar only knows ``10mb``.
        if (
            child.type == "simple_name"
            and re.fullmatch(rb"(?i)kb|mb|gb|tb|pb", child.text or b"")
            and child.start_byte > 0
            and source[child.start_byte - 1 : child.start_byte].isdigit()
        ):
            return (
                source[: child.start_byte]
                + source[child.start_byte : child.end_byte].lower()
                + source[child.end_byte :]
            )
        # 5. ``break outer`` / ``continue outer``: the grammar only knows the ``:outer`` spelling.
        if (
            child.type == "simple_name"
            and index > 0
            and children[index - 1].type in ("break", "continue")
            and child.start_byte > children[index - 1].end_byte
        ):
            at = child.start_byte
            return source[:at] + b":" + source[at:]
    return None


def _scan_unclosed(source: str) -> tuple[str, int] | None:
    """The innermost opener left unclosed at the end (``{``, ``(``, ``[``, ``@{``, ``"``, ``'``), and where."""
    stack: list[tuple[str, int]] = []
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        if ch == "#":
            i = source.find("\n", i)
            if i < 0:
                break
            continue
        if source.startswith("<#", i):
            j = source.find("#>", i + 2)
            if j < 0:
                return None
            i = j + 2
            continue
        if source.startswith('@"', i) or source.startswith("@'", i):
            quote = source[i + 1]
            j = source.find("\n" + quote + "@", i + 2)
            if j < 0:
                return (quote + "@", i)
            i = j + 3
            continue
        if ch in "\"'":
            j = i + 1
            while j < n:
                if ch == '"' and source[j] == "`":
                    j += 2
                    continue
                if source[j] == ch:
                    if j + 1 < n and source[j + 1] == ch:
                        j += 2
                        continue
                    break
                j += 1
            if j >= n:
                return (ch, i)
            i = j + 1
            continue
        if ch == "`":
            i += 2
            continue
        if ch in "{([":
            stack.append(("@{" if ch == "{" and i > 0 and source[i - 1] == "@" else ch, i))
        elif ch in "})]" and stack:
            stack.pop()
        i += 1
    return stack[-1] if stack else None


def _position(source: bytes, offset: int) -> tuple[int, int, str]:
    before = source[:offset].decode("utf-8", "replace")
    line = before.count("\n") + 1
    column = len(before) - (before.rfind("\n") + 1) + 1
    lines = source.decode("utf-8", "replace").split("\n")
    text = lines[line - 1].rstrip("\r") if line - 1 < len(lines) else ""
    return line, column, text


def _classify(source: bytes, error: Node) -> Any:
    text = source.decode("utf-8", "replace")
    unclosed = _scan_unclosed(text)
    if unclosed is not None and (error.is_missing or error.end_byte >= len(source.rstrip())):
        opener, char_offset = unclosed
        byte_offset = len(text[:char_offset].encode("utf-8"))
        message, error_id = {
            "{": ("Missing closing '}' in statement block or type definition.", "MissingEndCurlyBrace"),
            "@{": ("The hash literal was incomplete.", "IncompleteHashLiteral"),
            "(": ("Missing closing ')' in expression.", "MissingEndParenthesisInExpression"),
            "[": ("Missing ']' after array index expression.", "MissingEndSquareBracket"),
            '"': ('The string is missing the terminator: ".', "TerminatorExpectedAtEndOfString"),
            "'": ("The string is missing the terminator: '.", "TerminatorExpectedAtEndOfString"),
            '"@': ('The string is missing the terminator: "@.', "TerminatorExpectedAtEndOfString"),
            "'@": ("The string is missing the terminator: '@.", "TerminatorExpectedAtEndOfString"),
        }[opener]
        line, column, line_text = _position(source, byte_offset)
        return parse_error_record(message, error_id, line, column, line_text)
    if error.is_missing:
        line, column, line_text = _position(source, error.start_byte)
        return parse_error_record(f"Missing '{error.type}'.", "MissingToken", line, column, line_text)
    stripped = (error.text or b"").decode("utf-8", "replace").rstrip()
    if stripped.endswith("="):
        line, column, line_text = _position(source, error.end_byte)
        return parse_error_record(
            "You must provide a value expression following the '=' operator.",
            "ExpectedValueExpression",
            line,
            column,
            line_text,
        )
    offending = _offending_token(error)
    line, column, line_text = _position(source, offending.start_byte)
    token = (offending.text or b"").decode("utf-8", "replace").strip().split("\n")[0][:40]
    return parse_error_record(
        f"Unexpected token '{token}' in expression or statement.", "UnexpectedToken", line, column, line_text
    )


def _offending_token(error: Node) -> Node:
    children = error.children
    if len(children) <= 1:
        return children[0] if children else error
    for child in children[1:]:
        if not child.is_named or child.type in ("simple_name", "ERROR") or child.is_error:
            return child
    return children[1]


# ---- tree -> ast -----------------------------------------------------------------------------------------


def _text(node: Node) -> str:
    return (node.text or b"").decode("utf-8")


def _named(node: Node) -> list[Node]:
    return [child for child in node.children if child.is_named and child.type != "comment"]


class _Builder:
    def __init__(self, source: bytes, line_offset: int = 0) -> None:
        self.source = source
        self.line_offset = line_offset

    def line(self, node: Node) -> int:
        return node.start_point[0] + 1 + self.line_offset

    def unsupported(self, construct: str, node: Node) -> NotSupportedByLab:
        return NotSupportedByLab(construct, self.line(node))

    # ---- program / blocks ----

    def program(self, root: Node) -> ast.ScriptBlockAst:
        params: tuple[ast.ParamDef, ...] | None = None
        binding = False
        body: ast.Block = ()
        named_blocks: dict[str, ast.Block] | None = None
        for child in _named(root):
            if child.type == "param_block":
                params, binding = self.param_block(child)
            elif child.type == "statement_list":
                body = self.statement_list(child)
            elif child.type == "script_block_body":
                named_blocks, body = self.script_block_body(child)
            else:
                raise self.unsupported(child.type, child)
        text = self.source.decode("utf-8")
        if named_blocks is None:
            named_blocks = _top_level_named_blocks(body)
            if named_blocks is not None:
                body = ()
        return self._script_block(params, binding, named_blocks, body, text, 1)

    def _script_block(
        self,
        params: tuple[ast.ParamDef, ...] | None,
        binding: bool,
        named_blocks: dict[str, ast.Block] | None,
        body: ast.Block,
        text: str,
        line: int,
    ) -> ast.ScriptBlockAst:
        if named_blocks is None:
            return ast.ScriptBlockAst(params, None, None, body, binding, text, line)
        return ast.ScriptBlockAst(
            params,
            named_blocks.get("begin"),
            named_blocks.get("process"),
            named_blocks.get("end"),
            binding,
            text,
            line,
        )

    def script_block_body(self, node: Node) -> tuple[dict[str, ast.Block] | None, ast.Block]:
        inner = _named(node)
        if not inner:
            return None, ()
        child = inner[0]
        if child.type == "statement_list":
            return None, self.statement_list(child)
        blocks: dict[str, ast.Block] = {}
        for named in _named(child):
            name_node, block_node = _named(named)[:2]
            name = _text(name_node).casefold()
            if name == "dynamicparam":
                raise self.unsupported("dynamicparam block", named)
            if name in blocks:
                raise self.unsupported(f"duplicate {name} block", named)
            blocks[name] = self.statement_block(block_node)
        return blocks, ()

    def script_block_node(self, node: Node, text_node: Node, extra_params: Node | None = None) -> ast.ScriptBlockAst:
        """``script_block`` (possibly None when empty) inside a ``{ }`` or a function."""
        params: tuple[ast.ParamDef, ...] | None = None
        binding = False
        named_blocks: dict[str, ast.Block] | None = None
        body: ast.Block = ()
        if extra_params is not None:
            params, binding = self.param_block(extra_params)
        for child in _named(node):
            if child.type == "param_block":
                params, binding = self.param_block(child)
            elif child.type == "script_block_body":
                named_blocks, body = self.script_block_body(child)
            else:
                raise self.unsupported(child.type, child)
        return self._script_block(params, binding, named_blocks, body, _text(text_node), self.line(text_node))

    def script_block_expression(self, node: Node) -> ast.ScriptBlockAst:
        params_node: Node | None = None
        block: Node | None = None
        for child in _named(node):
            if child.type == "param_block":
                params_node = child
            elif child.type == "script_block":
                block = child
        text = _text(node)[1:-1]
        if block is None:
            params: tuple[ast.ParamDef, ...] | None = None
            binding = False
            if params_node is not None:
                params, binding = self.param_block(params_node)
            return ast.ScriptBlockAst(params, None, None, (), binding, text, self.line(node))
        result = self.script_block_node(block, node, params_node)
        result.text = text
        return result

    def statement_block(self, node: Node) -> ast.Block:
        for child in _named(node):
            if child.type == "statement_list":
                return self.statement_list(child)
        return ()

    def statement_list(self, node: Node) -> ast.Block:
        statements: list[ast.Stmt] = []
        label: str | None = None
        for child in node.children:
            kind = child.type
            if not child.is_named or kind in ("comment", "empty_statement"):
                continue
            if kind == "label":
                label = _text(child)[1:]
                continue
            statements.append(self.statement(child, label))
            label = None
        return tuple(statements)

    # ---- statements ----

    def statement(self, node: Node, label: str | None = None) -> ast.Stmt:
        kind = node.type
        line = self.line(node)
        if kind == "pipeline":
            return self.pipeline(node)
        if kind == "if_statement":
            return self.if_statement(node)
        if kind == "foreach_statement":
            parts = _named(node)
            if parts[0].type == "foreach_parameter":
                raise self.unsupported("foreach -parallel", node)
            var = self.variable(parts[0])
            if not isinstance(var, ast.VarRef) or var.splat:
                raise self.unsupported("foreach variable", node)
            return ast.ForeachStmt(var, self.pipeline(parts[1]), self.statement_block(parts[2]), label, line)
        if kind == "for_statement":
            init = node.child_by_field_name("for_initializer")
            cond = node.child_by_field_name("for_condition")
            step = node.child_by_field_name("for_iterator")
            body = next(c for c in _named(node) if c.type == "statement_block")
            return ast.ForStmt(
                self.pipeline(_named(init)[0]) if init is not None else None,
                self.pipeline(_named(cond)[0]) if cond is not None else None,
                self.pipeline(_named(step)[0]) if step is not None else None,
                self.statement_block(body),
                label,
                line,
            )
        if kind == "while_statement":
            cond = node.child_by_field_name("condition")
            body = next(c for c in _named(node) if c.type == "statement_block")
            assert cond is not None
            return ast.WhileStmt(self.pipeline(_named(cond)[0]), self.statement_block(body), label, line)
        if kind == "do_statement":
            cond = node.child_by_field_name("condition")
            assert cond is not None
            body = next(c for c in _named(node) if c.type == "statement_block")
            until = any(c.type == "until" for c in node.children)
            return ast.DoStmt(self.statement_block(body), self.pipeline(_named(cond)[0]), until, label, line)
        if kind == "switch_statement":
            return self.switch_statement(node, label)
        if kind == "try_statement":
            return self.try_statement(node)
        if kind == "function_statement":
            return self.function_statement(node)
        if kind == "flow_control_statement":
            return self.flow_control(node)
        if kind in _UNSUPPORTED_STATEMENTS:
            raise self.unsupported(_UNSUPPORTED_STATEMENTS[kind], node)
        raise self.unsupported(kind, node)

    def if_statement(self, node: Node) -> ast.IfStmt:
        clauses: list[tuple[ast.Stmt, ast.Block]] = []
        cond = node.child_by_field_name("condition")
        assert cond is not None
        first_block = next(c for c in _named(node) if c.type == "statement_block")
        clauses.append((self.pipeline(cond), self.statement_block(first_block)))
        else_body: ast.Block | None = None
        for child in _named(node):
            if child.type == "elseif_clauses":
                for clause in _named(child):
                    clause_cond = clause.child_by_field_name("condition")
                    assert clause_cond is not None
                    block = next(c for c in _named(clause) if c.type == "statement_block")
                    clauses.append((self.pipeline(clause_cond), self.statement_block(block)))
            elif child.type == "else_clause":
                else_body = self.statement_block(_named(child)[0])
        return ast.IfStmt(tuple(clauses), else_body, self.line(node))

    def switch_statement(self, node: Node, label: str | None) -> ast.SwitchStmt:
        flags: set[str] = set()
        subject: ast.Stmt | None = None
        clauses: list[ast.SwitchClause] = []
        for child in _named(node):
            if child.type == "switch_parameters":
                for parameter in _named(child):
                    flag = _text(parameter).casefold()
                    if flag == "-parallel":
                        raise self.unsupported("switch -parallel", parameter)
                    flags.add(flag)
            elif child.type == "switch_condition":
                if any(c.type == "-file" for c in child.children):
                    raise self.unsupported("switch -file", child)
                subject = self.pipeline(_named(child)[0])
            elif child.type == "switch_body":
                for group in _named(child):
                    for clause in _named(group):
                        condition_node, block_node = _named(clause)[:2]
                        clauses.append(
                            ast.SwitchClause(self.switch_condition(condition_node), self.statement_block(block_node))
                        )
        assert subject is not None
        return ast.SwitchStmt(
            "-regex" in flags,
            "-wildcard" in flags,
            "-exact" in flags,
            "-casesensitive" in flags,
            subject,
            tuple(clauses),
            label,
            self.line(node),
        )

    def switch_condition(self, node: Node) -> ast.Expr | None:
        inner = _named(node)
        if not inner:
            word = _text(node)
            if word.casefold() == "default":
                return None
            return self.bare_word(word)
        return self.expression(inner[0])

    def try_statement(self, node: Node) -> ast.TryStmt:
        body: ast.Block = ()
        catches: list[ast.CatchClause] = []
        finally_body: ast.Block | None = None
        for child in _named(node):
            if child.type == "statement_block":
                body = self.statement_block(child)
            elif child.type == "catch_clauses":
                for clause in _named(child):
                    types: list[ast.TypeName] = []
                    block: ast.Block = ()
                    for part in _named(clause):
                        if part.type == "catch_type_list":
                            types.extend(self.type_literal(t) for t in _named(part))
                        elif part.type == "statement_block":
                            block = self.statement_block(part)
                    catches.append(ast.CatchClause(tuple(types), block))
            elif child.type == "finally_clause":
                finally_body = self.statement_block(_named(child)[0])
        return ast.TryStmt(body, tuple(catches), finally_body, self.line(node))

    def function_statement(self, node: Node) -> ast.FunctionDef:
        keyword = node.children[0].type
        if keyword == "workflow":
            raise self.unsupported("workflow", node)
        name = ""
        params_node: Node | None = None
        block: Node | None = None
        for child in _named(node):
            if child.type == "function_name":
                name = _text(child)
            elif child.type == "function_parameter_declaration":
                params_node = child
            elif child.type == "script_block":
                block = child
        if ":" in name:
            scope, _, bare = name.partition(":")
            if scope.casefold() not in ("global", "script", "local"):
                raise self.unsupported(f"function name '{name}'", node)
            name = bare
        params: tuple[ast.ParamDef, ...] | None = None
        if params_node is not None:
            lists = [c for c in _named(params_node) if c.type == "parameter_list"]
            params = self.parameter_list(lists[0]) if lists else ()
        text_start = next(c for c in node.children if c.type == "{")
        body_text = self.source[text_start.end_byte : node.end_byte - 1].decode("utf-8")
        if block is None:
            sb = ast.ScriptBlockAst(params, None, None, (), False, body_text, self.line(node))
        else:
            sb = self.script_block_node(block, node)
            sb.text = body_text
            if params is not None:
                if sb.params is not None:
                    raise self.unsupported("function with both (params) and param()", node)
                sb.params = params
        if keyword == "filter":
            if sb.begin is not None or sb.process is not None:
                raise self.unsupported("filter with named blocks", node)
            sb = ast.ScriptBlockAst(sb.params, None, sb.end, None, sb.cmdlet_binding, sb.text, sb.line)
        return ast.FunctionDef(name, sb, keyword == "filter", self.line(node))

    def flow_control(self, node: Node) -> ast.FlowStmt:
        keyword = node.children[0].type
        value: ast.Stmt | None = None
        label: str | None = None
        for child in _named(node):
            if child.type == "label_expression":
                inner = _named(child)[0]
                if inner.type == "label":
                    label = _text(inner)[1:]
                else:
                    expr = self.expression(inner)
                    if isinstance(expr, ast.Const) and isinstance(expr.value, str):
                        label = expr.value
                    else:
                        raise self.unsupported(f"{keyword} with a computed label", node)
            elif child.type == "pipeline":
                value = self.pipeline(child)
        return ast.FlowStmt(keyword, value, label, self.line(node))

    # ---- pipelines ----

    def pipeline(self, node: Node) -> ast.Stmt:
        if node.type != "pipeline":
            raise self.unsupported(node.type, node)
        children = _named(node)
        if children and children[0].type == "assignment_expression":
            return self.assignment(children[0])
        if any(c.type == "pipeline_chain_tail" for c in children):
            tail = next(c for c in children if c.type == "pipeline_chain_tail")
            line, column, line_text = _position(self.source, tail.start_byte)
            raise ParseFailure(
                parse_error_record(
                    f"The token '{_text(tail)}' is not a valid statement separator in this version.",
                    "InvalidEndOfLine",
                    line + self.line_offset,
                    column,
                    line_text,
                )
            )
        return self.pipeline_chain(children[0])

    def pipeline_chain(self, node: Node) -> ast.Pipeline:
        head: ast.Expr | None = None
        head_redirects: list[ast.Redirect] = []
        commands: list[ast.Command] = []
        for child in _named(node):
            kind = child.type
            if kind == "command":
                if not commands and head is None and self._is_number_command(child):
                    head, head_redirects = self.number_command(child)
                    continue
                commands.append(self.command(child))
            elif kind == "redirections":
                head_redirects.extend(self.redirection(r) for r in _named(child))
            elif kind == "verbatim_command_argument":
                raise self.unsupported("--% (stop-parsing)", child)
            else:
                head = self.expression(child)
        return ast.Pipeline(head, tuple(commands), tuple(head_redirects), self.line(node), node.start_point[1] + 1)

    def _is_number_command(self, node: Node) -> bool:
        name = node.child_by_field_name("command_name")
        if name is None or name.type != "command_name":
            return False
        return bool(_NUMBER_START.match(_text(name)))

    def number_command(self, node: Node) -> tuple[ast.Expr, list[ast.Redirect]]:
        """A statement starting with a number is an expression; re-parse it as one (grammar quirk)."""
        text = _text(node)
        match = _NUMBER_START.match(text)
        assert match is not None
        rest = text[match.end() :]
        if rest.startswith(".."):
            rest = " .. " + rest[2:]
        normalised = match.group(0).lower() + _lower_suffixes(rest)
        source = normalised.encode("utf-8")
        tree = new_parser().parse(source)
        error = _first_error(tree.root_node)
        if error is not None:
            raise ParseFailure(_classify(source, error))
        builder = _Builder(source, self.line_offset + node.start_point[0])
        statements = builder.statement_list(_named(tree.root_node)[-1])
        if len(statements) != 1 or not isinstance(statements[0], ast.Pipeline):
            raise self.unsupported(f"expression '{text.strip()}'", node)
        pipeline = statements[0]
        if pipeline.commands or pipeline.head is None:
            raise self.unsupported(f"expression '{text.strip()}'", node)
        return pipeline.head, list(pipeline.head_redirects)

    def assignment(self, node: Node) -> ast.Assignment:
        left, operator, value = _named(node)[:3]
        op = _text(operator).strip()
        if op == "!=":
            line, column, line_text = _position(self.source, operator.start_byte)
            raise ParseFailure(
                parse_error_record(
                    "Unexpected token '!=' in expression or statement.", "UnexpectedToken", line, column, line_text
                )
            )
        target = self.expression(left)
        return ast.Assignment(target, op, self.statement(value), self.line(node))

    # ---- commands ----

    def command(self, node: Node) -> ast.Command:
        invocation: str | None = None
        name: str | ast.Expr = ""
        elements_node: Node | None = None
        for child in node.children:
            kind = child.type
            if kind == "command_invokation_operator":
                invocation = _text(child)
            elif kind == "command_name":
                name = self.command_name_text(child)
            elif kind == "command_name_expr":
                name = self.command_name_expr(child)
            elif kind == "command_elements":
                elements_node = child
        elements: list[ast.CmdParam | ast.CmdArg] = []
        redirects: list[ast.Redirect] = []
        if elements_node is not None:
            elements, redirects = self.command_elements(elements_node)
        return ast.Command(
            name,
            invocation,
            tuple(elements),
            tuple(redirects),
            self.line(node),
            node.start_point[1] + 1,
            _text(node).strip(),
        )

    def command_name_text(self, node: Node) -> str | ast.Expr:
        text = _text(node)
        if any(q in text for q in "\"'$`"):
            raise self.unsupported(f"command name '{text}'", node)
        return text

    def command_name_expr(self, node: Node) -> str | ast.Expr:
        inner = _named(node)[0]
        if inner.type == "command_name":
            return self.command_name_text(inner)
        if inner.type == "path_command_name":
            parts: list[str | ast.Expr] = []
            for part in _named(inner):
                if part.type == "variable":
                    parts.append(self.variable(part))
                else:
                    parts.append(_text(part))
            if len(parts) == 1 and isinstance(parts[0], str):
                return parts[0]
            if len(parts) == 1 and isinstance(parts[0], ast.Expr):
                return parts[0]
            return ast.ExpandableString(tuple(parts))
        return self.expression(inner)

    def command_elements(self, node: Node) -> tuple[list[ast.CmdParam | ast.CmdArg], list[ast.Redirect]]:
        elements: list[ast.CmdParam | ast.CmdArg] = []
        redirects: list[ast.Redirect] = []
        colon = False
        glue = False
        previous_end = -1
        for child in node.children:
            kind = child.type
            if kind == "comment":
                continue
            if kind == "command_argument_sep":
                if child.start_byte == child.end_byte:
                    glue = True
                elif _text(child) == ":":
                    colon = True
                continue
            if kind == "command_parameter":
                text = _text(child)
                if text == "--":
                    raise self.unsupported("'--' end-of-parameters marker", child)
                elements.append(ast.CmdParam(text.lstrip("-"), None, text))
            elif kind == "redirection":
                redirects.append(self.redirection(child))
            elif kind == "stop_parsing":
                raise self.unsupported("--% (stop-parsing)", child)
            elif kind == "argument_list":
                args = self.argument_list(child)
                last = elements[-1] if elements else None
                if (
                    child.start_byte == previous_end
                    and isinstance(last, ast.CmdArg)
                    and isinstance(last.value, ast.MemberAccess)
                ):
                    member = last.value
                    last.value = ast.MethodCall(member.target, member.member, args, member.static, self.line(child))
                elif child.start_byte == previous_end:
                    raise self.unsupported(f"argument '{_text(child)}' glued to the previous one", child)
                else:
                    elements.append(ast.CmdArg(args[0] if len(args) == 1 else ast.ArrayLiteral(args)))
            else:
                bare = kind == "generic_token"
                text = _text(child)
                redirect = _GLUED_REDIRECTION.match(text) if bare else None
                if redirect is not None:
                    # ``2>$null`` without a space lexes as a bare word; PowerShell reads a redirection.
                    if redirect.group("target").casefold() != "$null":
                        raise self.unsupported(f"file redirection '{text}' (the lab has no file system)", child)
                    stream = redirect.group("stream") or "1"
                    redirects.append(ast.Redirect(stream, None, ast.VarRef("null"), redirect.group("op") == ">>"))
                elif bare and text.startswith(","):
                    # ``a,b`` in argument mode: one array argument (the grammar splits it).
                    value: ast.Expr = self.bare_word(text[1:])
                    self._append_to_array(elements, value, child)
                elif glue and kind == "array_literal_expression" and _text(child).startswith(","):
                    operand = self.expression(child)
                    items = operand.operand if isinstance(operand, ast.UnaryOp) and operand.op == "," else operand
                    self._append_to_array(elements, items, child)
                else:
                    value = self.bare_word(text) if bare else self.expression(child)
                    last = elements[-1] if elements else None
                    if colon and isinstance(last, ast.CmdParam) and last.value is None:
                        last.value = value
                    elif glue:
                        raise self.unsupported(f"argument '{text}' glued to the previous one", child)
                    else:
                        elements.append(ast.CmdArg(value, bare))
            colon = False
            glue = False
            previous_end = child.end_byte
        return elements, redirects

    def _append_to_array(self, elements: list[ast.CmdParam | ast.CmdArg], value: ast.Expr, node: Node) -> None:
        last = elements[-1] if elements else None
        if isinstance(last, ast.CmdParam) and last.value is not None:
            target = last.value
            last.value = ast.ArrayLiteral((*_array_items(target), value))
            return
        if not isinstance(last, ast.CmdArg):
            raise self.unsupported(f"argument '{_text(node)}'", node)
        last.value = ast.ArrayLiteral((*_array_items(last.value), value))
        last.bare = False

    def redirection(self, node: Node) -> ast.Redirect:
        children = _named(node)
        operator = children[0]
        op = _text(operator).strip()
        if operator.type == "merging_redirection_operator":
            source_stream, _, merge_target = op.partition(">&")
            if op != "2>&1":
                raise self.unsupported(f"redirection {op}", node)
            return ast.Redirect(source_stream, merge_target, None)
        append = op.endswith(">>")
        stream = op.rstrip(">") or "1"
        if op == "<":
            raise self.unsupported("input redirection '<'", node)
        target_parts = [c for c in _named(children[1]) if c.type != "command_argument_sep"]
        if len(target_parts) != 1:
            raise self.unsupported(f"redirection target '{_text(children[1]).strip()}'", node)
        target: ast.Expr | None = self.expression(target_parts[0]) if target_parts[0].type != "generic_token" else None
        if not (isinstance(target, ast.VarRef) and target.key == "null" and target.scope is None):
            raise self.unsupported(f"file redirection '{_text(node).strip()}' (the lab has no file system)", node)
        return ast.Redirect(stream, None, target, append)

    def argument_list(self, node: Node) -> tuple[ast.Expr, ...]:
        inner = node.child_by_field_name("argument_expression_list")
        if inner is None:
            return ()
        return tuple(self.expression(arg) for arg in _named(inner))

    def bare_word(self, text: str) -> ast.Expr:
        """A generic token in argument mode: an expandable string, or a number if it reads as one."""
        number = _number_value(text)
        if number is not None:
            return ast.Const(number)
        if "$" not in text and "`" not in text:
            return ast.Const(text)
        parts: list[str | ast.Expr] = []
        position = 0
        for match in _BARE_VARIABLE.finditer(text):
            if match.start() > position:
                parts.append(_unescape(text[position : match.start()], False))
            parts.append(self.variable_text(match.group(0)))
            position = match.end()
        if position < len(text):
            parts.append(_unescape(text[position:], False))
        return ast.ExpandableString(tuple(parts))

    # ---- expressions ----

    def expression(self, node: Node) -> ast.Expr:
        kind = node.type
        if kind in _BINARY_LEVELS:
            children = node.children
            if len(children) == 1:
                return self.expression(children[0])
            left, operator, right = children[0], children[1], children[2]
            op = operator.type if operator.type not in ("comparison_operator", "format_operator") else _text(operator)
            op = op.casefold()
            if op in ("-shl", "-shr"):
                pass
            return ast.BinaryOp(op, self.expression(left), self.expression(right), self.line(node))
        if kind in _PASSTHROUGH:
            inner = _named(node)
            if len(inner) != 1:
                raise self.unsupported(kind, node)
            return self.expression(inner[0])
        method = getattr(self, "x_" + kind, None)
        if method is None:
            raise self.unsupported(kind, node)
        result: ast.Expr = method(node)
        return result

    def x_array_literal_expression(self, node: Node) -> ast.Expr:
        items = _named(node)
        if len(items) == 1:
            return self.expression(items[0])
        return ast.ArrayLiteral(tuple(self.expression(item) for item in items))

    def x_expression_with_unary_operator(self, node: Node) -> ast.Expr:
        first = node.children[0]
        kind = first.type
        if kind == "pre_increment_expression":
            return ast.IncDec(self.expression(_named(first)[0]), 1, True)
        if kind == "pre_decrement_expression":
            return ast.IncDec(self.expression(_named(first)[0]), -1, True)
        if kind == "cast_expression":
            type_node, operand = _named(first)[:2]
            return ast.CastExpr(self.type_literal(type_node), self.expression(operand))
        operand_node = _named(node)[-1]
        return ast.UnaryOp(kind.casefold(), self.expression(operand_node))

    def x_post_increment_expression(self, node: Node) -> ast.Expr:
        return ast.IncDec(self.expression(_named(node)[0]), 1, False)

    def x_post_decrement_expression(self, node: Node) -> ast.Expr:
        return ast.IncDec(self.expression(_named(node)[0]), -1, False)

    def x_parenthesized_expression(self, node: Node) -> ast.Expr:
        inner = _named(node)[0]
        statement = self.pipeline(inner)
        return ast.ParenExpression(statement)

    def x_sub_expression(self, node: Node) -> ast.Expr:
        body = node.child_by_field_name("statements")
        return ast.SubExpression(self.statement_list(body) if body is not None else ())

    def x_array_expression(self, node: Node) -> ast.Expr:
        body = node.child_by_field_name("statements")
        return ast.ArrayExpression(self.statement_list(body) if body is not None else ())

    def x_script_block_expression(self, node: Node) -> ast.Expr:
        return ast.ScriptBlockExpr(self.script_block_expression(node))

    def x_hash_literal_expression(self, node: Node) -> ast.Expr:
        entries: list[tuple[ast.Expr, ast.Stmt]] = []
        for body in _named(node):
            for entry in _named(body):
                key_node, value_node = _named(entry)[:2]
                key_inner = _named(key_node)[0]
                key: ast.Expr = (
                    ast.Const(_text(key_inner)) if key_inner.type == "simple_name" else self.expression(key_inner)
                )
                entries.append((key, self.statement(value_node)))
        return ast.HashLiteral(tuple(entries))

    def x_integer_literal(self, node: Node) -> ast.Expr:
        text = _text(node)
        value = _number_value(text)
        if value is None:
            raise self.unsupported(f"number literal '{text}'", node)
        return ast.Const(value)

    x_real_literal = x_integer_literal

    def x_string_literal(self, node: Node) -> ast.Expr:
        inner = _named(node)[0]
        kind = inner.type
        text = _text(inner)
        if kind == "verbatim_string_characters":
            return ast.Const(text[1:-1].replace("''", "'"))
        if kind == "verbatim_here_string_characters":
            return ast.Const(_here_body(text))
        return self.expandable(inner, here=kind == "expandable_here_string_literal")

    def expandable(self, node: Node, here: bool) -> ast.Expr:
        raw = self.source[node.start_byte : node.end_byte]
        if here:
            first_newline = raw.index(b"\n") + 1
            closing = raw.rindex(b'"@')
            inner_start = node.start_byte + first_newline
            inner_end = node.start_byte + closing
            if self.source[inner_end - 1 : inner_end] == b"\n":
                inner_end -= 1
                if self.source[inner_end - 1 : inner_end] == b"\r":
                    inner_end -= 1
        else:
            inner_start, inner_end = node.start_byte + 1, node.end_byte - 1
        parts: list[str | ast.Expr] = []
        position = inner_start
        for child in _named(node):
            if child.start_byte < inner_start or child.end_byte > inner_end:
                continue
            if child.start_byte > position:
                parts.append(_unescape(self.source[position : child.start_byte].decode("utf-8"), not here))
            if child.type == "variable":
                parts.append(self.variable(child))
            elif child.type == "sub_expression":
                parts.append(self.x_sub_expression(child))
            else:
                raise self.unsupported(child.type, child)
            position = child.end_byte
        if position < inner_end:
            parts.append(_unescape(self.source[position:inner_end].decode("utf-8"), not here))
        merged: list[str | ast.Expr] = []
        for part in parts:
            if isinstance(part, str) and merged and isinstance(merged[-1], str):
                merged[-1] += part
            elif part != "":
                merged.append(part)
        if not merged:
            return ast.Const("")
        if len(merged) == 1 and isinstance(merged[0], str):
            return ast.Const(merged[0])
        return ast.ExpandableString(tuple(merged))

    def x_type_literal(self, node: Node) -> ast.Expr:
        return ast.TypeExpr(self.type_literal(node))

    def x_variable(self, node: Node) -> ast.Expr:
        return self.variable(node)

    def x_member_access(self, node: Node) -> ast.Expr:
        children = node.children
        target = self.expression(children[0])
        static = children[1].type == "::"
        return ast.MemberAccess(target, self.member_name(children[2]), static)

    def x_element_access(self, node: Node) -> ast.Expr:
        named = _named(node)
        return ast.IndexExpr(self.expression(named[0]), self.expression(named[1]))

    def x_invokation_expression(self, node: Node) -> ast.Expr:
        children = node.children
        if children[0].type == "invokation_foreach_expression":
            inner = _named(children[0])
            block = ast.ScriptBlockExpr(self.script_block_expression(inner[1]))
            return ast.MethodCall(self.expression(inner[0]), "ForEach", (block,), False, self.line(node))
        target = self.expression(children[0])
        static = children[1].type == "::"
        member = self.member_name(children[2])
        args = self.argument_list(children[3])
        return ast.MethodCall(target, member, args, static, self.line(node))

    def member_name(self, node: Node) -> str | ast.Expr:
        inner = _named(node)[0]
        if inner.type == "simple_name":
            return _text(inner)
        expr = self.expression(inner)
        if isinstance(expr, ast.Const) and isinstance(expr.value, str):
            return expr.value
        return expr

    # ---- variables, types, parameters ----

    def variable(self, node: Node) -> ast.Expr:
        return self.variable_text(_text(node), node)

    def variable_text(self, text: str, node: Node | None = None) -> ast.Expr:
        splat = text.startswith("@")
        body = text[1:]
        if body.startswith("{") and body.endswith("}"):
            body = body[1:-1]
        scope: str | None = None
        if ":" in body:
            prefix, _, name = body.partition(":")
            folded = prefix.casefold()
            if folded == "using":
                raise NotSupportedByLab(f"$using:{name}", self.line(node) if node is not None else None)
            if folded not in _SCOPES:
                raise NotSupportedByLab(f"variable '{text}' (drive-qualified)", self.line(node) if node else None)
            scope = folded
            body = name
        return ast.VarRef(body, scope, splat)

    def type_literal(self, node: Node) -> ast.TypeName:
        spec = next(c for c in _named(node) if c.type == "type_spec")
        return self.type_spec(spec)

    def type_spec(self, node: Node) -> ast.TypeName:
        first = _named(node)[0]
        if first.type == "type_name":
            return ast.TypeName(_text(first).replace(" ", ""))
        if first.type == "array_type_name":
            base = _text(_named(first)[0]).replace(" ", "")
            if any(c.type == "dimension" for c in _named(node)):
                raise self.unsupported(f"multi-dimensional array type [{_text(node)}]", node)
            return ast.TypeName(base, array=True)
        if first.type == "generic_type_name":
            base = _text(_named(first)[0]).replace(" ", "")
            arguments = next(c for c in _named(node) if c.type == "generic_type_arguments")
            args = tuple(self.type_spec(a) for a in _named(arguments))
            return ast.TypeName(base, generic_args=args)
        raise self.unsupported(f"type [{_text(node)}]", node)

    def param_block(self, node: Node) -> tuple[tuple[ast.ParamDef, ...], bool]:
        binding = False
        params: tuple[ast.ParamDef, ...] = ()
        for child in _named(node):
            if child.type == "attribute_list":
                for attribute in _named(child):
                    name = self.attribute_name(attribute)
                    if name in ("cmdletbinding", "outputtype", "alias"):
                        binding = binding or name == "cmdletbinding"
                    else:
                        raise self.unsupported(f"[{name}] on a param block", attribute)
            elif child.type == "parameter_list":
                params = self.parameter_list(child)
        return params, binding

    def attribute_name(self, node: Node) -> str:
        for child in _named(node):
            if child.type == "attribute_name":
                return _text(child).casefold()
            if child.type == "type_literal":
                return str(self.type_literal(child)).casefold()
        return _text(node).casefold()

    def parameter_list(self, node: Node) -> tuple[ast.ParamDef, ...]:
        result: list[ast.ParamDef] = []
        sets: set[str] = set()
        for parameter in _named(node):
            definition = ast.ParamDef(name="")
            for child in _named(parameter):
                if child.type == "attribute_list":
                    for attribute in _named(child):
                        self.parameter_attribute(attribute, definition, sets)
                elif child.type == "variable":
                    var = self.variable(child)
                    assert isinstance(var, ast.VarRef)
                    definition.name = var.name
                elif child.type == "script_parameter_default":
                    definition.default = self.expression(_named(child)[0])
            result.append(definition)
        if len(sets - {"__allparametersets"}) > 1:
            raise self.unsupported("parameter sets", node)
        return tuple(result)

    def parameter_attribute(self, node: Node, definition: ast.ParamDef, sets: set[str]) -> None:
        inner = _named(node)
        if inner and inner[0].type == "type_literal":
            definition.type = self.type_literal(inner[0])
            return
        name = self.attribute_name(node)
        positional: list[Any] = []
        named: dict[str, Any] = {}
        for child in inner:
            if child.type != "attribute_arguments":
                continue
            for argument in _named(child):
                parts = _named(argument)
                if parts and parts[0].type == "simple_name":
                    key = _text(parts[0]).casefold()
                    named[key] = self.constant(parts[1]) if len(parts) > 1 else True
                else:
                    positional.append(self.constant(parts[0]))
        if name == "parameter":
            for key, value in named.items():
                if key == "mandatory":
                    definition.mandatory = bool(value)
                elif key == "position":
                    definition.position = int(value)
                elif key == "valuefrompipeline":
                    definition.from_pipeline = bool(value)
                elif key == "valuefrompipelinebypropertyname":
                    definition.from_pipeline_by_property_name = bool(value)
                elif key == "parametersetname":
                    sets.add(str(value).casefold())
                elif key in ("helpmessage", "dontshow", "valuefromremainingarguments"):
                    if key == "valuefromremainingarguments" and value:
                        raise self.unsupported("ValueFromRemainingArguments", node)
                else:
                    raise self.unsupported(f"[Parameter({key})]", node)
        elif name == "validateset":
            definition.validate_set = tuple(str(v) for v in positional)
        elif name == "validatenotnullorempty":
            definition.validate_not_null_or_empty = True
        elif name == "validatenotnull":
            definition.validate_not_null = True
        elif name == "validaterange" and len(positional) == 2:
            definition.validate_range = (positional[0], positional[1])
        elif name == "validatepattern" and positional:
            definition.validate_pattern = str(positional[0])
        elif name == "alias":
            definition.aliases = tuple(str(v) for v in positional)
        elif name in ("allownull", "allowemptystring", "allowemptycollection"):
            definition.allow_empty = True
        else:
            raise self.unsupported(f"parameter attribute [{name}]", node)

    def constant(self, node: Node) -> Any:
        """Attribute arguments must be constants in PowerShell; evaluate the few forms that are."""
        expr = self.expression(node)
        return _const_value(expr, self, node)


def _top_level_named_blocks(body: ast.Block) -> dict[str, ast.Block] | None:
    """``begin {} process {} end {}`` at script level: the grammar reads commands named ``begin``/``process``.

    A block that closes on the line the next one opens (``} process {``, as pypsrp's copy.ps1 writes it) is read
    as one command whose arguments are the script blocks and the bare names between them."""
    blocks: dict[str, ast.Block] = {}
    for statement in body:
        if not (isinstance(statement, ast.Pipeline) and statement.head is None and len(statement.commands) == 1):
            return None
        command = statement.commands[0]
        name = command.name.casefold() if isinstance(command.name, str) else ""
        if command.invocation is not None or command.redirects or not command.elements:
            return None
        elements = command.elements
        if len(elements) % 2 != 1:
            return None
        for index in range(0, len(elements), 2):
            if index:
                label = elements[index - 1]
                if not (isinstance(label, ast.CmdArg) and label.bare and isinstance(label.value, ast.Const)):
                    return None
                name = str(label.value.value).casefold()
            element = elements[index]
            if name not in ("begin", "process", "end") or name in blocks:
                return None
            if not (isinstance(element, ast.CmdArg) and isinstance(element.value, ast.ScriptBlockExpr)):
                return None
            inner = element.value.block
            if inner.params is not None or inner.begin is not None or inner.process is not None:
                return None
            blocks[name] = inner.end or ()
    return blocks or None


def _const_value(expr: ast.Expr, builder: _Builder, node: Node) -> Any:
    if isinstance(expr, ast.Const):
        return expr.value
    if isinstance(expr, ast.VarRef) and expr.scope is None and expr.key in ("true", "false", "null"):
        return {"true": True, "false": False, "null": None}[expr.key]
    if isinstance(expr, ast.UnaryOp) and expr.op == "-":
        inner = _const_value(expr.operand, builder, node)
        return -inner
    if isinstance(expr, ast.ArrayLiteral):
        return [_const_value(item, builder, node) for item in expr.items]
    raise builder.unsupported("non-constant attribute argument", node)


def _array_items(expr: ast.Expr) -> tuple[ast.Expr, ...]:
    return expr.items if isinstance(expr, ast.ArrayLiteral) else (expr,)


def _number_value(text: str) -> int | float | None:
    match = _NUMBER_TOKEN.match(text)
    if match is None or not (match.group("hex") or match.group("num")):
        return None
    if match.group("hex") and match.group("num"):
        return None
    if match.group("type") and match.group("type").casefold() == "d":
        return None  # [decimal] literals: not emulated (the caller reports it as unsupported)
    multiplier = _MULTIPLIERS.get((match.group("mult") or "").casefold(), 1)
    if match.group("hex"):
        value = int(match.group("hex")[2:], 16)
        # PowerShell: 0xFFFFFFFF is Int32 -1 (hex literals fill the bits of the smallest fitting type).
        if not match.group("type") and 0x80000000 <= value <= 0xFFFFFFFF:
            value -= 1 << 32
        return value * multiplier
    number = match.group("num")
    if "." in number or "e" in number.casefold():
        result = float(number) * multiplier
        return result
    return int(number) * multiplier


def _lower_suffixes(text: str) -> str:
    """Lower-case number multiplier suffixes outside quotes (``5MB`` -> ``5mb``, as the grammar wants)."""
    pieces = re.split(r"('(?:[^']|'')*'|\"(?:[^\"`]|`.)*\")", text)
    for index in range(0, len(pieces), 2):
        pieces[index] = re.sub(
            r"(?i)(?<![\w$])([0-9]+(?:\.[0-9]+)?)(kb|mb|gb|tb|pb)\b",
            lambda m: m.group(1) + m.group(2).lower(),
            pieces[index],
        )
    return "".join(pieces)


def _unescape(text: str, double_quoted: bool) -> str:
    """Backtick escapes (about_Special_Characters, Windows PowerShell 5.1: no `e / `u{})."""
    if "`" not in text and not (double_quoted and '""' in text):
        return text
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "`" and i + 1 < n:
            nxt = text[i + 1]
            if nxt == "\r" and i + 2 < n and text[i + 2] == "\n":
                i += 3  # line continuation
                continue
            if nxt == "\n":
                i += 2
                continue
            out.append(_BACKTICK.get(nxt, nxt))
            i += 2
            continue
        if double_quoted and ch == '"' and i + 1 < n and text[i + 1] == '"':
            out.append('"')
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _here_body(text: str) -> str:
    body = text[2:]
    body = body[body.index("\n") + 1 :]
    end = body.rindex("'@")
    body = body[:end]
    if body.endswith("\n"):
        body = body[:-1]
        if body.endswith("\r"):
            body = body[:-1]
    return body


_GLUED_REDIRECTION = re.compile(r"^(?P<stream>[1-6*]?)(?P<op>>>?)(?P<target>[^&].*)$")

_LIST_NEIGHBOURS = frozenset(
    {"command", "pipeline", "generic_token", "array_literal_expression", "parenthesized_expression"}
)

_UNSUPPORTED_STATEMENTS = {
    "class_statement": "class",
    "enum_statement": "enum",
    "trap_statement": "trap",
    "data_statement": "data section",
    "inlinescript_statement": "inlinescript",
    "parallel_statement": "parallel",
    "sequence_statement": "sequence",
}
