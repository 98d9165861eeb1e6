"""What reports show, read from the store once: the status view (cheap: ``status`` and ``--watch``) and the full
report (timelines, failures, rollback, deleted containers, audit, diagram) that HTML, CSV and JSON render.

Theory of operation
-------------------
:func:`collect_status` reads the devices and their users in two queries (the devices, then the rollback records,
which carry every user row of the scope), whatever the fleet size, so ``status --watch`` stays light. Counts
are computed from the device rows read, so the per-state counts always add up to the devices listed.

:func:`collect_report` adds, per device, the store's timeline (transitions, step attempts, journal), and the audit
log (read once, for approvals). Nothing here writes to the store.

What is read, as the machine recorded it (through the engine's funnel), never guessed from names or JSON keys:

* **Deleted containers**, per user, from the user's context (:func:`migrator.machine.context.load_user`): listed
  when ``deleted_by_us`` (the guarded delete or the at-logon task deleted it; a container found already gone is
  not ours and is not listed), with ``deleted_at``, ``key_id`` (the NgcKeyId recorded before the point of no
  return), ``trust`` and ``delete_warning``: the warning the machine records with the delete (on Windows 11 the
  container may also hold device-bound passkeys, which go with it). No warning recorded: "not recorded".
* **Rollback**: a device that entered ``rolling_back``. What was put back is its context's ``restored``
  (``path\\name: action``, as the restore step reported it), matched to the policy snapshot; the journal entries
  whose intent's ``purpose`` is ``restore`` say which attempts failed or are in doubt.
* **Devices that do not answer** (``waiting_for_device``, ``unreachable``): since when, from the device context's
  ``unreachable_since``, and the last error. A device in ``error``: its ``last_error`` (the summary), that
  ``migrator resume`` retries it, and the context's ``traceback`` (JSON and the HTML device timeline only).
* **Approvals**: audit entries whose action is ``wave.approve`` (:data:`migrator.engine.wavestore.APPROVE`) and
  whose ``after.wave`` names the wave, as the wave engine counts them.

Deleting a local Hello container does not remove the key registered in Microsoft Entra ID (windows-facts
§Container deletion: stale Hello methods stay until removed), which is why every deleted container is listed
with its NgcKeyId.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from migrator.cloud.cleanup import key_status
from migrator.cloud.knowledge import AUDIT_ACTION as ENTRA_PREFLIGHT
from migrator.cloud.knowledge import SPEND_ACTION
from migrator.cloud.spend import DeviceSpend, graph_spend
from migrator.engine.wavestore import APPROVE
from migrator.machine.commands import Purpose
from migrator.machine.context import DeviceContext, UserContext, load_device, load_user
from migrator.machine.plan import GPO_OVERWRITES
from migrator.machine.table import DEVICE_SETTLED, USER_SETTLED
from migrator.playbook import Playbook, builtin_path, load_playbook
from migrator.remote.tls import INSECURE_TRANSPORT
from migrator.report.diagram import Diagram, build_diagram
from migrator.report.states import (
    FINAL_STATES,
    ROLLED_BACK,
    ROLLING_BACK,
    SUCCESS_STATES,
    UNANSWERED,
    AttentionKind,
    attention,
    ordered_states,
    resume_retries,
)
from migrator.store import (
    AuditRecord,
    AuditReport,
    DeviceRow,
    JournalEntry,
    JsonValue,
    LeaseRow,
    PolicyValue,
    RollbackRecord,
    StepRow,
    Store,
    Timeline,
    TransitionRow,
    UserRow,
    WaveRow,
    WorkerRow,
    content_hash,
    registry_key_fold,
    utc_now,
)
from migrator.store.claims import worker_live
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
    """A device row, its context (what the machine recorded) and its users' rows, as read together."""

    device: DeviceRow
    users: tuple[UserRow, ...]
    context: DeviceContext = field(default_factory=DeviceContext)

    @property
    def name(self) -> str:
        return self.device.name

    @property
    def attention(self) -> AttentionKind | None:
        return attention(self.device.state)

    @property
    def unreachable_since(self) -> datetime | None:
        """Since when a device waiting for the device (or parked unreachable) has not answered."""
        return self.context.unreachable_since if self.device.state in UNANSWERED else None

    @property
    def since(self) -> datetime:
        """Since when the device is where it is: for a device that does not answer, the first failure of the
        spell (each recheck that fails again is a new transition); else when it entered its current state (the
        store stamps ``updated_at`` on every transition)."""
        return self.unreachable_since or self.device.updated_at

    @property
    def traceback(self) -> str | None:
        """The unexpected exception of a device in ``error`` (secrets redacted by the engine)."""
        return self.context.traceback if self.device.state == "error" else None

    @property
    def last_change(self) -> datetime:
        """The latest change to the device or any of its users."""
        return max([self.device.updated_at, *(u.updated_at for u in self.users)])

    @property
    def reason(self) -> str:
        """Why the device is where it is, for people: since when it does not answer, its last error, what
        ``migrator resume`` does for it; else what a waiting state waits for."""
        d = self.device
        parts: list[str] = []
        if self.unreachable_since is not None:
            parts.append(f"no answer since {iso(self.unreachable_since)}")
        if d.last_error:
            parts.append(f"last error: {d.last_error}" if parts else d.last_error)
        if resume_retries(d.state):
            parts.append("`migrator resume` retries it" + (" once the cause is fixed" if d.state == "error" else ""))
        if parts:
            return "; ".join(parts)
        if d.state == "waiting_for_dc":
            return "waiting for line of sight to a domain controller (the first sign-in needs one)"
        if attention(d.state) == "waiting":
            waiting = [u.name for u in self.users if u.state not in USER_SETTLED]
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
            "unreachable_since": iso(self.unreachable_since),
            "traceback": self.traceback,
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
            "audit_head": w.audit_head.anchor if w.audit_head is not None else None,
            "insecure_transport": list(self.insecure_devices),
            "gpo_overwrites_local_writes": list(gpo_overwritten_devices(self.wave)),
        }

    @property
    def insecure_devices(self) -> tuple[str, ...]:
        """Devices this wave reached with TLS certificate verification turned off (``ca_bundle:
        insecure-skip-verify``), as the wave recorded them in its settings."""
        return insecure_devices(self.wave)


