"""Putting a wave together: inventory + playbook + store + credentials → a :class:`WaveRunner` that visits
devices with the durable driver (:func:`migrator.engine.device.visit`).

Everything a later ``migrator resume`` needs (the inventory path, the playbook, the wave's settings and its
device list) is recorded with the wave in the store, so resuming needs only the store and the credentials.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrator.cloud.cleanup import StaleKeyCleanup
from migrator.cloud.knowledge import EntraPreflight
from migrator.cloud.settings import graph_settings, open_graph
from migrator.directory.knowledge import DirectoryKnowledge, announce_failures, read_directory
from migrator.directory.settings import check_directory_settings
from migrator.engine import device as driver
from migrator.engine.channels import policy_channel
from migrator.engine.leases import DEFAULT_LEASE_SECONDS, LeaseKeeper
from migrator.engine.waves import (
    SETTLED,
    ChangeWindow,
    Clock,
    VisitOutcome,
    WaveRunner,
    WaveSettings,
    select_percent,
)
from migrator.engine.wavestore import StoreWaves
from migrator.errors import CloudError, InputError
from migrator.facts import PathSettings
from migrator.inventory import Inventory, load_inventory
from migrator.logs import get_logger
from migrator.machine.table import REMOVE_STALE_HELLO_KEY
from migrator.playbook import Playbook, builtin_path, load_playbook
from migrator.remote import open_transport
from migrator.remote.credentials import Credentials
from migrator.remote.pool import TransportPool
from migrator.remote.tls import INSECURE_TRANSPORT, insecure_devices
from migrator.remote.transport import Transport
from migrator.store import AuditEntry, Store, WaveRow, content_hash

if TYPE_CHECKING:
    from migrator.cloud.client import GraphClient


class RealClock:
    """Wall-clock time for real fleets."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))


@dataclass(frozen=True)
class WaveRequest:
    """What ``migrator run`` asks for (the CLI's options, validated)."""

    inventory: Path
    playbook: str | None = None  # a file or a shipped playbook's name; None = to-cloud-kerberos
    limit: str | None = None  # groups/names, comma-separated, or "N%" of the devices in no wave yet
    wave: str | None = None
    batch_size: int = 50
    concurrency: int = 16
    max_fail_percent: float = 10.0
    canary: int = 0
    change_ticket: str | None = None
    approval: bool = False
    windows: tuple[str, ...] = ()
    entra_kerberos: dict[str, bool] = field(default_factory=dict)
    devices: tuple[str, ...] | None = None  # an explicit selection (the demo's waves); overrides limit


def _playbook_source(ref: str | None) -> tuple[Playbook, str, str]:
    """The playbook, how to find it again (absolute path or shipped name), and its content hash."""
    playbook = load_playbook(ref)
    if ref is None or (not Path(ref).exists() and "/" not in ref and not Path(ref).suffix):
        path = builtin_path(ref or "to-cloud-kerberos")
        locator = playbook.name
    else:
        path = Path(ref).resolve()
        locator = str(path)
    return playbook, locator, content_hash(path.read_text(encoding="utf-8"))


def _enrolled_elsewhere(store: Store) -> set[str]:
    return {d.name.casefold() for d in store.list_devices() if d.wave is not None}


def select_devices(inventory: Inventory, store: Store, limit: str | None) -> list[str]:
    """``--limit``: groups and names, or ``N%`` of the inventory's devices that are in no wave yet."""
    if limit and limit.strip().endswith("%"):
        try:
            percent = float(limit.strip()[:-1])
        except ValueError:
            raise InputError(f"--limit {limit!r}: a percentage looks like '10%'") from None
        taken = _enrolled_elsewhere(store)
        remaining = [d.name for d in inventory.devices if d.name.casefold() not in taken]
        return select_percent(remaining, percent)
    return [d.name for d in inventory.select(limit)]


@dataclass(frozen=True)
class RunnerOptions:
    """How a plan's runner visits: the caller's knobs, the same for every wave it plans or resumes."""

    transport_factory: Callable[..., Transport] | None = None
    on_change: Callable[[str, VisitOutcome], None] | None = None
    wait_for_waiting: bool = True
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    secrets_file: Path | None = None


