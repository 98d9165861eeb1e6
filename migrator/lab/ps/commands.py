"""Commands and pipelines: resolution (function, device cmdlet, lab cmdlet, native), argument evaluation,
redirection and the streaming pipeline itself.

Every command becomes a :class:`Processor` with PowerShell's life cycle: ``begin`` once, ``process`` once per
input object (or ``process_no_input`` once for the first command), ``end`` once. Output flows to the next
processor as it is written, so ``Select-Object -First 1`` can stop the commands before it
(:class:`StopUpstream`), and side effects interleave as they do in PowerShell.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from migrator.lab import windows_names
from migrator.lab.ps import ast
from migrator.lab.ps.binder import (
    NOTHING,
    Arg,
    Binding,
    ParamSpec,
    bind,
    bind_pipeline_item,
    check_mandatory,
    convert_argument,
    input_not_bound,
    is_advanced,
    pipeline_specs,
    specs_from_cmdlet,
    specs_from_function,
)
from migrator.lab.ps.cmdlets import REGISTRY, CmdletHandle
from migrator.lab.ps.errors import (
    NotSupportedByLab,
    PipelineStopped,
    ReturnFlow,
    ScriptTerminatingError,
    StopUpstream,
    command_not_found,
    make_record,
)
from migrator.lab.ps.intrinsics import InvocationInfo
from migrator.lab.ps.session import DISCARD, Scope, Sink, Streams
from migrator.lab.ps.values import PSList, ScriptBlock, enumerate_value, is_enumerable, resolve_type_name, to_str
from migrator.lab.shell import CmdletSpec, ErrorRecord, Hashtable, Host, PowerShellError

if TYPE_CHECKING:
    from migrator.lab.ps.cmdlets import GenericCmdlet, GenericCmdletSpec
    from migrator.lab.ps.interpreter import Interpreter


# Windows PowerShell commands the lab knows exist but does not emulate: using them is NotSupportedByLab, not
# CommandNotFound (which would be a lie about Windows). Device cmdlets of the same name win.
UNSUPPORTED_COMMANDS = frozenset(
    name.casefold()
    for name in (
        "Add-Type",
        "Start-Job",
        "Receive-Job",
        "Wait-Job",
        "Invoke-Command",
        "icm",
        "New-PSSession",
        "Enter-PSSession",
        "Start-Process",
        "saps",
        "Get-Process",
        "Stop-Process",
        "Get-Service",
        "Start-Service",
        "Stop-Service",
        "Restart-Service",
        "Set-Service",
        "Get-Content",
        "gc",
        "cat",
        "type",
        "Set-Content",
        "Add-Content",
        "Out-File",
        "Get-ChildItem",
        "gci",
        "dir",
        "ls",
        "New-Item",
        "ni",
        "Remove-Item",
        "rm",
        "del",
        "Copy-Item",
        "Move-Item",
        "Rename-Item",
        "Get-Item",
        "gi",
        "Get-ItemProperty",
        "gp",
        "Set-ItemProperty",
        "sp",
        "New-ItemProperty",
        "Remove-ItemProperty",
        "Get-WmiObject",
        "gwmi",
        "Get-CimInstance",
        "Invoke-CimMethod",
        "Test-Connection",
        "Resolve-DnsName",
        "Get-Credential",
        "Read-Host",
        "Set-StrictMode",
        "Get-Help",
        "Export-Csv",
        "Import-Csv",
        "ConvertTo-Csv",
        "ConvertFrom-Csv",
        "Format-Table",
        "ft",
        "Format-List",
        "fl",
        "Format-Wide",
        "Out-Host",
        "Out-Default",
        "Tee-Object",
        "Get-Member",
        "gm",
        "Compare-Object",
        "Get-Random",
        "Get-Command",
        "gcm",
        "Import-Module",
        "ipmo",
        "Get-Module",
        "Remove-Module",
        "Get-Location",
        "Set-Location",
        "cd",
        "Push-Location",
        "Pop-Location",
        "Invoke-WebRequest",
        "Invoke-RestMethod",
        "Get-Acl",
        "Set-Acl",
        "Get-EventLog",
        "Get-WinEvent",
        "Get-ScheduledTask",
        "Register-ScheduledTask",
        "Unregister-ScheduledTask",
        "Start-ScheduledTask",
        "Get-ScheduledTaskInfo",
        "New-ScheduledTaskAction",
        "New-ScheduledTaskPrincipal",
        "New-ScheduledTaskTrigger",
        "Restart-Computer",
        "Stop-Computer",
        "Get-Host",
        "Clear-Host",
        "Write-Progress",
        "Get-Unique",
        "Get-PSDrive",
        "New-PSDrive",
        "Get-HotFix",
        "Get-LocalUser",
        "Get-LocalGroupMember",
        "Test-ComputerSecureChannel",
        "Get-ADComputer",
        "Select-String",
        "sls",
        "Update-TypeData",
        "Invoke-Item",
        "Export-Clixml",
        "Import-Clixml",
        "ConvertTo-Xml",
        "Get-Culture",
        "Get-TimeZone",
        "Set-Date",
        "Trace-Command",
        "Measure-Command",
        "Wait-Process",
    )
)


class Processor:
    """One command in a pipeline."""

    out: Sink
    name: str = ""

    def begin(self) -> None:
        return None

    def process(self, item: Any) -> None:
        raise NotImplementedError

    def process_no_input(self) -> None:
        raise NotImplementedError

    def end(self) -> None:
        return None

    @property
    def origin(self) -> Processor:
        return self


class Downstream:
    """The sink that feeds the next command of a pipeline, object by object."""

    __slots__ = ("interp", "target")

    def __init__(self, interp: Interpreter, target: Processor) -> None:
        self.interp = interp
        self.target = target

    def append(self, item: Any, /) -> None:
        if self.interp.session.stopping:
            raise PipelineStopped()
        self.target.process(item)


# ---- the cmdlet context ----------------------------------------------------------------------------------


class Context:
    """:class:`shell.CmdletContext` for device cmdlets, plus what the lab's own cmdlets need."""

    def __init__(self, interp: Interpreter, command_name: str, binding: Binding, line: int, column: int) -> None:
        self.interp = interp
        self._name = command_name
        self.common = binding.common
        self.line = line
        self.column = column
        self.out: Sink = DISCARD
        self.processor: Processor | None = None
        self.error_variable: list[Any] | None = None
        self.warning_variable: list[Any] | None = None
        if self.common.error_variable:
            self.error_variable = _variable_list(interp, self.common.error_variable)
        if self.common.warning_variable:
            self.warning_variable = _variable_list(interp, self.common.warning_variable)

    @property
    def host(self) -> Host:
        return self.interp.host

    @property
    def command_name(self) -> str:
        return self._name

    def _fill(self, record: ErrorRecord) -> ErrorRecord:
        changes: dict[str, Any] = {}
        if not record.activity:
            changes["activity"] = self._name
        if not record.position_message:
            changes["position_message"] = f"At line:{self.line} char:{self.column}"
        if not record.reason:
            changes["reason"] = record.exception_type.rsplit(".", 1)[-1]
        return dataclasses.replace(record, **changes) if changes else record

    def write_error(self, record: ErrorRecord) -> None:
        self.interp.write_error(self._fill(record), self.common.error_action, self.error_variable)

    def terminating(self, record: ErrorRecord) -> PowerShellError:
        return PowerShellError(self._fill(record))

    def write_warning(self, message: str) -> None:
        if self.warning_variable is not None:
            self.warning_variable.append(message)
        self.interp.write_warning(message, self.common.warning_action)

    def write_verbose(self, message: str) -> None:
        self.interp.write_verbose(message, self.common.verbose)

    def write_debug(self, message: str) -> None:
        self.interp.write_debug(message, self.common.debug)

    def write_information(self, message: Any) -> None:
        # Device cmdlets use this for host text (Write-Host's channel): shown unless the caller silenced it.
        action = self.common.information_action or "Continue"
        self.interp.write_information(message, action, self._name, ("PSHOST",))

    def write_output(self, item: Any) -> None:
        self.out.append(item)


