"""Chaos harness: the lab and the virtual clock in the test process, the wave engine in a child process.

Theory of operation
-------------------
The parent owns the lab (devices on fresh 127.x.y.z addresses, one free port), its virtual clock and a read
handle on the store. The child (:mod:`tests.chaos.child`) runs the real wave engine and asks the parent for every
``now`` and ``sleep``, so time moves only when the orchestrator waits. Each question is also the parent's moment
to act, which makes a schedule replay the same way (with concurrency 1; two visit threads interleave as the OS
schedules them):

* **faults at states**: the parent reads the store at each question and, when a trigger's device (and user) is
  in the trigger's state, adds the :class:`FaultRule` to the lab's :class:`FaultPlan`: the device's next
  requests meet it. Waiting states are seen between rechecks, active ones between two steps of a visit;
* **timed events** (DC/VPN flaps, pauses through :class:`StoreWaves`, devices coming back after ``offline`` or
  ``reboot``, the end of the chaos window) run when a ``sleep`` carries virtual time past them;
* **kills**: a child is started with ``MIGRATOR_CRASH_AT`` (it SIGKILLs itself at that journal commit), or the
  parent SIGKILLs it at its n-th question (a moment inside a visit or a wait); either way the parent lets the
  restart delay pass and starts a new child that runs ``resume``.

Down time is virtual: :class:`ChaosLabServer` does not sleep through an ``offline`` or ``reboot`` fault, it asks
the parent to bring the device back when virtual time reaches the end of it; ``latency`` and ``slow`` make
virtual time pass (the request took that long). A ``reboot`` also reboots the simulated Windows (sessions end,
people sign in again later).

When the chaos window ends every fault is cleared, every device is online and sees its DCs, and the parent
answers ``resume`` until nothing is left to resume (bounded in rounds and virtual days). Then it reads the store,
the status view and the lab's truth (:class:`Outcome`), and runs one more ``resume`` without waiting (the
probe) to see which devices resume would pick up.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import heapq
import itertools
import os
import random
import secrets
import signal
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.dialects import sqlite as sqlite_dialect

from migrator.engine.service import WaveRequest
from migrator.engine.wavestore import StoreWaves
from migrator.errors import MigratorError
from migrator.lab.clock import VirtualClock
from migrator.lab.model import Device, Fleet, User
from migrator.lab.runtime import new_lab
from migrator.lab.server import Account, BackgroundLab, FaultPlan, LabServer
from migrator.lab.server.faults import FaultRule
from migrator.lab.truth import fleet_truth
from migrator.lab.windows import ADMIN_SID, Lab
from migrator.playbook import load_playbook
from migrator.report.model import StatusView, collect_status
from migrator.store import AuditReport, DeviceRow, Store, TransitionRow, UserRow, WaveRow
from migrator.store.schema import devices, users
from migrator.store.store import DB_FILE_NAME
from tests.chaos.child import ChildSetup, child_main
from tests.chaos.schedule import Schedule, build_fleet
from tests.chaos.states import DEVICE_FINAL
from tests.forkserver import forkserver_context

_context = forkserver_context("migrator.engine.service", "tests.chaos.child")

ENTRA_KERBEROS = {  # what the admin knows: Set-AzureADKerberosServer ran in CORP and EMEA only
    "corp.contoso.com": True,
    "CORP": True,
    "emea.corp.contoso.com": True,
    "EMEA": True,
    "fabrikam.local": False,
    "FABRIKAM": False,
}
SETTLE_SECONDS = 8 * 86400.0  # after the chaos window: virtual time allowed for resume to finish
SETTLE_ROUNDS = 12  # ... and resume commands
MAX_COMMANDS = 80  # commands sent to children in one run (a loop that makes no progress ends here)
OPERATOR = "chaos-operator"
LEASE_GRACE = 180.0  # virtual seconds after a restart by which a killed orchestrator's leases must be gone


# ---- the lab ------------------------------------------------------------------------------------------------


class VirtualLabClock:
    """The lab server's fault clock on the virtual clock: a ``latency`` or ``slow`` fault makes time pass."""

    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock
        self._epoch = clock.now()

    def monotonic(self) -> float:
        return (self._clock.now() - self._epoch).total_seconds()

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._clock.advance(seconds)


