"""The one seam between the orchestrator and devices.

A :class:`Transport` runs a named :class:`~migrator.scripts.Script` with parameters on one device and returns
the single JSON object the script wrote, as a :class:`ScriptResult`. Two adapters implement it:
:class:`~migrator.remote.psrp.PsrpTransport` (default: one runspace pool per device, kept open across the steps
of a visit) and :class:`~migrator.remote.winrm.WinrmTransport` (the WinRS ``cmd`` shell, for hosts where only
that is allowed). Both translate every foreign exception into :mod:`migrator.errors` exactly once; the factory
that picks one for a device is :func:`migrator.remote.open_transport`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from migrator.errors import ProtocolError
from migrator.inventory import Connection, DeviceEntry
from migrator.remote.credentials import Credentials
from migrator.remote.kerberos import spn_text
from migrator.scripts import Script


@dataclass(frozen=True)
class ScriptResult:
    """What one script run gave back."""

    data: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    verbose: list[str] = field(default_factory=list)


class Transport(Protocol):
    """Run scripts on one device."""

    @property
    def device(self) -> str: ...

    @property
    def requests_sent(self) -> int:
        """WS-Man requests sent so far (HTTP POSTs, authentication legs included)."""

    def run(self, script: Script, parameters: Mapping[str, Any] | None = None) -> ScriptResult: ...

    def close(self) -> None: ...


class AdapterBase:
    """What both adapters share: the device they talk to, its settings, a request counter and a lock (one
    script at a time per device: a runspace pool or WinRS shell serves one visit)."""

    def __init__(self, device: DeviceEntry, connection: Connection, credentials: Credentials) -> None:
        self._entry = device
        self._connection = connection
        self._credentials = credentials
        self._requests = 0
        self._lock = threading.Lock()

    @property
    def device(self) -> str:
        return self._entry.name

    @property
    def requests_sent(self) -> int:
        return self._requests

    @property
    def _spn(self) -> str | None:
        """The SPN Kerberos asks for (named in its error messages), for auth: kerberos or negotiate."""
        if self._connection.auth not in ("kerberos", "negotiate"):
            return None
        return spn_text(self._entry, self._connection)


def parse_script_output(device: str, script: Script, outputs: list[Any]) -> dict[str, Any]:
    """The scripts' contract: exactly one JSON object written to the output stream (the last text wins)."""
    texts = [o for o in outputs if isinstance(o, str) and o.strip()]
    if not texts:
        raise ProtocolError(device, f"script {script.name} wrote no JSON object to its output")
    try:
        value = json.loads(texts[-1])
    except json.JSONDecodeError as err:
        raise ProtocolError(device, f"script {script.name} wrote output that is not JSON ({err.msg})") from None
    if not isinstance(value, dict):
        raise ProtocolError(device, f"script {script.name} wrote JSON that is not an object")
    return value
