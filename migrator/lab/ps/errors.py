"""Errors of the lab interpreter: ErrorRecord builders, the exception type tree catch clauses match against,
and the Python exceptions that carry control flow (break/continue/return/exit) through the evaluator.

Error tree (who may catch what)
-------------------------------
- :class:`shell.PowerShellError` carries an ErrorRecord. ``try``/``catch`` in scripts see it.
  - :class:`ScriptTerminatingError` (``throw``, ``-ErrorAction Stop``, ``exit``-less script ends): ends the
    whole script unless a ``catch`` takes it. A plain ``PowerShellError`` is *statement*-terminating (cmdlet
    ``ThrowTerminatingError``, CommandNotFound, a failed method call): outside ``try`` the statement fails,
    the error is written to the error stream and the script goes on, as in PowerShell.
- :class:`NotSupportedByLab` (:class:`migrator.lab.boundary.NotModelledByLab`): something real the lab does not
  model ("… is not modelled by the lab (lab/…)"). Never catchable by script ``catch``
  blocks (a ``catch {}`` must not turn "unknown" into "success"); it ends the invocation.
- :class:`PipelineStopped`: ``Runspace.stop()``; runs ``finally`` blocks, nothing catches it.
- :class:`FlowControl` subclasses: ``break``/``continue``/``return``/``exit`` and Select-Object's early stop.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from migrator.lab.boundary import EXCEPTION_TYPE as NOT_MODELLED_EXCEPTION
from migrator.lab.boundary import NotModelledByLab
from migrator.lab.shell import ErrorCategory, ErrorRecord, PowerShellError

NOT_SUPPORTED_EXCEPTION = NOT_MODELLED_EXCEPTION

# Short name -> full name -> base type, for the exception types scripts catch (``catch [T]`` matches T and
# its subclasses, System.Management.Automation reference / .NET API reference inheritance lists).
_EXCEPTION_BASES: dict[str, str | None] = {
    "System.Exception": None,
    "System.SystemException": "System.Exception",
    "System.ApplicationException": "System.Exception",
    "System.Management.Automation.RuntimeException": "System.SystemException",
    "System.Management.Automation.SessionStateException": "System.Management.Automation.RuntimeException",
    "System.Management.Automation.ItemNotFoundException": "System.Management.Automation.SessionStateException",
    "System.Management.Automation.DriveNotFoundException": "System.Management.Automation.SessionStateException",
    "System.Management.Automation.ProviderNotFoundException": ("System.Management.Automation.SessionStateException"),
    "System.Management.Automation.CommandNotFoundException": "System.Management.Automation.RuntimeException",
    "System.Management.Automation.ParameterBindingException": "System.Management.Automation.RuntimeException",
    "System.Management.Automation.ActionPreferenceStopException": ("System.Management.Automation.RuntimeException"),
    "System.Management.Automation.PipelineStoppedException": "System.Management.Automation.RuntimeException",
    "System.Management.Automation.ParseException": "System.Management.Automation.RuntimeException",
    "System.Management.Automation.MethodException": "System.Management.Automation.RuntimeException",
    "System.Management.Automation.MethodInvocationException": "System.Management.Automation.MethodException",
    "System.Management.Automation.RemoteException": "System.Management.Automation.RuntimeException",
    "System.Management.Automation.ValidationMetadataException": "System.Management.Automation.RuntimeException",
    "System.Management.Automation.PSArgumentException": "System.ArgumentException",
    "System.Management.Automation.PSInvalidOperationException": "System.InvalidOperationException",
    "System.Management.Automation.PSInvalidCastException": "System.InvalidCastException",
    "System.Management.Automation.WildcardPatternException": "System.Management.Automation.RuntimeException",
    "System.Management.Automation.ExtendedTypeSystemException": "System.Management.Automation.RuntimeException",
    "System.Management.Automation.GetValueException": "System.Management.Automation.ExtendedTypeSystemException",
    "System.Management.Automation.GetValueInvocationException": "System.Management.Automation.GetValueException",
    "Microsoft.PowerShell.Commands.WriteErrorException": "System.SystemException",
    "System.ObjectDisposedException": "System.InvalidOperationException",
    "System.Security.Cryptography.CryptographicException": "System.SystemException",
    "System.Security.Cryptography.CryptographicUnexpectedOperationException": (
        "System.Security.Cryptography.CryptographicException"
    ),
    "System.InvalidCastException": "System.SystemException",
    "System.ArgumentException": "System.SystemException",
    "System.ArgumentNullException": "System.ArgumentException",
    "System.ArgumentOutOfRangeException": "System.ArgumentException",
    "System.InvalidOperationException": "System.SystemException",
    "System.NotSupportedException": "System.SystemException",
    "System.NotImplementedException": "System.SystemException",
    "System.FormatException": "System.SystemException",
    "System.ArithmeticException": "System.SystemException",
    "System.DivideByZeroException": "System.ArithmeticException",
    "System.OverflowException": "System.ArithmeticException",
    "System.NullReferenceException": "System.SystemException",
    "System.IndexOutOfRangeException": "System.SystemException",
    "System.UnauthorizedAccessException": "System.SystemException",
    "System.TimeoutException": "System.SystemException",
    "System.IO.IOException": "System.SystemException",
    "System.IO.FileNotFoundException": "System.IO.IOException",
    "System.IO.DirectoryNotFoundException": "System.IO.IOException",
    "System.Security.SecurityException": "System.SystemException",
    "System.Runtime.InteropServices.ExternalException": "System.SystemException",
    "System.Runtime.InteropServices.COMException": "System.Runtime.InteropServices.ExternalException",
    "System.ComponentModel.Win32Exception": "System.Runtime.InteropServices.ExternalException",
    "Microsoft.Management.Infrastructure.CimException": "System.SystemException",
    "System.Net.WebException": "System.InvalidOperationException",
    "System.Text.RegularExpressions.RegexMatchTimeoutException": "System.TimeoutException",
}
_BY_SHORT: dict[str, str] = {}
for _full in _EXCEPTION_BASES:
    _BY_SHORT.setdefault(_full.rsplit(".", 1)[-1].casefold(), _full)


def resolve_exception_type(name: str) -> str | None:
    """Full name of a known exception type from how a script spells it (``[IOException]``, ``[System.X]``)."""
    folded = name.casefold()
    for full in _EXCEPTION_BASES:
        if full.casefold() == folded or full.casefold() == "system." + folded:
            return full
    # PowerShell resolves short names against the namespaces it has loaded; the short-name table stands in.
    return _BY_SHORT.get(folded)


def exception_matches(exception_type: str, catch_type: str) -> bool:
    """Whether ``catch [catch_type]`` takes an error whose exception is ``exception_type`` (or derives from it)."""
    wanted = resolve_exception_type(catch_type) or catch_type
    current: str | None = exception_type
    seen: set[str] = set()
    while current is not None and current not in seen:
        if current.casefold() == wanted.casefold():
            return True
        seen.add(current)
        current = _EXCEPTION_BASES.get(current, "System.Exception" if current != "System.Exception" else None)
    return False


def exception_base_names(exception_type: str) -> list[str]:
    """The exception's type and its bases, most derived first (what ``GetType()`` walks)."""
    names: list[str] = []
    current: str | None = exception_type
    while current is not None and current not in names:
        names.append(current)
        current = _EXCEPTION_BASES.get(current, "System.Exception" if current != "System.Exception" else None)
    return names


