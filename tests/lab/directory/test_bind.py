"""Binds against a lab DC with the unmodified ldap3 client: NTLM, simple over LDAPS, and what AD refuses."""

from __future__ import annotations

import socket

import ldap3
import pytest

from tests.lab.directory.conftest import ADMIN, CORP_DN, PASSWORD, RunningDirectory

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def test_ntlm_bind_as_the_lab_admin_and_who_am_i(lab_directory: RunningDirectory) -> None:
    """ldap3's NTLM (sicily) bind succeeds for LAB\\migrator-admin; the DC says who the connection is."""
    connection = lab_directory.admin()
    assert connection.extend.standard.who_am_i() == f"u:CORP\\{ADMIN}"
    connection.unbind()


def test_ntlm_bind_in_the_domain_s_own_name(lab_directory: RunningDirectory) -> None:
    """The admin account is a domain account: CORP\\migrator-admin binds too."""
    connection = ldap3.Connection(
        lab_directory.ldap(), user=f"CORP\\{ADMIN}", password=PASSWORD, authentication=ldap3.NTLM
    )
    assert connection.bind(), connection.result
    connection.unbind()


def test_ntlm_bind_with_a_wrong_password_is_invalid_credentials(lab_directory: RunningDirectory) -> None:
    """A wrong password answers invalidCredentials (49) with AD's 52e data code."""
    connection = ldap3.Connection(
        lab_directory.ldap(), user=f"LAB\\{ADMIN}", password="wrong", authentication=ldap3.NTLM
    )
    assert not connection.bind()
    assert connection.result["result"] == 49
    assert "data 52e" in connection.result["message"]


def test_simple_bind_over_ldaps_trusting_the_lab_ca(lab_directory: RunningDirectory) -> None:
    """Over LDAPS (certificate validated against lab-ca.pem) a simple bind by DN, UPN or DOMAIN\\user succeeds."""
    for user in (f"CN={ADMIN},OU=Admins,{CORP_DN}", f"{ADMIN}@corp.contoso.com", f"CORP\\{ADMIN}"):
        connection = ldap3.Connection(lab_directory.ldaps(), user=user, password=PASSWORD)
        assert connection.bind(), (user, connection.result)
        assert connection.search(CORP_DN, "(sAMAccountName=krbtgt)", attributes=["cn"])
        connection.unbind()


def test_simple_bind_with_a_wrong_password_over_ldaps(lab_directory: RunningDirectory) -> None:
    """A wrong simple-bind password is invalidCredentials (49)."""
    connection = ldap3.Connection(lab_directory.ldaps(), user=f"CORP\\{ADMIN}", password="nope")
    assert not connection.bind()
    assert connection.result["result"] == 49


def test_simple_bind_without_tls_is_refused_as_ad_does(lab_directory: RunningDirectory) -> None:
    """On plain LDAP a simple bind is strongerAuthRequired (8), AD's answer under 'Require signing'."""
    connection = ldap3.Connection(lab_directory.ldap(), user=f"CORP\\{ADMIN}", password=PASSWORD)
    assert not connection.bind()
    assert connection.result["result"] == 8
    assert connection.result["message"].startswith("00002028")


def test_anonymous_bind_reads_the_root_dse_only(lab_directory: RunningDirectory) -> None:
    """Anonymous: the rootDSE answers, any other search is operationsError 000004DC."""
    connection = ldap3.Connection(lab_directory.ldap())
    assert connection.bind()
    assert connection.search("", "(objectClass=*)", search_scope=ldap3.BASE, attributes=["defaultNamingContext"])
    assert connection.entries[0].defaultNamingContext.value == CORP_DN
    assert not connection.search(CORP_DN, "(objectClass=*)", search_scope=ldap3.BASE)
    assert connection.result["result"] == 1
    assert connection.result["message"].startswith("000004DC")


def test_sasl_binds_are_refused_as_not_modelled(lab_directory: RunningDirectory) -> None:
    """SASL (here DIGEST-MD5; GSSAPI alike) is authMethodNotSupported, 'not modelled by the lab'."""
    connection = ldap3.Connection(
        lab_directory.ldap(),
        authentication=ldap3.SASL,
        sasl_mechanism=ldap3.DIGEST_MD5,
        sasl_credentials=(None, ADMIN, PASSWORD, None),
    )
    assert not connection.bind()
    assert connection.result["result"] == 7
    assert "not modelled by the lab" in connection.result["message"]


def test_unbind_closes_the_connection(lab_directory: RunningDirectory) -> None:
    """After an unbind the DC closes the TCP connection (RFC 4511 4.3)."""
    connection = lab_directory.admin()
    socket_ = connection.socket
    assert socket_ is not None
    raw = socket_.dup()
    connection.unbind()
    raw.settimeout(5)
    try:
        assert raw.recv(1) == b""
    except (TimeoutError, ConnectionResetError):
        pytest.fail("the DC did not close the connection after unbind")
    finally:
        raw.close()


def test_ntlm_bind_over_ldaps(lab_directory: RunningDirectory) -> None:
    """NTLM works over LDAPS too (the TLS layer is the lab CA's)."""
    connection = ldap3.Connection(
        lab_directory.ldaps(), user=f"LAB\\{ADMIN}", password=PASSWORD, authentication=ldap3.NTLM
    )
    assert connection.bind(), connection.result
    assert connection.search(CORP_DN, "(cn=Domain Admins)", attributes=["member"])
    connection.unbind()


def test_garbage_gets_a_notice_of_disconnection(lab_directory: RunningDirectory) -> None:
    """Bytes that are no LDAPMessage are answered with RFC 4511's notice of disconnection, then the DC closes."""
    dc = lab_directory.dc()
    with socket.create_connection((dc.address, dc.ldap_port), timeout=5) as raw:
        raw.sendall(b"\x30\x05\x02\x01\x01\xff\xff")
        reply = raw.recv(4096)
        assert b"1.3.6.1.4.1.1466.20036" in reply
        assert raw.recv(1) == b""
