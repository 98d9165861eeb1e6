"""The rows the store returns (frozen dataclasses) and the few values callers pass in."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from migrator.store.codec import JsonObject, JsonValue

Path = Literal["key", "cert", "cloud", "ineligible"]
JournalStatus = Literal["intent", "done", "failed", "resolved"]
StepStatus = Literal["running", "succeeded", "failed", "skipped"]
# Microsoft.Win32.RegistryValueKind names, as snapshot_policy.ps1 reports them and restore_policy.ps1 takes them.
RegType = Literal["String", "ExpandString", "DWord", "QWord", "MultiString", "Binary"]
# What can be said of a lease holder's process from here (see migrator.store.leases.liveness).
Liveness = Literal["alive", "dead", "other_host", "unchecked"]


@dataclass(frozen=True)
class WaveRow:
    id: int
    name: str
    change_ticket: str | None
    playbook_name: str
    playbook_hash: str
    settings: JsonObject
    state: str
    created_at: datetime
    updated_at: datetime
    audit_head: AuditHead | None = None  # the chain's head when the wave was created or last changed state


@dataclass(frozen=True)
class DeviceRow:
    id: int
    name: str
    wave: str
    state: str
    path: Path | None
    last_error: str | None
    version: int  # +1 on every state change: the optimistic-concurrency token
    lease_owner: str | None
    lease_expires_at: datetime | None
    updated_at: datetime
    context: JsonObject | None = None  # the state machine's data for the current state (schema v2)
    site: str | None = None  # the inventory's site (schema v5)
    released_at: datetime | None = None  # when the wave coordinator released its batch to the workers
    due_at: datetime | None = None  # when a worker should visit it next (None: not released, or never again)
    wave_state: str | None = None  # its wave's state, read in the same transaction as the row


@dataclass(frozen=True)
class WorkerRow:
    """A worker sharing the store (``migrator worker``, or ``migrator run`` on PostgreSQL) and its heartbeat.

    ``sites`` empty: it serves every device, whatever its site. ``stopped_at``: it ended cleanly."""

    owner: str
    host: str
    pid: int
    sites: tuple[str, ...]
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None

    def serves(self, site: str | None) -> bool:
        return not self.sites or site in self.sites


@dataclass(frozen=True)
class Claim:
    """A device a worker claimed (its lease is the worker's until it hands it back)."""

    device: str
    wave: str


@dataclass(frozen=True, slots=True)
class DeviceMark:
    """Where a device stands for the wave coordinator: the few columns of its row that open batches, keep the
    failure budget and end a wave (:meth:`Store.device_marks`), without the row's context, which costs most of a
    row's decoding and which the coordinator never reads."""

    name: str
    state: str
    released_at: datetime | None
    due_at: datetime | None
    lease_expires_at: datetime | None


@dataclass(frozen=True)
class LeaseRow:
    """An unexpired lease: which worker holds a device, until when, and whether its process still runs.

    ``liveness``: ``alive`` (its process runs on this host), ``dead`` (it ran on this host and is gone: the next
    :meth:`Store.acquire` takes the lease over at once), ``other_host`` (its process cannot be seen from here:
    the lease is free when it expires), ``unchecked`` (a plain-string owner without host and pid: free when it
    expires). ``host`` and ``pid`` are None for a plain-string owner."""

    device: str
    wave: str
    owner: str
    host: str | None
    pid: int | None
    expires_at: datetime
    liveness: Liveness


@dataclass(frozen=True)
class UserRow:
    id: int
    device: str
    name: str
    sid: str | None
    state: str
    version: int
    container_trust: str | None  # at preflight: "key", "cert", "cloud" or None (no Hello container)
    key_id: str | None  # NgcKeyId at preflight
    last_error: str | None
    updated_at: datetime
    context: JsonObject | None = None  # the user machine's data for the current state (schema v2)


@dataclass(frozen=True)
class TransitionRow:
    id: int
    device: str
    subject: Literal["device", "user"]
    user: str | None
    from_state: str
    to_state: str
    event: str
    at: datetime
    wave: str | None
    attempt: int


@dataclass(frozen=True)
class StepRow:
    id: int
    device: str
    user: str | None
    step: str
    attempt: int
    status: StepStatus
    started_at: datetime
    finished_at: datetime | None
    error: str | None


@dataclass(frozen=True)
class JournalEntry:
    id: int
    device: str
    user: str | None
    step: str
    attempt: int
    key: str
    intent: JsonObject
    intent_at: datetime
    outcome: JsonValue
    outcome_at: datetime | None
    status: JournalStatus

    @property
    def in_doubt(self) -> bool:
        """The intent was committed but no outcome: the device may or may not have acted."""
        return self.status == "intent"


@dataclass(frozen=True)
class FactsSnapshot:
    id: int
    device: str
    taken_at: datetime
    facts: JsonObject


@dataclass(frozen=True)
class PolicyValue:
    """One registry value as it was before migrator touched it: what rollback restores.

    ``existed=False`` means the value was absent (rollback deletes it); then ``type`` and ``data`` are None.
    ``type`` is a RegistryValueKind name (``DWord``...); the store also takes the REG_* spelling (``REG_DWORD``)
    and keeps the kind name. Data as ConvertTo-Json gives it: DWord/QWord as int, String/ExpandString as str,
    MultiString as a list of str, Binary as a list of byte values."""

    key: str  # e.g. HKLM\SOFTWARE\Policies\Microsoft\PassportForWork
    name: str  # value name; "" is the key's (Default) value
    existed: bool
    type: RegType | str | None = None
    data: int | str | list[str] | list[int] | None = None
    taken_at: datetime | None = None  # set by the store


@dataclass(frozen=True)
class AuditEntry:
    """What a caller appends to the audit log; the store adds id, time and hashes."""

    actor: str
    action: str
    device: str | None = None
    change_ticket: str | None = None
    before: JsonValue = None
    after: JsonValue = None


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: datetime
    actor: str
    action: str
    device: str | None
    change_ticket: str | None
    before: JsonValue
    after: JsonValue
    prev_hash: str
    hash: str


_ANCHOR = re.compile(r"\s*audit-head:(\d{1,12}):([0-9a-f]{64})\s*")
GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditHead:
    """Where the audit chain ends: how many entries it holds and the last one's hash (64 zeros when empty).

    :attr:`anchor` is the one line to paste into the change ticket; :meth:`parse` reads it back."""

    entries: int
    hash: str

    @property
    def anchor(self) -> str:
        return f"audit-head:{self.entries}:{self.hash}"

    @classmethod
    def parse(cls, value: str) -> AuditHead:
        """An anchor line (``audit-head:<entries>:<sha256 hex>``); :class:`ValueError` saying the format."""
        match = _ANCHOR.fullmatch(value)
        if match is None:
            raise ValueError(
                "an audit anchor reads audit-head:<entries>:<64 lowercase hex digits> (as `migrator audit anchor` "
                "prints it)"
            )
        return cls(int(match.group(1)), match.group(2))

    @classmethod
    def find_all(cls, text: str) -> list[AuditHead]:
        """Every anchor line written in a text (a report, a ticket, a log)."""
        return [cls(int(m.group(1)), m.group(2)) for m in _ANCHOR_IN_TEXT.finditer(text)]


_ANCHOR_IN_TEXT = re.compile(r"audit-head:(\d{1,12}):([0-9a-f]{64})")

AuditProblemKind = Literal[
    "hash mismatch",  # a row's content does not hash to its stored hash: the row was edited
    "broken link",  # a row does not link to the row before it: rows were deleted, inserted or reordered
    "id sequence",  # ids are not 1, 2, 3...: rows were deleted, inserted or reordered
    "head",  # the store's recorded head (audit_head) is not where the chain ends
    "wave head",  # a wave's recorded head is not on the chain
    "anchor",  # a head published outside the store (ticket, report, log) is not on the chain
    "damaged",  # the database itself is damaged: nothing it says can be trusted
]


@dataclass(frozen=True)
class AuditProblem:
    entry_id: int
    kind: AuditProblemKind
    detail: str


@dataclass(frozen=True)
class AuditReport:
    ok: bool
    entries: int
    problems: list[AuditProblem] = field(default_factory=list)
    head_hash: str = GENESIS  # the last entry's hash: publish it elsewhere to anchor the chain
    heads_checked: int = 0  # heads recorded outside the chain that were compared with it
    recorded_head: AuditHead | None = None  # what the store's audit_head row says

    @property
    def head(self) -> AuditHead:
        """The head of the chain as read (its last entry's id and hash)."""
        return AuditHead(self.entries, self.head_hash)


@dataclass(frozen=True)
class Timeline:
    """Everything the store knows happened to one device, for reports."""

    device: DeviceRow
    transitions: list[TransitionRow]
    steps: list[StepRow]
    journal: list[JournalEntry]

    def events(self) -> list[tuple[datetime, str, TransitionRow | StepRow | JournalEntry]]:
        """Transitions, steps and journal entries merged in time order (ties keep that kind order)."""
        merged: list[tuple[datetime, int, int, str, TransitionRow | StepRow | JournalEntry]] = []
        merged += [(t.at, 0, t.id, "transition", t) for t in self.transitions]
        merged += [(s.started_at, 1, s.id, "step", s) for s in self.steps]
        merged += [(j.intent_at, 2, j.id, "journal", j) for j in self.journal]
        merged.sort(key=lambda item: (item[0], item[1], item[2]))
        return [(at, kind, row) for at, _, _, kind, row in merged]


@dataclass(frozen=True)
class RollbackRecord:
    """What rolling one device back needs: its policy values before migration and its users' containers."""

    device: str
    wave: str
    state: str
    path: Path | None
    policy: list[PolicyValue]
    users: list[UserRow]


@dataclass(frozen=True)
class VisitRecord:
    """What a visit rebuilds a device's machine from, read in one transaction (one moment of the store): the
    device's row, its users, its latest facts, its journal (oldest first) and its policy snapshot."""

    device: DeviceRow
    users: list[UserRow]
    facts: FactsSnapshot | None
    journal: list[JournalEntry]
    policy: list[PolicyValue]