@dataclass(frozen=True)
class StatusView:
    """Waves, devices with users, and per-state counts of one scope (a wave, or the whole store)."""

    taken_at: datetime
    store: str
    wave: str | None
    waves: tuple[WaveStatus, ...]
    devices: tuple[DeviceStatus, ...]
    counts: dict[str, int]
    leases: tuple[LeaseRow, ...] = ()  # unexpired leases: devices another worker may be acting on now
    unserved: tuple[UnservedSite, ...] = ()  # sites of open devices that no live worker serves (stores with workers)

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
class UnservedSite:
    """Open devices of a site (None: devices without a site) that no live worker serves now, and when a worker
    that serves them last beat (None: never)."""

    site: str | None
    devices: int
    last_seen: datetime | None

    def line(self) -> str:
        name = f"site {self.site}" if self.site is not None else "devices without a site"
        since = f"since {iso(self.last_seen)}" if self.last_seen is not None else "ever"
        return f"{name}: no live worker {since} ({self.devices} open devices wait for one)"


def unserved_sites(
    devices: Sequence[DeviceRow], waves: Sequence[WaveRow], workers: Sequence[WorkerRow], now: datetime
) -> tuple[UnservedSite, ...]:
    """The sites whose open devices (not settled, in a wave that is not completed or halted) no live worker serves.
    Said only of a store that workers work (one with worker rows): a store `run` drives on SQLite has none."""
    if not workers:
        return ()
    open_waves = {w.name for w in waves if w.state not in ("completed", "halted")}
    waiting: dict[str | None, int] = {}
    for device in devices:
        if device.wave in open_waves and device.state not in DEVICE_SETTLED:
            waiting[device.site] = waiting.get(device.site, 0) + 1
    out = []
    for site, count in sorted(waiting.items(), key=lambda item: (item[0] is None, item[0] or "")):
        serving = [w for w in workers if w.serves(site)]
        if any(worker_live(w, now) for w in serving):
            continue
        last = max((w.heartbeat_at for w in serving), default=None)
        out.append(UnservedSite(site, count, last))
    return tuple(out)