# ---- Python exceptions -----------------------------------------------------------------------------------


class ScriptTerminatingError(PowerShellError):
    """``throw`` or an error escalated by ``-ErrorAction Stop``: ends the script unless caught."""


# The lab's one refusal (migrator.lab.boundary): the interpreter's name for it predates the boundary module.
NotSupportedByLab = NotModelledByLab


class PipelineStopped(BaseException):
    """``Runspace.stop()`` was called: unwinds everything (finally blocks run), nothing catches it."""


class FlowControl(BaseException):
    """Base of the non-error control transfers; BaseException so ``except Exception`` never eats them."""


class BreakFlow(FlowControl):
    def __init__(self, label: str | None = None) -> None:
        super().__init__(label)
        self.label = label


class ContinueFlow(FlowControl):
    def __init__(self, label: str | None = None) -> None:
        super().__init__(label)
        self.label = label


class ReturnFlow(FlowControl):
    """``return``: its pipeline output has already been written; only unwinds."""


class ExitFlow(FlowControl):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class StopUpstream(FlowControl):
    """Select-Object -First has what it needs: the commands before it stop (StopUpstreamCommandsException)."""

    def __init__(self, origin: object) -> None:
        super().__init__()
        self.origin = origin


# ---- ErrorRecord builders --------------------------------------------------------------------------------


def short_type(full: str) -> str:
    return full.rsplit(".", 1)[-1]


def make_record(
    message: str,
    error_id: str,
    category: ErrorCategory = "NotSpecified",
    exception_type: str = "System.Management.Automation.RuntimeException",
    target: Any = None,
    activity: str = "",
    line: int | None = None,
    column: int | None = None,
) -> ErrorRecord:
    position = ""
    if line is not None:
        position = f"At line:{line} char:{column or 1}"
    return ErrorRecord(
        message=message,
        fully_qualified_error_id=error_id,
        category=category,
        exception_type=exception_type,
        target_object=target,
        target_name="" if target is None else str(target) if isinstance(target, str | int) else "",
        activity=activity,
        reason=short_type(exception_type),
        position_message=position,
    )