def _variable_list(interp: Interpreter, spec: str) -> list[Any]:
    append = spec.startswith("+")
    name = spec.lstrip("+")
    existing = interp.get_var(name.casefold()) if append else None
    target = existing if isinstance(existing, list) else PSList([], "System.Collections.ArrayList")
    interp.set_var(name, target)
    return target


# ---- processors ------------------------------------------------------------------------------------------


class DeviceCmdlet(Processor):
    """A cmdlet from ``host.cmdlets()``: its func runs once, or once per pipeline object."""

    def __init__(self, interp: Interpreter, spec: CmdletSpec, args: Sequence[Arg], line: int, column: int) -> None:
        self.interp = interp
        self.spec = spec
        self.name = spec.name
        self.specs = specs_from_cmdlet(spec.params)
        self.binding = bind(self.specs, args, spec.name)
        self.context = Context(interp, spec.name, self.binding, line, column)
        self.pipeline = pipeline_specs(self.specs)

    def _call(self, values: dict[str, Any]) -> None:
        check_mandatory(self.specs, values, self.spec.name)
        context = self.context
        context.out = self.out
        try:
            for item in self.spec.func(context, values):
                self.out.append(item)
        except ScriptTerminatingError:
            raise
        except PowerShellError as error:
            raise context.terminating(error.record) from None

    def process_no_input(self) -> None:
        self._call(dict(self.binding.values))

    def process(self, item: Any) -> None:
        if not self.pipeline:
            self.context.write_error(input_not_bound(self.spec.name, item).record)
            return
        bound = bind_pipeline_item(self.specs, item, self.binding.values, self.spec.name)
        if bound is None:
            self.context.write_error(input_not_bound(self.spec.name, item).record)
            return
        self._call({**self.binding.values, **bound})


