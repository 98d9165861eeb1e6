"""The directory of every lab domain, generated from the fleet and its seed.

Theory of operation
-------------------
:func:`build_directories` reads the fleet (never changes it) and draws what the fleet does not say from its own
``random.Random`` seeded with the fleet's seed, so the same fleet file gives the same directory and the fleet
generator's draws are untouched. Per domain it lays out what a domain controller holds::

    DC=corp,DC=contoso,DC=com                         domain (objectSid = the domain SID, gPLink)
      CN=Users                                        built-in groups (Domain Admins 512, Domain Users 513,
                                                      Domain Computers 515, Denied RODC Password Replication
                                                      Group 572, ...), krbtgt, krbtgt_AzureAD
      CN=System / CN=Policies                         groupPolicyContainer objects named by GUID
      OU=Domain Controllers                           DC01, and AzureADKerberos where Entra Kerberos exists
      OU=Admins                                       the lab admin and admin accounts (Domain Admins), service
                                                      accounts in Tier0 Operators
      OU=Staff                                        the fleet's users of this domain
      OU=Groups                                       site groups, All Workstations (nested), Hello filter groups
      OU=Workstations / OU=<Site>                     the fleet's computers joined to this domain

Consistency with the fleet: a user the fleet marks ``privileged`` (no partial TGT) is in Domain Admins, which the
Denied RODC Password Replication Group holds and ``msDS-NeverRevealGroup`` of ``CN=AzureADKerberos`` names, as the
token the lab's devices give that user says (``windows.token_groups``: 512 and 572); no other fleet user is.
``Tier0 Operators``, a group an admin added to ``msDS-NeverRevealGroup``, holds service accounts and one admin:
accounts that sign in to no lab device, so no device token contradicts the directory (a device user protected only
by such a group waits for the product to read ``msDS-NeverRevealGroup``). Computers carry the fleet's DNS name and
OS; the Hello GPO a domain's fleet describes (``Domain.gpo_passport_policy``) is a groupPolicyContainer linked to
``OU=Workstations`` and filtered (Apply Group Policy) to ``Hello Policy Computers``, which holds the computers
whose registry holds those values, so the directory says what the devices' registries already hold.
"""

from __future__ import annotations

import contextlib
import gc
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from migrator.lab import policy as policy_mod
from migrator.lab.directory.dit import (
    Directory,
    DirectoryError,
    Entry,
    dn_of_dns_name,
    escape_rdn_value,
    guid_to_bytes,
    sid_from_bytes,
    sid_to_bytes,
)
from migrator.lab.directory.grouppolicy import GroupPolicy, GroupPolicyEngine
from migrator.lab.directory.security import group_policy_descriptor
from migrator.lab.model import Device, DirectoryChange, Domain, Fleet, User

# userAccountControl flags ([MS-ADTS] 2.2.16)
UAC_ACCOUNTDISABLE = 0x0002
UAC_NORMAL_ACCOUNT = 0x0200
UAC_WORKSTATION_TRUST_ACCOUNT = 0x1000
UAC_SERVER_TRUST_ACCOUNT = 0x2000
UAC_DONT_EXPIRE_PASSWORD = 0x10000
UAC_TRUSTED_FOR_DELEGATION = 0x80000
UAC_PARTIAL_SECRETS_ACCOUNT = 0x4000000  # an RODC (and the AzureADKerberos object)

# groupType ([MS-ADTS] 2.2.12): security-enabled global / domain local / built-in
GROUP_GLOBAL_SECURITY = -2147483646
GROUP_DOMAIN_LOCAL_SECURITY = -2147483644
GROUP_UNIVERSAL_SECURITY = -2147483640

SAM_USER_OBJECT = 805306368
SAM_MACHINE_ACCOUNT = 805306369
SAM_GROUP_OBJECT = 268435456
SAM_ALIAS_OBJECT = 536870912

LAB_ADMIN_RID = 1013  # the lab admin's RID, as its SID elsewhere in the lab

