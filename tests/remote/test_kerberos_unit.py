"""Kerberos without a lab: failures classified from the error objects the real libraries raise (python-gssapi's
GSSError, pykerberos' GSSError, requests-kerberos' and pyspnego's wrappers, python-krb5's text), their place in the
error tree and the retry rule, the inventory's SPN settings, and where the credentials come from.

The lab tests (tests/integration/test_kerberos_auth.py) provoke each failure for real; these pin the mapping for
every code, including those the lab cannot provoke (a client principal unknown, an expired password)."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr
from winrm.vendor.requests_kerberos.exceptions import KerberosExchangeError

from migrator.directory.client import open_ldap_connection, translate_error
from migrator.directory.settings import DirectoryTarget
from migrator.errors import (
    AuthenticationFailed,
    ClockSkew,
    ConfigurationError,
    DirectoryConfigurationError,
    DirectoryCredentialsError,
    DirectoryUnreachable,
    InputError,
    KdcUnreachable,
    KerberosUnavailable,
    TicketExpired,
    UnknownServicePrincipal,
)
from migrator.inventory import load_inventory
from migrator.remote import kerberos
from migrator.remote.credentials import Credentials, load_credentials
from migrator.remote.retry import should_retry
from migrator.remote.translate import KERBEROS_ERRORS, translate
from migrator.yamlsource import InputFileError

BASE = kerberos.ERROR_TABLE_BASE_KRB5
GSS_S_FAILURE = 851968
# (minor code as MIT returns it, its text, what it is)
REAL = [
    (BASE + 37, "Clock skew too great", ClockSkew),
    (BASE + 7, "Server HTTP/nohost.corp.example@CORP.EXAMPLE not found in Kerberos database", UnknownServicePrincipal),
    (BASE + 32, "Ticket expired", TicketExpired),
    (-1765328228, "Cannot contact any KDC for realm 'CORP.EXAMPLE'", KdcUnreachable),
    (-1765328243, "No Kerberos credentials available (default cache: FILE:/tmp/krb5cc_0)", TicketExpired),
    (BASE + 6, "Client 'nobody@CORP.EXAMPLE' not found in Kerberos database", AuthenticationFailed),
    (BASE + 24, "Preauthentication failed", AuthenticationFailed),
    (BASE + 23, "Password has expired", AuthenticationFailed),
    (-1765328230, 'Cannot find KDC for realm "CORP.EXAMPLE"', ConfigurationError),
]


def _optional(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


gssapi_raw = _optional("gssapi.raw")
pykerberos = _optional("kerberos")


@pytest.mark.parametrize(("code", "text", "expected"), REAL)
def test_pykerberos_errors(code: int, text: str, expected: type) -> None:
    """pykerberos' GSSError ((major text, major), (minor text, minor)), as pywinrm's requests-kerberos gets it,
    and the KerberosExchangeError it wraps it in (text only)."""
    if pykerberos is None:
        pytest.skip("pykerberos is not installed (the kerberos extra)")
    error = pykerberos.GSSError(("Unspecified GSS failure", GSS_S_FAILURE), (text, code))
    translated = translate("PC-1", error, sent=False, spn="HTTP/pc-1.corp.example")
    assert type(translated) is expected
    assert text[:20] in str(translated)
    wrapped = KerberosExchangeError(f"authGSSClientStep() failed: {error.args}")
    assert type(translate("PC-1", wrapped, sent=True)) is expected


@pytest.mark.parametrize(("code", "text", "expected"), REAL)
def test_gssapi_errors_and_pyspnego_wrapping(code: int, text: str, expected: type) -> None:
    """python-gssapi's GSSError (unsigned minor code), alone and as pyspnego wraps it for pypsrp."""
    if gssapi_raw is None:
        pytest.skip("python-gssapi is not installed (the kerberos extra)")
    import spnego.exceptions  # noqa: PLC0415 - beside the test that needs it

    error = gssapi_raw.GSSError(GSS_S_FAILURE, code & 0xFFFFFFFF)
    assert type(translate("PC-1", error, sent=False)) is expected
    try:
        raise spnego.exceptions.SpnegoError(base_error=error, context_msg="Processing security token")
    except spnego.exceptions.SpnegoError as wrapped:
        assert type(translate("PC-1", wrapped, sent=False)) is expected


def test_krb5_text_and_gss_major_codes() -> None:
    """python-krb5's message carries the code at its end; a bare GSS_S_NO_CRED / CREDENTIALS_EXPIRED major."""
    assert kerberos.classify(RuntimeError("Decrypt integrity check failed -1765328353")) == (
        kerberos.Failure.BAD_PASSWORD,
        "Decrypt integrity check failed",
    )

    class Major(Exception):
        maj_code = kerberos.GSS_S_CREDENTIALS_EXPIRED
        min_code = 0

    found = kerberos.classify(Major("expired"))
    assert found is not None and found[0] is kerberos.Failure.TICKET_EXPIRED
    assert kerberos.classify(ConnectionRefusedError("refused")) is None
    assert kerberos.classify(RuntimeError("port 17653 and 1765328 are not codes")) is None


