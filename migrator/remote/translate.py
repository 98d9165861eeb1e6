"""Foreign exceptions → :mod:`migrator.errors`, in one place (architecture rule 5).

``sent`` tells whether the request had left when the error happened: a failure before sending is always safe to
retry, one after sending may mean the device acted (see :mod:`migrator.remote.retry`).

Kerberos failures are recognised first, whichever library raised them (pyspnego under pypsrp, pykerberos under
pywinrm's requests-kerberos, python-krb5 for migrator's own AS exchange): :func:`migrator.remote.kerberos.classify`
reads the krb5 error code, and :data:`KERBEROS_ERRORS` says which error of the tree each becomes. The Kerberos
exchange happens before the request it authenticates is sent, so none of them means the device acted.
"""

from __future__ import annotations

import socket
import ssl

import requests
from pypsrp import exceptions as psrp_exc
from winrm import exceptions as winrm_exc

from migrator.errors import (
    AccessDenied,
    AuthenticationFailed,
    ClockSkew,
    ConfigurationError,
    ConnectionLost,
    DeviceBusy,
    DeviceUnreachable,
    KdcUnreachable,
    KerberosUnavailable,
    MigratorError,
    ProtocolError,
    RemoteError,
    TicketExpired,
    UnknownServicePrincipal,
)
from migrator.remote.kerberos import Failure, advice, classify

# WS-Management fault codes (MS-WSMV 2.2.4.43 and winrm.h) that mean "busy now, try again later".
QUOTA_CODES = {
    0x803381A6,  # ERROR_WSMAN_QUOTA_MAX_OPERATIONS (MaxConcurrentOperationsPerUser)
    0x80338101,  # ERROR_WSMAN_QUOTA_MAX_SHELLS
    0x80338102,  # ERROR_WSMAN_QUOTA_MAX_OPERATIONS (older builds)
    0x80338103,  # ERROR_WSMAN_QUOTA_USER
    0x80338104,  # ERROR_WSMAN_QUOTA_SYSTEM
    0x80338111,  # ERROR_WSMAN_QUOTA_MAX_SHELLUSERS
    0x803381A4,  # ERROR_WSMAN_QUOTA_MAX_SHELLS_PPQ
    0x803381A5,  # ERROR_WSMAN_QUOTA_MAX_USERS_PPQ
    0x803381A7,  # ERROR_WSMAN_QUOTA_MAX_PLUGINOPERATIONS_PPQ
    0x8033819F,  # ERROR_WSMAN_QUOTA_MAX_OPERATIONS_USER_PPQ
}
ACCESS_DENIED_CODES = {5, 0x80070005}
OPERATION_TIMEOUT_CODE = 0x80338029  # ERROR_WSMAN_OPERATION_TIMEDOUT


# What each Kerberos failure is in the error tree (by what the caller can do; retry.py retries only KdcUnreachable).
KERBEROS_ERRORS: dict[Failure, type[RemoteError]] = {
    Failure.KDC_UNREACHABLE: KdcUnreachable,
    Failure.REALM_UNKNOWN: ConfigurationError,
    Failure.SERVER_UNKNOWN: UnknownServicePrincipal,
    Failure.CLIENT_UNKNOWN: AuthenticationFailed,
    Failure.BAD_PASSWORD: AuthenticationFailed,
    Failure.PASSWORD_EXPIRED: AuthenticationFailed,
    Failure.TICKET_EXPIRED: TicketExpired,
    Failure.NO_TICKET: TicketExpired,
    Failure.CLOCK_SKEW: ClockSkew,
    Failure.LIBRARIES_MISSING: KerberosUnavailable,
}


def kerberos_error(device: str, error: BaseException, *, spn: str | None = None) -> RemoteError | None:
    """The error of the tree for a Kerberos failure behind ``error``, or None when it is not one."""
    found = classify(error)
    if found is None:
        return None
    failure, words = found
    said = f" ({words})" if words else ""
    return KERBEROS_ERRORS[failure](device, f"Kerberos: {advice(failure, spn=spn)}{said}")


def _fault_code(error: BaseException) -> int | None:
    code = getattr(error, "code", None)
    if isinstance(code, int):
        return code & 0xFFFFFFFF
    if isinstance(code, str):
        try:
            return int(code, 0) & 0xFFFFFFFF
        except ValueError:
            return None
    return None


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    # urllib3 keeps the root cause in .reason / args
    for item in list(seen):
        reason = getattr(item, "reason", None)
        if isinstance(reason, BaseException) and reason not in seen:
            seen.append(reason)
        for arg in getattr(item, "args", ()):
            if isinstance(arg, BaseException) and arg not in seen:
                seen.extend(_chain(arg))
    return seen


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text[:300]