@dataclass(eq=False)
class WavePlan:
    """A wave planned (or picked up) in the store, and what it was planned from. Its :attr:`runner`, which visits
    the devices from this process, is built on first use: a shared store's `run`/`resume` leaves the visits to
    workers, each of which builds its own, so it never builds one (and never reads Entra ID for nothing)."""

    store: Store
    name: str
    settings: dict[str, Any]  # as recorded with the wave
    change_ticket: str | None
    inventory: Inventory
    playbook: Playbook
    created: bool
    credentials: Credentials
    clock: Clock
    options: RunnerOptions
    graph: GraphClient | None = None  # signed in; the runner closes it at its end, :meth:`close` otherwise
    insecure: tuple[str, ...] = ()  # devices of the wave reached without TLS certificate verification
    directory: DirectoryKnowledge = field(default_factory=DirectoryKnowledge)  # read once, before any device

    @property
    def wave(self) -> WaveSettings:
        return wave_settings(self.name, self.settings, self.change_ticket)

    @cached_property
    def runner(self) -> WaveRunner:
        options = self.options
        return build_runner(
            self.store,
            self.name,
            self.settings,
            self.playbook,
            self.inventory,
            self.credentials,
            self.clock,
            change_ticket=self.change_ticket,
            transport_factory=options.transport_factory,
            on_change=options.on_change,
            wait_for_waiting=options.wait_for_waiting,
            lease_seconds=options.lease_seconds,
            directory=self.directory,
            secrets_file=options.secrets_file,
            graph=self.graph,
        )

    def close(self) -> None:
        """Close what planning opened, for a plan whose runner is not run here (its end closes it otherwise)."""
        if "runner" in self.__dict__:
            for end in self.runner.on_end:
                end()
        elif self.graph is not None:
            self.graph.close()


def _settings_record(request: WaveRequest, playbook_locator: str, devices: Sequence[str]) -> dict[str, Any]:
    return {
        "inventory": str(request.inventory.resolve()),
        "playbook": playbook_locator,
        "batch_size": request.batch_size,
        "concurrency": request.concurrency,
        "max_fail_percent": request.max_fail_percent,
        "canary": request.canary,
        "approval": request.approval,
        "windows": list(request.windows),
        "entra_kerberos": dict(request.entra_kerberos),
        "limit": request.limit,
        "devices": list(devices),
    }


def wave_settings(name: str, settings: dict[str, Any], change_ticket: str | None) -> WaveSettings:
    """The engine's settings of a wave, from what the store recorded with it."""
    return WaveSettings(
        name=name,
        devices=tuple(settings["devices"]),
        batch_size=int(settings["batch_size"]),
        concurrency=int(settings["concurrency"]),
        canary=int(settings["canary"]),
        max_fail_percent=float(settings["max_fail_percent"]),
        change_ticket=change_ticket,
        approval=bool(settings["approval"]),
        windows=tuple(ChangeWindow.parse(w) for w in settings.get("windows", [])),
    )


@dataclass
class WaveVisits:
    """How one process visits a wave's devices: the durable driver, with one runspace pool per device kept open
    across the visits of this wave (closed when the device is final, after a minute idle, or by :meth:`close`)."""

    visit: Callable[[str], VisitOutcome]
    pool: TransportPool

    def close(self) -> None:
        self.pool.close()


