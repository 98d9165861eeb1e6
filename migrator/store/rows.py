"""The rows the store returns (frozen dataclasses) and the few values callers pass in."""

from __future__ import annotations

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


@dataclass(frozen=True)
class AuditProblem:
    entry_id: int
    kind: Literal["hash mismatch", "broken link", "id sequence"]
    detail: str


@dataclass(frozen=True)
class AuditReport:
    ok: bool
    entries: int
    problems: list[AuditProblem] = field(default_factory=list)
    head_hash: str = "0" * 64  # the last entry's hash: publish it elsewhere to anchor the chain


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