# Built-in groups in CN=Users by RID; the forest-root-only ones are skipped in child domains.
_BUILTIN_GROUPS: tuple[tuple[str, int, int, bool], ...] = (
    ("Domain Admins", 512, GROUP_GLOBAL_SECURITY, False),
    ("Domain Users", 513, GROUP_GLOBAL_SECURITY, False),
    ("Domain Computers", 515, GROUP_GLOBAL_SECURITY, False),
    ("Domain Controllers", 516, GROUP_GLOBAL_SECURITY, False),
    ("Cert Publishers", 517, GROUP_DOMAIN_LOCAL_SECURITY, False),
    ("Schema Admins", 518, GROUP_UNIVERSAL_SECURITY, True),
    ("Enterprise Admins", 519, GROUP_UNIVERSAL_SECURITY, True),
    ("Group Policy Creator Owners", 520, GROUP_GLOBAL_SECURITY, False),
    ("Read-only Domain Controllers", 521, GROUP_GLOBAL_SECURITY, False),
    ("Allowed RODC Password Replication Group", 571, GROUP_DOMAIN_LOCAL_SECURITY, False),
    ("Denied RODC Password Replication Group", 572, GROUP_DOMAIN_LOCAL_SECURITY, False),
)
# What the Denied RODC Password Replication Group holds on a fresh domain ([MS-ADTS] 6.1.1.6.13).
_DENIED_RODC_MEMBERS = (
    "Cert Publishers",
    "Domain Admins",
    "Domain Controllers",
    "Enterprise Admins",
    "Group Policy Creator Owners",
    "Read-only Domain Controllers",
    "Schema Admins",
)
REGISTRY_CSE = "{35378EAC-683F-11D2-A89A-00C04FBBCFA2}"  # Administrative Templates client-side extension
REGISTRY_SNAPIN = "{D02B1F72-3407-48AE-BA88-E8213C6761F1}"  # its Computer Configuration snap-in
REGISTRY_USER_SNAPIN = "{D02B1F73-3407-48AE-BA88-E8213C6761F1}"  # its User Configuration snap-in
TIER0_GROUP = "Tier0 Operators"  # the group an admin added to msDS-NeverRevealGroup
HELLO_GPO_GROUP = "Hello Policy Computers"
HELLO_USER_GROUP = "Hello Certificate Users"
CLOUD_TRUST_GROUP = "Hello Cloud Trust Computers"
ALL_WORKSTATIONS = "All Workstations"

_FIRST_ADMINS = ("jdoe", "mrossi", "kwong", "asingh", "lmartin", "tnguyen", "pschmidt", "rgarcia")


def _rdn(value: str) -> str:
    return escape_rdn_value(value)


def _computer_os(device: Device) -> tuple[str, str]:
    """operatingSystem / operatingSystemVersion as a Windows client writes them to its computer object."""
    caption = device.os.caption.removeprefix("Microsoft ")
    return caption, f"10.0 ({device.os.build})"


