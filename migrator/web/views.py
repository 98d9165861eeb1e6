"""What each dashboard page shows, read from the store (no HTTP here): the waves, one wave's devices, the devices
that need attention, one device, the audit chain and the state diagram.

Every number is read as the engine recorded it, never guessed:

* **Progress per state**: the store's per-state counts of the wave; each state is coloured by what the machine's
  table says of it (:mod:`migrator.machine.table`: final, waiting, parked, active; success) or by why it needs a
  person (:func:`migrator.report.states.attention`).
* **Failure budget used**: the devices in the states the engine counts against the budget
  (:data:`migrator.engine.waves.AGAINST_BUDGET`) over the devices started (every device that left ``pending``),
  against the wave's ``max_fail_percent`` (its recorded settings), as :class:`~migrator.engine.waves.WaveRunner`
  computes it.
* **Canary**: the first ``canary`` devices of the wave's recorded selection; passed when each is a success or
  ineligible (the runner's rule), failed when one failed or stalled.
* **Next approval gate**: the batches the recorded settings make (:meth:`WaveSettings.batches`) and the approvals
  the audit log holds for the wave (:data:`migrator.engine.wavestore.APPROVE`, as ``StoreWaves`` counts them):
  batch ``n + 1`` (1-based) needs approval ``n``.
* **Change windows**: the recorded windows, parsed by :class:`~migrator.engine.waves.ChangeWindow`; open now or
  the next opening.

A wave written without settings (by hand, or an older version) shows what it has and says "not recorded".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from migrator.engine.waves import AGAINST_BUDGET, ChangeWindow, WaveSettings, in_any_window, next_window_start
from migrator.engine.wavestore import APPROVE
from migrator.errors import InputError
from migrator.machine.table import DEVICE_INITIAL, DEVICE_STATES, Category, device_state
from migrator.report.anchors import heads_in_log
from migrator.report.diagram import Diagram, build_diagram, svg
from migrator.report.model import (
    DeviceReport,
    DeviceStatus,
    StatusView,
    collect_device,
    device_statuses,
    iso,
)
from migrator.report.states import SUCCESS_STATES, attention, ordered_states
from migrator.store import AuditHead, AuditRecord, AuditReport, JsonValue, Store, WaveRow

PAGE_SIZE = 200  # device rows on one page of a wave: a 10,000-device wave is searched, not scrolled

# Devices that need a person, from the table (every state attention() names), for one query.
ATTENTION_STATES = tuple(s for s in DEVICE_STATES if attention(s) is not None)
# The filters of a wave's page: a category of the table, "attention", or one state.
CATEGORIES: tuple[str, ...] = ("attention", *(c.value for c in Category))


def state_class(state: str) -> str:
    """The CSS class of a state: why it needs a person, else success, else the table's category."""
    kind = attention(state)
    if kind is not None:
        return kind
    if state in SUCCESS_STATES:
        return "success"
    if state == DEVICE_INITIAL:
        return "pending"
    known = device_state(state)
    return known.category.value if known is not None else "active"


def category_of(state: str) -> str:
    known = device_state(state)
    return known.category.value if known is not None else Category.ACTIVE.value


# ------------------------------------------------------------------------------------------------- waves


@dataclass(frozen=True)
class Segment:
    """One state's share of a wave, for the stacked progress bar (x and width in per mille of the bar)."""

    state: str
    count: int
    css: str
    x: float
    width: float


@dataclass(frozen=True)
class Budget:
    failed: int
    started: int
    max_percent: float | None  # None: not recorded

    @property
    def percent(self) -> float:
        return 100.0 * self.failed / self.started if self.started else 0.0

    @property
    def used(self) -> float | None:
        """The share of the budget used (1.0: at the limit; above it the engine halts), None when unknown."""
        if self.max_percent is None:
            return None
        if self.max_percent == 0:
            return 1.0 if self.failed else 0.0
        return self.percent / self.max_percent

    @property
    def css(self) -> str:
        used = self.used
        if used is None or used < 0.5:
            return "ok"
        return "warn" if used <= 1.0 else "bad"