def translate(device: str, error: BaseException, *, sent: bool, spn: str | None = None) -> MigratorError:
    """Map any exception from requests/pypsrp/pywinrm/socket/ssl/Kerberos to the project's error tree (``spn``:
    the SPN asked, named in a Kerberos message)."""
    if isinstance(error, MigratorError):
        return error
    found = kerberos_error(device, error, spn=spn)
    if found is not None:
        return found
    chain = _chain(error)
    if any(isinstance(e, ssl.SSLCertVerificationError) for e in chain) or isinstance(
        error, requests.exceptions.SSLError
    ):
        return ConfigurationError(
            device,
            "the device's TLS certificate could not be verified: set ca_bundle in the inventory to the CA that "
            f"issued it ({_short(error)})",
        )
    if isinstance(error, psrp_exc.AuthenticationError | winrm_exc.InvalidCredentialsError):
        return AuthenticationFailed(device, "authentication failed: check the user name and password")
    if isinstance(error, winrm_exc.BasicAuthDisabledError):
        return ConfigurationError(device, "the device does not accept Basic authentication on this listener")
    if isinstance(error, winrm_exc.AuthenticationError):
        return AuthenticationFailed(device, f"authentication failed ({_short(error)})")
    if isinstance(error, psrp_exc.WinRMTransportError | winrm_exc.WinRMTransportError):
        status = getattr(error, "code", 0)
        status = status if isinstance(status, int) else 0
        if status == 401:
            return AuthenticationFailed(device, "authentication failed (HTTP 401): check the user name and password")
        if status == 403:
            return AccessDenied(device, "access denied (HTTP 403)")
        if status >= 500:
            return DeviceBusy(device, f"the WinRM service answered HTTP {status}", may_have_run=sent and status == 500)
        return ProtocolError(device, f"unexpected HTTP {status} from the WinRM service")
    if isinstance(error, psrp_exc.WSManFaultError | winrm_exc.WSManFaultError):
        code = _fault_code(error)
        reason = getattr(error, "reason", None) or getattr(error, "fault_description", None) or _short(error)
        reason = str(reason).strip()[:300]
        if code in QUOTA_CODES:
            return DeviceBusy(device, f"WinRM is busy (quota, 0x{code:08X}): {reason}")
        if code in ACCESS_DENIED_CODES:
            return AccessDenied(device, f"access denied: {reason}")
        if code == OPERATION_TIMEOUT_CODE:
            return ConnectionLost(device, f"the WinRM operation timed out: {reason}")
        detail = f"0x{code:08X}" if code is not None else "no code"
        return DeviceBusy(device, f"WS-Management fault ({detail}): {reason}", may_have_run=sent)
    if isinstance(error, winrm_exc.WinRMOperationTimeoutError):
        return ConnectionLost(device, "the WinRM operation timed out")
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return DeviceUnreachable(device, "connection timed out")
    if isinstance(error, requests.exceptions.ReadTimeout):
        if sent:
            return ConnectionLost(device, "no answer before the read timeout")
        return DeviceUnreachable(device, "no answer before the read timeout")
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return DeviceUnreachable(device, "connection refused (WinRM not listening, device offline or rebooting)")
    if any(isinstance(e, socket.gaierror) for e in chain):
        return DeviceUnreachable(device, "the device's name does not resolve")
    if any(isinstance(e, ConnectionResetError | BrokenPipeError) for e in chain) or isinstance(
        error, requests.exceptions.ChunkedEncodingError
    ):
        if sent:
            return ConnectionLost(device, "the connection was reset")
        return DeviceUnreachable(device, "the connection was reset")
    if isinstance(error, requests.exceptions.ConnectionError):
        text = _short(error)
        if "RemoteDisconnected" in text or "Connection aborted" in text:
            return (
                ConnectionLost(device, "the device closed the connection")
                if sent
                else DeviceUnreachable(device, "the device closed the connection")
            )
        return DeviceUnreachable(device, f"cannot connect ({text})")
    if isinstance(error, TimeoutError | socket.timeout):
        return ConnectionLost(device, "timed out") if sent else DeviceUnreachable(device, "timed out")
    if isinstance(error, OSError):
        return ConnectionLost(device, _short(error)) if sent else DeviceUnreachable(device, _short(error))
    if isinstance(error, psrp_exc.WinRMError | winrm_exc.WinRMError):
        return ProtocolError(device, f"{type(error).__name__}: {_short(error)}")
    return ProtocolError(device, f"unexpected {type(error).__name__}: {_short(error)}")
