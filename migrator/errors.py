"""The project's error tree, by what the caller can do about an error.

::

    MigratorError
    ├── InputError                 fix the input (file, line, field named in the message)
    └── RemoteError                something about one device (its name is in .device)
        ├── TransientError         retry later (with backoff); .may_have_run says if the device may have acted
        │   ├── DeviceUnreachable  refused / no route / connect timeout / rebooting: nothing was sent
        │   ├── ConnectionLost     reset or read timeout after the request left: the device may have acted
        │   ├── DeviceBusy         WinRM quota or HTTP 5xx fault: the device refused this request
        │   └── KdcUnreachable     Kerberos: no KDC of the realm answered: nothing was sent to the device
        ├── CredentialsError       fix credentials or rights: never retried
        │   ├── AuthenticationFailed   wrong user name or password (HTTP 401; Kerberos: unknown client, bad password)
        │   ├── TicketExpired          Kerberos: the ccache holds no valid ticket (expired, or none): kinit again
        │   └── AccessDenied           authenticated but not allowed (not a local administrator)
        ├── ConfigurationError     fix connection settings (TLS trust, scheme, auth mechanism): never retried
        │   ├── UnknownServicePrincipal  Kerberos: the KDC has no such SPN (spn_service / spn_hostname / fqdn)
        │   ├── ClockSkew              Kerberos: clocks more than 5 minutes apart (KRB_AP_ERR_SKEW)
        │   └── KerberosUnavailable    auth: kerberos without the `kerberos` extra (python-gssapi, krb5)
        ├── ScriptFailed           the script ran and failed on the device: carries its error records
        └── ProtocolError          the device answered something unreadable: give up on this device
    └── DirectoryError             something about one AD domain's directory (its name is in .domain)
        ├── DirectoryUnreachable   no DC answered (refused, timeout, dropped): read it again later
        ├── DirectoryCredentialsError  the bind was refused (wrong name or password), or a read was refused
        ├── DirectoryConfigurationError  TLS trust, port, mechanism (GSSAPI without python-gssapi)
        └── DirectoryProtocolError the DC answered something this client did not expect
    └── CloudError                 something about the Entra ID tenant, through Microsoft Graph (.tenant)
        ├── CloudUnavailable       no answer, 5xx, or still throttled (429) after the retries: retry later
        ├── CloudCredentialsError  the token was refused: wrong client secret or certificate, unknown app (AADSTS)
        ├── CloudAccessDenied      403: the app lacks an application permission (named in the message)
        ├── CloudNotFound          404: the user, device, group or method does not exist (any more)
        ├── CloudConfigurationError  TLS trust, authority, tenant or Graph URL cannot work
        └── CloudProtocolError     Graph answered something this client did not expect (or the lab refused it)

Foreign exceptions (requests, pypsrp, pywinrm, socket, ssl) are mapped into this tree once, at the adapters in
:mod:`migrator.remote`; ldap3's (and socket's, ssl's) for the directory once, in
:mod:`migrator.directory.client`; msal's and httpx's once, in :mod:`migrator.cloud.client`. Messages never
contain secrets.

Every command exits with one of :class:`ExitCode` (the same table is in the README).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    """What every ``migrator`` command's exit status means (one table, here and in the README)."""

    OK = 0
    """Done: the wave completed (or waits only for users, a DC or an unreachable device), the report was
    written, the audit log verified intact."""
    FAILED = 1
    """Devices failed or are in ``error``, a wave halted (failure budget, canary), or a check failed (``audit
    verify``: the log was tampered with)."""
    INPUT = 2
    """Bad input (inventory, playbook, options, credentials, anchor) or an unusable store (missing, not a
    migrator store, a newer schema, damaged, locked, read-only for a command that writes)."""
    OPERATOR = 3
    """An operator has to act: an approval gate, a pause, a confirmation declined."""


class MigratorError(Exception):
    """Base of every error the project raises on purpose."""

    action = "give up"  # what the caller can do: shown to users next to the message


class InputError(MigratorError):
    action = "fix the input"


class RemoteError(MigratorError):
    """An error about one device."""

    def __init__(self, device: str, message: str, *, may_have_run: bool = False) -> None:
        super().__init__(f"{device}: {message}")
        self.device = device
        self.detail = message
        self.may_have_run = may_have_run


class TransientError(RemoteError):
    action = "retry later"


class DeviceUnreachable(TransientError):
    """Nothing reached the device (connection refused, no route, connect timeout)."""


