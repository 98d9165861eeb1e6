"""Workers sharing one store: any number of processes, on any hosts, work the waves of one PostgreSQL store.

Theory of operation
-------------------
* A **worker** (``migrator worker``, or ``migrator run`` on PostgreSQL) loops: heartbeat, coordinate (if it is the
  coordinator), claim, visit. It claims released, due devices of running waves, of its sites, up to its free
  visit slots (:meth:`migrator.store.Store.claim`: ``FOR UPDATE SKIP LOCKED`` and the device's lease), visits
  each through the durable driver in a thread of its own (the transports are synchronous), and hands each back
  with its next due time (:meth:`~migrator.store.Store.finish_claim`). The claim is the lease: the visit renews
  and fences with it as :func:`migrator.engine.device.visit` always does. A worker that dies leaves expired
  leases and no heartbeat: its devices are claimed by another worker once their leases expire, and in-doubt
  journal steps are resolved by re-reading the device, as after any crash.
* Exactly one **wave coordinator** at a time, per store, elected through the database
  (:meth:`migrator.store.Store.coordinator_lock`: a PostgreSQL session-level advisory lock on a connection of its
  own, so it goes with its holder; an ``flock`` on SQLite). Every worker tries to take it at every loop, so
  another one takes over within a loop of the holder's death. The coordinator keeps what a wave promises
  across workers (:class:`Coordinator`): canary first and alone, batches one after another, the failure budget,
  approval gates, and it completes a wave. Pause is the wave's state (no claim from a paused wave; visits stop
  before their next step); change windows are the wave's settings, read by every worker's visits.
* **Group policy channels** (``ad-group``, ``intune-group``: :mod:`migrator.engine.channels`). Each worker's
  visits hold a device before its policy step until its batch's group change is journalled. The coordinator
  opens that change: once a released batch's devices are all held there (none before its policy step any more,
  none at it leased by a visit), it calls the channel's ``start_batch`` once for them, then makes them due at once
  (:meth:`migrator.store.Store.wake`); the workers' holds read the journal again and let them through. A channel
  error halts the wave with its reason (``status`` shows it; ``resume`` tries again), rather than retrying
  blindly. A device that reaches its policy step later (it was unreachable) gets the change alone, as with
  :class:`~migrator.engine.waves.WaveRunner`.
* **Per-wave kits** (:class:`WaveKits`): each worker loads a wave's inputs once, opens Microsoft Graph when the wave
  needs it, runs the Entra ID preflight and the channel's preflight, and removes stale Hello keys after its own
  visits (``entra: remove_stale_hello_keys``).
* Sites: a worker with ``--site`` names serves only devices of those sites; without any, it serves every device,
  whatever its site, siteless devices included (one host needs nothing more).
* SQLite is one host: one worker process per store (a second is refused: the coordinator lock is taken for the
  worker's whole life), and ``migrator run`` on SQLite keeps driving its wave in-process
  (:class:`migrator.engine.waves.WaveRunner`); a worker and a run refuse each other there
  (:meth:`migrator.store.Store.run_lock`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from migrator.cloud.cleanup import StaleKeyCleanup
from migrator.directory.knowledge import DirectoryKnowledge
from migrator.engine.channels import POLICY_STATE, GroupChannel, policy_channel
from migrator.engine.leases import DEFAULT_LEASE_SECONDS, LeaseKeeper
from migrator.engine.service import (
    WaveVisits,
    checked_playbook,
    wave_directory,
    wave_entra,
    wave_graph,
    wave_settings,
    wave_visits,
)
from migrator.engine.waves import (
    AGAINST_BUDGET,
    SETTLED,
    SUCCESS,
    Clock,
    VisitOutcome,
    WaveProgress,
    WaveResult,
    WaveState,
    in_any_window,
)
from migrator.engine.wavestore import StoreWaves
from migrator.errors import MigratorError
from migrator.inventory import Inventory, load_inventory
from migrator.logs import get_logger
from migrator.machine.table import DEVICE_ACTIVE, DEVICE_INITIAL
from migrator.playbook import Playbook
from migrator.remote.credentials import Credentials
from migrator.remote.transport import Transport
from migrator.store import AuditEntry, Claim, DeviceMark, DeviceRow, LeaseOwner, Store, StoreError, WaveRow
from migrator.store.claims import WORKER_BEAT_SECONDS, CoordinatorLock

if TYPE_CHECKING:
    from migrator.cloud.client import GraphClient

BATCH_OPEN = "wave.batch_open"
# The active states a device passes before its policy step (the table lists a device's states in the order a
# migration walks them): while a batch has a device in one of them, its group change waits for it.
BEFORE_POLICY = frozenset(DEVICE_ACTIVE[: DEVICE_ACTIVE.index(POLICY_STATE)])

_log = get_logger("engine.workers")


@dataclass(frozen=True)
class BatchOpening:
    """A batch the coordinator is about to release to the workers (what a batch-start hook is told)."""

    wave: str
    index: int  # 0-based; with a canary, batch 0 is the canary
    batches: int
    devices: tuple[str, ...]
    change_ticket: str | None


BatchHook = Callable[[BatchOpening], None]


class BatchChannel(Protocol):
    """What the coordinator asks of a wave's batch-level policy channel (:class:`~migrator.engine.channels.
    GroupChannel`)."""

    @property
    def kind(self) -> str: ...

    def reread_journal(self) -> None: ...

    def released(self, device: str) -> bool: ...

    def start_batch(self, batch: int, devices: Sequence[str]) -> object: ...


# While visits run, the coordinator ticks at most once per COORDINATE_SECONDS (a tick reads every device of each
# running wave: see Worker.iterate); a batch that gets through meanwhile opens up to that much later.
COORDINATE_SECONDS = 1.0

# A wave's batch-level policy channel (None: its playbook's channel acts per device), as this process built it.
ChannelOf = Callable[[str], BatchChannel | None]


class Coordinator:
    """Keeps each running wave's canary, batches, failure budget and approval gates, one decision per tick.

        The store's devices say where a wave stands: a batch is *open* once its devices are released, *through* once
        none of them is active (each is settled, waiting, or parked), as :class:`~migrator.engine.waves.WaveRunner`
        counts it. The failure budget counts failed and error devices among the started ones (released, and moved from
    ``pending`` by a visit)."""

    def __init__(
        self,
        store: Store,
        actor: str,
        *,
        on_batch_open: Sequence[BatchHook] = (),
        channels: ChannelOf | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        """``channels``: each wave's group policy channel (None: no wave has one); ``now``: the clock leases are
        read against."""
        self.store = store
        self.waves = StoreWaves(store, actor)
        self.actor = actor
        self.on_batch_open: list[BatchHook] = list(on_batch_open)
        self.channels = channels
        self._now = now or (lambda: datetime.now(UTC))
        self._unbuilt: set[str] = set()  # waves whose channel this host could not build (logged once)

    def tick(self) -> None:
        """One decision for every running wave of the store."""
        for wave in self.store.list_waves():
            if wave.state == "running":
                self.coordinate(wave)

    def coordinate(self, wave: WaveRow) -> WaveState:
        """Open the next batch, stop at a gate, halt, or complete the wave; returns the wave's state after."""
        settings = wave_settings(wave.name, dict(wave.settings), wave.change_ticket)
        rows = {d.name.casefold(): d for d in self.store.device_marks(wave.name)}
        # Started: released and moved from the initial state by a visit (the runner counts its visits the same way).
        started = [d for d in rows.values() if d.released_at is not None and d.state != DEVICE_INITIAL]
        failed = sum(1 for d in started if d.state in AGAINST_BUDGET)
        if started and 100.0 * failed / len(started) > settings.max_fail_percent:
            return self._halt(
                wave,
                f"failure budget exceeded: {failed} of {len(started)} started devices failed "
                f"(max {settings.max_fail_percent:g}%)",
            )
        batches = settings.batches()
        for index, batch in enumerate(batches):
            members = [rows[d.casefold()] for d in batch if d.casefold() in rows]
            if any(d.released_at is None for d in members):
                if index > 0 and settings.approval and self.waves.approved_batches(wave.name) < index:
                    reason = f"batch {index + 1} of {len(batches)} needs approval (migrator approve --wave {wave.name})"
                    self.waves.set_wave_state(wave.name, "awaiting_approval", reason)
                    return "awaiting_approval"
                self.open_batch(BatchOpening(wave.name, index, len(batches), batch, wave.change_ticket))
                return "running"
            if self.channels is not None and not self.open_group_change(wave, index, len(batches), members):
                return "halted"
            if any(d.state in DEVICE_ACTIVE for d in members):
                return "running"  # the batch is not through yet
            if settings.canary > 0 and index == 0:
                if any(_waiting(d) for d in members):
                    return "running"  # the canary must end: its waiting devices are visited again first
                bad = [d for d in members if d.state not in SUCCESS | {"ineligible"}]
                if bad:
                    return self._halt(wave, f"canary failed: {', '.join(f'{d.name} ({d.state})' for d in bad)}")
        if not rows:
            # A wave seen between its creation and its devices' enrolment: nothing is settled yet (all([]) would
            # complete it with every device still to come).
            return "running"
        if all(d.state in SETTLED for d in rows.values()):
            self.waves.set_wave_state(wave.name, "completed")
            return "completed"
        return "running"

    def open_batch(self, opening: BatchOpening) -> None:
        """The one place a batch opens: the batch-start hooks run first (a hook that raises leaves the batch closed;
        the next tick tries again), then its devices are released to the workers and the opening is audited."""
        for hook in self.on_batch_open:
            try:
                hook(opening)
            except Exception as err:  # a hook's failure must not stop the coordinator: it keeps the batch closed
                _log.exception(
                    "batch start failed: the batch stays closed, the next tick tries again",
                    wave=opening.wave,
                    batch=opening.index + 1,
                    error=f"{type(err).__name__}: {err}",
                )
                return
        released = self.store.release_batch(opening.wave, opening.devices, settled=SETTLED)
        if released:
            self.store.append_audit(
                AuditEntry(
                    self.actor,
                    BATCH_OPEN,
                    change_ticket=opening.change_ticket,
                    after={
                        "wave": opening.wave,
                        "batch": opening.index + 1,
                        "batches": opening.batches,
                        "devices": released,
                    },
                )
            )
            _log.info("batch opened", wave=opening.wave, batch=opening.index + 1, devices=released)

    def open_group_change(self, wave: WaveRow, index: int, batches: int, members: Sequence[DeviceMark]) -> bool:
        """A released batch whose devices are all held before their policy step (none before it any more, none at
        it leased by a visit): its group change, once (the channel's ``start_batch`` for the devices it has not
        moved), then those devices are due at once. False when the channel failed and the wave is halted."""
        now = self._now()
        at_policy = [d for d in members if d.state == POLICY_STATE]
        if not at_policy or any(d.state in BEFORE_POLICY for d in members):
            return True
        if any(d.lease_expires_at is not None and d.lease_expires_at > now for d in at_policy):
            return True  # a visit is on its way to the hold (or out of it): the next tick looks again
        assert self.channels is not None
        try:
            channel = self.channels(wave.name)
        except StoreError:
            raise
        except (MigratorError, OSError) as err:
            # This host cannot build the wave's kit (its inputs, its directory): visits from here fail the same
            # way; the next tick tries again, and another coordinator may succeed.
            if wave.name not in self._unbuilt:
                self._unbuilt.add(wave.name)
                _log.error("cannot open the wave's group changes from here", wave=wave.name, error=str(err))
            return True
        self._unbuilt.discard(wave.name)
        if channel is None:
            return True
        channel.reread_journal()  # a coordinator before this one may have moved some of them
        held = [d.name for d in at_policy if not channel.released(d.name)]
        if not held:
            return True
        try:
            channel.start_batch(index, held)
        except StoreError:
            raise  # the store is busy or gone: the loop's guard logs it and the next tick tries again
        except MigratorError as err:  # the control plane refused or was lost: a person looks before a retry
            self._halt(wave, f"batch {index + 1} of {batches}: {channel.kind} group change failed: {err}")
            return False
        woken = self.store.wake(held)
        _log.info("group change made", wave=wave.name, batch=index + 1, devices=len(held), woken=woken)
        return True

    def _halt(self, wave: WaveRow, reason: str) -> WaveState:
        self.waves.set_wave_state(wave.name, "halted", reason)
        _log.warning("wave halted", wave=wave.name, reason=reason)
        return "halted"


def _waiting(device: DeviceMark | DeviceRow) -> bool:
    return device.state not in SETTLED and device.due_at is not None


class ClaimLeases(LeaseKeeper):
    """The leases of claimed devices. A visit's end stops renewing its device's lease but keeps it: the worker
    hands it back together with the device's next due time, in one write (:meth:`Store.finish_claim`), so no
    other worker can claim the device in between and visit it again at once."""

    def release(self, device: str) -> bool:
        with self._lock:
            owner = self._held.pop(device, None)
        self._wake.set()
        return owner is not None


Visitor = Callable[[Claim], VisitOutcome]


class Worker:
    """One worker process's loop (see the module docstring): heartbeat, coordinate, claim, visit, hand back."""

    def __init__(
        self,
        store: Store,
        visit: Visitor,
        *,
        owner: str,
        leases: ClaimLeases,
        clock: Clock,
        actor: str,
        lock: CoordinatorLock,
        sites: Sequence[str] = (),
        concurrency: int = 16,
        poll_seconds: float = 1.0,
        coordinate_seconds: float = COORDINATE_SECONDS,
        on_batch_open: Sequence[BatchHook] = (),
        channels: ChannelOf | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        stopping: threading.Event | None = None,
    ) -> None:
        """``coordinate_seconds``: while visits run, the coordinator ticks at most this often; a loop with no visit
        running ticks at once."""
        self.store = store
        self.visit = visit
        self.owner = owner
        self.leases = leases
        self.clock = clock
        self.lock = lock
        self.sites = tuple(sites)
        self.concurrency = max(1, concurrency)
        self.poll_seconds = poll_seconds
        self.coordinate_seconds = coordinate_seconds
        self.coordinator = Coordinator(store, actor, on_batch_open=on_batch_open, channels=channels, now=clock.now)
        self.stopping = stopping or threading.Event()
        self.on_idle: list[Callable[[], None]] = []  # run when a loop found nothing to do (close idle pools)
        self.on_end: list[Callable[[], None]] = []  # run when the worker stops (close what visits kept open)
        self.visits = 0
        self._monotonic = monotonic
        self._next_beat = 0.0
        self._next_tick = 0.0
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="visit")
        self._in_flight: dict[Future[None], Claim] = {}
        self._log = _log.bind(worker=owner)

    @property
    def leading(self) -> bool:
        """Whether this worker is the wave coordinator now (taking the role when it is free)."""
        return self.lock.lead()

    def start(self) -> None:
        self.store.register_worker(self.owner, self.sites)
        self._next_beat = self._monotonic() + WORKER_BEAT_SECONDS

    def iterate(self, wait: float = 0.0) -> bool:
        """One loop: heartbeat when due, coordinate when leading, claim into the free slots, then wait up to
        ``wait`` seconds for a visit to end. True when visits were running (claimed now or before)."""
        if self._monotonic() >= self._next_beat:
            self._guard("heartbeat", lambda: self.store.worker_beat(self.owner))
            self._next_beat = self._monotonic() + WORKER_BEAT_SECONDS
        # A tick reads every device of each running wave (at 10,000 devices, 41 ms of CPU on PostgreSQL, 28 on
        # SQLite), and a loop ends each time a visit ends: a tick on every loop made each visit cost O(wave size),
        # so the CPU per device grew with the wave. A batch that gets through while others' visits run opens up to
        # coordinate_seconds later; an idle loop ticks at once.
        if (not self._in_flight or self._monotonic() >= self._next_tick) and self.leading:
            self._guard("coordinate", self.coordinator.tick)
            self._next_tick = self._monotonic() + self.coordinate_seconds
        claims: list[Claim] = []
        free = self.concurrency - len(self._in_flight)
        if free > 0 and not self.stopping.is_set():
            claims = self._guard(
                "claim", lambda: self.store.claim(self.owner, self.leases.ttl_seconds, free, sites=self.sites), []
            )
        for claim in claims:
            self._in_flight[self._pool.submit(self._visit, claim)] = claim
        visiting = bool(self._in_flight)
        if visiting:
            done, _ = wait_for(list(self._in_flight), timeout=wait, return_when=FIRST_COMPLETED)
            for future in done:
                self._in_flight.pop(future)
        return visiting

    @property
    def busy(self) -> bool:
        return bool(self._in_flight)

    def run(self, until: Callable[[], bool] | None = None) -> None:
        """Loop until stopped (:attr:`stopping`, e.g. on SIGTERM) or until ``until()``, asked after every loop that
        found nothing to visit."""
        self.start()
        try:
            while not self.stopping.is_set():
                if not self.iterate(self.poll_seconds):
                    if until is not None and until():
                        return
                    for idle in self.on_idle:
                        idle()
                    self.stopping.wait(self.poll_seconds)
        finally:
            self.close()

    def close(self) -> None:
        """Let running visits finish (they stop before their next step once stopping), then hand everything back."""
        self.stopping.set()
        self._pool.shutdown(wait=True)
        self._in_flight.clear()
        self.leases.release_all()
        self.lock.close()
        self._guard("deregister", lambda: self.store.worker_stopped(self.owner))
        for end in self.on_end:
            end()

    def _visit(self, claim: Claim) -> None:
        log = self._log.bind(wave=claim.wave, device=claim.device)
        try:
            outcome = self.visit(claim)
        except Exception as err:  # the driver records a device's own errors; this is the store or a bug
            log.exception("visit failed outside the device's machine", error=f"{type(err).__name__}: {err}")
            # Handed back due after one lease: the next claim tries again (the lease fences it meanwhile).
            outcome = VisitOutcome("error", next_due=self.clock.now() + timedelta(seconds=self.leases.ttl_seconds))
        self.visits += 1
        next_due = None if outcome.state in SETTLED else outcome.next_due
        try:
            if not self.store.finish_claim(claim.device, self.owner, next_due):
                log.warning("the device was taken over by another worker meanwhile: its schedule is theirs")
        except StoreError as err:  # the lease expires and the device, still due, is claimed again
            log.warning("device not handed back", error=str(err))

    def _guard(self, what: str, call: Callable[[], Any], default: Any = None) -> Any:
        """A store that is busy or unreachable only delays this loop: the next one tries again."""
        try:
            return call()
        except StoreError as err:
            self._log.warning(f"{what} failed; the next loop tries again", error=str(err))
            return default


@dataclass
class WaveKit:
    """One wave's objects in one worker process: the visits (with the channel's hold and the stale-key cleanup),
    the wave's batch-level policy channel if its playbook has one, and the Graph client it opened, if any."""

    visits: WaveVisits
    channel: GroupChannel | None = None
    graph: GraphClient | None = None

    def close(self) -> None:
        self.visits.close()
        if self.channel is not None:
            self.channel.close()
        if self.graph is not None:
            self.graph.close()


class WaveKits:
    """What a worker needs to visit each wave's devices, loaded once per wave from what the store recorded with it:
    the inventory and the playbook (both must be readable at their recorded paths on this host; a playbook that
    changed since the wave started is refused), the directory's answers, Microsoft Graph when the wave needs it
    (the Entra ID preflight and stale-key cleanup; the ``intune-group`` channel), and the wave's group policy
    channel, preflighted. Thread-safe."""

    def __init__(
        self,
        store: Store,
        credentials: Credentials,
        clock: Clock,
        *,
        owner: str,
        leases: LeaseKeeper,
        stopping: threading.Event,
        concurrency: int = 16,
        transport_factory: Callable[..., Transport] | None = None,
        secrets_file: Path | None = None,
    ) -> None:
        self.store = store
        self.secrets_file = secrets_file
        self.credentials = credentials
        self.clock = clock
        self.owner = owner
        self.leases = leases
        self.stopping = stopping
        self.concurrency = concurrency
        self.transport_factory = transport_factory
        self._lock = threading.Lock()
        self._kits: dict[str, WaveKit] = {}
        self._failed: set[str] = set()

    def preload(self, wave: str, inventory: Inventory, playbook: Playbook, directory: DirectoryKnowledge) -> None:
        """A wave whose inputs this process already read (``run`` planned it)."""
        with self._lock:
            if wave not in self._kits:
                self._kits[wave] = self._build(self.store.get_wave(wave), inventory, playbook, directory)

    def visit(self, claim: Claim) -> VisitOutcome:
        try:
            kit = self._kit(claim.wave)
        except (MigratorError, OSError) as err:
            # This host cannot visit the wave's devices now; another may. The device comes back after one lease.
            with self._lock:
                first = claim.wave not in self._failed
                self._failed.add(claim.wave)
            if first:
                _log.error("cannot visit the devices of this wave from here", wave=claim.wave, error=str(err))
            retry = self.clock.now() + timedelta(seconds=self.leases.ttl_seconds)
            return VisitOutcome(self.store.get_device(claim.device).state, next_due=retry, error=str(err))
        return kit.visits.visit(claim.device)

    def channel(self, wave: str) -> BatchChannel | None:
        """The wave's batch-level policy channel (the coordinator opens its batches' group changes with it)."""
        return self._kit(wave).channel

    def close_idle(self) -> None:
        with self._lock:
            kits = list(self._kits.values())
        for kit in kits:
            kit.visits.pool.close_idle()

    def close(self) -> None:
        with self._lock:
            kits, self._kits = list(self._kits.values()), {}
        for kit in kits:
            kit.close()

    def _kit(self, name: str) -> WaveKit:
        with self._lock:
            kit = self._kits.get(name)
            if kit is None:
                wave = self.store.get_wave(name)
                settings = dict(wave.settings)
                inventory = load_inventory(str(settings["inventory"]))
                playbook = checked_playbook(wave)
                directory = wave_directory(inventory, self.credentials, settings, self.secrets_file)
                kit = self._kits[name] = self._build(wave, inventory, playbook, directory)
                self._failed.discard(name)
            return kit

    def _build(self, wave: WaveRow, inventory: Inventory, playbook: Playbook, directory: DirectoryKnowledge) -> WaveKit:
        settings: dict[str, Any] = dict(wave.settings)
        windows = wave_settings(wave.name, settings, wave.change_ticket).windows
        name = wave.name
        actor = self.credentials.username

        def should_stop(wave_state: str | None) -> bool:
            # The wave's state comes from the visit (read with its lease check); a caller without it reads it here.
            state = wave_state if wave_state is not None else self.store.get_wave(name).state
            return self.stopping.is_set() or state != "running"

        def may_pass(moment: datetime) -> bool:
            return in_any_window(windows, moment)

        graph = wave_graph(inventory, playbook, self.secrets_file)
        channel: GroupChannel | None = None
        try:
            # Entra ID as `run` reads it (service.build_runner): the wave's devices at this worker's start, then at
            # each device's first visit from here what that did not read.
            entra = (
                wave_entra(self.store, graph, name, actor=actor, change_ticket=wave.change_ticket)
                if graph is not None
                else None
            )
            stale_keys = (
                StaleKeyCleanup(self.store, graph, actor=actor, change_ticket=wave.change_ticket)
                if graph is not None and playbook.entra.remove_stale_hello_keys
                else None
            )
            overrides = {str(k): bool(v) for k, v in dict(settings.get("entra_kerberos", {})).items()}
            channel = policy_channel(
                self.store,
                name,
                playbook,
                inventory,
                self.credentials,
                knowledge=directory,
                overrides=overrides,
                secrets_file=self.secrets_file,
                graph=graph,
            )
            if channel is not None:
                # What `run` checked before it created the wave, checked again from this host: a group or
                # computer object that is gone (or unreadable from here) is refused before any device moves.
                channel.preflight([str(d) for d in settings.get("devices", [])])
            visits = wave_visits(
                self.store,
                settings,
                playbook,
                inventory,
                self.credentials,
                self.clock,
                directory=directory,
                leases=self.leases,
                should_stop=should_stop,
                may_pass_point_of_no_return=may_pass,
                transport_factory=self.transport_factory,
                concurrency=self.concurrency,
                owner=self.owner,
                wave=name,
                hold=channel.hold if channel is not None else None,
                stale_keys=stale_keys,
                entra_devices=entra.states() if entra is not None else None,
                entra=entra.device if entra is not None else None,
            )
        except BaseException:
            if channel is not None:
                channel.close()
            if graph is not None:
                graph.close()
            raise
        return WaveKit(visits, channel, graph)


def build_worker(
    store: Store,
    credentials: Credentials,
    clock: Clock,
    *,
    sites: Sequence[str] = (),
    concurrency: int = 16,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    poll_seconds: float = 1.0,
    transport_factory: Callable[..., Transport] | None = None,
    on_batch_open: Sequence[BatchHook] = (),
    secrets_file: Path | None = None,
) -> tuple[Worker, WaveKits]:
    """A worker of this process (its lease owner: this process, with a fresh nonce) visiting through the durable
    driver with the waves' recorded inputs; the kits, for a caller that already read a wave's inputs."""
    owner = str(LeaseOwner.current())
    leases = ClaimLeases(store, ttl_seconds=lease_seconds)
    stopping = threading.Event()
    kits = WaveKits(
        store,
        credentials,
        clock,
        owner=owner,
        leases=leases,
        stopping=stopping,
        concurrency=concurrency,
        transport_factory=transport_factory,
        secrets_file=secrets_file,
    )
    worker = Worker(
        store,
        kits.visit,
        owner=owner,
        leases=leases,
        clock=clock,
        actor=credentials.username,
        lock=store.coordinator_lock(),
        sites=sites,
        concurrency=concurrency,
        poll_seconds=poll_seconds,
        on_batch_open=on_batch_open,
        channels=kits.channel,
        stopping=stopping,
    )
    worker.on_idle.append(kits.close_idle)
    worker.on_end.append(kits.close)
    return worker, kits


def waves_ended(store: Store, waves: Sequence[str], clock: Clock, *, wait: bool) -> Callable[[], bool]:
    """For ``run``/``resume`` on PostgreSQL: whether this process can stop working ``waves``. A wave has ended
    when it left ``running`` (completed, halted, at a gate, paused); or when every device is released and none is
    due now or is leased by another worker (``wait``: none is due ever again, none leased) while some are not
    settled (parked or waiting: the workers, or `resume`, pick them up). All settled: the coordinator completes
    it first."""

    def ended(name: str) -> bool:
        if store.get_wave(name).state != "running":
            return True
        devices = store.device_marks(name)
        if all(d.state in SETTLED for d in devices):
            return False  # the coordinator's next tick completes it
        now = clock.now()
        if any(d.released_at is None for d in devices):
            return False  # the coordinator has batches to open
        leased = {d.name for d in devices if d.lease_expires_at is not None and d.lease_expires_at > now}
        if wait:  # a device another worker visits now comes back with its next due time: wait for it too
            return not leased and all(d.due_at is None for d in devices)
        # Without waiting, a device another worker holds is that worker's (as a busy visit is for the runner).
        return all(d.due_at is None or d.due_at > now or d.name in leased for d in devices)

    return lambda: all(ended(name) for name in waves)


def wave_result(store: Store, wave: str) -> WaveResult:
    """Where a wave worked by workers stands, for the recap: its state, why, and its devices' states."""
    row = store.get_wave(wave)
    progress = WaveProgress()
    for device in store.list_devices(wave=wave):
        progress.states[device.name] = device.state
        if device.last_error:
            progress.errors[device.name] = device.last_error
        if device.released_at is not None:
            progress.started.add(device.name)
        if _waiting(device) and device.due_at is not None:
            progress.waiting[device.name] = device.due_at
    state: WaveState = row.state if row.state in _STATES else "running"  # type: ignore[assignment]
    reason = ""
    if state in ("halted", "awaiting_approval", "paused"):
        for entry in reversed(store.audit_entries()):
            after = entry.after if isinstance(entry.after, dict) else {}
            if entry.action == f"wave.{state}" and after.get("wave") == wave:
                reason = str(after.get("reason", ""))
                break
    elif state == "running":
        open_states = [s for s in progress.states.values() if s not in SETTLED]
        counts: dict[str, int] = {}
        for open_state in open_states:
            counts[open_state] = counts.get(open_state, 0) + 1
        listed = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        reason = f"{len(open_states)} devices not settled ({listed}); the workers pick them up"
    return WaveResult(wave, state, reason, progress)


_STATES = ("planned", "running", "awaiting_approval", "paused", "halted", "completed")
