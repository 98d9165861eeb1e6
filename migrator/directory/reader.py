"""What the product reads from a domain: the Entra Kerberos server object, who it never serves, the computers.

- :func:`read_entra_kerberos`: whether ``CN=AzureADKerberos,OU=Domain Controllers,<domain DN>`` exists (created by
  ``Set-AzureADKerberosServer``), the key version of ``CN=krbtgt_AzureAD,CN=Users,<domain DN>``
  (``msDS-KeyVersionNumber``, where the account may read it), and the transitive members of each group its
  ``msDS-NeverRevealGroup`` names, each resolved in one paged search with ``LDAP_MATCHING_RULE_IN_CHAIN``
  ([MS-ADTS] 3.1.1.3.4.4.3): Entra Kerberos gives those accounts no partial TGT, so cloud Kerberos trust cannot
  serve them. A few requests per domain, whatever the number of devices.
- :func:`read_computers`: the computer objects under a base (paged), for ``migrator inventory from-ad``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import parse_dn

from migrator.directory.client import IN_CHAIN, DirectoryClient, DirectoryEntry
from migrator.errors import DirectoryProtocolError


@dataclass(frozen=True)
class EntraKerberosObject:
    """A domain's Microsoft Entra Kerberos server object as the directory holds it."""

    domain: str
    netbios: str
    exists: bool
    key_version: int | None = None  # msDS-KeyVersionNumber of krbtgt_AzureAD, None where unreadable
    never_reveal_groups: tuple[str, ...] = ()  # the groups msDS-NeverRevealGroup names (their CN)
    # the accounts Entra Kerberos never serves: SID → the msDS-NeverRevealGroup group(s) that hold them
    protected: dict[str, tuple[str, ...]] = field(default_factory=dict)
    protected_names: dict[str, str] = field(default_factory=dict)  # SID → NETBIOS\\sAMAccountName


def sid_text(raw: bytes) -> str:
    """A binary objectSid ([MS-DTYP] 2.4.2.2) as S-1-5-21-...: revision, count, 48-bit big-endian authority,
    then 32-bit little-endian sub-authorities."""
    if len(raw) < 8 or len(raw) != 8 + 4 * raw[1]:
        raise ValueError("not a binary SID")
    authority = int.from_bytes(raw[2:8], "big")
    subs = struct.unpack(f"<{raw[1]}I", raw[8:])
    return "-".join(["S", str(raw[0]), str(authority), *map(str, subs)])


def common_name(dn: str) -> str:
    """The first RDN's value of ``dn`` (``CN=Tier0 Operators,OU=Groups,...`` → ``Tier0 Operators``)."""
    try:
        return str(parse_dn(dn, escape=False)[0][1])
    except Exception:
        return dn.split(",", 1)[0].partition("=")[2] or dn


def split_dn(dn: str) -> list[str]:
    """The RDNs of a DN, honouring escaped commas (``CN=Smith\\, J,OU=Staff`` → two RDNs)."""
    parts, current, escaped = [], "", False
    for char in dn:
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            current += char
            escaped = True
        elif char == ",":
            parts.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current.strip())
    return parts


def read_entra_kerberos(client: DirectoryClient) -> EntraKerberosObject:
    """One domain's Entra Kerberos object and the accounts its msDS-NeverRevealGroup keeps out (see module)."""
    target = client.target
    base = target.base_dn
    found = list(
        client.search(
            f"OU=Domain Controllers,{base}",
            "(&(objectClass=computer)(cn=AzureADKerberos))",
            ["msDS-NeverRevealGroup", "msDS-KrbTgtLink"],
            scope="LEVEL",
        )
    )
    if not found:
        return EntraKerberosObject(target.domain, target.netbios, exists=False)
    azure = found[0]
    key_version = None
    krbtgt_dn = azure.text("msDS-KrbTgtLink") or f"CN=krbtgt_AzureAD,CN=Users,{base}"
    for entry in client.search(krbtgt_dn, "(objectClass=user)", ["msDS-KeyVersionNumber"], scope="BASE"):
        text = entry.text("msDS-KeyVersionNumber")
        if text is not None and text.strip().lstrip("-").isdigit():
            key_version = int(text)
    groups = azure.texts("msDS-NeverRevealGroup")
    protected: dict[str, list[str]] = {}
    names: dict[str, str] = {}
    for group_dn in groups:
        group = common_name(group_dn)
        chain = f"(&(objectClass=user)(memberOf:{IN_CHAIN}:={escape_filter_chars(group_dn)}))"
        for member in client.search(base, chain, ["objectSid", "sAMAccountName"]):
            sid = _sid_of(member, client)
            if sid is None:
                continue
            held = protected.setdefault(sid, [])
            if group not in held:
                held.append(group)
            sam = member.text("sAMAccountName")
            if sam:
                names[sid] = f"{target.netbios}\\{sam}"
    return EntraKerberosObject(
        target.domain,
        target.netbios,
        exists=True,
        key_version=key_version,
        never_reveal_groups=tuple(common_name(g) for g in groups),
        protected={sid: tuple(held) for sid, held in protected.items()},
        protected_names=names,
    )


def _sid_of(entry: DirectoryEntry, client: DirectoryClient) -> str | None:
    raw = entry.raw("objectSid")
    if not raw:
        return None
    try:
        return sid_text(raw[0])
    except ValueError:
        raise DirectoryProtocolError(client.domain, f"{entry.dn}: objectSid is not a binary SID") from None


@dataclass(frozen=True)
class Computer:
    """A computer object, as ``inventory from-ad`` lists it."""

    name: str  # cn (the NetBIOS computer name)
    dns_host_name: str | None
    ou: str  # the DN of its container (OU=Paris,OU=Workstations,DC=...)
    operating_system: str | None = None
    operating_system_version: str | None = None
    disabled: bool = False


COMPUTER_FILTER = "(objectClass=computer)"
_ACCOUNTDISABLE = 0x2


def read_computers(client: DirectoryClient, base: str | None = None, extra: str | None = None) -> Iterator[Computer]:
    """The computer objects under ``base`` (default: the domain), ANDed with ``extra`` (an LDAP filter)."""
    search_filter = COMPUTER_FILTER
    if extra:
        inner = extra.strip()
        if not inner.startswith("("):
            inner = f"({inner})"
        search_filter = f"(&{COMPUTER_FILTER}{inner})"
    attributes = ["cn", "dNSHostName", "operatingSystem", "operatingSystemVersion", "userAccountControl"]
    for entry in client.search(base or client.target.base_dn, search_filter, attributes):
        name = entry.text("cn") or common_name(entry.dn)
        uac = entry.text("userAccountControl") or "0"
        disabled = uac.lstrip("-").isdigit() and bool(int(uac) & _ACCOUNTDISABLE)
        yield Computer(
            name=name,
            dns_host_name=entry.text("dNSHostName") or None,
            ou=",".join(split_dn(entry.dn)[1:]),
            operating_system=entry.text("operatingSystem"),
            operating_system_version=entry.text("operatingSystemVersion"),
            disabled=disabled,
        )
