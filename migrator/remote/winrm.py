"""WinRM adapter (pywinrm): the WinRS ``cmd`` shell, for hosts where PowerShell remoting is not allowed.

A script runs as ``powershell.exe -EncodedCommand <wrapper>``; the wrapper is FIXED text around the fixed
script, and the parameters travel as a base64 literal of JSON that PowerShell decodes itself, so a value can
never become code (base64's alphabet cannot close a quoted string). When the command line would pass cmd.exe's
8,191-character limit, a short fixed bootstrap reads the same wrapper from standard input instead (the
technique Ansible's WinRM connection uses). One shell is kept per visit.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Mapping
from typing import Any

from winrm.protocol import Protocol

from migrator.errors import ConfigurationError, DeviceErrorRecord, ScriptFailed, UnknownServicePrincipal
from migrator.inventory import Connection, DeviceEntry
from migrator.remote import kerberos
from migrator.remote.credentials import Credentials
from migrator.remote.tls import tls_verify
from migrator.remote.translate import translate
from migrator.remote.transport import AdapterBase, ScriptResult, parse_script_output
from migrator.scripts import Script

POWERSHELL = "powershell.exe"
BASE_ARGS = ["-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass"]
CMD_LINE_LIMIT = 8000  # cmd.exe accepts 8,191 characters; keep a margin for the executable and switches
_STDIN_BOOTSTRAP = "$ErrorActionPreference = 'Stop'; & ([scriptblock]::Create([Console]::In.ReadToEnd()))"

_WRAPPER = """$ErrorActionPreference = 'Stop'
$migratorJson = [System.Text.Encoding]::UTF8.GetString([System.Convert]::FromBase64String('{payload}'))
$migratorArgs = $migratorJson | ConvertFrom-Json
$migratorParams = @{{}}
if ($null -ne $migratorArgs) {{
    foreach ($migratorProperty in $migratorArgs.PSObject.Properties) {{
        $migratorParams[$migratorProperty.Name] = $migratorProperty.Value
    }}
}}
& {{
{script}
}} @migratorParams
"""


def encode_parameters(parameters: Mapping[str, Any] | None) -> str:
    """Parameters → base64 of UTF-8 JSON (alphabet A-Z a-z 0-9 + / =: inert inside a quoted literal)."""
    return base64.b64encode(json.dumps(dict(parameters or {}), ensure_ascii=False).encode("utf-8")).decode("ascii")


def wrap(script: Script, parameters: Mapping[str, Any] | None) -> str:
    """The fixed wrapper around the fixed script; only the base64 payload varies."""
    return _WRAPPER.format(payload=encode_parameters(parameters), script=script.text)


def encoded_command(text: str) -> str:
    """``-EncodedCommand`` takes base64 of UTF-16LE."""
    return base64.b64encode(text.encode("utf-16-le")).decode("ascii")


def _stderr_records(stderr: str) -> list[DeviceErrorRecord]:
    lines = [line.rstrip() for line in stderr.splitlines() if line.strip()]
    if not lines:
        return []
    message_lines = [line for line in lines if not line.lstrip().startswith(("+ ", "At line:", "At "))]
    fqid = next((line.split(":", 1)[1].strip() for line in lines if "FullyQualifiedErrorId" in line), "")
    category = next((line.split(":", 1)[1].strip() for line in lines if "CategoryInfo" in line), "")
    return [DeviceErrorRecord(message=(message_lines or lines)[0], fully_qualified_error_id=fqid, category=category)]


class WinrmTransport(AdapterBase):
    """Runs scripts on one device through the WinRS cmd shell."""

    def __init__(self, device: DeviceEntry, connection: Connection, credentials: Credentials) -> None:
        super().__init__(device, connection, credentials)
        self._protocol: Protocol | None = None
        self._shell_id: str | None = None
        self._tickets: kerberos.Tickets | None = None  # set while the shell authenticates with Kerberos

    def _mechanism(self) -> str:
        """pywinrm's transport for the device's auth. pywinrm has no SPNEGO: ``negotiate`` is decided here as the
        Negotiate package decides (SPNEGO, RFC 4178): Kerberos when the device has a host name for its SPN and a
        ticket can be had, NTLM with the password otherwise (no KDC reachable, no libraries, an IP address)."""
        auth = self._connection.auth
        self._tickets = None
        if auth not in ("kerberos", "negotiate"):
            if self._credentials.from_ccache:
                raise ConfigurationError(self.device, f"auth: {auth} needs a password; only Kerberos uses a ccache")
            return auth
        kerberos.use_profile(self._connection.krb5_conf)
        password = bool(self._credentials.password.get_secret_value())
        if auth == "negotiate" and password and kerberos.spn_host(self._entry, self._connection) is None:
            return "ntlm"
        try:
            kerberos.require_libraries(pykerberos=True)
            tickets = kerberos.tickets_for(self._credentials)
            tickets.ccache()
        except Exception as err:
            if auth == "negotiate" and password and kerberos.negotiate_falls_back(err):
                return "ntlm"
            raise
        self._tickets = tickets
        return "kerberos"

    def _scope(self) -> contextlib.AbstractContextManager[None]:
        """pykerberos takes no credential cache: its calls run with ours as the thread's default."""
        return self._tickets.thread_default() if self._tickets is not None else contextlib.nullcontext()

    def _make_protocol(self, mechanism: str) -> Protocol:
        conn = self._connection
        verify = tls_verify(self._entry.name, conn)
        trust = verify if isinstance(verify, str) else "legacy_requests"
        spn: dict[str, Any] = {}
        if mechanism == "kerberos":
            # The principal comes from the cache (thread default, or the user's); SPN = service/host override.
            spn = {
                "service": kerberos.spn_service(conn),
                "kerberos_hostname_override": kerberos.spn_host(self._entry, conn),
            }
        protocol = Protocol(
            endpoint=f"{conn.scheme}://{self._entry.address}:{conn.port}/wsman",
            transport=mechanism,  # type: ignore[arg-type]
            username=None if mechanism == "kerberos" else self._credentials.username,
            password=None if mechanism == "kerberos" else self._credentials.password.get_secret_value(),
            server_cert_validation="ignore" if verify is False else "validate",
            ca_trust_path=trust,
            cert_pem=str(conn.certificate_pem) if conn.certificate_pem else None,
            cert_key_pem=str(conn.certificate_key_pem) if conn.certificate_key_pem else None,
            operation_timeout_sec=conn.operation_timeout,
            read_timeout_sec=int(max(conn.read_timeout, conn.operation_timeout + 10)),
            message_encryption="auto",
            proxy=None,
            **spn,
        )
        send = protocol.transport.send_message
        build = protocol.transport.build_session

        def counting(message: str | bytes) -> bytes:
            self._requests += 1
            return send(message)

        def built_once() -> Any:
            # As in the PSRP adapter: the environment (proxies, CA bundle) is read while the session is built;
            # requests would read it again on every request otherwise.
            session = build()
            session.trust_env = False
            return session

        protocol.transport.send_message = counting  # type: ignore[method-assign]
        protocol.transport.build_session = built_once  # type: ignore[method-assign]
        return protocol

    def _shell(self) -> tuple[Protocol, str]:
        if self._protocol is not None and self._shell_id is not None:
            return self._protocol, self._shell_id
        try:
            try:
                mechanism = self._mechanism()
                with self._scope():
                    protocol = self._make_protocol(mechanism)
                    shell_id = protocol.open_shell(codepage=65001)
            except Exception as err:
                raise translate(self.device, err, sent=False, spn=self._spn) from None
        except UnknownServicePrincipal:
            # SPNEGO's fallback: the KDC knows no SPN for this name, so Negotiate uses NTLM with the password.
            if self._connection.auth != "negotiate" or self._credentials.from_ccache:
                raise
            self._tickets = None
            try:
                protocol = self._make_protocol("ntlm")
                shell_id = protocol.open_shell(codepage=65001)
            except Exception as err:
                raise translate(self.device, err, sent=False, spn=self._spn) from None
        self._protocol, self._shell_id = protocol, shell_id
        return protocol, shell_id

    def run(self, script: Script, parameters: Mapping[str, Any] | None = None) -> ScriptResult:
        with self._lock:
            protocol, shell_id = self._shell()
            text = wrap(script, parameters)
            encoded = encoded_command(text)
            stdin: str | None = None
            if len(encoded) > CMD_LINE_LIMIT:
                encoded, stdin = encoded_command(_STDIN_BOOTSTRAP), text
            try:
                with self._scope():
                    command_id = protocol.run_command(shell_id, POWERSHELL, [*BASE_ARGS, "-EncodedCommand", encoded])
                    if stdin is not None:
                        protocol.send_command_input(shell_id, command_id, stdin.encode("utf-8"), end=True)
                    stdout_b, stderr_b, exit_code = protocol.get_command_output(shell_id, command_id)
                    protocol.cleanup_command(shell_id, command_id)
            except Exception as err:
                self._discard()
                raise translate(self.device, err, sent=True, spn=self._spn) from None
            stdout = stdout_b.decode("utf-8", errors="replace")
            stderr = stderr_b.decode("utf-8", errors="replace")
            lines = [line for line in stdout.splitlines() if line.strip()]
            if exit_code != 0 and not lines:
                raise ScriptFailed(self.device, script.name, _stderr_records(stderr))
            data = parse_script_output(self.device, script, lines[-1:] if lines else [])
            return ScriptResult(data=data)

    def _discard(self) -> None:
        self._protocol, self._shell_id = None, None

    def close(self) -> None:
        with self._lock:
            if self._protocol is not None and self._shell_id is not None:
                with contextlib.suppress(Exception), self._scope():  # the device may be gone: best effort
                    self._protocol.close_shell(self._shell_id)
            self._discard()
