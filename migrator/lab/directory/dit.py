"""One lab domain's directory information tree: entries, their attributes, and the member/memberOf link.

An :class:`Entry` keeps attributes by case-folded name (LDAP attribute names are case-insensitive) with the
spelling AD uses for display. Values are ``str``, or ``bytes`` for binary syntaxes (``objectSid``,
``objectGUID``, ``nTSecurityDescriptor``). ``memberOf`` is a back link, as in AD: it is never written directly,
only through :meth:`Directory.add_member` / :meth:`Directory.remove_member`, the one funnel that keeps both ends
of the link in step. Every read and write happens under the directory's lock (LDAP connections run on the lab's
event loop; the control endpoint on worker threads).
"""

from __future__ import annotations

import struct
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

Value = str | bytes


class DirectoryError(Exception):
    """A directory operation refused, with the LDAP result code AD answers and its diagnostic text."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# LDAP result codes used by the lab (RFC 4511 4.1.9).
SUCCESS = 0
OPERATIONS_ERROR = 1
PROTOCOL_ERROR = 2
SIZE_LIMIT_EXCEEDED = 4
AUTH_METHOD_NOT_SUPPORTED = 7
STRONGER_AUTH_REQUIRED = 8
UNAVAILABLE_CRITICAL_EXTENSION = 12
NO_SUCH_ATTRIBUTE = 16
NO_SUCH_OBJECT = 32
INVALID_DN_SYNTAX = 34
INVALID_CREDENTIALS = 49
INSUFFICIENT_ACCESS_RIGHTS = 50
UNWILLING_TO_PERFORM = 53
ENTRY_ALREADY_EXISTS = 68


def sid_to_bytes(sid: str) -> bytes:
    """``S-1-5-21-a-b-c-rid`` as AD stores objectSid: revision, sub-authority count, 48-bit big-endian
    authority, then each sub-authority as a 32-bit little-endian integer ([MS-DTYP] 2.4.2.2)."""
    parts = sid.split("-")
    if len(parts) < 3 or parts[0].upper() != "S":
        raise ValueError(f"not a SID: {sid!r}")
    revision, authority, subs = int(parts[1]), int(parts[2]), [int(p) for p in parts[3:]]
    return struct.pack("<BB", revision, len(subs)) + authority.to_bytes(6, "big") + struct.pack(f"<{len(subs)}I", *subs)


def sid_from_bytes(data: bytes) -> str:
    revision, count = data[0], data[1]
    authority = int.from_bytes(data[2:8], "big")
    subs = struct.unpack(f"<{count}I", data[8 : 8 + 4 * count])
    return "-".join(["S", str(revision), str(authority), *(str(s) for s in subs)])


def guid_to_bytes(guid: str) -> bytes:
    """objectGUID as AD stores it: the first three fields little-endian ([MS-DTYP] 2.3.4.2)."""
    return uuid.UUID(guid).bytes_le


def dn_key(dn: str) -> str:
    """A DN's comparison key: RDNs trimmed around ',' and '=', case-folded (AD compares DNs case-insensitively)."""
    parts = []
    for rdn in split_dn(dn):
        attr, _, value = rdn.partition("=")
        parts.append(f"{attr.strip()}={value.strip()}".casefold())
    return ",".join(parts)


def split_dn(dn: str) -> list[str]:
    """The RDNs of a DN, honouring ``\\,`` escapes (enough for the names the lab generates)."""
    if "\\" not in dn:
        return [r.strip() for r in dn.split(",") if r.strip()]
    rdns: list[str] = []
    current: list[str] = []
    escaped = False
    for char in dn:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            current.append(char)
            escaped = True
        elif char == ",":
            rdns.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    tail = "".join(current).strip()
    if tail or rdns:
        rdns.append(tail)
    return [r for r in rdns if r]


def parent_dn(dn: str) -> str:
    rdns = split_dn(dn)
    return ",".join(rdns[1:])


def escape_rdn_value(value: str) -> str:
    """RFC 4514 escaping of the characters the lab's names can hold."""
    out = []
    for index, char in enumerate(value):
        if char in ',+"\\<>;=' or (char == "#" and index == 0):
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def dn_of_dns_name(dns_name: str) -> str:
    return ",".join(f"DC={label}" for label in dns_name.split("."))


@dataclass
class Attribute:
    name: str  # display spelling: sAMAccountName
    values: list[Value] = field(default_factory=list)


