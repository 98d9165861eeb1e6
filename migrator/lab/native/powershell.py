"""``powershell.exe``: Windows PowerShell 5.1's command line, running the script through the lab executor.

Parameters (``powershell.exe -?``; prefixes accepted as powershell.exe does): ``-NoProfile``,
``-NonInteractive``, ``-NoLogo``, ``-NoExit``, ``-Sta``/``-Mta``, ``-ExecutionPolicy X``, ``-WindowStyle X``,
``-InputFormat X``, ``-OutputFormat X``, ``-Version X``, then one of ``-EncodedCommand <base64 UTF-16LE>``,
``-Command <text...>`` (the rest of the line; ``-`` reads standard input) or ``-File <path> [args]``. The first
argument that is not a parameter starts an implicit ``-Command``.

Output: the pipeline's objects rendered by Out-Default (``migrator.lab.ps.format_default``), Write-Host and
warnings on stdout; error records on stderr in PowerShell's NormalView. Exit code: 1 after a terminating
error (or, for ``-Command``, when the last pipeline reported errors), else 0; ``-File`` with a missing file:
-196608, as powershell.exe returns for bad arguments.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Protocol, cast

from migrator.lab.native._common import NativeContext, resolve_path, text
from migrator.lab.ps import format_default
from migrator.lab.shell import (
    ErrorRecord,
    InformationRecord,
    InvocationResult,
    NativeResult,
    Principal,
    PSObject,
)

BAD_ARGUMENT_EXIT = -196608  # 0xFFFD0000: powershell.exe's exit code for unusable command-line arguments

_SWITCHES = {  # canonical name → shortest accepted prefix
    "noprofile": "nop",
    "noninteractive": "noni",
    "nologo": "nol",
    "noexit": "noe",
    "sta": "sta",
    "mta": "mta",
}
_VALUED = {
    "executionpolicy": "ex",
    "windowstyle": "w",
    "inputformat": "i",
    "outputformat": "o",
    "version": "v",
    "configurationname": "config",
}
_ALIASES = {"ep": "executionpolicy", "ec": "encodedcommand", "of": "outputformat", "if": "inputformat"}
_PAYLOAD = {"command": "c", "encodedcommand": "e", "file": "f"}


class ScriptRunner(Protocol):
    """What :class:`migrator.lab.executor.LabExecutor` offers for running a script as a principal."""

    def run_script(
        self,
        device_name: str,
        principal: Principal,
        script: str,
        parameters: Mapping[str, Any] | None = None,
        stdin: str | None = None,
    ) -> InvocationResult: ...


def _option(arg: str) -> str | None:
    """The canonical parameter an argument names (``-enc`` → encodedcommand), None when it names none."""
    if len(arg) < 2 or arg[0] not in "-/":
        return None
    name = arg[1:].casefold()
    if name in _ALIASES:
        return _ALIASES[name]
    for table in (_PAYLOAD, _SWITCHES, _VALUED):
        for canonical, shortest in table.items():
            if canonical.startswith(name) and name.startswith(shortest):
                return canonical
    return None


def run(ctx: NativeContext, args: list[str]) -> NativeResult:
    index = 0
    mode: str | None = None
    payload: list[str] = []
    while index < len(args):
        option = _option(args[index])
        if option is None:
            mode, payload = "command", args[index:]  # an implicit -Command: the rest is the command
            break
        if option in _VALUED:
            index += 2
            continue
        if option in _PAYLOAD:
            mode, payload = option, args[index + 1 :]
            break
        index += 1
    if mode is None:
        # No command: powershell.exe reads commands from standard input when it is redirected.
        if not ctx.stdin:
            return NativeResult()
        return _invoke(replace(ctx, stdin=None), ctx.stdin, None, command_mode=True)
    if mode == "encodedcommand":
        try:
            script = base64.b64decode(payload[0], validate=True).decode("utf-16-le")
        except (IndexError, binascii.Error, UnicodeDecodeError, ValueError):
            message = (
                "Cannot process the command because the value specified with -EncodedCommand is not properly "
                "encoded. The value must be Base64 encoded."
            )
            return NativeResult(stderr=text([message]), exit_code=BAD_ARGUMENT_EXIT)
        return _invoke(ctx, script, None, command_mode=True)
    if mode == "command":
        script = " ".join(payload)
        if script.strip() == "-":
            return _invoke(replace(ctx, stdin=None), ctx.stdin or "", None, command_mode=True)
        return _invoke(ctx, script, None, command_mode=True)
    return _run_file(ctx, payload)


def _run_file(ctx: NativeContext, payload: list[str]) -> NativeResult:
    if not payload:
        message = "Missing the argument to -File parameter. Specify a parameter of the required type and try again."
        return NativeResult(stderr=text([message]), exit_code=BAD_ARGUMENT_EXIT)
    path = resolve_path(ctx, payload[0])
    with ctx.device.lock:
        entry = ctx.device.files.get(path.casefold())
        script = entry.content if entry is not None and not entry.is_directory else None
    if script is None:
        message = (
            f"The argument '{payload[0]}' to the -File parameter does not exist. Provide the path to an existing "
            "'.ps1' file as an argument to the -File parameter."
        )
        return NativeResult(stderr=text([message]), exit_code=BAD_ARGUMENT_EXIT)
    return _invoke(ctx, script, _file_parameters(payload[1:]), command_mode=False)


def _file_parameters(args: list[str]) -> dict[str, Any]:
    """``-File x.ps1 -Name value -Switch``: named script parameters (values stay strings, as on Windows)."""
    parameters: dict[str, Any] = {}
    index = 0
    while index < len(args):
        arg = args[index]
        if arg.startswith("-") and len(arg) > 1:
            name, colon, value = arg[1:].partition(":")
            if colon:
                parameters[name] = value
            elif index + 1 < len(args) and not args[index + 1].startswith("-"):
                parameters[name] = args[index + 1]
                index += 1
            else:
                parameters[name] = True
        index += 1
    return parameters


def _invoke(ctx: NativeContext, script: str, parameters: dict[str, Any] | None, command_mode: bool) -> NativeResult:
    runner = cast(ScriptRunner, ctx.lab.executor)
    # A script that reads [Console]::In gets the process's stdin (the WinRM bootstrap pattern).
    result = runner.run_script(ctx.device.name, ctx.principal, script, parameters, stdin=ctx.stdin)
    stdout = [_information_text(item) for item in result.information if getattr(item, "displayed", True)]
    rendered = format_default(result.output)
    stderr = "".join(format_error(record) for record in result.errors)
    if result.terminating_error is not None and result.terminating_error not in result.errors:
        stderr += format_error(result.terminating_error)
    out = text(stdout) + rendered
    out += text([f"WARNING: {w}" for w in result.warnings])
    code = 0
    exit_code = getattr(result, "exit_code", None)  # `exit N` in the script, when the executor reports it
    if isinstance(exit_code, int) and not isinstance(exit_code, bool):
        code = exit_code
    elif result.terminating_error is not None or (command_mode and result.had_errors):
        code = 1
    return NativeResult(stdout=out, stderr=stderr, exit_code=code)


def _information_text(item: Any) -> str:
    if isinstance(item, InformationRecord):
        return item.text
    if isinstance(item, PSObject) and "MessageData" in item:
        return str(item["MessageData"])
    return str(item)


_TYPE_NAMES = {bool: "Boolean", int: "Int32", float: "Double", str: "String", bytes: "Byte[]", list: "Object[]"}


def _target_type(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, PSObject):
        return value.type_names[0].rsplit(".", 1)[-1] if value.type_names else "PSObject"
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def format_error(record: ErrorRecord) -> str:
    """An error as powershell.exe writes it to stderr (Windows PowerShell 5.1 NormalView)."""
    # NormalView prefixes the command's name: the activity, or for a command that could not be found (or that
    # the lab refuses) the name as typed ("Frob-Nicate : The term 'Frob-Nicate' is not recognized ...").
    prefix = record.activity
    if not prefix and record.fully_qualified_error_id in ("CommandNotFoundException", "NotModelledByLab"):
        prefix = record.target_name if record.message.startswith("The term ") else ""
    message = f"{prefix} : {record.message}" if prefix else record.message
    lines = [message]
    if record.position_message:
        lines += record.position_message.splitlines()
    target_name = record.target_name or ("" if record.target_object is None else str(record.target_object))
    reason = record.reason or record.exception_type.rsplit(".", 1)[-1]
    lines.append(
        f"    + CategoryInfo          : {record.category}: ({target_name}:{_target_type(record.target_object)}) "
        f"[{record.activity}], {reason}"
    )
    lines.append(f"    + FullyQualifiedErrorId : {record.fully_qualified_error_id}")
    lines.append(" ")
    return text(lines)
