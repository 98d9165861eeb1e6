"""The evaluator: scopes and variables, statements, expressions, error-stream semantics.

Theory of operation
-------------------
A :class:`~migrator.lab.ps.session.Session` is one runspace's state (global scope, functions, ``$Error``,
``$env:`` overrides, the stop flag; ``session.py``); an :class:`Interpreter` walks ``ast`` nodes against it.
Output is pushed into a *sink* (anything with ``append``): a list that collects, or the next command of a
pipeline (``commands.py``), so pipelines stream object by object like PowerShell's.

Errors follow PowerShell's three kinds (see ``errors.py``): a non-terminating error goes through
:meth:`Interpreter.write_error` and the caller's ErrorAction; a statement-terminating error
(``PowerShellError``) ends its statement, is written to the error stream and the script goes on unless it
is inside ``try`` or ``$ErrorActionPreference`` is Stop; a script-terminating error
(``ScriptTerminatingError``: ``throw``, ``-ErrorAction Stop``) unwinds to the nearest ``catch`` or ends the
invocation. Scoping is dynamic as in PowerShell: a function's scope is a child of its caller's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from migrator.lab.ps import ast
from migrator.lab.ps import members as mem
from migrator.lab.ps import operators as ops
from migrator.lab.ps.commands import CommandRunner, ScriptCommand
from migrator.lab.ps.errors import (
    BreakFlow,
    ContinueFlow,
    ExitFlow,
    NotSupportedByLab,
    PipelineStopped,
    ReturnFlow,
    ScriptTerminatingError,
    exception_matches,
    make_record,
    runtime_error,
)
from migrator.lab.ps.intrinsics import EngineIntrinsics
from migrator.lab.ps.session import DISCARD, VOID, FunctionInfo, Scope, Session, Sink, Streams, normalise_action
from migrator.lab.ps.values import (
    PSException,
    PSType,
    ScriptBlock,
    as_list,
    convert_to,
    is_enumerable,
    to_bool,
    to_int,
    to_str,
    type_value,
    unroll,
)
from migrator.lab.shell import ErrorRecord, Hashtable, InformationRecord, PowerShellError, PSObject

# ---- the interpreter -------------------------------------------------------------------------------------


class Interpreter:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.host = session.host
        self.scope = session.global_scope
        self.script_scope = session.global_scope
        self.try_depth = 0
        self.current_error: list[ErrorRecord] = []
        self.function_stack: list[str] = []
        self.console_in: Any = None  # [Console]::In, made on first use from host.standard_input()
        self.console_encodings: dict[str, Any] = {}  # [Console]::InputEncoding/OutputEncoding once a script set them
        self.streams = Streams(DISCARD, DISCARD, DISCARD, DISCARD, DISCARD)
        self._expr: dict[type, Callable[[Any], Any]] = {
            ast.Const: self._const,
            ast.VarRef: self._var,
            ast.ExpandableString: self._expandable,
            ast.MemberAccess: self._member,
            ast.MethodCall: self._method,
            ast.IndexExpr: self._index,
            ast.UnaryOp: self._unary,
            ast.BinaryOp: self._binary,
            ast.CastExpr: self._cast,
            ast.TypeExpr: self._type,
            ast.ArrayLiteral: self._array_literal,
            ast.HashLiteral: self._hash_literal,
            ast.ScriptBlockExpr: self._script_block,
            ast.SubExpression: self._sub_expression,
            ast.ArrayExpression: self._array_expression,
            ast.ParenExpression: self._paren,
            ast.IncDec: self._inc_dec,
        }
        self._stmt: dict[type, Callable[[Any, Sink], None]] = {
            ast.Pipeline: self._pipeline,
            ast.Assignment: self._assignment,
            ast.IfStmt: self._if,
            ast.WhileStmt: self._while,
            ast.DoStmt: self._do,
            ast.ForStmt: self._for,
            ast.ForeachStmt: self._foreach,
            ast.SwitchStmt: self._switch,
            ast.TryStmt: self._try,
            ast.FunctionDef: self._function_def,
            ast.FlowStmt: self._flow,
            ast.BlockStmt: self._block_stmt,
        }
        self.commands = CommandRunner(self)
        session.global_scope.vars.setdefault("executioncontext", EngineIntrinsics(self))

    # ---- variables ----

    def get_var(self, key: str) -> Any:
        scope: Scope | None = self.scope
        while scope is not None:
            vars_ = scope.vars
            if key in vars_:
                return vars_[key]
            scope = scope.parent
        return self._automatic(key)

    def _automatic(self, key: str) -> Any:
        if key == "?":
            return self.session.last_success
        if key == "psitem":
            return self.get_var("_")
        if key == "pid":
            return 4242
        return None

    def has_var(self, key: str) -> bool:
        scope: Scope | None = self.scope
        while scope is not None:
            if key in scope.vars:
                return True
            scope = scope.parent
        return False

    def set_var(self, name: str, value: Any, scope_name: str | None = None) -> None:
        key = name.casefold()
        if key in ("true", "false", "null", "?") and scope_name is None:
            if key == "null":
                return
            raise runtime_error(
                f"Cannot overwrite variable {name} because it is read-only or constant.",
                "VariableNotWritable",
                "WriteError",
                "System.Management.Automation.SessionStateUnauthorizedAccessException",
            )
        if key == "psitem":
            key = "_"
        target = self._scope_for(scope_name)
        if target.constraints and key in target.constraints:
            value = convert_to(value, target.constraints[key])
        elif target is self.scope and key in _PREFERENCE_VARIABLES:
            value = _validate_preference(key, value)
        target.vars[key] = value

    def _scope_for(self, scope_name: str | None) -> Scope:
        if scope_name in (None, "local", "private"):
            return self.scope
        if scope_name == "script":
            return self.script_scope
        if scope_name == "global":
            return self.session.global_scope
        raise NotSupportedByLab(f"scope '{scope_name}:'")

    def lookup_function(self, name: str) -> FunctionInfo | None:
        key = name.casefold()
        scope: Scope | None = self.scope
        while scope is not None:
            if key in scope.functions:
                return scope.functions[key]
            scope = scope.parent
        return None

    def preference(self, key: str) -> str:
        value = self.get_var(key)
        return to_str(value) if value is not None else "Continue"

    @contextmanager
    def local_var(self, key: str, value: Any) -> Iterator[None]:
        """Set ``$_``-like variables in the current scope for the duration of a block, then restore."""
        vars_ = self.scope.vars
        missing = key not in vars_
        previous = vars_.get(key)
        vars_[key] = value
        try:
            yield
        finally:
            if missing:
                vars_.pop(key, None)
            else:
                vars_[key] = previous

    @contextmanager
    def in_scope(self, scope: Scope, script_scope: Scope | None = None) -> Iterator[None]:
        saved = self.scope, self.script_scope
        self.scope = scope
        if script_scope is not None:
            self.script_scope = script_scope
        try:
            yield
        finally:
            self.scope, self.script_scope = saved

    # ---- streams and errors ----

    def check_stop(self) -> None:
        if self.session.stopping:
            raise PipelineStopped()

    def record_error(self, record: ErrorRecord) -> None:
        """Add to ``$Error`` (most recent first) and count it for ``$?``."""
        self.session.error_list.insert(0, record)
        del self.session.error_list[256:]
        self.session.error_count += 1

    def write_error(
        self,
        record: ErrorRecord,
        action: str | None = None,
        error_variable: list[Any] | None = None,
    ) -> None:
        """A non-terminating error, honouring -ErrorAction / $ErrorActionPreference."""
        if action is None:
            action = self.preference("erroractionpreference")
        if error_variable is not None:
            error_variable.append(record)
        if action == "Stop":
            raise ScriptTerminatingError(record)
        if action == "Ignore":
            self.session.error_count += 1
            return
        self.record_error(record)
        if action == "SilentlyContinue":
            return
        self.streams.errors.append(record)

    def report_statement_error(self, record: ErrorRecord) -> None:
        """A statement-terminating error outside try: written like PowerShell's host does, or escalated."""
        action = self.preference("erroractionpreference")
        if action == "Stop":
            raise ScriptTerminatingError(record)
        self.record_error(record)
        if action in ("SilentlyContinue", "Ignore"):
            return
        self.streams.errors.append(record)

    def write_warning(self, message: str, action: str | None = None) -> None:
        action = action or self.preference("warningpreference")
        if action in ("SilentlyContinue", "Ignore"):
            return
        if action == "Stop":
            raise ScriptTerminatingError(
                make_record(
                    'The running command stopped because the preference variable "WarningPreference" or common '
                    f"parameter is set to Stop: {message}",
                    "ActionPreferenceStop",
                    "OperationStopped",
                    "System.Management.Automation.ActionPreferenceStopException",
                )
            )
        self.streams.warnings.append(message)

    def write_verbose(self, message: str, enabled: bool | None = None) -> None:
        if enabled is None:
            enabled = self.preference("verbosepreference") in ("Continue", "Inquire")
        if enabled:
            self.streams.verbose.append(message)

    def write_debug(self, message: str, enabled: bool | None = None) -> None:
        if enabled is None:
            enabled = self.preference("debugpreference") in ("Continue", "Inquire")
        if enabled:
            self.streams.debug.append(message)

    def write_information(
        self, data: Any, action: str | None = None, source: str = "", tags: tuple[str, ...] = ()
    ) -> None:
        """An InformationRecord: ``Ignore`` drops it; ``SilentlyContinue`` keeps it in the stream, undisplayed
        (the information stream is recorded whatever the preference, about_Preference_Variables)."""
        action = action or self.preference("informationpreference")
        if action == "Ignore":
            return
        record = InformationRecord(
            data, source, tags, self.host.clock.now(), displayed=action not in ("SilentlyContinue", "Ignore")
        )
        self.streams.information.append(record)

    # ---- blocks and statements ----

    def exec_block(self, block: ast.Block, out: Sink) -> None:
        session = self.session
        dispatch = self._stmt
        for statement in block:
            if session.stopping:
                raise PipelineStopped()
            try:
                dispatch[type(statement)](statement, out)
            except ScriptTerminatingError:
                raise
            except PowerShellError as error:
                if self.try_depth > 0:
                    raise
                session.last_success = False
                self.report_statement_error(_with_position(error.record, statement))
            except NotSupportedByLab as unsupported:
                if unsupported.line is None:
                    raise NotSupportedByLab(
                        unsupported.construct, getattr(statement, "line", None), module=unsupported.module
                    ) from None
                raise

    def exec_statement(self, statement: ast.Stmt, out: Sink) -> None:
        self._stmt[type(statement)](statement, out)

    def statement_value(self, statement: ast.Stmt) -> Any:
        """A statement used as a value (assignment right side, hash entry, condition)."""
        if type(statement) is ast.Pipeline and not statement.commands and not statement.head_redirects:
            head = statement.head
            assert head is not None
            return self.eval(head)
        collected: list[Any] = []
        self.exec_statement(statement, collected)
        return unroll(collected)

    def condition(self, statement: ast.Stmt) -> bool:
        return to_bool(self.statement_value(statement))

    def _pipeline(self, node: ast.Pipeline, out: Sink) -> None:
        errors_before = self.session.error_count
        self.session.native_failed = False
        try:
            if not node.commands:
                head = node.head
                assert head is not None
                if node.head_redirects:
                    with self.commands.redirected(node.head_redirects, out) as target:
                        self._emit_expression(head, target)
                else:
                    self._emit_expression(head, out)
            else:
                self.commands.run_pipeline(node, out)
        except PowerShellError:
            self.session.last_success = False
            raise
        self.session.last_success = self.session.error_count == errors_before and not self.session.native_failed

    def _emit_expression(self, head: ast.Expr, out: Sink) -> None:
        if isinstance(head, ast.IncDec):
            self._inc_dec(head)
            return
        if isinstance(head, ast.CastExpr) and head.type.name.casefold() in ("void", "system.void"):
            self.eval_raw(head.operand)
            return
        value = self.eval_raw(head)
        if value is VOID:
            return
        if is_enumerable(value):
            for item in value:
                out.append(item)
        else:
            out.append(value)

    def _assignment(self, node: ast.Assignment, out: Sink) -> None:
        value = self.statement_value(node.value)
        if node.op != "=":
            current = self.eval(node.target)
            value = ops.arithmetic(node.op[0], current, value)
        self.assign(node.target, value)
        self.session.last_success = True

    def assign(self, target: ast.Expr, value: Any) -> None:
        kind = type(target)
        if kind is ast.VarRef:
            assert isinstance(target, ast.VarRef)
            if target.scope == "env":
                self.session.env_set(target.name, None if value is None else to_str(value))
            elif target.scope == "variable":
                self.set_var(target.name, value)
            else:
                self.set_var(target.name, value, target.scope)
            return
        if kind is ast.CastExpr:
            assert isinstance(target, ast.CastExpr)
            if not isinstance(target.operand, ast.VarRef):
                raise _invalid_assignment()
            var = target.operand
            converted = convert_to(value, target.type)
            scope = self._scope_for(var.scope)
            if scope.constraints is None:
                scope.constraints = {}
            scope.constraints[var.key] = target.type
            scope.vars[var.key] = converted
            return
        if kind is ast.MemberAccess:
            assert isinstance(target, ast.MemberAccess)
            if target.static:
                member = self._member_name(target.member)
                owner = self.eval(target.target)
                if (
                    isinstance(owner, PSType)
                    and owner.full_name == "System.Console"
                    and member.casefold() in ("inputencoding", "outputencoding")
                ):
                    mem.set_console_encoding(self, member, value)
                    return
                raise NotSupportedByLab("assignment to a static member")
            obj = self.eval(target.target)
            mem.set_member(self, obj, self._member_name(target.member), value)
            return
        if kind is ast.IndexExpr:
            assert isinstance(target, ast.IndexExpr)
            obj = self.eval(target.target)
            index = self.eval(target.index)
            mem.set_index(obj, index, value)
            return
        if kind is ast.ArrayLiteral:
            assert isinstance(target, ast.ArrayLiteral)
            values = as_list(value)
            targets = target.items
            for position, item in enumerate(targets):
                if position == len(targets) - 1:
                    rest = values[position:]
                    self.assign(item, unroll(rest) if len(rest) != 1 else rest[0])
                else:
                    self.assign(item, values[position] if position < len(values) else None)
            return
        if kind is ast.ParenExpression:
            assert isinstance(target, ast.ParenExpression)
            inner = target.inner
            if isinstance(inner, ast.Pipeline) and inner.head is not None and not inner.commands:
                self.assign(inner.head, value)
                return
        raise _invalid_assignment()

    def _if(self, node: ast.IfStmt, out: Sink) -> None:
        for condition, body in node.clauses:
            if self.condition(condition):
                self.exec_block(body, out)
                return
        if node.else_body is not None:
            self.exec_block(node.else_body, out)

    def _loop_body(self, body: ast.Block, out: Sink, label: str | None) -> bool:
        """Run one iteration; False when the loop must end (break)."""
        try:
            self.exec_block(body, out)
        except BreakFlow as flow:
            if flow.label is None or (label is not None and flow.label.casefold() == label.casefold()):
                return False
            raise
        except ContinueFlow as flow:
            if flow.label is None or (label is not None and flow.label.casefold() == label.casefold()):
                return True
            raise
        return True

    def _while(self, node: ast.WhileStmt, out: Sink) -> None:
        while True:
            self.check_stop()
            if not self.condition(node.cond):
                return
            if not self._loop_body(node.body, out, node.label):
                return

    def _do(self, node: ast.DoStmt, out: Sink) -> None:
        while True:
            self.check_stop()
            if not self._loop_body(node.body, out, node.label):
                return
            result = self.condition(node.cond)
            if result == node.until:
                return

    def _for(self, node: ast.ForStmt, out: Sink) -> None:
        if node.init is not None:
            self.exec_statement(node.init, DISCARD)
        while True:
            self.check_stop()
            if node.cond is not None and not self.condition(node.cond):
                return
            if not self._loop_body(node.body, out, node.label):
                return
            if node.step is not None:
                self.exec_statement(node.step, DISCARD)

    def _foreach(self, node: ast.ForeachStmt, out: Sink) -> None:
        source = self.statement_value(node.iterable)
        items: Iterable[Any]
        if source is None:
            items = ()
        elif is_enumerable(source):
            items = list(source)
        elif isinstance(source, Hashtable):
            items = [source]
        else:
            items = [source]
        for item in items:
            self.check_stop()
            self.assign(node.var, item)
            if not self._loop_body(node.body, out, node.label):
                return

    def _switch(self, node: ast.SwitchStmt, out: Sink) -> None:
        subject = self.statement_value(node.subject)
        items = list(subject) if is_enumerable(subject) else [subject]
        for item in items:
            self.check_stop()
            matched = False
            try:
                with self.local_var("_", item):
                    for clause in node.clauses:
                        if clause.condition is None:
                            continue
                        if self._switch_matches(node, clause.condition, item):
                            matched = True
                            self.exec_block(clause.body, out)
                    if not matched:
                        for clause in node.clauses:
                            if clause.condition is None:
                                self.exec_block(clause.body, out)
            except BreakFlow as flow:
                if flow.label is None or (node.label and flow.label.casefold() == node.label.casefold()):
                    return
                raise
            except ContinueFlow as flow:
                if flow.label is None or (node.label and flow.label.casefold() == node.label.casefold()):
                    continue
                raise

    def _switch_matches(self, node: ast.SwitchStmt, condition: ast.Expr, item: Any) -> bool:
        if isinstance(condition, ast.ScriptBlockExpr):
            result = self.invoke_with_item(ScriptBlock(condition.block), item)
            return to_bool(unroll(result))
        pattern = self.eval(condition)
        if node.regex:
            match = ops.regex_match(item, pattern, node.case_sensitive)
            if match is not None:
                self.set_var("Matches", ops.matches_table(match))
                return True
            return False
        if node.wildcard:
            return ops.like(item, pattern, node.case_sensitive)
        if isinstance(item, str) or isinstance(pattern, str):
            left, right = to_str(item), to_str(pattern)
            return left == right if node.case_sensitive else left.casefold() == right.casefold()
        return ops.values_equal(item, pattern, node.case_sensitive)

    def _try(self, node: ast.TryStmt, out: Sink) -> None:
        try:
            self.try_depth += 1
            try:
                self.exec_block(node.body, out)
            finally:
                self.try_depth -= 1
        except PowerShellError as error:
            record = error.record
            for clause in node.catches:
                if not clause.types or any(exception_matches(record.exception_type, str(t)) for t in clause.types):
                    if record not in self.session.error_list[:1]:
                        self.record_error(record)
                    self.current_error.append(record)
                    try:
                        with self.local_var("_", record):
                            self.exec_block(clause.body, out)
                    finally:
                        self.current_error.pop()
                    return
            raise
        finally:
            if node.finally_body is not None:
                # Finally blocks run even when the pipeline is being stopped (about_Try_Catch_Finally).
                stopping = self.session.stopping
                self.session.stopping = False
                try:
                    self.exec_block(node.finally_body, out)
                finally:
                    self.session.stopping = self.session.stopping or stopping

    def _function_def(self, node: ast.FunctionDef, out: Sink) -> None:
        self.scope.functions[node.name.casefold()] = FunctionInfo(node.name, node.block, node.filter)

    def _flow(self, node: ast.FlowStmt, out: Sink) -> None:
        kind = node.kind
        if kind == "return":
            if node.value is not None:
                self.exec_statement(node.value, out)
            raise ReturnFlow()
        if kind == "break":
            raise BreakFlow(node.label)
        if kind == "continue":
            raise ContinueFlow(node.label)
        if kind == "exit":
            code = to_int(self.statement_value(node.value)) if node.value is not None else 0
            self.session.global_scope.vars["lastexitcode"] = code
            raise ExitFlow(code)
        if kind == "throw":
            if node.value is None:
                if self.current_error:
                    raise ScriptTerminatingError(self.current_error[-1])
                raise ScriptTerminatingError(
                    make_record("ScriptHalted", "ScriptHalted", "OperationStopped", line=node.line)
                )
            value = self.statement_value(node.value)
            raise ScriptTerminatingError(throw_record(value, node.line))
        raise NotSupportedByLab(kind, node.line)

    def _block_stmt(self, node: ast.BlockStmt, out: Sink) -> None:
        self.exec_block(node.body, out)

    # ---- expressions ----

    def eval(self, node: ast.Expr) -> Any:
        value = self._expr[type(node)](node)
        return None if value is VOID else value

    def eval_raw(self, node: ast.Expr) -> Any:
        return self._expr[type(node)](node)

    def _const(self, node: ast.Const) -> Any:
        return node.value

    def _var(self, node: ast.VarRef) -> Any:
        scope = node.scope
        if scope is None:
            key = node.key
            if key == "null":
                return None
            if key == "true":
                return True
            if key == "false":
                return False
            return self.get_var(key)
        if scope == "env":
            return self.session.env_get(node.name)
        if scope == "variable":
            return self.get_var(node.key)
        if scope == "script":
            return self.script_scope.vars.get(node.key)
        if scope == "global":
            return self.session.global_scope.vars.get(node.key)
        return self.scope.vars.get(node.key)

    def _expandable(self, node: ast.ExpandableString) -> str:
        parts: list[str] = []
        for part in node.parts:
            if isinstance(part, str):
                parts.append(part)
            else:
                parts.append(to_str(self.eval(part)))
        return "".join(parts)

    def _member_name(self, member: str | ast.Expr) -> str:
        return member if isinstance(member, str) else to_str(self.eval(member))

    def _member(self, node: ast.MemberAccess) -> Any:
        name = self._member_name(node.member)
        target = self.eval(node.target)
        if node.static:
            if not isinstance(target, PSType):
                raise NotSupportedByLab(f"static member access on a {type(target).__name__}")
            return mem.get_static(self, target, name)
        return mem.get_member(self, target, name)

    def _method(self, node: ast.MethodCall) -> Any:
        name = self._member_name(node.member)
        target = self.eval(node.target)
        args = [self.eval(arg) for arg in node.args]
        if node.static:
            if not isinstance(target, PSType):
                raise NotSupportedByLab(f"static method call on a {type(target).__name__}")
            return mem.call_static(self, target, name, args)
        return mem.call_method(self, target, name, args)

    def _index(self, node: ast.IndexExpr) -> Any:
        target = self.eval(node.target)
        index = self.eval(node.index)
        return mem.get_index(target, index)

    def _unary(self, node: ast.UnaryOp) -> Any:
        op = node.op
        value = self.eval(node.operand)
        if op in ("-not", "!"):
            return not to_bool(value)
        if op == ",":
            return [value]
        if op == "-":
            return ops.negate(value)
        if op == "+":
            if isinstance(value, int | float) and not isinstance(value, bool):
                return value
            return ops.add(0, value) if not isinstance(value, str) else ops.negate(ops.negate(value))
        if op == "-bnot":
            return ~to_int(value, "System.Int64", -(1 << 63), (1 << 63) - 1)
        if op == "-split":
            return ops.split_op(value, None, False)
        if op == "-join":
            return ops.join_op(value, None)
        raise NotSupportedByLab(f"unary operator {op}")

    def _binary(self, node: ast.BinaryOp) -> Any:
        op = node.op
        if op == "-and":
            return to_bool(self.eval(node.left)) and to_bool(self.eval(node.right))
        if op == "-or":
            return to_bool(self.eval(node.left)) or to_bool(self.eval(node.right))
        left = self.eval(node.left)
        right = self.eval(node.right)
        if op in ("+", "-", "*", "/", "%"):
            return ops.arithmetic(op, left, right)
        if op == "..":
            return ops.range_op(left, right)
        if op == "-f":
            return ops.format_op(left, right)
        if op == "-xor":
            return to_bool(left) != to_bool(right)
        if op in ("-band", "-bor", "-bxor", "-shl", "-shr"):
            return ops.bitwise(op, left, right)
        name, case_sensitive = ops.normalise_operator(op)
        if name in ("-match", "-notmatch") and not isinstance(left, list | tuple):
            match = ops.regex_match(left, right, case_sensitive)
            if match is not None:
                self.set_var("Matches", ops.matches_table(match))
            return (match is not None) if name == "-match" else (match is None)
        if name == "-replace":
            return ops.replace_op(left, right, case_sensitive)
        if name == "-split":
            return ops.split_op(left, right, case_sensitive)
        if name == "-join":
            return ops.join_op(left, right)
        if op == "\\":
            raise NotSupportedByLab("operator '\\'", node.line)
        return ops.comparison(op, left, right)

    def _cast(self, node: ast.CastExpr) -> Any:
        type_name = node.type.name.casefold()
        if type_name == "ordered":
            if not isinstance(node.operand, ast.HashLiteral):
                raise runtime_error(
                    "The ordered attribute can be specified only on a hash literal node.",
                    "OrderedAttributeOnlyOnHashLiteralNode",
                    "ParserError",
                )
            return self.eval(node.operand)
        if type_name in ("pscustomobject", "system.management.automation.pscustomobject") and isinstance(
            node.operand, ast.HashLiteral
        ):
            table = self.eval(node.operand)
            return PSObject(table.items())
        value = self.eval(node.operand)
        return convert_to(value, node.type)

    def _type(self, node: ast.TypeExpr) -> PSType:
        return type_value(node.type)

    def _array_literal(self, node: ast.ArrayLiteral) -> list[Any]:
        return [self.eval(item) for item in node.items]

    def _hash_literal(self, node: ast.HashLiteral) -> Hashtable:
        table = Hashtable()
        for key_node, value_node in node.entries:
            key = self.eval(key_node)
            if key is None:
                raise runtime_error(
                    "A null key is not allowed in a hash literal.", "InvalidNullKey", "InvalidOperation"
                )
            if key in table:
                raise runtime_error(
                    f"Duplicate keys '{to_str(key)}' are not allowed in hash literals.",
                    "DuplicateKeyInHashLiteral",
                    "ParserError",
                )
            table[key] = self.statement_value(value_node)
        return table

    def _script_block(self, node: ast.ScriptBlockExpr) -> ScriptBlock:
        return ScriptBlock(node.block)

    def _sub_expression(self, node: ast.SubExpression) -> Any:
        collected: list[Any] = []
        self.exec_block(node.body, collected)
        return unroll(collected)

    def _array_expression(self, node: ast.ArrayExpression) -> list[Any]:
        collected: list[Any] = []
        self.exec_block(node.body, collected)
        return collected

    def _paren(self, node: ast.ParenExpression) -> Any:
        inner = node.inner
        if type(inner) is ast.Pipeline and not inner.commands and not inner.head_redirects:
            assert inner.head is not None
            return self.eval_raw(inner.head)
        if type(inner) is ast.Assignment:
            self._assignment(inner, DISCARD)
            return self.eval(inner.target)
        collected: list[Any] = []
        self.exec_statement(inner, collected)
        return unroll(collected)

    def _inc_dec(self, node: ast.IncDec) -> Any:
        current = self.eval(node.target)
        updated = ops.add(current if current is not None else 0, node.delta)
        self.assign(node.target, updated)
        return updated if node.prefix else current

    # ---- script blocks ----

    def invoke_with_item(self, block: ScriptBlock, item: Any, args: list[Any] | None = None) -> list[Any]:
        """Run a script block in the current scope with ``$_`` = item (ForEach-Object, Where-Object, .Where())."""
        collected: list[Any] = []
        self.run_with_item(block, item, collected, args)
        return collected

    def run_with_item(self, block: ScriptBlock, item: Any, out: Sink, args: list[Any] | None = None) -> None:
        sb = block.ast
        if sb.params:
            raise NotSupportedByLab("param() in a script block used as a filter")
        body = sb.process if sb.process is not None else sb.end
        with self.local_var("_", item):
            if args is not None:
                self.scope.vars["args"] = args
            try:
                if sb.begin is not None:
                    self.exec_block(sb.begin, out)
                if body is not None:
                    self.exec_block(body, out)
            except ReturnFlow:
                return

    def invoke_scriptblock(self, block: ScriptBlock, args: list[Any], new_scope: bool = True) -> list[Any]:
        """``$sb.Invoke(args)`` / ``& $sb args``: a new child scope, ``$args`` or param() bound positionally."""
        collected: list[Any] = []
        command = ScriptCommand(self, block.ast, "<ScriptBlock>", new_scope=new_scope)
        command.bind([(None, value, True) for value in args])
        command.out = collected
        command.begin()
        command.process_no_input()
        command.end()
        return collected


