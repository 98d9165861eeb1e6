"""Kerberos for the device transports and the directory: whose ticket, for which SPN, from which profile, and
what each failure means.

Theory of operation
-------------------
- **Where the ticket comes from.** With a password (the secrets file or the environment, as for NTLM) migrator
  gets its own TGT, one AS exchange per process and principal, into a *private MEMORY: credential cache*
  (``MEMORY:migrator-<random>``). It lives in this process's memory only, never on disk, and the user's default
  ccache (``KRB5CCNAME``, ``/tmp/krb5cc_<uid>``, ``KEYRING:``...) is neither read nor written. When less than
  :data:`RENEW_BEFORE` seconds of the TGT's life are left, the next use gets a new one into a new MEMORY cache.
  Without a password, the ticket is the one ``kinit`` left in the default ccache (``KRB5CCNAME`` honoured):
  migrator only reads it, and says "kinit again" when it has expired.
- **How the unmodified clients get it.** pypsrp (pyspnego) takes a :class:`spnego.KerberosCCache` credential
  naming the cache. pywinrm (pykerberos through its vendored requests-kerberos) takes none: its calls run with
  the private cache as the calling *thread's* default (MIT's ``gss_krb5_ccache_name`` is thread-local), set and
  reset around each call (:meth:`Tickets.thread_default`), so no environment variable of the process changes.
- **SPN.** ``<spn_service>/<spn_hostname>``: WinRM's is ``HTTP/<fqdn>`` (Windows registers ``WSMAN/<fqdn>``
  too; a listener under a service account may need it), the host being ``spn_hostname``, else the device's
  ``fqdn``, else its address when that is a DNS name. An IP address is no SPN host: Kerberos to an IP needs an SPN
  registered for the address, which Windows does not do ("Kerberos authentication and IP addresses",
  learn.microsoft.com/windows-server/security/kerberos/configuring-kerberos-over-ip).
- **Profile.** MIT reads the realms from ``KRB5_CONFIG`` (a colon-separated list, earlier files winning) or
  ``/etc/krb5.conf``. An inventory's ``krb5_conf`` goes first in that list for this process
  (:func:`use_profile`): the library reads the profile when it makes each context, from the environment only.
- **Failures** are classified once, here, by the krb5 error code whichever library raised it (python-gssapi's
  ``GSSError.min_code``, python-krb5's ``Krb5Error.err_code``, pykerberos' ``GSSError`` arguments, or the text
  requests-kerberos and pyspnego wrap them in): :func:`classify` gives a :class:`Failure` and :func:`advice`
  what to do. The transports' translator (:mod:`migrator.remote.translate`) and the directory client map it into
  their error trees. Codes are MIT's ``krb5`` error table (RFC 4120 7.5.9 error codes plus
  ``ERROR_TABLE_BASE_krb5``). Messages name principals, SPNs and caches, never a password.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import hmac
import importlib
import importlib.util
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrator.inventory import is_ip_address

if TYPE_CHECKING:
    from migrator.inventory import Connection, DeviceEntry
    from migrator.remote.credentials import Credentials

EXTRA_HINT = "pip install 'migrator[kerberos]' (python-gssapi, krb5, pykerberos; they build against MIT krb5's "
EXTRA_HINT += "headers: apt-get install libkrb5-dev)"
DEFAULT_SPN_SERVICE = "HTTP"  # WinRM's SPN: HTTP/<fqdn> (a computer's HOST/ SPN covers it; setspn -L COMPUTER)
RENEW_BEFORE = 600.0  # seconds of TGT life left below which a password-based TGT is fetched again
CCACHE_PREFIX = "MEMORY:migrator-"

ERROR_TABLE_BASE_KRB5 = -1765328384  # MIT's com_err base of the krb5 table: protocol error n is base + n


class Failure(enum.Enum):
    """What went wrong with Kerberos, by what the user can do about it."""

    KDC_UNREACHABLE = "no KDC of the realm answered"
    REALM_UNKNOWN = "no KDC is configured for the realm"
    SERVER_UNKNOWN = "the KDC knows no such service principal (SPN)"
    CLIENT_UNKNOWN = "the KDC knows no such client principal"
    BAD_PASSWORD = "the password is wrong"  # noqa: S105 - a description, not a password
    PASSWORD_EXPIRED = "the account's password has expired"  # noqa: S105 - a description
    TICKET_EXPIRED = "the Kerberos ticket has expired"
    NO_TICKET = "there is no Kerberos ticket"
    CLOCK_SKEW = "the clocks differ by more than the allowed skew"
    LIBRARIES_MISSING = "the Kerberos libraries are not installed"


def _krb5(number: int) -> int:
    return (ERROR_TABLE_BASE_KRB5 + number) & 0xFFFFFFFF


# krb5 error codes (unsigned, as GSS minor codes carry them) → failure. RFC 4120 7.5.9 numbers for the protocol
# errors; the rest are MIT library codes (krb5_err.et).
CODES: dict[int, Failure] = {
    _krb5(6): Failure.CLIENT_UNKNOWN,  # KDC_ERR_C_PRINCIPAL_UNKNOWN
    _krb5(7): Failure.SERVER_UNKNOWN,  # KDC_ERR_S_PRINCIPAL_UNKNOWN
    _krb5(23): Failure.PASSWORD_EXPIRED,  # KDC_ERR_KEY_EXPIRED
    _krb5(24): Failure.BAD_PASSWORD,  # KDC_ERR_PREAUTH_FAILED (AD: pre-authentication required)
    _krb5(31): Failure.BAD_PASSWORD,  # KRB_AP_ERR_BAD_INTEGRITY (the AS reply does not decrypt with the key)
    _krb5(32): Failure.TICKET_EXPIRED,  # KRB_AP_ERR_TKT_EXPIRED
    _krb5(33): Failure.CLOCK_SKEW,  # KRB_AP_ERR_TKT_NYV (ticket not yet valid: the acceptor's clock is behind)
    _krb5(37): Failure.CLOCK_SKEW,  # KRB_AP_ERR_SKEW
    _krb5(153): Failure.CLOCK_SKEW,  # KRB5_KDCREP_SKEW (the KDC's reply is too far from our clock)
    _krb5(154): Failure.REALM_UNKNOWN,  # KRB5_REALM_UNKNOWN ("Cannot find KDC for realm")
    _krb5(156): Failure.KDC_UNREACHABLE,  # KRB5_KDC_UNREACH ("Cannot contact any KDC for realm")
    _krb5(141): Failure.NO_TICKET,  # KRB5_CC_NOTFOUND ("Matching credential not found" / no credentials)
    _krb5(195): Failure.NO_TICKET,  # KRB5_FCC_NOFILE ("No credentials cache found")
}
GSS_S_NO_CRED = 7 << 16
GSS_S_CREDENTIALS_EXPIRED = 11 << 16
_MAJOR: dict[int, Failure] = {GSS_S_NO_CRED: Failure.NO_TICKET, GSS_S_CREDENTIALS_EXPIRED: Failure.TICKET_EXPIRED}
# A krb5 code in a library's message text (requests-kerberos and pyspnego keep only the text): signed or unsigned.
_PAIR_IN_TEXT = re.compile(r"""\(['"]([^'"]*)['"], -?\d+\)""")  # ('text', code) in a tuple's repr
_CODE_IN_TEXT = re.compile(r"(?<![\d-])(-17653\d{5}|25296\d{5})(?!\d)")


class KerberosProblem(Exception):
    """A Kerberos failure migrator found itself (no ticket, an expired one, missing libraries), before any client
    library ran; the translators map it like a library's error. Never carries a password."""

    def __init__(self, failure: Failure, detail: str) -> None:
        super().__init__(detail)
        self.failure = failure
        self.detail = detail


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: list[BaseException] = []
    pending: list[BaseException] = [error]
    while pending:
        item = pending.pop(0)
        if any(item is s for s in seen):
            continue
        seen.append(item)
        yield item
        for linked in (item.__cause__, item.__context__, getattr(item, "base_error", None)):
            if isinstance(linked, BaseException):
                pending.append(linked)
        pending.extend(arg for arg in getattr(item, "args", ()) if isinstance(arg, BaseException))


