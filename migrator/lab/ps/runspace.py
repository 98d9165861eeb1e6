"""``shell.Runspace`` on the lab interpreter: what the wire server's PSRP pipelines run against.

A :class:`PSRunspace` keeps one session (global scope, functions, ``$Error``, ``$env:`` changes) across
``invoke`` calls, as a PowerShell runspace does. ``invoke`` never raises for script problems: parse errors,
terminating errors, unsupported constructs and ``stop()`` all end up in ``InvocationResult``. Values leaving
the interpreter are normalised to the contract's value types (``to_wire``).
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from migrator.lab.ps.ast import Command as CommandNode
from migrator.lab.ps.binder import Arg
from migrator.lab.ps.commands import Processor, ScriptCommand
from migrator.lab.ps.errors import (
    BreakFlow,
    ContinueFlow,
    ExitFlow,
    NotSupportedByLab,
    ParseFailure,
    PipelineStopped,
    ReturnFlow,
    StopUpstream,
    pipeline_stopped_record,
    with_source_lines,
)
from migrator.lab.ps.interpreter import Interpreter
from migrator.lab.ps.parser import parse_script
from migrator.lab.ps.session import Scope, Session, Streams
from migrator.lab.ps.values import USING_NAMESPACES, as_utc, format_timespan, to_str
from migrator.lab.shell import (
    Command,
    ErrorRecord,
    Hashtable,
    Host,
    InformationRecord,
    InvocationResult,
    PowerShellError,
    PSObject,
)


class PSRunspace:
    """One runspace on a device, bound to the host (principal, clock, device cmdlets, natives)."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.session = Session(host)
        self.interpreter = Interpreter(self.session)
        self._lock = threading.Lock()
        self._closed = False

    def invoke(self, commands: list[Command], input: list[Any] | None = None) -> InvocationResult:
        result = InvocationResult()
        if not commands:
            return result
        with self._lock:
            if self._closed:
                raise RuntimeError("the runspace is closed")
            self.session.stopping = False
            interp = self.interpreter
            interp.streams = Streams(result.errors, result.warnings, result.verbose, result.information, result.debug)
            interp.scope = self.session.global_scope
            interp.script_scope = self.session.global_scope
            interp.try_depth = 0
            output: list[Any] = []
            namespaces = USING_NAMESPACES.set(())
            try:
                processors = [self._processor(command) for command in commands]
                interp.commands.run_processors(processors, output, items=list(input) if input is not None else None)
            except ParseFailure as failure:
                self._terminate(result, failure.record)
            except NotSupportedByLab as unsupported:
                self._terminate(result, unsupported.record)
            except PowerShellError as error:
                interp.record_error(error.record)
                self._terminate(result, error.record)
            except PipelineStopped:
                self._terminate(result, pipeline_stopped_record())
            except ExitFlow as flow:
                # `exit N` ends the script quietly; powershell.exe passes N on as its exit code.
                result.exit_code = flow.code
            except (ReturnFlow, BreakFlow, ContinueFlow, StopUpstream):
                # a stray return/break ends the script quietly, as in PowerShell.
                pass
            finally:
                USING_NAMESPACES.reset(namespaces)
                interp.scope = self.session.global_scope
                interp.script_scope = self.session.global_scope
                self.session.stopping = False
            result.output = [to_wire(item) for item in output]
            terminating = result.terminating_error
            source = commands[0].text if commands[0].is_script else ""
            wired = [(record, _wire_record(with_source_lines(record, source))) for record in result.errors]
            result.errors[:] = [after for _, after in wired]
            result.information[:] = [to_wire(item) for item in result.information]
            if terminating is not None:
                # The same object in both places: the wire server sends a terminating record once.
                result.terminating_error = next(
                    (after for before, after in wired if before is terminating),
                    _wire_record(with_source_lines(terminating, source)),
                )
            result.had_errors = bool(result.errors) or result.terminating_error is not None
            return result

    def _terminate(self, result: InvocationResult, record: ErrorRecord) -> None:
        result.terminating_error = record
        result.errors.append(record)

    def _processor(self, command: Command) -> Processor:
        interp = self.interpreter
        args = [Arg(name, value, f"-{name}" if name else "") for name, value in command.parameters]
        if command.is_script:
            block = parse_script(command.text)
            if block.using_namespaces:
                USING_NAMESPACES.set(USING_NAMESPACES.get() + block.using_namespaces)
            global_scope = self.session.global_scope
            if command.use_local_scope:
                script = ScriptCommand(
                    interp, block, "<Script>", new_scope=True, new_script_scope=True, parent_scope=global_scope
                )
            else:
                script = ScriptCommand(interp, block, "<Script>", new_scope=False)
                script.scope = global_scope
            script.bind(args)
            return script
        node = CommandNode(command.text, None, (), (), 1, 1, command.text)
        return interp.commands.resolve(command.text, args, node)

    def stop(self) -> None:
        """PSRP Signal(stop): the running pipeline ends with a PipelineStoppedException (thread-safe)."""
        self.session.stopping = True

    def close(self) -> None:
        self.session.stopping = True
        with self._lock:
            self._closed = True
            self.session.global_scope = Scope(None)


def run_script(
    host: Host,
    script: str,
    parameters: Mapping[str, Any] | None = None,
    input: list[Any] | None = None,
) -> InvocationResult:
    """Run one script in a fresh runspace (``add_script(script)`` + ``add_parameters(parameters)``)."""
    runspace = PSRunspace(host)
    try:
        command = Command(text=script, parameters=tuple((parameters or {}).items()))
        return runspace.invoke([command], input)
    finally:
        runspace.close()


def to_wire(value: Any) -> Any:
    """Normalise to the contract's value types (shell.py): lab-only objects become their string form."""
    if value is None or isinstance(value, bool | int | float | str | bytes):
        return value
    if isinstance(value, bytearray):
        return bytes(value)
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, list | tuple):
        return [to_wire(item) for item in value]
    if isinstance(value, Hashtable):
        return Hashtable((key, to_wire(item)) for key, item in value.items())
    if isinstance(value, PSObject):
        return PSObject(
            ((key, to_wire(item)) for key, item in value.properties.items()),
            value.type_names,
            value.to_string,
            value.view_data,
        )
    if isinstance(value, ErrorRecord):
        return _wire_record(value)
    if isinstance(value, InformationRecord):
        return dataclasses.replace(value, message_data=to_wire(value.message_data))
    if isinstance(value, timedelta):
        return format_timespan(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    return to_str(value)


def _wire_record(record: ErrorRecord) -> ErrorRecord:
    target = record.target_object
    wired = to_wire(target) if target is not None else None
    if wired is target:
        return record
    return dataclasses.replace(record, target_object=wired)