_PREFERENCE_VARIABLES = frozenset(
    {"erroractionpreference", "warningpreference", "verbosepreference", "debugpreference", "informationpreference"}
)


def _validate_preference(key: str, value: Any) -> str:
    return normalise_action(value, key)


def _invalid_assignment() -> PowerShellError:
    return runtime_error(
        "The assignment expression is not valid. The input to an assignment operator must be an object that is "
        "able to accept assignments, such as a variable or a property.",
        "InvalidLeftHandSide",
        "ParserError",
    )


def _with_position(record: ErrorRecord, statement: ast.Stmt) -> ErrorRecord:
    if record.position_message:
        return record
    line = getattr(statement, "line", None)
    if not line:
        return record
    column = getattr(statement, "column", 1)
    return dataclasses.replace(record, position_message=f"At line:{line} char:{column}")


def throw_record(value: Any, line: int | None = None) -> ErrorRecord:
    """What ``throw <value>`` raises (about_Throw): RuntimeException, FQEID = message, OperationStopped."""
    position = f"At line:{line} char:1" if line else ""
    if isinstance(value, ErrorRecord):
        return value
    if isinstance(value, PSException):
        if value.record is not None:
            return value.record
        return ErrorRecord(
            message=value.message,
            fully_qualified_error_id=value.message,
            category="OperationStopped",
            exception_type=value.type_name,
            target_object=None,
            reason=value.type_name.rsplit(".", 1)[-1],
            position_message=position,
        )
    message = to_str(value) if value is not None else "ScriptHalted"
    return ErrorRecord(
        message=message,
        fully_qualified_error_id=message,
        category="OperationStopped",
        exception_type="System.Management.Automation.RuntimeException",
        target_object=value,
        target_name=message if isinstance(value, str) else "",
        reason="RuntimeException",
        position_message=position,
    )
