"""The one seam to devices: transports (PSRP, WinRM), credentials, Kerberos (:mod:`migrator.remote.kerberos`:
tickets, SPN, profile, failures), error translation and retry.

:func:`open_transport` is the factory: it gives the adapter a device's connection settings ask for. The
:class:`~migrator.remote.transport.Transport` protocol the adapters implement lives in
:mod:`migrator.remote.transport`, which the adapters import; the factory imports them, so the protocol never
imports its implementations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from migrator.inventory import Connection, DeviceEntry
    from migrator.remote.credentials import Credentials
    from migrator.remote.transport import Transport


def open_transport(device: DeviceEntry, connection: Connection, credentials: Credentials) -> Transport:
    """The adapter the device's connection settings ask for."""
    # The adapters load pypsrp or pywinrm with requests, spnego and cryptography (a few hundred milliseconds):
    # imported here, only a command that reaches a device pays for them, not `status` or `audit verify`.
    if connection.transport == "winrm":
        from migrator.remote.winrm import WinrmTransport  # noqa: PLC0415

        return WinrmTransport(device, connection, credentials)
    from migrator.remote.psrp import PsrpTransport  # noqa: PLC0415

    return PsrpTransport(device, connection, credentials)