def wave_visits(
    store: Store,
    settings: dict[str, Any],
    playbook: Playbook,
    inventory: Inventory,
    credentials: Credentials,
    clock: Clock,
    *,
    directory: DirectoryKnowledge,
    leases: LeaseKeeper,
    should_stop: driver.ShouldStop,
    may_pass_point_of_no_return: Callable[[datetime], bool],
    transport_factory: Callable[..., Transport] | None = None,
    concurrency: int = 16,
    owner: str | None = None,
    wave: str = "",
    hold: Callable[[str, Any], str | None] | None = None,
    stale_keys: StaleKeyCleanup | None = None,
    entra_devices: dict[str, str] | None = None,
    entra: driver.EntraLookup | None = None,
) -> WaveVisits:
    """Visits of a wave's devices (``settings``: the wave's record) through the durable driver. ``owner``: the
    leases' owner (None: a fresh one per visit); ``should_stop`` is asked before every step; ``hold``: a batch-level
    policy channel's gate before a device's policy step; ``stale_keys``: the Entra ID cleanup after a user is
    verified; ``entra_devices``: what Entra ID said of the device objects at the wave's start; ``entra``: the
    per-visit lookup of what the wave's start did not read (:meth:`EntraPreflight.device`)."""
    # The directory's answers for every visit of this wave (the admin's --entra-kerberos wins where given).
    path_settings: PathSettings = directory.path_settings(dict(settings.get("entra_kerberos", {})))
    if entra_devices is not None:
        path_settings = path_settings.model_copy(update={"entra_devices": entra_devices})
    pool = TransportPool(transport_factory or open_transport, max_idle=60.0, max_open=4 * concurrency)

    def visit(device: str) -> VisitOutcome:
        entry = inventory.device(device)
        if entry is None:
            return VisitOutcome("failed", error=f"{device} is no longer in the inventory {inventory.path}")
        result = driver.visit(
            device,
            store=store,
            playbook=playbook,
            entry=entry,
            connection=inventory.connection(entry),
            credentials=credentials,
            transport_factory=pool.lease,
            clock=clock.now,
            owner=owner,
            may_pass_point_of_no_return=lambda _device, moment: may_pass_point_of_no_return(moment),
            path_settings=path_settings,
            sleep=clock.sleep,
            should_stop=should_stop,
            leases=leases,
            hold=hold,
            entra=entra,
        )
        if result.next_due is None:
            pool.discard(device)
        if stale_keys is not None and any(state in REMOVE_STALE_HELLO_KEY.after for state in result.users.values()):
            _remove_stale_keys(stale_keys, wave, device)
        return VisitOutcome(result.state, next_due=result.next_due, error=result.last_error)

    return WaveVisits(visit, pool)


def _remove_stale_keys(stale_keys: StaleKeyCleanup, wave: str, device: str) -> None:
    """After a visit that left a user verified: that user's old Hello key in Entra ID, removed (journalled)."""
    log = get_logger("engine.service", wave=wave, device=device)
    try:
        sent = stale_keys.graph.requests
        keys = stale_keys.device(device)
        log.info(
            "stale Hello keys",
            removed=sum(k.status == "removed" for k in keys),
            left=[f"{k.user}: {k.status} {k.detail}".strip() for k in keys if k.status != "removed"],
            graph_requests=stale_keys.graph.requests - sent,
        )
    except CloudError as err:  # the device is migrated either way; the key is listed as left
        log.warning("stale Hello keys not removed now; `migrator entra cleanup` retries", error=str(err))