def classify(error: BaseException) -> tuple[Failure, str] | None:
    """The Kerberos failure behind ``error`` (anywhere in its chain) and the library's own words, or None."""
    for item in _chain(error):
        if isinstance(item, KerberosProblem):
            return item.failure, item.detail
        found = _from_codes(item)
        if found is not None:
            return found, _words(item)
    return None


def _from_codes(item: BaseException) -> Failure | None:
    minor = getattr(item, "min_code", None)  # python-gssapi GSSError
    if isinstance(minor, int) and (minor & 0xFFFFFFFF) in CODES:
        return CODES[minor & 0xFFFFFFFF]
    code = getattr(item, "err_code", None)  # python-krb5 Krb5Error
    if isinstance(code, int) and (code & 0xFFFFFFFF) in CODES:
        return CODES[code & 0xFFFFFFFF]
    pairs = _pykerberos_pairs(item)
    if pairs is not None:
        (_, major_code), (_, minor_code) = pairs
        if isinstance(minor_code, int) and (minor_code & 0xFFFFFFFF) in CODES:
            return CODES[minor_code & 0xFFFFFFFF]
        if isinstance(major_code, int) and major_code & 0xFFFF0000 in _MAJOR:
            return _MAJOR[major_code & 0xFFFF0000]
    for match in _CODE_IN_TEXT.finditer(str(item)):
        number = int(match.group(1)) & 0xFFFFFFFF
        if number in CODES:
            return CODES[number]
    major = getattr(item, "maj_code", None)
    if isinstance(major, int) and (major & 0xFFFF0000) in _MAJOR:
        return _MAJOR[major & 0xFFFF0000]
    return None


