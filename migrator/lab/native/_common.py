"""What every native command needs: who runs it, on which device, and how Windows tools print things.

Commands build their output with ``\\n`` line ends; :func:`migrator.lab.native.run_native` and
:func:`migrator.lab.native.run_command_line` turn them into the ``\\r\\n`` a Windows console program writes.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from migrator.lab.cmdlets._base import process_environment
from migrator.lab.model import Device, Session, User
from migrator.lab.shell import NativeResult, Principal, PrincipalKind
from migrator.lab.windows import Lab

SYSTEM_LOGON_ID = "0x3e7"  # the SYSTEM logon session's LUID (999), as klist prints it
_DRIVE_PATH = re.compile(r"^[A-Za-z]:\\")


@dataclass
class NativeContext:
    """One run of a native command: the lab, the device, the caller and its standard input."""

    lab: Lab
    device: Device
    principal: Principal
    stdin: str | None = None

    @property
    def user(self) -> User | None:
        """The device user a USER principal is; None for the admin's network logon and SYSTEM."""
        if self.principal.kind is not PrincipalKind.USER:
            return None
        return self.device.user(self.principal.sid)

    @property
    def session(self) -> Session | None:
        """The interactive session the caller runs in (USER principals with a session only)."""
        user = self.user
        if user is None or self.principal.session_id is None:
            return None
        for session in self.device.sessions:
            if session.session_id == self.principal.session_id and session.user_sid == user.sid:
                return session
        return None

    @property
    def is_network_logon(self) -> bool:
        """The WinRM admin: a network logon (type 3) without a Kerberos ticket cache of its own."""
        return self.principal.kind is PrincipalKind.ADMIN

    def logon_id(self) -> str:
        """The caller's logon session LUID (low part) as klist prints it (``0x3e7`` for SYSTEM)."""
        if self.principal.kind is PrincipalKind.SYSTEM:
            return SYSTEM_LOGON_ID
        session = self.session
        if session is not None:
            return session.logon_id
        # A network logon gets a fresh LUID per connection on Windows; the lab derives a stable one.
        seed = f"{self.device.name}|{self.principal.sid}".encode()
        return f"0x{0x100000 + zlib.crc32(seed) % 0xEFFFFF:x}"

    def now(self) -> datetime:
        return self.lab.clock.now()


Handler = Callable[[NativeContext, list[str]], NativeResult]


# ---- environment -----------------------------------------------------------------------------------


def environment(lab: Lab, device: Device, principal: Principal) -> dict[str, str]:
    """The variables cmd.exe expands for a process started as ``principal``: the same block PowerShell's
    ``$env:`` shows (one source, so a task action's ``%TEMP%`` and its script's ``$env:TEMP`` agree)."""
    return process_environment(lab, device, principal)


def lookup_env(env: Mapping[str, str], name: str) -> str | None:
    """Environment variables are case-insensitive on Windows."""
    folded = name.casefold()
    for key, value in env.items():
        if key.casefold() == folded:
            return value
    return None


def working_directory(lab: Lab, device: Device, principal: Principal) -> str:
    """Where a WinRS ``cmd`` shell or a task without a working folder starts: the profile; SYSTEM: System32."""
    if principal.kind is PrincipalKind.SYSTEM:
        return "C:\\Windows\\system32"
    return environment(lab, device, principal)["USERPROFILE"]


def resolve_path(ctx: NativeContext, path: str) -> str:
    """A cmd path argument as an absolute display path (relative to the process's working directory)."""
    value = path.strip().strip('"').replace("/", "\\")
    if value.startswith("\\\\"):
        return value
    if _DRIVE_PATH.match(value):
        base, rest = value[:2].upper(), value[3:]
    elif value.startswith("\\"):
        base, rest = "C:", value[1:]
    else:
        cwd = working_directory(ctx.lab, ctx.device, ctx.principal)
        base, rest = cwd[:2], cwd[3:] + "\\" + value
    parts: list[str] = []
    for part in rest.split("\\"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return base + "\\" + "\\".join(parts)


# ---- output helpers --------------------------------------------------------------------------------


def yes_no(flag: bool) -> str:
    return "YES" if flag else "NO"


def text(lines: list[str]) -> str:
    """Lines joined as a console program writes them: each ends with a newline."""
    return "".join(line + "\n" for line in lines)


def to_crlf(value: str) -> str:
    """``\\n`` → ``\\r\\n`` (console programs write CRLF); existing CRLF pairs are left alone."""
    return value.replace("\r\n", "\n").replace("\n", "\r\n")


def signed32(value: int) -> int:
    """An HRESULT/NTSTATUS as the signed 32-bit int a process exit code carries."""
    value &= 0xFFFFFFFF
    return value - 0x1_0000_0000 if value & 0x8000_0000 else value


def klist_time(moment: datetime) -> str:
    """klist's ``2/7/2026 17:22:58 (local)`` (en-US short date, 24-hour clock; the lab's local time is UTC)."""
    return f"{moment.month}/{moment.day}/{moment.year} {moment.hour}:{moment.minute:02d}:{moment.second:02d} (local)"


def short_date_time(moment: datetime) -> str:
    """quser's ``7/24/2024 7:36 AM`` (en-US short date and short time)."""
    hour = moment.hour % 12 or 12
    suffix = "AM" if moment.hour < 12 else "PM"
    return f"{moment.month}/{moment.day}/{moment.year} {hour}:{moment.minute:02d} {suffix}"


def utc_stamp(moment: datetime) -> str:
    """dsregcmd's ``2019-01-11 21:02:50.000 UTC``."""
    return moment.strftime("%Y-%m-%d %H:%M:%S") + ".000 UTC"