class ConnectionLost(TransientError):
    """The request was sent but the answer was lost: the device may have acted."""

    def __init__(self, device: str, message: str) -> None:
        super().__init__(device, message, may_have_run=True)


class DeviceBusy(TransientError):
    """The device refused the request for now (WinRM quota, service busy, HTTP 5xx)."""


class KdcUnreachable(TransientError):
    """Kerberos: no KDC of the realm answered (refused, timed out, none configured); the device was not reached."""


class CredentialsError(RemoteError):
    action = "fix the credentials"


class AuthenticationFailed(CredentialsError):
    pass


class TicketExpired(CredentialsError):
    """Kerberos: the credential cache holds no valid ticket (it expired, or there is none)."""

    action = "get a new ticket (kinit), or give the password so migrator gets its own"


class AccessDenied(CredentialsError):
    action = "grant the account local administrator rights, or use another account"


class ConfigurationError(RemoteError):
    action = "fix the connection settings"


class UnknownServicePrincipal(ConfigurationError):
    """Kerberos: the KDC knows no principal for the SPN asked (KDC_ERR_S_PRINCIPAL_UNKNOWN)."""

    action = "name the device's SPN: fqdn, spn_hostname or spn_service in the inventory (setspn -L on the computer)"


class ClockSkew(ConfigurationError):
    """Kerberos: the clocks of this machine and the KDC (or the device) differ by more than the allowed 5 min."""

    action = "synchronise the clocks (NTP; w32tm /resync on Windows) of this machine, the KDC and the device"


class KerberosUnavailable(ConfigurationError):
    """auth: kerberos (or negotiate with Kerberos) where python-gssapi / krb5 are not installed."""

    action = "install the kerberos extra: pip install 'migrator[kerberos]'"


class ProtocolError(RemoteError):
    action = "give up on this device and report it"


@dataclass(frozen=True)
class DeviceErrorRecord:
    """A PowerShell error record as the device reported it."""

    message: str
    fully_qualified_error_id: str = ""
    category: str = ""
    target: str = ""


class ScriptFailed(RemoteError):
    action = "read the device's error and decide"

    def __init__(self, device: str, script: str, records: list[DeviceErrorRecord]) -> None:
        first = records[0].message if records else "the script failed without an error record"
        super().__init__(device, f"script {script} failed: {first}", may_have_run=True)
        self.script = script
        self.records = records


class DirectoryError(MigratorError):
    """An error about one AD domain's directory (LDAP): a wave then falls back to what it knew without it."""

    def __init__(self, domain: str, message: str) -> None:
        super().__init__(f"directory of {domain}: {message}")
        self.domain = domain
        self.detail = message


class DirectoryUnreachable(DirectoryError):
    """No domain controller answered (connection refused, no route, timeout, connection dropped)."""

    action = "retry later"


class DirectoryCredentialsError(DirectoryError):
    """The bind was refused (wrong name or password), or the account may not read what was asked."""

    action = "fix the credentials"


class DirectoryConfigurationError(DirectoryError):
    """The connection settings cannot work: TLS trust, port, authentication mechanism or a missing package."""

    action = "fix the connection settings"


class DirectoryProtocolError(DirectoryError):
    """The domain controller answered something this client did not expect."""

    action = "give up and report it"


class CloudError(MigratorError):
    """An error about the Entra ID tenant reached through Microsoft Graph; the wave keeps what it recorded."""

    def __init__(self, tenant: str, message: str) -> None:
        super().__init__(f"Entra ID tenant {tenant}: {message}")
        self.tenant = tenant
        self.detail = message


class CloudUnavailable(CloudError):
    """No answer, a server error, or throttling that outlasted the retries."""

    action = "retry later"


class CloudCredentialsError(CloudError):
    """The token endpoint refused the app's credentials (wrong secret or certificate, unknown client id)."""

    action = "fix the app's credentials (MIGRATOR_GRAPH_CLIENT_SECRET or the certificate)"


class CloudAccessDenied(CloudError):
    """Graph refused the call: the app lacks the application permission it needs (admin consent)."""

    action = "grant the app the application permission named, with admin consent"


class CloudNotFound(CloudError):
    """The object asked for does not exist (a deleted device, an unknown user, a method already removed)."""

    action = "check the object still exists in Entra ID"


class CloudConfigurationError(CloudError):
    """The settings cannot work: TLS trust, authority, tenant id or Graph URL."""

    action = "fix the entra: section of the inventory"


class CloudProtocolError(CloudError):
    """Graph answered something this client did not expect."""

    action = "give up and report it"
