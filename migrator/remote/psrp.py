"""PSRP adapter (pypsrp): one runspace pool per device, opened on first use and kept across a visit.

Each script runs as a command with parameters (MS-PSRP 2.2.2.10 CREATE_PIPELINE, 2.2.3.12 Command: ``Args``), so
a value can never become code. Opening a pool costs the WS-Man Create plus a Receive or two; each script costs
Command + Receive(s) + Signal/Delete, which is why the pool is reused.

**Define once per pool.** A script's text is sent once per runspace pool: the first pipeline that uses a script
in a pool defines it as a global function ``migrator_<script>_<sha16>`` (its own statement, before the calls);
every call, that one included, is the function invoked by name with the values as its parameters
(``IsScript`` false, the values in ``Args``: data, never text). Serialising and sealing the whole script text in
every pipeline was most of the client's CPU per call. The name carries a digest of the text, so a changed
script is a new function. The definitions are forgotten (and sent again) when the pool is discarded or a
pipeline fails, since the device's runspace may then not hold them.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

import requests
import spnego
from pypsrp.complex_objects import Command, CommandParameter, PSInvocationState
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from migrator.errors import ConfigurationError, DeviceErrorRecord, ScriptFailed
from migrator.inventory import Connection, DeviceEntry
from migrator.remote import kerberos
from migrator.remote.credentials import Credentials
from migrator.remote.tls import tls_verify
from migrator.remote.translate import translate
from migrator.remote.transport import AdapterBase, ScriptResult, parse_script_output, split_script_outputs
from migrator.scripts import Script


def wsman_options(device: DeviceEntry, connection: Connection, credentials: Credentials) -> dict[str, Any]:
    """pypsrp WSMan keyword arguments for a device (shared with tools that need a raw WSMan)."""
    verify = tls_verify(device.name, connection)
    options: dict[str, Any] = {
        "server": device.address,
        "port": connection.port,
        "username": credentials.username,
        "password": credentials.password.get_secret_value(),
        "ssl": connection.scheme == "https",
        "auth": connection.auth,
        "cert_validation": verify,
        "connection_timeout": int(connection.connect_timeout),
        "read_timeout": int(max(connection.read_timeout, connection.operation_timeout + 10)),
        "operation_timeout": connection.operation_timeout,
        "no_proxy": True,
        # "auto": NTLM over HTTP wraps every message (MS-WSMV 2.2.9.1); over HTTPS TLS protects it.
        "encryption": "auto",
    }
    if connection.auth == "certificate":
        options["certificate_pem"] = str(connection.certificate_pem)
        options["certificate_key_pem"] = str(connection.certificate_key_pem)
    if connection.auth in ("kerberos", "negotiate"):
        options.update(_negotiate_options(device, connection, credentials))
    elif credentials.from_ccache:
        raise ConfigurationError(device.name, f"auth: {connection.auth} needs a password; only Kerberos uses a ccache")
    return options


def _negotiate_options(device: DeviceEntry, connection: Connection, credentials: Credentials) -> dict[str, Any]:
    """pypsrp's Kerberos settings: the SPN, and the ticket as a pyspnego credential naming its cache (migrator's
    private MEMORY cache from the password, or the user's ccache): see :mod:`migrator.remote.kerberos`.

    ``negotiate`` is SPNEGO: Kerberos when a ticket can be had, NTLM with the password otherwise (where the KDC
    cannot be reached, or the libraries are missing), as Windows' Negotiate package chooses (SPNEGO, RFC 4178)."""
    options: dict[str, Any] = {"negotiate_service": kerberos.spn_service(connection)}
    host = kerberos.spn_host(device, connection)
    if host is not None:
        options["negotiate_hostname_override"] = host
    kerberos.use_profile(connection.krb5_conf)
    password = credentials.password.get_secret_value()
    try:
        kerberos.require_libraries()
        ticket = spnego.KerberosCCache(ccache=kerberos.tickets_for(credentials).ccache())
    except Exception as err:
        if connection.auth == "negotiate" and password and kerberos.negotiate_falls_back(err):
            return {**options, "username": credentials.username, "password": password}
        raise
    if connection.auth == "negotiate" and password:
        # Kerberos first, NTLM with the password should the KDC know no SPN for the name used (an IP address).
        options["username"] = [ticket, spnego.Password(credentials.username, password)]
    else:
        options["username"] = ticket
    options["password"] = None
    return options


