"""The sans-IO pieces: SOAP parsing and faults, message encryption framing, certificates, account lookup."""

from __future__ import annotations

import base64
import ipaddress
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import spnego
from cryptography import x509

from migrator.lab.server import encryption, soap
from migrator.lab.server.auth import Account, AuthenticationFailed, DeviceAccounts, check_basic
from migrator.lab.server.certs import LabCA

ENVELOPE = b"""<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"
 xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
 xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell">
<s:Header><a:Action>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive</a:Action>
<a:MessageID>uuid:ABC</a:MessageID><w:MaxEnvelopeSize>153600</w:MaxEnvelopeSize>
<w:OperationTimeout>PT1M20.5S</w:OperationTimeout>
<w:ResourceURI>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</w:ResourceURI>
<w:SelectorSet><w:Selector Name="ShellId">S1</w:Selector></w:SelectorSet>
<w:OptionSet><w:Option Name="WSMAN_CMDSHELL_OPTION_KEEPALIVE">TRUE</w:Option></w:OptionSet></s:Header>
<s:Body><rsp:Receive><rsp:DesiredStream CommandId="C1">stdout stderr</rsp:DesiredStream></rsp:Receive></s:Body>
</s:Envelope>"""


def test_parse_request_reads_the_headers_the_server_acts_on() -> None:
    """Action, message id, envelope size, timeout, selectors, options and body are extracted."""
    request = soap.parse_request(ENVELOPE)
    assert request.action_name == "Receive"
    assert request.message_id == "uuid:ABC"
    assert request.max_envelope_size == 153600
    assert request.operation_timeout == 80.5
    assert request.selectors == {"ShellId": "S1"}
    assert request.options == {"WSMAN_CMDSHELL_OPTION_KEEPALIVE": "TRUE"}
    assert request.body is not None and request.body.tag.endswith("Receive")


@pytest.mark.parametrize("data", [b"<not xml", b"<x/>", ENVELOPE.replace(b"<a:MessageID>uuid:ABC</a:MessageID>", b"")])
def test_malformed_requests_become_sender_faults(data: bytes) -> None:
    """Malformed envelopes raise a WSManFault (s:Sender), never a Python error."""
    with pytest.raises(soap.WSManFault) as caught:
        soap.parse_request(data)
    assert caught.value.soap_code == "s:Sender"


def test_fault_xml_matches_what_clients_parse() -> None:
    """The fault carries code/subcode, reason, WSManFault@Code/@Machine and relates to the request."""
    xml = ET.fromstring(soap.build_fault(soap.operation_timed_out(), "uuid:ABC", "PC-001"))
    ns = soap.NS
    assert xml.findtext("s:Header/a:RelatesTo", namespaces=ns) == "uuid:ABC"
    assert xml.findtext("s:Header/a:Action", namespaces=ns) == soap.FAULT_ACTION
    fault = xml.find("s:Body/s:Fault", ns)
    assert fault is not None
    assert fault.findtext("s:Code/s:Subcode/s:Value", namespaces=ns) == "w:TimedOut"
    detail = fault.find("s:Detail/f:WSManFault", ns)
    assert detail is not None and detail.get("Code") == "2150858793" and detail.get("Machine") == "PC-001"


def test_duration_parsing() -> None:
    """xs:duration values as WinRM clients write them."""
    assert soap.parse_duration("PT20S", 0) == 20
    assert soap.parse_duration("PT1H", 0) == 3600
    assert soap.parse_duration(None, 60) == 60
    with pytest.raises(soap.WSManFault):
        soap.parse_duration("20 seconds", 0)


def _ntlm_pair(tmp_path: Path) -> tuple[spnego.ContextProxy, spnego.ContextProxy]:
    users = tmp_path / "users"
    users.write_text("LAB:u:p\n")
    os.environ["NTLM_USER_FILE"] = str(users)
    try:
        client = spnego.client("LAB\\u", "p", protocol="ntlm", options=spnego.NegotiateOptions.use_ntlm)
        server = spnego.server(protocol="negotiate", options=spnego.NegotiateOptions.use_negotiate)
        token = client.step()
        while token is not None and not (server.complete and client.complete):
            token = server.step(token)
            if token is not None:
                token = client.step(token)
    finally:
        del os.environ["NTLM_USER_FILE"]
    return client, server


def test_encryption_round_trip_with_a_real_ntlm_context(tmp_path: Path) -> None:
    """A body sealed by one side is unsealed by the other; tampering is detected."""
    client, server = _ntlm_pair(tmp_path)
    body = encryption.wrap(client, b"<s:Envelope/>")
    assert body.startswith(b"--Encrypted Boundary\r\n\tContent-Type: application/HTTP-SPNEGO-session-encrypted")
    assert encryption.unwrap(server, encryption.CONTENT_TYPE, body) == b"<s:Envelope/>"
    forged = encryption.wrap(client, b"<s:Envelope/>")
    forged = forged.replace(b"Length=13", b"Length=14")
    with pytest.raises(encryption.EncryptionError):
        encryption.unwrap(server, encryption.CONTENT_TYPE, forged)


def test_device_certificates_have_host_and_ip_and_are_cached(tmp_path: Path) -> None:
    """SANs are the host name and the address; a second issue reuses the cached certificate."""
    ca = LabCA(tmp_path)
    first = ca.issue("pc-001.lab.example", "127.0.5.1")
    cert = x509.load_der_x509_certificate(first.cert_der)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["pc-001.lab.example"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.5.1")]
    assert LabCA(tmp_path).issue("pc-001.lab.example", "127.0.5.1").cert_der == first.cert_der
    assert (tmp_path / "ca-key.pem").stat().st_mode & 0o077 == 0
    assert first.tls_server_end_point.startswith(b"tls-server-end-point:")


def test_account_lookup_follows_windows_name_forms() -> None:
    """Local accounts answer to user, .\\user and COMPUTER\\user; domain accounts to DOM\\user and UPN."""
    local = Account("admin", "x", sid="S-1")
    domain = Account("svc", "y", sid="S-2", domain="LAB", dns_domain="lab.example")
    table = DeviceAccounts("PC-001", [local, domain])
    assert table.find(None, "admin") is local
    assert table.find(".", "ADMIN") is local
    assert table.find("pc-001", "admin") is local
    assert table.find("LAB", "admin") is None
    assert table.find("lab", "svc") is domain
    assert table.find(None, "svc@lab.example") is domain
    assert table.find(None, "svc") is domain
    assert ":svc@lab.example:y" in set(table.ntlm_lines())


def test_basic_accepts_local_accounts_only() -> None:
    """Basic maps to local accounts; domain accounts and wrong passwords are refused without echoing secrets."""
    table = DeviceAccounts("PC-001", [Account("admin", "x", sid="S-1"), Account("svc", "y", sid="S-2", domain="LAB")])
    assert check_basic(table, base64.b64encode(b"admin:x").decode()).username == "admin"
    for raw in (b"LAB\\svc:y", b"admin:wrong", b"nocolon"):
        with pytest.raises(AuthenticationFailed) as caught:
            check_basic(table, base64.b64encode(raw).decode())
        assert "wrong" not in str(caught.value)
        assert "x" not in str(caught.value).split()