class LabCmdlet(Processor):
    """One of the interpreter's generic cmdlets (Where-Object, ConvertTo-Json, ...)."""

    def __init__(
        self, interp: Interpreter, spec: GenericCmdletSpec, args: Sequence[Arg], line: int, column: int
    ) -> None:
        self.interp = interp
        self.spec = spec
        self.name = spec.name
        self.specs = list(spec.params)
        self.binding = bind(self.specs, args, spec.error_name)
        self.context = Context(interp, spec.name, self.binding, line, column)
        self.context.processor = self
        self.instance: GenericCmdlet | None = None

    def begin(self) -> None:
        self.context.out = self.out
        self.instance = self.spec.factory(self.context, dict(self.binding.values))
        self.instance.begin()

    def process_no_input(self) -> None:
        assert self.instance is not None
        check_mandatory(self.specs, self.binding.values, self.spec.error_name)
        self.instance.process(NOTHING)

    def process(self, item: Any) -> None:
        assert self.instance is not None
        pipeline = [s for s in self.specs if s.from_pipeline]
        if not pipeline:
            self.context.write_error(input_not_bound(self.spec.error_name, item).record)
            return
        self.instance.process(item)

    def end(self) -> None:
        assert self.instance is not None
        self.instance.end()


class ScriptCommand(Processor):
    """A function, filter, script block (``& {}``/``. {}``) or the invoked script itself."""

    def __init__(
        self,
        interp: Interpreter,
        block: ast.ScriptBlockAst,
        name: str,
        *,
        new_scope: bool = True,
        new_script_scope: bool = False,
        parent_scope: Any = None,
    ) -> None:
        self.interp = interp
        self.block = block
        self.name = name
        self.advanced = is_advanced(block)
        self.specs: list[ParamSpec] = specs_from_function(block)
        parent = parent_scope if parent_scope is not None else interp.scope
        self.scope = Scope(parent) if new_scope else interp.scope
        self.script_scope = self.scope if new_script_scope else None
        self.binding = Binding()
        self.collected: list[Any] = []
        self.out: Sink = DISCARD
        self.pipeline = pipeline_specs(self.specs)

    def bind(self, args: Sequence[Arg] | Sequence[tuple[str | None, Any, bool]]) -> None:
        converted = [a if isinstance(a, Arg) else Arg(a[0], a[1] if a[2] else NOTHING) for a in args]
        has_params = self.block.params is not None
        self.binding = bind(
            self.specs,
            converted,
            self.name,
            advanced=self.advanced,
            common=self.advanced,
        )
        if not has_params and self.binding.values:
            self.binding.leftovers = list(self.binding.values.values()) + self.binding.leftovers

    @contextmanager
    def _entered(self) -> Iterator[None]:
        stack = self.interp.function_stack
        named = not self.name.startswith("<")
        if named:
            stack.append(self.name)
        try:
            with self.interp.in_scope(self.scope, self.script_scope):
                yield
        finally:
            if named:
                stack.pop()

    def begin(self) -> None:
        interp = self.interp
        with self._entered():
            vars_ = self.scope.vars
            vars_["args"] = list(self.binding.leftovers)
            bound = Hashtable(self.binding.values.items())
            vars_["psboundparameters"] = bound
            vars_["myinvocation"] = InvocationInfo(self.name, bound, list(self.binding.leftovers))
            common = self.binding.common
            if common.error_action:
                vars_["erroractionpreference"] = common.error_action
            if common.warning_action:
                vars_["warningpreference"] = common.warning_action
            if common.information_action:
                vars_["informationpreference"] = common.information_action
            if common.verbose is not None:
                vars_["verbosepreference"] = "Continue" if common.verbose else "SilentlyContinue"
            if common.debug is not None:
                vars_["debugpreference"] = "Continue" if common.debug else "SilentlyContinue"
            if common.error_variable or common.out_variable or common.warning_variable:
                raise NotSupportedByLab("-ErrorVariable/-OutVariable/-WarningVariable on a script function")
            if self.advanced:
                vars_["pscmdlet"] = CmdletHandle(interp, self.name, bool(common.what_if))
            for spec in self.specs:
                self._set_parameter(spec)
            if self.block.begin is not None:
                self._run(self.block.begin)

    def _set_parameter(self, spec: ParamSpec) -> None:
        interp = self.interp
        vars_ = self.scope.vars
        key = spec.name.casefold()
        definition = spec.definition
        assert definition is not None
        if spec.name in self.binding.values:
            value = self.binding.values[spec.name]
        elif definition.default is not None:
            value = interp.eval(definition.default)
            if definition.type is not None:
                value = convert_argument(spec, value, self.name) if not spec.mandatory else value
        elif spec.switch:
            value = False
        elif definition.type is not None and not definition.type.array:
            value = _type_default(definition.type)
        else:
            value = None
        if definition.type is not None and not spec.switch:
            if self.scope.constraints is None:
                self.scope.constraints = {}
            self.scope.constraints[key] = definition.type
        vars_[key] = value

    def _run(self, block: ast.Block, item: Any = NOTHING) -> None:
        interp = self.interp
        try:
            if item is NOTHING:
                interp.exec_block(block, self.out)
            else:
                with interp.local_var("_", item):
                    interp.exec_block(block, self.out)
        except ReturnFlow:
            return

    def process_no_input(self) -> None:
        check_mandatory(self.specs, self.binding.values, self.name)
        if self.block.process is not None:
            with self._entered():
                self.scope.vars["input"] = []
                self._run(self.block.process, None)

    def process(self, item: Any) -> None:
        if self.block.process is None:
            self.collected.append(item)
            return
        with self._entered():
            if self.pipeline:
                bound = bind_pipeline_item(self.specs, item, self.binding.values, self.name)
                if bound is None:
                    self.interp.write_error(input_not_bound(self.name, item).record)
                    return
                for name, value in bound.items():
                    self.scope.vars[name.casefold()] = value
                check_mandatory(self.specs, {**self.binding.values, **bound}, self.name)
            else:
                check_mandatory(self.specs, self.binding.values, self.name)
            # In a process block $input enumerates just the current object (about_Automatic_Variables).
            self.scope.vars["input"] = [item]
            self._run(self.block.process, item)

    def end(self) -> None:
        if self.block.end is None:
            return
        with self._entered():
            if self.block.process is None and self.pipeline and self.collected:
                for item in self.collected:
                    bound = bind_pipeline_item(self.specs, item, self.binding.values, self.name)
                    if bound is not None:
                        for name, value in bound.items():
                            self.scope.vars[name.casefold()] = value
            self.scope.vars["input"] = list(self.collected)
            self._run(self.block.end)


