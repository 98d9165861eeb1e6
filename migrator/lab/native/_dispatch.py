"""Which executables a lab device has, and the handler each name runs."""

from __future__ import annotations

import re

from migrator.lab.native import certutil, dsregcmd, klist, nltest, powershell, sessions, system
from migrator.lab.native._common import Handler, NativeContext
from migrator.lab.shell import NativeResult


def _cmd(ctx: NativeContext, args: list[str]) -> NativeResult:
    from migrator.lab.native.cmd import quote_argument, run_cmd_arguments

    return run_cmd_arguments(ctx, " ".join(quote_argument(a) for a in args))


COMMANDS: dict[str, Handler] = {
    "certutil": certutil.run,
    "cmd": _cmd,
    "dsregcmd": dsregcmd.run,
    "gpupdate": system.gpupdate,
    "hostname": system.hostname,
    "klist": klist.run,
    "logoff": sessions.logoff,
    "msg": sessions.msg,
    "nltest": nltest.run,
    "powershell": powershell.run,
    "query": sessions.query,
    "quser": sessions.quser,
    "shutdown": sessions.shutdown,
    "whoami": system.whoami,
}

# Folders the executables live in (System32 and its 32-bit/64-bit aliases; PowerShell's own folder).
_SYSTEM_FOLDERS = re.compile(
    r"^(?:[a-z]:)?\\windows\\(?:system32|syswow64|sysnative)(?:\\windowspowershell\\v1\.0)?$",
    re.IGNORECASE,
)


def resolve(command: str) -> str | None:
    """The handler name for ``dsregcmd``, ``dsregcmd.exe`` or ``C:\\Windows\\System32\\dsregcmd.exe``; None if
    the device has no such program."""
    value = command.strip().strip('"').replace("/", "\\")
    folder, _, name = value.rpartition("\\")
    if folder and not _SYSTEM_FOLDERS.match(folder):
        return None
    folded = name.casefold()
    if folded.endswith(".exe"):
        folded = folded[:-4]
    return folded if folded in COMMANDS else None


def dispatch(ctx: NativeContext, name: str, args: list[str]) -> NativeResult:
    return COMMANDS[name](ctx, args)
