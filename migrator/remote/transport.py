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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from migrator.errors import ProtocolError, RemoteError
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


def run_scripts(transport: Transport, items: Sequence[tuple[Script, Mapping[str, Any] | None]]) -> list[ScriptResult]:
    """Run scripts one after the other on a device: in one pipeline when the transport offers ``run_batch``
    (PSRP: one statement per script, so one Command and its Receives for them all), else one run each.

    The first script's failure raises as :meth:`Transport.run` does; a later one's ends the list early (what
    already ran has answered, and what follows it was only a read riding along)."""
    batch = getattr(transport, "run_batch", None)
    if batch is not None:
        results: list[ScriptResult] = batch(items)
        return results
    results = []
    for index, (script, parameters) in enumerate(items):
        try:
            results.append(transport.run(script, parameters))
        except RemoteError:
            if index == 0:
                raise
            break
    return results


def split_script_outputs(device: str, scripts: Sequence[Script], outputs: list[Any]) -> list[dict[str, Any]]:
    """The answers of scripts run as the statements of one pipeline, in order: each wrote exactly one JSON
    object (the scripts' contract), so the n-th JSON object is the n-th script's answer. Fewer than the scripts:
    the later ones did not finish."""
    answers: list[dict[str, Any]] = []
    for text in (o for o in outputs if isinstance(o, str) and o.strip()):
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            continue  # other text a script wrote on its way (one script alone: "the last text wins")
        if not isinstance(value, dict):
            continue
        if len(answers) == len(scripts):
            raise ProtocolError(device, f"script {scripts[-1].name} wrote more than one JSON object")
        answers.append(value)
    return answers


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