def _type_default(type_name: ast.TypeName) -> Any:
    # An unbound typed parameter holds its type's default (LanguagePrimitives.ConvertTo($null, T)).
    full = resolve_type_name(type_name.name)
    defaults: dict[str | None, Any] = {
        "System.String": "",
        "System.Int32": 0,
        "System.Int64": 0,
        "System.Double": 0.0,
        "System.Boolean": False,
    }
    return defaults.get(full)


class NativeCommand(Processor):
    """An executable run through ``host.run_native``: text in, lines out, stderr as NativeCommandError."""

    def __init__(self, interp: Interpreter, name: str, args: list[str], line: int, column: int) -> None:
        self.interp = interp
        self.name = name
        self.args = args
        self.line = line
        self.column = column
        self.input: list[str] = []
        self.received_input = False

    def process(self, item: Any) -> None:
        self.received_input = True
        self.input.append(to_str(item))

    def process_no_input(self) -> None:
        return None

    def end(self) -> None:
        interp = self.interp
        stdin = "".join(line + "\r\n" for line in self.input) if self.received_input else None
        result = interp.host.run_native(self.name, list(self.args), stdin)
        interp.session.global_scope.vars["lastexitcode"] = result.exit_code
        if result.exit_code != 0:
            interp.session.native_failed = True
        for line in _lines(result.stdout):
            self.out.append(line)
        first = True
        for line in _lines(result.stderr):
            # Windows PowerShell 5.1 (remoting, or 2>&1) wraps each stderr line in an ErrorRecord whose
            # exception is a RemoteException; the first is NativeCommandError, the rest NativeCommandErrorMessage.
            record = make_record(
                line,
                "NativeCommandError" if first else "NativeCommandErrorMessage",
                "NotSpecified",
                "System.Management.Automation.RemoteException",
                target=line,
                activity=self.name,
                line=self.line,
                column=self.column,
            )
            first = False
            interp.write_error(record)