class _DomainBuilder:
    def __init__(self, fleet: Fleet, domain: Domain, rng: random.Random) -> None:
        self.fleet = fleet
        self.domain = domain
        self.rng = rng
        self.dit = Directory(domain.dns_name, domain.netbios)
        self.base = self.dit.base_dn
        self.root_domain = domain.forest.casefold() == domain.dns_name.casefold()
        self.policies: list[GroupPolicy] = []
        used = [int(u.sid.rsplit("-", 1)[1]) for u in self._users() if u.sid.startswith(domain.sid + "-")]
        self._next_rid = max([1104, *used]) + 100

    # ---- helpers --------------------------------------------------------------------------------------

    def _users(self) -> list[User]:
        return [u for d in self.fleet.devices for u in d.users if u.domain.casefold() == self.domain.netbios.casefold()]

    def _rid(self) -> int:
        rid = self._next_rid
        self._next_rid += self.rng.randint(1, 4)
        return rid

    def _guid(self) -> bytes:
        return guid_to_bytes(str(uuid.UUID(int=self.rng.getrandbits(128), version=4)))

    def _container(self, dn: str, object_class: str = "container") -> Entry:
        rdn = dn.split(",", 1)[0]
        attr, _, value = rdn.partition("=")
        classes = ["top", object_class]
        entry = Entry(
            dn, {"objectClass": classes, attr.strip().lower() if attr != "OU" else "ou": value, "name": value}
        )
        entry.set("objectGUID", [self._guid()])
        return self.dit.add(entry)

    def _group(self, name: str, parent: str, rid: int, group_type: int, description: str = "") -> Entry:
        attrs: dict[str, str | bytes | list[str | bytes]] = {
            "objectClass": ["top", "group"],
            "cn": name,
            "name": name,
            "sAMAccountName": name,
            "groupType": str(group_type),
            "sAMAccountType": str(SAM_ALIAS_OBJECT if group_type == GROUP_DOMAIN_LOCAL_SECURITY else SAM_GROUP_OBJECT),
            "objectSid": sid_to_bytes(f"{self.domain.sid}-{rid}"),
            "objectGUID": self._guid(),
            "objectCategory": f"CN=Group,CN=Schema,CN=Configuration,{dn_of_dns_name(self.domain.forest)}",
        }
        if description:
            attrs["description"] = description
        return self.dit.add(Entry(f"CN={_rdn(name)},{parent}", attrs))

    def _person(self, dn: str, sam: str, upn: str, sid: str, display: str, uac: int = UAC_NORMAL_ACCOUNT) -> Entry:
        cn = dn.split(",", 1)[0].partition("=")[2]
        attrs: dict[str, str | bytes | list[str | bytes]] = {
            "objectClass": ["top", "person", "organizationalPerson", "user"],
            "cn": cn,
            "name": cn,
            "displayName": display,
            "sAMAccountName": sam,
            "userPrincipalName": upn,
            "objectSid": sid_to_bytes(sid),
            "objectGUID": self._guid(),
            "userAccountControl": str(uac),
            "primaryGroupID": "513",
            "sAMAccountType": str(SAM_USER_OBJECT),
            "objectCategory": f"CN=Person,CN=Schema,CN=Configuration,{dn_of_dns_name(self.domain.forest)}",
        }
        return self.dit.add(Entry(dn, attrs))

    def _computer(
        self, name: str, parent: str, dns_host: str, os_name: str, os_version: str, uac: int, primary: int
    ) -> Entry:
        attrs: dict[str, str | bytes | list[str | bytes]] = {
            "objectClass": ["top", "person", "organizationalPerson", "user", "computer"],
            "cn": name,
            "name": name,
            "sAMAccountName": f"{name}$",
            "dNSHostName": dns_host,
            "operatingSystem": os_name,
            "operatingSystemVersion": os_version,
            "objectSid": sid_to_bytes(f"{self.domain.sid}-{self._rid()}"),
            "objectGUID": self._guid(),
            "userAccountControl": str(uac),
            "primaryGroupID": str(primary),
            "sAMAccountType": str(SAM_MACHINE_ACCOUNT),
            "objectCategory": f"CN=Computer,CN=Schema,CN=Configuration,{dn_of_dns_name(self.domain.forest)}",
        }
        entry = Entry(f"CN={_rdn(name)},{parent}", attrs)
        if dns_host:
            entry.set("servicePrincipalName", [f"HOST/{dns_host}", f"HOST/{name}"])
        return self.dit.add(entry)

    # ---- the tree -----------------------------------------------------------------------------------

    def build(self, admin_username: str) -> tuple[Directory, list[GroupPolicy]]:
        domain, base = self.domain, self.base
        root = Entry(
            base,
            {
                "objectClass": ["top", "domain", "domainDNS"],
                "dc": domain.dns_name.split(".")[0],
                "name": domain.dns_name.split(".")[0],
                "objectSid": sid_to_bytes(domain.sid),
                "objectGUID": guid_to_bytes(domain.guid),
            },
        )
        self.dit.add(root)
        users_cn = self._container(f"CN=Users,{base}").dn
        self._container(f"CN=Computers,{base}")
        system = self._container(f"CN=System,{base}").dn
        policies = self._container(f"CN=Policies,{system}").dn
        dcs = self._container(f"OU=Domain Controllers,{base}", "organizationalUnit").dn
        admins_ou = self._container(f"OU=Admins,{base}", "organizationalUnit").dn
        staff = self._container(f"OU=Staff,{base}", "organizationalUnit").dn
        groups_ou = self._container(f"OU=Groups,{base}", "organizationalUnit").dn
        workstations = self._container(f"OU=Workstations,{base}", "organizationalUnit").dn

        builtin: dict[str, Entry] = {}
        for name, rid, group_type, forest_root_only in _BUILTIN_GROUPS:
            if forest_root_only and not self.root_domain:
                continue
            builtin[name] = self._group(name, users_cn, rid, group_type)
        krbtgt = self._person(
            f"CN=krbtgt,{users_cn}",
            "krbtgt",
            f"krbtgt@{domain.dns_name}",
            f"{domain.sid}-502",
            "krbtgt",
            UAC_NORMAL_ACCOUNT | UAC_ACCOUNTDISABLE,
        )
        denied = builtin["Denied RODC Password Replication Group"]
        for name in _DENIED_RODC_MEMBERS:
            if name in builtin:
                self.dit.add_member(denied, builtin[name].dn)
        self.dit.add_member(denied, krbtgt.dn)

        # Domain controller (and its SPNs: LDAP binds name ldap/<dc fqdn>).
        dc_name = domain.dc_name.split(".", 1)[0]
        dc = self._computer(
            dc_name,
            dcs,
            domain.dc_name.lower(),
            "Windows Server 2022 Datacenter",
            "10.0 (20348)",
            UAC_SERVER_TRUST_ACCOUNT | UAC_TRUSTED_FOR_DELEGATION,
            516,
        )
        dc.set("servicePrincipalName", [f"ldap/{domain.dc_name.lower()}", f"HOST/{domain.dc_name.lower()}"])

        # Admin accounts: the lab admin, and a few named admins, all in Domain Admins.
        admins = builtin["Domain Admins"]
        lab_admin = self._person(
            f"CN={_rdn(admin_username)},{admins_ou}",
            admin_username,
            f"{admin_username}@{domain.dns_name}",
            f"{domain.sid}-{LAB_ADMIN_RID}",
            "Migrator lab admin",
            UAC_NORMAL_ACCOUNT | UAC_DONT_EXPIRE_PASSWORD,
        )
        self.dit.add_member(admins, lab_admin.dn)
        tier0 = self._group(
            TIER0_GROUP,
            groups_ou,
            self._rid(),
            GROUP_GLOBAL_SECURITY,
            "Privileged operators; added to msDS-NeverRevealGroup of AzureADKerberos",
        )
        for sam in self.rng.sample(_FIRST_ADMINS, 3):
            admin = self._person(
                f"CN=adm-{sam},{admins_ou}",
                f"adm-{sam}",
                f"adm-{sam}@{domain.dns_name}",
                f"{domain.sid}-{self._rid()}",
                f"Admin {sam}",
            )
            self.dit.add_member(admins, admin.dn)
        self.dit.add_member(tier0, admin.dn)  # one admin is in both
        for service in ("svc-backup", "svc-deploy"):
            account = self._person(
                f"CN={service},{admins_ou}",
                service,
                f"{service}@{domain.dns_name}",
                f"{domain.sid}-{self._rid()}",
                f"Service account {service}",
                UAC_NORMAL_ACCOUNT | UAC_DONT_EXPIRE_PASSWORD,
            )
            self.dit.add_member(tier0, account.dn)

        # The fleet's users of this domain.
        seen_cn: set[str] = set()
        for user in self._users():
            cn = (
                user.display_name
                if user.display_name.casefold() not in seen_cn
                else f"{user.display_name} ({user.sam})"
            )
            seen_cn.add(cn.casefold())
            entry = self._person(f"CN={_rdn(cn)},{staff}", user.sam, user.upn, user.sid, user.display_name)
            first, _, last = user.display_name.partition(" ")
            entry.set("givenName", [first])
            if last:
                entry.set("sn", [last])
            if user.privileged:
                self.dit.add_member(admins, entry.dn)

        # Computers by site, and groups over them.
        all_ws = self._group(ALL_WORKSTATIONS, groups_ou, self._rid(), GROUP_GLOBAL_SECURITY, "Every site group")
        hello = self._group(
            HELLO_GPO_GROUP,
            groups_ou,
            self._rid(),
            GROUP_GLOBAL_SECURITY,
            "Security filter of the Windows Hello for Business GPO",
        )
        cloud = self._group(
            CLOUD_TRUST_GROUP,
            groups_ou,
            self._rid(),
            GROUP_GLOBAL_SECURITY,
            "Security filter of the cloud Kerberos trust GPO",
        )
        site_ous: dict[str, str] = {}
        site_groups: dict[str, Entry] = {}
        for device in self.fleet.devices:
            if device.domain is None or device.domain.casefold() != domain.dns_name.casefold():
                continue
            site = next((g.removeprefix("site-") for g in device.groups if g.startswith("site-")), "default")
            site_name = site.title()
            if site_name not in site_ous:
                site_ous[site_name] = self._container(f"OU={_rdn(site_name)},{workstations}", "organizationalUnit").dn
                site_groups[site_name] = self._group(
                    f"Workstations {site_name}", groups_ou, self._rid(), GROUP_GLOBAL_SECURITY
                )
                self.dit.add_member(all_ws, site_groups[site_name].dn)
            os_name, os_version = _computer_os(device)
            computer = self._computer(
                device.name,
                site_ous[site_name],
                device.fqdn.lower(),
                os_name,
                os_version,
                UAC_WORKSTATION_TRUST_ACCOUNT,
                515,
            )
            self.dit.add_member(site_groups[site_name], computer.dn)
            if domain.gpo_passport_policy is not None and any(device.registry.values(policy_mod.GPO_KEY)):
                self.dit.add_member(hello, computer.dn)  # the devices whose registry holds the GPO's values

        # Entra Kerberos server object and its krbtgt ([MS docs] Set-AzureADKerberosServer).
        if domain.entra_kerberos:
            krb_number = self.rng.randrange(10_000, 65_535)
            azure_krbtgt = self._person(
                f"CN=krbtgt_AzureAD,{users_cn}",
                f"krbtgt_{krb_number}",
                f"krbtgt_{krb_number}@{domain.dns_name}",
                f"{domain.sid}-{self._rid()}",
                "krbtgt_AzureAD",
                UAC_NORMAL_ACCOUNT | UAC_ACCOUNTDISABLE,
            )
            # Its key version: Set-AzureADKerberosServer creates the key (1) and each rotation adds one. Derived
            # from the account number rather than drawn, so the seeded fleet draws what it drew before.
            azure_krbtgt.set("msDS-KeyVersionNumber", [str(1 + krb_number % 5)])
            azure = self._computer(
                "AzureADKerberos", dcs, "", "", "", UAC_WORKSTATION_TRUST_ACCOUNT | UAC_PARTIAL_SECRETS_ACCOUNT, 521
            )
            azure.set("operatingSystem", [])
            azure.set("operatingSystemVersion", [])
            azure.set("dNSHostName", [])
            azure.set("msDS-KrbTgtLink", [azure_krbtgt.dn])
            azure.set("msDS-NeverRevealGroup", [denied.dn, tier0.dn])
            azure.set(
                "msDS-RevealOnDemandGroup",
                [builtin["Allowed RODC Password Replication Group"].dn, builtin["Domain Users"].dn],
            )

        # Group Policy: the domain's Hello GPO (what its devices already hold) and a cloud trust GPO to roll out.
        if domain.gpo_passport_policy is not None:
            trust = "certificate" if domain.gpo_passport_policy.get("UseCertificateForOnPremAuth") else "key"
            self._gpo(
                policies,
                f"Windows Hello for Business - {trust} trust",
                dict(domain.gpo_passport_policy),
                workstations,
                hello,
            )
        # Users whose hive on their device holds user-configuration Hello policy: a user GPO filtered to them.
        hive_users: dict[str, dict[str, int]] = {}
        for device in self.fleet.devices:
            for user in device.users:
                key = policy_mod.gpo_user_key(user.sid)
                values = {v.name: v.data for v in device.registry.values(key) if isinstance(v.data, int)}
                if values and user.domain.casefold() == domain.netbios.casefold():
                    hive_users[user.sid] = values
        if hive_users:
            user_group = self._group(
                HELLO_USER_GROUP,
                groups_ou,
                self._rid(),
                GROUP_GLOBAL_SECURITY,
                "Security filter of the Windows Hello for Business user GPO",
            )
            merged: dict[str, int] = {}
            for sid, values in hive_users.items():
                member = self.dit.find_sid(sid)
                if member is not None:
                    self.dit.add_member(user_group, member.dn)
                    merged.update(values)
            self._gpo(policies, "Windows Hello for Business - users, certificate trust", {}, staff, user_group, merged)
        self._gpo(
            policies,
            "Windows Hello for Business - cloud Kerberos trust",
            {"Enabled": 1, "UseCloudTrustForOnPremAuth": 1, "RequireSecurityDevice": 1},
            workstations,
            cloud,
        )
        return self.dit, self.policies

    def _gpo(
        self,
        policies_dn: str,
        name: str,
        values: dict[str, int],
        link_to: str,
        group: Entry,
        user_values: dict[str, int] | None = None,
    ) -> None:
        guid = "{" + str(uuid.UUID(int=self.rng.getrandbits(128), version=4)).upper() + "}"
        dn = f"CN={guid},{policies_dn}"
        entry = Entry(
            dn,
            {
                "objectClass": ["top", "container", "groupPolicyContainer"],
                "cn": guid,
                "name": guid,
                "displayName": name,
                "flags": "0",
                "versionNumber": "65537",
                "gPCFunctionalityVersion": "2",
                "gPCFileSysPath": f"\\\\{self.domain.dns_name}\\SysVol\\{self.domain.dns_name}\\Policies\\{guid}",
                "gPCMachineExtensionNames": f"[{REGISTRY_CSE}{REGISTRY_SNAPIN}]",
                "objectGUID": self._guid(),
                "nTSecurityDescriptor": group_policy_descriptor(
                    self.domain.sid, sid_to_bytes(_sid_of(group)), group_rid_admins=512
                ),
            },
        )
        if user_values:
            entry.set("gPCUserExtensionNames", [f"[{REGISTRY_CSE}{REGISTRY_USER_SNAPIN}]"])
        if not values:
            entry.set("gPCMachineExtensionNames", [])
        self.dit.add(entry)
        target = self.dit.get(link_to)
        assert target is not None
        link = f"[LDAP://{dn};0]"
        existing = target.text("gPLink")
        target.set("gPLink", [existing + link])
        self.policies.append(
            GroupPolicy(
                guid=guid,
                name=name,
                values=values,
                linked_to=target.dn,
                filter_group=group.dn,
                user_values=dict(user_values or {}),
                dn=dn,
            )
        )


