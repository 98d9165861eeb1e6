"""Policy channels that act on the control plane per batch: ``ad-group`` (GPO security filtering by AD group).

Theory of operation
-------------------
With ``policy: {channel: ad-group, cloud_trust_group: G1, cert_trust_group: G2}`` the cloud Kerberos trust policy
comes from a GPO filtered to G1 (and the certificate trust policy from one filtered to G2). A batch is moved with
:meth:`AdGroupChannel.start_batch`, **the one hook a wave calls when a batch starts its policy step** (the
single-process :class:`~migrator.engine.waves.WaveRunner` and any coordinator of several workers alike): once the
batch's devices are preflighted and held before ``refresh_policy`` by :meth:`AdGroupChannel.hold` (the visit's
gate); each device's machine then runs ``refresh_policy`` (``gpupdate /force``, wait until the policy is
effective) as with the external channel.

Per domain of the batch (the inventory's ``domain`` of each device), over one LDAP connection:

0. only devices whose machine reached its policy step move: preflight found them on the playbook's key or
   certificate path (an ineligible, already-cloud or off-path device keeps its groups), and :meth:`AdGroupChannel.
   hold` keeps each of them from refreshing its policy until its computer account has moved (a device whose
   policy flipped to cloud trust before its preflight would be taken for one already migrated);
1. read the groups (by sAMAccountName in that domain, or by DN) and the batch's computer accounts with their
   memberships (:mod:`migrator.directory.groups`): one search per group and one per 1,000 computers;
2. resolve what an earlier run left in doubt (an intent without outcome: it crashed, or lost the DC, between
   the two) **by that fresh read**: the entry is settled with what holds now, never by sending the modify again;
3. journal the intent (the memberships found before, which rollback restores; what is wanted) and audit it;
4. one LDAP modify per group (many ``member`` values in one request, chunked at
   :data:`~migrator.directory.groups.MODIFY_CHUNK`): into G1, out of G2; values already as wanted are not sent,
   and AD's "already there" / "not there" answers are settled per computer by re-reading;
5. journal and audit the outcome. A DC lost mid-way leaves the intent in doubt for the next run (step 2).

Directory requests are O(domains × batches), never O(devices). :meth:`AdGroupChannel.preflight`,
called before a wave is created (``run``) or a plan is shown (``plan``), refuses a missing group, a missing
computer account or a device with no AD domain (Entra joined: no computer account) with :class:`InputError`
naming them, before anything is written. :meth:`AdGroupChannel.restore` (``migrator rollback``) puts each
computer back in the groups it was in before the wave's first change to it, journalled and audited the same way.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migrator.directory.client import ConnectionFactory, DirectoryClient, open_ldap_connection
from migrator.directory.groups import (
    ComputerAccount,
    Group,
    MembershipChange,
    find_computers,
    find_group,
    set_membership,
)
from migrator.directory.knowledge import DirectoryKnowledge
from migrator.directory.settings import directory_credentials, resolve_target
from migrator.engine.device import journal_point
from migrator.errors import DirectoryError, DirectoryUnreachable, InputError
from migrator.inventory import Inventory
from migrator.logs import get_logger
from migrator.machine.commands import RunStep
from migrator.playbook import Playbook, PolicySettings, is_group_dn
from migrator.remote.credentials import Credentials
from migrator.store import AuditEntry, Store
from migrator.store.directory import DirectoryChangeRow

CLOUD, CERT = "cloud", "cert"
MIGRATE, ROLLBACK = "migrate", "rollback"
ROLLBACK_BATCH = -1
POLICY_STATE = "policy"  # the machine's state where the policy step runs (migrator.machine.table)
REFRESH_STEP = "refresh_policy"  # the batch number rollback entries are journalled under (they span the wave)
Wanted = dict[str, dict[str, bool]]  # computer name -> role -> member or not


@dataclass
class DomainChange:
    """What one domain's change for a batch (or a rollback) did."""

    domain: str
    computers: int
    changes: list[MembershipChange] = field(default_factory=list)
    resolved: int = 0  # in-doubt entries settled by re-reading
    nothing_to_do: bool = False


