"""Session tools: ``quser``/``query user``, ``msg``, ``logoff`` and ``shutdown``.

quser's fixed-width table (``reference/outputs/quser_query_user_variants.txt``, windows-facts §6): a header
`` USERNAME              SESSIONNAME        ID  STATE   IDLE TIME  LOGON TIME``, then one row per session with
``>`` in column 0 for the caller's own session (never over WinRM), an empty SESSIONNAME for a disconnected
session, ID right-aligned to column 43, IDLE TIME right-aligned to column 62 (``none `` for an active console,
``.`` under a minute, ``m``, ``h:mm`` or ``d+hh:mm``) and the logon time in the en-US short format.
"""

from __future__ import annotations

import weakref
from datetime import datetime

from migrator.lab.clock import Timer
from migrator.lab.model import Session, User
from migrator.lab.native._common import NativeContext, short_date_time, text
from migrator.lab.shell import NativeResult, PrincipalKind
from migrator.lab.windows import Lab

QUSER_HEADER = " USERNAME              SESSIONNAME        ID  STATE   IDLE TIME  LOGON TIME"
ERROR_CTX_WINSTATION_NOT_FOUND = 7022  # "The specified session cannot be found."
ERROR_SHUTDOWN_IN_PROGRESS = 1115
ERROR_NO_SHUTDOWN_IN_PROGRESS = 1116
ERROR_SHUTDOWN_IS_SCHEDULED = 1190
SHUTDOWN_DEFAULT_TIMEOUT = 30.0  # shutdown /r without /t waits 30 seconds (shutdown /?)

# Restarts scheduled with ``shutdown /r /t N``, per lab and device, so ``shutdown /a`` can abort them.
_PENDING_RESTARTS: weakref.WeakKeyDictionary[Lab, dict[str, Timer]] = weakref.WeakKeyDictionary()


def session_name(session: Session) -> str:
    """What quser/qwinsta print as SESSIONNAME (empty for a disconnected session)."""
    if session.state == "Disc":
        return ""
    return "console" if session.kind == "console" else f"rdp-tcp#{session.session_id}"


