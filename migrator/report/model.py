"""What reports show, read from the store once: the status view (cheap: ``status`` and ``--watch``) and the full
report (timelines, failures, rollback, deleted containers, audit, diagram) that HTML, CSV and JSON render.

Theory of operation
-------------------
:func:`collect_status` reads the devices and their users in two queries (the devices, then the rollback records,
which carry every user row of the scope), whatever the fleet size, so ``status --watch`` stays light. Counts
are computed from the device rows read, so the per-state counts always add up to the devices listed.

:func:`collect_report` adds, per device, the store's timeline (transitions, step attempts, journal), the audit
log (read once) and, only for devices where a Hello container was deleted, the latest facts snapshot. Nothing
here writes to the store.

Where a deleted container is recognised (per user): a journal entry of that user whose outcome holds
``"deleted": true`` anywhere (the guarded delete and the at-logon task both report a ``DeleteOutcome``), or a
``done`` entry of a delete step (``delete_container`` / ``delete_hello_container``) without a ``deleted`` flag;
a succeeded step attempt of a delete step; a user transition into a state whose name says ``deleted``.

Where passkeys in a deleted container are recognised: any key whose name contains ``passkey`` (``has_passkeys``,
``had_passkeys``, ``passkeys``, ``passkey_count``) with a true value or a positive count, or a warning text
(a key containing ``warn``) that mentions passkeys, as the machine records on Windows 11 before the delete; in
that user's journal entries (intent and outcome), in audit entries of the device that name the user (in
before/after, or the engine's ``user <name>: <trigger>`` action) or name no user at all (a device-wide warning),
in the machine's stored state data of the user, or in an object of the device's latest facts that names the
user. Found nowhere: ``passkeys`` is None (not recorded).

Approvals are audit entries whose action contains ``approv`` and which name the wave (any value equal to its
name) or carry its change ticket. Deleting a local Hello container does not remove the key registered in
Microsoft Entra ID (windows-facts §Container deletion: stale Hello methods stay until removed), which is why
every deleted container is listed with the NgcKeyId recorded at preflight.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from migrator.playbook import Playbook, builtin_path, load_playbook
from migrator.report.diagram import Diagram, build_diagram
from migrator.report.states import (
    DELETE_STEPS,
    FINAL_STATES,
    RESTORE_STEPS,
    ROLLED_BACK,
    SUCCESS_STATES,
    AttentionKind,
    attention,
    is_rollback_state,
    ordered_states,
)
from migrator.store import (
    AuditRecord,
    AuditReport,
    DeviceRow,
    JournalEntry,
    JsonValue,
    PolicyValue,
    RollbackRecord,
    StepRow,
    Store,
    Timeline,
    TransitionRow,
    UserRow,
    WaveRow,
    content_hash,
    registry_key_fold,
    utc_now,
)
from migrator.yamlsource import InputFileError

Clock = Callable[[], datetime]
_DETAIL_LIMIT = 300  # characters of a journal payload shown in a timeline row
_ATTENTION_ORDER: dict[AttentionKind, int] = {"error": 0, "failed": 1, "stalled": 2, "unreachable": 3, "waiting": 4}


def iso(moment: datetime | None) -> str | None:
    """A UTC time as ISO 8601 with a ``Z`` (seconds precision), or None."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def compact(value: JsonValue, limit: int = _DETAIL_LIMIT) -> str:
    """A JSON value on one line, cut to ``limit`` characters."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ------------------------------------------------------------------------------------------- status


@dataclass(frozen=True)
class DeviceStatus:
    """A device row and its users' rows, as read together."""

    device: DeviceRow
    users: tuple[UserRow, ...]

    @property
    def name(self) -> str:
        return self.device.name

    @property
    def attention(self) -> AttentionKind | None:
        return attention(self.device.state)

    @property
    def since(self) -> datetime:
        """When the device entered its current state (the store stamps ``updated_at`` on every transition)."""
        return self.device.updated_at

    @property
    def last_change(self) -> datetime:
        """The latest change to the device or any of its users."""
        return max([self.device.updated_at, *(u.updated_at for u in self.users)])

    @property
    def reason(self) -> str:
        """Why the device is where it is, for people: its last error, else what a waiting state waits for."""
        d = self.device
        if d.last_error:
            return d.last_error
        if d.state == "waiting_for_dc":
            return "waiting for line of sight to a domain controller (the first sign-in needs one)"
        if attention(d.state) == "waiting":
            waiting = [u.name for u in self.users if u.state not in FINAL_STATES and u.state not in SUCCESS_STATES]
            return f"waiting for {', '.join(waiting)}" if waiting else f"waiting ({d.state})"
        return ""

    @property
    def users_migrated(self) -> int:
        return sum(1 for u in self.users if u.state in SUCCESS_STATES)

    def as_json(self) -> dict[str, Any]:
        d = self.device
        return {
            "name": d.name,
            "state": d.state,
            "path": d.path,
            "users": [{"name": u.name, "state": u.state} for u in self.users],
            "last_error": d.last_error,
            "wave": d.wave,
            "since": iso(self.since),
            "attention": self.attention,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class WaveStatus:
    wave: WaveRow
    counts: dict[str, int]

    @property
    def devices(self) -> int:
        return sum(self.counts.values())

    def as_json(self) -> dict[str, Any]:
        w = self.wave
        return {
            "name": w.name,
            "change_ticket": w.change_ticket,
            "state": w.state,
            "playbook": w.playbook_name,
            "playbook_hash": w.playbook_hash,
            "devices": self.devices,
            "counts": self.counts,
            "created_at": iso(w.created_at),
            "updated_at": iso(w.updated_at),
        }


@dataclass(frozen=True)
class StatusView:
    """Waves, devices with users, and per-state counts of one scope (a wave, or the whole store)."""

    taken_at: datetime
    store: str
    wave: str | None
    waves: tuple[WaveStatus, ...]
    devices: tuple[DeviceStatus, ...]
    counts: dict[str, int]

    @property
    def attention(self) -> list[DeviceStatus]:
        """Devices that need a person: error, failed, stalled, unreachable, then waiting; oldest first within each."""
        needing = [d for d in self.devices if d.attention is not None]
        return sorted(needing, key=lambda d: (_ATTENTION_ORDER[d.attention or "waiting"], d.since, d.name))

    @property
    def states(self) -> list[str]:
        return ordered_states(self.counts)

    def as_json(self) -> dict[str, Any]:
        """The ``migrator status --json`` contract: ``waves``, ``devices`` and ``counts``, nothing else."""
        return {
            "waves": [w.as_json() for w in self.waves],
            "devices": [d.as_json() for d in self.devices],
            "counts": self.counts,
        }


@dataclass(frozen=True)
class _Scope:
    view: StatusView
    records: dict[str, RollbackRecord]


def _gather(store: Store, wave: str | None, now: Clock) -> _Scope:
    waves = [store.get_wave(wave)] if wave is not None else store.list_waves()  # UnknownWave: bad input
    devices = store.list_devices(wave=wave)
    records = {r.device: r for r in store.export_rollback_records(wave)}
    statuses = tuple(
        DeviceStatus(d, tuple(records[d.name].users) if d.name in records else tuple(store.list_users(d.name)))
        for d in devices
    )
    counts = _count(d.device.state for d in statuses)
    per_wave = tuple(WaveStatus(w, _count(d.device.state for d in statuses if d.device.wave == w.name)) for w in waves)
    view = StatusView(now(), store.where, wave, per_wave, statuses, counts)
    return _Scope(view, records)


def _count(states: Iterable[str]) -> dict[str, int]:
    tally: dict[str, int] = {}
    for state in states:
        tally[state] = tally.get(state, 0) + 1
    return {state: tally[state] for state in ordered_states(tally)}


def collect_status(store: Store, wave: str | None = None, *, now: Clock = utc_now) -> StatusView:
    """The status of a wave (or every wave): raises :class:`migrator.store.UnknownWave` for an unknown name."""
    return _gather(store, wave, now).view


# ------------------------------------------------------------------------------------------- report


@dataclass(frozen=True)
class TimelineEvent:
    at: datetime
    kind: Literal["transition", "step", "journal"]
    user: str | None
    what: str
    status: str
    detail: str = ""
    finished_at: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "at": iso(self.at),
            "kind": self.kind,
            "user": self.user,
            "what": self.what,
            "status": self.status,
            "detail": self.detail,
            "finished_at": iso(self.finished_at),
        }


