"""``migrator plan | run | resume | pause | approve``: waves as an admin drives them.

Exit codes (:class:`migrator.errors.ExitCode`) of ``run`` and ``resume``: 0 the wave(s) completed, or every
remaining device waits for a documented reason (a user, a DC); 1 a wave halted (failure budget, canary) or
devices failed; 2 bad input (inventory, playbook, options, credentials) or an unusable store; 3 stopped for an
operator (approval gate, pause, a confirmation declined). ``pause`` and ``approve``: 0 done, 2 bad input or an
unusable store.

At the end of ``run`` and ``resume`` the audit chain's head is written into every wave row and the JSON log
(:mod:`migrator.report.anchors`), so a log cut short afterwards no longer matches them.
"""

from __future__ import annotations

import getpass
import json
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from migrator.cli.probe import probe_devices
from migrator.cli.storeopt import StoreOption, choose_store, open_command_store
from migrator.directory.knowledge import DirectoryKnowledge, announce_failures, read_directory
from migrator.engine.channels import preflight_channel
from migrator.engine.service import (
    RealClock,
    WavePlan,
    WaveRequest,
    load_wave_inputs,
    plan_wave,
    resumable_waves,
)
from migrator.engine.waves import AGAINST_BUDGET, SETTLED, VisitOutcome, WaveResult, WaveRunner, run_waves
from migrator.engine.wavestore import StoreWaves
from migrator.engine.workers import Worker, build_worker, wave_result, waves_ended
from migrator.errors import ExitCode, InputError, MigratorError
from migrator.inventory import check_site, load_inventory
from migrator.logs import configure_logging
from migrator.machine.plan import policy_plan
from migrator.machine.table import DEVICE_RESUMED
from migrator.playbook import load_playbook
from migrator.remote.credentials import Credentials, load_credentials
from migrator.remote.tls import announce, insecure_devices
from migrator.report.anchors import log_audit_head
from migrator.report.console import lease_line
from migrator.report.model import gpo_overwritten_devices
from migrator.store import Store, StoreError
from migrator.yamlsource import InputFileError

console = Console()
err_console = Console(stderr=True)

EXIT_OK, EXIT_FAILED, EXIT_INPUT, EXIT_OPERATOR = ExitCode.OK, ExitCode.FAILED, ExitCode.INPUT, ExitCode.OPERATOR
commands = typer.Typer()
StateOption = Annotated[
    Path, typer.Option("--state", help="Folder of the logs, and of the store unless --store or $MIGRATOR_STORE.")
]
# The default is migrator.engine.leases.DEFAULT_LEASE_SECONDS (a test checks they agree), written out here so
# that parsing options does not import the engine and the store.
LeaseOption = Annotated[
    float,
    typer.Option(
        "--lease-seconds",
        min=1.0,
        help="How long a device's lease lasts unless renewed: a crashed worker's devices come back after this "
        "(at once on its own host).",
    ),
]


def fail(message: str, code: int = EXIT_INPUT) -> typer.Exit:
    # The message quotes user values (file names, YAML values, patterns): printed as plain text, never as markup.
    err_console.print(Text.assemble(("error:", "red"), " ", message), highlight=False, soft_wrap=True)
    return typer.Exit(code)


def warn_directory(knowledge: DirectoryKnowledge, command: str) -> None:
    """Each domain whose directory could not be read: a warning on standard error (the wave's service logged
    it already, with ``command``'s wave)."""
    for err in knowledge.failures.values():
        err_console.print(
            f"WARNING: {err} ({err.action}): Microsoft Entra Kerberos in {err.domain} is what --entra-kerberos "
            "says (else not confirmed), and privileged users beyond the default groups are found on the devices.",
            markup=False,
            highlight=False,
        )


def warn_insecure(devices: Sequence[str], command: str, wave: str | None = None) -> None:
    """Every command that connects says so, on standard error and in the log, when verification is off."""
    announce(devices, command=command, wave=wave, say=lambda text: err_console.print(text, markup=False))


