"""WS-Man message encryption over HTTP ([MS-WSMV] 2.2.9.1, "Encrypted Message Types").

When a client authenticated with Negotiate (NTLM or Kerberos) or Kerberos talks plain HTTP, every SOAP body
travels sealed with the authentication context (whichever mechanism it holds: the code is the same), framed
as a two-part MIME document::

    --Encrypted Boundary\\r\\n
    \\tContent-Type: application/HTTP-SPNEGO-session-encrypted\\r\\n
    \\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=<plaintext length>\\r\\n
    --Encrypted Boundary\\r\\n
    \\tContent-Type: application/octet-stream\\r\\n
    <uint32 LE signature length><signature><sealed bytes>--Encrypted Boundary--\\r\\n

Sans-IO: the functions take a :class:`SealingContext` (pyspnego's ``wrap_winrm``/``unwrap_winrm``).
"""

from __future__ import annotations

import re
import struct
from typing import Protocol

SPNEGO_PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"
# After the ``Kerberos`` (not ``Negotiate``) scheme, [MS-WSMV] 2.2.9.1.2: the same framing, sealed with
# GSS_WrapEx of the Kerberos context (RFC 4121 wrap tokens: the "signature" is the token header).
KERBEROS_PROTOCOL = "application/HTTP-Kerberos-session-encrypted"
PROTOCOLS = (SPNEGO_PROTOCOL, KERBEROS_PROTOCOL)
BOUNDARY = "Encrypted Boundary"
CONTENT_TYPE = f'multipart/encrypted;protocol="{SPNEGO_PROTOCOL}";boundary="{BOUNDARY}"'


def content_type(protocol: str) -> str:
    return f'multipart/encrypted;protocol="{protocol}";boundary="{BOUNDARY}"'


def protocol_of(content_type: str) -> str | None:
    """Which of :data:`PROTOCOLS` a ``multipart/encrypted`` Content-Type names (None: another one)."""
    lowered = content_type.lower()
    for protocol in PROTOCOLS:
        if protocol.lower() in lowered:
            return protocol
    return None


_PART_SPLIT = re.compile(rb"--\s*" + re.escape(BOUNDARY.encode()) + rb"\r\n")


class WrapResultLike(Protocol):
    @property
    def header(self) -> bytes: ...

    @property
    def data(self) -> bytes: ...

    @property
    def padding_length(self) -> int: ...


class SealingContext(Protocol):
    """The part of a pyspnego context that message encryption needs."""

    def wrap_winrm(self, data: bytes) -> WrapResultLike: ...

    def unwrap_winrm(self, header: bytes, data: bytes) -> bytes: ...


class EncryptionError(Exception):
    """The encrypted body could not be parsed or did not verify (answered like a bad request)."""


def is_encrypted(content_type: str) -> bool:
    ct = content_type.lower()
    return ct.startswith(("multipart/encrypted", "multipart/x-multi-encrypted"))


def unwrap(context: SealingContext, content_type: str, payload: bytes) -> bytes:
    """Decrypt a ``multipart/encrypted`` request body into the SOAP envelope."""
    if protocol_of(content_type) is None:
        raise EncryptionError("unsupported encryption protocol")
    parts = [p for p in _PART_SPLIT.split(payload) if p]
    if len(parts) < 2 or len(parts) % 2:
        raise EncryptionError("malformed multipart/encrypted body")
    message = b""
    for index in range(0, len(parts), 2):
        header, body = parts[index], parts[index + 1]
        match = re.search(rb"Length=(\d+)", header)
        if not match:
            raise EncryptionError("OriginalContent length missing")
        expected = int(match.group(1))
        body = re.sub(rb"--\s*" + re.escape(BOUNDARY.encode()) + rb"--\r\n$", b"", body)
        prefix = b"\tContent-Type: application/octet-stream\r\n"
        if not body.startswith(prefix):
            raise EncryptionError("octet-stream part missing")
        sealed = body[len(prefix) :]
        if len(sealed) < 4:
            raise EncryptionError("sealed part too short")
        (sig_len,) = struct.unpack("<I", sealed[:4])
        signature, data = sealed[4 : 4 + sig_len], sealed[4 + sig_len :]
        try:
            plain = context.unwrap_winrm(signature, data)
        except Exception as err:  # pyspnego raises its own tree; the caller only needs "did not verify"
            raise EncryptionError(f"message did not verify: {type(err).__name__}") from None
        if len(plain) != expected:
            raise EncryptionError("decrypted length does not match OriginalContent")
        message += plain
    return message


def wrap(context: SealingContext, message: bytes, protocol: str = SPNEGO_PROTOCOL) -> bytes:
    """Seal a SOAP envelope into the ``multipart/encrypted`` body; send it with :func:`content_type` of the
    same ``protocol`` (the one the request used)."""
    result = context.wrap_winrm(message)
    sealed = struct.pack("<I", len(result.header)) + result.header + result.data
    head = (
        f"--{BOUNDARY}\r\n"
        f"\tContent-Type: {protocol}\r\n"
        f"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length={len(message) + result.padding_length}\r\n"
        f"--{BOUNDARY}\r\n"
        "\tContent-Type: application/octet-stream\r\n"
    ).encode()
    return head + sealed + f"--{BOUNDARY}--\r\n".encode()
