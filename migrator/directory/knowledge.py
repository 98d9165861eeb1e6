"""What a wave (or a probe) knows from the directory, read once per domain before any device is visited.

Theory of operation
-------------------
:func:`read_directory` opens one connection per domain, reads its Entra Kerberos object and the accounts its
``msDS-NeverRevealGroup`` keeps out (:func:`~migrator.directory.reader.read_entra_kerberos`), and closes it: the
requests are O(domains), never O(devices), and :attr:`DirectoryKnowledge.requests` counts them. The result is
plain data that the machine gets through :class:`~migrator.facts.PathSettings` (the machine stays pure):
``entra_kerberos`` by DNS and NetBIOS name, ``never_reveal`` by user SID with the groups named.

Which domains are read: those the inventory says how to reach, a ``directory:`` section or the ``lab: domains:``
of a lab inventory (:func:`directory_configured`); an inventory with neither keeps the old behaviour. A domain
whose DC cannot be read is listed in :attr:`DirectoryKnowledge.failures`: :func:`announce_failures` warns on the
console and in the log, and that domain is decided as before (``--entra-kerberos``, else "not confirmed").
``--entra-kerberos DOMAIN=yes|no`` overrides the directory (:meth:`DirectoryKnowledge.path_settings`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from migrator.directory.client import ConnectionFactory, DirectoryClient, open_ldap_connection
from migrator.directory.reader import EntraKerberosObject, read_entra_kerberos
from migrator.directory.settings import (
    directory_credentials,
    directory_enabled,
    known_domains,
    resolve_target,
)
from migrator.errors import DirectoryError
from migrator.facts import PathSettings
from migrator.inventory import Inventory
from migrator.logs import get_logger
from migrator.remote.credentials import Credentials


@dataclass
class DirectoryKnowledge:
    """Per domain: its Entra Kerberos object as read, or why it could not be read; requests and time spent."""

    domains: dict[str, EntraKerberosObject] = field(default_factory=dict)  # by DNS name, casefolded
    failures: dict[str, DirectoryError] = field(default_factory=dict)
    requests: int = 0
    seconds: float = 0.0

    def entra_kerberos(self) -> dict[str, bool]:
        """Whether each read domain has its Entra Kerberos object, by DNS name and by NetBIOS name."""
        known: dict[str, bool] = {}
        for facts in self.domains.values():
            known[facts.domain] = facts.exists
            known[facts.netbios] = facts.exists
        return known

    def never_reveal(self) -> dict[str, tuple[str, ...]]:
        """SID → the msDS-NeverRevealGroup groups (NETBIOS\\group) that hold the account, every read domain."""
        out: dict[str, tuple[str, ...]] = {}
        for facts in self.domains.values():
            for sid, groups in facts.protected.items():
                named = tuple(f"{facts.netbios}\\{group}" for group in groups)
                out[sid] = tuple(dict.fromkeys(out.get(sid, ()) + named))
        return out

    def as_json(self) -> dict[str, object]:
        """What was read, per domain, and what could not be (for ``probe --json``)."""
        return {
            "domains": {
                facts.domain: {
                    "netbios": facts.netbios,
                    "entra_kerberos": facts.exists,
                    "key_version": facts.key_version,
                    "never_reveal_groups": list(facts.never_reveal_groups),
                    "never_served": sorted(facts.protected_names.get(sid, sid) for sid in facts.protected),
                }
                for facts in self.domains.values()
            },
            "failures": {
                err.domain: {"class": type(err).__name__, "message": err.detail} for err in self.failures.values()
            },
            "requests": self.requests,
        }

    def path_settings(self, overrides: Mapping[str, bool] | None = None) -> PathSettings:
        """What the path decision and the machine get: the directory's answers, ``overrides`` (the admin's
        ``--entra-kerberos``) winning for the domains they name."""
        known = self.entra_kerberos()
        for name, present in (overrides or {}).items():
            wanted = name.casefold()
            aliases = {wanted}
            for facts in self.domains.values():  # an override by DNS name also covers the NetBIOS name
                if wanted in (facts.domain.casefold(), facts.netbios.casefold()):
                    aliases |= {facts.domain.casefold(), facts.netbios.casefold()}
            for existing in [k for k in known if k.casefold() in aliases]:
                del known[existing]
            known[name] = present
            known.update({alias: present for alias in aliases if alias != wanted})
        return PathSettings(entra_kerberos=known, never_reveal=self.never_reveal())


def directory_configured(inventory: Inventory) -> bool:
    """Whether the inventory says how to reach a directory (and does not turn reading it off)."""
    if not directory_enabled(inventory):
        return False
    lab_domains = inventory.lab.domains if inventory.lab is not None else []
    return inventory.data.directory is not None or bool(lab_domains)


def read_directory(
    inventory: Inventory,
    credentials: Credentials,
    *,
    devices: Iterable[str] | None = None,
    secrets_file: Path | None = None,
    connection_factory: ConnectionFactory = open_ldap_connection,
    clock: Callable[[], float] = time.monotonic,
) -> DirectoryKnowledge:
    """Read every relevant domain once (see the module's docstring); never raises for a domain it cannot read.

    :class:`InputError` for a bad ``directory:`` setting (checked for every domain before any is read)."""
    knowledge = DirectoryKnowledge()
    if not directory_configured(inventory):
        return knowledge
    started = clock()
    domains = known_domains(inventory, devices)
    targets = [resolve_target(inventory, domain) for domain in domains]
    bind_as = {t.domain: directory_credentials(t, credentials, secrets_file) for t in targets}
    log = get_logger("directory")
    for target in targets:
        client = DirectoryClient(target, bind_as[target.domain], connection_factory=connection_factory)
        try:
            with client:
                facts = read_entra_kerberos(client)
            knowledge.domains[target.domain.casefold()] = facts
            log.info(
                "directory read",
                domain=target.domain,
                server=f"{target.server}:{target.port}",
                security=target.security,
                entra_kerberos=facts.exists,
                key_version=facts.key_version,
                never_reveal_groups=list(facts.never_reveal_groups),
                protected_accounts=len(facts.protected),
                requests=client.requests,
            )
        except DirectoryError as err:
            knowledge.failures[target.domain.casefold()] = err
        finally:
            knowledge.requests += client.requests
    knowledge.seconds = clock() - started
    return knowledge


def directory_summary(knowledge: DirectoryKnowledge) -> str:
    """One line: per domain read, Entra Kerberos yes/no (key version) and the accounts it never serves."""
    parts = []
    for facts in knowledge.domains.values():
        if facts.exists:
            version = f", key version {facts.key_version}" if facts.key_version is not None else ""
            parts.append(f"{facts.domain}: Entra Kerberos yes{version}, {len(facts.protected)} accounts never served")
        else:
            parts.append(f"{facts.domain}: no Entra Kerberos object")
    return f"directory: {'; '.join(parts)} ({knowledge.requests} LDAP requests, {knowledge.seconds * 1000:.0f} ms)"


def announce_failures(knowledge: DirectoryKnowledge, *, command: str, say: Callable[[str], None]) -> None:
    """Warn (``say``, the console, and the log) about each domain whose directory could not be read."""
    log = get_logger("directory")
    for err in knowledge.failures.values():
        say(
            f"WARNING: {err} ({type(err).__name__}: {err.action}). Without it, Microsoft Entra Kerberos in "
            f"{err.domain} is what --entra-kerberos says (else not confirmed), and privileged users beyond the "
            "default groups are only found on the devices."
        )
        log.warning(
            "directory unreadable",
            command=command,
            domain=err.domain,
            error=type(err).__name__,
            detail=err.detail,
            action=err.action,
        )


__all__ = [
    "DirectoryKnowledge",
    "announce_failures",
    "directory_configured",
    "directory_summary",
    "read_directory",
]
