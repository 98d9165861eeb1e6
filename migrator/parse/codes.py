"""Status codes that the parsed tools print, with their symbolic names and what they mean here.

Names and texts are Windows' own (winerror.h, ntstatus.h, lmerr.h). Only codes that the tools in this
package are known to print, or that the migration runbooks meet, are listed: an unknown code keeps its
number and gets no name rather than a guessed one.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["StatusCode", "describe_code", "parse_number", "to_signed32", "to_unsigned32"]


@dataclass(frozen=True, slots=True)
class StatusCode:
    """A numeric status as printed by a tool, with its symbolic name and system message when known."""

    value: int  # unsigned 32-bit
    name: str | None
    message: str | None

    @property
    def hex(self) -> str:
        """The code as Windows tools print it: ``0x`` and lowercase hex, no padding (``0xc000005f``)."""
        return f"0x{self.value:x}"

    @property
    def signed(self) -> int:
        """The same 32 bits read as a signed int, as klist and certutil print it in parentheses."""
        return to_signed32(self.value)


# Win32 error codes (winerror.h / lmerr.h) - small numbers, printed in decimal by nltest and as
# "substatus" by klist.
_WIN32: dict[int, tuple[str, str]] = {
    0: ("ERROR_SUCCESS", "The operation completed successfully."),
    2: ("ERROR_FILE_NOT_FOUND", "The system cannot find the file specified."),
    5: ("ERROR_ACCESS_DENIED", "Access is denied."),
    1311: (
        "ERROR_NO_LOGON_SERVERS",
        "There are currently no logon servers available to service the logon request.",
    ),
    1312: (
        "ERROR_NO_SUCH_LOGON_SESSION",
        "A specified logon session does not exist. It may already have been terminated.",
    ),
    1326: ("ERROR_LOGON_FAILURE", "The user name or password is incorrect."),
    1355: ("ERROR_NO_SUCH_DOMAIN", "The specified domain either does not exist or could not be contacted."),
    1722: ("RPC_S_SERVER_UNAVAILABLE", "The RPC server is unavailable."),
    1919: ("ERROR_NO_SITENAME", "No site name is available for this machine."),
}

# NTSTATUS (ntstatus.h) and HRESULT / SECURITY_STATUS (winerror.h) values.
_NT_AND_HRESULT: dict[int, tuple[str, str]] = {
    0xC000005E: (
        "STATUS_NO_LOGON_SERVERS",
        "There are currently no logon servers available to service the logon request.",
    ),
    0xC000005F: (
        "STATUS_NO_SUCH_LOGON_SESSION",
        "A specified logon session does not exist. It may already have been terminated.",
    ),
    0xC000006D: ("STATUS_LOGON_FAILURE", "The attempted logon is invalid."),
    0xC0000104: (
        "STATUS_BAD_LOGON_SESSION_STATE",
        "The logon session is not in a state that is consistent with the requested operation.",
    ),
    0xC00002FD: ("STATUS_KDC_UNKNOWN_ETYPE", "The encryption type requested is not supported by the KDC."),
    0x8009030E: ("SEC_E_NO_CREDENTIALS", "No credentials are available in the security package"),
    0x80090342: ("SEC_E_KDC_UNKNOWN_ETYPE", "The encryption type requested is not supported by the KDC."),
    0x80090010: ("NTE_PERM", "Access denied."),
    0x80090011: ("NTE_NOT_FOUND", "Object was not found."),
    0x80070005: ("E_ACCESSDENIED", "Access is denied."),
    0x80070002: ("ERROR_FILE_NOT_FOUND", "The system cannot find the file specified."),
    0x80070520: (
        "ERROR_NO_SUCH_LOGON_SESSION",
        "A specified logon session does not exist. It may already have been terminated.",
    ),
}


def to_unsigned32(value: int) -> int:
    """``-1073741729`` to ``0xc000005f``: the unsigned form of a 32-bit status."""
    return value & 0xFFFFFFFF


def to_signed32(value: int) -> int:
    """``0xc000005f`` to ``-1073741729``: the signed form of a 32-bit status."""
    value &= 0xFFFFFFFF
    return value - 0x1_0000_0000 if value & 0x8000_0000 else value


def describe_code(value: int, *, win32: bool | None = None) -> StatusCode:
    """A :class:`StatusCode` for ``value``.

    ``win32=True`` reads ``value`` as a Win32 error (as nltest's ``Status = 1355`` or klist's decimal
    substatus); False as NTSTATUS/HRESULT; None decides by size (Win32 codes are below 0x10000).
    """
    unsigned = to_unsigned32(value)
    table = _WIN32 if (win32 if win32 is not None else unsigned < 0x10000) else _NT_AND_HRESULT
    name, message = table.get(unsigned, (None, None))
    return StatusCode(value=unsigned, name=name, message=message)


def parse_number(text: str) -> int | None:
    """``0x51f`` or ``1312`` or ``-1073741729`` to an int; anything else to None."""
    text = text.strip()
    try:
        return int(text, 16) if text.lower().startswith("0x") else int(text, 10)
    except ValueError:
        return None
