"""Searches against a lab DC with ldap3: rootDSE, scopes, AD filters, in-chain, attribute selection, paging."""

from __future__ import annotations

from pathlib import Path

import ldap3
import pytest

from migrator.lab.directory.dit import sid_to_bytes
from migrator.lab.directory.security import apply_groups
from migrator.lab.fleet import generate_fleet, parse_mix
from tests.lab.directory.conftest import CORP, CORP_DN, RunningDirectory, start_directory, stop_directory

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

IN_CHAIN = "1.2.840.113556.1.4.1941"


def _dns(connection: ldap3.Connection) -> set[str]:
    return {entry.entry_dn for entry in connection.entries}


def test_root_dse_says_what_the_dc_is(lab_directory: RunningDirectory) -> None:
    """ldap3's get_info=ALL reads the rootDSE anonymously: naming context, host name, controls, SASL list."""
    dc = lab_directory.dc()
    server = ldap3.Server(dc.address, port=dc.ldap_port, get_info=ldap3.DSA)
    connection = ldap3.Connection(server, auto_bind=True)
    info = server.info
    assert info is not None
    assert info.other["defaultNamingContext"] == [CORP_DN]
    assert info.other["dnsHostName"] == ["dc01.corp.contoso.com"]
    assert "1.2.840.113556.1.4.319" in [c[0] for c in info.supported_controls]
    assert {"GSSAPI", "GSS-SPNEGO"} <= set(info.supported_sasl_mechanisms)
    assert "3" in [str(v) for v in info.supported_ldap_versions]
    connection.unbind()


def test_scopes_base_one_and_sub(lab_directory: RunningDirectory) -> None:
    """base returns the object, one its children, sub the whole subtree."""
    connection = lab_directory.admin()
    assert connection.search(CORP_DN, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["objectSid"])
    assert _dns(connection) == {CORP_DN}
    assert connection.entries[0].objectSid.raw_values == [sid_to_bytes(lab_directory.directory().domain.sid)]
    connection.search(CORP_DN, "(objectClass=*)", search_scope=ldap3.LEVEL, attributes=["cn"])
    children = _dns(connection)
    assert f"CN=Users,{CORP_DN}" in children and f"OU=Workstations,{CORP_DN}" in children
    assert all(dn.endswith(CORP_DN) and dn.count(",") == CORP_DN.count(",") + 1 for dn in children)
    connection.search(f"OU=Workstations,{CORP_DN}", "(objectClass=computer)", search_scope=ldap3.SUBTREE)
    corp_devices = {d.name for d in lab_directory.fleet.devices if d.domain == CORP}
    assert {dn.split(",")[0].removeprefix("CN=") for dn in _dns(connection)} == corp_devices
    connection.unbind()


def test_missing_base_is_no_such_object(lab_directory: RunningDirectory) -> None:
    """A base that does not exist is noSuchObject (32) with AD's 0000208D text and the best match."""
    connection = lab_directory.admin()
    assert not connection.search(f"OU=Nowhere,{CORP_DN}", "(objectClass=*)")
    assert connection.result["result"] == 32
    assert connection.result["message"].startswith("0000208D")
    assert connection.result["dn"] == CORP_DN
    connection.unbind()


def test_users_carry_the_fleet_s_identity(lab_directory: RunningDirectory) -> None:
    """A fleet user is found by sAMAccountName with its UPN and its SID as binary objectSid (also by SID)."""
    user = next(u for d in lab_directory.fleet.devices for u in d.users if u.domain == "CORP")
    connection = lab_directory.admin()
    connection.search(
        CORP_DN,
        f"(&(objectCategory=person)(objectClass=user)(sAMAccountName={user.sam}))",
        attributes=["userPrincipalName", "objectSid", "memberOf"],
    )
    assert len(connection.entries) == 1
    entry = connection.entries[0]
    assert entry.userPrincipalName.value == user.upn
    assert entry.objectSid.raw_values == [sid_to_bytes(user.sid)]
    connection.search(CORP_DN, f"(objectSid={user.sid})", attributes=["sAMAccountName"])
    assert connection.entries[0].sAMAccountName.value == user.sam
    connection.unbind()


def test_computers_carry_dns_name_and_os(lab_directory: RunningDirectory) -> None:
    """Computers have dNSHostName = the device's FQDN and the OS as Windows writes it."""
    device = next(d for d in lab_directory.fleet.devices if d.domain == CORP)
    connection = lab_directory.admin()
    connection.search(
        CORP_DN,
        f"(&(objectClass=computer)(sAMAccountName={device.name}$))",
        attributes=["dNSHostName", "operatingSystem", "operatingSystemVersion"],
    )
    entry = connection.entries[0]
    assert entry.dNSHostName.value == device.fqdn.lower()
    assert entry.operatingSystemVersion.value == f"10.0 ({device.os.build})"
    assert entry.operatingSystem.value.startswith("Windows 1")
    connection.unbind()