class Entry:
    """One object: its DN and its attributes (by case-folded name)."""

    __slots__ = ("_attrs", "dn", "key", "parent_key")

    def __init__(self, dn: str, attributes: Mapping[str, Value | Iterable[Value]] | None = None) -> None:
        self.dn = dn
        self.key = dn_key(dn)
        self.parent_key = dn_key(parent_dn(dn))
        self._attrs: dict[str, Attribute] = {}
        self.set("distinguishedName", [dn])
        for name, value in (attributes or {}).items():
            self.set(name, [value] if isinstance(value, str | bytes) else list(value))

    def get(self, name: str) -> list[Value]:
        attribute = self._attrs.get(name.casefold())
        return attribute.values if attribute is not None else []

    def first(self, name: str) -> Value | None:
        values = self.get(name)
        return values[0] if values else None

    def text(self, name: str) -> str:
        value = self.first(name)
        return value if isinstance(value, str) else ""

    def set(self, name: str, values: list[Value]) -> None:
        if values:
            self._attrs[name.casefold()] = Attribute(name, list(values))
        else:
            self._attrs.pop(name.casefold(), None)

    def append(self, name: str, value: Value) -> None:
        attribute = self._attrs.get(name.casefold())
        if attribute is None:
            self._attrs[name.casefold()] = Attribute(name, [value])
        else:
            attribute.values.append(value)

    def attributes(self) -> Iterator[Attribute]:
        return iter(self._attrs.values())

    def has(self, name: str) -> bool:
        return name.casefold() in self._attrs

    def is_a(self, object_class: str) -> bool:
        wanted = object_class.casefold()
        return any(isinstance(v, str) and v.casefold() == wanted for v in self.get("objectClass"))


