"""Group membership of computer accounts: find the GPO filter groups and the computers, move them in few modifies.

Theory of operation
-------------------
A policy channel that works through Group Policy security filtering (``ad-group``) changes which groups a batch
of computers is in. Per domain and batch it takes:

1. :func:`find_group`: the group, by sAMAccountName in the domain (one search) or by DN (one base search);
2. :func:`find_computers`: the batch's computer accounts by sAMAccountName (``NAME$``) with their ``memberOf``
   (direct memberships, the back link AD computes from each group's ``member``), in searches of
   :data:`MODIFY_CHUNK` names ORed: what the computers are in before anything changes, and the DN each modify
   names;
3. :func:`set_membership`: the computers not yet as wanted, in one modify of the group's ``member`` per
   :data:`MODIFY_CHUNK` values (``add`` or ``delete``, many values in one request).

AD applies a modify whole or not at all. When it answers that a value was already there (entryAlreadyExists) or
was not (unwillingToPerform / noSuchAttribute), someone changed the group since it was read (an admin, another
run): nothing of that request was applied, so the chunk's computers are read again and only those still not as
wanted are sent, at most :data:`ATTEMPTS` times. A value is never sent blindly twice, and "already so" is
recorded per computer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ldap3.utils.conv import escape_filter_chars

from migrator.directory.client import DirectoryClient, DirectoryEntry
from migrator.directory.reader import split_dn
from migrator.errors import DirectoryProtocolError

# Values per modify (and names per lookup). Each modify of a linked attribute such as ``member`` is one database
# transaction on the DC that also updates every member's ``memberOf`` back link; AD refuses very large ones
# (adminLimitExceeded) and Windows 2000-era guidance caps a membership change at 5,000 values. 1,000 keeps each
# request well inside that and inside MaxValRange (1,500 values a DC returns per attribute read), so a batch of
# up to 1,000 computers costs one modify per group and domain.
MODIFY_CHUNK = 1000
ATTEMPTS = 3


def dn_key(dn: str) -> str:
    """A DN compared as AD compares them: case-insensitive, spaces around RDN separators ignored."""
    return ",".join(part.strip().casefold() for part in split_dn(dn))


@dataclass(frozen=True)
class Group:
    """A group found in one domain."""

    name: str  # as the playbook names it
    dn: str
    domain: str

    @property
    def key(self) -> str:
        return dn_key(self.dn)


@dataclass(frozen=True)
class ComputerAccount:
    """A computer account and the groups it is directly in (DN keys)."""

    name: str  # the computer name, without the trailing $
    dn: str
    member_of: frozenset[str] = frozenset()

    def is_in(self, group: Group) -> bool:
        return group.key in self.member_of


@dataclass
class MembershipChange:
    """What :func:`set_membership` did for one group."""

    group: Group
    member: bool  # True: the computers were to be in the group; False: out of it
    changed: list[str] = field(default_factory=list)  # computers this run added or removed
    already: list[str] = field(default_factory=list)  # computers found as wanted (before, or by a retry's read)
    modifies: int = 0

    def as_json(self) -> dict[str, object]:
        return {
            "group": self.group.name,
            "dn": self.group.dn,
            "action": "add" if self.member else "remove",
            "changed": sorted(self.changed),
            "already": sorted(self.already),
            "modifies": self.modifies,
        }


def _chunks(items: Sequence[str], size: int = MODIFY_CHUNK) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def find_group(client: DirectoryClient, name: str, *, is_dn: bool) -> Group | None:
    """The group ``name`` (a sAMAccountName, or a DN when ``is_dn``) in the client's domain; None if absent."""
    base = client.target.base_dn
    if is_dn:
        if not dn_key(name).endswith(dn_key(base)):
            return None  # another domain's group: this domain's computers cannot be put in it here
        found = list(client.search(name, "(objectClass=group)", ["sAMAccountName"], scope="BASE"))
    else:
        query = f"(&(objectClass=group)(sAMAccountName={escape_filter_chars(name)}))"
        found = list(client.search(base, query, ["sAMAccountName"]))
    if not found:
        return None
    return Group(name, found[0].dn, client.domain)


def _computer(entry: DirectoryEntry) -> ComputerAccount:
    sam = entry.text("sAMAccountName") or ""
    return ComputerAccount(sam.removesuffix("$"), entry.dn, frozenset(dn_key(g) for g in entry.texts("memberOf")))


def find_computers(client: DirectoryClient, names: Sequence[str]) -> dict[str, ComputerAccount]:
    """The computer accounts of ``names`` (computer names), by case-folded name; absent ones are left out."""
    found: dict[str, ComputerAccount] = {}
    unique = list(dict.fromkeys(n.casefold() for n in names))
    for chunk in _chunks(unique):
        terms = "".join(f"(sAMAccountName={escape_filter_chars(n)}$)" for n in chunk)
        query = f"(&(objectClass=computer)(|{terms}))"
        for entry in client.search(client.target.base_dn, query, ["sAMAccountName", "memberOf"]):
            computer = _computer(entry)
            found[computer.name.casefold()] = computer
    return found


def set_membership(
    client: DirectoryClient, group: Group, computers: Sequence[ComputerAccount], *, member: bool
) -> MembershipChange:
    """Put ``computers`` in (``member``) or out of ``group``, in one modify per :data:`MODIFY_CHUNK` of those not
    already as wanted (see the module docstring for AD's answers)."""
    change = MembershipChange(group, member)
    todo: list[ComputerAccount] = []
    for computer in computers:
        if computer.is_in(group) != member:
            todo.append(computer)
        else:
            change.already.append(computer.name)
    for chunk_start in range(0, len(todo), MODIFY_CHUNK):
        pending = todo[chunk_start : chunk_start + MODIFY_CHUNK]
        for _ in range(ATTEMPTS):
            if not pending:
                break
            dns = [c.dn for c in pending]
            answer = client.modify_members(group.dn, add=dns if member else (), delete=() if member else dns)
            change.modifies += 1
            if answer.ok:
                change.changed.extend(c.name for c in pending)
                pending = []
                break
            # Nothing of this request was applied: read the chunk again, send only what is still to do.
            again = find_computers(client, [c.name for c in pending])
            still: list[ComputerAccount] = []
            for computer in pending:
                fresh = again.get(computer.name.casefold())
                if fresh is None:
                    raise DirectoryProtocolError(
                        client.domain, f"the computer account {computer.name} disappeared while its groups changed"
                    )
                if fresh.is_in(group) != member:
                    still.append(fresh)
                else:
                    change.already.append(fresh.name)
            if len(still) == len(pending):
                raise DirectoryProtocolError(
                    client.domain,
                    f"modify of {group.dn} refused ({answer.code}: {answer.message}) though re-reading shows "
                    f"{len(still)} computers still to {'add' if member else 'remove'}",
                )
            pending = still
        if pending:
            raise DirectoryProtocolError(
                client.domain, f"{group.dn}: membership kept changing under this run ({ATTEMPTS} attempts)"
            )
    return change
