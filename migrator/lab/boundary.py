"""The lab's one explicit boundary: what it does not model it says so, in one recognisable way.

Theory of operation
-------------------
The lab answers a command, cmdlet, .NET type, member or language construct in one of three ways
(architecture rule 8):

1. as Windows would, when the lab models it;
2. "… is not recognized …" (cmd.exe: exit code 9009; PowerShell: CommandNotFoundException), only when the name
   does not exist on Windows either, decided by the list of real Windows names in
   :mod:`migrator.lab.windows_names`;
3. otherwise :class:`NotModelledByLab`: "<what> is not modelled by the lab (lab/<module>)", with the error id
   :data:`ERROR_ID`, the exception type :data:`EXCEPTION_TYPE` and, for a native command, the exit code
   :data:`EXIT_CODE`. In the PowerShell interpreter it is never catchable by a script's ``catch`` (a
   ``catch {}`` must not turn "unknown" into "success"): it ends the invocation.

A test or a user can therefore grep for one phrase (:data:`PHRASE`) to find every place a rehearsal left what
the lab knows.
"""

from __future__ import annotations

import sys

from migrator.lab.shell import ErrorRecord

PHRASE = "is not modelled by the lab"
ERROR_ID = "NotModelledByLab"
EXCEPTION_TYPE = "Migrator.Lab.NotModelledByLabException"
# The exit code of a native command the lab refuses. No Windows tool returns it (cmd's own "not recognized" is
# 9009, 0x2331; this is 0x4C41 = "LA"); a script testing $LASTEXITCODE can tell the two apart.
EXIT_CODE = 0x4C41


def module_label(module_name: str) -> str:
    """``migrator.lab.ps.members`` → ``lab/ps/members`` (where to look to model it)."""
    parts = module_name.split(".")
    if parts[:2] == ["migrator", "lab"]:
        parts = parts[1:]
    return "/".join(parts)


def not_modelled_message(subject: str, module: str) -> str:
    return f"{subject} {PHRASE} ({module})"


_NOT_THE_REFUSER = frozenset({__name__, "migrator.lab.ps.errors"})  # where the refusal is built, not decided


def _caller_module(depth: int) -> str:
    # Only on the refusal path: which lab module refused is worth the frame lookup.
    frame = sys._getframe(depth + 1)
    while frame is not None and frame.f_globals.get("__name__", "") in _NOT_THE_REFUSER:
        frame = frame.f_back  # type: ignore[assignment]
    return module_label(frame.f_globals.get("__name__", "migrator.lab") if frame is not None else "migrator.lab")


class NotModelledByLab(Exception):
    """Something real on Windows that the lab does not model; carries the ErrorRecord reported to the caller.

    ``construct`` names it as a user would (``command ipconfig``, ``[System.Text.UTF8Encoding]``,
    ``Version.Revision``); ``module`` is the lab module that refused (inferred from the raiser when omitted);
    ``target`` the record's TargetObject when it is not the construct (a command's name)."""

    def __init__(
        self,
        construct: str,
        line: int | None = None,
        *,
        module: str | None = None,
        column: int | None = None,
        target: str | None = None,
    ) -> None:
        self.construct = construct
        self.line = line
        self.column = column
        self.module = module or _caller_module(1)
        # A bare name is quoted as PowerShell quotes terms ('Version.Build'); a phrase reads as it is.
        subject = f"'{construct}'" if construct and " " not in construct and construct[:1] not in "'[$\"" else construct
        message = not_modelled_message(subject, self.module)
        super().__init__(message)
        self.message = message
        self.record = ErrorRecord(
            message=message,
            fully_qualified_error_id=ERROR_ID,
            category="NotImplemented",
            exception_type=EXCEPTION_TYPE,
            target_object=target or construct,
            target_name=target or construct,
            reason="NotModelledByLabException",
            position_message=f"At line:{line} char:{column or 1}" if line else "",
        )


def native_refusal(program: str, module: str = "lab/native") -> str:
    """What a native command the lab refuses prints on stderr (cmd.exe's layout: the name, then the reason)."""
    return f"'{program}' {PHRASE} ({module})."