def error_records(errors: list[Any]) -> list[DeviceErrorRecord]:
    """pypsrp ErrorRecord objects → plain records (message from the exception, as PowerShell shows it)."""
    records = []
    for record in errors:
        message = ""
        exception = getattr(record, "exception", None)
        for props in ("adapted_properties", "extended_properties", "property_sets"):
            values = getattr(exception, props, None)
            if isinstance(values, dict) and values.get("Message"):
                message = str(values["Message"])
                break
        if not message:
            message = str(getattr(record, "message", "") or record)
        records.append(
            DeviceErrorRecord(
                message=message,
                fully_qualified_error_id=str(getattr(record, "fq_error", "") or ""),
                category=str(getattr(record, "reason", "") or ""),
                target=str(getattr(record, "target_name", "") or ""),
            )
        )
    return records


class _OwnCopyCommand(Command):
    """A pipeline command that is its own deep copy.

    pypsrp deep-copies every Command each time it serialises a pipeline (``Pipeline._get_statements``), in case
    one command object sits in several statements (its comment: XML re-parenting). Ours are built for one
    pipeline, one per statement, and never shared or changed once sent: the copy (a third of the client's CPU
    per script, arguments included) buys nothing. ``copy.deepcopy`` honours ``__deepcopy__`` (the documented
    protocol of the copy module), so this needs no change to pypsrp."""

    def __deepcopy__(self, memo: dict[int, Any]) -> _OwnCopyCommand:
        return self


@cache
def function_name(script: Script) -> str:
    """The global function a script is defined as in a runspace pool: its name and a digest of its text."""
    digest = hashlib.sha256(script.text.encode("utf-8")).hexdigest()[:16]
    return f"migrator_{script.name}_{digest}"


@cache
def function_definition(script: Script) -> str:
    """The statement that defines the script's function (the script's own text as the body: its ``param()``
    block becomes the function's parameters). Only our shipped text goes in; values never do."""
    return f"function global:{function_name(script)} {{\n{script.text}\n}}"


class _CountingAdapter(requests.adapters.BaseAdapter):
    """Counts the HTTP requests of one device's session (authentication legs included) around the adapter
    pypsrp mounted: requests' public transport-adapter API instead of a patch of pypsrp's private methods.

    An authentication handler re-sends through ``response.connection`` (pypsrp's negotiate hook), so the
    responses say this adapter sent them, and the re-sent legs are counted too."""

    def __init__(self, inner: requests.adapters.BaseAdapter, count: Any) -> None:
        super().__init__()
        self._inner = inner
        self._count = count

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        self._count()
        response = self._inner.send(request, *args, **kwargs)
        response.connection = self  # type: ignore[assignment]  # typed as HTTPAdapter; any adapter re-sends
        return response

    def close(self) -> None:
        self._inner.close()