@dataclass(frozen=True)
class DeletedContainer:
    """A user whose Hello container migrator deleted: the old key stays registered in Entra ID."""

    device: str
    wave: str
    user: str
    sid: str | None
    key_id: str | None  # NgcKeyId recorded at preflight: identifies the stale key
    container_trust: str | None
    deleted_at: datetime | None
    evidence: str
    passkeys: bool | None  # None: nothing recorded either way
    passkeys_evidence: str = ""  # where the store says so (journal entry, audit entry, facts)
    passkeys_note: str = ""  # the recorded warning's words, when the evidence is a warning

    def as_json(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "wave": self.wave,
            "user": self.user,
            "sid": self.sid,
            "key_id": self.key_id,
            "container_trust": self.container_trust,
            "deleted_at": iso(self.deleted_at),
            "evidence": self.evidence,
            "entra_key_remains": True,
            "passkeys": self.passkeys,
            "passkeys_evidence": self.passkeys_evidence,
            "passkeys_note": self.passkeys_note,
        }


@dataclass(frozen=True)
class Failure:
    device: str
    wave: str
    user: str | None
    state: str
    reason: str
    at: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "wave": self.wave,
            "user": self.user,
            "state": self.state,
            "reason": self.reason,
            "at": iso(self.at),
        }