@dataclass(frozen=True)
class _Scope:
    view: StatusView
    records: dict[str, RollbackRecord]


def _gather(store: Store, wave: str | None, now: Clock) -> _Scope:
    waves = [store.get_wave(wave)] if wave is not None else store.list_waves()  # UnknownWave: bad input
    devices = store.list_devices(wave=wave)
    records = {r.device: r for r in store.export_rollback_records(wave)}
    statuses = tuple(
        DeviceStatus(
            d,
            tuple(records[d.name].users) if d.name in records else tuple(store.list_users(d.name)),
            load_device(d.context),
        )
        for d in devices
    )
    counts = _count(d.device.state for d in statuses)
    per_wave = tuple(WaveStatus(w, _count(d.device.state for d in statuses if d.device.wave == w.name)) for w in waves)
    taken = now()
    unserved = unserved_sites(devices, waves, store.workers(), taken)
    view = StatusView(taken, store.where, wave, per_wave, statuses, counts, tuple(store.leases(wave)), unserved)
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
    """A user whose Hello container migrator deleted (the user context's ``deleted_by_us``): the old key stays
    registered in Entra ID until an admin removes it."""

    device: str
    wave: str
    user: str
    sid: str | None
    key_id: str | None  # the NgcKeyId recorded before the point of no return: identifies the stale key
    container_trust: str | None  # the container's trust at preflight (key, cert)
    deleted_at: datetime | None
    delete_warning: str | None  # recorded with the delete (Windows 11: passkeys may go with it); None: not recorded
    # What became of the old key in Entra ID (migrator.cloud.cleanup's journal): removed, already_gone, left,
    # failed, in_doubt, or not_attempted (the playbook did not ask and nobody ran `migrator entra cleanup`).
    entra_key: str = "not_attempted"
    entra_detail: str = ""

    @property
    def entra_key_remains(self) -> bool:
        return self.entra_key not in ("removed", "already_gone")

    def as_json(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "wave": self.wave,
            "user": self.user,
            "sid": self.sid,
            "key_id": self.key_id,
            "container_trust": self.container_trust,
            "deleted_at": iso(self.deleted_at),
            "entra_key_remains": self.entra_key_remains,
            "entra_key": self.entra_key,
            "entra_detail": self.entra_detail,
            "delete_warning": self.delete_warning,
        }


@dataclass(frozen=True)
class EntraFinding:
    """A device's latest "Entra ID at preflight" finding (migrator.cloud.knowledge, recorded in the audit log):
    its Entra device object, its users' Hello methods, the tenant's Hello enrollment policy."""

    device: str
    recorded_at: datetime
    finding: dict[str, Any]

    @property
    def device_object(self) -> str:
        return str(self.finding.get("device_object", "unknown"))

    @property
    def problem(self) -> str | None:
        problem = self.finding.get("device_problem")
        return str(problem) if problem else None

    def as_json(self) -> dict[str, Any]:
        return {"device": self.device, "recorded_at": iso(self.recorded_at), **self.finding}


