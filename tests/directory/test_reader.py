"""The product's directory reader against the lab's DCs: Entra Kerberos per domain, who it never serves, errors."""

from __future__ import annotations

from pathlib import Path

import ldap3
import pytest
from pydantic import SecretStr

from migrator.directory.client import DirectoryClient, translate_error
from migrator.directory.knowledge import read_directory
from migrator.directory.reader import read_computers, read_entra_kerberos, sid_text
from migrator.directory.settings import resolve_target
from migrator.errors import (
    DirectoryConfigurationError,
    DirectoryCredentialsError,
    DirectoryUnreachable,
    InputError,
)
from migrator.remote import kerberos
from migrator.remote.credentials import Credentials
from tests.directory.conftest import CREDENTIALS, write_inventory
from tests.lab.directory.conftest import CORP, CORP_DN, RunningDirectory
from tests.loopback import free_addresses

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
TIER0 = "Tier0 Operators"


def test_entra_kerberos_per_domain_as_the_fleet_says(dcs: RunningDirectory, tmp_path: Path) -> None:
    """Over LDAPS, verified against the lab CA, with NTLM: each domain's AzureADKerberos object exists exactly
    where the fleet says, and its msDS-NeverRevealGroup groups are named."""
    knowledge = read_directory(write_inventory(dcs, tmp_path), CREDENTIALS)
    assert knowledge.failures == {}
    for domain in dcs.fleet.domains:
        facts = knowledge.domains[domain.dns_name.casefold()]
        assert facts.exists is domain.entra_kerberos, domain.dns_name
        assert facts.netbios == domain.netbios
        if domain.entra_kerberos:
            assert facts.never_reveal_groups == ("Denied RODC Password Replication Group", TIER0)
        else:
            assert facts.protected == {}
    settings = knowledge.path_settings()
    assert settings.entra_kerberos_for("fabrikam.local") is False and settings.entra_kerberos_for("CORP") is True
    # The admin's --entra-kerberos wins, for the DNS and the NetBIOS name alike.
    overridden = knowledge.path_settings({"fabrikam.local": True})
    assert overridden.entra_kerberos_for("FABRIKAM") is True


def test_privileged_fleet_users_are_known_before_any_device(dcs: RunningDirectory, tmp_path: Path) -> None:
    """Every fleet user the lab marks privileged (Domain Admins, nested under the Denied RODC group) is in
    never_reveal by SID, with the group named; no unprivileged fleet user is."""
    knowledge = read_directory(write_inventory(dcs, tmp_path), CREDENTIALS)
    protected = knowledge.never_reveal()
    users = {u.sid: u for d in dcs.fleet.devices for u in d.users}
    privileged = {sid for sid, u in users.items() if u.privileged}
    assert privileged, "the seeded fleet has privileged users"
    for sid, user in users.items():
        domain = next((d for d in dcs.fleet.domains if d.netbios == user.domain), None)
        if domain is None or not domain.entra_kerberos:  # a cloud-only user, or no AzureADKerberos to read
            continue
        assert (sid in protected) is (sid in privileged), user.sam
        if sid in privileged:
            assert f"{user.domain}\\Denied RODC Password Replication Group" in protected[sid]


def test_a_user_an_admin_adds_to_tier0_is_protected_at_the_next_read(dcs: RunningDirectory, tmp_path: Path) -> None:
    """An admin adds a fleet user to Tier0 Operators (in msDS-NeverRevealGroup): the next read names that group."""
    inventory = write_inventory(dcs, tmp_path)
    user = next(u for d in dcs.fleet.devices for u in d.users if u.domain == "CORP" and not u.privileged)
    admin = dcs.admin(CORP)
    admin.search(CORP_DN, f"(sAMAccountName={user.sam})", attributes=["cn"])
    user_dn = admin.entries[0].entry_dn
    group_dn = f"CN={TIER0},OU=Groups,{CORP_DN}"
    assert admin.modify(group_dn, {"member": [(ldap3.MODIFY_ADD, [user_dn])]}), admin.result
    try:
        protected = read_directory(inventory, CREDENTIALS).never_reveal()
        assert protected[user.sid] == (f"CORP\\{TIER0}",)
    finally:
        admin.modify(group_dn, {"member": [(ldap3.MODIFY_DELETE, [user_dn])]})
        admin.unbind()


def test_requests_are_per_domain_not_per_device(dcs: RunningDirectory, tmp_path: Path) -> None:
    """One bind, one search for the object, one for the key version, one per msDS-NeverRevealGroup group and one
    unbind per domain: the count does not depend on the 60 devices."""
    knowledge = read_directory(write_inventory(dcs, tmp_path), CREDENTIALS)
    with_entra = sum(d.entra_kerberos for d in dcs.fleet.domains)
    domains = len(dcs.fleet.domains)
    ntlm_bind, unbind = 3, 1
    assert knowledge.requests == domains * (ntlm_bind + 1 + unbind) + with_entra * (1 + 2)