# Where Negotiate (SPNEGO, RFC 4178: the client offers the mechanisms it can use) goes on with NTLM instead of
# Kerberos: no KDC to get a ticket from, or no Kerberos here at all. The others (a refused password, an expired
# ticket, skew) are errors of Kerberos that NTLM would not fix; an unknown SPN is handled where the SPN is asked.
NEGOTIATE_FALLS_BACK = frozenset({Failure.KDC_UNREACHABLE, Failure.REALM_UNKNOWN, Failure.LIBRARIES_MISSING})


def negotiate_falls_back(error: BaseException) -> bool:
    """True when Negotiate should use NTLM after ``error`` while getting a Kerberos ticket."""
    found = classify(error)
    return found is not None and found[0] in NEGOTIATE_FALLS_BACK


def _pykerberos_pairs(item: BaseException) -> tuple[tuple[object, object], tuple[object, object]] | None:
    """pykerberos' GSSError arguments: ((major text, major code), (minor text, minor code))."""
    args = tuple(getattr(item, "args", ()))
    if len(args) == 2 and all(isinstance(a, tuple) and len(a) == 2 for a in args):
        return args[0], args[1]
    return None


def _words(item: BaseException) -> str:
    """The library's message, minor part first when it has one (it names the principal or the realm)."""
    pairs = _pykerberos_pairs(item)
    quoted = _PAIR_IN_TEXT.findall(str(item))
    if pairs is not None:
        text = str(pairs[1][0])
    elif quoted:  # requests-kerberos' "authGSSClientStep() failed: ((major, code), (minor, code))"
        text = quoted[-1]
    else:
        text = str(item)
        if "Minor" in text:
            text = text.split("Minor", 1)[1].split(":", 1)[-1]
    text = " ".join(_CODE_IN_TEXT.sub("", text).split())
    return text[:300]


def advice(failure: Failure, *, spn: str | None = None, principal: str | None = None) -> str:
    """What to do about ``failure``, in words (the message the user sees after the library's own)."""
    who = f" for {principal}" if principal else ""
    if failure is Failure.KDC_UNREACHABLE:
        return (
            "no KDC of the realm answered: check that the realm's KDCs (domain controllers) are reachable on port "
            "88 and that krb5.conf (KRB5_CONFIG, or the inventory's krb5_conf) names them; retried later"
        )
    if failure is Failure.REALM_UNKNOWN:
        return (
            "no KDC is configured for the realm: name the realm's KDCs in krb5.conf (set KRB5_CONFIG, or krb5_conf "
            "in the inventory's defaults) or enable dns_lookup_kdc"
        )
    if failure is Failure.SERVER_UNKNOWN:
        asked = f" {spn}" if spn else ""
        return (
            f"the KDC has no service principal{asked}: the device is usually named by another host name; set the "
            "device's fqdn or spn_hostname (and spn_service, HTTP or WSMAN) to an SPN it has (setspn -L COMPUTER)"
        )
    if failure is Failure.CLIENT_UNKNOWN:
        return f"the KDC does not know the account{who}: check MIGRATOR_PRINCIPAL (user@REALM) or MIGRATOR_USERNAME"
    if failure is Failure.BAD_PASSWORD:
        return f"the KDC refused the password{who}: check MIGRATOR_PASSWORD"
    if failure is Failure.PASSWORD_EXPIRED:
        return f"the account's password has expired{who}: change it, then update the secrets"
    if failure is Failure.TICKET_EXPIRED:
        return (
            f"the Kerberos ticket{who} has expired: run kinit again (KRB5CCNAME names the cache used), or give "
            "the password (MIGRATOR_PASSWORD) so migrator gets and renews its own"
        )
    if failure is Failure.NO_TICKET:
        return (
            f"there is no Kerberos ticket{who} in the credential cache: run kinit first (KRB5CCNAME names the cache "
            "used), or give the password (MIGRATOR_PASSWORD) so migrator gets its own"
        )
    if failure is Failure.CLOCK_SKEW:
        return (
            "the clocks of this machine and the KDC (or the device) differ by more than the allowed skew (5 minutes "
            "by default, KRB_AP_ERR_SKEW): synchronise them (NTP; w32tm /resync on Windows)"
        )
    return f"Kerberos needs python-gssapi and krb5: {EXTRA_HINT}"