def build_runner(
    store: Store,
    name: str,
    settings: dict[str, Any],
    playbook: Playbook,
    inventory: Inventory,
    credentials: Credentials,
    clock: Clock,
    *,
    change_ticket: str | None,
    transport_factory: Callable[..., Transport] | None = None,
    on_change: Callable[[str, VisitOutcome], None] | None = None,
    wait_for_waiting: bool = True,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    directory: DirectoryKnowledge | None = None,
    secrets_file: Path | None = None,
    graph: GraphClient | None = None,
) -> WaveRunner:
    """A runner whose visits go through the durable driver, with the wave's settings; the devices' leases last
    ``lease_seconds`` and are renewed by one heartbeat while visits run. ``directory``: what the wave read from
    the directory (read here, once, when not given)."""
    settings_ = wave_settings(name, settings, change_ticket)
    if directory is None:
        directory = wave_directory(inventory, credentials, settings, secrets_file)
    entra: EntraPreflight | None = None
    if graph is not None:
        # Entra ID at the wave run's start (the recorded devices by deviceId, the new ones by name), then at each
        # device's first visit for what that did not read: a missing or disabled device object makes the device
        # ineligible at preflight, an unreadable one goes on with a warning.
        entra = wave_entra(store, graph, name, actor=credentials.username, change_ticket=change_ticket)
    holder: list[WaveRunner] = []  # the runner exists by the time a visit runs
    leases = LeaseKeeper(store, ttl_seconds=lease_seconds)
    stale_keys = (
        StaleKeyCleanup(store, graph, actor=credentials.username, change_ticket=change_ticket)
        if graph is not None and playbook.entra.remove_stale_hello_keys
        else None
    )
    # A channel that changes the control plane per batch (ad-group): it holds each device before its policy step
    # and moves the batch's computer accounts when the runner says the batch is preflighted.
    overrides = {str(k): bool(v) for k, v in dict(settings.get("entra_kerberos", {})).items()}
    channel = policy_channel(
        store,
        name,
        playbook,
        inventory,
        credentials,
        knowledge=directory,
        overrides=overrides,
        secrets_file=secrets_file,
        graph=graph if playbook.policy.channel == "intune-group" else None,
    )

    def should_stop(wave_state: str | None) -> bool:
        return holder[0].should_stop(wave_state)

    def may_pass(moment: datetime) -> bool:
        return holder[0].may_pass_point_of_no_return(moment)

    visits = wave_visits(
        store,
        settings,
        playbook,
        inventory,
        credentials,
        clock,
        directory=directory,
        leases=leases,
        should_stop=should_stop,
        may_pass_point_of_no_return=may_pass,
        transport_factory=transport_factory,
        concurrency=settings_.concurrency,
        wave=name,
        hold=channel.hold if channel is not None else None,
        stale_keys=stale_keys,
        entra_devices=entra.states() if entra is not None else None,
        entra=entra.device if entra is not None else None,
    )
    runner = WaveRunner(
        settings_,
        StoreWaves(store, credentials.username),
        visits.visit,
        clock,
        on_change=on_change,
        wait_for_waiting=wait_for_waiting,
        on_batch_start=channel.start_batch if channel is not None else None,
    )
    holder.append(runner)
    runner.on_end.append(visits.close)
    runner.on_end.append(leases.release_all)
    if graph is not None:
        runner.on_end.append(graph.close)
    if channel is not None:
        runner.on_end.append(channel.close)
    runner.on_idle.append(visits.pool.close_idle)
    # What the store already knows (a resumed wave): final devices are not visited again.
    for row in store.list_devices(wave=name):
        runner.progress.states[row.name] = row.state
        if row.last_error:  # a re-run's recap lists devices not visited again with their recorded reason
            runner.progress.errors[row.name] = row.last_error
        if row.state in SETTLED:
            runner.progress.started.add(row.name)
    return runner


def wave_entra(
    store: Store, graph: GraphClient, wave: str, *, actor: str, change_ticket: str | None = None
) -> EntraPreflight:
    """Entra ID read at the start of a run of ``wave`` (every device of it: the recorded ones by deviceId, the
    others by name), findings recorded; its ``states()`` are the visits' ``entra_devices``, its ``device`` their
    ``entra`` hook (:class:`~migrator.cloud.knowledge.EntraPreflight`)."""
    entra = EntraPreflight(store, graph, wave, actor=actor, change_ticket=change_ticket)
    entra.start([row.name for row in store.list_devices(wave=wave)])
    return entra


@dataclass(frozen=True)
class WaveInputs:
    """A request's files, loaded and validated: what `run` checks before it opens (or creates) the store."""

    inventory: Inventory
    playbook: Playbook
    locator: str  # how to find the playbook again (absolute path or shipped name)
    digest: str  # the playbook's content hash


def _graph_reason(inventory: Inventory, playbook: Playbook) -> str | None:
    """Why a wave reads Microsoft Graph (None: it does not): its inventory names a tenant (preflight reads Entra
    ID for every device), or its playbook changes Entra ID or Intune."""
    if playbook.entra.remove_stale_hello_keys:
        return "the playbook sets entra: remove_stale_hello_keys"
    if playbook.policy.channel == "intune-group":
        return "the playbook's policy channel is intune-group"
    if inventory.entra is not None:
        return f"{inventory.path} has an entra: section (preflight reads Entra ID)"
    return None


