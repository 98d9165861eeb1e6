"""HTTP/1.1 for the WinRM listeners: h11 per TCP connection, authentication bound to the connection.

NTLM authenticates a *connection* ([MS-NTHT]): the 401/Negotiate handshake happens once per TCP connection and
later requests on it carry no ``Authorization`` header. Each :class:`HttpConnection` therefore keeps its own
Negotiate acceptor and authenticated account; on plain HTTP the same acceptor seals and unseals the bodies
(:mod:`migrator.lab.server.encryption`). This module is the thin I/O shell: parsing, auth decisions and
WS-Man handling live in the sans-IO modules and in :class:`~migrator.lab.server.service.DeviceService`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import h11

from migrator.lab.server import encryption, soap
from migrator.lab.server.auth import (
    AcceptorFiles,
    Account,
    AuthenticationFailed,
    NegotiateAcceptor,
    authorize,
    check_basic,
    principal_for,
)
from migrator.lab.server.faults import FaultKind
from migrator.lab.server.krberror import MAX_SKEW, is_spnego, skew_error_token, spnego_reject

if TYPE_CHECKING:
    from migrator.lab.server.lab import DeviceRuntime

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024 * 1024
SERVER_HEADER = b"Microsoft-HTTPAPI/2.0"
SOAP_CONTENT_TYPE = b"application/soap+xml;charset=UTF-8"


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


class _Drop(Exception):
    """Close the connection without answering (fault injection, reboot)."""


class HttpConnection:
    """One accepted TCP (or TLS) connection to one device listener."""

    def __init__(
        self,
        device: DeviceRuntime,
        https: bool,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        schedule: Callable[[Awaitable[None]], None],
    ) -> None:
        self.device = device
        self.https = https
        self.reader = reader
        self.writer = writer
        self._schedule = schedule
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
        self._acceptor: NegotiateAcceptor | None = None
        self._account: Account | None = None  # authenticated on this connection by Negotiate
        peer = writer.get_extra_info("peername")
        self.client_ip = str(peer[0]) if peer else ""

    # ---- I/O loop -------------------------------------------------------------------------------------

    async def serve(self) -> None:
        try:
            while True:
                request = await self._next_request()
                if request is None:
                    return
                head, body = request
                try:
                    reply = await self._handle(head, body)
                except _Drop:
                    self.writer.transport.abort()
                    return
                await self._send(reply)
                if self._h11.our_state is h11.MUST_CLOSE:
                    return
                self._h11.start_next_cycle()
        except (ConnectionError, asyncio.IncompleteReadError, h11.LocalProtocolError):
            return
        except h11.RemoteProtocolError:
            await self._send_error(400)
        finally:
            if not self.writer.is_closing():
                self.writer.close()

    async def _next_request(self) -> tuple[h11.Request, bytes] | None:
        head: h11.Request | None = None
        body = bytearray()
        while True:
            event = self._h11.next_event()
            if event is h11.NEED_DATA:
                data = await self.reader.read(65536)
                self._h11.receive_data(data)
                continue
            if isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > MAX_BODY:
                    raise h11.RemoteProtocolError("request body too large", error_status_hint=413)
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None  # h11 always yields Request first
                return head, bytes(body)
            elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return None

    async def _send(self, reply: Reply) -> None:
        headers = [
            (b"Server", SERVER_HEADER),
            (b"Content-Length", str(len(reply.body)).encode()),
            *reply.headers,
        ]
        data = self._h11.send(h11.Response(status_code=reply.status, headers=headers)) or b""
        data += self._h11.send(h11.Data(data=reply.body)) or b"" if reply.body else b""
        data += self._h11.send(h11.EndOfMessage()) or b""
        self.writer.write(data)
        await self.writer.drain()

    async def _send_error(self, status: int) -> None:
        try:
            if self._h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                await self._send(Reply(status, headers=[(b"Connection", b"close")]))
        except (ConnectionError, h11.LocalProtocolError):
            return

    # ---- request handling -----------------------------------------------------------------------------

    def _offer(self) -> Reply:
        """401 with what WinRM offers: Negotiate, plus Basic only over HTTPS when enabled."""
        headers = [(b"WWW-Authenticate", b"Negotiate")]
        if self.device.name in self.device.lab.keytabs:
            # WinRM's default Auth/Kerberos=true: offered once the lab has a KDC and a keytab.
            headers.append((b"WWW-Authenticate", b"Kerberos"))
        if self.https and self.device.allow_basic:
            headers.append((b"WWW-Authenticate", b'Basic realm="WSMAN"'))
        return Reply(401, headers=headers)

    async def _handle(self, head: h11.Request, body: bytes) -> Reply:
        device = self.device
        for rule in device.lab.faults.decide("http", device.name):
            if rule.kind is FaultKind.LATENCY:
                await device.lab.clock.sleep(device.lab.faults.delay_for(rule, device.name))
            elif rule.kind is FaultKind.DROP:
                raise _Drop
            elif rule.kind is FaultKind.REBOOT:
                self._schedule(device.lab.reboot(device.name, rule.duration))
                raise _Drop
            elif rule.kind is FaultKind.OFFLINE:
                self._schedule(device.lab.take_offline(device.name, rule.duration or None))
                raise _Drop
        if head.method != b"POST":
            return Reply(405, headers=[(b"Allow", b"POST")])
        if head.target.split(b"?", 1)[0].lower() != b"/wsman":
            return Reply(404)
        headers = {name.lower(): value for name, value in head.headers}
        account, auth_headers = self._authenticate(headers.get(b"authorization"))
        if account is None:
            return auth_headers if isinstance(auth_headers, Reply) else self._offer()
        extra = auth_headers if isinstance(auth_headers, list) else []
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        encrypted = encryption.is_encrypted(content_type)
        protocol = encryption.protocol_of(content_type) or encryption.SPNEGO_PROTOCOL
        if encrypted:
            if self._acceptor is None or not self._acceptor.complete or account is not self._account:
                return Reply(400, headers=extra)
            try:
                plain = encryption.unwrap(self._acceptor.context, content_type, body)
            except encryption.EncryptionError as err:
                log.info("rejected an encrypted request on %s: %s", device.name, err)
                return Reply(400, headers=extra)
        elif not body:
            # The empty POST clients send to finish authentication before encrypting.
            return Reply(200, headers=extra)
        elif not self.https:
            # AllowUnencrypted=false: plain-text SOAP over HTTP is refused.
            return self._offer()
        else:
            plain = body
        xml, status = await self._dispatch(plain, account)
        if encrypted:
            assert self._acceptor is not None
            sealed = encryption.wrap(self._acceptor.context, xml, protocol)
            return Reply(status, sealed, [(b"Content-Type", encryption.content_type(protocol).encode()), *extra])
        return Reply(status, xml, [(b"Content-Type", SOAP_CONTENT_TYPE), *extra])

    def _authenticate(self, header: bytes | None) -> tuple[Account | None, Reply | list[tuple[bytes, bytes]] | None]:
        """(account, None | extra headers) when authenticated, (None, Reply) when the answer is a 401."""
        device = self.device
        if header is None:
            return self._account, None
        scheme, _, value = header.decode("latin-1").strip().partition(" ")
        scheme = scheme.lower()
        try:
            if scheme == "negotiate":
                return self._negotiate(value, "Negotiate")
            if scheme == "kerberos" and device.name in device.lab.keytabs:
                return self._negotiate(value, "Kerberos")
            if scheme == "basic" and self.https and device.allow_basic:
                account = authorize(check_basic(device.accounts, value))
                self._password_changed()
                return account, None
        except AuthenticationFailed as err:
            log.info("authentication refused on %s (%s): %s", device.name, scheme, err)
            self._acceptor, self._account = None, None
            return None, self._offer()
        # Kerberos, CredSSP, NTLM-by-name, or Basic where it is not allowed: not offered.
        return None, self._offer()

    def _negotiate(self, value: str, scheme: str) -> tuple[Account | None, Reply | list[tuple[bytes, bytes]] | None]:
        """One step of ``Negotiate`` (NTLM or Kerberos) or ``Kerberos``; the reply names the same scheme."""
        device = self.device
        try:
            token = base64.b64decode(value.strip(), validate=True)
        except binascii.Error:
            raise AuthenticationFailed(f"malformed {scheme} token") from None
        protocol = scheme.lower()
        if self._acceptor is None or self._acceptor.complete or self._acceptor.protocol != protocol:
            binding = device.certificate.tls_server_end_point if self.https else None
            files = AcceptorFiles(
                device.lab.ntlm_files.path(device.name), device.lab.keytabs.get(device.name), device.lab.krb5_config
            )
            self._acceptor = NegotiateAcceptor(files, binding, protocol=protocol)
            self._account = None
        out = self._acceptor.step(token)
        header = scheme.encode() + b" "
        if not self._acceptor.complete:
            return None, Reply(401, headers=[(b"WWW-Authenticate", header + base64.b64encode(out or b""))])
        refused = self._skewed(token)
        if refused is not None:
            self._acceptor, self._account = None, None
            return None, Reply(401, headers=[(b"WWW-Authenticate", header + base64.b64encode(refused))])
        self._account = authorize(self._acceptor.find_account(device.accounts))
        self._password_changed()
        extra = [(b"WWW-Authenticate", header + base64.b64encode(out))] if out else []
        return self._account, extra

    def _skewed(self, token: bytes) -> bytes | None:
        """The ``clock_skew`` fault: a Kerberos AP-REQ (MIT accepted it: the real clocks agree) reaching a device
        whose clock is more than 5 minutes off is refused as Windows refuses it, with the KRB-ERROR
        KRB_AP_ERR_SKEW token (in a SPNEGO reject when the client spoke SPNEGO). None: accepted."""
        device = self.device
        if self._acceptor is None or self._acceptor.kerberos_user is None or not device.hostname:
            return None
        rules = device.lab.faults.decide("kerberos", device.name)
        skew = next((r.skew for r in rules if r.kind is FaultKind.CLOCK_SKEW and abs(r.skew) > MAX_SKEW), None)
        if skew is None:
            return None
        device_time = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=skew)
        realm = device.hostname.split(".", 1)[1] if "." in device.hostname else device.hostname
        error = skew_error_token("HTTP", device.hostname, realm, device_time)
        log.info("Kerberos AP-REQ refused on %s: its clock is %+.0f s off (KRB_AP_ERR_SKEW)", device.name, skew)
        return spnego_reject(error) if is_spnego(token) else error

    def _password_changed(self) -> None:
        """The 'unauthorized' fault: credentials that were right a moment ago are now refused."""
        if self.device.lab.faults.decide("auth", self.device.name):
            self._account = None
            raise AuthenticationFailed("password changed (injected fault)")

    async def _dispatch(self, plain: bytes, account: Account) -> tuple[bytes, int]:
        device = self.device
        message_id = ""
        try:
            request = soap.parse_request(plain)
            message_id = request.message_id
            principal = principal_for(account, device.computer_name)
            return await device.service.handle(request, principal, self.client_ip), 200
        except soap.WSManFault as fault:
            return soap.build_fault(fault, message_id, device.computer_name), fault.http_status
        except Exception:
            log.exception("unexpected error handling a request on %s", device.name)
            return soap.build_fault(soap.internal_error(), message_id, device.computer_name), 500