def entra_findings(audit_log: Iterable[AuditRecord], devices: Iterable[str]) -> dict[str, EntraFinding]:
    """Each device's latest recorded finding (the audit log is in append order: a later one wins)."""
    wanted = {d.casefold() for d in devices}
    latest: dict[str, EntraFinding] = {}
    for record in audit_log:
        if record.action != ENTRA_PREFLIGHT or record.device is None or record.device.casefold() not in wanted:
            continue
        if isinstance(record.after, dict):
            latest[record.device.casefold()] = EntraFinding(record.device, record.at, dict(record.after))
    return latest


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
    entra: EntraFinding | None = None
    graph: DeviceSpend | None = None  # the Graph requests spent on it (migrator.cloud.spend)

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
                    "deleted_at": iso(gone.deleted_at) if gone is not None else None,
                    "delete_warning": gone.delete_warning if gone is not None else None,
                }
            )
        return {
            **self.status.as_json(),
            "users": users,
            "users_migrated": self.status.users_migrated,
            "users_total": len(self.status.users),
            "last_change": iso(self.status.last_change),
            "timeline": [e.as_json() for e in self.timeline],
            "entra_at_preflight": self.entra.as_json() if self.entra is not None else None,
            "graph_requests": self.graph.as_json() if self.graph is not None else None,
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
    entra_preflight: tuple[EntraFinding, ...] = field(default=())
    graph_requests: tuple[DeviceSpend, ...] = field(default=())  # per device Graph was asked about, by name

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
            "entra_at_preflight": [f.as_json() for f in self.entra_preflight],
            "graph_requests": [g.as_json() for g in self.graph_requests],
            "audit": {
                "ok": self.audit.ok,
                "entries": self.audit.entries,
                "head_hash": self.audit.head_hash,
                "anchor": self.audit.head.anchor,
                "heads_checked": self.audit.heads_checked,
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

    devices: list[DeviceReport] = []
    transitions: list[TransitionRow] = []
    failures: list[Failure] = []
    rollbacks: list[RollbackView] = []
    deleted_all: list[DeletedContainer] = []
    entra = entra_findings(audit_log, (status.name for status in view.devices))
    spend = graph_spend(audit_log, (status.name for status in view.devices))
    for status in view.devices:
        timeline = store.export_device_timeline(status.name)
        transitions += timeline.transitions
        deleted = _deleted_containers(status, store.journal_entries(status.name))
        deleted_all += deleted
        failures += _failures(status, timeline)
        rollback_record = scope.records.get(status.name)
        if _was_rolled_back(status, timeline):
            snapshot = rollback_record.policy if rollback_record is not None else []
            rollbacks.append(_rollback_view(status, timeline, snapshot, deleted))
        key = status.name.casefold()
        devices.append(DeviceReport(status, tuple(_events(timeline)), tuple(deleted), entra.get(key), spend.get(key)))

    summaries = tuple(_wave_summary(w, view.devices, transitions, audit_log) for w in view.waves)
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
        entra_preflight=tuple(entra.values()),
        graph_requests=tuple(sorted(spend.values(), key=lambda g: g.device.casefold())),
    )


def device_status(store: Store, row: DeviceRow) -> DeviceStatus:
    """One device row with its users and its context (one query for the users)."""
    return DeviceStatus(row, tuple(store.list_users(row.name)), load_device(row.context))


def device_statuses(store: Store, rows: Iterable[DeviceRow]) -> list[DeviceStatus]:
    """Many device rows with their users (read together in a few queries) and contexts, in the rows' order."""
    listed = list(rows)
    people = store.users_of(listed)
    return [DeviceStatus(row, tuple(people[row.name]), load_device(row.context)) for row in listed]


def collect_device(store: Store, name: str) -> DeviceReport:
    """One device as the report shows it: status, users, timeline, deleted containers. Raises
    :class:`migrator.store.UnknownDevice` for a name the store does not hold."""
    status = device_status(store, store.get_device(name))
    entra = entra_findings(store.audit_entries(status.name, action=ENTRA_PREFLIGHT), [status.name])
    # A shared read's entry names its devices in its body, not as its device: every graph-requests entry is read.
    spent = [*store.audit_entries(status.name, action=ENTRA_PREFLIGHT), *store.audit_entries(action=SPEND_ACTION)]
    return DeviceReport(
        status,
        tuple(_events(store.export_device_timeline(status.name))),
        tuple(_deleted_containers(status)),
        entra.get(status.name.casefold()),
        graph_spend(spent, [status.name]).get(status.name.casefold()),
    )


def insecure_devices(wave: WaveRow) -> tuple[str, ...]:
    """The devices a wave recorded as reached with TLS certificate verification off (none if it recorded none)."""
    value = wave.settings.get(INSECURE_TRANSPORT)
    return tuple(str(name) for name in value) if isinstance(value, list) else ()


def gpo_overwritten_devices(wave: WaveRow) -> tuple[str, ...]:
    """The devices whose local policy writes a GPO will undo at its next refresh, as the wave recorded them."""
    value = wave.settings.get(GPO_OVERWRITES)
    return tuple(str(name) for name in value) if isinstance(value, list) else ()


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


def _deleted_containers(status: DeviceStatus, journal: Sequence[JournalEntry] = ()) -> list[DeletedContainer]:
    """The users of the device whose container migrator deleted, as their contexts record it, with what the
    journal says became of the old key in Entra ID."""
    found: list[DeletedContainer] = []
    for user in status.users:
        context: UserContext = load_user(user.context)
        if not context.deleted_by_us:
            continue
        entra_key, entra_detail = key_status(journal, user.name) or ("not_attempted", "")
        found.append(
            DeletedContainer(
                device=status.name,
                wave=status.device.wave,
                user=user.name,
                sid=user.sid,
                key_id=context.key_id,
                container_trust=context.trust,
                deleted_at=context.deleted_at,
                delete_warning=context.delete_warning,
                entra_key=entra_key,
                entra_detail=entra_detail,
            )
        )
    return sorted(found, key=lambda c: c.user.casefold())


# ------------------------------------------------------------------------------------------ rollback


def _was_rolled_back(status: DeviceStatus, timeline: Timeline) -> bool:
    """Every rollback enters ``rolling_back`` (the table's ``begin_rollback``, or a retry into it)."""
    return status.device.state in (ROLLING_BACK, ROLLED_BACK) or any(
        t.subject == "device" and t.to_state == ROLLING_BACK for t in timeline.transitions
    )


def _is_restore(entry: JournalEntry) -> bool:
    """A journal entry of the rollback's policy restore: the intent's purpose, as the machine journals it."""
    return entry.intent.get("purpose") == Purpose.RESTORE.value


def _journal_error(entry: JournalEntry) -> str:
    """A failed entry's error as the driver records it (``{"ok": false, "error": {"class", "message"}}``)."""
    error = entry.outcome.get("error") if isinstance(entry.outcome, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return f"{error.get('class')}: {error.get('message')}"
    return compact(entry.outcome)


def _restored_actions(context: DeviceContext) -> dict[str, str]:
    """The context's ``restored`` (``path\\name: action``) by folded ``path\\name``."""
    actions: dict[str, str] = {}
    for item in context.restored:
        target, _, action = item.rpartition(": ")
        actions[registry_key_fold(target)] = action
    return actions


def _rollback_view(
    status: DeviceStatus, timeline: Timeline, snapshot: list[PolicyValue], deleted: list[DeletedContainer]
) -> RollbackView:
    problems: list[str] = []
    for entry in timeline.journal:
        if not _is_restore(entry):
            continue
        if entry.status == "failed":
            problems.append(f"restore attempt {entry.attempt} failed: {_journal_error(entry)}")
        elif entry.in_doubt:
            problems.append(f"restore attempt {entry.attempt} is in doubt (intent journaled, no outcome)")
    if status.device.state != ROLLED_BACK:
        problems.append(f"rollback not finished: the device is in state {status.device.state}")
        if status.device.last_error:
            problems.append(status.device.last_error)
    actions = _restored_actions(status.context)
    values = tuple(
        RestoredValue(v.key, v.name, v.existed, v.type, v.data, actions.get(registry_key_fold(f"{v.key}\\{v.name}")))
        for v in snapshot
    )
    return RollbackView(status.name, status.device.wave, status.device.state, values, tuple(deleted), tuple(problems))


# ------------------------------------------------------------------------------------------- waves


def _wave_summary(
    status: WaveStatus,
    devices: tuple[DeviceStatus, ...],
    transitions: list[TransitionRow],
    audit: list[AuditRecord],
) -> WaveSummary:
    name = status.wave.name
    moments = sorted(t.at for t in transitions if t.wave == name)
    members = [d for d in devices if d.device.wave == name]
    finished = bool(members) and all(d.device.state in FINAL_STATES for d in members)
    approvals = [
        Approval(record.at, record.actor, record.action, record.change_ticket, compact(record.after))
        for record in audit
        # exactly what the wave engine counts as an approval of this wave (StoreWaves.approved_batches)
        if record.action == APPROVE and isinstance(record.after, dict) and record.after.get("wave") == name
    ]
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
    "collect_device",
    "collect_report",
    "collect_status",
    "compact",
    "device_status",
    "device_statuses",
    "iso",
]
