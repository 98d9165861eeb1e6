"""Policy channels that act on the control plane per batch: ``ad-group`` (GPO security filtering by AD group) and
``intune-group`` (Intune profiles assigned to Entra groups).

Both are a :class:`GroupChannel` (the hold, the journal, in-doubt resolution, rollback) with a :class:`GroupWriter`
per target: :class:`AdGroupChannel` writes one AD domain's groups over LDAP (below); :class:`IntuneGroupChannel`
writes the tenant's groups through Microsoft Graph (:mod:`migrator.cloud.groups`: ``$ref`` adds and removes, then
``syncDevice`` per device before the outcome is journalled), all of a batch's devices being one target,
``entra:<tenant id>``. What follows describes ``ad-group``; ``intune-group`` is the same with Entra device objects
for computer accounts, a group's members for ``memberOf``, and a 400/404 from Graph for AD's "already so" answers.

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

Directory requests are O(domains × batches), never O(devices). At preflight, devices in a domain the directory (or
the admin's ``--entra-kerberos``) says has no Entra Kerberos object are left out (their machine parks them
ineligible); once a device has run its preflight, its machine decides. :meth:`AdGroupChannel.preflight`,
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
from types import TracebackType
from typing import TYPE_CHECKING, Any

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
from migrator.errors import (
    CloudError,
    CloudUnavailable,
    DirectoryError,
    DirectoryUnreachable,
    InputError,
    MigratorError,
)
from migrator.inventory import Inventory
from migrator.logs import get_logger
from migrator.machine.commands import RunStep
from migrator.playbook import Playbook, PolicySettings, is_group_dn
from migrator.remote.credentials import Credentials
from migrator.store import AuditEntry, Store
from migrator.store.directory import DirectoryChangeRow

if TYPE_CHECKING:
    from migrator.cloud.client import GraphClient

CLOUD, CERT = "cloud", "cert"
MIGRATE, ROLLBACK = "migrate", "rollback"
ROLLBACK_BATCH = -1
POLICY_STATE = "policy"  # the machine's state where the policy step runs (migrator.machine.table)
REFRESH_STEP = "refresh_policy"  # the batch number rollback entries are journalled under (they span the wave)
Wanted = dict[str, dict[str, bool]]  # computer name -> role -> member or not


@dataclass
class DomainChange:
    """What one target's change for a batch (or a rollback) did: an AD domain (ad-group) or the tenant
    (intune-group, ``entra:<tenant id>``)."""

    domain: str
    computers: int
    changes: list[MembershipChange] = field(default_factory=list)
    resolved: int = 0  # in-doubt entries settled by re-reading
    nothing_to_do: bool = False


Roles = Mapping[str, tuple[str, bool]]  # role -> (group as the playbook names it, whether the devices go in)


class GroupWriter:
    """One target's connection for a :class:`GroupChannel`: reads the groups and the devices' memberships, changes
    them, and tells the devices to fetch their policy after a change. A context manager (the connection)."""

    target: str  # the journal's ``domain`` column

    @property
    def requests(self) -> int:
        raise NotImplementedError

    def __enter__(self) -> GroupWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        return None

    def read(
        self, roles: Roles, names: Sequence[str], problems: list[str]
    ) -> tuple[dict[str, Group], dict[str, ComputerAccount]]:
        """The groups by role and the devices (by case-folded name) with their memberships; what is missing is
        added to ``problems``."""
        raise NotImplementedError

    def set_membership(self, group: Group, members: Sequence[ComputerAccount], *, member: bool) -> MembershipChange:
        raise NotImplementedError

    def settle(self, names: Sequence[str]) -> None:
        """After the memberships of ``names`` are as wanted (changed, or found so): nothing for Group Policy (the
        devices' own refresh applies it); Intune: ``syncDevice``."""
        return None


class _LdapWriter(GroupWriter):
    """ad-group: one domain's directory over one LDAP connection (:mod:`migrator.directory.groups`)."""

    def __init__(self, client: DirectoryClient) -> None:
        self.client = client
        self.target = client.domain

    @property
    def requests(self) -> int:
        return self.client.requests

    def __enter__(self) -> _LdapWriter:
        self.client.__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.client.__exit__(kind, error, trace)

    def read(
        self, roles: Roles, names: Sequence[str], problems: list[str]
    ) -> tuple[dict[str, Group], dict[str, ComputerAccount]]:
        groups: dict[str, Group] = {}
        for role, (group_name, _member) in roles.items():
            group = find_group(self.client, group_name, is_dn=is_group_dn(group_name))
            if group is None:
                problems.append(f"group {group_name!r} does not exist in the domain {self.client.domain}")
            else:
                groups[role] = group
        computers = find_computers(self.client, names)
        missing = [n for n in names if n.casefold() not in computers]
        if missing:
            problems.append(f"no computer account in the domain {self.client.domain} for {_shown(missing)}")
        return groups, computers

    def set_membership(self, group: Group, members: Sequence[ComputerAccount], *, member: bool) -> MembershipChange:
        return set_membership(self.client, group, members, member=member)


def _shown(names: Sequence[str]) -> str:
    return ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")


class GroupChannel:
    """A policy channel that moves each batch's devices between the groups two policies are assigned to (see the
    module docstring): the hold, the journal, in-doubt resolution and rollback; a subclass says which targets a
    batch's devices belong to and opens a :class:`GroupWriter` on one. Without a store it can only
    :meth:`preflight` (what ``migrator plan`` does)."""

    kind = ""  # the playbook's channel name
    lost: tuple[type[MigratorError], ...] = ()  # the change may or may not have been applied: left in doubt
    failed: tuple[type[MigratorError], ...] = ()  # refused: journalled as failed
    waiting = ""  # why a held device waits

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
        self.requests = 0  # requests sent to the control plane, every target and batch
        self.log = get_logger("engine.channels", wave=wave, channel=self.kind)
        self._released: set[str] = set()  # devices moved (case-folded names)
        self._lock = threading.Lock()
        self._released_from_journal = False

    @property
    def store(self) -> Store:
        if self._store is None:
            raise TypeError(f"this {self.kind} channel was made for a preflight only: it has no store to journal in")
        return self._store

    def close(self) -> None:
        """Release what the channel holds open (the wave's end)."""
        return None

    # ---- which devices, which targets ---------------------------------------------------------------------

    def _roles(self) -> dict[str, tuple[str, bool]]:
        """role -> (group name as the playbook names it, whether the batch's computers go in)."""
        assert self.policy.cloud_trust_group is not None  # the playbook's validator requires it for the channel
        roles = {CLOUD: (self.policy.cloud_trust_group, True)}
        if self.policy.cert_trust_group is not None:
            roles[CERT] = (self.policy.cert_trust_group, False)
        return roles

    def _without_entra_kerberos(self, domain: str | None) -> bool:
        """Whether the directory (or the admin's ``--entra-kerberos``, which wins) says ``domain`` has no Entra
        Kerberos object: its devices will be parked ineligible and their policy must not change."""
        return bool(domain) and self.knowledge.path_settings(self.overrides).entra_kerberos_for(str(domain)) is False

    def _targets(
        self, devices: Sequence[str], problems: list[str] | None = None, *, eligible_only: bool = False
    ) -> dict[str, list[str]]:
        """The devices to move, by target; a device that cannot be moved is a problem (listed in ``problems``,
        else refused at once). ``eligible_only`` (preflight, before any device is read) leaves out a device whose
        domain has no Entra Kerberos object: it will be parked ineligible, so its target needs no groups. Once
        preflight has run, the machine decided (a device that reached its policy step moves)."""
        raise NotImplementedError

    def _writer(self, target: str) -> GroupWriter:
        raise NotImplementedError

    # ---- preflight ----------------------------------------------------------------------------------------

    def preflight(self, devices: Sequence[str]) -> None:
        """Refuse (:class:`InputError`, every problem named) a wave the channel cannot carry out: a device it
        cannot move, a group or device object that does not exist. Reads only; raises the control plane's error
        (:class:`DirectoryError`, :class:`CloudError`) when it cannot be read."""
        problems: list[str] = []
        for target, names in self._targets(devices, problems, eligible_only=True).items():
            writer = self._writer(target)
            try:
                with writer:
                    writer.read(self._roles(), names, problems)
            finally:
                self.requests += writer.requests
        if problems:
            raise InputError(f"the {self.kind} policy channel cannot run: " + "; ".join(problems))

    # ---- the batch hook -----------------------------------------------------------------------------------

    def start_batch(self, batch: int, devices: Sequence[str]) -> list[DomainChange]:
        """Move the devices of ``devices`` (of batch number ``batch``) that have reached their policy step
        (preflight found them on the playbook's key or certificate path; :meth:`hold` keeps them there) and have
        not moved yet: into the cloud trust group, out of the certificate trust group. The hook every wave driver
        calls once a batch's devices are preflighted (module docstring)."""
        # One change at a time: an intent another thread of this run has in flight is not in doubt (a wave has one
        # coordinator; across processes the store's idempotency keys keep two from journalling the same change).
        with self._lock:
            return self._start_batch(batch, devices)

    def _start_batch(self, batch: int, devices: Sequence[str]) -> list[DomainChange]:
        self.reread_journal()  # another process (a coordinator before this one) may have moved some already
        candidates = [d for d in devices if not self.released(d)]
        if not candidates:
            return []  # a device already moved (the runner asks again for each device held at its policy step)
        if len(candidates) < 50:
            states = {d: self.store.get_device(d).state for d in candidates}
        else:
            rows = {r.name.casefold(): r.state for r in self.store.device_marks(self.wave)}
            states = {d: rows.get(d.casefold(), "") for d in candidates}
        ready = [d for d in candidates if states[d] == POLICY_STATE]
        if not ready:
            return []
        done = []
        entries = self.store.directory_changes(self.wave)
        for target, names in self._targets(ready).items():
            mine = [e for e in entries if e.purpose == MIGRATE and e.domain.casefold() == target.casefold()]
            wanted: Wanted = {name: {role: member for role, (_g, member) in self._roles().items()} for name in names}
            previous = [e for e in mine if e.batch == batch]
            done.append(self._apply(target, batch, MIGRATE, wanted, previous, [e for e in mine if e.in_doubt]))
            self._released.update(n.casefold() for n in names)
        return done

    def released(self, device: str) -> bool:
        """Whether ``device`` has been moved (by this process, or as the journal recorded when last read)."""
        if not self._released_from_journal:
            self.reread_journal()
        return device.casefold() in self._released

    def reread_journal(self) -> None:
        """Learn from the journal which devices have been moved, by any process: with several workers the wave
        coordinator moves a batch and the workers' visits pass their hold once the journal says so. Read at each
        :meth:`start_batch`, by the coordinator at each tick while a device sits at its policy step, and by
        :meth:`hold` before it would hold a device."""
        moved: set[str] = set()
        for entry in self.store.directory_changes(self.wave):
            if entry.purpose != MIGRATE:
                continue
            outcome = entry.outcome if isinstance(entry.outcome, Mapping) else {}
            wanted = entry.intent.get("wanted")
            if entry.status == "done" and isinstance(wanted, Mapping):
                moved.update(str(n).casefold() for n in wanted)
            elif entry.status == "resolved" and isinstance(held := outcome.get("as_wanted"), list):
                moved.update(str(n).casefold() for n in held)
        self._released.update(moved)  # one update: visits in other threads read the set meanwhile
        self._released_from_journal = True

    def hold(self, device: str, command: RunStep) -> str | None:
        """The visit's gate: a device does not refresh its policy before it has moved (the journal is read again
        before holding: the move may have been another process's)."""
        if command.name != REFRESH_STEP or self.released(device):
            return None
        self.reread_journal()
        if self.released(device):
            return None
        return self.waiting

    # ---- rollback -----------------------------------------------------------------------------------------

    def restore(self, devices: Sequence[str] | None = None) -> list[DomainChange]:
        """Put each device (of ``devices``, else of the whole wave) back in the groups it was in before the
        wave's first change to it: journalled and audited; a second call finds nothing to do."""
        with self._lock:
            return self._restore(devices)

    def _restore(self, devices: Sequence[str] | None) -> list[DomainChange]:
        entries = self.store.directory_changes(self.wave)
        chosen = {d.casefold() for d in devices} if devices is not None else None
        before: dict[str, Wanted] = {}  # target -> device -> the memberships first found
        for entry in entries:
            if entry.purpose != MIGRATE:
                continue
            found = entry.intent.get("before")
            for name, roles in found.items() if isinstance(found, Mapping) else ():
                if chosen is not None and name.casefold() not in chosen:
                    continue
                per_target = before.setdefault(entry.domain, {})
                if name not in per_target and isinstance(roles, Mapping):
                    per_target[name] = {str(r): bool(v) for r, v in roles.items()}
        out = []
        for target, wanted in before.items():
            previous = [e for e in entries if e.purpose == ROLLBACK and e.domain.casefold() == target.casefold()]
            out.append(
                self._apply(target, ROLLBACK_BATCH, ROLLBACK, wanted, previous, [e for e in previous if e.in_doubt])
            )
        return out

    # ---- the journalled change ----------------------------------------------------------------------------

    def _apply(
        self,
        target: str,
        batch: int,
        purpose: str,
        wanted: Wanted,
        previous: Sequence[DirectoryChangeRow],
        doubts: Sequence[DirectoryChangeRow],
    ) -> DomainChange:
        """One target's journalled change: ``previous`` are this batch's earlier entries (attempts), ``doubts``
        every in-doubt entry of the wave for this target and purpose, resolved first by the same read."""
        actor = self.credentials.username
        writer = self._writer(target)
        result = DomainChange(target, len(wanted))
        log = self.log.bind(domain=target, batch=batch, purpose=purpose)
        kind = self.kind
        try:
            with writer:
                problems: list[str] = []
                doubted = [str(n) for e in doubts for n in _names(e.intent.get("wanted"))]
                groups, computers = writer.read(self._roles(), list(dict.fromkeys([*wanted, *doubted])), problems)
                if problems:
                    raise InputError(f"the {kind} policy channel cannot run: " + "; ".join(problems))
                seen = {c.name: {role: c.is_in(group) for role, group in groups.items()} for c in computers.values()}
                for doubt in doubts:
                    self._resolve(doubt, seen, actor)
                    result.resolved += 1
                found = {name: seen[computers[name.casefold()].name] for name in wanted}
                todo = {n: w for n, w in wanted.items() if any(found[n].get(r) != m for r, m in w.items())}
                if not todo:
                    result.nothing_to_do = True
                    writer.settle(list(wanted))  # e.g. moved by a run that crashed before telling the devices
                    log.info(f"{kind}: every device already as wanted", computers=len(wanted))
                    return result
                attempt = 1 + len(previous)
                label = f"batch {batch + 1}" if batch >= 0 else "rollback"
                intent = self.store.directory_intent(
                    self.wave,
                    batch=batch,
                    domain=target,
                    purpose=purpose,
                    attempt=attempt,
                    key=f"{self.wave}/{purpose}/{batch}/{target.casefold()}/{attempt}",
                    intent={
                        "groups": {role: {"name": g.name, "dn": g.dn} for role, g in groups.items()},
                        "computers": {n: computers[n.casefold()].dn for n in wanted},
                        "before": found,
                        "wanted": wanted,
                    },
                    audit=AuditEntry(
                        actor,
                        f"{kind} {purpose} intended: {label}, {target}",
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
                                result.changes.append(writer.set_membership(group, subset, member=member))
                    # Before the outcome: a crash in between leaves the intent in doubt, and its resolution
                    # settles the devices again (telling a device to fetch its policy twice is harmless).
                    writer.settle(list(wanted))
                except self.lost:
                    log.warning(f"{kind}: the control plane was lost mid-change; the next run re-reads the groups")
                    raise
                except self.failed as err:
                    self.store.directory_outcome(
                        intent.id,
                        {"ok": False, "error": str(err), "changes": [c.as_json() for c in result.changes]},
                        False,
                        audit=AuditEntry(actor, f"{kind} {purpose} failed: {label}, {target}", after=str(err)),
                    )
                    journal_point("outcome")
                    raise
                self.store.directory_outcome(
                    intent.id,
                    {"ok": True, "changes": [c.as_json() for c in result.changes]},
                    True,
                    audit=AuditEntry(
                        actor,
                        f"{kind} {purpose} done: {label}, {target}",
                        after=_changed(result.changes),
                    ),
                )
                journal_point("outcome")
                log.info(
                    f"{kind}: memberships changed",
                    computers=len(wanted),
                    changed={c.group.name: len(c.changed) for c in result.changes},
                    modifies=sum(c.modifies for c in result.changes),
                )
                return result
        finally:
            self.requests += writer.requests

    def _resolve(self, doubt: DirectoryChangeRow, found: Mapping[str, Mapping[str, bool]], actor: str) -> None:
        """Settle an in-doubt change with what the fresh read shows: applied to all, some, or none of its
        devices (the change is never sent again for this entry; what is still to do gets a new intent)."""
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
                actor,
                f"{self.kind} {doubt.purpose} resolved by re-reading: {doubt.domain}",
                after={"applied": applied},
            ),
        )
        journal_point("resolve")
        self.log.info(
            f"{self.kind}: in-doubt change resolved by re-reading the groups", entry=doubt.id, applied=applied
        )


class AdGroupChannel(GroupChannel):
    """The ``ad-group`` policy channel of one wave: computer accounts between GPO filter groups, per domain."""

    kind = "ad-group"
    lost = (DirectoryUnreachable,)
    failed = (DirectoryError,)
    waiting = "waiting for its batch's computer accounts to move to the cloud trust GPO's group"

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
        super().__init__(
            policy,
            inventory,
            credentials,
            store=store,
            wave=wave,
            knowledge=knowledge,
            overrides=overrides,
            secrets_file=secrets_file,
        )
        self.connection_factory = connection_factory

    def _targets(
        self, devices: Sequence[str], problems: list[str] | None = None, *, eligible_only: bool = False
    ) -> dict[str, list[str]]:
        """The devices to move, by domain (see :meth:`GroupChannel._targets`); one without a domain is a
        problem."""
        out: dict[str, list[str]] = {}
        no_domain: list[str] = []
        for name in devices:
            entry = self.inventory.device(name)
            domain = entry.domain if entry is not None else None
            if entry is None or not domain or "." not in domain:
                no_domain.append(name)
                continue
            if eligible_only and self._without_entra_kerberos(domain):
                continue
            out.setdefault(domain, []).append(entry.name)
        if no_domain:
            problem = (
                f"the inventory names no AD domain (DNS name) for {_shown(no_domain)}: the ad-group channel moves "
                "computer accounts, and an Entra joined device has none (migrate it in a wave with the local "
                "channel)"
            )
            if problems is None:
                raise InputError(problem)
            problems.append(problem)
        return out

    def _writer(self, target: str) -> GroupWriter:
        resolved = resolve_target(self.inventory, target)
        bind_as = directory_credentials(resolved, self.credentials, self.secrets_file)
        return _LdapWriter(DirectoryClient(resolved, bind_as, connection_factory=self.connection_factory))


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


class IntuneGroupChannel(GroupChannel):
    """The ``intune-group`` policy channel of one wave: Entra device objects between the groups the Intune
    Windows Hello for Business profiles are assigned to, then ``syncDevice`` (:mod:`migrator.cloud.groups`). The
    whole batch is one target, the tenant (``entra:<tenant id>`` in the journal)."""

    kind = "intune-group"
    lost = (CloudUnavailable,)
    failed = (CloudError,)
    waiting = "waiting for its batch's Entra device objects to move to the cloud trust profile's group"

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
        graph: GraphClient | None = None,
    ) -> None:
        super().__init__(
            policy,
            inventory,
            credentials,
            store=store,
            wave=wave,
            knowledge=knowledge,
            overrides=overrides,
            secrets_file=secrets_file,
        )
        self._graph = graph
        self._own_graph = graph is None
        self._devices: dict[str, Any] = {}  # name -> EntraDevice, read once for the wave

    @property
    def graph(self) -> GraphClient:
        if self._graph is None:
            from migrator.cloud.settings import open_graph  # noqa: PLC0415 - msal/httpx only for Graph waves

            self._graph = open_graph(self.inventory, self.secrets_file, "the playbook's policy channel is intune-group")
        return self._graph

    def close(self) -> None:
        if self._own_graph and self._graph is not None:
            self._graph.close()
            self._graph = None

    def start_batch(self, batch: int, devices: Sequence[str]) -> list[DomainChange]:
        """:meth:`GroupChannel.start_batch`, its Graph requests recorded (a ``graph-requests`` audit entry split
        evenly over the devices it moved) for the report's requests per device, whichever driver calls it."""
        from migrator.cloud.knowledge import record_spend  # noqa: PLC0415 - msal/httpx only for Graph waves

        before = {d for d in devices if self.released(d)}
        with self.graph.counting() as counted:
            changes = super().start_batch(batch, devices)
        moved = [d for d in devices if d not in before and self.released(d)]
        ticket = self.store.get_wave(self.wave).change_ticket
        actor = self.credentials.username
        record_spend(self.store, self.kind, counted.requests, moved or list(devices), actor=actor, change_ticket=ticket)
        return changes

    def _targets(
        self, devices: Sequence[str], problems: list[str] | None = None, *, eligible_only: bool = False
    ) -> dict[str, list[str]]:
        """Every device is the tenant's (see :meth:`GroupChannel._targets`)."""
        names = []
        for name in devices:
            entry = self.inventory.device(name)
            if eligible_only and entry is not None and self._without_entra_kerberos(entry.domain):
                continue
            names.append(entry.name if entry is not None else name)
        return {f"entra:{self.graph.tenant}": names} if names else {}

    def _writer(self, target: str) -> GroupWriter:
        from migrator.cloud.groups import GraphGroupWriter  # noqa: PLC0415 - it imports this module

        return GraphGroupWriter(self.graph, self._devices)