def test_filters_or_not_substring_ordering_presence_and_bits(lab_directory: RunningDirectory) -> None:
    """AD filter forms: |, !, substrings, >= / <=, presence and the bit-and rule on userAccountControl."""
    connection = lab_directory.admin()
    connection.search(CORP_DN, "(|(cn=Domain Admins)(cn=Domain Users))", attributes=["cn"])
    assert len(connection.entries) == 2
    connection.search(CORP_DN, "(&(objectClass=group)(!(cn=Domain*))(cn=*Admins))", attributes=["cn"])
    assert {e.cn.value for e in connection.entries} >= {"Schema Admins", "Enterprise Admins"}
    assert "Domain Admins" not in {e.cn.value for e in connection.entries}
    connection.search(CORP_DN, "(&(objectClass=group)(primaryGroupID>=1))", attributes=["cn"])
    assert connection.entries == []  # groups have no primaryGroupID
    connection.search(CORP_DN, "(&(objectClass=computer)(primaryGroupID<=515)(primaryGroupID>=515))")
    workstations = len(connection.entries)
    assert workstations == sum(1 for d in lab_directory.fleet.devices if d.domain == CORP)
    # userAccountControl:1.2.840.113556.1.4.803:=2 = disabled accounts (krbtgt, krbtgt_AzureAD)
    connection.search(CORP_DN, "(userAccountControl:1.2.840.113556.1.4.803:=2)", attributes=["cn"])
    assert {e.cn.value for e in connection.entries} == {"krbtgt", "krbtgt_AzureAD"}
    connection.search(CORP_DN, "(&(objectClass=user)(dNSHostName=*)(operatingSystem=Windows Server*))")
    assert len(connection.entries) == 1  # the DC
    connection.unbind()


def test_in_chain_finds_members_through_nested_groups(lab_directory: RunningDirectory) -> None:
    """memberOf:1.2.840.113556.1.4.1941: finds computers in site groups nested in All Workstations; the plain
    memberOf equality does not; member:...1941: finds the groups that hold an object through nesting."""
    connection = lab_directory.admin()
    all_ws = f"CN=All Workstations,OU=Groups,{CORP_DN}"
    connection.search(CORP_DN, f"(&(objectClass=computer)(memberOf:{IN_CHAIN}:={all_ws}))", attributes=["cn"])
    assert len(connection.entries) == sum(1 for d in lab_directory.fleet.devices if d.domain == CORP)
    connection.search(CORP_DN, f"(&(objectClass=computer)(memberOf={all_ws}))")
    assert connection.entries == []
    computer = f"CN={next(d.name for d in lab_directory.fleet.devices if d.domain == CORP)}"
    connection.search(CORP_DN, f"(&(objectClass=computer)({computer.replace('CN=', 'cn=')}))", attributes=["cn"])
    computer_dn = connection.entries[0].entry_dn
    connection.search(CORP_DN, f"(member:{IN_CHAIN}:={computer_dn})", attributes=["cn"])
    names = {e.cn.value for e in connection.entries}
    assert "All Workstations" in names and any(n.startswith("Workstations ") for n in names)
    connection.unbind()


def test_an_unknown_matching_rule_is_refused_not_ignored(lab_directory: RunningDirectory) -> None:
    """A matching rule the lab does not implement answers unwillingToPerform 'not modelled by the lab'."""
    connection = lab_directory.admin()
    assert not connection.search(CORP_DN, "(cn:1.2.3.4:=x)")
    assert connection.result["result"] == 53
    assert "not modelled by the lab" in connection.result["message"]
    connection.unbind()


def test_attribute_selection(lab_directory: RunningDirectory) -> None:
    """Only the attributes asked for come back; '1.1' asks for none."""
    connection = lab_directory.admin()
    connection.search(CORP_DN, "(cn=Domain Admins)", attributes=["groupType", "member"])
    entry = connection.entries[0]
    assert set(entry.entry_attributes) == {"groupType", "member"}
    assert entry.groupType.value == "-2147483646"  # no schema read: values are as sent
    connection.search(CORP_DN, "(cn=Domain Admins)", attributes=["1.1"])
    assert connection.entries[0].entry_attributes == []
    connection.unbind()


def test_entra_kerberos_object_where_the_fleet_has_it(lab_directory: RunningDirectory) -> None:
    """CORP (Entra Kerberos: yes) has CN=AzureADKerberos and krbtgt_AzureAD; FABRIKAM (no) has neither."""
    connection = lab_directory.admin()
    connection.search(
        f"CN=AzureADKerberos,OU=Domain Controllers,{CORP_DN}",
        "(objectClass=computer)",
        search_scope=ldap3.BASE,
        attributes=["msDS-NeverRevealGroup", "msDS-RevealOnDemandGroup", "sAMAccountName"],
    )
    entry = connection.entries[0]
    assert entry.sAMAccountName.value == "AzureADKerberos$"
    never = set(entry["msDS-NeverRevealGroup"].values)
    assert f"CN=Denied RODC Password Replication Group,CN=Users,{CORP_DN}" in never
    assert f"CN=Tier0 Operators,OU=Groups,{CORP_DN}" in never
    assert entry["msDS-RevealOnDemandGroup"].values
    assert connection.search(f"CN=krbtgt_AzureAD,CN=Users,{CORP_DN}", "(objectClass=user)", search_scope=ldap3.BASE)
    connection.unbind()
    fabrikam = lab_directory.admin("fabrikam.local")
    fabrikam.search("DC=fabrikam,DC=local", "(|(cn=AzureADKerberos)(cn=krbtgt_AzureAD))")
    assert fabrikam.entries == []
    fabrikam.unbind()