def test_every_failure_has_a_class_a_message_and_a_retry_rule() -> None:
    """Only KdcUnreachable is retried; every failure has advice naming what to do, and no device acted."""
    assert set(KERBEROS_ERRORS) == set(kerberos.Failure)
    for failure, kind in KERBEROS_ERRORS.items():
        error = kind("PC-1", kerberos.advice(failure, spn="HTTP/pc-1"))
        assert should_retry(error, idempotent=False) is (failure is kerberos.Failure.KDC_UNREACHABLE)
        assert not error.may_have_run
    assert "spn_hostname" in kerberos.advice(kerberos.Failure.SERVER_UNKNOWN, spn="HTTP/x")
    assert "kinit" in kerberos.advice(kerberos.Failure.TICKET_EXPIRED)
    assert "synchronise" in kerberos.advice(kerberos.Failure.CLOCK_SKEW)
    problem = kerberos.KerberosProblem(kerberos.Failure.LIBRARIES_MISSING, "gssapi missing")
    assert isinstance(translate("PC-1", problem, sent=False), KerberosUnavailable)


def test_directory_maps_the_same_failures() -> None:
    """The directory's bind: KDC unreachable → read again later; SPN and skew → settings; tickets → credentials."""
    cases = {
        kerberos.Failure.KDC_UNREACHABLE: DirectoryUnreachable,
        kerberos.Failure.SERVER_UNKNOWN: DirectoryConfigurationError,
        kerberos.Failure.CLOCK_SKEW: DirectoryConfigurationError,
        kerberos.Failure.TICKET_EXPIRED: DirectoryCredentialsError,
        kerberos.Failure.LIBRARIES_MISSING: DirectoryConfigurationError,
    }
    for failure, expected in cases.items():
        error = translate_error(kerberos.KerberosProblem(failure, "detail"), "corp.example", spn="ldap/dc01")
        assert type(error) is expected and "Kerberos" in str(error)


def _inventory(tmp_path: Path, defaults: dict[str, Any], device: dict[str, Any] | None = None) -> Path:
    path = tmp_path / "inventory.yaml"
    entry = {"name": "PC-1", "address": "127.0.0.9", "fqdn": "pc-1.corp.example", **(device or {})}
    path.write_text(yaml.safe_dump({"defaults": defaults, "devices": [entry]}))
    return path


def test_inventory_spn_settings(tmp_path: Path) -> None:
    """spn_service and spn_hostname reach the connection; spn_hostname wins over fqdn for the SPN's host."""
    inventory = load_inventory(
        _inventory(tmp_path, {"auth": "kerberos", "spn_service": "WSMAN"}, {"spn_hostname": "alias.corp.example"})
    )
    entry = inventory.devices[0]
    connection = inventory.connection(entry)
    assert kerberos.spn_text(entry, connection) == "WSMAN/alias.corp.example"
    plain = load_inventory(_inventory(tmp_path, {"auth": "kerberos"}))
    assert kerberos.spn_text(plain.devices[0], plain.connection(plain.devices[0])) == "HTTP/pc-1.corp.example"


@pytest.mark.parametrize(
    ("defaults", "device", "message"),
    [
        ({"spn_service": "HTTP/pc-1"}, {}, "not an SPN service class"),
        ({}, {"spn_hostname": "127.0.0.9"}, "is an IP address"),
        ({}, {"spn_hostname": "not a host"}, "not a DNS host name"),
        ({"auth": "kerberos"}, {"fqdn": None}, "set fqdn or spn_hostname"),
        ({"krb5_conf": "missing.conf"}, {}, "no krb5.conf at"),
    ],
)
def test_inventory_refuses_bad_kerberos_settings(
    tmp_path: Path, defaults: dict[str, Any], device: dict[str, Any], message: str
) -> None:
    """Each bad setting is refused at load with the file, the field and what to write."""
    path = _inventory(tmp_path, defaults, device)
    with pytest.raises(InputFileError) as caught:
        load_inventory(path)
    assert message in str(caught.value) and str(path) in str(caught.value)