def runtime_error(
    message: str,
    error_id: str,
    category: ErrorCategory = "InvalidOperation",
    exception_type: str = "System.Management.Automation.RuntimeException",
    target: Any = None,
) -> PowerShellError:
    return PowerShellError(make_record(message, error_id, category, exception_type, target))


def command_not_found(name: str, line: int | None = None, column: int | None = None) -> PowerShellError:
    # Windows PowerShell 5.1 text, CommandDiscovery.CommandNotFoundException.
    message = (
        f"The term '{name}' is not recognized as the name of a cmdlet, function, script file, or operable "
        "program. Check the spelling of the name, or if a path was included, verify that the path is correct "
        "and try again."
    )
    return PowerShellError(
        make_record(
            message,
            "CommandNotFoundException",
            "ObjectNotFound",
            "System.Management.Automation.CommandNotFoundException",
            target=name,
            line=line,
            column=column,
        )
    )


def binding_error(message: str, error_id: str, command: str, target: Any = None) -> PowerShellError:
    return PowerShellError(
        make_record(
            message,
            f"{error_id},{command}",
            "InvalidArgument",
            "System.Management.Automation.ParameterBindingException",
            target=target,
            activity=command,
        )
    )


def method_invocation_error(method: str, argc: int, inner: str, inner_type: str = "") -> PowerShellError:
    # PowerShell wraps .NET exceptions from method calls: Exception calling "X" with "N" argument(s): "..."
    message = f'Exception calling "{method}" with "{argc}" argument(s): "{inner}"'
    error_id = short_type(inner_type) if inner_type else "MethodInvocationException"
    return PowerShellError(
        make_record(
            message,
            error_id,
            "NotSpecified",
            "System.Management.Automation.MethodInvocationException",
        )
    )


def invalid_cast(value_text: str, type_name: str, detail: str = "") -> PowerShellError:
    message = f'Cannot convert value "{value_text}" to type "{type_name}".'
    if detail:
        message += f' Error: "{detail}"'
    return PowerShellError(
        make_record(
            message,
            "InvalidCastParseTargetInvocation" if detail else "RuntimeException",
            "InvalidArgument",
            "System.Management.Automation.PSInvalidCastException",
        )
    )


def pipeline_stopped_record() -> ErrorRecord:
    return make_record(
        "The pipeline has been stopped.",
        "PipelineStopped",
        "OperationStopped",
        "System.Management.Automation.PipelineStoppedException",
    )


def parse_error_record(message: str, error_id: str, line: int, column: int, line_text: str) -> ErrorRecord:
    # PowerShell's ParseException message: position, the offending line, a caret, then the error text.
    pointer = " " * max(column - 1, 0) + "~"
    full = f"At line:{line} char:{column}\n+ {line_text}\n+ {pointer}\n{message}"
    return ErrorRecord(
        message=full,
        fully_qualified_error_id=error_id,
        category="ParserError",
        exception_type="System.Management.Automation.ParseException",
        reason="ParseException",
        position_message=f"At line:{line} char:{column}",
    )


class ParseFailure(Exception):
    """The script does not parse; carries the ParseException ErrorRecord."""

    def __init__(self, record: ErrorRecord) -> None:
        super().__init__(record.message)
        self.record = record


_POSITION = re.compile(r"^At line:(\d+) char:(\d+)$")
_TOKEN_ERRORS = ("CommandNotFoundException", "NotModelledByLab")


def with_source_lines(record: ErrorRecord, source: str) -> ErrorRecord:
    """Add the ``+ <line>`` / ``+ ~~~~`` lines PowerShell prints under "At line:L char:C" (about_Parsing,
    InvocationInfo.PositionMessage): the offending line and a tilde under the command (the command name for
    CommandNotFound, up to the next unquoted ``|`` or ``;`` otherwise)."""
    match = _POSITION.match(record.position_message)
    if match is None or record.category == "ParserError":  # a ParseException's message carries them already
        return record
    lines = source.splitlines()
    line, column = int(match.group(1)), int(match.group(2))
    if not 1 <= line <= len(lines):
        return record
    text = lines[line - 1].rstrip()
    start = min(max(column - 1, 0), len(text))
    if record.fully_qualified_error_id in _TOKEN_ERRORS:
        end = start
        while end < len(text) and not text[end].isspace():
            end += 1
    else:
        end = _command_end(text, start)
    width = max(end - start, 1)
    position = f"{record.position_message}\n+ {text}\n+ {' ' * start}{'~' * width}"
    return dataclasses.replace(record, position_message=position)


def _command_end(text: str, start: int) -> int:
    quote = ""
    index = start
    while index < len(text):
        char = text[index]
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "|;":
            break
        index += 1
    return len(text[:index].rstrip())
