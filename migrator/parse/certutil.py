"""Parse the output of ``certutil -DeleteHelloContainer`` (and any certutil verb's success/failure line).

certutil ends every verb with ``CertUtil: -<Verb> command completed successfully.`` or
``CertUtil: -<Verb> command FAILED: 0x<hresult> (<signed> <NAME>)`` (``(WIN32: <n> <NAME>)`` for
Win32-derived HRESULTs), often followed by ``CertUtil: <message>``. ``-DeleteHelloContainer`` prints
"Sign out now to complete this task." first: the container is only gone after the user signs out
(certutil help text). Reported failure as the wrong user or without a container: ``0x80090010 NTE_PERM``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from migrator.parse._text import split_lines
from migrator.parse.codes import StatusCode, describe_code

__all__ = ["CertutilResult", "parse_certutil_delete"]


@dataclass(frozen=True, slots=True)
class CertutilResult:
    """Outcome of one certutil verb."""

    verb: str | None  # "DeleteHelloContainer", as printed after the dash
    succeeded: bool | None  # None when neither the success nor the failure line was found
    sign_out_required: bool  # "Sign out now to complete this task."
    hresult: StatusCode | None
    error_name: str | None  # the symbolic name certutil printed (NTE_PERM), else from our table
    message: str | None  # the "CertUtil: <message>" line after a failure
    unknown_lines: tuple[str, ...]


_SUCCESS = re.compile(r"^CertUtil:\s*-(?P<verb>\S+) command completed successfully\.?$", re.IGNORECASE)
_FAILURE = re.compile(
    r"^CertUtil:\s*-(?P<verb>\S+) command FAILED:\s*(?P<hex>0x[0-9a-fA-F]+)(?:\s*\((?P<detail>[^)]*)\))?",
    re.IGNORECASE,
)
_MESSAGE = re.compile(r"^CertUtil:\s*(?P<message>[^-].*)$", re.IGNORECASE)
_SIGN_OUT = re.compile(r"^Sign out now to complete this task\.?$", re.IGNORECASE)
_NAME = re.compile(r"^[A-Z][A-Z0-9_]+$")


def parse_certutil_delete(text: str) -> CertutilResult:
    """Parse ``certutil -DeleteHelloContainer`` output (stdout and stderr); never raises."""
    verb: str | None = None
    succeeded: bool | None = None
    sign_out = False
    hresult: StatusCode | None = None
    error_name: str | None = None
    message: str | None = None
    unknown: list[str] = []
    for raw in split_lines(text):
        line = raw.strip()
        if not line:
            continue
        if _SIGN_OUT.match(line):
            sign_out = True
        elif match := _SUCCESS.match(line):
            verb, succeeded = match.group("verb"), True
        elif match := _FAILURE.match(line):
            verb, succeeded = match.group("verb"), False
            hresult = describe_code(int(match.group("hex"), 16), win32=False)
            detail = (match.group("detail") or "").split()
            printed = detail[-1] if detail and _NAME.match(detail[-1]) else None
            error_name = printed or hresult.name
        elif match := _MESSAGE.match(line):
            message = match.group("message").strip()
        else:
            unknown.append(line)
    if succeeded is False and message is None and hresult is not None:
        message = hresult.message
    return CertutilResult(
        verb=verb,
        succeeded=succeeded,
        sign_out_required=sign_out,
        hresult=hresult,
        error_name=error_name,
        message=message,
        unknown_lines=tuple(unknown),
    )