# ---------------------------------------------------------------------------------------------------------- SPN


def spn_host(device: DeviceEntry, connection: Connection) -> str | None:
    """The host part of the device's SPN: spn_hostname, else fqdn, else its address if that is a DNS name."""
    if connection.spn_hostname:
        return connection.spn_hostname
    if device.fqdn:
        return device.fqdn
    return None if is_ip_address(device.address) else device.address


def spn_service(connection: Connection) -> str:
    return connection.spn_service or DEFAULT_SPN_SERVICE


def spn_text(device: DeviceEntry, connection: Connection) -> str:
    """``HTTP/pc-0001.corp.example`` as the KDC is asked for it (for messages)."""
    return f"{spn_service(connection)}/{(spn_host(device, connection) or device.address).lower()}"


# ------------------------------------------------------------------------------------------------------- profile

_PROFILE_LOCK = threading.Lock()


def use_profile(path: Path | None) -> None:
    """Put ``path`` first in this process's ``KRB5_CONFIG`` (kept: the previous list, else /etc/krb5.conf)."""
    if path is None:
        return
    wanted = str(path)
    with _PROFILE_LOCK:
        current = os.environ.get("KRB5_CONFIG", "")
        entries = [entry for entry in current.split(":") if entry]
        if entries and entries[0] == wanted:
            return
        rest = [entry for entry in entries if entry != wanted] or ["/etc/krb5.conf"]
        os.environ["KRB5_CONFIG"] = ":".join([wanted, *rest])


# ------------------------------------------------------------------------------------------------------ libraries


def missing_libraries(*, pykerberos: bool = False) -> list[str]:
    """The Python modules Kerberos needs here and cannot import (``kerberos`` is pywinrm's pykerberos)."""
    names = ["gssapi", "krb5"] + (["kerberos"] if pykerberos else [])
    return [name for name in names if importlib.util.find_spec(name) is None]


def require_libraries(*, pykerberos: bool = False) -> None:
    missing = missing_libraries(pykerberos=pykerberos)
    if missing:
        raise KerberosProblem(
            Failure.LIBRARIES_MISSING,
            f"auth kerberos needs {', '.join(missing)}, not installed here: {EXTRA_HINT}",
        )


def optional_module(name: str) -> Any:
    """An optional dependency (the kerberos extra), imported when first used: commands that never use Kerberos
    do not load it."""
    return importlib.import_module(name)


# -------------------------------------------------------------------------------------------------------- tickets


def principal_of(credentials: Credentials) -> str | None:
    """The Kerberos principal: MIGRATOR_PRINCIPAL when given; ``user@dns.domain`` → ``user@DNS.DOMAIN``;
    ``DOMAIN\\user`` → ``user`` (krb5.conf's default realm: a NetBIOS name is no realm); None for a ccache."""
    if credentials.principal:
        return credentials.principal
    username = credentials.username
    if not username:
        return None
    if "@" in username:
        user, _, realm = username.rpartition("@")
        return f"{user}@{realm.upper()}"
    return username.rsplit("\\", 1)[-1]