@dataclass(frozen=True)
class Canary:
    devices: tuple[tuple[str, str], ...]  # (device, state)

    @property
    def verdict(self) -> str:
        states = [state for _, state in self.devices]
        if any(s in AGAINST_BUDGET or s == "stalled" for s in states):
            return "failed"
        if all(s in SUCCESS_STATES or s == "ineligible" for s in states):
            return "passed"
        return "in progress"

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for _, state in self.devices:
            out[state] = out.get(state, 0) + 1
        return {state: out[state] for state in ordered_states(out)}


@dataclass(frozen=True)
class Gate:
    approval: bool  # the wave stops for an approval between batches
    batches: int
    approved: int

    @property
    def next_batch(self) -> int | None:
        """The 1-based batch the next approval opens (None: no gate left, or none at all)."""
        if not self.approval or self.approved + 2 > self.batches:
            return None
        return self.approved + 2


@dataclass(frozen=True)
class Window:
    text: str
    open_now: bool | None  # None: the text does not parse
    next_opening: datetime | None = None


@dataclass(frozen=True)
class WaveCard:
    row: WaveRow
    counts: dict[str, int]
    segments: tuple[Segment, ...]
    budget: Budget
    canary: Canary | None
    gate: Gate | None  # None: settings not recorded
    windows: tuple[Window, ...]
    approvals: tuple[AuditRecord, ...]

    @property
    def name(self) -> str:
        return self.row.name

    @property
    def devices(self) -> int:
        return sum(self.counts.values())

    @property
    def settled(self) -> int:
        return sum(n for state, n in self.counts.items() if category_of(state) == Category.FINAL.value)


def _segments(counts: Mapping[str, int]) -> tuple[Segment, ...]:
    total = sum(counts.values())
    out: list[Segment] = []
    x = 0.0
    for state in ordered_states(counts):
        width = 1000.0 * counts[state] / total if total else 0.0
        out.append(Segment(state, counts[state], state_class(state), x, width))
        x += width
    return tuple(out)


def _number(value: JsonValue | None) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _windows(texts: Sequence[str], now: datetime) -> tuple[Window, ...]:
    out: list[Window] = []
    for text in texts:
        try:
            window = ChangeWindow.parse(text)
        except InputError:
            out.append(Window(text, None))
            continue
        inside = in_any_window([window], now)
        out.append(Window(text, inside, None if inside else next_window_start([window], now)))
    return tuple(out)


def wave_card(store: Store, row: WaveRow, approvals: Sequence[AuditRecord], now: datetime) -> WaveCard:
    """One wave's card: counts (one query), settings, canary devices (one query each), approvals given."""
    counts = {state: n for state, n in store.counts(row.name).items() if n}
    counts = {state: counts[state] for state in ordered_states(counts)}
    settings = row.settings
    started = sum(counts.values()) - counts.get(DEVICE_INITIAL, 0)
    failed = sum(n for state, n in counts.items() if state in AGAINST_BUDGET)
    budget = Budget(failed, started, _number(settings.get("max_fail_percent")))
    selection = settings.get("devices")
    devices = tuple(str(d) for d in selection) if isinstance(selection, list) else ()
    canary_size = int(_number(settings.get("canary")) or 0)
    canary = None
    if canary_size and devices:
        canary = Canary(tuple((d, store.get_device(d).state) for d in devices[:canary_size]))
    mine = tuple(a for a in approvals if isinstance(a.after, dict) and a.after.get("wave") == row.name)
    gate = None
    if devices:
        batch_size = int(_number(settings.get("batch_size")) or 1)
        batches = WaveSettings(row.name, devices, batch_size=batch_size, canary=canary_size).batches()
        gate = Gate(settings.get("approval") is True, len(batches), len(mine))
    windows = settings.get("windows")
    texts = [str(w) for w in windows] if isinstance(windows, list) else []
    return WaveCard(row, counts, _segments(counts), budget, canary, gate, _windows(texts, now), mine)


def waves_page(store: Store, now: datetime) -> list[WaveCard]:
    approvals = store.audit_entries(action=APPROVE)
    return [wave_card(store, row, approvals, now) for row in store.list_waves()]


# ------------------------------------------------------------------------------------------------ one wave


