"""One bound LDAP connection to one domain's directory (ldap3), every request counted, every error translated.

Theory of operation
-------------------
:class:`DirectoryClient` opens one connection to the domain's DC as :class:`~migrator.directory.settings.
DirectoryTarget` says (LDAPS verified by default; plain LDAP only with NTLM signing and sealing), binds once
(NTLM; a simple bind over LDAPS; SASL GSSAPI for ``auth: kerberos``) and serves searches, paged with the
paged-results control ([RFC 2696], OID 1.2.840.113556.1.4.319) in pages of AD's MaxPageSize (1,000): AD answers
sizeLimitExceeded past it without the control. :attr:`DirectoryClient.requests` counts the LDAP requests sent
(bind legs, each page, unbind), which is how a wave proves it reads the directory per domain, not per device.

ldap3's exceptions (its LDAPException tree, and the socket and ssl errors under it) are translated once, here,
by :func:`translate_error` into :class:`~migrator.errors.DirectoryError`'s tree, by what the caller can do:
retry later (unreachable), fix the credentials, fix the settings (TLS trust, a mechanism that needs a missing
package), or report it. Messages never hold the password (ldap3 never puts it in its messages; we clip them).
"""

from __future__ import annotations

import dataclasses
import inspect
import ssl
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import ldap3
from ldap3.core import exceptions as ldap_errors

from migrator.directory.settings import DirectoryTarget
from migrator.errors import (
    DirectoryConfigurationError,
    DirectoryCredentialsError,
    DirectoryError,
    DirectoryProtocolError,
    DirectoryUnreachable,
)
from migrator.remote import kerberos
from migrator.remote.credentials import Credentials

PAGED_RESULTS = "1.2.840.113556.1.4.319"
PAGE_SIZE = 1000  # AD's default MaxPageSize
IN_CHAIN = "1.2.840.113556.1.4.1941"  # LDAP_MATCHING_RULE_IN_CHAIN ([MS-ADTS] 3.1.1.3.4.4.3)

ConnectionFactory = Callable[[DirectoryTarget, Credentials], Any]

# LDAP result codes a modify of group members may answer without anything having gone wrong with the request
# itself ([RFC 4511] 4.1.9, Appendix A): AD's answer for a member already present (entryAlreadyExists, 68,
# ERROR_MEMBER_IN_GROUP 0x562) and for one not there (unwillingToPerform, 53, ERROR_MEMBER_NOT_IN_GROUP 0x561;
# some directories answer noSuchAttribute, 16), and an object that is gone (noSuchObject, 32).
ENTRY_ALREADY_EXISTS = 68
UNWILLING_TO_PERFORM = 53
NO_SUCH_ATTRIBUTE = 16
NO_SUCH_OBJECT = 32
_ANSWERED = {
    ldap_errors.LDAPEntryAlreadyExistsResult: ENTRY_ALREADY_EXISTS,
    ldap_errors.LDAPUnwillingToPerformResult: UNWILLING_TO_PERFORM,
    ldap_errors.LDAPNoSuchAttributeResult: NO_SUCH_ATTRIBUTE,
    ldap_errors.LDAPNoSuchObjectResult: NO_SUCH_OBJECT,
}


@dataclass(frozen=True)
class ModifyAnswer:
    """What the DC answered a modify: 0 (success) or one of the codes above; any other is raised, translated."""

    code: int
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.code == 0


@dataclass(frozen=True)
class DirectoryEntry:
    """One search result: its DN and raw attribute values (bytes), attribute names case-insensitive."""

    dn: str
    values: dict[str, list[bytes]] = field(default_factory=dict)

    def raw(self, name: str) -> list[bytes]:
        return self.values.get(name.casefold(), [])

    def texts(self, name: str) -> list[str]:
        return [value.decode("utf-8", "replace") for value in self.raw(name)]

    def text(self, name: str) -> str | None:
        found = self.texts(name)
        return found[0] if found else None