def anchor_audit_head(store: Store) -> None:
    """Record the audit chain's head in every wave row and the JSON log (end of ``run``/``resume``)."""
    try:
        head = store.record_audit_head()
        log_audit_head(head, why="end of run")
        console.print(
            f"audit head (paste into the change ticket): {head.anchor}", markup=False, emoji=False, soft_wrap=True
        )
    except StoreError as err:  # the run's outcome stands; say why the head was not recorded
        err_console.print(f"[yellow]warning:[/yellow] the audit head was not recorded: {escape(str(err))}")


def start_logging(state: Path, secrets: Sequence[str] = ()) -> Path | None:
    return configure_logging(state / "logs", secrets=secrets)


def load_credentials_or_fail(secrets: Path | None) -> Credentials:
    try:
        return load_credentials(secrets)
    except InputError as err:
        raise fail(str(err)) from None


def warn_gpo_overwrites(store: Store, results: Sequence[WaveResult]) -> None:
    """Name the devices whose local policy writes a GPO will undo (the local channel on GPO-managed devices)."""
    for result in results:
        overwritten = gpo_overwritten_devices(store.get_wave(result.wave))
        if overwritten:
            names = ", ".join(overwritten[:10]) + (" …" if len(overwritten) > 10 else "")
            err_console.print(
                f"WARNING: wave {result.wave}: a GPO manages the Windows Hello for Business policy of "
                f"{len(overwritten)} device(s) and will undo the local channel's writes at its next refresh "
                f"(every 90-120 minutes); migrate them with the ad-group channel: {names}",
                markup=False,
                highlight=False,
            )


def recap(results: Sequence[WaveResult]) -> int:
    """Ansible-style recap: per-state counts, failed devices with their reason; returns the exit code."""
    code = EXIT_OK
    for result in results:
        counts = result.progress.counts()
        line = "  ".join(f"{state}={n}" for state, n in counts.items()) or "no device visited"
        colour = {"completed": "green", "running": "yellow", "halted": "red"}.get(result.state, "yellow")
        console.print(
            f"[bold]{escape(result.wave)}[/bold] [{colour}]{result.state}[/{colour}]  {line}", highlight=False
        )
        if result.reason:
            console.print(f"  {result.reason}", markup=False, highlight=False)
        failed = [
            (d, s, result.progress.errors.get(d, "")) for d, s in result.progress.states.items() if s in AGAINST_BUDGET
        ]
        for device, state, error in failed:
            console.print(f"  [red]{state}[/red] {escape(device)}: {escape(error)}", highlight=False)
        # Parked devices are not failures, but each says why: a person (stalled), a device that does not answer
        # (unreachable: `resume` tries again), or a prerequisite (ineligible).
        for device, state in result.progress.states.items():
            if state in ("stalled", "unreachable"):
                console.print(
                    f"  [yellow]{state}[/yellow] {escape(device)}: {escape(result.progress.errors.get(device, ''))}",
                    highlight=False,
                )
        ineligible: dict[str, int] = {}
        for device, state in result.progress.states.items():
            if state == "ineligible":
                why = result.progress.errors.get(device) or "not eligible"
                ineligible[why] = ineligible.get(why, 0) + 1
        for why, n in sorted(ineligible.items(), key=lambda item: -item[1]):
            console.print(f"  [dim]ineligible[/dim] x{n}: {escape(why)}", highlight=False)
        if result.state == "halted" or failed:
            code = max(code, EXIT_FAILED)
        elif result.state in ("awaiting_approval", "paused"):
            code = max(code, EXIT_OPERATOR)
    return code


