"""Accounts as the domain controllers see them, for the devices' view: logon token groups, and who the Entra
Kerberos server object refuses (implements :class:`migrator.lab.shell.AccountDirectory`).

A device builds a user's logon token from the user's groups in the directory (nested ones included, the primary
group Domain Users as well), and Entra Kerberos issues no partial TGT to an account in a group that
``msDS-NeverRevealGroup`` of ``CN=AzureADKerberos,OU=Domain Controllers,...`` names, through any nesting
(it follows the RODC password replication rules). Both are read at each use, so ``lab group`` (or an LDAP
modify) that puts a user in Domain Admins, or in a group an admin added to msDS-NeverRevealGroup, counts at the
user's next sign-in. The generated directory agrees with the fleet's ``privileged`` flags.
"""

from __future__ import annotations

from migrator.lab.directory.dit import Directory, Entry, dn_key, sid_from_bytes


class DirectoryAccounts:
    """Token groups and never-reveal membership of the accounts of every lab domain."""

    def __init__(self, trees: dict[str, Directory], domain_sids: dict[str, str]) -> None:
        self.trees = trees
        self.domain_sids = domain_sids

    def _account(self, sid: str) -> tuple[Directory, Entry] | None:
        for key, tree in self.trees.items():
            if sid.startswith(self.domain_sids[key] + "-"):
                entry = tree.find_sid(sid)
                return (tree, entry) if entry is not None else None
        return None

    def token_groups(self, user_sid: str) -> tuple[str, ...] | None:
        found = self._account(user_sid)
        if found is None:
            return None
        tree, entry = found
        domain_sid = self.domain_sids[tree.dns_name.casefold()]
        with tree.lock:
            sids = {f"{domain_sid}-{entry.text('primaryGroupID') or '513'}"}
            for key in tree.groups_in_chain(entry.dn):
                group = tree.get(key)
                value = group.first("objectSid") if group is not None else None
                if isinstance(value, bytes):
                    sids.add(sid_from_bytes(value))

        def rid(sid: str) -> tuple[int, str]:
            tail = sid.rsplit("-", 1)[1]
            return (int(tail) if tail.isdigit() else 0, sid)

        primary = f"{domain_sid}-{entry.text('primaryGroupID') or '513'}"
        return (primary, *sorted(sids - {primary}, key=rid))

    def never_revealed(self, user_sid: str) -> bool | None:
        found = self._account(user_sid)
        if found is None:
            return None
        tree, entry = found
        with tree.lock:
            server = tree.get(f"CN=AzureADKerberos,OU=Domain Controllers,{tree.base_dn}")
            if server is None:
                return None  # no Entra Kerberos in this domain: nobody gets a partial TGT from it anyway
            never = {dn_key(v) for v in server.get("msDS-NeverRevealGroup") if isinstance(v, str)}
            return bool(never & tree.groups_in_chain(entry.dn))
