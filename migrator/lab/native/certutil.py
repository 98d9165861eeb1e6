"""``certutil -DeleteHelloContainer``: delete the *caller's* Windows Hello container.

Only the verb the migration uses is implemented; every other verb gets certutil's unknown-argument answer.
Texts: ``reference/outputs/certutil_deletehellocontainer_*.txt`` and ``certutil_help_deletehellocontainer.txt``.
certutil's exit code is the HRESULT of the failure as a signed 32-bit int (0 on success).
"""

from __future__ import annotations

from migrator.lab.native._common import NativeContext, signed32, text
from migrator.lab.shell import NativeResult

E_INVALIDARG = 0x80070057
# HRESULT → (symbolic name, the message certutil prints on its second line).
_FAILURES: dict[int, tuple[str, str]] = {
    0x80090010: ("NTE_PERM", "Access denied."),
    0x80090016: ("NTE_BAD_KEYSET", "Keyset does not exist"),
}
VERB_HELP = [
    "  -DeleteHelloContainer -- Delete Hello Logon container.  ",
    "     ** Users need to sign out after using this option for it to complete. **",
]


def run(ctx: NativeContext, args: list[str]) -> NativeResult:
    verbs = [a for a in args if a[:1] in "-/"]
    if not verbs or verbs[0][1:].casefold() in ("?", "help"):
        return NativeResult(stdout=_usage(), exit_code=0 if verbs else signed32(E_INVALIDARG))
    verb = verbs[0][1:].casefold()
    if verb != "deletehellocontainer":
        return NativeResult(
            stdout=text([f"CertUtil: Unknown arg: {verbs[0]}", ""]) + _usage(),
            exit_code=signed32(E_INVALIDARG),
        )
    if any(a[1:] in ("?",) for a in verbs[1:]):
        return NativeResult(
            stdout=text(["Usage:", "  CertUtil [Options] -DeleteHelloContainer", *VERB_HELP, ""]),
        )
    outcome = ctx.lab.delete_hello_container(ctx.device, ctx.principal)
    if outcome.deleted:
        return NativeResult(
            stdout=text(
                [
                    "Sign out now to complete this task.",
                    "CertUtil: -DeleteHelloContainer command completed successfully.",
                ]
            )
        )
    name, message = _FAILURES.get(outcome.hresult, (outcome.reason or "E_FAIL", "Unspecified error"))
    code = signed32(outcome.hresult)
    return NativeResult(
        stdout=text(
            [
                f"CertUtil: -DeleteHelloContainer command FAILED: 0x{outcome.hresult & 0xFFFFFFFF:08x} ({code} {name})",
                f"CertUtil: {message}",
            ]
        ),
        exit_code=code,
    )


def _usage() -> str:
    return text(
        [
            "Verbs:",
            "  -DeleteHelloContainer -- Delete Hello Logon container.  ",
            "     ** Users need to sign out after using this option for it to complete. **",
            "",
            "CertUtil -?              -- Display a list of verbs (commands)",
            'CertUtil -<verb> -?      -- Display help text for the "<verb>" verb',
            "CertUtil -v -?           -- Display all help text for all verbs",
            "",
        ]
    )