def _wave_progress(quiet: bool = False) -> Progress:
    """A bar per wave: settled devices of all, and a live count of its devices by state."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[states]}"),
        TimeElapsedColumn(),
        console=console,
        disable=quiet,
        transient=False,
    )


def run_with_progress(runners: Sequence[WaveRunner], quiet: bool = False) -> list[WaveResult]:
    """Run waves side by side (:func:`run_waves`) with a Rich progress bar per wave and a live state line."""
    progress = _wave_progress(quiet)
    with progress:
        for runner in runners:
            task = progress.add_task(escape(runner.settings.name), total=len(runner.settings.devices), states="")

            def changed(device: str, outcome: VisitOutcome, *, task: Any = task, runner: WaveRunner = runner) -> None:
                done = sum(1 for s in runner.progress.states.values() if s in SETTLED)
                counts = Counter(runner.progress.states.values())
                states = " ".join(f"{k}={v}" for k, v in sorted(counts.items()))
                progress.update(task, completed=done, states=states)

            runner.on_change = _chain(runner.on_change, changed)
        return run_waves(runners)


def _chain(
    first: Callable[[str, VisitOutcome], None] | None, second: Callable[[str, VisitOutcome], None]
) -> Callable[[str, VisitOutcome], None]:
    def both(device: str, outcome: VisitOutcome) -> None:
        if first is not None:
            first(device, outcome)
        second(device, outcome)

    return both


def _parse_entra_kerberos(values: Sequence[str]) -> dict[str, bool]:
    out: dict[str, bool] = {}
    for value in values:
        domain, sep, answer = value.partition("=")
        if not sep or answer.lower() not in ("yes", "no", "true", "false"):
            raise fail(f"--entra-kerberos {value!r}: expected DOMAIN=yes or DOMAIN=no")
        out[domain.strip()] = answer.lower() in ("yes", "true")
    return out


@commands.command("run")
def run(
    inventory: Annotated[Path, typer.Option("--inventory", "-i", help="Inventory file (YAML or CSV).")],
    playbook: Annotated[str | None, typer.Option(help="Playbook file or shipped name.")] = None,
    limit: Annotated[str | None, typer.Option(help="Groups/names (comma-separated) or N% of the rest.")] = None,
    wave: Annotated[str | None, typer.Option(help="Wave name (default wave-N).")] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 50,
    concurrency: Annotated[int, typer.Option(min=1, max=512)] = 16,
    max_fail_percent: Annotated[float, typer.Option(min=0, max=100)] = 10.0,
    canary: Annotated[int, typer.Option(min=0, help="Devices that must fully succeed first.")] = 0,
    change_ticket: Annotated[str | None, typer.Option(help="Change ticket id recorded with every change.")] = None,
    approval: Annotated[bool, typer.Option(help="Stop for `migrator approve` between batches.")] = False,
    window: Annotated[
        list[str] | None, typer.Option(help="Change window for points of no return, e.g. 'Mon-Fri 18:00-23:00'.")
    ] = None,
    entra_kerberos: Annotated[
        list[str] | None, typer.Option(help="DOMAIN=yes|no: whether the domain has the Entra Kerberos object.")
    ] = None,
    state: StateOption = Path("state"),
    store_url: StoreOption = None,
    secrets: Annotated[
        Path | None,
        typer.Option(help="KEY=value file with MIGRATOR_USERNAME/PASSWORD (and MIGRATOR_GRAPH_CLIENT_ID/_SECRET)."),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    wait: Annotated[bool, typer.Option(help="Keep running while devices wait for users.")] = True,
    lease_seconds: LeaseOption = 60.0,
    work: Annotated[
        bool,
        typer.Option(
            help="On a shared (PostgreSQL) store: also visit devices from this host. --no-work plans the wave and "
            "follows it while `migrator worker` processes work it (a planning host that reaches no device)."
        ),
    ] = True,
) -> None:
    """Run a wave: canary, batches, failure budget, approvals and change windows; resumable.

    Example: migrator run -i inventory.yaml --limit pilot --canary 2 --batch-size 25 --change-ticket CHG0042
    """
    credentials = load_credentials_or_fail(secrets)
    if not work and not choose_store(store_url, state).location.startswith("postgresql"):
        raise fail(
            "--no-work needs a shared store (--store postgresql://... or $MIGRATOR_STORE): on SQLite `run` works "
            "its wave itself"
        )
    request = WaveRequest(
        inventory=inventory,
        playbook=playbook,
        limit=limit,
        wave=wave,
        batch_size=batch_size,
        concurrency=concurrency,
        max_fail_percent=max_fail_percent,
        canary=canary,
        change_ticket=change_ticket,
        approval=approval,
        windows=tuple(window or ()),
        entra_kerberos=_parse_entra_kerberos(entra_kerberos or []),
    )
    try:  # bad input is refused before the store is opened (or created): it stays byte-identical
        inputs = load_wave_inputs(request, secrets_file=secrets)
    except (InputFileError, MigratorError) as err:
        raise fail(str(err)) from None
    store = open_command_store(store_url, state)
    with _driving(store):
        start_logging(state, [credentials.password.get_secret_value()])
        try:
            plan = plan_wave(
                store,
                request,
                credentials,
                RealClock(),
                inputs=inputs,
                wait_for_waiting=wait,
                lease_seconds=lease_seconds,
                secrets_file=secrets,
                with_runner=not _shared(store),  # a shared store's waves are visited by workers, each its own runner
            )
        except (InputFileError, MigratorError) as err:
            raise fail(str(err)) from None
        warn_insecure(plan.insecure, "run", plan.name)
        warn_directory(plan.directory, "run")
        devices = plan.wave.devices
        if not yes:
            console.print(
                f"wave {plan.name}: {len(devices)} devices, playbook {plan.playbook.name}, "
                f"change ticket {change_ticket or '-'}",
                markup=False,
                highlight=False,
            )
            if not typer.confirm("Start?", default=False):
                plan.close()
                raise typer.Exit(EXIT_OPERATOR)
        if _shared(store):
            # PostgreSQL: the wave is worked by workers (this process is one), so `migrator worker` processes on other
            # hosts or sites can join it; the coordinator among them keeps its canary, batches, budget and gates.
            StoreWaves(store, credentials.username).set_wave_state(plan.name, "running", "run")
            if work:
                results = _work(
                    store, credentials, [plan], concurrency=concurrency, wait=wait, lease_seconds=lease_seconds,
                    secrets=secrets,
                )  # fmt: skip
            else:
                results = _follow(store, [plan], wait=wait)
        else:
            results = run_with_progress([plan.runner])
        code = recap(results)
        warn_gpo_overwrites(store, results)
        anchor_audit_head(store)
        raise typer.Exit(code)


@contextmanager
def _driving(store: Store) -> Iterator[None]:
    """Hold the store's run lock while ``run`` or ``resume`` works: on SQLite a worker and a run of the same store
    refuse each other (both would open batches and keep gates for the same waves). Refused: bad input, exit 2,
    before anything is recorded."""
    lock = store.run_lock()
    if not lock.lead():
        raise fail(
            f"a `migrator worker` works the SQLite store {store.where}: on SQLite the worker drives every running "
            "wave of the store, so `run` and `resume` cannot while it runs (stop it, or share a PostgreSQL store: "
            "--store postgresql://...)"
        )
    try:
        yield
    finally:
        lock.close()


def _shared(store: Store) -> bool:
    """Whether waves in this store are worked by workers (PostgreSQL) rather than by one run's process (SQLite)."""
    return store.engine.dialect.name == "postgresql"