@dataclass(frozen=True)
class RestoredValue:
    key: str
    name: str
    existed: bool
    type: str | None
    data: int | str | list[str] | list[int] | None  # as PolicyValue keeps it
    action: str | None  # what the restore step reported: set, removed, unchanged (None: not reported)

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "existed": self.existed,
            "type": self.type,
            "data": self.data,
            "action": self.action,
        }


@dataclass(frozen=True)
class RollbackView:
    """What rolling one device back restored, and what it could not."""

    device: str
    wave: str
    state: str
    restored: tuple[RestoredValue, ...]
    not_restorable: tuple[DeletedContainer, ...]
    problems: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return self.state == ROLLED_BACK

    def as_json(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "wave": self.wave,
            "state": self.state,
            "complete": self.complete,
            "restored": [v.as_json() for v in self.restored],
            "not_restorable": [
                {
                    "user": c.user,
                    "what": "Hello container",
                    "why": "a deleted container cannot be restored: the user re-provisions under the restored policy",
                }
                for c in self.not_restorable
            ],
            "problems": list(self.problems),
        }


@dataclass(frozen=True)
class Approval:
    at: datetime
    actor: str
    action: str
    change_ticket: str | None
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {
            "at": iso(self.at),
            "actor": self.actor,
            "action": self.action,
            "change_ticket": self.change_ticket,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class WaveSummary:
    status: WaveStatus
    started_at: datetime | None  # first transition of the wave
    ended_at: datetime | None  # completed: when; else the last transition once every device is in a final state
    approvals: tuple[Approval, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            **self.status.as_json(),
            "started_at": iso(self.started_at),
            "ended_at": iso(self.ended_at),
            "approvals": [a.as_json() for a in self.approvals],
        }


@dataclass(frozen=True)
class DeviceReport:
    status: DeviceStatus
    timeline: tuple[TimelineEvent, ...]
    deleted: tuple[DeletedContainer, ...] = ()

    def as_json(self) -> dict[str, Any]:
        deleted = {c.user.casefold(): c for c in self.deleted}
        users = []
        for u in self.status.users:
            gone = deleted.get(u.name.casefold())
            users.append(
                {
                    "name": u.name,
                    "sid": u.sid,
                    "state": u.state,
                    "container_trust": u.container_trust,
                    "key_id": u.key_id,
                    "last_error": u.last_error,
                    "updated_at": iso(u.updated_at),
                    "container_deleted": gone is not None,
                    "passkeys": gone.passkeys if gone is not None else None,
                }
            )
        return {
            **self.status.as_json(),
            "users": users,
            "users_migrated": self.status.users_migrated,
            "users_total": len(self.status.users),
            "last_change": iso(self.status.last_change),
            "timeline": [e.as_json() for e in self.timeline],
        }


@dataclass(frozen=True)
class Report:
    """Everything the HTML, CSV and JSON reports show."""

    generated_at: datetime
    store: str
    wave: str | None
    waves: tuple[WaveSummary, ...]
    counts: dict[str, int]
    devices: tuple[DeviceReport, ...]
    failures: tuple[Failure, ...]
    rollbacks: tuple[RollbackView, ...]
    deleted_containers: tuple[DeletedContainer, ...]
    audit: AuditReport
    diagram: Diagram
    attention: tuple[DeviceStatus, ...] = field(default=())

    def as_json(self) -> dict[str, Any]:
        return {
            "generated_at": iso(self.generated_at),
            "store": self.store,
            "scope": {"wave": self.wave},
            "waves": [w.as_json() for w in self.waves],
            "counts": self.counts,
            "attention": [d.as_json() for d in self.attention],
            "failures": [f.as_json() for f in self.failures],
            "rollbacks": [r.as_json() for r in self.rollbacks],
            "deleted_containers": [c.as_json() for c in self.deleted_containers],
            "audit": {
                "ok": self.audit.ok,
                "entries": self.audit.entries,
                "head_hash": self.audit.head_hash,
                "problems": [{"entry_id": p.entry_id, "kind": p.kind, "detail": p.detail} for p in self.audit.problems],
                "scope": "the whole audit log of the store",
            },
            "diagram": self.diagram.as_json(),
            "devices": [d.as_json() for d in self.devices],
        }


def collect_report(store: Store, wave: str | None = None, *, now: Clock = utc_now) -> Report:
    """Read everything a report shows for one wave (or every wave); read-only."""
    scope = _gather(store, wave, now)
    view = scope.view
    audit_log = store.audit_entries()
    audit_by_device: dict[str, list[AuditRecord]] = {}
    for record in audit_log:
        if record.device is not None:
            audit_by_device.setdefault(record.device.strip().casefold(), []).append(record)

    devices: list[DeviceReport] = []
    transitions: list[TransitionRow] = []
    failures: list[Failure] = []
    rollbacks: list[RollbackView] = []
    deleted_all: list[DeletedContainer] = []
    for status in view.devices:
        timeline = store.export_device_timeline(status.name)
        transitions += timeline.transitions
        deleted = _deleted_containers(store, status, timeline, audit_by_device.get(status.name.casefold(), []))
        deleted_all += deleted
        failures += _failures(status, timeline)
        rollback_record = scope.records.get(status.name)
        if _was_rolled_back(status, timeline):
            snapshot = rollback_record.policy if rollback_record is not None else []
            rollbacks.append(_rollback_view(status, timeline, snapshot, deleted))
        devices.append(DeviceReport(status, tuple(_events(timeline)), tuple(deleted)))

    summaries = tuple(_wave_summary(w, view.devices, transitions, audit_log, view.waves) for w in view.waves)
    return Report(
        generated_at=view.taken_at,
        store=view.store,
        wave=wave,
        waves=summaries,
        counts=view.counts,
        devices=tuple(devices),
        failures=tuple(failures),
        rollbacks=tuple(rollbacks),
        deleted_containers=tuple(deleted_all),
        audit=store.verify_audit(),
        diagram=build_diagram(_wave_playbook(view.waves[0].wave) if wave else None),
        attention=tuple(view.attention),
    )


def _wave_playbook(row: WaveRow) -> Playbook | None:
    """The shipped playbook a wave ran, when its content is exactly what the wave recorded (same SHA-256):
    the diagram then shows only the rows that playbook has. Anything else (a custom file, an older version)
    gets the full diagram rather than a wrong one."""
    try:
        path = builtin_path(row.playbook_name)
        playbook = load_playbook(path)
    except (InputFileError, OSError, ValueError):
        return None
    # The file's bytes, or the validated model's JSON (what the engine hashes): either identifies the content.
    recorded = {content_hash(path.read_bytes()), content_hash(playbook.model_dump_json())}
    return playbook if row.playbook_hash in recorded else None


# ----------------------------------------------------------------------------------------- timeline


def _events(timeline: Timeline) -> list[TimelineEvent]:
    events: list[TimelineEvent] = []
    for at, kind, row in timeline.events():
        if kind == "transition" and isinstance(row, TransitionRow):
            subject = f"user {row.user}: " if row.subject == "user" else ""
            detail = f"attempt {row.attempt}" if row.attempt else ""
            events.append(
                TimelineEvent(
                    at, "transition", row.user, f"{subject}{row.from_state} → {row.to_state}", row.event, detail
                )
            )
        elif kind == "step" and isinstance(row, StepRow):
            events.append(
                TimelineEvent(
                    at,
                    "step",
                    row.user,
                    f"step {row.step} (attempt {row.attempt})",
                    row.status,
                    row.error or "",
                    row.finished_at,
                )
            )
        elif isinstance(row, JournalEntry):
            detail = compact(row.outcome) if row.outcome_at is not None else f"intent {compact(row.intent)}"
            events.append(
                TimelineEvent(
                    at,
                    "journal",
                    row.user,
                    f"journal {row.step} (attempt {row.attempt})",
                    row.status,
                    detail,
                    row.outcome_at,
                )
            )
    return events


def _failures(status: DeviceStatus, timeline: Timeline) -> list[Failure]:
    found: list[Failure] = []
    device = status.device
    if attention(device.state) == "failed":
        at = _entered(timeline, device.state, None)
        reason = device.last_error or _last_step_error(timeline, None) or "no reason recorded"
        found.append(Failure(device.name, device.wave, None, device.state, reason, at))
    for user in status.users:
        if attention(user.state) == "failed":
            at = _entered(timeline, user.state, user.name)
            reason = user.last_error or _last_step_error(timeline, user.name) or "no reason recorded"
            found.append(Failure(device.name, device.wave, user.name, user.state, reason, at))
    return found


def _entered(timeline: Timeline, state: str, user: str | None) -> datetime | None:
    """When the device (user None) or that user last entered ``state``."""
    moments = [
        t.at
        for t in timeline.transitions
        if t.to_state == state
        and (t.subject == "device" if user is None else (t.subject == "user" and _same(t.user, user)))
    ]
    return max(moments) if moments else None


def _last_step_error(timeline: Timeline, user: str | None) -> str | None:
    failed = [s for s in timeline.steps if s.status == "failed" and s.error and (user is None or _same(s.user, user))]
    return failed[-1].error if failed else None


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.strip().casefold() == b.strip().casefold()


# --------------------------------------------------------------------------------- deleted containers


def _deleted_containers(
    store: Store, status: DeviceStatus, timeline: Timeline, audit: list[AuditRecord]
) -> list[DeletedContainer]:
    found: dict[str, tuple[datetime | None, str, str]] = {}  # folded user → (when, evidence, name as recorded)

    def note(user: str, at: datetime | None, evidence: str) -> None:
        """Keep the earliest evidence of each user's deletion."""
        key = user.strip().casefold()
        earlier = found[key][0] if key in found else None
        if key not in found or (at is not None and (earlier is None or at < earlier)):
            found[key] = (at, evidence, user.strip())

    for entry in timeline.journal:
        if entry.user is None:
            continue
        flag = _first_bool(entry.outcome, "deleted")
        is_delete = entry.step in DELETE_STEPS or entry.intent.get("purpose") == "delete"
        if flag is True or (flag is None and is_delete and entry.status == "done"):
            note(
                entry.user,
                entry.outcome_at or entry.intent_at,
                f"journal entry {entry.id} ({entry.step}, {entry.status})",
            )
    for step in timeline.steps:
        if step.user is not None and step.step in DELETE_STEPS and step.status == "succeeded":
            note(step.user, step.finished_at or step.started_at, f"step {step.step} attempt {step.attempt} succeeded")
    for move in timeline.transitions:
        if move.subject == "user" and move.user is not None and "deleted" in move.to_state.casefold():
            note(move.user, move.at, f"user transition {move.from_state} → {move.to_state}")
    if not found:
        return []

    facts = store.latest_facts(status.name)
    result: list[DeletedContainer] = []
    users = {u.name.strip().casefold(): u for u in status.users}
    users.update({u.sid.strip().casefold(): u for u in status.users if u.sid})
    for key, (at, evidence, recorded) in found.items():
        row = users.get(key)
        name = row.name if row is not None else recorded
        handles = {key}
        if row is not None:
            handles |= {row.name.strip().casefold(), *([row.sid.strip().casefold()] if row.sid else [])}
        # The machine's per-state data (store schema 2); read with getattr so a store of schema 1 still reports.
        contexts: list[tuple[str, JsonValue]] = []
        user_context = getattr(row, "context", None) if row is not None else None
        if user_context:
            contexts.append((f"state data of user {name}", user_context))
        device_context = getattr(status.device, "context", None)
        if device_context:
            contexts += [(f"state data of {status.name}", dict(o)) for o in _scoped_objects(device_context, handles)]
        verdict = _passkeys(
            handles,
            set(users),
            timeline.journal,
            audit,
            facts.facts if facts else None,
            facts.taken_at if facts else None,
            contexts,
        )
        result.append(
            DeletedContainer(
                device=status.name,
                wave=status.device.wave,
                user=name,
                sid=row.sid if row else None,
                key_id=row.key_id if row else None,
                container_trust=row.container_trust if row else None,
                deleted_at=at,
                evidence=evidence,
                passkeys=verdict.held if verdict else None,
                passkeys_evidence=verdict.where if verdict else "",
                passkeys_note=verdict.note if verdict else "",
            )
        )
    return sorted(result, key=lambda c: c.user.casefold())


def _first_bool(value: JsonValue, name: str) -> bool | None:
    """The first boolean found under a key called ``name`` anywhere in a JSON value (depth first)."""
    if isinstance(value, dict):
        direct = value.get(name)
        if isinstance(direct, bool):
            return direct
        for item in value.values():
            found = _first_bool(item, name)
            if found is not None:
                return found
    elif isinstance(value, list):
        for item in value:
            found = _first_bool(item, name)
            if found is not None:
                return found
    return None


@dataclass(frozen=True)
class _PasskeyVerdict:
    held: bool
    where: str
    note: str = ""  # the recorded warning's own words, when the evidence is a warning text


def _passkey_flag(value: JsonValue) -> tuple[bool, str] | None:
    """What a JSON value says about passkeys: (True, note) when a key naming passkeys holds true, a positive
    count or a non-empty list, or when a warning text mentions passkeys; (False, "") when such keys exist and
    all say no; None when it says nothing about them."""
    seen: list[bool] = []
    notes: list[str] = []

    def walk(node: JsonValue, key: str) -> None:
        if isinstance(node, dict):
            for name, item in node.items():
                if "passkey" in name.casefold():
                    if isinstance(item, bool):
                        seen.append(item)
                    elif isinstance(item, int | float):
                        seen.append(item > 0)
                    elif isinstance(item, list):
                        seen.append(bool(item))
                walk(item, name)
        elif isinstance(node, list):
            for item in node:
                walk(item, key)
        elif isinstance(node, str) and "warn" in key.casefold() and "passkey" in node.casefold():
            # The machine records a warning text (not a flag) when the container about to be deleted may hold
            # device-bound passkeys (Windows 11 keeps them in the Hello container; windows-facts §9.11).
            seen.append(True)
            notes.append(node)

    walk(value, "")
    if not seen:
        return None
    return any(seen), notes[0] if notes else ""


def _audit_names(record: AuditRecord, handles: set[str]) -> bool:
    """Whether an audit entry is about one of ``handles``: a before/after value equal to the name or SID, or
    the engine's ``user <name>: <trigger>`` action."""
    action = record.action.casefold()
    if any(action.startswith(f"user {handle}:") for handle in handles):
        return True
    return _mentions({"before": record.before, "after": record.after}, handles)


def _mentions(value: JsonValue, handles: set[str]) -> bool:
    if isinstance(value, str):
        return value.strip().casefold() in handles
    if isinstance(value, dict):
        return any(_mentions(v, handles) for v in value.values())
    if isinstance(value, list):
        return any(_mentions(v, handles) for v in value)
    return False


def _scoped_objects(value: JsonValue, handles: set[str]) -> Iterable[Mapping[str, JsonValue]]:
    """Objects in a JSON value that name the user directly (one of their values is the user's name or SID)."""
    if isinstance(value, dict):
        if any(isinstance(v, str) and v.strip().casefold() in handles for v in value.values()):
            yield value
        for item in value.values():
            yield from _scoped_objects(item, handles)
    elif isinstance(value, list):
        for item in value:
            yield from _scoped_objects(item, handles)


def _passkeys(
    handles: set[str],
    device_users: set[str],
    journal: list[JournalEntry],
    audit: list[AuditRecord],
    facts: JsonValue,
    facts_at: datetime | None,
    contexts: list[tuple[str, JsonValue]],
) -> _PasskeyVerdict | None:
    """What the store recorded about passkeys in one user's deleted container (None: nothing either way).

    ``handles`` are the user's folded name and SID; ``device_users`` those of every user of the device: an audit
    entry of the device that names none of them concerns the device as a whole (the machine's passkey warning
    depends on the Windows build), so it applies to every deleted container there. ``contexts`` are the state
    machine's stored data for this user (and the parts of the device's that name them)."""
    verdicts: list[_PasskeyVerdict] = []
    for entry in journal:
        if entry.user is not None and entry.user.strip().casefold() in handles:
            for part, value in (("intent", entry.intent), ("outcome", entry.outcome)):
                found = _passkey_flag(value)
                if found is not None:
                    verdicts.append(
                        _PasskeyVerdict(found[0], f"journal entry {entry.id} ({entry.step}) {part}", found[1])
                    )
    for record in audit:
        payload: JsonValue = {"before": record.before, "after": record.after}
        if not (_audit_names(record, handles) or not _audit_names(record, device_users)):
            continue  # about another user of this device
        found = _passkey_flag(payload)
        if found is None and "passkey" in record.action.casefold():
            found = (True, "")  # an audit entry about passkeys is itself the warning
        if found is not None:
            verdicts.append(_PasskeyVerdict(found[0], f"audit entry {record.id} ({record.action})", found[1]))
    for label, context in contexts:
        found = _passkey_flag(context)
        if found is not None:
            verdicts.append(_PasskeyVerdict(found[0], label, found[1]))
    if facts is not None:
        for obj in _scoped_objects(facts, handles):
            found = _passkey_flag(dict(obj))
            if found is not None:
                verdicts.append(_PasskeyVerdict(found[0], f"facts read {iso(facts_at)}", found[1]))
    if not verdicts:
        return None
    held = [v for v in verdicts if v.held]
    return held[0] if held else verdicts[0]


# ------------------------------------------------------------------------------------------ rollback


def _was_rolled_back(status: DeviceStatus, timeline: Timeline) -> bool:
    return (
        is_rollback_state(status.device.state)
        or any(t.subject == "device" and is_rollback_state(t.to_state) for t in timeline.transitions)
        or any(s.step in RESTORE_STEPS for s in timeline.steps)
        or any(_is_restore(j) for j in timeline.journal)
    )


def _is_restore(entry: JournalEntry) -> bool:
    """A journal entry of the rollback's policy restore (by step name, or by the machine's ``restore`` purpose)."""
    return entry.step in RESTORE_STEPS or entry.intent.get("purpose") == "restore"


def _rollback_view(
    status: DeviceStatus, timeline: Timeline, snapshot: list[PolicyValue], deleted: list[DeletedContainer]
) -> RollbackView:
    actions: dict[tuple[str, str], str] = {}
    problems: list[str] = []
    for entry in timeline.journal:
        if not _is_restore(entry):
            continue
        if entry.status == "failed":
            problems.append(f"restore attempt {entry.attempt} failed: {compact(entry.outcome)}")
        elif entry.status == "intent":
            problems.append(f"restore attempt {entry.attempt} is in doubt (intent journaled, no outcome)")
        restored = entry.outcome.get("restored") if isinstance(entry.outcome, dict) else None
        for item in restored if isinstance(restored, list) else []:
            if isinstance(item, dict) and isinstance(item.get("path"), str) and isinstance(item.get("name"), str):
                action = item.get("action")
                actions[(registry_key_fold(str(item["path"])), str(item["name"]).casefold())] = str(action)
    for step in timeline.steps:
        if step.step in RESTORE_STEPS and step.status == "failed":
            problems.append(f"step {step.step} attempt {step.attempt} failed: {step.error or 'no reason recorded'}")
    if status.device.state != ROLLED_BACK:
        problems.append(f"rollback not finished: the device is in state {status.device.state}")
        if status.device.last_error:
            problems.append(status.device.last_error)
    values = tuple(
        RestoredValue(
            v.key,
            v.name,
            v.existed,
            v.type,
            v.data,
            actions.get((registry_key_fold(v.key), v.name.casefold())),
        )
        for v in snapshot
    )
    return RollbackView(status.name, status.device.wave, status.device.state, values, tuple(deleted), tuple(problems))


# ------------------------------------------------------------------------------------------- waves


def _wave_summary(
    status: WaveStatus,
    devices: tuple[DeviceStatus, ...],
    transitions: list[TransitionRow],
    audit: list[AuditRecord],
    waves: tuple[WaveStatus, ...],
) -> WaveSummary:
    name = status.wave.name
    moments = sorted(t.at for t in transitions if t.wave == name)
    members = [d for d in devices if d.device.wave == name]
    finished = bool(members) and all(d.device.state in FINAL_STATES for d in members)
    others = {w.wave.name.casefold() for w in waves if w.wave.name != name}
    approvals: list[Approval] = []
    for record in audit:
        if "approv" not in record.action.casefold():
            continue
        payload: JsonValue = {"before": record.before, "after": record.after}
        names_it = _mentions(payload, {name.strip().casefold()})
        same_ticket = status.wave.change_ticket is not None and record.change_ticket == status.wave.change_ticket
        if names_it or (same_ticket and not _mentions(payload, others)):
            approvals.append(
                Approval(record.at, record.actor, record.action, record.change_ticket, compact(record.after))
            )
    if status.wave.state == "completed":  # the engine's word for a wave that ran to its end
        ended: datetime | None = max([status.wave.updated_at, *moments[-1:]])
    else:
        ended = moments[-1] if moments and finished else None
    return WaveSummary(status, moments[0] if moments else None, ended, tuple(approvals))


__all__ = [
    "Approval",
    "DeletedContainer",
    "DeviceReport",
    "DeviceStatus",
    "Failure",
    "Report",
    "RestoredValue",
    "RollbackView",
    "StatusView",
    "TimelineEvent",
    "WaveStatus",
    "WaveSummary",
    "collect_report",
    "collect_status",
    "compact",
    "iso",
]