class PsrpTransport(AdapterBase):
    """Runs scripts on one device over PSRP, reusing one runspace pool."""

    def __init__(self, device: DeviceEntry, connection: Connection, credentials: Credentials) -> None:
        super().__init__(device, connection, credentials)
        self._wsman: WSMan | None = None
        self._pool: RunspacePool | None = None
        self._defined: set[str] = set()  # functions defined in the current pool (see the module docstring)

    def _count_request(self) -> None:
        self._requests += 1

    def _prepare_session(self, wsman: WSMan) -> None:
        """Build pypsrp's requests session now, as its first send would (one call of its builder, nothing
        patched), then: count every request through a wrapping adapter, and stop requests re-reading the
        environment on each one.

        pypsrp reads the environment (proxies, CA bundle) once, while it builds the session, and we ask for no
        proxy. Left on, requests would read the whole environment again on every request (proxy resolution in
        Session.send): a tenth of the orchestrator's CPU in a large wave."""
        transport = wsman.transport
        session = transport._build_session()  # what pypsrp's send() does when its session is None
        session.trust_env = False
        for prefix, adapter in list(session.adapters.items()):
            session.mount(prefix, _CountingAdapter(adapter, self._count_request))
        transport.session = session

    def _open(self) -> RunspacePool:
        if self._pool is not None:
            return self._pool
        try:
            wsman = WSMan(**wsman_options(self._entry, self._connection, self._credentials))
            self._prepare_session(wsman)
            pool = RunspacePool(wsman)
            pool.open()
        except Exception as err:
            raise translate(self.device, err, sent=False, spn=self._spn) from None
        self._wsman, self._pool = wsman, pool
        return pool

    def run(self, script: Script, parameters: Mapping[str, Any] | None = None) -> ScriptResult:
        return self.run_batch([(script, parameters)])[0]

    def run_batch(self, items: Sequence[tuple[Script, Mapping[str, Any] | None]]) -> list[ScriptResult]:
        """Run scripts as the statements of one pipeline (``add_statement``: MS-PSRP 2.2.3.11, each command's
        ``IsStatement`` ends one), each with its own parameters: one Command and its Receives for them all.
        PowerShell runs the statements in order and a terminating error stops the rest.

        The first script's failure raises as a single script's would; a later one's ends the list early (see
        :func:`~migrator.remote.transport.run_scripts`). Warnings and verbose records go with the first answer
        (the streams do not say which statement wrote them)."""
        scripts = [script for script, _ in items]
        with self._lock:
            pool = self._open()
            ps = self._pipeline(pool, items)
            try:
                outputs = ps.invoke()
            except Exception as err:
                # The pipeline may have started on the device: the pool is no longer trustworthy.
                self._discard()
                raise translate(self.device, err, sent=True, spn=self._spn) from None
            failed = ps.state == PSInvocationState.FAILED or ps.had_errors
            if ps.state == PSInvocationState.FAILED:
                self._defined.clear()  # a statement stopped the pipeline: a definition may not have run
            if len(items) == 1:
                if ps.state == PSInvocationState.FAILED or (ps.had_errors and not outputs):
                    raise ScriptFailed(self.device, scripts[0].name, error_records(list(ps.streams.error)))
                answers = [parse_script_output(self.device, scripts[0], list(outputs))]
            else:
                answers = split_script_outputs(self.device, scripts, list(outputs))
                if len(answers) < len(scripts):
                    self._defined.clear()
                if not answers:
                    if failed:
                        raise ScriptFailed(self.device, scripts[0].name, error_records(list(ps.streams.error)))
                    parse_script_output(self.device, scripts[0], [])  # raises: the first wrote no JSON object
            results = [ScriptResult(data=data) for data in answers]
            results[0] = ScriptResult(
                data=answers[0],
                warnings=[str(getattr(w, "message", w)) for w in ps.streams.warning],
                verbose=[str(getattr(v, "message", v)) for v in ps.streams.verbose],
            )
            return results

    def _pipeline(self, pool: RunspacePool, items: Sequence[tuple[Script, Mapping[str, Any] | None]]) -> PowerShell:
        """One pipeline for the scripts: first a statement defining each script this pool does not know yet,
        then one statement per script calling its function with that script's parameters."""
        ps = PowerShell(pool)
        version = pool.protocol_version or ""
        fresh: list[Script] = []
        for script, _ in items:
            if function_name(script) not in self._defined and script not in fresh:
                fresh.append(script)
        for script in fresh:
            ps.commands.append(
                _OwnCopyCommand(function_definition(script), version, is_script=True, end_of_statement=True)
            )
        for script, parameters in items:
            command = _OwnCopyCommand(function_name(script), version, is_script=False, end_of_statement=True)
            command.args = [CommandParameter(name=name, value=value) for name, value in (parameters or {}).items()]
            ps.commands.append(command)
        # Recorded before the answer: a pipeline that fails clears them all again (run_batch, _discard).
        self._defined.update(function_name(script) for script in fresh)
        return ps

    def _discard(self) -> None:
        self._defined.clear()
        pool, self._pool = self._pool, None
        wsman, self._wsman = self._wsman, None
        if wsman is not None:
            with contextlib.suppress(Exception):  # best effort on a connection already known to be broken
                wsman.close()
        del pool

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                with contextlib.suppress(Exception):  # a device that went away cannot close it: not an error
                    self._pool.close()
            self._discard()
