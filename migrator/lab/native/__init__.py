"""The native Windows commands of a lab device, as the migration runs them.

Theory of operation
-------------------
A native command runs on one device as one :class:`~migrator.lab.shell.Principal` and answers from the lab's
state, in the text layout the real tool prints (samples in ``reference/outputs/``):

- ``dsregcmd /status``: join state, and the *caller's* Hello container, PRT and Kerberos state;
- ``certutil -DeleteHelloContainer``: :meth:`Lab.delete_hello_container` (the caller's own container only);
- ``nltest /dsgetdc:`` / ``/sc_verify:``: DC line of sight; ``klist`` (``tgt``, ``purge``, ``get``,
  ``cloud_debug``): the caller's logon session tickets; ``quser`` / ``query user``: sessions;
- ``gpupdate``, ``msg``, ``logoff``, ``shutdown``, ``whoami``, ``hostname``;
- ``cmd`` (the WinRS ``cmd`` shell, task actions) and ``powershell.exe`` (through ``lab.executor``).

Who runs a command matters as on Windows: the WinRM admin is a network logon with no Hello container, no PRT
and no Kerberos ticket cache; SYSTEM is the computer; a user in their session sees their own state
(windows-facts §1, §5, §6, §8). Every run is recorded with :meth:`Lab.record_command`. Output uses the CRLF line
ends of a Windows console program.

Entry points: :func:`has_native` / :func:`run_native` for the PowerShell interpreter (``& dsregcmd /status``,
arguments already split), :func:`run_command_line` for cmd.exe command lines.
"""

from __future__ import annotations

from migrator.lab.model import Device
from migrator.lab.native import _dispatch
from migrator.lab.native._common import NativeContext, environment, to_crlf
from migrator.lab.native.cmd import (
    NOT_RECOGNIZED_EXIT,
    command_line_to_argv,
    not_found,
    quote_argument,
    run_cmd_arguments,
    run_line,
)
from migrator.lab.shell import NativeResult, Principal
from migrator.lab.windows import Lab

__all__ = [
    "NOT_RECOGNIZED_EXIT",
    "command_line_to_argv",
    "environment",
    "has_native",
    "quote_argument",
    "run_command_line",
    "run_native",
]


def has_native(command: str) -> bool:
    """True when the device has this executable (by name, with or without ``.exe``, or by System32 path)."""
    return _dispatch.resolve(command) is not None


def run_native(
    lab: Lab, device: Device, principal: Principal, command: str, args: list[str], stdin: str | None = None
) -> NativeResult:
    """Run an executable with arguments already split (PowerShell's ``& dsregcmd /status``)."""
    lab.record_command(device, principal, "native", " ".join([command, *(quote_argument(a) for a in args)]))
    name = _dispatch.resolve(command)
    if name is None:
        # The interpreter checks has_native first; a direct caller gets cmd.exe's answer.
        return _console(not_found(command))
    ctx = NativeContext(lab, device, principal, stdin)
    if name == _dispatch.CMD:
        return _console(run_cmd_arguments(ctx, " ".join(quote_argument(a) for a in args)))
    return _console(_dispatch.dispatch(ctx, name, list(args)))


def run_command_line(
    lab: Lab, device: Device, principal: Principal, command_line: str, stdin: str | None = None
) -> NativeResult:
    """Run a command line as cmd.exe (``cmd /c <line>``) does: operators, redirection, built-ins, programs.

    ``stdin`` is the process's standard input (WinRS Send): the first command of the line reads it."""
    lab.record_command(device, principal, "native", command_line)
    return _console(run_line(NativeContext(lab, device, principal, stdin), command_line))


def _console(result: NativeResult) -> NativeResult:
    return NativeResult(to_crlf(result.stdout), to_crlf(result.stderr), result.exit_code)