def _work(
    store: Store,
    credentials: Credentials,
    plans: Sequence[WavePlan],
    *,
    concurrency: int,
    wait: bool,
    lease_seconds: float,
    secrets: Path | None,
) -> list[WaveResult]:
    """``run``/``resume`` on PostgreSQL: work the planned waves as one worker serving every site until they end
    (:func:`waves_ended`), then read their results from the store."""
    clock = RealClock()
    worker, kits = build_worker(
        store, credentials, clock, concurrency=concurrency, lease_seconds=lease_seconds, secrets_file=secrets
    )
    names = [plan.name for plan in plans]
    for plan in plans:
        # The plan has no runner here (the worker is this process's): what planning opened (Graph) is closed; the
        # worker's kit opens what this process's visits and, when it coordinates, the group changes need.
        plan.close()
        kits.preload(plan.name, plan.inventory, plan.playbook, plan.directory)
    with _stop_on_signals(worker):
        worker.run(until=waves_ended(store, names, clock, wait=wait))
    return [wave_result(store, name) for name in names]


def _follow(store: Store, plans: Sequence[WavePlan], *, wait: bool, interval: float = 1.0) -> list[WaveResult]:
    """``run --no-work``: the waves are planned and running; show their progress from the store until they end
    (:func:`waves_ended`, as when this process works them too) while `migrator worker` processes visit the devices.
    Ctrl-C stops following; the waves go on."""
    for plan in plans:
        plan.close()  # nothing is visited from here: close what planning opened
    names = [plan.name for plan in plans]
    console.print(
        f"following {', '.join(names)}: `migrator worker` processes visit the devices (`migrator status` shows sites "
        "without a live worker); Ctrl-C stops following, the wave goes on",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    ended = waves_ended(store, names, RealClock(), wait=wait)
    progress = _wave_progress()
    stop = threading.Event()

    def interrupted(_signum: int, _frame: object) -> None:
        stop.set()

    previous = {number: signal.signal(number, interrupted) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        with progress:
            tasks = {name: progress.add_task(escape(name), total=None, states="") for name in names}
            while not stop.is_set():
                for name, task in tasks.items():
                    states = store.counts(wave=name)  # counted by the database: a follower reads no rows
                    progress.update(
                        task,
                        total=sum(states.values()),
                        completed=sum(n for s, n in states.items() if s in SETTLED),
                        states=" ".join(f"{k}={v}" for k, v in sorted(states.items())),
                    )
                if ended():
                    break
                stop.wait(interval)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return [wave_result(store, name) for name in names]


@contextmanager
def _stop_on_signals(worker: Worker) -> Iterator[None]:
    """SIGTERM (systemd's stop) and SIGINT: start nothing new, let running visits stop at their next safe point,
    hand every device back, then return."""

    def stop(_signum: int, _frame: object) -> None:
        worker.stopping.set()

    previous = {number: signal.signal(number, stop) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


SiteOption = Annotated[
    list[str] | None,
    typer.Option(
        "--site",
        metavar="NAME",
        help="Serve only the devices of this inventory site (repeat for several). Default: every device, "
        "whatever its site, devices without a site included.",
    ),
]


@commands.command("worker")
def worker_command(
    site: SiteOption = None,
    concurrency: Annotated[int, typer.Option(min=1, max=512, help="Devices visited at once.")] = 16,
    state: StateOption = Path("state"),
    store_url: StoreOption = None,
    secrets: Annotated[Path | None, typer.Option(help="KEY=value file with MIGRATOR_USERNAME/PASSWORD.")] = None,
    lease_seconds: LeaseOption = 60.0,
    drain: Annotated[
        bool, typer.Option("--drain", help="Stop at the first loop with nothing to visit (a cron job, a test).")
    ] = False,
) -> None:
    """Work the waves of a shared store: claim due devices (of --site only), visit them; coordinate if elected.

    Any number of workers, on any hosts, share one PostgreSQL store; one of them at a time is the wave coordinator
    (canary, batches, failure budget, approvals). On SQLite, one worker process per store. Stops on SIGTERM.

    Example: migrator worker --store postgresql://migrator@db/migrator --site paris --secrets /etc/migrator/secrets
    """
    credentials = load_credentials_or_fail(secrets)
    sites = tuple(site or ())
    try:
        for name in sites:
            check_site(name)
    except InputError as err:
        raise fail(str(err)) from None
    store = open_command_store(store_url, state, create=False)
    start_logging(state, [credentials.password.get_secret_value()])
    worker, _kits = build_worker(
        store,
        credentials,
        RealClock(),
        sites=sites,
        concurrency=concurrency,
        lease_seconds=lease_seconds,
        secrets_file=secrets,
    )
    if not _shared(store) and not worker.leading:
        raise fail(
            f"another migrator process works the SQLite store {store.where} (a `migrator worker`, or `run` or "
            "`resume`): SQLite serves one worker process per store, and none beside a run (several workers share a "
            "PostgreSQL store: --store postgresql://...)"
        )
    console.print(
        f"worker {worker.owner}: serving {', '.join(sites) or 'every site'} of {store.where}, {concurrency} at once "
        f"({'wave coordinator' if worker.leading else 'another worker coordinates'}); SIGTERM stops it",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    with _stop_on_signals(worker):
        worker.run(until=(lambda: True) if drain else None)
    console.print(f"worker {worker.owner}: stopped after {worker.visits} visits", markup=False, highlight=False)
    raise typer.Exit(EXIT_OK)


@commands.command("resume")
def resume(
    state: StateOption = Path("state"),
    store_url: StoreOption = None,
    secrets: Annotated[
        Path | None,
        typer.Option(help="KEY=value file with MIGRATOR_USERNAME/PASSWORD (and MIGRATOR_GRAPH_CLIENT_ID/_SECRET)."),
    ] = None,
    wait: Annotated[bool, typer.Option(help="Keep running while devices wait for users.")] = True,
    lease_seconds: LeaseOption = 60.0,
) -> None:
    """Pick up every unfinished wave in the store (after a crash, a pause, an approval or a reboot).

    Example: migrator resume --state ./state --secrets lab-secrets.env
    """
    credentials = load_credentials_or_fail(secrets)
    store = open_command_store(store_url, state, create=False)
    with _driving(store):
        start_logging(state, [credentials.password.get_secret_value()])
        try:
            plans = resumable_waves(
                store,
                credentials,
                RealClock(),
                wait_for_waiting=wait,
                lease_seconds=lease_seconds,
                secrets_file=secrets,
                with_runner=not _shared(store),
            )
        except (InputFileError, MigratorError) as err:
            raise fail(str(err)) from None
        if not plans:
            console.print("nothing to resume: every wave in the store is completed")
            raise typer.Exit(EXIT_OK)
        for plan in plans:
            warn_insecure(plan.insecure, "resume", plan.name)
            warn_directory(plan.directory, "resume")
        for plan in plans:
            # Parked devices resume continues by itself (the table's `resumes`): say which, and why they were parked.
            name = plan.name
            for row in store.list_devices(wave=name, states=DEVICE_RESUMED):
                why = escape(row.last_error or "no reason recorded")
                console.print(f"{escape(name)}: retrying {escape(row.name)} ({row.state}: {why})", highlight=False)
        # A dead worker's leases on this host are taken over at the first visit; the others are waited for.
        for lease in store.leases():
            if lease.liveness != "dead":
                console.print(lease_line(lease), markup=False, highlight=False, soft_wrap=True)
        if _shared(store):
            for plan in plans:  # parked devices resume continues: due now, for whichever worker claims them first
                store.make_due(plan.name, DEVICE_RESUMED)
            concurrency = max(p.wave.concurrency for p in plans)
            results = _work(
                store,
                credentials,
                plans,
                concurrency=concurrency,
                wait=wait,
                lease_seconds=lease_seconds,
                secrets=secrets,
            )
        else:
            results = run_with_progress([p.runner for p in plans])
        code = recap(results)
        warn_gpo_overwrites(store, results)
        anchor_audit_head(store)
        raise typer.Exit(code)


def _operator(store: str | None, state: Path) -> StoreWaves:
    return StoreWaves(open_command_store(store, state, create=False), getpass.getuser())


ReasonOption = Annotated[str, typer.Option("--reason", help="Why (recorded in the audit log with who).")]


@commands.command("pause")
def pause(
    wave: Annotated[str, typer.Option(help="The wave to pause.")],
    state: StateOption = Path("state"),
    store_url: StoreOption = None,
    reason: ReasonOption = "",
) -> None:
    """Pause a wave: no new device starts; running visits stop at their next safe point.

    Example: migrator pause --wave wave-2 --reason "helpdesk calls from site B"
    """
    try:
        _operator(store_url, state).pause(wave, reason.strip())
    except MigratorError as err:
        raise fail(str(err)) from None
    console.print(f"wave {wave} paused; `migrator resume` continues it", markup=False, highlight=False)


@commands.command("approve")
def approve(
    wave: Annotated[str, typer.Option(help="The wave whose next batch is approved.")],
    state: StateOption = Path("state"),
    store_url: StoreOption = None,
    reason: ReasonOption = "",
) -> None:
    """Approve the next batch of a wave that stopped at its approval gate (recorded in the audit log).

    Example: migrator approve --wave wave-2 --reason "CAB approved batch 2" && migrator resume
    """
    try:
        count = _operator(store_url, state).approve(wave, reason.strip())
    except MigratorError as err:
        raise fail(str(err)) from None
    console.print(
        f"wave {wave}: {count} batch gate(s) approved; run `migrator resume` to continue", markup=False, highlight=False
    )


@commands.command("plan")
def plan_command(
    inventory: Annotated[Path, typer.Option("--inventory", "-i", help="Inventory file (YAML or CSV).")],
    playbook: Annotated[str | None, typer.Option(help="Playbook file or shipped name.")] = None,
    limit: Annotated[str | None, typer.Option(help="Groups/names (comma-separated).")] = None,
    secrets: Annotated[
        Path | None,
        typer.Option(help="KEY=value file with MIGRATOR_USERNAME/PASSWORD (and MIGRATOR_GRAPH_CLIENT_ID/_SECRET)."),
    ] = None,
    entra_kerberos: Annotated[list[str] | None, typer.Option(help="DOMAIN=yes|no.")] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=512)] = 16,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Read-only: per device the path, the steps it would run and what would change (like `terraform plan`).

    Example: migrator plan -i inventory.yaml --limit pilot --secrets lab-secrets.env
    """
    credentials = load_credentials_or_fail(secrets)
    try:
        inv = load_inventory(inventory)
        book = load_playbook(playbook)
        devices = inv.select(limit)
        insecure = insecure_devices(inv, devices)
        # Once, before any device: Entra Kerberos per domain and who it never serves (--entra-kerberos wins).
        directory = read_directory(inv, credentials, devices=[d.name for d in devices], secrets_file=secrets)
        # A group channel's groups and device objects exist, or the plan says which not.
        preflight_channel(
            book,
            inv,
            credentials,
            [d.name for d in devices],
            knowledge=directory,
            overrides=_parse_entra_kerberos(entra_kerberos or []),
            secrets_file=secrets,
        )
    except (InputFileError, MigratorError) as err:
        raise fail(str(err)) from None
    warn_insecure(insecure, "plan")
    announce_failures(directory, command="plan", say=lambda text: err_console.print(text, markup=False))
    settings = directory.path_settings(_parse_entra_kerberos(entra_kerberos or []))
    outcomes = probe_devices(inv, devices, credentials, settings, concurrency=concurrency)
    rows: list[dict[str, Any]] = []
    for outcome in outcomes:
        row: dict[str, Any] = {"name": outcome.name, "path": outcome.path, "reasons": list(outcome.reasons)}
        if outcome.error is not None or outcome.facts is None:
            row["error"] = str(outcome.error)
        else:
            follows = book.path in ("auto", outcome.path)
            row["steps"] = list(book.steps) if follows and outcome.path in ("key", "cert") else []
            row["changes"] = [asdict(c) for c in policy_plan(outcome.facts, book)] if row["steps"] else []
            row["users"] = [u.name for u in outcome.facts.users if u.has_hello]
        rows.append(row)
    if as_json:
        typer.echo(json.dumps({"playbook": book.name, "devices": rows}, indent=2, default=str))
        return
    table = Table(title=f"plan: playbook {book.name}")
    for column in ("device", "path", "users with a container", "would change", "notes"):
        table.add_column(column)
    for row in rows:
        changes = "; ".join(f"{c['name']}={'removed' if c['remove'] else c['value']}" for c in row.get("changes", []))
        notes = row.get("error") or "; ".join(row["reasons"])
        cells = (row["name"], row["path"], ", ".join(row.get("users", [])), changes, notes)
        table.add_row(*(Text(str(cell)) for cell in cells))  # device values, printed literally
    console.print(table)
    counts = Counter(r["path"] for r in rows)
    console.print("paths: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())), highlight=False)