@dataclass(frozen=True)
class WavePage:
    card: WaveCard
    rows: tuple[DeviceStatus, ...]  # this page's devices
    matching: int  # devices that match the search and filter
    query: str
    show: str  # "" (all), a category, "attention", or a state
    offset: int
    states: tuple[str, ...]  # the wave's states, for the filter

    @property
    def next_offset(self) -> int | None:
        following = self.offset + PAGE_SIZE
        return following if following < self.matching else None

    @property
    def previous_offset(self) -> int | None:
        return max(0, self.offset - PAGE_SIZE) if self.offset else None


def _states_for(show: str) -> list[str] | None:
    if not show:
        return None
    if show == "attention":
        return list(ATTENTION_STATES)
    if show in CATEGORIES:
        return [s for s in DEVICE_STATES if category_of(s) == show]
    return [show]


def wave_page(store: Store, wave: str, query: str, show: str, offset: int, now: datetime) -> WavePage:
    """A wave's devices matching ``query`` (a part of the name, any case) and ``show``; PAGE_SIZE of them from
    ``offset``, each with its users. Raises UnknownWave."""
    row = store.get_wave(wave)
    card = wave_card(store, row, store.audit_entries(action=APPROVE), now)
    found = store.list_devices(wave=wave, states=_states_for(show))
    needle = query.strip().casefold()
    if needle:
        found = [d for d in found if needle in d.name.casefold()]
    offset = max(0, min(offset, max(0, len(found) - 1)))
    shown = tuple(device_statuses(store, found[offset : offset + PAGE_SIZE]))
    return WavePage(card, shown, len(found), query, show, offset, tuple(card.counts))


# ------------------------------------------------------------------------------------------ needs attention


def attention_page(store: Store, now: datetime) -> list[DeviceStatus]:
    """Failed, error, stalled, unreachable, then waiting devices of every wave; oldest first within each (the
    order ``migrator status`` lists them in)."""
    statuses = tuple(device_statuses(store, store.list_devices(states=ATTENTION_STATES)))
    return StatusView(now, store.where, None, (), statuses, {}).attention


# --------------------------------------------------------------------------------------------- one device


@dataclass(frozen=True)
class DevicePage:
    report: DeviceReport
    audit: tuple[AuditRecord, ...]


def device_page(store: Store, name: str) -> DevicePage:
    """Raises UnknownDevice."""
    report = collect_device(store, name)
    return DevicePage(report, tuple(store.audit_entries(device=report.status.name)))


# ------------------------------------------------------------------------------------------------- audit


def audit_page(store: Store, log_dir: Path | None) -> AuditReport:
    """The whole chain verified against every head recorded outside it: the store's, the waves', the JSON log's
    (as ``migrator audit verify`` without ``--anchor`` does)."""
    return store.verify_audit(heads_in_log(log_dir) if log_dir is not None else [])


# ----------------------------------------------------------------------------------------------- diagram


@dataclass(frozen=True)
class DiagramPage:
    diagram: Diagram
    pictures: tuple[tuple[str, str], ...] = field(default=())  # (title, inline SVG)


def diagram_page() -> DiagramPage:
    """The device machine and the user machine, each an inline SVG. Both SVGs are in one page: each gets its own
    arrow marker id (an id must be unique in a document)."""
    diagram = build_diagram(None)
    pictures = []
    for number, graph in enumerate(diagram.graphs, start=1):
        picture = svg(graph.edges, title=graph.title)
        picture = picture.replace('id="arrow"', f'id="arrow-{number}"').replace("url(#arrow)", f"url(#arrow-{number})")
        pictures.append((graph.title, picture))
    return DiagramPage(diagram, tuple(pictures))


# ---------------------------------------------------------------------------------------------- changes


def fingerprint(store: Store) -> tuple[object, ...]:
    """What changes whenever anything a page shows changes, read cheaply (no verification): the per-state
    counts, every wave's state and last change, the recorded audit head and the table's last entry. Every state
    change and operator action is audited (the engine's funnel), so the audit tail moves with each of them; a
    log cut short behind the store's back moves the tail too."""
    waves = tuple((w.name, w.state, w.updated_at) for w in store.list_waves())
    tail: AuditHead | None = store.audit_tail()
    return (tuple(sorted(store.counts().items())), waves, store.audit_head(), tail)


def iso_or_dash(moment: datetime | None) -> str:
    """A time as the pages show it: UTC ISO 8601, or a dash for none."""
    return iso(moment) or "—"
