"""Group Policy from the directory: which GPOs apply to a computer and its users, and their union.

Theory of operation
-------------------
A GPO is a groupPolicyContainer in the directory (its name, its link from an OU's or the domain's ``gPLink``,
its security filtering in ``nTSecurityDescriptor``) and, as on a real DC, settings that live outside LDAP (in
SYSVOL's ``Registry.pol``): here :class:`GroupPolicy`'s ``values`` (Computer Configuration, written to
``HKLM\\SOFTWARE\\Policies\\Microsoft\\PassportForWork``) and ``user_values`` (User Configuration, written to
``HKU\\<SID>\\SOFTWARE\\Policies\\...``). Everything else is read from the directory at each refresh, so a
``lab group`` or an LDAP modify changes what applies at the next one.

A GPO applies to an object when it is linked (link not disabled) to the domain or to an OU above the object,
and the object's token holds the Apply Group Policy right on it: the object's groups, nested ones included,
Domain Computers (515) or Domain Users (513) as primary group, and Authenticated Users (MS docs, "Security
filtering"). The values are the union of the GPOs that apply, processed from the domain down to the object's
OU, a link listed later in a ``gPLink`` before an earlier one (so the closer / higher-ranked link wins a
conflict), enforced links last.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from migrator.lab.directory.dit import Directory, Entry, dn_key, parent_dn, sid_from_bytes
from migrator.lab.directory.security import AUTHENTICATED_USERS, apply_groups
from migrator.lab.model import DirectoryChange
from migrator.lab.shell import AppliedPolicy

_LINK = re.compile(r"\[LDAP://([^;\]]+);(\d+)\]", re.IGNORECASE)
LINK_DISABLED = 1
LINK_ENFORCED = 2


@dataclass
class GroupPolicy:
    """A GPO: where it is in the directory, and its registry settings (as in its SYSVOL Registry.pol)."""

    guid: str  # {6AC1786C-016F-11D2-945F-00C04FB984F9} style
    name: str
    values: dict[str, int]  # Computer Configuration: PassportForWork value -> DWORD
    linked_to: str  # DN of the OU (or domain) whose gPLink names it first
    filter_group: str  # DN of the group it was filtered to when generated
    user_values: dict[str, int] = field(default_factory=dict)  # User Configuration
    dn: str = ""


def _sid(entry: Entry) -> str | None:
    value = entry.first("objectSid")
    return sid_from_bytes(value) if isinstance(value, bytes) else None


class GroupPolicyEngine:
    """The GPOs of every lab domain, evaluated from the directory (implements ``shell.GroupPolicySource``)."""

    def __init__(
        self,
        trees: dict[str, Directory],
        policies: dict[str, list[GroupPolicy]],
        domain_sids: dict[str, str],
        changes: list[DirectoryChange] | None = None,
    ) -> None:
        self.trees = trees  # by case-folded DNS name
        self.policies = policies
        self.domain_sids = domain_sids
        self.changes = changes  # where GPO edits are recorded (the fleet's directory_changes)

    # ---- evaluation ----------------------------------------------------------------------------------

    def _token(self, tree: Directory, entry: Entry, primary_rid: int) -> set[str]:
        sids = {AUTHENTICATED_USERS, f"{self.domain_sids[tree.dns_name.casefold()]}-{primary_rid}"}
        for key in tree.groups_in_chain(entry.dn):
            group = tree.get(key)
            sid = _sid(group) if group is not None else None
            if sid:
                sids.add(sid)
        return sids

    def _applying(self, domain: str, tree: Directory, entry: Entry, token: set[str]) -> list[GroupPolicy]:
        """The GPOs that apply to ``entry``, in processing order."""
        by_dn = {dn_key(p.dn): p for p in self.policies.get(domain, [])}
        containers: list[Entry] = []
        dn = parent_dn(entry.dn)
        while dn:
            container = tree.get(dn)
            if container is not None:
                containers.append(container)
            if dn_key(dn) == dn_key(tree.base_dn):
                break
            dn = parent_dn(dn)
        ordered: list[GroupPolicy] = []
        enforced: list[GroupPolicy] = []
        for container in reversed(containers):  # the domain first, the object's own OU last
            for gpo_dn, flags in reversed(_LINK.findall(container.text("gPLink"))):
                gpo = by_dn.get(dn_key(gpo_dn))
                if gpo is None or int(flags) & LINK_DISABLED:
                    continue
                gpc = tree.get(gpo.dn)
                descriptor = gpc.first("nTSecurityDescriptor") if gpc is not None else None
                if not isinstance(descriptor, bytes) or not token & set(apply_groups(descriptor)):
                    continue
                (enforced if int(flags) & LINK_ENFORCED else ordered).append(gpo)
        return ordered + enforced

    def _user_entry(self, sid: str) -> tuple[str, Directory, Entry] | None:
        for domain, tree in self.trees.items():
            if sid.startswith(self.domain_sids[domain] + "-"):
                entry = tree.find_sid(sid)
                return (domain, tree, entry) if entry is not None else None
        return None

    def policy_for(self, device_name: str, domain: str, user_sids: tuple[str, ...]) -> AppliedPolicy | None:
        key = domain.casefold()
        tree = self.trees.get(key)
        if tree is None:
            return None
        with tree.lock:
            computer = tree.find_account(f"{device_name}$")
            if computer is None:
                return None
            computer_values: dict[str, int] = {}
            computer_from: dict[str, tuple[str, str]] = {}
            names: list[str] = []
            for gpo in self._applying(key, tree, computer, self._token(tree, computer, 515)):
                if gpo.values:
                    computer_values.update(gpo.values)
                    computer_from.update({name: (gpo.name, gpo.dn) for name in gpo.values})  # the later one wins
                    names.append(gpo.name)
            groups = tuple(
                sorted(g.text("cn") for g in (tree.get(k) for k in tree.groups_in_chain(computer.dn)) if g is not None)
            )
        users: dict[str, dict[str, int]] = {}
        for sid in user_sids:
            found = self._user_entry(sid)
            if found is None:
                continue
            user_domain, user_tree, user = found
            values: dict[str, int] = {}
            with user_tree.lock:
                for gpo in self._applying(user_domain, user_tree, user, self._token(user_tree, user, 513)):
                    if gpo.user_values:
                        values.update(gpo.user_values)
                        if gpo.name not in names:
                            names.append(gpo.name)
            if values:
                users[sid] = values
        return AppliedPolicy(
            computer=computer_values, users=users, gpos=tuple(names), groups=groups, computer_from=computer_from
        )

    # ---- administration (lab gpo) --------------------------------------------------------------------

    def domain_key(self, domain: str) -> str:
        wanted = domain.casefold()
        for key, tree in self.trees.items():
            if wanted in (key, tree.netbios.casefold()):
                return key
        raise KeyError(f"no lab domain {domain!r} (the lab's domains: {', '.join(sorted(self.trees))})")

    def find(self, domain: str, name: str) -> GroupPolicy:
        """A GPO by display name or GUID (case-insensitive)."""
        key = self.domain_key(domain)
        wanted = name.casefold().strip("{}")
        for gpo in self.policies.get(key, []):
            if wanted in (gpo.name.casefold(), gpo.guid.casefold().strip("{}")):
                return gpo
        known = "; ".join(p.name for p in self.policies.get(key, []))
        raise KeyError(f"no GPO {name!r} in {key} (its GPOs: {known})")

    def describe(self, domain: str, gpo: GroupPolicy) -> dict[str, object]:
        tree = self.trees[self.domain_key(domain)]
        with tree.lock:
            gpc = tree.get(gpo.dn)
            descriptor = gpc.first("nTSecurityDescriptor") if gpc is not None else None
            filters = []
            for sid in apply_groups(descriptor) if isinstance(descriptor, bytes) else []:
                group = tree.find_sid(sid)
                filters.append(group.text("cn") if group is not None else sid)
            links = [
                entry.dn
                for entry in tree.subtree(tree.base_dn)
                if entry.has("gPLink") and dn_key(gpo.dn) in {dn_key(d) for d, _ in _LINK.findall(entry.text("gPLink"))}
            ]
        return {
            "name": gpo.name,
            "guid": gpo.guid,
            "dn": gpo.dn,
            "linked_to": links,
            "security_filtering": filters,
            "computer": dict(gpo.values),
            "user": dict(gpo.user_values),
        }

    def set_value(
        self, domain: str, name: str, value_name: str, value: int | None, *, user: bool = False
    ) -> GroupPolicy:
        """Set (or with None remove) one value of a GPO, as an admin edits it in GPMC; the version goes up."""
        gpo = self.find(domain, name)
        tree = self.trees[self.domain_key(domain)]
        with tree.lock:
            target = gpo.user_values if user else gpo.values
            if value is None:
                if value_name not in target:
                    raise KeyError(f"GPO {gpo.name!r} does not set {value_name!r}")
                del target[value_name]
            else:
                target[value_name] = value
            if self.changes is not None:
                kind: Literal["gpo-set", "gpo-remove"] = "gpo-set" if value is not None else "gpo-remove"
                self.changes.append(
                    DirectoryChange(
                        domain=tree.dns_name, kind=kind, target=gpo.guid, name=value_name, value=value, user=user
                    )
                )
            gpc = tree.get(gpo.dn)
            if gpc is not None:
                # versionNumber: user version in the high 16 bits, computer version in the low 16 ([MS-GPOL] 2.2.4).
                version = int(gpc.text("versionNumber") or "0")
                gpc.set("versionNumber", [str(version + (0x10000 if user else 1))])
        return gpo