class AdGroupChannel:
    """The ``ad-group`` policy channel of one wave (see the module docstring). Without a store it can only
    :meth:`preflight` (what ``migrator plan`` does)."""

    def __init__(
        self,
        policy: PolicySettings,
        inventory: Inventory,
        credentials: Credentials,
        *,
        store: Store | None = None,
        wave: str = "",
        knowledge: DirectoryKnowledge | None = None,
        overrides: Mapping[str, bool] | None = None,
        secrets_file: Path | None = None,
        connection_factory: ConnectionFactory = open_ldap_connection,
    ) -> None:
        """``knowledge``: what the wave read from the directory; ``overrides``: the admin's ``--entra-kerberos``."""
        self.policy = policy
        self.overrides = dict(overrides or {})
        self.inventory = inventory
        self.credentials = credentials
        self._store = store
        self.wave = wave
        self.knowledge = knowledge or DirectoryKnowledge()
        self.secrets_file = secrets_file
        self.connection_factory = connection_factory
        self.requests = 0  # LDAP requests sent, every domain and batch
        self.log = get_logger("engine.channels", wave=wave)
        self._released: set[str] = set()  # computers moved (case-folded names)
        self._lock = threading.Lock()
        self._released_from_journal = False

    @property
    def store(self) -> Store:
        if self._store is None:
            raise TypeError("this ad-group channel was made for a preflight only: it has no store to journal in")
        return self._store

    # ---- which devices, which domains ---------------------------------------------------------------------

    def _roles(self) -> dict[str, tuple[str, bool]]:
        """role -> (group name as the playbook names it, whether the batch's computers go in)."""
        assert self.policy.cloud_trust_group is not None  # the playbook's validator requires it for ad-group
        roles = {CLOUD: (self.policy.cloud_trust_group, True)}
        if self.policy.cert_trust_group is not None:
            roles[CERT] = (self.policy.cert_trust_group, False)
        return roles

    def _by_domain(
        self, devices: Sequence[str], problems: list[str] | None = None, *, eligible_only: bool = False
    ) -> dict[str, list[str]]:
        """The devices by domain; one without a domain is a problem (listed in ``problems``, else refused at
        once). ``eligible_only`` (preflight, before any device is read) leaves out a device whose domain has no
        Entra Kerberos object as the directory and the admin's ``--entra-kerberos`` say: it will be parked
        ineligible, so its domain needs no groups. Once preflight has run, the machine decided (a device that
        reached its policy step moves)."""
        out: dict[str, list[str]] = {}
        no_domain: list[str] = []
        for name in devices:
            entry = self.inventory.device(name)
            domain = entry.domain if entry is not None else None
            if entry is None or not domain or "." not in domain:
                no_domain.append(name)
                continue
            if eligible_only and self.knowledge.path_settings(self.overrides).entra_kerberos_for(domain) is False:
                continue
            out.setdefault(domain, []).append(entry.name)
        if no_domain:
            shown = ", ".join(no_domain[:10]) + (f" and {len(no_domain) - 10} more" if len(no_domain) > 10 else "")
            problem = (
                f"the inventory names no AD domain (DNS name) for {shown}: the ad-group channel moves computer "
                "accounts, and an Entra joined device has none (migrate it in a wave with the local channel)"
            )
            if problems is None:
                raise InputError(problem)
            problems.append(problem)
        return out

    def _client(self, domain: str) -> DirectoryClient:
        target = resolve_target(self.inventory, domain)
        bind_as = directory_credentials(target, self.credentials, self.secrets_file)
        return DirectoryClient(target, bind_as, connection_factory=self.connection_factory)

    def _read(
        self, client: DirectoryClient, names: Sequence[str], problems: list[str]
    ) -> tuple[dict[str, Group], dict[str, ComputerAccount]]:
        groups: dict[str, Group] = {}
        for role, (group_name, _member) in self._roles().items():
            group = find_group(client, group_name, is_dn=is_group_dn(group_name))
            if group is None:
                problems.append(f"group {group_name!r} does not exist in the domain {client.domain}")
            else:
                groups[role] = group
        computers = find_computers(client, names)
        missing = [n for n in names if n.casefold() not in computers]
        if missing:
            shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
            problems.append(f"no computer account in the domain {client.domain} for {shown}")
        return groups, computers

    # ---- preflight ----------------------------------------------------------------------------------------

    def preflight(self, devices: Sequence[str]) -> None:
        """Refuse (:class:`InputError`, every problem named) a wave the channel cannot carry out: a device with no
        AD domain, a group or computer account that does not exist. Reads only; raises :class:`DirectoryError`
        when a domain's directory cannot be read."""
        problems: list[str] = []
        for domain, names in self._by_domain(devices, problems, eligible_only=True).items():
            client = self._client(domain)
            try:
                with client:
                    self._read(client, names, problems)
            finally:
                self.requests += client.requests
        if problems:
            raise InputError("the ad-group policy channel cannot run: " + "; ".join(problems))

    # ---- the batch hook -----------------------------------------------------------------------------------

    def start_batch(self, batch: int, devices: Sequence[str]) -> list[DomainChange]:
        """Move the computer accounts of ``devices`` (of batch number ``batch``) that have reached their policy
        step (preflight found them on the playbook's key or certificate path; :meth:`hold` keeps them there) and
        have not moved yet: into the cloud trust group, out of the certificate trust group. The hook every wave
        driver calls once a batch's devices are preflighted (module docstring)."""
        # One change at a time: an intent another thread of this run has in flight is not in doubt (a wave has one
        # coordinator; across processes the store's idempotency keys keep two from journalling the same change).
        with self._lock:
            return self._start_batch(batch, devices)

    def _start_batch(self, batch: int, devices: Sequence[str]) -> list[DomainChange]:
        candidates = [d for d in devices if not self.released(d)]
        if not candidates:
            return []  # a device already moved (the runner asks again for each device held at its policy step)
        if len(candidates) < 50:
            states = {d: self.store.get_device(d).state for d in candidates}
        else:
            rows = {r.name.casefold(): r.state for r in self.store.list_devices(self.wave)}
            states = {d: rows.get(d.casefold(), "") for d in candidates}
        ready = [d for d in candidates if states[d] == POLICY_STATE]
        if not ready:
            return []
        done = []
        entries = self.store.directory_changes(self.wave)
        for domain, names in self._by_domain(ready).items():
            mine = [e for e in entries if e.purpose == MIGRATE and e.domain.casefold() == domain.casefold()]
            wanted: Wanted = {name: {role: member for role, (_g, member) in self._roles().items()} for name in names}
            previous = [e for e in mine if e.batch == batch]
            done.append(self._apply(domain, batch, MIGRATE, wanted, previous, [e for e in mine if e.in_doubt]))
            self._released.update(n.casefold() for n in names)
        return done

    def released(self, device: str) -> bool:
        """Whether ``device``'s computer account has been moved (this run, or as the journal records)."""
        if self._released_from_journal is False:
            self._released_from_journal = True
            for entry in self.store.directory_changes(self.wave):
                if entry.purpose != MIGRATE:
                    continue
                outcome = entry.outcome if isinstance(entry.outcome, Mapping) else {}
                wanted = entry.intent.get("wanted")
                if entry.status == "done" and isinstance(wanted, Mapping):
                    self._released.update(str(n).casefold() for n in wanted)
                elif entry.status == "resolved" and isinstance(held := outcome.get("as_wanted"), list):
                    self._released.update(str(n).casefold() for n in held)
        return device.casefold() in self._released

    def hold(self, device: str, command: RunStep) -> str | None:
        """The visit's gate: a device does not refresh its policy before its computer account has moved."""
        if command.name != REFRESH_STEP or self.released(device):
            return None
        return "waiting for its batch's computer accounts to move to the cloud trust GPO's group"

    # ---- rollback -----------------------------------------------------------------------------------------

    def restore(self, devices: Sequence[str] | None = None) -> list[DomainChange]:
        """Put each computer (of ``devices``, else of the whole wave) back in the groups it was in before the
        wave's first change to it: journalled and audited; a second call finds nothing to do."""
        with self._lock:
            return self._restore(devices)

    def _restore(self, devices: Sequence[str] | None) -> list[DomainChange]:
        entries = self.store.directory_changes(self.wave)
        chosen = {d.casefold() for d in devices} if devices is not None else None
        before: dict[str, Wanted] = {}  # domain -> computer -> the memberships first found
        for entry in entries:
            if entry.purpose != MIGRATE:
                continue
            found = entry.intent.get("before")
            for name, roles in found.items() if isinstance(found, Mapping) else ():
                if chosen is not None and name.casefold() not in chosen:
                    continue
                per_domain = before.setdefault(entry.domain, {})
                if name not in per_domain and isinstance(roles, Mapping):
                    per_domain[name] = {str(r): bool(v) for r, v in roles.items()}
        out = []
        for domain, wanted in before.items():
            previous = [e for e in entries if e.purpose == ROLLBACK and e.domain.casefold() == domain.casefold()]
            out.append(
                self._apply(domain, ROLLBACK_BATCH, ROLLBACK, wanted, previous, [e for e in previous if e.in_doubt])
            )
        return out

    # ---- the journalled change ----------------------------------------------------------------------------

    def _apply(
        self,
        domain: str,
        batch: int,
        purpose: str,
        wanted: Wanted,
        previous: Sequence[DirectoryChangeRow],
        doubts: Sequence[DirectoryChangeRow],
    ) -> DomainChange:
        """One domain's journalled change: ``previous`` are this batch's earlier entries (attempts), ``doubts``
        every in-doubt entry of the wave for this domain and purpose, resolved first by the same read."""
        actor = self.credentials.username
        client = self._client(domain)
        result = DomainChange(domain, len(wanted))
        log = self.log.bind(domain=domain, batch=batch, purpose=purpose)
        try:
            with client:
                problems: list[str] = []
                doubted = [str(n) for e in doubts for n in _names(e.intent.get("wanted"))]
                groups, computers = self._read(client, list(dict.fromkeys([*wanted, *doubted])), problems)
                if problems:
                    raise InputError("the ad-group policy channel cannot run: " + "; ".join(problems))
                seen = {c.name: {role: c.is_in(group) for role, group in groups.items()} for c in computers.values()}
                for doubt in doubts:
                    self._resolve(doubt, seen, actor)
                    result.resolved += 1
                found = {name: seen[computers[name.casefold()].name] for name in wanted}
                todo = {n: w for n, w in wanted.items() if any(found[n].get(r) != m for r, m in w.items())}
                if not todo:
                    result.nothing_to_do = True
                    log.info("ad-group: every computer already as wanted", computers=len(wanted))
                    return result
                attempt = 1 + len(previous)
                label = f"batch {batch + 1}" if batch >= 0 else "rollback"
                intent = self.store.directory_intent(
                    self.wave,
                    batch=batch,
                    domain=domain,
                    purpose=purpose,
                    attempt=attempt,
                    key=f"{self.wave}/{purpose}/{batch}/{domain.casefold()}/{attempt}",
                    intent={
                        "groups": {role: {"name": g.name, "dn": g.dn} for role, g in groups.items()},
                        "computers": {n: computers[n.casefold()].dn for n in wanted},
                        "before": found,
                        "wanted": wanted,
                    },
                    audit=AuditEntry(
                        actor,
                        f"ad-group {purpose} intended: {label}, {domain}",
                        before=_memberships(found, groups),
                        after=_memberships(todo, groups),
                    ),
                )
                journal_point("intent")
                try:
                    for role, group in groups.items():
                        for member in (True, False):
                            subset = [computers[n.casefold()] for n, w in wanted.items() if w.get(role) is member]
                            if subset:
                                result.changes.append(set_membership(client, group, subset, member=member))
                except DirectoryUnreachable:
                    log.warning("ad-group: the DC was lost mid-change; the next run resolves it by re-reading")
                    raise
                except DirectoryError as err:
                    self.store.directory_outcome(
                        intent.id,
                        {"ok": False, "error": str(err), "changes": [c.as_json() for c in result.changes]},
                        False,
                        audit=AuditEntry(actor, f"ad-group {purpose} failed: {label}, {domain}", after=str(err)),
                    )
                    journal_point("outcome")
                    raise
                self.store.directory_outcome(
                    intent.id,
                    {"ok": True, "changes": [c.as_json() for c in result.changes]},
                    True,
                    audit=AuditEntry(
                        actor,
                        f"ad-group {purpose} done: {label}, {domain}",
                        after=_changed(result.changes),
                    ),
                )
                journal_point("outcome")
                log.info(
                    "ad-group: memberships changed",
                    computers=len(wanted),
                    changed={c.group.name: len(c.changed) for c in result.changes},
                    modifies=sum(c.modifies for c in result.changes),
                )
                return result
        finally:
            self.requests += client.requests

    def _resolve(self, doubt: DirectoryChangeRow, found: Mapping[str, Mapping[str, bool]], actor: str) -> None:
        """Settle an in-doubt change with what the fresh read shows: applied to all, some, or none of its
        computers (the modify is never sent again for this entry; what is still to do gets a new intent)."""
        wanted = doubt.intent.get("wanted")
        wanted = wanted if isinstance(wanted, Mapping) else {}
        holds = [
            name
            for name, roles in wanted.items()
            if isinstance(roles, Mapping) and all(found.get(name, {}).get(r) == m for r, m in roles.items())
        ]
        applied = "all" if len(holds) == len(wanted) else ("none" if not holds else "some")
        if doubt.purpose == MIGRATE:
            self._released.update(n.casefold() for n in holds)
        summary: dict[str, Any] = {"applied": applied, "as_wanted": sorted(holds), "found": dict(found)}
        self.store.directory_resolve(
            doubt.id,
            summary,
            audit=AuditEntry(
                actor, f"ad-group {doubt.purpose} resolved by re-reading: {doubt.domain}", after={"applied": applied}
            ),
        )
        journal_point("resolve")
        self.log.info("ad-group: in-doubt change resolved by re-reading the groups", entry=doubt.id, applied=applied)


