"""Parse ``quser`` / ``query user``: who is signed in, in which session, in which state.

quser prints a header `` USERNAME  SESSIONNAME  ID  STATE  IDLE TIME  LOGON TIME`` and one fixed-width row
per session. Column 0 of a row holds ``>`` for the caller's own session (absent over WinRM, which has no
session). A disconnected session has an empty SESSIONNAME, ID and IDLE TIME are right-aligned, and LOGON
TIME follows the device's locale (windows-facts section 6). Rows are cut at the header's column positions;
when a row does not fit them (a copy that shifted columns), a tokeniser reads it from both ends instead.

With no sessions quser writes ``No User exists for *`` to stderr and exits 1; ``query user /server:X`` can
report ``Error 0x000006BA enumerating sessionnames`` (1722, RPC server unavailable).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from migrator.parse._text import split_lines
from migrator.parse.codes import StatusCode, describe_code

__all__ = ["QuserError", "QuserResult", "QuserSession", "parse_idle_minutes", "parse_quser"]


@dataclass(frozen=True, slots=True)
class QuserSession:
    """One row of quser."""

    username: str
    session_name: str | None  # None for a disconnected session
    session_id: int
    state: str  # "Active", "Disc", ... as printed (localised on some builds)
    idle_time: str  # as printed: "none", ".", "19", "1:05", "11+04:12"
    logon_time: str  # as printed, in the device's locale
    current: bool  # the ">" marker: the session quser itself ran in

    @property
    def is_active(self) -> bool:
        """True for the Active state."""
        return self.state.casefold() == "active"

    @property
    def is_disconnected(self) -> bool:
        """True for the Disc(onnected) state."""
        return self.state.casefold().startswith("disc")

    @property
    def idle_minutes(self) -> int | None:
        """Idle time in minutes (``none`` and ``.`` are 0), None when unreadable."""
        return parse_idle_minutes(self.idle_time)


@dataclass(frozen=True, slots=True)
class QuserError:
    """An error quser printed instead of a table."""

    message: str
    code: StatusCode | None


@dataclass(frozen=True, slots=True)
class QuserResult:
    """The sessions quser listed, or why it listed none."""

    sessions: tuple[QuserSession, ...]
    no_users: bool  # "No User exists for *"
    error: QuserError | None
    unknown_lines: tuple[str, ...]

    @property
    def current_session(self) -> QuserSession | None:
        """The session marked ``>``, None when quser ran outside any session (WinRM)."""
        return next((s for s in self.sessions if s.current), None)

    @property
    def active_sessions(self) -> tuple[QuserSession, ...]:
        """Sessions in the Active state."""
        return tuple(s for s in self.sessions if s.is_active)


_IDLE = re.compile(r"^(?:(?P<days>\d+)\+)?(?:(?P<hours>\d+):)?(?P<minutes>\d+)$")


def parse_idle_minutes(text: str) -> int | None:
    """``none``/``.`` -> 0, ``19`` -> 19, ``1:05`` -> 65, ``11+04:12`` -> 16092; else None."""
    text = text.strip()
    if text.casefold() in {"none", "."}:
        return 0
    match = _IDLE.match(text)
    if not match:
        return None
    days = int(match.group("days") or 0)
    hours = int(match.group("hours") or 0)
    return (days * 24 + hours) * 60 + int(match.group("minutes"))


_HEADER = re.compile(r"USERNAME\s+SESSIONNAME\s+ID\s+STATE\s+IDLE TIME\s+LOGON TIME", re.IGNORECASE)
_NO_USERS = re.compile(r"^No User exists for", re.IGNORECASE)
_ERROR = re.compile(r"^Error\s+(?P<code>0x[0-9a-fA-F]+|\d+)\b", re.IGNORECASE)
# Fallback: marker, user, optional session name, id, state, idle, logon time (the rest).
_ROW = re.compile(
    r"^(?P<marker>>)?\s*(?P<user>\S+)\s+(?:(?P<session>\S*[^\s\d]\S*)\s+)?(?P<id>\d+)\s+(?P<state>\S+)\s+"
    r"(?P<idle>\S+)\s+(?P<logon>\S.*?)\s*$"
)


@dataclass(frozen=True, slots=True)
class _Columns:
    user: int
    session: int
    state: int
    logon: int

    @classmethod
    def from_header(cls, header: str) -> _Columns:
        upper = header.upper()
        return cls(
            user=upper.index("USERNAME"),
            session=upper.index("SESSIONNAME"),
            state=upper.index("STATE"),
            logon=upper.index("LOGON TIME"),
        )

    def cut(self, line: str) -> QuserSession | None:
        """The row cut at the header's positions, or None when a value straddles a boundary."""
        padded = line.ljust(self.logon + 1)
        for boundary in (self.session, self.state, self.logon):
            if not padded[boundary - 1].isspace():
                return None
        marker = padded[self.user - 1] if self.user > 0 else ""
        username = padded[self.user : self.session].strip()
        middle = padded[self.session : self.state].split()  # [session name] id
        status = padded[self.state : self.logon].split()  # state idle
        logon = padded[self.logon :].strip()
        if not username or not middle or not middle[-1].isdigit() or len(status) != 2 or not logon:
            return None
        return QuserSession(
            username=username,
            session_name=" ".join(middle[:-1]) or None,
            session_id=int(middle[-1]),
            state=status[0],
            idle_time=status[1],
            logon_time=logon,
            current=marker == ">",
        )


def _tokenise(line: str) -> QuserSession | None:
    match = _ROW.match(line.strip(" "))
    if not match:
        return None
    return QuserSession(
        username=match.group("user"),
        session_name=match.group("session") or None,
        session_id=int(match.group("id")),
        state=match.group("state"),
        idle_time=match.group("idle"),
        logon_time=match.group("logon"),
        current=match.group("marker") == ">",
    )


def parse_quser(text: str) -> QuserResult:
    """Parse quser / query user output (stdout and stderr together); never raises."""
    sessions: list[QuserSession] = []
    columns: _Columns | None = None
    no_users = False
    error: QuserError | None = None
    unknown: list[str] = []
    for line in split_lines(text):
        stripped = line.strip()
        if not stripped:
            continue
        if _HEADER.search(line):
            columns = _Columns.from_header(line)
            continue
        if _NO_USERS.match(stripped):
            no_users = True
            continue
        if match := _ERROR.match(stripped):
            raw = match.group("code")
            number = int(raw, 16) if raw.lower().startswith("0x") else int(raw)
            error = QuserError(message=stripped, code=describe_code(number, win32=True))
            continue
        session = (columns.cut(line) if columns else None) or (_tokenise(line) if columns else None)
        if session is None:
            unknown.append(stripped)
        else:
            sessions.append(session)
    return QuserResult(sessions=tuple(sessions), no_users=no_users, error=error, unknown_lines=tuple(unknown))