def wave_graph(inventory: Inventory, playbook: Playbook, secrets: Path | None) -> GraphClient | None:
    """The Graph client a wave needs (see :func:`_graph_reason`), or None; :class:`InputError` when it needs one
    and the inventory or the secrets do not say which tenant and app."""
    why = _graph_reason(inventory, playbook)
    return open_graph(inventory, secrets, why) if why is not None else None


def signed_in_graph(inventory: Inventory, playbook: Playbook, secrets: Path | None) -> GraphClient | None:
    """:func:`wave_graph` with a token already granted: a wrong secret or certificate (or an unknown tenant) is
    refused with a :class:`CloudError` here, before a wave writes anything."""
    graph = wave_graph(inventory, playbook, secrets)
    if graph is not None:
        try:
            graph.token()
        except CloudError:
            graph.close()
            raise
    return graph


def load_wave_inputs(request: WaveRequest, *, secrets_file: Path | None = None) -> WaveInputs:
    """Load and check the inventory, the playbook and the change windows; raises on bad input, writes nothing.
    An inventory with an ``entra:`` section must say which app signs in (client id, secret or certificate:
    ``secrets_file``, then the environment)."""
    inventory = load_inventory(request.inventory)
    insecure_devices(inventory)  # a verification switched off without the explicit marker is refused first
    check_directory_settings(inventory)  # a bad directory: setting is refused before anything is written
    playbook, locator, digest = _playbook_source(request.playbook)
    if inventory.entra is not None:
        # An inventory that names a tenant: the wave reads Entra ID, so the app's client id and secret (or
        # certificate) must be there (InputError naming what is missing). A playbook that needs Graph without one
        # is refused when the wave signs in (plan_wave), also before anything is written.
        graph_settings(inventory, secrets_file)
    for window in request.windows:
        ChangeWindow.parse(window)
    return WaveInputs(inventory, playbook, locator, digest)


def plan_wave(
    store: Store,
    request: WaveRequest,
    credentials: Credentials,
    clock: Clock,
    *,
    inputs: WaveInputs | None = None,
    transport_factory: Callable[..., Transport] | None = None,
    on_change: Callable[[str, VisitOutcome], None] | None = None,
    wait_for_waiting: bool = True,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    secrets_file: Path | None = None,
    with_runner: bool = True,
) -> WavePlan:
    """Create (or pick up, when the same name exists) a wave and return its plan, with its runner built unless
    ``with_runner`` is False (workers visit it: :class:`WavePlan`).

    Everything is checked before the first write: the inventory, the playbook, the windows, the selection, that
    no selected device is in another wave, and, for an existing wave, that the request asks for the wave as it
    was created (a wave keeps its selection and settings: a different ``--limit`` is refused, not ignored)."""
    loaded = inputs if inputs is not None else load_wave_inputs(request, secrets_file=secrets_file)
    inventory, playbook = loaded.inventory, loaded.playbook
    # Signed in before the first write: a wrong secret is refused with nothing written.
    graph = signed_in_graph(inventory, playbook, secrets_file)
    options = RunnerOptions(transport_factory, on_change, wait_for_waiting, lease_seconds, secrets_file)
    try:
        plan = _plan_wave(store, request, credentials, clock, loaded, graph, options)
        if with_runner:
            plan.runner  # built now: what it reads and opens fails here, as planning does  # noqa: B018
        return plan
    except BaseException:
        if graph is not None:
            graph.close()
        raise