def _names(wanted: object) -> list[str]:
    return [str(n) for n in wanted] if isinstance(wanted, Mapping) else []


def _changed(changes: Sequence[MembershipChange]) -> dict[str, Any]:
    """For the audit log: per group, the computers this run added or removed."""
    return {c.group.name: {"add" if c.member else "remove": sorted(c.changed)} for c in changes}


def _memberships(states: Mapping[str, Mapping[str, bool]], groups: Mapping[str, Group]) -> dict[str, Any]:
    """For the audit log: per group, the computers in it (among ``states``)."""
    return {
        group.name: sorted(name for name, roles in states.items() if roles.get(role)) for role, group in groups.items()
    }


def policy_channel(
    store: Store,
    wave: str,
    playbook: Playbook,
    inventory: Inventory,
    credentials: Credentials,
    *,
    knowledge: DirectoryKnowledge | None = None,
    overrides: Mapping[str, bool] | None = None,
    connection_factory: ConnectionFactory = open_ldap_connection,
) -> AdGroupChannel | None:
    """The wave's batch-level policy channel, or None when its playbook's channel acts per device only."""
    if playbook.policy.channel != "ad-group":
        return None
    return AdGroupChannel(
        playbook.policy,
        inventory,
        credentials,
        store=store,
        wave=wave,
        knowledge=knowledge,
        overrides=overrides,
        connection_factory=connection_factory,
    )
