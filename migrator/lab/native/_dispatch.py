"""Which executables a lab device has, and the handler each name runs.

cmd.exe is one of them, but it runs the others, so its module (:mod:`.cmd`) imports this table rather than
being one of its handlers: :func:`migrator.lab.native.run_native` hands ``cmd`` to it.
"""

from __future__ import annotations

import re

from migrator.lab.native import (
    certutil,
    dsregcmd,
    ipconfig,
    klist,
    nltest,
    powershell,
    reg,
    schtasks,
    sessions,
    system,
    whoami,
)
from migrator.lab.native._common import Handler, NativeContext
from migrator.lab.shell import NativeResult

CMD = "cmd"
COMMANDS: dict[str, Handler] = {
    "certutil": certutil.run,
    "chcp": system.chcp,
    "dsregcmd": dsregcmd.run,
    "gpupdate": system.gpupdate,
    "hostname": system.hostname,
    "ipconfig": ipconfig.run,
    "klist": klist.run,
    "logoff": sessions.logoff,
    "msg": sessions.msg,
    "nltest": nltest.run,
    "powershell": powershell.run,
    "query": sessions.query,
    "reg": reg.run,
    "quser": sessions.quser,
    "schtasks": schtasks.run,
    "shutdown": sessions.shutdown,
    "whoami": whoami.run,
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
    if folded.endswith((".exe", ".com")):  # chcp.com, the one .com program scripts name
        folded = folded[:-4]
    return folded if folded in COMMANDS or folded == CMD else None


def dispatch(ctx: NativeContext, name: str, args: list[str]) -> NativeResult:
    """Run a program other than cmd.exe by its resolved name."""
    return COMMANDS[name](ctx, args)