def _sid_of(entry: Entry) -> str:
    value = entry.first("objectSid")
    assert isinstance(value, bytes)
    return sid_from_bytes(value)


@dataclass
class DomainDirectory:
    """A domain's tree and the policies the lab evaluates from it."""

    domain: Domain
    tree: Directory
    policies: list[GroupPolicy]


def build_directories(fleet: Fleet) -> dict[str, DomainDirectory]:
    """Every domain's directory, by DNS name (case-folded), the same for the same fleet."""
    rng = random.Random(f"migrator-lab-directory:{fleet.seed}")
    result: dict[str, DomainDirectory] = {}
    # Many small acyclic objects: the cyclic collector would rescan the fleet over and over (as in fleet.py).
    collecting = gc.isenabled()
    gc.disable()
    try:
        for domain in fleet.domains:
            tree, policies = _DomainBuilder(fleet, domain, rng).build(fleet.admin.username)
            result[domain.dns_name.casefold()] = DomainDirectory(domain, tree, policies)
    finally:
        if collecting:
            gc.enable()
    _replay(result, fleet.directory_changes)
    for key, directory in result.items():
        directory.tree.on_member_change = _recorder(fleet.directory_changes, key)
    return result


def _recorder(changes: list[DirectoryChange], domain: str) -> Callable[[str, str, str], None]:
    def record(action: str, group: str, member: str) -> None:
        kind: Literal["member-add", "member-remove"] = "member-add" if action == "add" else "member-remove"
        changes.append(DirectoryChange(domain=domain, kind=kind, target=group, name=member))

    return record