def _plan_wave(
    store: Store,
    request: WaveRequest,
    credentials: Credentials,
    clock: Clock,
    loaded: WaveInputs,
    graph: GraphClient | None,
    options: RunnerOptions,
) -> WavePlan:
    inventory, playbook, locator, digest = loaded.inventory, loaded.playbook, loaded.locator, loaded.digest
    secrets_file = options.secrets_file
    existing = {w.name: w for w in store.list_waves()}
    name = request.wave or f"wave-{len(existing) + 1}"
    if name in existing:
        settings = dict(existing[name].settings)
        _check_same_wave(name, existing[name].change_ticket, settings, request, locator)
        directory = wave_directory(inventory, credentials, settings, secrets_file)
        _enroll_recorded(store, name, settings)
        created = False
    else:
        devices = (
            list(request.devices) if request.devices is not None else select_devices(inventory, store, request.limit)
        )
        if not devices:
            raise InputError("the selection is empty: no device to migrate (check --limit and earlier waves)")
        _check_not_enrolled(store, devices)
        settings = _settings_record(request, locator, devices)
        directory = wave_directory(inventory, credentials, settings, secrets_file)
        # A channel that will change the directory checks its groups and computer accounts first: a missing one
        # is refused here, before the wave is written.
        channel = policy_channel(
            store,
            name,
            playbook,
            inventory,
            credentials,
            knowledge=directory,
            overrides=request.entra_kerberos,
            secrets_file=secrets_file,
            graph=graph if playbook.policy.channel == "intune-group" else None,
        )
        if channel is not None:
            try:
                channel.preflight(devices)
            finally:
                channel.close()
        store.create_wave(
            name,
            playbook_name=playbook.name,
            playbook_hash=digest,
            change_ticket=request.change_ticket,
            settings=settings,
        )
        store.enroll(name, devices)
        created = True
    insecure = _record_insecure(store, name, inventory, settings, credentials.username)
    _record_sites(store, inventory, settings)
    return WavePlan(
        store, name, settings, request.change_ticket, inventory, playbook, created, credentials, clock, options,
        graph, insecure, directory,
    )  # fmt: skip


def wave_directory(
    inventory: Inventory, credentials: Credentials, settings: dict[str, Any], secrets_file: Path | None = None
) -> DirectoryKnowledge:
    """Read the directory once for a wave (its devices' domains, the inventory's directory and lab domains); a
    domain that cannot be read is logged (the CLI also prints it) and decided as before. ``secrets_file``: where
    ``credentials: directory`` finds MIGRATOR_DIRECTORY_USERNAME/_PASSWORD (then the environment), as `probe`."""
    devices = [str(d) for d in settings.get("devices", [])]
    knowledge = read_directory(inventory, credentials, devices=devices, secrets_file=secrets_file)
    announce_failures(knowledge, command="wave", say=lambda _text: None)
    return knowledge


def _record_insecure(
    store: Store, wave: str, inventory: Inventory, settings: dict[str, Any], actor: str
) -> tuple[str, ...]:
    """The wave's devices the inventory reaches without certificate verification, recorded in the wave's
    settings (and audited) the first time each is: reports show them, for as long as the wave exists."""
    entries = [e for e in (inventory.device(str(d)) for d in settings.get("devices", [])) if e is not None]
    insecure = insecure_devices(inventory, entries)
    if insecure:
        store.add_to_wave_list(wave, INSECURE_TRANSPORT, insecure, audit=AuditEntry(actor, "tls verification off"))
    return tuple(insecure)


def _record_sites(store: Store, inventory: Inventory, settings: dict[str, Any]) -> None:
    """Each device's site, from the inventory: a worker with --site serves only its sites' devices."""
    entries = (inventory.device(str(d)) for d in settings.get("devices", []))
    store.set_sites({e.name: e.site for e in entries if e is not None})


def _enroll_recorded(store: Store, name: str, settings: dict[str, Any]) -> None:
    """Enroll a wave's recorded selection again (idempotent): a run killed between creating the wave and enrolling
    its devices (two transactions) left a wave without them, which this completes."""
    store.enroll(name, [str(d) for d in settings.get("devices", [])])


def _check_not_enrolled(store: Store, devices: Sequence[str]) -> None:
    """Refuse (before anything is written) a selection with devices already in another wave."""
    wanted = {d.casefold() for d in devices}
    taken = [(d.name, d.wave) for d in store.list_devices() if d.name.casefold() in wanted]
    if taken:
        shown = ", ".join(f"{device} (wave {wave!r})" for device, wave in taken[:5])
        more = f" and {len(taken) - 5} more" if len(taken) > 5 else ""
        raise InputError(
            f"{len(taken)} selected device(s) are already in another wave: {shown}{more}; a device is migrated "
            "by one wave (narrow --limit, or continue that wave with `migrator resume`)"
        )