def _clip(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# What each Kerberos failure of a bind is in the directory's error tree (the devices' is in remote.translate).
KERBEROS_DIRECTORY_ERRORS: dict[kerberos.Failure, type[DirectoryError]] = {
    kerberos.Failure.KDC_UNREACHABLE: DirectoryUnreachable,
    kerberos.Failure.REALM_UNKNOWN: DirectoryConfigurationError,
    kerberos.Failure.SERVER_UNKNOWN: DirectoryConfigurationError,
    kerberos.Failure.CLIENT_UNKNOWN: DirectoryCredentialsError,
    kerberos.Failure.BAD_PASSWORD: DirectoryCredentialsError,
    kerberos.Failure.PASSWORD_EXPIRED: DirectoryCredentialsError,
    kerberos.Failure.TICKET_EXPIRED: DirectoryCredentialsError,
    kerberos.Failure.NO_TICKET: DirectoryCredentialsError,
    kerberos.Failure.CLOCK_SKEW: DirectoryConfigurationError,
    kerberos.Failure.LIBRARIES_MISSING: DirectoryConfigurationError,
}


def translate_error(err: BaseException, domain: str, *, spn: str | None = None) -> DirectoryError:
    """The :class:`DirectoryError` for a foreign exception raised while talking to ``domain``'s DC."""
    if isinstance(err, DirectoryError):
        return err
    found = kerberos.classify(err)
    if found is not None:
        failure, words = found
        kind = KERBEROS_DIRECTORY_ERRORS[failure]
        return kind(domain, f"Kerberos: {kerberos.advice(failure, spn=spn)}" + (f" ({words})" if words else ""))
    message = _clip(str(err) or type(err).__name__)
    if isinstance(err, ldap_errors.LDAPPackageUnavailableError):
        return DirectoryConfigurationError(domain, f"a package the authentication needs is missing: {message}")
    if isinstance(err, ldap_errors.LDAPSSLConfigurationError):
        return DirectoryConfigurationError(domain, f"TLS settings: {message}")
    if isinstance(err, ldap_errors.LDAPSocketOpenError):
        lowered = message.casefold()
        if "certificate" in lowered or "hostname" in lowered or "ssl" in lowered or "tls" in lowered:
            return DirectoryConfigurationError(
                domain, f"TLS: the DC's certificate is not trusted or does not name it ({message})"
            )
        return DirectoryUnreachable(domain, f"no answer from the domain controller: {message}")
    if isinstance(
        err,
        ldap_errors.LDAPSocketReceiveError
        | ldap_errors.LDAPSocketSendError
        | ldap_errors.LDAPSocketCloseError
        | ldap_errors.LDAPSessionTerminatedByServerError
        | ldap_errors.LDAPCommunicationError,
    ):
        return DirectoryUnreachable(domain, f"the connection to the domain controller was lost: {message}")
    if isinstance(err, ldap_errors.LDAPInvalidCredentialsResult | ldap_errors.LDAPBindError):
        return DirectoryCredentialsError(domain, f"the bind was refused: {message}")
    if isinstance(err, ldap_errors.LDAPInsufficientAccessRightsResult | ldap_errors.LDAPOperationsErrorResult):
        return DirectoryCredentialsError(domain, f"the account may not read this: {message}")
    if isinstance(err, ldap_errors.LDAPStrongerAuthRequiredResult | ldap_errors.LDAPAuthMethodNotSupportedResult):
        return DirectoryConfigurationError(domain, f"the DC refuses this authentication: {message}")
    if isinstance(err, ssl.SSLCertVerificationError):
        return DirectoryConfigurationError(domain, f"TLS: the DC's certificate is not trusted ({message})")
    if isinstance(err, TimeoutError | ConnectionError | OSError):
        return DirectoryUnreachable(domain, f"no answer from the domain controller: {message}")
    if isinstance(err, ldap_errors.LDAPException):
        return DirectoryProtocolError(domain, f"{type(err).__name__}: {message}")
    return DirectoryProtocolError(domain, f"unexpected {type(err).__name__}: {message}")


def ntlm_sealing_available() -> bool:
    """Whether this ldap3 signs and seals NTLM sessions (``Connection(session_security=ENCRYPT)``)."""
    return hasattr(ldap3, "ENCRYPT") and "session_security" in inspect.signature(ldap3.Connection).parameters


def _kerberos_principal(username: str, domain: str) -> str:
    """``DOMAIN\\user`` or ``user`` → ``user@REALM`` (the domain's DNS name upper-cased); a UPN is kept."""
    if "@" in username:
        user, _, realm = username.partition("@")
        return f"{user}@{realm.upper()}"
    return f"{username.rsplit(chr(92), 1)[-1]}@{domain.upper()}"


def _kerberos_credentials(target: DirectoryTarget, credentials: Credentials) -> Any:
    """GSSAPI initiator credentials from the same tickets the device transports use (migrator's private MEMORY
    cache from the password, or kinit's cache): see :mod:`migrator.remote.kerberos`."""
    kerberos.require_libraries()
    kerberos.use_profile(target.krb5_conf)
    if credentials.from_ccache:
        principal = credentials.principal
    else:
        principal = credentials.principal or _kerberos_principal(credentials.username, target.domain)
    cache = kerberos.tickets_for(dataclasses.replace(credentials, principal=principal)).ccache()
    import gssapi.raw  # type: ignore[import-not-found, unused-ignore]  # noqa: PLC0415 - the optional kerberos extra

    return gssapi.raw.acquire_cred_from({b"ccache": cache.encode()}, usage="initiate").creds


def open_ldap_connection(target: DirectoryTarget, credentials: Credentials) -> Any:
    """An unbound ldap3 connection as ``target`` says (the default :data:`ConnectionFactory`)."""
    tls = None
    if target.security == "ldaps":
        if target.verify is False:
            tls = ldap3.Tls(validate=ssl.CERT_NONE)
        elif target.verify is True:
            tls = ldap3.Tls(validate=ssl.CERT_REQUIRED)
        else:
            tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(target.verify))
    server = ldap3.Server(
        target.server,
        port=target.port,
        use_ssl=target.security == "ldaps",
        tls=tls,
        get_info=ldap3.NONE,
        connect_timeout=target.connect_timeout,
    )
    common: dict[str, Any] = {
        "raise_exceptions": True,
        "auto_referrals": False,
        "receive_timeout": int(max(30.0, target.connect_timeout)),  # ldap3 packs it as an integer
        "return_empty_attributes": False,
    }
    if target.auth != "kerberos" and credentials.from_ccache:
        raise DirectoryConfigurationError(
            target.domain,
            f"auth: {target.auth} needs a password, and only a Kerberos ticket was given (kinit's ccache): "
            "set auth: kerberos in the inventory's directory section, or give the password",
        )
    if target.auth == "kerberos":
        return ldap3.Connection(
            server,
            authentication=ldap3.SASL,
            sasl_mechanism=ldap3.KERBEROS,
            sasl_credentials=(target.sasl_host or target.server, None, _kerberos_credentials(target, credentials)),
            **common,
        )
    if target.auth == "simple":
        return ldap3.Connection(
            server,
            user=credentials.username,
            password=credentials.password.get_secret_value(),
            authentication=ldap3.SIMPLE,
            **common,
        )
    options: dict[str, Any] = {}
    if target.security == "ldap":
        # Signing and sealing of every message after the NTLM bind: what "LDAP server signing requirements =
        # Require signing" asks of a client on 389 (KB 4520412), and what keeps the results private. ldap3 2.9.1
        # (the latest release) has no NTLM session security; only a later ldap3 does: refuse rather than send
        # the directory's answers (and accept a DC's refusal) unsigned.
        if not ntlm_sealing_available():
            raise DirectoryConfigurationError(
                target.domain,
                f"security: ldap needs NTLM signing and sealing, which ldap3 {ldap3.__version__} cannot do; "
                "use security: ldaps (the default)",
            )
        options["session_security"] = ldap3.ENCRYPT
    return ldap3.Connection(
        server,
        user=credentials.username,
        password=credentials.password.get_secret_value(),
        authentication=ldap3.NTLM,
        **options,
        **common,
    )


