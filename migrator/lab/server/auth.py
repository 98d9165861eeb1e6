"""Who may talk to a device, and how the lab checks it the way WinRM does.

Accounts are :class:`Account` values (local to one device, or domain accounts valid on every device that
lists them). WinRM's defaults apply ([MS-WSMV] 2.2.9, ``winrm get winrm/config/service/auth``):

- ``Negotiate`` (NTLM or Kerberos inside SPNEGO, or a raw NTLM or Kerberos token, as requests-ntlm, pypsrp
  and pykerberos send them) on HTTP and HTTPS; ``Kerberos`` (raw Kerberos tokens) too once the lab runs its
  KDCs (:mod:`migrator.lab.directory.kdc`): a Kerberos client principal ``user@REALM`` is the domain account
  ``user`` (the lab's realms are one forest). CredSSP is not offered, so clients that insist on it find no
  matching ``WWW-Authenticate`` offer.
- ``Basic`` only on HTTPS when enabled for the device, and only for local accounts (Windows maps Basic to
  local accounts only). On HTTP, WinRM's ``AllowUnencrypted=false`` refuses it with a plain 401.
- Wrong password → 401; an account that is not a local administrator of the device → 401 as well (WinRM's
  default SDDL grants only Administrators and Remote Management Users, and answers the rest with 401).

pyspnego's NTLM acceptor reads its credentials from the flat file named by ``NTLM_USER_FILE``, and nothing
else; MIT krb5's acceptor reads its keys from the keytab named by ``KRB5_KTNAME``. :class:`NtlmUserFiles`
writes one NTLM file per device (mode 0600 in a 0700 private directory), the KDC one keytab per computer, and
:class:`NegotiateAcceptor` points the variables at a device's files (:class:`AcceptorFiles`) only for the
duration of each acceptor step, under a process-wide lock; the steps run on the event loop thread and never
block (accepting a Kerberos ticket needs no KDC round trip).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import os
import struct
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import spnego
import spnego.channel_bindings
import spnego.exceptions

from migrator.lab.shell import Principal, PrincipalKind

_ENV_LOCK = threading.Lock()


@dataclass(frozen=True)
class Account:
    """An account that can sign in to a device. ``domain=None`` means a local account of that device."""

    username: str
    password: str = field(repr=False)
    sid: str
    domain: str | None = None  # NetBIOS domain name, e.g. "LAB"
    dns_domain: str | None = None  # e.g. "lab.example"; enables user@dns_domain (UPN) sign-in
    admin: bool = True  # member of the device's local Administrators group

    def principal_name(self, computer_name: str) -> str:
        """``DOMAIN\\user`` as ``whoami`` prints it (lowercase on Windows)."""
        return f"{(self.domain or computer_name)}\\{self.username}".lower()


class AuthenticationFailed(Exception):
    """Credentials were wrong or not allowed; the HTTP layer answers 401. Never carries the secret."""


@dataclass
class DeviceAccounts:
    """The accounts one device accepts, with the lookup rules Windows applies to the names clients send."""

    computer_name: str
    accounts: list[Account] = field(default_factory=list)

    def find(self, domain: str | None, username: str) -> Account | None:
        """The account named by ``domain``/``username`` as a client wrote it (``DOM\\u``, ``.\\u``, ``u@dns``)."""
        user = username
        dom = (domain or "").casefold()
        if "@" in user and not dom:
            user, _, upn_suffix = user.partition("@")
            for account in self.accounts:
                if account.username.casefold() == user.casefold() and (
                    (account.dns_domain or "").casefold() == upn_suffix.casefold()
                ):
                    return account
            return None
        local_names = {"", ".", self.computer_name.casefold()}
        for account in self.accounts:
            if account.username.casefold() != user.casefold():
                continue
            if account.domain is None and dom in local_names:
                return account
            if account.domain is not None and dom in {
                account.domain.casefold(),
                (account.dns_domain or "\0").casefold(),
            }:
                return account
        if not dom:
            # A bare user name is tried as a domain account when no local account has that name.
            for account in self.accounts:
                if account.username.casefold() == user.casefold():
                    return account
        return None

    def find_kerberos(self, user: str) -> Account | None:
        """The domain account a Kerberos client principal (``user@REALM``) names: the lab's realms are one
        forest whose admin is known in every domain, so the user name decides."""
        for account in self.accounts:
            if account.domain is not None and account.username.casefold() == user.casefold():
                return account
        return None

    def ntlm_lines(self) -> Iterator[str]:
        """Heimdal-format ``DOMAIN:USER:PASSWORD`` lines for every spelling the NTLM acceptor must match."""
        for account in self.accounts:
            if account.domain is None:
                domains = ["", ".", self.computer_name]
            else:
                domains = [account.domain] + ([account.dns_domain] if account.dns_domain else [])
                if not any(
                    a.domain is None and a.username.casefold() == account.username.casefold() for a in self.accounts
                ):
                    domains.append("")
            for dom in domains:
                yield f"{dom}:{account.username}:{account.password}"
            if account.dns_domain:
                yield f":{account.username}@{account.dns_domain}:{account.password}"


class NtlmUserFiles:
    """Per-device NTLM credential files for pyspnego's acceptor, in a private temporary directory."""

    def __init__(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="migrator-lab-ntlm-"))
        os.chmod(self._dir, 0o700)
        self._files: dict[str, Path] = {}

    def write(self, device: str, accounts: DeviceAccounts) -> Path:
        path = self._files.get(device) or self._dir / f"{len(self._files):06d}.ntlm"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            # Passwords containing ':' or newlines cannot be expressed in this format; such accounts are skipped
            # for NTLM (Basic still works) rather than corrupting the file.
            handle.writelines(
                line + "\n" for line in accounts.ntlm_lines() if line.count(":") == 2 and "\n" not in line
            )
        self._files[device] = path
        return path

    def path(self, device: str) -> Path:
        return self._files[device]

    def close(self) -> None:
        for path in self._files.values():
            path.unlink(missing_ok=True)
        self._files.clear()
        with contextlib.suppress(OSError):
            self._dir.rmdir()


