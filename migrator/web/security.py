"""Who may see and do what on the dashboard, and the protections every response carries.

Roles
-----
* On a loopback address the pages are read-only and need no login: whoever can reach 127.0.0.1 can already read
  the store's file. The Host header must name the loopback address (or ``localhost``), so a web page elsewhere
  cannot read the dashboard through a DNS name it rebinds to 127.0.0.1.
* Approving a batch or pausing a wave needs the operator token (``--operator-token-file``) typed into the
  action's form, the operator's name and a reason; the wave engine records who and why in the audit log. Without a
  token file the dashboard offers no action at all.
* On any other address the server refuses to start without TLS (certificate and key) and a token, and every page
  needs a session opened with the token (``/login``).

The token is compared in constant time (:func:`hmac.compare_digest`) and never logged, stored or echoed; a wrong
one costs the caller a pause.

CSRF: a double-submit cookie (random, ``HttpOnly``, ``SameSite=Strict``, ``Secure`` under TLS) whose value every
form carries in a hidden field; a POST whose field does not match the cookie, or whose ``Origin`` (or
``Sec-Fetch-Site``, or ``Referer``) says it came from another site, is refused. ``SameSite=Strict`` alone already
keeps another site's form from sending the cookie; the field and the origin check hold where it does not.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from migrator.errors import InputError

CSRF_COOKIE = "migrator_csrf"
SESSION_COOKIE = "migrator_session"
MIN_TOKEN_LENGTH = 16
SESSION_SECONDS = 8 * 3600.0  # a working day; then the token is asked for again

# Content-Security-Policy: only what the package serves; no inline script or style, no frames, no plug-ins.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SAFE_HEADERS: tuple[tuple[str, str], ...] = (
    ("content-security-policy", CSP),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    # same-origin, not no-referrer: under no-referrer Chromium sends "Origin: null" with the dashboard's own form
    # POSTs, and the origin check below could no longer tell them from another site's.
    ("referrer-policy", "same-origin"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("permissions-policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
)
HSTS = ("strict-transport-security", "max-age=31536000")


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and ``localhost``: the addresses only this machine reaches."""
    if host.strip().casefold() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class OperatorToken:
    """The operator token read from its file. Its value never appears in a repr, a log or a page."""

    source: Path
    _value: bytes = field(repr=False)

    def matches(self, offered: str) -> bool:
        # Constant time in the length of what is compared: a timing side channel reveals nothing of the token.
        return hmac.compare_digest(offered.encode("utf-8"), self._value)


def load_token(path: Path) -> OperatorToken:
    """The token in ``path`` (its first line, trimmed): :class:`InputError` naming the file when it cannot be read,
    is empty, is shorter than :data:`MIN_TOKEN_LENGTH` characters, or may be read by other users."""
    try:
        info = path.stat()
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise InputError(f"--operator-token-file {path}: cannot read it ({error.strerror or error})") from None
    except UnicodeDecodeError:
        raise InputError(f"--operator-token-file {path}: not UTF-8 text") from None
    lines = text.splitlines()
    value = lines[0].strip() if lines else ""
    if len(value) < MIN_TOKEN_LENGTH:
        raise InputError(
            f"--operator-token-file {path}, line 1: the token must be at least {MIN_TOKEN_LENGTH} characters "
            f"(for example: python3 -c 'import secrets; print(secrets.token_urlsafe(32))' > {path})"
        )
    if os.name == "posix" and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InputError(f"--operator-token-file {path}: other users may read it; chmod 600 {path}")
    return OperatorToken(path, value.encode("utf-8"))


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def same_value(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a).encode(), str(b).encode())


def cross_site(headers: dict[str, str], own_origin: str) -> str | None:
    """Why a POST looks like it came from another site, or None. Browsers send ``Origin`` with every POST and
    ``Sec-Fetch-Site`` (Fetch Metadata) with most; ``Referer`` is the fallback of older ones."""
    site = headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return f"Sec-Fetch-Site is {site}"
    origin = headers.get("origin")
    if origin is not None:
        return None if origin == own_origin else f"Origin {origin} is not {own_origin}"
    referer = headers.get("referer")
    if referer:
        parts = urlsplit(referer)
        if f"{parts.scheme}://{parts.netloc}" != own_origin:
            return "Referer names another site"
    return None


class Sessions:
    """Sessions opened with the token (non-loopback dashboards): random ids kept in memory, for a working day."""

    def __init__(self, lifetime: float = SESSION_SECONDS) -> None:
        self._lifetime = lifetime
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def open(self) -> str:
        session = new_secret()
        with self._lock:
            now = time.monotonic()
            self._until = {s: t for s, t in self._until.items() if t > now}
            self._until[session] = now + self._lifetime
        return session

    def valid(self, session: str | None) -> bool:
        if not session:
            return False
        with self._lock:
            until = self._until.get(session)
            return until is not None and until > time.monotonic()

    def close(self, session: str | None) -> None:
        with self._lock:
            self._until.pop(session or "", None)