class DirectoryClient:
    """One domain's directory over one bound connection; use as a context manager."""

    def __init__(
        self,
        target: DirectoryTarget,
        credentials: Credentials,
        *,
        connection_factory: ConnectionFactory = open_ldap_connection,
    ) -> None:
        self.target = target
        self._credentials = credentials
        self._factory = connection_factory
        self._connection: Any = None
        self.requests = 0  # LDAP requests sent: bind legs, search pages, unbind

    @property
    def domain(self) -> str:
        return self.target.domain

    def open(self) -> DirectoryClient:
        try:
            connection = self._factory(self.target, self._credentials)
            connection.open()
            self._connection = connection
            # NTLM binds in three requests (sicily discovery, negotiate, response: [MS-ADTS] 5.1.1.1.3).
            self.requests += 3 if self.target.auth == "ntlm" else 1
            if not connection.bind():
                result = connection.result or {}
                raise DirectoryCredentialsError(
                    self.domain, f"the bind was refused: {result.get('description')} {result.get('message', '')}"
                )
        except Exception as err:
            self.close()
            raise translate_error(err, self.domain, spn=self._spn) from None
        return self

    @property
    def _spn(self) -> str | None:
        """The DC's SPN a Kerberos bind asks for (``ldap/<dc fqdn>``), named in Kerberos error messages."""
        return f"ldap/{self.target.sasl_host or self.target.server}" if self.target.auth == "kerberos" else None

    def __enter__(self) -> DirectoryClient:
        return self.open()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            if connection.bound:
                self.requests += 1
            connection.unbind()
        except Exception:  # noqa: S110 - closing: the connection is gone either way
            pass

    def modify_members(self, dn: str, *, add: Sequence[str] = (), delete: Sequence[str] = ()) -> ModifyAnswer:
        """One LDAP modify of ``dn``'s ``member``: ``add`` and ``delete`` DNs in the same request (which AD
        applies whole or not at all). The answers a caller must tell apart come back as :class:`ModifyAnswer`;
        every other failure is raised as a :class:`DirectoryError`."""
        if self._connection is None:
            raise DirectoryProtocolError(self.domain, "modify before the connection is open")
        changes: list[tuple[str, list[str]]] = []
        if add:
            changes.append((ldap3.MODIFY_ADD, list(add)))
        if delete:
            changes.append((ldap3.MODIFY_DELETE, list(delete)))
        if not changes:
            return ModifyAnswer(0)
        try:
            self.requests += 1
            self._connection.modify(dn, {"member": changes})
        except tuple(_ANSWERED) as err:
            code = next(c for kind, c in _ANSWERED.items() if isinstance(err, kind))
            return ModifyAnswer(code, _clip(str(err)))
        except Exception as err:
            raise translate_error(err, self.domain) from None
        return ModifyAnswer(0)

    def search(
        self,
        base: str,
        search_filter: str,
        attributes: Sequence[str],
        *,
        scope: str = "SUBTREE",
    ) -> Iterator[DirectoryEntry]:
        """Every entry under ``base`` matching ``search_filter``, one page of :data:`PAGE_SIZE` at a time."""
        if self._connection is None:
            raise DirectoryProtocolError(self.domain, "search before the connection is open")
        cookie: bytes | None = None
        while True:
            try:
                self.requests += 1
                self._connection.search(
                    base,
                    search_filter,
                    search_scope=scope,
                    attributes=list(attributes),
                    paged_size=PAGE_SIZE,
                    paged_cookie=cookie,
                )
                response = list(self._connection.response or [])
                result = self._connection.result or {}
            except ldap_errors.LDAPNoSuchObjectResult:
                return  # the base does not exist: nothing under it
            except Exception as err:
                raise translate_error(err, self.domain) from None
            for item in response:
                if item.get("type") != "searchResEntry":
                    continue  # referrals (other domains of the forest): not followed
                raw = item.get("raw_attributes") or {}
                yield DirectoryEntry(item["dn"], {str(k).casefold(): list(v) for k, v in raw.items()})
            control = (result.get("controls") or {}).get(PAGED_RESULTS) or {}
            cookie = (control.get("value") or {}).get("cookie") or None
            if not cookie:
                return