def test_privileged_users_are_exactly_those_never_revealed(lab_directory: RunningDirectory) -> None:
    """Staff users in a group of msDS-NeverRevealGroup (through nesting) are exactly the fleet's privileged users
    (Domain Admins, via the Denied RODC group, as their device tokens say); service accounts are there through
    Tier0 Operators, the group an admin added."""
    privileged_by_domain: dict[str, set[str]] = {}
    for device in lab_directory.fleet.devices:
        for user in device.users:
            if user.privileged:
                privileged_by_domain.setdefault(user.domain, set()).add(user.sam)
    assert privileged_by_domain, "seed 21 with 60 devices has privileged users"
    via: set[str] = set()
    for netbios, dns, dn in (("CORP", CORP, CORP_DN), ("EMEA", "emea.corp.contoso.com", "DC=emea," + CORP_DN)):
        connection = lab_directory.admin(dns)
        connection.search(
            f"CN=AzureADKerberos,OU=Domain Controllers,{dn}",
            "(objectClass=*)",
            ldap3.BASE,
            attributes=["msDS-NeverRevealGroup"],
        )
        never = connection.entries[0]["msDS-NeverRevealGroup"].values
        found: set[str] = set()
        for group in never:
            connection.search(
                dn, f"(&(objectClass=user)(memberOf:{IN_CHAIN}:={group}))", attributes=["sAMAccountName", "memberOf"]
            )
            for entry in connection.entries:
                if ",OU=Staff," in entry.entry_dn:
                    found.add(entry.sAMAccountName.value)
                via.update(g.split(",")[0] for g in entry.memberOf.values)
        assert found == privileged_by_domain.get(netbios, set()), netbios
        connection.unbind()
    assert {"CN=Domain Admins", "CN=Tier0 Operators"} <= via


def test_gpos_are_linked_to_ous_and_filtered_by_group(lab_directory: RunningDirectory) -> None:
    """groupPolicyContainer objects live under CN=Policies,CN=System; OU=Workstations links them in gPLink."""
    connection = lab_directory.admin("fabrikam.local")
    base = "DC=fabrikam,DC=local"
    connection.search(f"OU=Workstations,{base}", "(objectClass=*)", ldap3.BASE, attributes=["gPLink"])
    link = connection.entries[0].gPLink.value
    connection.search(
        f"CN=Policies,CN=System,{base}",
        "(objectClass=groupPolicyContainer)",
        ldap3.LEVEL,
        attributes=["displayName", "nTSecurityDescriptor", "cn"],
    )
    gpos = {e.displayName.value: e for e in connection.entries}
    assert "Windows Hello for Business - key trust" in gpos
    for entry in gpos.values():
        assert f"[LDAP://{entry.entry_dn};0]" in link
        (group_sid,) = apply_groups(entry.nTSecurityDescriptor.raw_values[0])
        connection.search(base, f"(objectSid={group_sid})", attributes=["cn"])
        assert connection.entries[0].cn.value in {"Hello Policy Computers", "Hello Cloud Trust Computers"}
    connection.unbind()


@pytest.fixture(scope="module")
def big_directory(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    fleet = generate_fleet(1200, 3, parse_mix("key=50,cert=40,cloud=5,none=5"))
    running, loop, thread = start_directory(fleet, Path(tmp_path_factory.mktemp("big")))
    try:
        yield running
    finally:
        stop_directory(running, loop, thread)


def test_paging_returns_every_object_past_max_page_size(big_directory: RunningDirectory) -> None:
    """Over 1,000 objects: a plain search stops at MaxPageSize with sizeLimitExceeded; the paged-results
    control (ldap3's paged_search, cookies and all) returns every one of them."""
    connection = big_directory.admin()
    total = len(big_directory.directory().tree)
    assert total > 1000
    connection.search(CORP_DN, "(objectClass=*)", attributes=["cn"])
    assert connection.result["result"] == 4
    assert len(connection.entries) == 1000
    entries = list(
        connection.extend.standard.paged_search(
            CORP_DN, "(objectClass=*)", attributes=["cn"], paged_size=300, generator=True
        )
    )
    dns = [e["dn"] for e in entries if e["type"] == "searchResEntry"]
    assert len(dns) == total == len(set(dns))
    connection.unbind()


def test_other_naming_contexts_are_refused_as_not_modelled(lab_directory: RunningDirectory) -> None:
    """The configuration/schema partitions and other domains' trees answer 'not modelled', not noSuchObject."""
    connection = lab_directory.admin()
    for base in ("CN=Schema,CN=Configuration,DC=corp,DC=contoso,DC=com", "DC=fabrikam,DC=local"):
        assert not connection.search(base, "(objectClass=*)", ldap3.BASE)
        assert connection.result["result"] == 53
        assert "not modelled by the lab" in connection.result["message"]
    connection.unbind()