class Tickets:
    """One principal's Kerberos credentials for this process (see the module's docstring)."""

    def __init__(self, principal: str | None, password: str | None, *, clock: Callable[[], float] = time.time) -> None:
        self.principal = principal
        self._password = password  # kept to renew the TGT; never shown (see __repr__)
        self._clock = clock
        self._lock = threading.Lock()
        self._ccache: str | None = None
        self._ends = 0.0
        self._renew_at = 0.0

    def __repr__(self) -> str:
        return f"Tickets(principal={self.principal!r}, private={self.private})"

    @property
    def private(self) -> bool:
        """True: migrator's own MEMORY cache from the password; False: the user's ccache, read only."""
        return self._password is not None

    def ccache(self) -> str:
        """The cache to use now (``TYPE:residual``), after making sure it holds a TGT that is still valid."""
        with self._lock:
            if self.private:
                if self._ccache is None or self._clock() >= self._renew_at:
                    started = self._clock()
                    self._ccache, self._ends = self._kinit()
                    # RENEW_BEFORE the end, or half-way through a lifetime shorter than twice that (a KDC policy)
                    self._renew_at = self._ends - min(RENEW_BEFORE, max(0.0, self._ends - started) / 2)
                return self._ccache
            return self._check_ambient()

    def _kinit(self) -> tuple[str, float]:
        """One AS exchange with the password into a new private MEMORY cache (python-krb5, as pyspnego does)."""
        krb5 = optional_module("krb5")
        context = krb5.init_context()
        principal = krb5.parse_name_flags(context, (self.principal or "").encode())
        options = krb5.get_init_creds_opt_alloc(context)
        krb5.get_init_creds_opt_set_canonicalize(options, True)
        assert self._password is not None
        creds = krb5.get_init_creds_password(context, principal, options, password=self._password.encode())
        name = f"{CCACHE_PREFIX}{secrets.token_hex(8)}"
        cache = krb5.cc_resolve(context, name.encode())
        krb5.cc_initialize(context, cache, creds.client)
        krb5.cc_store_cred(context, cache, creds)
        return name, float(creds.times.endtime)

    def _check_ambient(self) -> str:
        """The user's ccache (KRB5CCNAME, else the default): its name, if it holds an unexpired TGT."""
        krb5 = optional_module("krb5")
        context = krb5.init_context()
        try:
            if self.principal and hasattr(krb5, "cc_cache_match"):
                cache = krb5.cc_cache_match(context, krb5.parse_name_flags(context, self.principal.encode()))
            else:
                cache = krb5.cc_default(context)
            name = (cache.cache_type or b"FILE").decode() + ":" + (cache.name or b"").decode()
            owner = krb5.cc_get_principal(context, cache).name.decode(errors="replace")
            ends = [
                float(cred.times.endtime)
                for cred in cache
                if (cred.server.name or b"").startswith(b"krbtgt/") and cred.times.endtime
            ]
        except Exception as err:
            where = os.environ.get("KRB5CCNAME") or "the default cache"
            raise KerberosProblem(Failure.NO_TICKET, f"no Kerberos ticket in {where} ({_words(err)})") from None
        if not ends:
            raise KerberosProblem(Failure.NO_TICKET, f"no ticket-granting ticket for {owner} in {name}")
        if max(ends) <= self._clock():
            raise KerberosProblem(Failure.TICKET_EXPIRED, f"the ticket-granting ticket for {owner} in {name} expired")
        if self.principal is None:
            self.principal = owner
        return name

    @contextlib.contextmanager
    def thread_default(self) -> Iterator[None]:
        """Make this cache the calling thread's default for the duration (pykerberos takes no cache argument): the
        private one, or the user's cache that holds the principal's ticket (in a DIR/KEYRING collection, not
        necessarily the primary)."""
        name = self.ccache()
        ext_krb5 = optional_module("gssapi.raw.ext_krb5")
        ext_krb5.krb5_ccache_name(name.encode())
        try:
            yield
        finally:
            ext_krb5.krb5_ccache_name(None)


_REGISTRY_LOCK = threading.Lock()
_REGISTRY: dict[tuple[str | None, str, str], Tickets] = {}
_KEY_SALT = secrets.token_bytes(16)  # the registry keys hold a keyed digest of the password, never the password


def tickets_for(credentials: Credentials) -> Tickets:
    """This process's :class:`Tickets` for these credentials and the current profile (one AS exchange each)."""
    password = credentials.password.get_secret_value() or None
    principal = principal_of(credentials) if password else credentials.principal
    digest = hmac.new(_KEY_SALT, (password or "").encode(), hashlib.sha256).hexdigest()
    key = (principal, digest, os.environ.get("KRB5_CONFIG", ""))
    with _REGISTRY_LOCK:
        found = _REGISTRY.get(key)
        if found is None:
            found = _REGISTRY[key] = Tickets(principal, password)
        return found


def ambient_principal() -> str | None:
    """The principal of the user's ccache when it holds an unexpired TGT (KRB5CCNAME honoured), else None; None
    too where the Kerberos libraries are missing."""
    if missing_libraries():
        return None
    tickets = Tickets(None, None)
    try:
        tickets.ccache()
    except KerberosProblem:
        return None
    return tickets.principal