@dataclass(frozen=True)
class AcceptorFiles:
    """What an acceptor reads its secrets from: pyspnego's NTLM user file and, when the lab has a KDC, MIT's
    keytab (``KRB5_KTNAME``) and profile (``KRB5_CONFIG``): the library reads them from the environment."""

    ntlm_user_file: Path
    keytab: Path | None = None
    krb5_config: Path | None = None

    def environment(self) -> dict[str, str]:
        env = {"NTLM_USER_FILE": str(self.ntlm_user_file)}
        if self.keytab is not None:
            env["KRB5_KTNAME"] = f"FILE:{self.keytab}"
        if self.krb5_config is not None:
            env["KRB5_CONFIG"] = str(self.krb5_config)
        return env


@contextlib.contextmanager
def _acceptor_environment(files: AcceptorFiles) -> Iterator[None]:
    with _ENV_LOCK:
        wanted = files.environment()
        previous = {name: os.environ.get(name) for name in wanted}
        os.environ.update(wanted)
        try:
            yield
        finally:
            for name, value in previous.items():
                if value is None:
                    # pop, not del: never fail the handshake over a variable someone else already removed
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


class NegotiateAcceptor:
    """One server context bound to a TCP connection: ``Negotiate`` (SPNEGO with NTLM or Kerberos inside, or a
    raw NTLM or Kerberos token, as Windows accepts) or ``Kerberos`` (raw Kerberos tokens only)."""

    def __init__(
        self, files: AcceptorFiles | Path, channel_binding: bytes | None, *, protocol: str = "negotiate"
    ) -> None:
        self._files = files if isinstance(files, AcceptorFiles) else AcceptorFiles(files)
        self.protocol = protocol
        bindings = (
            spnego.channel_bindings.GssChannelBindings(application_data=channel_binding) if channel_binding else None
        )
        with _acceptor_environment(self._files):
            # Negotiate: pyspnego's own SPNEGO, with NTLM from the user file and Kerberos through gssapi and
            # the keytab (when the lab has a KDC). Kerberos: gssapi alone.
            self.context = spnego.server(
                protocol=protocol,
                options=spnego.NegotiateOptions.use_negotiate
                if protocol == "negotiate"
                else spnego.NegotiateOptions.none,
                channel_bindings=bindings,
            )

    @property
    def complete(self) -> bool:
        return bool(self.context.complete)

    def step(self, token: bytes) -> bytes | None:
        """Feed the client's token; return the reply token. Bad credentials raise :class:`AuthenticationFailed`."""
        try:
            with _acceptor_environment(self._files):
                out: bytes | None = self.context.step(token)
        except (spnego.exceptions.SpnegoError, ValueError, struct.error, AttributeError) as err:
            # AttributeError: python-gssapi defers a failed accept's error and then fails reading the flags of
            # the context that never started. The messages name no secret (GSS status texts, NTLM reasons).
            raise AuthenticationFailed(f"{self.protocol} authentication failed: {type(err).__name__}: {err}") from None
        return out

    def client_user(self) -> tuple[str | None, str]:
        """(domain, user) as the client sent them in the NTLM AUTHENTICATE message."""
        principal = self.context.client_principal or ""
        domain, sep, user = principal.partition("\\")
        return (domain, user) if sep else (None, principal)

    @property
    def kerberos_user(self) -> str | None:
        """The user part of the client's Kerberos principal (``user@REALM``), or None for NTLM."""
        principal = self.context.client_principal or ""
        if "\\" in principal or "@" not in principal:
            return None
        return principal.rpartition("@")[0]

    def find_account(self, accounts: DeviceAccounts) -> Account | None:
        """The account the client authenticated as (Kerberos: a domain account; NTLM: as the client named it)."""
        user = self.kerberos_user
        if user is not None:
            return accounts.find_kerberos(user)
        return accounts.find(*self.client_user())


def parse_basic(value: str) -> tuple[str | None, str, str]:
    """(domain, user, password) from a ``Basic`` credential; malformed input raises AuthenticationFailed."""
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise AuthenticationFailed("malformed Basic credential") from None
    user, sep, password = decoded.partition(":")
    if not sep:
        raise AuthenticationFailed("malformed Basic credential")
    domain, dsep, name = user.partition("\\")
    return (domain, name, password) if dsep else (None, user, password)


def check_basic(accounts: DeviceAccounts, value: str) -> Account:
    """Verify a Basic credential: local accounts only, constant-time password comparison."""
    domain, user, password = parse_basic(value)
    account = accounts.find(domain, user)
    if account is None or account.domain is not None:
        raise AuthenticationFailed("Basic authentication failed")
    if not hmac.compare_digest(account.password.encode(), password.encode()):
        raise AuthenticationFailed("Basic authentication failed")
    return account


def principal_for(account: Account, computer_name: str) -> Principal:
    """The network-logon principal the Executor runs as."""
    return Principal(kind=PrincipalKind.ADMIN, name=account.principal_name(computer_name), sid=account.sid)


def authorize(account: Account | None) -> Account:
    """WinRM's default SDDL: only local administrators may connect."""
    if account is None or not account.admin:
        raise AuthenticationFailed("account is not allowed to connect")
    return account


def accounts_table(computer_name: str, accounts: Sequence[Account]) -> DeviceAccounts:
    return DeviceAccounts(computer_name=computer_name, accounts=list(accounts))