def idle_text(session: Session, now: datetime) -> str:
    if session.state == "Active" and not session.locked:
        # An active console reads "none"; quser pads it with a trailing blank (column 61, not 62).
        return "none " if session.kind == "console" else "."
    minutes = max(0, int((now - session.logon_time).total_seconds() // 60))
    if minutes < 1:
        return "."
    if minutes < 60:
        return str(minutes)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    return f"{days}+{hours:02d}:{mins:02d}" if days else f"{hours}:{mins:02d}"


def quser_row(user: User, session: Session, current: bool, now: datetime) -> str:
    marker = ">" if current else " "
    return (
        f"{marker}{user.sam[:20]:<22}{session_name(session):<17}{session.session_id:>4}  "
        f"{session.state:<6}{idle_text(session, now):>11}  {short_date_time(session.logon_time)}"
    )


def quser(ctx: NativeContext, args: list[str]) -> NativeResult:
    """``quser [user | session | id] [/server:x]``."""
    wanted = next((a for a in args if not a.startswith("/")), None)
    if any(a.casefold() in ("/?", "-?") for a in args):
        return NativeResult(stdout=text(["Display information about users logged on to the system.", ""]))
    now = ctx.now()
    with ctx.device.lock:
        rows: list[str] = []
        for session in sorted(ctx.device.sessions, key=lambda s: s.session_id):
            user = ctx.device.user(session.user_sid)
            if user is None:
                continue
            if wanted is not None and wanted.casefold() not in (
                user.sam.casefold(),
                session_name(session).casefold(),
                str(session.session_id),
            ):
                continue
            current = ctx.principal.kind is PrincipalKind.USER and ctx.principal.session_id == session.session_id
            rows.append(quser_row(user, session, current, now))
    if not rows:
        return NativeResult(stderr=text([f"No User exists for {wanted or '*'}"]), exit_code=1)
    return NativeResult(stdout=text([QUSER_HEADER, *rows]))


def query(ctx: NativeContext, args: list[str]) -> NativeResult:
    """``query user`` is quser; the other query objects are not simulated."""
    if args and args[0].casefold() in ("user", "/user"):
        return quser(ctx, args[1:])
    usage = [
        "Invalid parameter(s)",
        "QUERY { PROCESS | SESSION | TERMSERVER | USER }",
    ]
    return NativeResult(stderr=text(usage), exit_code=1)


# ---- msg ---------------------------------------------------------------------------------------------


def _resolve_target(ctx: NativeContext, target: str) -> list[int] | None:
    """Session ids a msg/logoff target names: an id, a session name or a user name; None = no such session."""
    sessions = ctx.device.sessions
    if target.isdigit():
        found = [s.session_id for s in sessions if s.session_id == int(target)]
    else:
        folded = target.casefold()
        found = []
        for session in sessions:
            user = ctx.device.user(session.user_sid)
            names = {session_name(session).casefold()}
            if user is not None:
                names |= {user.sam.casefold(), user.qualified_name.casefold(), user.upn.casefold()}
            if folded in names - {""}:
                found.append(session.session_id)
    return found or None


def msg(ctx: NativeContext, args: list[str]) -> NativeResult:
    """``msg {user | session | id | *} [/server:x] [/time:n] [/v] [/w] [message]``: text to a session's desktop."""
    if not args or args[0] in ("/?", "-?"):
        usage = ["Send a message to a user.", "", "MSG {username | sessionname | sessionid | @filename | *}"]
        usage += ["    [/SERVER:servername] [/TIME:seconds] [/V] [/W] [message]", ""]
        return NativeResult(stdout=text(usage), exit_code=0 if args else 1)
    target, rest = args[0], args[1:]
    words: list[str] = []
    verbose = False
    seconds = 60  # msg's default display time
    for index, arg in enumerate(rest):
        folded = arg.casefold()
        if folded.startswith("/time:") and folded[6:].isdigit():
            seconds = int(folded[6:])
            continue
        if folded.startswith(("/time:", "/server:")) or folded == "/w":
            continue
        if folded == "/v":
            verbose = True
            continue
        words = rest[index:]
        break
    message = " ".join(words) if words else (ctx.stdin or "").strip()
    if not message:
        return NativeResult(stderr=text(["Message text is required."]), exit_code=1)
    with ctx.device.lock:
        ids: list[int | None] = [None] if target == "*" else list(_resolve_target(ctx, target) or [])
        if target == "*" and not ctx.device.sessions:
            ids = []
    if not ids:
        # msg reports a failed session lookup as "Error <win32 code> getting session names" (captures show
        # "Error 5 ..." for access denied); a name with no session is ERROR_CTX_WINSTATION_NOT_FOUND.
        return NativeResult(stderr=text([f"Error {ERROR_CTX_WINSTATION_NOT_FOUND} getting session names"]), exit_code=1)
    out: list[str] = []
    for session_id in ids:
        with ctx.device.lock:
            names = [
                session_name(s) or str(s.session_id) for s in ctx.device.sessions if session_id in (None, s.session_id)
            ]
        ctx.lab.prompt(ctx.device, session_id, message)
        for name in names:
            out += [
                f"Sending message to session {name}, display time {seconds}",
                f"Async message sent to session {name}",
            ]
    return NativeResult(stdout=text(out) if verbose else "")


# ---- logoff ------------------------------------------------------------------------------------------


def logoff(ctx: NativeContext, args: list[str]) -> NativeResult:
    """``logoff [sessionname | sessionid] [/server:x] [/v]``: end a session (the caller's own by default)."""
    targets = [a for a in args if not a.startswith("/")]
    verbose = any(a.casefold() == "/v" for a in args)
    ids: list[int] = []
    with ctx.device.lock:
        if not targets:
            ids = [ctx.principal.session_id] if ctx.principal.session_id is not None else []
        else:
            # logoff takes a session id or a session name (not a user name, unlike msg).
            wanted = targets[0].casefold()
            ids = [
                s.session_id
                for s in ctx.device.sessions
                if (wanted.isdigit() and s.session_id == int(wanted))
                or (not wanted.isdigit() and session_name(s) and session_name(s).casefold() == wanted)
            ]
    if not ids:
        return NativeResult(
            stderr=text([f"Error [{ERROR_CTX_WINSTATION_NOT_FOUND}]:The specified session cannot be found."]),
            exit_code=1,
        )
    session_id = ids[0]
    if ctx.principal.kind is PrincipalKind.USER and session_id != ctx.principal.session_id:
        # Ending someone else's session needs administrator rights.
        return NativeResult(stderr=text(["Error [5]:Access is denied."]), exit_code=1)
    ctx.lab.logoff(ctx.device, session_id)
    return NativeResult(stdout=text([f"Logging off session ID {session_id}"]) if verbose else "")


# ---- shutdown ----------------------------------------------------------------------------------------


def shutdown(ctx: NativeContext, args: list[str]) -> NativeResult:
    """``shutdown /r [/t N] [/f] [/c "..."] [/d ...]``, ``shutdown /a``, ``shutdown /l``."""
    options = [a.casefold() for a in args]
    pending = _PENDING_RESTARTS.setdefault(ctx.lab, {})
    key = ctx.device.name.casefold()
    if "/a" in options:
        timer = pending.pop(key, None)
        if timer is None or timer.when <= ctx.now():
            return NativeResult(
                stderr=text(
                    [
                        "Unable to abort the system shutdown because no shutdown was in progress."
                        f"({ERROR_NO_SHUTDOWN_IN_PROGRESS})"
                    ]
                ),
                exit_code=ERROR_NO_SHUTDOWN_IN_PROGRESS,
            )
        timer.cancel()
        return NativeResult()
    if "/l" in options:
        if ctx.principal.session_id is None:
            return NativeResult()  # a session-less caller has nothing to log off
        ctx.lab.logoff(ctx.device, ctx.principal.session_id)
        return NativeResult()
    if "/r" not in options and "/g" not in options:
        usage = ["Usage: shutdown [/i | /l | /s | /sg | /r | /g | /a | /p | /h | /e | /o] [/hybrid] [/soft]"]
        usage += ['[/fw] [/f] [/m \\\\computer][/t xxx][/d [p|u:]xx:yy [/c "comment"]]', ""]
        return NativeResult(stdout=text(usage), exit_code=0 if "/?" in options else 1)
    delay = SHUTDOWN_DEFAULT_TIMEOUT
    if "/t" in options:
        position = options.index("/t")
        try:
            delay = float(int(args[position + 1]))
        except (IndexError, ValueError):
            return NativeResult(stderr=text(["The parameter is incorrect.(87)"]), exit_code=87)
    existing = pending.get(key)
    if existing is not None and existing.when > ctx.now():
        return NativeResult(
            stderr=text([f"A system shutdown has already been scheduled.({ERROR_SHUTDOWN_IS_SCHEDULED})"]),
            exit_code=ERROR_SHUTDOWN_IS_SCHEDULED,
        )
    if delay <= 0:
        ctx.lab.reboot(ctx.device, 0)
        return NativeResult()
    lab, device = ctx.lab, ctx.device

    def restart() -> None:
        pending.pop(key, None)
        lab.reboot(device, 0)

    # The lab's reboot is scheduled here rather than through Lab.reboot(delay) so that /a can cancel it.
    pending[key] = lab.clock.call_later(delay, restart)
    return NativeResult()
