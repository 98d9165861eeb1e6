"""Where and how the product reads each domain: the inventory's directory: section, the lab's domains, defaults."""

from __future__ import annotations

from pathlib import Path

import ldap3
import pytest
from pydantic import SecretStr

from migrator.directory.client import ntlm_sealing_available, open_ldap_connection
from migrator.directory.knowledge import directory_configured, read_directory
from migrator.directory.settings import directory_credentials, known_domains, resolve_target
from migrator.errors import DirectoryConfigurationError, InputError
from migrator.inventory import load_inventory
from migrator.remote.credentials import Credentials
from migrator.yamlsource import InputFileError

DEVICES = "devices:\n  - {name: PC-0001, address: pc-0001.corp.contoso.com, domain: corp.contoso.com}\n"
CREDENTIALS = Credentials("CORP\\admin", SecretStr("secret"))


def _inventory(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    return load_inventory(path)


def test_defaults_ldaps_on_the_domain_name_verified_ntlm_with_the_devices_credentials(tmp_path: Path) -> None:
    """directory: {} turns reading on; each domain: LDAPS 636 on its DNS name, the inventory's CA bundle, NTLM."""
    inventory = _inventory(tmp_path, "defaults: {ca_bundle: ca.pem}\ndirectory: {}\n" + DEVICES)
    assert directory_configured(inventory) and known_domains(inventory) == ["corp.contoso.com"]
    target = resolve_target(inventory, "corp.contoso.com")
    assert (target.server, target.port, target.security, target.auth) == ("corp.contoso.com", 636, "ldaps", "ntlm")
    assert target.verify == (tmp_path / "ca.pem").resolve()
    assert target.netbios == "CORP" and target.base_dn == "DC=corp,DC=contoso,DC=com"
    assert directory_credentials(target, CREDENTIALS) is CREDENTIALS


def test_without_a_section_or_lab_domains_nothing_is_read(tmp_path: Path) -> None:
    """The old behaviour for an inventory that says nothing about the directory, or says read: false."""
    assert not directory_configured(_inventory(tmp_path, DEVICES))
    off = _inventory(tmp_path, "directory: {read: false, domains: [{name: corp.contoso.com}]}\n" + DEVICES)
    assert not directory_configured(off)
    assert read_directory(off, CREDENTIALS).requests == 0


def test_per_domain_entry_wins_over_the_section(tmp_path: Path) -> None:
    """A domain's own server/port/security/netbios/credentials over the section's."""
    text = (
        "directory:\n  security: ldap\n  credentials: directory\n  domains:\n"
        "    - {name: corp.contoso.com, server: dc01.corp.contoso.com, netbios: CONTOSO}\n"
    )
    target = resolve_target(_inventory(tmp_path, text + DEVICES), "corp.contoso.com")
    assert (target.server, target.port, target.security, target.netbios) == (
        "dc01.corp.contoso.com",
        389,
        "ldap",
        "CONTOSO",
    )
    env = {"MIGRATOR_DIRECTORY_USERNAME": "CORP\\reader", "MIGRATOR_DIRECTORY_PASSWORD": "pw"}
    assert directory_credentials(target, CREDENTIALS, environ=env).username == "CORP\\reader"
    with pytest.raises(InputError, match="MIGRATOR_DIRECTORY_USERNAME"):
        directory_credentials(target, CREDENTIALS, environ={})


def test_plain_ldap_binds_ntlm_with_signing_and_sealing_or_not_at_all(tmp_path: Path) -> None:
    """security: ldap is NTLM with ldap3's session_security=ENCRYPT where ldap3 has it, else refused as a
    configuration error naming LDAPS; LDAPS verifies against the CA bundle."""
    inventory = _inventory(tmp_path, "directory: {security: ldap}\n" + DEVICES)
    target = resolve_target(inventory, "corp.contoso.com")
    if ntlm_sealing_available():
        connection = open_ldap_connection(target, CREDENTIALS)
        assert connection.authentication == ldap3.NTLM and connection.session_security == ldap3.ENCRYPT
        assert not connection.server.ssl
    else:
        with pytest.raises(DirectoryConfigurationError, match="security: ldaps"):
            open_ldap_connection(target, CREDENTIALS)
    verified = _inventory(tmp_path, "directory: {ca_bundle: /etc/ssl/certs/ca-certificates.crt}\n" + DEVICES)
    connection = open_ldap_connection(resolve_target(verified, "corp.contoso.com"), CREDENTIALS)
    assert connection.server.ssl and connection.server.tls.validate == 2  # ssl.CERT_REQUIRED


def test_a_bad_directory_setting_names_file_line_and_field(tmp_path: Path) -> None:
    """The loader's errors for the directory: section: file, line, field."""
    text = DEVICES + "directory:\n  auth: digest\n"
    with pytest.raises(InputFileError) as raised:
        _inventory(tmp_path, text)
    (problem,) = raised.value.problems
    assert problem.line == 4 and problem.field == "directory.auth"
    kerberos_in_clear = _inventory(tmp_path, DEVICES + "directory: {security: ldap, auth: kerberos}\n")
    with pytest.raises(InputError, match="plain LDAP"):
        resolve_target(kerberos_in_clear, "corp.contoso.com")