def test_simple_bind_over_ldaps_and_computers_paged(dcs: RunningDirectory, tmp_path: Path) -> None:
    """auth: simple over LDAPS binds; the computers under OU=Workstations come back with their DNS names."""
    inventory = write_inventory(dcs, tmp_path, {"auth": "simple"})
    target = resolve_target(inventory, CORP)
    with DirectoryClient(target, CREDENTIALS) as client:
        computers = list(read_computers(client, f"OU=Workstations,{CORP_DN}"))
        assert read_entra_kerberos(client).exists
    expected = {d.name.casefold() for d in dcs.fleet.devices if d.domain == CORP}
    assert {c.name.casefold() for c in computers} == expected
    assert all(c.dns_host_name and c.dns_host_name.endswith(CORP) for c in computers)


def test_plain_ldap_without_sealing_is_refused_before_anything_is_sent(dcs: RunningDirectory, tmp_path: Path) -> None:
    """security: ldap with a simple bind would send the password in clear: refused as bad input."""
    inventory = write_inventory(dcs, tmp_path, {"security": "ldap", "auth": "simple"})
    with pytest.raises(InputError, match="plain LDAP"):
        resolve_target(inventory, CORP)


def test_errors_are_translated_by_what_the_caller_can_do(dcs: RunningDirectory, tmp_path: Path) -> None:
    """A wrong password: credentials; an untrusted certificate: configuration; nobody listening: unreachable."""
    inventory = write_inventory(dcs, tmp_path)
    target = resolve_target(inventory, CORP)
    wrong = Credentials(CREDENTIALS.username, SecretStr("not-the-password"))
    with pytest.raises(DirectoryCredentialsError) as refused:
        DirectoryClient(target, wrong).open()
    assert "not-the-password" not in str(refused.value)
    system_cas = write_inventory(dcs, tmp_path, {"ca_bundle": "/etc/ssl/certs/ca-certificates.crt"})
    with pytest.raises(DirectoryConfigurationError, match="TLS"):
        DirectoryClient(resolve_target(system_cas, CORP), CREDENTIALS).open()
    (nobody,) = free_addresses(1)
    closed = write_inventory(dcs, tmp_path, {"domains": [{"name": CORP, "server": nobody, "port": 9}]})
    with pytest.raises(DirectoryUnreachable):
        DirectoryClient(resolve_target(closed, CORP), CREDENTIALS).open()
    knowledge = read_directory(closed, CREDENTIALS)
    assert isinstance(knowledge.failures[CORP], DirectoryUnreachable)
    assert "fabrikam.local" in knowledge.domains  # the other domains are still read
    assert isinstance(translate_error(TimeoutError("timed out"), CORP), DirectoryUnreachable)


def test_insecure_skip_verify_only_in_words(dcs: RunningDirectory, tmp_path: Path) -> None:
    """ca_bundle: insecure-skip-verify turns verification off; `ca_bundle: false` is refused."""
    inventory = write_inventory(dcs, tmp_path, {"ca_bundle": "insecure-skip-verify"})
    with DirectoryClient(resolve_target(inventory, CORP), CREDENTIALS) as client:
        assert read_entra_kerberos(client).exists
    with pytest.raises(InputError, match="insecure-skip-verify"):
        resolve_target(write_inventory(dcs, tmp_path, {"ca_bundle": "off"}), CORP)


def test_kerberos_without_gssapi_says_so(
    dcs: RunningDirectory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """auth: kerberos is accepted in the inventory; without python-gssapi the bind names the extra to install."""
    monkeypatch.setattr(kerberos, "missing_libraries", lambda **_: ["gssapi", "krb5"])
    inventory = write_inventory(dcs, tmp_path, {"auth": "kerberos"})
    target = resolve_target(inventory, CORP)
    assert target.auth == "kerberos" and target.sasl_host == "dc01.corp.contoso.com"
    with pytest.raises(DirectoryConfigurationError, match=r"python-gssapi.*migrator\[kerberos\]"):
        DirectoryClient(target, CREDENTIALS).open()


def test_binary_sid() -> None:
    """objectSid as [MS-DTYP] 2.4.2.2 lays it out."""
    raw = bytes([1, 5, 0, 0, 0, 0, 0, 5]) + b"".join(n.to_bytes(4, "little") for n in (21, 1, 2, 3, 1104))
    assert sid_text(raw) == "S-1-5-21-1-2-3-1104"