def _lines(text: str) -> list[str]:
    if not text:
        return []
    lines = re.split(r"\r\n|\n|\r", text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


class Redirected(Processor):
    """A processor whose streams are redirected (``2>&1``, ``2>$null``, ``>$null``, ``*>$null``)."""

    def __init__(self, interp: Interpreter, inner: Processor, redirects: Sequence[ast.Redirect]) -> None:
        self.interp = interp
        self.inner = inner
        self.redirects = redirects
        self.name = inner.name
        self.discard_output = any(r.merge_to is None and r.stream in ("1", "*") for r in redirects)

    @property
    def origin(self) -> Processor:
        return self.inner.origin

    @contextmanager
    def _swapped(self) -> Iterator[None]:
        interp = self.interp
        saved = interp.streams
        streams = Streams(saved.errors, saved.warnings, saved.verbose, saved.information, saved.debug)
        for redirect in self.redirects:
            if redirect.merge_to == "1" and redirect.stream == "2":
                streams.errors = self.out
            elif redirect.merge_to is None:
                if redirect.stream in ("2", "*"):
                    streams.errors = DISCARD
                if redirect.stream in ("3", "*"):
                    streams.warnings = DISCARD
                if redirect.stream in ("4", "*"):
                    streams.verbose = DISCARD
                if redirect.stream in ("5", "*"):
                    streams.debug = DISCARD
                if redirect.stream in ("6", "*"):
                    streams.information = DISCARD
        interp.streams = streams
        try:
            yield
        finally:
            interp.streams = saved

    def _link(self) -> None:
        self.inner.out = DISCARD if self.discard_output else self.out

    def begin(self) -> None:
        self._link()
        with self._swapped():
            self.inner.begin()

    def process(self, item: Any) -> None:
        with self._swapped():
            self.inner.process(item)

    def process_no_input(self) -> None:
        with self._swapped():
            self.inner.process_no_input()

    def end(self) -> None:
        with self._swapped():
            self.inner.end()


# ---- the runner ------------------------------------------------------------------------------------------


class CommandRunner:
    def __init__(self, interp: Interpreter) -> None:
        self.interp = interp

    def run_pipeline(self, node: ast.Pipeline, out: Sink) -> None:
        processors = [self.build(command) for command in node.commands]
        self.run_processors(processors, out, head=node.head, head_redirects=node.head_redirects)

    def run_processors(
        self,
        processors: list[Processor],
        out: Sink,
        head: ast.Expr | None = None,
        head_redirects: Sequence[ast.Redirect] = (),
        items: list[Any] | None = None,
    ) -> None:
        interp = self.interp
        for index, processor in enumerate(processors):
            processor.out = Downstream(interp, processors[index + 1]) if index + 1 < len(processors) else out
        try:
            for processor in processors:
                processor.begin()
            first = processors[0]
            if head is not None:
                value = interp.eval(head)
                for item in enumerate_value(value):
                    interp.check_stop()
                    first.process(item)
            elif items is not None:
                for item in items:
                    interp.check_stop()
                    first.process(item)
            else:
                first.process_no_input()
            for processor in processors:
                processor.end()
        except StopUpstream as stop:
            origins = [p.origin for p in processors]
            if stop.origin not in origins:
                raise
            for processor in processors[origins.index(stop.origin) :]:
                processor.end()

    @contextmanager
    def redirected(self, redirects: Sequence[ast.Redirect], out: Sink) -> Iterator[Sink]:
        interp = self.interp
        saved = interp.streams
        streams = Streams(saved.errors, saved.warnings, saved.verbose, saved.information, saved.debug)
        target = out
        for redirect in redirects:
            if redirect.merge_to == "1":
                streams.errors = out
            elif redirect.stream in ("1", "*"):
                target = DISCARD
            if redirect.merge_to is None and redirect.stream in ("2", "*"):
                streams.errors = DISCARD
        interp.streams = streams
        try:
            yield target
        finally:
            interp.streams = saved

    # ---- resolution ----

    def build(self, command: ast.Command) -> Processor:
        interp = self.interp
        args = self.evaluate_arguments(command)
        name = command.name
        processor: Processor
        if isinstance(name, ast.Expr):
            target = interp.eval(name)
            if isinstance(target, ScriptBlock):
                dot = command.invocation == "."
                script = ScriptCommand(interp, target.ast, "<ScriptBlock>", new_scope=not dot)
                script.bind(args)
                processor = script
            elif isinstance(target, str):
                processor = self.resolve(target, args, command)
            else:
                raise NotSupportedByLab(f"invoking a {type(target).__name__} with '{command.invocation}'", command.line)
        else:
            if command.invocation == "." and name.casefold().endswith(".ps1"):
                raise NotSupportedByLab(f"dot-sourcing '{name}' (the lab has no file system)", command.line)
            processor = self.resolve(name, args, command)
        if command.redirects:
            processor = Redirected(interp, processor, command.redirects)
        return processor

    def resolve(self, name: str, args: list[Arg], command: ast.Command) -> Processor:
        interp = self.interp
        folded = name.casefold()
        function = interp.lookup_function(name)
        if function is not None:
            script = ScriptCommand(interp, function.block, function.name)
            script.bind(args)
            return script
        device = interp.host.cmdlets().get(folded)
        if device is not None:
            return DeviceCmdlet(interp, device, args, command.line, command.column)
        generic = REGISTRY.get(folded)
        if generic is not None:
            return LabCmdlet(interp, generic, args, command.line, command.column)
        if folded in UNSUPPORTED_COMMANDS or windows_names.is_inbox_command(name):
            # Real on Windows PowerShell 5.1, not modelled here: the boundary's refusal, never CommandNotFound.
            raise NotSupportedByLab(
                f"The term '{name}'", command.line, module="lab/cmdlets", column=command.column, target=name
            )
        if folded.endswith(".ps1"):
            raise NotSupportedByLab(f"running script file '{name}' (the lab has no file system)", command.line)
        if interp.host.has_native(name):
            return NativeCommand(interp, name, native_arguments(args), command.line, command.column)
        if windows_names.is_windows_executable(name):
            raise NotSupportedByLab(
                f"The term '{name}'", command.line, module="lab/native", column=command.column, target=name
            )
        raise command_not_found(name, command.line, command.column)

    def evaluate_arguments(self, command: ast.Command) -> list[Arg]:
        interp = self.interp
        args: list[Arg] = []
        for element in command.elements:
            if isinstance(element, ast.CmdParam):
                value = interp.eval(element.value) if element.value is not None else NOTHING
                args.append(Arg(element.name, value, element.text))
                continue
            value_node = element.value
            if isinstance(value_node, ast.VarRef) and value_node.splat:
                args.extend(splat(interp.eval(ast.VarRef(value_node.name, value_node.scope))))
                continue
            args.append(Arg(None, interp.eval(value_node)))
        return args


def splat(value: Any) -> list[Arg]:
    """``@params``: a hashtable becomes named arguments, an array positional ones (about_Splatting)."""
    if isinstance(value, Hashtable):
        return [Arg(to_str(key), item, f"-{to_str(key)}") for key, item in value.items()]
    if is_enumerable(value):
        return [Arg(None, item) for item in value]
    if value is None:
        return []
    return [Arg(None, value)]


def native_arguments(args: Sequence[Arg]) -> list[str]:
    """Argument mode to argv: arrays splat into separate arguments; Windows PowerShell 5.1 drops empty strings
    and $null (about_Parsing, "Passing arguments to native commands")."""
    result: list[str] = []
    for arg in args:
        if arg.name is not None:
            text = arg.text or f"-{arg.name}"
            if arg.value is NOTHING:
                result.append(text)
            else:
                result.append(f"{text}:{' '.join(to_str(v) for v in enumerate_value(arg.value))}")
            continue
        for item in enumerate_value(arg.value):
            if item is None:
                continue
            text = to_str(item)
            if text == "":
                continue
            result.append(text)
    return result