class Directory:
    """The tree of one domain, with the indexes searches and binds need."""

    def __init__(self, dns_name: str, netbios: str) -> None:
        self.dns_name = dns_name
        self.netbios = netbios
        self.base_dn = dn_of_dns_name(dns_name)
        self.lock = threading.RLock()
        self._entries: dict[str, Entry] = {}
        self._children: dict[str, list[str]] = {}
        self._by_sam: dict[str, str] = {}
        self._by_upn: dict[str, str] = {}
        self._by_sid: dict[bytes, str] = {}
        self._members: dict[str, set[str]] = {}  # group key -> member keys (the member attribute, indexed)
        self.passwords: dict[str, str] = {}  # entry key -> password, for accounts that can bind (kept out of the DIT)
        # Told of every member change once the generated tree is complete: (add|remove, group DN, member DN).
        self.on_member_change: Callable[[str, str, str], None] | None = None

    # ---- structure ------------------------------------------------------------------------------------

    def add(self, entry: Entry) -> Entry:
        if entry.key in self._entries:
            raise DirectoryError(ENTRY_ALREADY_EXISTS, f"00000524: UpdErr: DSID-031A11D8, problem 6005 ({entry.dn})")
        self._entries[entry.key] = entry
        self._children.setdefault(entry.parent_key, []).append(entry.key)
        sam = entry.text("sAMAccountName")
        if sam:
            self._by_sam[sam.casefold()] = entry.key
        upn = entry.text("userPrincipalName")
        if upn:
            self._by_upn[upn.casefold()] = entry.key
        sid = entry.first("objectSid")
        if isinstance(sid, bytes):
            self._by_sid[sid] = entry.key
        return entry

    def get(self, dn: str) -> Entry | None:
        return self._entries.get(dn_key(dn))

    def __len__(self) -> int:
        return len(self._entries)

    def children(self, dn: str) -> list[Entry]:
        return [self._entries[k] for k in self._children.get(dn_key(dn), [])]

    def subtree(self, dn: str) -> Iterator[Entry]:
        """The entry at ``dn`` and everything below it, parents before children."""
        root = self._entries.get(dn_key(dn))
        if root is None:
            return
        stack = [root.key]
        while stack:
            key = stack.pop()
            yield self._entries[key]
            stack.extend(reversed(self._children.get(key, [])))

    def by_sam_account_name(self, sam: str) -> Entry | None:
        """The entry whose sAMAccountName is exactly ``sam`` (AD indexes the attribute; so does the lab)."""
        key = self._by_sam.get(sam.casefold())
        return self._entries.get(key) if key is not None else None

    def find_sid(self, sid: str) -> Entry | None:
        key = self._by_sid.get(sid_to_bytes(sid))
        return self._entries.get(key) if key is not None else None

    def find_account(self, name: str) -> Entry | None:
        """An object by DN, ``DOMAIN\\sam``, UPN, sAMAccountName (``PC-0001`` finds ``PC-0001$``) or CN."""
        with self.lock:
            if "=" in name:
                return self.get(name)
            domain, sep, sam = name.partition("\\")
            if sep:
                if domain.casefold() not in (self.netbios.casefold(), self.dns_name.casefold(), "lab"):
                    return None
                name = sam
            key = self._by_upn.get(name.casefold()) or self._by_sam.get(name.casefold())
            key = key or self._by_sam.get(name.casefold() + "$")
            if key is None:
                wanted = name.casefold()
                for entry in self._entries.values():
                    if entry.text("cn").casefold() == wanted and (entry.is_a("group") or entry.is_a("user")):
                        return entry
                return None
            return self._entries[key]

    # ---- the member / memberOf link -------------------------------------------------------------------------

    def add_member(self, group: Entry, member_dn: str) -> None:
        """Add ``member_dn`` to ``group``: AD answers entryAlreadyExists (68) for a present member (its diagnostic
        carries 0x562, ERROR_MEMBER_IN_GROUP) and noSuchObject (32) when the DN names nothing in this domain."""
        with self.lock:
            member = self.get(member_dn)
            if member is None:
                raise DirectoryError(
                    NO_SUCH_OBJECT,
                    f"0000208D: NameErr: DSID-03100245, problem 2001 (NO_OBJECT), best match of: '{member_dn}'",
                )
            members = self._members.setdefault(group.key, set())
            if member.key in members:
                raise DirectoryError(
                    ENTRY_ALREADY_EXISTS,
                    "00000562: UpdErr: DSID-031A1262, problem 6005 (ENTRY_EXISTS), data 0",
                )
            members.add(member.key)
            group.append("member", member.dn)
            member.append("memberOf", group.dn)
            if self.on_member_change is not None:
                self.on_member_change("add", group.dn, member.dn)

    def remove_member(self, group: Entry, member_dn: str) -> None:
        """Remove ``member_dn`` from ``group``: a member that is not there is unwillingToPerform (53), as AD
        answers it (its diagnostic carries 0x561, ERROR_MEMBER_NOT_IN_GROUP), not noSuchAttribute (16)."""
        with self.lock:
            key = dn_key(member_dn)
            members = self._members.setdefault(group.key, set())
            if key not in members:
                raise DirectoryError(
                    UNWILLING_TO_PERFORM,
                    "00000561: SvcErr: DSID-031A124C, problem 5003 (WILL_NOT_PERFORM), data 0",
                )
            members.discard(key)
            values = group.get("member")
            # The DN as stored (the one a search returned, typically) is found without normalising every value:
            # removing a thousand members of a large group stays linear.
            member = self._entries.get(key)
            stored = member.dn if member is not None else member_dn
            if stored in values:
                values.remove(stored)
            else:
                group.set("member", [v for v in values if not (isinstance(v, str) and dn_key(v) == key)])
            if self.on_member_change is not None:
                self.on_member_change("remove", group.dn, member_dn)
            member = self._entries.get(key)
            if member is not None:
                member.set(
                    "memberOf",
                    [v for v in member.get("memberOf") if not (isinstance(v, str) and dn_key(v) == group.key)],
                )

    def groups_in_chain(self, dn: str) -> set[str]:
        """Keys of every group ``dn`` is in, directly or through nested groups (LDAP_MATCHING_RULE_IN_CHAIN)."""
        return self._chain(dn, "memberOf")

    def members_in_chain(self, dn: str) -> set[str]:
        """Keys of every object below group ``dn`` through nested ``member`` links."""
        return self._chain(dn, "member")

    def _chain(self, dn: str, link: str) -> set[str]:
        """Keys reached from ``dn`` by following the DN-valued attribute ``link`` transitively (cycles allowed)."""
        seen: set[str] = set()
        stack = [dn_key(dn)]
        while stack:
            entry = self._entries.get(stack.pop())
            if entry is None:
                continue
            for value in entry.get(link):
                key = dn_key(value) if isinstance(value, str) else ""
                if key and key not in seen:
                    seen.add(key)
                    stack.append(key)
        return seen

    def is_domain_admin(self, dn: str) -> bool:
        """Whether ``dn`` may change group membership: a member (in chain) of Domain Admins, as AD's default
        ACLs on groups give write access to Domain Admins and Account Operators, not to users."""
        admins = dn_key(f"CN=Domain Admins,CN=Users,{self.base_dn}")
        return admins in self.groups_in_chain(dn)