# What `run --wave <existing>` must ask for as the wave was created: (settings key, CLI option).
_WAVE_OPTIONS = (
    ("inventory", "--inventory"),
    ("playbook", "--playbook"),
    ("limit", "--limit"),
    ("batch_size", "--batch-size"),
    ("concurrency", "--concurrency"),
    ("max_fail_percent", "--max-fail-percent"),
    ("canary", "--canary"),
    ("approval", "--approval"),
    ("windows", "--window"),
    ("entra_kerberos", "--entra-kerberos"),
)


def _check_same_wave(
    name: str, ticket: str | None, recorded: dict[str, Any], request: WaveRequest, locator: str
) -> None:
    asked = _settings_record(request, locator, recorded.get("devices", []))
    differences = [
        f"{option} {asked.get(key)!r} (the wave has {recorded.get(key)!r})"
        for key, option in _WAVE_OPTIONS
        if asked.get(key) != recorded.get(key)
    ]
    if request.devices is not None and list(request.devices) != list(recorded.get("devices", [])):
        differences.append("a different device selection")
    if request.change_ticket is not None and request.change_ticket != ticket:
        differences.append(f"--change-ticket {request.change_ticket!r} (the wave has {ticket!r})")
    if differences:
        raise InputError(
            f"wave {name!r} already exists and keeps the selection and settings it was created with; this run asks "
            f"for {'; '.join(differences)}. Continue it with `migrator resume` (or the same options), or start "
            "a new wave with another --wave name"
        )


def resumable_waves(
    store: Store,
    credentials: Credentials,
    clock: Clock,
    *,
    transport_factory: Callable[..., Transport] | None = None,
    on_change: Callable[[str, VisitOutcome], None] | None = None,
    wait_for_waiting: bool = True,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    secrets_file: Path | None = None,
    with_runner: bool = True,
) -> list[WavePlan]:
    """Every unfinished wave of the store, rebuilt from what the store recorded (each plan's runner built unless
    ``with_runner`` is False, as :func:`plan_wave`). Every wave's inputs are checked and each wave that reads Graph
    is signed in before anything is written (a wrong secret writes nothing)."""
    options = RunnerOptions(transport_factory, on_change, wait_for_waiting, lease_seconds, secrets_file)
    pending: list[tuple[WaveRow, Inventory, Playbook, GraphClient | None]] = []
    try:
        for wave in store.list_waves():
            # A wave is completed only when all its devices are settled; a store written before that rule may
            # call a wave completed that still has devices waiting, unreachable or in error: picked up too.
            if wave.state == "completed" and all(d.state in SETTLED for d in store.list_devices(wave=wave.name)):
                continue
            inventory = load_inventory(str(wave.settings["inventory"]))
            playbook = checked_playbook(wave)
            pending.append((wave, inventory, playbook, signed_in_graph(inventory, playbook, secrets_file)))
        plans = []
        for wave, inventory, playbook, graph in pending:
            settings = dict(wave.settings)
            insecure = _record_insecure(store, wave.name, inventory, settings, credentials.username)
            _enroll_recorded(store, wave.name, settings)
            StoreWaves(store, credentials.username).resume(wave.name)
            directory = wave_directory(inventory, credentials, settings, secrets_file)
            plan = WavePlan(
                store, wave.name, settings, wave.change_ticket, inventory, playbook, False, credentials, clock,
                options, graph, insecure, directory,
            )  # fmt: skip
            if with_runner:
                plan.runner  # built now, as planning  # noqa: B018
            plans.append(plan)
    except BaseException:
        for _wave, _inventory, _playbook, graph in pending:
            if graph is not None:
                graph.close()
        raise
    return plans


def checked_playbook(wave: WaveRow) -> Playbook:
    """The playbook a wave recorded, refused if it changed since the wave started."""
    locator = str(wave.settings["playbook"])
    playbook = load_playbook(locator)
    if content_hash(_playbook_text(locator)) != wave.playbook_hash:
        raise InputError(
            f"wave {wave.name}: the playbook {locator} changed since the wave started; restore it or start a new wave"
        )
    return playbook


def _playbook_text(locator: str) -> str:
    path = Path(locator)
    if not path.is_absolute():
        path = builtin_path(locator)
    return path.read_text(encoding="utf-8")
