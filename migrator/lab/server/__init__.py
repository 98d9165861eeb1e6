"""The lab's wire server: WS-Management (WinRM) with WinRS and PSRP, as unmodified pywinrm/pypsrp expect.

Theory of operation
-------------------
One asyncio event loop serves the whole fleet. Every device has its own loopback address (127.0.0.0/8) and two
listening sockets on it: HTTP (5985) and HTTPS (5986, a certificate from the lab CA whose SANs are the device's
host name and address); the fleet shares the two port numbers, and port 0 makes the lab choose free ones
(:mod:`migrator.lab.server.lab`). A TCP connection is handled by
:class:`~migrator.lab.server.http.HttpConnection` (h11), because NTLM authenticates connections, not requests.

Request path::

    bytes ─ h11 ─ fault "http" stage (latency, drop, reboot, offline)
          ─ auth (Negotiate/Kerberos via pyspnego, or Basic on HTTPS) ─ fault "auth" stage (401)
          ─ unseal (HTTP: multipart/encrypted, MS-WSMV 2.2.9.1)
          ─ soap.parse_request (sans-IO) ─ DeviceService.handle ─ fault "action" stage (500, TimedOut, quota)
              ├─ cmd shell:  Executor.run_command_line   (worker thread)
              └─ PSRP pool:  psrpcore ServerRunspacePool/ServerPipeline ↔ Runspace.invoke (worker thread)
          ─ soap.build_response / build_fault ─ seal ─ h11 ─ bytes

Nothing below the HTTP layer knows about sockets; nothing in the server knows device internals: work crosses
the :class:`~migrator.lab.shell.Executor` seam as command lines, commands, parameters and plain values.
Failures become SOAP faults as Windows writes them (never a traceback); secrets never reach logs or faults.

Public API: :class:`LabServer` (``add_device``, ``start``/``stop``, ``ca_bundle_path``, ``url``,
``take_offline``/``bring_online``/``reboot``, ``set_accounts``), :class:`BackgroundLab` (run it on a thread),
:class:`Account`, and the fault machinery (:class:`FaultPlan`, :class:`FaultRule`, :func:`load_fault_profile`,
:class:`VirtualClock`).
"""

from __future__ import annotations

from migrator.lab.server.auth import Account
from migrator.lab.server.faults import (
    FaultKind,
    FaultPlan,
    FaultProfile,
    FaultProfileError,
    FaultRule,
    LabClock,
    RealClock,
    VirtualClock,
    load_fault_profile,
    parse_fault_profile,
)
from migrator.lab.server.lab import BackgroundLab, DeviceRuntime, LabServer

__all__ = [
    "Account",
    "BackgroundLab",
    "DeviceRuntime",
    "FaultKind",
    "FaultPlan",
    "FaultProfile",
    "FaultProfileError",
    "FaultRule",
    "LabClock",
    "LabServer",
    "RealClock",
    "VirtualClock",
    "load_fault_profile",
    "parse_fault_profile",
]