def test_krb5_conf_is_relative_to_the_inventory_and_goes_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """krb5_conf resolves beside the inventory; use_profile puts it first in KRB5_CONFIG, keeping the rest."""
    (tmp_path / "krb5.conf").write_text("[libdefaults]\n")
    inventory = load_inventory(_inventory(tmp_path, {"krb5_conf": "krb5.conf"}))
    conf = inventory.connection(inventory.devices[0]).krb5_conf
    assert conf == (tmp_path / "krb5.conf").resolve()
    monkeypatch.setenv("KRB5_CONFIG", "/etc/other.conf")
    kerberos.use_profile(conf)
    kerberos.use_profile(conf)
    assert os.environ["KRB5_CONFIG"] == f"{conf}:/etc/other.conf"


def test_credentials_from_a_ccache_when_no_password(tmp_path: Path) -> None:
    """No password anywhere: the ccache's principal (kinit's) is used, with an empty password; a password, when
    given, always wins; MIGRATOR_PRINCIPAL is read from the secrets file."""
    found = load_credentials(None, environ={}, interactive=False, ccache_principal=lambda: "admin@CORP.EXAMPLE")
    assert found.from_ccache and found.principal == "admin@CORP.EXAMPLE" and found.username == "admin@CORP.EXAMPLE"
    secrets = tmp_path / "s.env"
    secrets.write_text(
        "MIGRATOR_USERNAME=CORP\\admin\nMIGRATOR_PASSWORD=pw-123\nMIGRATOR_PRINCIPAL=admin@CORP.EXAMPLE\n"
    )
    given = load_credentials(secrets, environ={}, interactive=False, ccache_principal=lambda: "other@X")
    assert not given.from_ccache and given.principal == "admin@CORP.EXAMPLE"
    assert "pw-123" not in repr(given)
    with pytest.raises(InputError, match="kinit"):
        load_credentials(None, environ={}, interactive=False, ccache_principal=lambda: None)


def test_principal_of() -> None:
    """MIGRATOR_PRINCIPAL wins; a UPN's suffix becomes the realm; DOMAIN\\user uses krb5.conf's default realm."""

    def principal(username: str, given: str | None = None) -> str | None:
        return kerberos.principal_of(Credentials(username, SecretStr("x"), given))

    assert principal("CORP\\admin", "admin@CORP.EXAMPLE") == "admin@CORP.EXAMPLE"
    assert principal("admin@corp.example") == "admin@CORP.EXAMPLE"
    assert principal("CORP\\admin") == "admin"


def test_a_password_tgt_is_fetched_once_and_renewed_before_it_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    """One AS exchange per process until RENEW_BEFORE the end (or half-way through a short lifetime), then a new
    one into a new cache; the password never shows in the object's repr."""
    now = [1000.0]
    fetched: list[str] = []

    def kinit(self: kerberos.Tickets) -> tuple[str, float]:
        fetched.append(f"MEMORY:migrator-{len(fetched)}")
        return fetched[-1], now[0] + lifetime[0]

    lifetime = [36000.0]
    monkeypatch.setattr(kerberos.Tickets, "_kinit", kinit)
    tickets = kerberos.Tickets("admin@CORP.EXAMPLE", "pw-secret", clock=lambda: now[0])
    assert tickets.ccache() == tickets.ccache() == "MEMORY:migrator-0"
    now[0] += 36000.0 - kerberos.RENEW_BEFORE - 1
    assert tickets.ccache() == "MEMORY:migrator-0"
    now[0] += 2
    assert tickets.ccache() == "MEMORY:migrator-1"
    lifetime[0] = 120.0  # a KDC that issues two-minute tickets: renewed half-way, not on every call
    now[0] += 36000.0
    assert tickets.ccache() == "MEMORY:migrator-2" == tickets.ccache()
    now[0] += 61
    assert tickets.ccache() == "MEMORY:migrator-3"
    assert "pw-secret" not in repr(tickets) and tickets.private


def test_a_ccache_cannot_bind_with_ntlm() -> None:
    """Credentials from a ccache (no password) with the directory's auth: ntlm: refused, saying what to set."""
    target = DirectoryTarget("corp.example", "CORP", "dc01", 636, "ldaps", "ntlm", True, "devices")
    with pytest.raises(DirectoryConfigurationError, match="auth: kerberos"):
        open_ldap_connection(target, Credentials("admin@CORP.EXAMPLE", SecretStr(""), "admin@CORP.EXAMPLE"))


def test_csv_inventory_names_the_spn(tmp_path: Path) -> None:
    """A CSV inventory takes fqdn, spn_service and spn_hostname columns too."""
    path = tmp_path / "inventory.csv"
    path.write_text(
        "name,address,fqdn,auth,spn_service,spn_hostname\nPC-1,127.0.0.9,pc-1.corp.example,kerberos,WSMAN,\n"
    )
    inventory = load_inventory(path)
    entry = inventory.devices[0]
    assert kerberos.spn_text(entry, inventory.connection(entry)) == "WSMAN/pc-1.corp.example"