def policy_channel(
    store: Store,
    wave: str,
    playbook: Playbook,
    inventory: Inventory,
    credentials: Credentials,
    *,
    knowledge: DirectoryKnowledge | None = None,
    overrides: Mapping[str, bool] | None = None,
    secrets_file: Path | None = None,
    connection_factory: ConnectionFactory = open_ldap_connection,
    graph: GraphClient | None = None,
) -> GroupChannel | None:
    """The wave's batch-level policy channel, or None when its playbook's channel acts per device only."""
    if playbook.policy.channel == "intune-group":
        return IntuneGroupChannel(
            playbook.policy,
            inventory,
            credentials,
            store=store,
            wave=wave,
            knowledge=knowledge,
            overrides=overrides,
            secrets_file=secrets_file,
            graph=graph,
        )
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
        secrets_file=secrets_file,
        connection_factory=connection_factory,
    )


def preflight_channel(
    playbook: Playbook,
    inventory: Inventory,
    credentials: Credentials,
    devices: Sequence[str],
    *,
    knowledge: DirectoryKnowledge | None = None,
    overrides: Mapping[str, bool] | None = None,
    secrets_file: Path | None = None,
) -> None:
    """``migrator plan``: the playbook's group channel (if any) refuses what it could not carry out; reads only."""
    kinds: dict[str, type[GroupChannel]] = {"ad-group": AdGroupChannel, "intune-group": IntuneGroupChannel}
    kind = kinds.get(playbook.policy.channel)
    if kind is None:
        return
    channel = kind(
        playbook.policy, inventory, credentials, knowledge=knowledge, overrides=overrides, secrets_file=secrets_file
    )
    try:
        channel.preflight(devices)
    finally:
        channel.close()