class ChaosLabServer(LabServer):
    """A :class:`LabServer` whose ``offline`` and ``reboot`` faults are deterministic and whose down time is virtual.

    The base class schedules them on its loop, so a quick retry may or may not slip in before the listeners close,
    and sleeps through the down time. Here the device stops listening and loses its connections before the faulted
    request is answered, the parent is told when to bring it back (virtual time), and :meth:`bring_online` first
    waits for the rest of the going-down (closing, and for a reboot dropping every shell) to finish."""

    def __init__(self, *args: Any, lab: Lab, comes_back: Callable[[str, float], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lab = lab
        self._comes_back = comes_back
        self._down: dict[str, asyncio.Event] = {}

    def _go_down(self, name: str, down_for: float, *, reboot: bool) -> Coroutine[Any, Any, None]:
        """Called on the server's loop, inside the faulted request: stop listening and cut connections now."""
        device = self.devices[name]
        device.online = False
        for server in device.servers:
            server.close()
        for connection in list(device.connections):
            connection.writer.transport.abort()
        done = self._down[name] = asyncio.Event()
        self._comes_back(name, down_for)

        async def finish() -> None:
            try:
                await self._close_listeners(device)
                if reboot:
                    await device.service.reset()
            finally:
                done.set()

        return finish()

    def take_offline(self, name: str, duration: float | None = None) -> Coroutine[Any, Any, None]:  # type: ignore[override]
        return self._go_down(name, duration or 0.0, reboot=False)

    def reboot(self, name: str, down_for: float = 0.0) -> Coroutine[Any, Any, None]:  # type: ignore[override]
        self._lab.reboot(self._lab.device(name))  # Windows restarts too: sessions end, people sign in later
        return self._go_down(name, down_for, reboot=True)

    async def bring_online(self, name: str) -> None:
        done = self._down.pop(name, None)
        if done is not None:
            await done.wait()
        await super().bring_online(name)


def _free_block(count: int) -> tuple[list[str], int]:
    """``count`` loopback addresses in a random 127.x.y.0/24 and a port free on all of them."""
    rng = random.SystemRandom()
    for _ in range(20):
        prefix = f"127.{rng.randint(100, 254)}.{rng.randint(0, 255)}"
        addresses = [f"{prefix}.{index + 2}" for index in range(count)]
        probes: list[socket.socket] = []
        try:
            first = socket.socket()
            probes.append(first)
            first.bind((addresses[0], 0))
            port = first.getsockname()[1]
            for address in addresses[1:]:
                probe = socket.socket()
                probes.append(probe)
                probe.bind((address, port))
            return addresses, port
        except OSError:
            continue
        finally:
            for probe in probes:
                probe.close()
    raise RuntimeError("no free loopback block found")


@dataclass
class LabHandle:
    fleet: Fleet
    clock: VirtualClock
    lab: Lab
    server: ChaosLabServer
    background: BackgroundLab
    password: str
    port: int

    @property
    def username(self) -> str:
        return f"{self.fleet.admin.domain}\\{self.fleet.admin.username}"


def start_lab(fleet: Fleet, work: Path, comes_back: Callable[[str, float], None]) -> LabHandle:
    """The fleet's lab on fresh addresses and a free port (retried if another process takes them meanwhile)."""
    for attempt in itertools.count():
        addresses, port = _free_block(len(fleet.devices))
        for device, address in zip(fleet.devices, addresses, strict=True):
            device.address = address
        clock = VirtualClock(fleet.clock)
        lab = new_lab(fleet, clock)
        password = secrets.token_urlsafe(18)
        server = ChaosLabServer(
            lab.executor,
            work,
            http_port=port,
            https_port=None,
            faults=FaultPlan(),
            clock=VirtualLabClock(clock),
            lab=lab,
            comes_back=comes_back,
        )
        admin = fleet.admin
        account = Account(username=admin.username, password=password, sid=ADMIN_SID, domain=admin.domain)
        for device in fleet.devices:
            server.add_device(device.name, device.address, [account], computer_name=device.name, hostname=device.fqdn)
        background = BackgroundLab(server)
        try:
            background.start()
        except OSError as err:
            background.stop()
            if err.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL) and attempt < 5:
                continue
            raise
        lab.start_simulation()
        return LabHandle(fleet, clock, lab, server, background, password, port)
    raise AssertionError("unreachable")  # pragma: no cover


def write_inputs(schedule: Schedule, kit: LabHandle, work: Path) -> tuple[Path, Path]:
    """The inventory (plain HTTP to the lab's port) and the playbook (short waits) the waves are planned from."""
    inventory = work / "inventory.yaml"
    devices = [
        {"name": d.name, "address": d.address, **({"domain": d.domain} if d.domain else {})} for d in kit.fleet.devices
    ]
    inventory.write_text(
        yaml.safe_dump(
            {"defaults": {"transport": "psrp", "scheme": "http", "port": kit.port, "auth": "ntlm"}, "devices": devices}
        ),
        encoding="utf-8",
    )
    book = load_playbook("to-cloud-kerberos").model_dump(mode="json")
    w = schedule.waits
    waits: dict[str, Any] = {
        "recheck_every": w.recheck_every,
        "user_deadline": w.user_deadline,
        "dc_deadline": w.dc_deadline,
        "reprovision_deadline": w.reprovision_deadline,
        "unreachable_deadline": w.unreachable_deadline,
    }
    book.update(name="chaos", waits=waits, retries={"attempts": 3, "initial_wait": 1, "max_wait": 5, "total": 60})
    book["prompt"]["remind_after"] = w.remind_after
    playbook = work / "chaos.yaml"
    playbook.write_text(yaml.safe_dump(book, sort_keys=False), encoding="utf-8")
    return inventory, playbook


# ---- what a run leaves ------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What the invariants read: the store at the end, the status view, the lab's truth and the run's log."""

    schedule: Schedule
    work: Path
    started: datetime
    devices: list[DeviceRow] = field(default_factory=list)
    users: dict[str, list[UserRow]] = field(default_factory=dict)
    transitions: dict[str, list[TransitionRow]] = field(default_factory=dict)
    waves: list[WaveRow] = field(default_factory=list)
    status: StatusView | None = None
    audit: AuditReport | None = None
    truth: dict[str, Any] = field(default_factory=dict)
    truth_after_probe: dict[str, Any] = field(default_factory=dict)
    cloud_since: dict[tuple[str, str], datetime] = field(default_factory=dict)  # (device, sid) -> first seen
    probe_visited: set[str] | None = None
    crashes: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    kills: int = 0
    settled: bool = False
    hung: str | None = None
    # (device, what): leases of a killed orchestrator that outlived LEASE_GRACE after the restart
    lease_holds: list[tuple[str, str]] = field(default_factory=list)
    armed: list[tuple[str, str]] = field(default_factory=list)  # (fault kind, device state) of each fault armed
    seconds: float = 0.0
    questions: int = 0  # clock questions the orchestrator asked
    executions: int = 0  # commands and pipelines the lab ran
    cpu_seconds: float = 0.0  # the test process's and the orchestrators' (those that exited, not killed)

    def offset(self, moment: datetime) -> str:
        return f"+{(moment - self.started).total_seconds() / 3600:.2f}h"


def _is_cloud(device: Device, user: User) -> bool:
    """The lab's truth: the user's container is cloud trust, or their session holds a cloud Kerberos ticket."""
    session = device.session_of(user)
    container = user.container
    return (container is not None and container.trust == "cloud") or (session is not None and session.cloud_tgt)


# ---- the run ------------------------------------------------------------------------------------------------


@dataclass(order=True)
class _Timed:
    at: datetime
    seq: int
    label: str = field(compare=False)
    action: Callable[[], None] = field(compare=False)


class StateWatcher:
    """The devices' and users' states, read at every clock question: a plain read-only SQLite connection that
    re-reads only when another connection committed (``PRAGMA data_version``), so watching costs microseconds."""

    def __init__(self, database: Path) -> None:
        self._db = sqlite3.connect(f"file:{database}?mode=ro", uri=True, check_same_thread=False)
        dialect = sqlite_dialect.dialect()
        self._devices = str(select(devices.c.name, devices.c.state).compile(dialect=dialect))
        joined = users.join(devices, users.c.device_id == devices.c.id)
        self._users = str(select(devices.c.name, users.c.state).select_from(joined).compile(dialect=dialect))
        self._version: int | None = None
        self._states: dict[str, tuple[str, frozenset[str]]] = {}

    def states(self) -> dict[str, tuple[str, frozenset[str]]]:
        """Device -> (its state, its users' states)."""
        version = self._db.execute("PRAGMA data_version").fetchone()[0]
        if version != self._version:
            self._version = version
            per_user: dict[str, set[str]] = {}
            for device, state in self._db.execute(self._users):
                per_user.setdefault(device, set()).add(state)
            self._states = {
                device: (state, frozenset(per_user.get(device, ())))
                for device, state in self._db.execute(self._devices)
            }
        return self._states

    def close(self) -> None:
        self._db.close()


class _Killed(Exception):
    """The child is gone (SIGKILL, by itself or by the parent)."""


class _Stop(Exception):
    """The run is over (settled, out of budget, or hung)."""


class ChaosRun:
    """One schedule against one lab (see the module docstring)."""

    def __init__(self, schedule: Schedule, work: Path, *, real_seconds: float = 150.0) -> None:
        self.schedule = schedule
        self.work = work
        self.real_seconds = real_seconds
        self._seq = itertools.count()
        self._timed: list[_Timed] = []
        self._returns: list[tuple[str, float]] = []  # (device, down for) from the lab's loop thread
        self._returns_lock = threading.Lock()
        self._cloud_lock = threading.Lock()
        self.phase = "chaos"
        self.pending = list(schedule.triggers)
        self.paused_until: datetime | None = None
        self.fleet = build_fleet(schedule)
        self.kit: LabHandle | None = None
        self.store: Store | None = None
        self.watcher: StateWatcher | None = None
        self.outcome: Outcome | None = None
        self._deadline_real = 0.0
        self._errors_seen: set[str] = set()
        self._lease_checks: list[tuple[datetime, dict[str, tuple[str, datetime]]]] = []

    # ---- clock and events --------------------------------------------------------------------------------

    @property
    def lab(self) -> LabHandle:
        assert self.kit is not None
        return self.kit

    def now(self) -> datetime:
        return self.lab.clock.now()

    def note(self, text: str) -> None:
        assert self.outcome is not None
        self.outcome.log.append(f"{self.outcome.offset(self.now())} {text}")

    def at(self, moment: datetime, label: str, action: Callable[[], None]) -> None:
        heapq.heappush(self._timed, _Timed(moment, next(self._seq), label, action))

    def _comes_back(self, device: str, down_for: float) -> None:
        with self._returns_lock:
            self._returns.append((device, down_for))

    def _take_returns(self) -> None:
        with self._returns_lock:
            returns, self._returns = self._returns, []
        for device, down_for in returns:
            self.note(f"{device} is down for {down_for / 3600:.2f}h")
            self.at(self.now() + timedelta(seconds=down_for), f"{device} back online", self._online(device))

    def _online(self, device: str) -> Callable[[], None]:
        def back() -> None:
            self.lab.background.call(self.lab.server.bring_online(device))

        return back

    def advance(self, seconds: float) -> None:
        """Move virtual time on by ``seconds``, running the timed events that fall due on the way, in order."""
        target = self.now() + timedelta(seconds=max(0.0, seconds))
        self.run_due()
        while self._timed and self._timed[0].at <= target:
            event = heapq.heappop(self._timed)
            if event.at > self.now():
                self.lab.clock.advance_to(event.at)
            self.note(event.label)
            event.action()
            self._take_returns()
        if target > self.now():
            self.lab.clock.advance_to(target)
        self.run_due()

    def run_due(self) -> None:
        self._take_returns()
        while self._timed and self._timed[0].at <= self.now():
            event = heapq.heappop(self._timed)
            self.note(event.label)
            event.action()
            self._take_returns()

    # ---- chaos -------------------------------------------------------------------------------------------

    def _observe_cloud(self, *_: Any) -> None:
        assert self.outcome is not None
        now = self.now()
        with self._cloud_lock:
            for device in self.lab.fleet.devices:
                for user in device.users:
                    key = (device.name, user.sid)
                    if key not in self.outcome.cloud_since and _is_cloud(device, user):
                        self.outcome.cloud_since[key] = now

    def _flap(self, device: str, reachable: bool) -> Callable[[], None]:
        def flap() -> None:
            if self.phase == "chaos":
                self.lab.lab.set_dc_reachable(self.lab.lab.device(device), reachable)

        return flap

    def _pause(self, wave: str, hold: float) -> Callable[[], None]:
        def pause() -> None:
            assert self.store is not None
            try:
                StoreWaves(self.store, OPERATOR).pause(wave)
            except MigratorError as err:
                self.note(f"  pause of {wave} not possible: {err}")
                return
            until = self.now() + timedelta(seconds=hold)
            self.paused_until = max(self.paused_until or until, until)

        return pause

    def _end_chaos(self) -> None:
        """The chaos window is over: no more faults, every device online and in sight of its DCs."""
        self.phase = "settle"
        self.lab.server.faults.clear()
        self.pending.clear()
        self.paused_until = None
        for device in self.lab.fleet.devices:
            self.lab.background.call(self.lab.server.bring_online(device.name))
            self.lab.lab.set_dc_reachable(device, True)
        self._timed = [e for e in self._timed if "back online" not in e.label]
        heapq.heapify(self._timed)

    def _arm_triggers(self) -> None:
        if not self.pending or self.phase != "chaos":
            return
        assert self.watcher is not None and self.outcome is not None
        states = self.watcher.states()
        for trigger in list(self.pending):
            state, user_states = states.get(trigger.device, ("", frozenset()))  # not enrolled yet: no state
            if state != trigger.state or (trigger.user_state is not None and trigger.user_state not in user_states):
                continue
            self.pending.remove(trigger)
            rule = FaultRule(
                kind=trigger.kind,  # type: ignore[arg-type]
                devices=[trigger.device],
                actions=list(trigger.actions),
                count=trigger.count,
                after=trigger.after,
                duration=trigger.duration,
                delay=trigger.delay,
            )
            self.lab.server.faults.add(rule)
            self.outcome.armed.append((trigger.kind, trigger.state))
            self.note(f"armed {trigger.describe()}")

    # ---- children ----------------------------------------------------------------------------------------

    def _setup(self, crash_at: int | None) -> ChildSetup:
        return ChildSetup(
            store=self.work / "state",
            username=self.lab.username,
            password=self.lab.password,
            seed=self.schedule.seed,
            crash_at=crash_at,
            log_dir=self.work / "logs",
        )

    def _serve(self, pipe: Pipe, process: Any, kill_at: int | None, first: tuple[Any, ...]) -> None:
        """Answer one child until it is killed (raises :class:`_Killed`) or the run ends (:class:`_Stop`)."""
        assert self.outcome is not None
        outcome = self.outcome
        questions = 0
        counting = False  # moments count once a wave runs (not while one is being created and enrolled)
        crashed = False
        command = first
        pipe.send(command)
        commands = 0
        while True:
            if time.monotonic() > self._deadline_real:
                os.kill(process.pid, signal.SIGKILL)
                process.join(10)
                outcome.hung = f"no end after {self.real_seconds:.0f} real seconds (last command {command[0]})"
                raise _Stop
            if not pipe.poll(0.05):
                if not process.is_alive():
                    break
                continue
            try:
                message = pipe.recv()
            except (EOFError, OSError):
                break
            kind = message[0]
            if kind in ("now", "sleep"):
                outcome.questions += 1
                if counting:
                    questions += 1
                if kill_at is not None and questions == kill_at and self.phase == "chaos":
                    os.kill(process.pid, signal.SIGKILL)
                    process.join(10)
                    self.note(f"SIGKILL of the orchestrator at its clock question #{questions}")
                    raise _Killed
                self._observe_cloud()
                if kind == "sleep":
                    self.advance(message[1])
                else:
                    self.run_due()
                self._arm_triggers()
                if self.phase == "settle" and self.now() > self._settle_until:
                    os.kill(process.pid, signal.SIGKILL)
                    process.join(10)
                    self.note("the settle budget of virtual time is used up: the orchestrator is stopped")
                    raise _Stop
                pipe.send(self.now())
            elif kind == "started":
                counting = True
                if command[0] == "plan":  # created and enrolled: after a kill, `resume` picks it up
                    self._to_plan.pop(0)
            elif kind == "crashed":
                crashed = True
                outcome.crashes.append(message[1])
                self.note("the orchestrator raised: " + message[1].strip().splitlines()[-1])
            elif kind == "ran":
                results, visits = message[1], message[2]
                visited = {device for device, _, _ in visits}
                for device, state, error in visits:
                    if error and f"{device} {state}: {error}" not in self._errors_seen:
                        self._errors_seen.add(f"{device} {state}: {error}")
                        self.note(f"  the engine saw {device} end a visit {state}: {error}")
                self.note(
                    f"{command[0]} ended: "
                    + (", ".join(f"{w} {s}{' (' + r + ')' if r else ''}" for w, s, r in results) or "nothing to resume")
                    + f"; visited {len(visited)} device(s)"
                )
                if command == ("resume", False):
                    outcome.probe_visited = visited
                    self._dismiss(pipe, process)
                    raise _Stop
                commands += 1
                if self.phase == "settle":
                    self._settle_rounds += 1
                    if not results or self._settle_rounds > SETTLE_ROUNDS:
                        outcome.settled = not results
                        self._dismiss(pipe, process)
                        raise _Stop
                if commands > MAX_COMMANDS:
                    self.note("too many commands: stopping")
                    self._dismiss(pipe, process)
                    raise _Stop
                command = self._next_command(nothing_left=not results)
                counting = command[0] == "resume"
                pipe.send(command)
        process.join(10)
        if process.exitcode != -signal.SIGKILL and not crashed:
            outcome.crashes.append(f"the orchestrator process exited with code {process.exitcode}")
        raise _Killed  # SIGKILLed, or crashed on its own (reported): restarted either way

    def _dismiss(self, pipe: Pipe, process: Any) -> None:
        """Let the child exit; add the CPU time it reports."""
        assert self.outcome is not None
        pipe.send(("exit",))
        if pipe.poll(30):
            with contextlib.suppress(EOFError, OSError):
                kind, seconds = pipe.recv()
                if kind == "bye":
                    self.outcome.cpu_seconds += seconds
        process.join(30)

    def _next_command(self, *, nothing_left: bool = False) -> tuple[Any, ...]:
        """What the operator does next: plan the next wave, or resume (after holding a pause)."""
        if self.phase == "chaos":
            if self.paused_until is not None and self.now() < self.paused_until:
                self.advance((self.paused_until - self.now()).total_seconds())  # the operator resumes later
            self.paused_until = None
            if not self._to_plan and nothing_left:  # everything finished early: go on to the end
                self.advance((self._chaos_end - self.now()).total_seconds())
        if self._to_plan and self.phase == "chaos":
            return ("plan", self._to_plan[0], self.schedule.run_waits)
        return ("resume", True)

    def _child(self, crash_at: int | None) -> tuple[Pipe, Any]:
        parent, child = _context.Pipe()
        process = _context.Process(target=child_main, args=(child, self._setup(crash_at)), daemon=True)
        process.start()
        child.close()
        return parent, process

    # ---- the whole run -----------------------------------------------------------------------------------

    def run(self) -> Outcome:
        started_real, started_cpu = time.monotonic(), time.process_time()
        self._deadline_real = started_real + self.real_seconds
        self.kit = start_lab(self.fleet, self.work / "lab", self._comes_back)
        kit = self.kit
        start = kit.clock.now()
        self.outcome = outcome = Outcome(self.schedule, self.work, start)
        try:
            kit.lab.on_change(self._observe_cloud)
            inventory, playbook = write_inputs(self.schedule, kit, self.work)
            self.store = Store.open(self.work / "state", now=kit.clock.now, synchronous="NORMAL")
            self.watcher = StateWatcher(self.work / "state" / DB_FILE_NAME)
            self._to_plan = [
                WaveRequest(
                    inventory=inventory,
                    playbook=str(playbook),
                    wave=name,
                    batch_size=self.schedule.batch_size,
                    concurrency=self.schedule.concurrency,
                    max_fail_percent=100.0,
                    change_ticket="CHG-CHAOS",
                    entra_kerberos=ENTRA_KERBEROS,
                    devices=members,
                )
                for name, members in zip(self.schedule.wave_names(), self.schedule.waves, strict=True)
            ]
            self._chaos_end = start + timedelta(seconds=self.schedule.chaos_seconds)
            self._settle_until = self._chaos_end + timedelta(seconds=SETTLE_SECONDS)
            self._settle_rounds = 0
            for flap in self.schedule.flaps:
                self.at(
                    start + timedelta(seconds=flap.at), f"{flap.device} loses its DCs", self._flap(flap.device, False)
                )
                back = start + timedelta(seconds=flap.at + flap.lasting)
                self.at(back, f"{flap.device} sees its DCs again", self._flap(flap.device, True))
            for pause in self.schedule.pauses:
                self.at(
                    start + timedelta(seconds=pause.at),
                    f"operator pauses {pause.wave}",
                    self._pause(pause.wave, pause.hold),
                )
            self.at(self._chaos_end, "end of chaos: faults cleared, devices online, DCs in sight", self._end_chaos)
            self.run_due()
            kills = list(self.schedule.kills)
            while True:
                kill = kills.pop(0) if kills and self.phase == "chaos" else None
                crash_at = kill.number if kill is not None and kill.kind == "journal" else None
                moment = kill.number if kill is not None and kill.kind == "moment" else None
                pipe, process = self._child(crash_at)
                first = self._next_command()
                try:
                    self._serve(pipe, process, moment, first)
                except _Killed:
                    outcome.kills += 1
                    if crash_at is not None and process.exitcode == -signal.SIGKILL:
                        self.note(f"the orchestrator killed itself at journal commit #{crash_at} (MIGRATOR_CRASH_AT)")
                    elif process.exitcode not in (-signal.SIGKILL, None):
                        self.note(f"the orchestrator exited with code {process.exitcode}")
                    if len(outcome.crashes) > 3:
                        self.note("the orchestrator keeps crashing: giving up")
                        break
                    held = self._leases()
                    if kill is not None:
                        self.advance(kill.restart_after)
                    if held:
                        check = self.now() + timedelta(seconds=LEASE_GRACE)
                        self._lease_checks.append((check, held))
                        self.at(
                            check,
                            f"lease check: {len(held)} device(s) leased by the killed orchestrator",
                            self._check_leases,
                        )
                    continue
                except _Stop:
                    break
                finally:
                    pipe.close()
                break
            self._check_leases(final=True)
            self._snapshot()
            if outcome.hung is None and len(outcome.crashes) <= 3:
                self._probe()
        finally:
            if self.store is not None:
                self.store.close()
            if self.watcher is not None:
                self.watcher.close()
            kit.background.stop()
            outcome.seconds = time.monotonic() - started_real
            outcome.cpu_seconds += time.process_time() - started_cpu
            outcome.executions = kit.server.executions
        return outcome

    def _leases(self) -> dict[str, tuple[str, datetime]]:
        """Device -> (owner, expiry) of every unexpired lease: at a kill, those the dead orchestrator held."""
        assert self.store is not None
        now = self.now()
        return {
            d.name: (d.lease_owner, d.lease_expires_at)
            for d in self.store.list_devices()
            if d.lease_owner and d.lease_expires_at is not None and d.lease_expires_at > now
        }

    def _check_leases(self, *, final: bool = False) -> None:
        """LEASE_GRACE after a restart, no non-final device may still be held by the killed orchestrator's lease
        (issue 14: a crashed worker's devices come back within about a minute). At the end of the run, a check
        whose time never came counts the lease's expiry against the check time instead."""
        assert self.store is not None and self.outcome is not None
        due = [(at, held) for at, held in self._lease_checks if final or at <= self.now()]
        self._lease_checks = [c for c in self._lease_checks if c not in due]
        for at, held in due:
            for name, (owner, _expiry) in held.items():
                row = self.store.get_device(name)
                if row.state in DEVICE_FINAL or row.lease_owner != owner or row.lease_expires_at is None:
                    continue
                if row.lease_expires_at > at:
                    restart = at - timedelta(seconds=LEASE_GRACE)
                    self.outcome.lease_holds.append(
                        (
                            name,
                            f"{row.state}, still leased by the killed orchestrator ({owner}) until "
                            f"{self.outcome.offset(row.lease_expires_at)}, {LEASE_GRACE:.0f}s after the restart at "
                            f"{self.outcome.offset(restart)}",
                        )
                    )

    def _snapshot(self) -> None:
        assert self.store is not None and self.outcome is not None
        store, outcome = self.store, self.outcome
        self._observe_cloud()
        outcome.devices = store.list_devices()
        outcome.users = {d.name: store.list_users(d.name) for d in outcome.devices}
        outcome.transitions = {d.name: store.export_device_timeline(d.name).transitions for d in outcome.devices}
        outcome.waves = store.list_waves()
        outcome.status = collect_status(store, now=self.lab.clock.now)
        outcome.audit = store.verify_audit()
        outcome.truth = fleet_truth(self.lab.lab)

    def _probe(self) -> None:
        """One ``resume`` that does not wait: which devices does it pick up?"""
        assert self.outcome is not None
        self.phase = "probe"
        self._deadline_real = time.monotonic() + 60
        pipe, process = self._child(None)
        try:
            self._serve(pipe, process, None, ("resume", False))
        except (_Stop, _Killed):
            pass
        finally:
            pipe.close()
        self.outcome.truth_after_probe = fleet_truth(self.lab.lab)


def run_schedule(schedule: Schedule, work: Path, *, real_seconds: float = 150.0) -> Outcome:
    work.mkdir(parents=True, exist_ok=True)
    return ChaosRun(schedule, work, real_seconds=real_seconds).run()