def _replay(directories: dict[str, DomainDirectory], changes: list[DirectoryChange]) -> None:
    """Apply what admins changed in earlier runs to freshly generated trees; a change that no longer fits (its
    group or member is not generated any more) is skipped, as a stale one would be."""
    for change in changes:
        directory = directories.get(change.domain.casefold())
        if directory is None:
            continue
        tree = directory.tree
        if change.kind in ("member-add", "member-remove"):
            group = tree.get(change.target)
            if group is None:
                continue
            with contextlib.suppress(DirectoryError):
                if change.kind == "member-add":
                    tree.add_member(group, change.name)
                else:
                    tree.remove_member(group, change.name)
            continue
        gpo = next((p for p in directory.policies if p.guid.casefold() == change.target.casefold()), None)
        if gpo is None:
            continue
        values = gpo.user_values if change.user else gpo.values
        if change.kind == "gpo-set" and change.value is not None:
            values[change.name] = change.value
        else:
            values.pop(change.name, None)


def group_policy_engine(
    directories: dict[str, DomainDirectory], changes: list[DirectoryChange] | None = None
) -> GroupPolicyEngine:
    """The engine that evaluates these domains' GPOs from their trees (see :mod:`.grouppolicy`); GPO edits are
    recorded in ``changes`` (the fleet's ``directory_changes``) when given."""
    return GroupPolicyEngine(
        {k: d.tree for k, d in directories.items()},
        {k: d.policies for k, d in directories.items()},
        {k: d.domain.sid for k, d in directories.items()},
        changes,
    )
