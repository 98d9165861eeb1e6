"""The LDAP session sans I/O, as a protocol transcript: requests built and responses read with ldap3's own
RFC 4511 classes and pyasn1, no sockets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ldap3
from ldap3.operation.bind import bind_operation
from ldap3.operation.search import search_operation
from ldap3.protocol.rfc4511 import LDAPMessage, ProtocolOp, UnbindRequest
from ldap3.utils.asn1 import encode
from pyasn1.codec.ber import decoder

from migrator.lab.directory.build import build_directories
from migrator.lab.directory.protocol import DomainController, LdapSession
from migrator.lab.fleet import generate_fleet, parse_mix


def _session(tmp_path: Path, tls: bool = False) -> LdapSession:
    fleet = generate_fleet(10, 2, parse_mix("key=50,cert=40,cloud=5,none=5"))
    corp = build_directories(fleet)["corp.contoso.com"]
    user_file = tmp_path / "ntlm"
    user_file.write_text("")
    controller = DomainController(corp.tree, "DC01.corp.contoso.com", "corp.contoso.com", "HQ", user_file)
    return LdapSession(controller, tls=tls)


def _request(message_id: int, name: str, op: Any) -> bytes:
    message = LDAPMessage()
    message["messageID"] = message_id
    choice = ProtocolOp()
    choice.setComponentByName(name, op)
    message["protocolOp"] = choice
    return bytes(encode(message))


def _responses(data: list[bytes]) -> list[tuple[str, Any]]:
    out = []
    for pdu in data:
        message, rest = decoder.decode(pdu, asn1Spec=LDAPMessage())
        assert rest == b""
        op = message["protocolOp"]
        out.append((op.getName(), op.getComponent()))
    return out


def test_gssapi_bind_is_not_modelled_until_the_kdc_exists(tmp_path: Path) -> None:
    """SASL GSSAPI / GSS-SPNEGO: authMethodNotSupported (7), saying the lab's KDC does not exist yet."""
    session = _session(tmp_path)
    for mechanism in ("GSSAPI", "GSS-SPNEGO"):
        request = bind_operation(3, ldap3.SASL, "", None, mechanism, b"")
        [(name, response)] = _responses(session.receive_data(_request(1, "bindRequest", request)))
        assert name == "bindResponse" and int(response["resultCode"]) == 7
        assert "not modelled by the lab" in str(response["diagnosticMessage"])
        assert "KDC" in str(response["diagnosticMessage"])


def test_bytes_arriving_one_at_a_time_make_one_answer(tmp_path: Path) -> None:
    """A PDU split across reads is answered once, when it is whole; two PDUs in one read get two answers."""
    session = _session(tmp_path)
    search = search_operation(
        "", "(objectClass=*)", ldap3.BASE, ldap3.DEREF_NEVER, ["dnsHostName"], False, 0, 0, True, True
    )
    pdu = _request(2, "searchRequest", search)
    out: list[bytes] = []
    for index in range(len(pdu)):
        out += session.receive_data(pdu[index : index + 1])
        if index < len(pdu) - 1:
            assert out == []
    names = [name for name, _ in _responses(out)]
    assert names == ["searchResEntry", "searchResDone"]
    twice = session.receive_data(pdu + pdu)
    assert [name for name, _ in _responses(twice)] == names * 2


def test_unbind_closes_and_answers_nothing(tmp_path: Path) -> None:
    """An unbind gets no response and closes the session."""
    session = _session(tmp_path)
    assert session.receive_data(_request(3, "unbindRequest", UnbindRequest())) == []
    assert session.closed
