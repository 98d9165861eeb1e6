"""Benchmark: a mixed wave against `migrator lab up` with 20 ms latency, and a naive per-command baseline.

1. migrator: `lab up` runs as a subprocess (its own GIL) with a latency fault on every request; users comply at
   once. The wave runs in this process with the project's engine (`plan_wave` + `WaveRunner`: PSRP, one runspace
   pool per visit, one pipeline per script) at concurrency C. Printed: devices migrated, wall time, devices per
   minute, WS-Man requests per device (mean, median) and the ratio to the round-trip bound
   ``ceil(D/C) × (requests × latency + device time)``.
2. baseline: what a hand-written script does: every script the engine ran for a device, replayed as its own
   pywinrm ``Session.run_ps`` (a new WinRS shell and an encoded command line per step, parameters inlined as
   PowerShell literals) on a subset of the same devices. Printed: requests per device, devices per minute and
   the ratio baseline / migrator in requests per device (HTTP requests on both sides, NTLM legs included).

The fleet is the mix above with every domain on Entra Kerberos, every device in sight of a DC and every user
complying at once at the console; devices the engine finds ineligible (old builds) stay in and are parked. A
device that never reaches a final state (the lab's user never provisions) would keep the wave waiting: after
``--stall`` seconds without any state change the wave is paused, and the wall time counts up to the last change.
Where the time goes is printed as the CPU seconds of the lab process and of this process during the wave.

3. workers (``--workers 1,2 --postgres URL``, instead of 1 and 2): the same wave planned in a PostgreSQL store
   (a fresh schema per run) and worked by N ``migrator worker`` processes (the product's worker: claims, the
   coordinator, hand-backs), each at concurrency C / N. Printed per N: the makespan (wave planned → completed),
   orchestrator CPU milliseconds per device and peak RSS per device (summed over the worker processes), and
   WS-Man requests per device.

``--breakdown`` also counts every HTTP request on the wire (NTLM legs included: a request answered 401 is an
authentication leg) by step (the script or scripts of one pipeline, the runspace pool's open and close) and WS-Man
action (Create, Command, Receive, Signal, Delete), and prints the mean per one-user certificate trust device that
migrated, with the scripts one of them ran. ``--profile FILE`` runs the wave under cProfile (every thread of
it), statistics to FILE (``python -m pstats FILE``). Both add their own CPU to the orchestrator's figure.

Nothing is asserted.

    python bench/wave.py --devices 1000 --concurrency 64 --latency 0.02 --baseline-devices 100
    python bench/wave.py --devices 1000 --concurrency 64 --workers 1,2 --postgres postgresql://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import cProfile
import math
import multiprocessing
import os
import pstats
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
import winrm
import yaml
from pydantic import SecretStr
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.proctree import cpu_by_process, peak_rss_kib
from migrator.engine.service import WaveRequest, plan_wave
from migrator.engine.wavestore import StoreWaves
from migrator.engine.workers import build_worker
from migrator.inventory import Connection, DeviceEntry, load_inventory
from migrator.lab.clock import ScaledClock
from migrator.lab.fleet import generate_fleet, parse_mix
from migrator.lab.fleetfile import save_fleet
from migrator.lab.runtime import read_lab_secrets
from migrator.machine.table import DEVICE_SUCCESS
from migrator.playbook import builtin_path
from migrator.remote import open_transport
from migrator.remote.credentials import Credentials
from migrator.remote.transport import ScriptResult, Transport, run_scripts
from migrator.scripts import Script, load
from migrator.store import Store

MIX = "key=50,cert=45,cloud=5,none=0"
FINAL_OK = DEVICE_SUCCESS


def make_fleet(devices: int, seed: int, folder: Path) -> tuple[Path, Any]:
    """A mixed fleet whose users comply at once and whose devices can always see a DC."""
    fleet = generate_fleet(devices, seed, parse_mix(MIX))
    for domain in fleet.domains:
        domain.entra_kerberos = True  # the wave is told so (WaveRequest.entra_kerberos): the lab must agree
    for device in fleet.devices:
        device.dc_reachable, device.vpn_only = True, False
        for user in device.users:
            user.behaviour.compliance, user.behaviour.delay_seconds = "prompt", 1
            user.privileged, user.has_prt = False, True
            user.behaviour.prefers_rdp = False  # an RDP sign-in is by password: no Hello sign-in to wait for
    return save_fleet(fleet, folder / "fleet.json"), fleet


@dataclass
class Lab:
    inventory: Path
    secrets: dict[str, str]
    started_real: float  # time.monotonic() when `lab up` was started (its virtual clock starts a little later)
    ready_after: float
    pid: int

    def cpu_by_process(self) -> dict[int, float]:
        """CPU seconds so far of the lab's processes: `lab up` and, with --processes, its shards."""
        return cpu_by_process(self.pid)

    def cpu_seconds(self) -> float:
        """User + system CPU time of the lab's processes so far, summed."""
        return sum(self.cpu_by_process().values())


def cpu_spent(before: dict[int, float], after: dict[int, float]) -> dict[int, float]:
    """CPU seconds each process spent between two readings of :meth:`Lab.cpu_by_process`."""
    return {pid: cpu - before.get(pid, 0.0) for pid, cpu in after.items()}


@contextmanager
def lab_up(
    folder: Path,
    fleet: Path,
    latency: float,
    speed: float,
    ports: tuple[int, int],
    profile: str | None = None,
    processes: int = 1,
) -> Iterator[Lab]:
    """`migrator lab up` as a subprocess with a latency fault on every request; stopped with SIGINT.

    Ports 0 (the default): free ones, read back from the inventory. Background GPO refresh is off, as the bench
    always ran (a refresh undoes the local channel's writes on GPO-managed devices). With ``processes`` > 1 the
    lab serves its devices from that many processes (``lab up --processes``). With ``profile`` the lab runs under
    cProfile and writes its statistics there when it stops (the parent process only)."""
    faults = folder / "faults.yaml"
    faults.write_text(yaml.safe_dump({"seed": 1, "faults": [{"kind": "latency", "delay": latency}]}))
    inventory = folder / "lab" / "inventory.yaml"
    profiler = ["-m", "cProfile", "-o", profile] if profile else []
    command = [
        sys.executable, *profiler, "-m", "migrator", "lab", "up", "--fleet", str(fleet), "--faults", str(faults),
        "--inventory", str(inventory), "--speed", str(speed),
        "--http-port", str(ports[0]), "--https-port", str(ports[1]), "--no-gpo-refresh",
        "--processes", str(processes),
    ]  # fmt: skip
    started = time.monotonic()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    output: list[str] = []
    for line in proc.stdout:
        output.append(line)
        if "ready" in line:
            break
    else:
        raise SystemExit(f"lab did not start (exit {proc.wait()}):\n{''.join(output[-20:])}")
    ready = time.monotonic() - started
    threading.Thread(target=lambda: [None for _ in proc.stdout or []], daemon=True).start()  # drain its output
    try:
        yield Lab(inventory, read_lab_secrets(inventory), started, ready, proc.pid)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()


def bench_playbook(folder: Path, recheck: str) -> Path:
    """The shipped default playbook, looking again every `recheck` and with deadlines no bench run reaches.

    At speed 100000 one real second is 28 virtual hours: the shipped 7-day deadlines would expire while a
    waiting device is queued behind the rest of the wave, so they are stretched (the users comply at once)."""
    data = yaml.safe_load(builtin_path("to-cloud-kerberos").read_text(encoding="utf-8"))
    data["waits"] = {
        **data.get("waits", {}),
        "recheck_every": recheck,
        "user_deadline": "365d",
        "dc_deadline": "365d",
        "reprovision_deadline": "365d",
    }
    path = folder / "bench-playbook.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


class CountingTransport:
    """The engine's own transport, recording each script it ran and its WS-Man requests when it closes (the
    wave keeps it open across a device's visits, so a close is a runspace pool closed, not a visit)."""

    def __init__(self, inner: Transport, sink: Recorder, wire: WireLog | None = None) -> None:
        self._inner = inner
        self._sink = sink
        self._wire = wire
        self._calls: list[tuple[str, dict[str, Any]]] = []

    @property
    def device(self) -> str:
        return self._inner.device

    @property
    def requests_sent(self) -> int:
        return self._inner.requests_sent

    def run(self, script: Script, parameters: Mapping[str, Any] | None = None) -> ScriptResult:
        return self.run_batch([(script, parameters)])[0]

    def run_batch(self, items: Sequence[tuple[Script, Mapping[str, Any] | None]]) -> list[ScriptResult]:
        """Scripts in one pipeline (the engine's confirmed writes); the breakdown names it by all its scripts."""
        self._calls.extend((script.name, dict(parameters or {})) for script, parameters in items)
        if self._wire is None:
            return run_scripts(self._inner, items)
        with self._wire.label(self.device, "+".join(script.name for script, _ in items)):
            return run_scripts(self._inner, items)

    def close(self) -> None:
        try:
            if self._wire is None:
                self._inner.close()
            else:
                with self._wire.label(self.device, "pool close"):
                    self._inner.close()
        finally:
            self._sink.add(self.device, self._inner.requests_sent, self._calls)


@dataclass
class Recorder:
    requests: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    pools: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    calls: dict[str, list[tuple[str, dict[str, Any]]]] = field(default_factory=lambda: defaultdict(list))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, device: str, requests: int, calls: list[tuple[str, dict[str, Any]]]) -> None:
        with self.lock:
            self.requests[device] += requests
            self.pools[device] += 1
            self.calls[device].extend(calls)


# --------------------------------------------------------------------------------------------------------------
# --breakdown: every HTTP request on the wire, by device, step and WS-Man action (bench-only instrumentation).
# --------------------------------------------------------------------------------------------------------------

_ACTION = re.compile(rb"<(?:\w+:)?Action[^>]*>\s*[^<]*/([A-Za-z]+)\s*</(?:\w+:)?Action>")


class WireLog:
    """Counts every HTTP request the orchestrator sends (authentication legs included) by device, step and
    WS-Man action, by wrapping requests' HTTPAdapter.send for the wave (as the baseline counts its own).

    The step is what the visiting thread is doing: the script CountingTransport is running, or the runspace pool
    being opened or closed (pypsrp's RunspacePool.open/close, wrapped here to say so). A request answered 401 is
    an authentication leg; the action is read from the SOAP envelope's wsa:Action (in clear over HTTPS; a
    message sealed by NTLM over HTTP is counted as ``sealed``)."""

    def __init__(self) -> None:
        self.counts: dict[str, dict[tuple[str, str], int]] = defaultdict(lambda: defaultdict(int))
        self.local = threading.local()
        self.lock = threading.Lock()
        self._undo: list[tuple[Any, str, Any]] = []

    @contextmanager
    def label(self, device: str, step: str) -> Iterator[None]:
        before = getattr(self.local, "where", None)
        if before is not None and before[1].startswith("pool "):
            yield  # a pool being opened or closed keeps its label while it runs
            return
        self.local.where = (device, step)
        try:
            yield
        finally:
            self.local.where = before

    def _record(self, request: Any, response: Any) -> None:
        where = getattr(self.local, "where", None)
        if where is None:
            return  # not a wave request (the per-request timing probe)
        if response is not None and response.status_code == 401:
            action = "auth leg (401)"
        else:
            body = request.body if isinstance(request.body, bytes) else (request.body or "").encode()
            found = _ACTION.search(body)
            action = found.group(1).decode() if found else ("sealed" if body else "empty")
        with self.lock:
            self.counts[where[0]][(where[1], action)] += 1

    def install(self) -> None:
        log = self
        send, pool_open, pool_close = requests.adapters.HTTPAdapter.send, RunspacePool.open, RunspacePool.close

        def counting_send(adapter: Any, request: Any, *a: Any, **kw: Any) -> Any:
            response = None
            try:
                response = send(adapter, request, *a, **kw)
                return response
            finally:
                log._record(request, response)

        def opening(pool: Any, *a: Any, **kw: Any) -> Any:
            where = getattr(log.local, "where", None)
            with log.label(where[0] if where else "?", "pool open"):
                return pool_open(pool, *a, **kw)

        def closing(pool: Any, *a: Any, **kw: Any) -> Any:
            where = getattr(log.local, "where", None)
            with log.label(where[0] if where else "?", "pool close"):
                return pool_close(pool, *a, **kw)

        self._undo = [
            (requests.adapters.HTTPAdapter, "send", send),
            (RunspacePool, "open", pool_open),
            (RunspacePool, "close", pool_close),
        ]
        requests.adapters.HTTPAdapter.send = counting_send  # type: ignore[method-assign]
        RunspacePool.open = opening  # type: ignore[method-assign]
        RunspacePool.close = closing  # type: ignore[method-assign]

    def uninstall(self) -> None:
        for owner, name, original in self._undo:
            setattr(owner, name, original)
        self._undo = []


def print_breakdown(wire: WireLog, fleet: Any, states: Mapping[str, str], recorder: Recorder) -> None:
    """Mean requests per device by step and action, for one-user certificate trust devices that migrated."""
    chosen = [
        d.name
        for d in fleet.devices
        if "trust-cert" in d.groups and len(d.users) == 1 and states.get(d.name) == "migrated"
    ]
    if not chosen:
        print("breakdown: no one-user certificate trust device migrated in this wave")
        return
    steps: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    actions: set[str] = set()
    for name in chosen:
        for (step, action), n in wire.counts.get(name, {}).items():
            steps[step][action] += n
            actions.add(action)
    columns = sorted(actions)
    n = len(chosen)
    total = sum(sum(row.values()) for row in steps.values())
    print(f"breakdown: HTTP requests on the wire per one-user certificate trust device ({n} migrated): {total / n:.1f}")
    width = max(len(s) for s in steps) + 2
    print("  " + "step".ljust(width) + "".join(c.rjust(max(9, len(c) + 2)) for c in columns) + "    total")
    for step in sorted(steps, key=lambda s: -sum(steps[s].values())):
        row = steps[step]
        cells = "".join(f"{row.get(c, 0) / n:.2f}".rjust(max(9, len(c) + 2)) for c in columns)
        print("  " + step.ljust(width) + cells + f"{sum(row.values()) / n:9.2f}")
    sums = "".join(f"{sum(steps[s].get(c, 0) for s in steps) / n:.2f}".rjust(max(9, len(c) + 2)) for c in columns)
    print("  " + "all".ljust(width) + sums + f"{total / n:9.2f}")
    print(f"breakdown: the scripts {chosen[0]} ran, in order: " + ", ".join(c for c, _ in recorder.calls[chosen[0]]))


@contextmanager
def profiled(path: str | None) -> Iterator[None]:
    """cProfile every thread started inside (the wave's visits run in a thread pool), statistics merged to path.

    Timed by each thread's own CPU clock (``time.thread_time``), so what it shows is CPU, not waiting.
    cProfile profiles the thread that enables it: ``threading.setprofile`` makes each new thread enable a
    profiler of its own on its first event, and all of them are merged when the block ends."""
    if path is None:
        yield
        return
    profilers: list[cProfile.Profile] = []
    lock = threading.Lock()

    def start(*_: Any) -> None:
        profiler = cProfile.Profile(time.thread_time)  # CPU, not wall: threads mostly wait on the wire
        with lock:
            profilers.append(profiler)
        profiler.enable()  # replaces this hook for the thread

    main = cProfile.Profile(time.thread_time)
    threading.setprofile(start)
    main.enable()
    try:
        yield
    finally:
        main.disable()
        threading.setprofile(None)  # type: ignore[arg-type]
        stats = pstats.Stats(main)
        with lock:
            for profiler in profilers:
                profiler.disable()  # only stops it when called from its thread; the stats are taken as they are
                profiler.create_stats()
                stats.add(profiler)
        stats.dump_stats(path)


def server_time_per_request(lab: Lab, latency: float, rounds: int = 30) -> float:
    """The lab's own processing time per WS-Man request, measured from the client.

    Chosen over a second lab run without the latency fault: it measures the very lab process the wave ran
    against, warm, before the wave starts (so it is the lab's time with no queueing behind other devices). A warm
    pipeline on an open runspace pool costs 2 requests (Command, then a Receive that returns the output and
    the end state), so time per request = median round trip / 2 - injected latency. This includes TLS, h11
    and NTLM sealing on both ends, i.e. everything that is not the injected latency."""
    inv = load_inventory(lab.inventory)
    entry = inv.devices[0]
    conn = inv.connection(entry)
    wsman = WSMan(
        entry.address, port=conn.port, username=lab.secrets["MIGRATOR_USERNAME"],
        password=lab.secrets["MIGRATOR_PASSWORD"], auth="ntlm", cert_validation=str(conn.ca_bundle),  # type: ignore[arg-type]  # a CA path is accepted
        no_proxy=True,
    )  # fmt: skip
    with RunspacePool(wsman) as pool:
        samples = []
        for _ in range(rounds):
            ps = PowerShell(pool)
            ps.add_script("$env:COMPUTERNAME")
            started = time.perf_counter()
            ps.invoke()
            samples.append(time.perf_counter() - started)
    return max(0.0, statistics.median(samples) / 2 - latency)


@dataclass
class MigratorResult:
    devices: int
    states: dict[str, int]
    seconds: float
    recorder: Recorder
    lab_cpu: float  # CPU seconds the lab process spent during the wave
    own_cpu: float  # CPU seconds this process (engine, PSRP client, store) spent during the wave
    final: dict[str, str] = field(default_factory=dict)  # device -> state at the end
    wire: WireLog | None = None
    lab_cpu_max: float = 0.0  # CPU seconds of the busiest lab process (a sharded lab has several)


def run_migrator(args: argparse.Namespace, folder: Path, lab: Lab, fleet: Any, names: list[str]) -> MigratorResult:
    credentials = Credentials(lab.secrets["MIGRATOR_USERNAME"], SecretStr(lab.secrets["MIGRATOR_PASSWORD"]))
    store = Store.open(folder / "state")
    recorder = Recorder()
    wire = WireLog() if args.breakdown else None

    def factory(entry: DeviceEntry, connection: Connection, creds: Credentials) -> Transport:
        return CountingTransport(open_transport(entry, connection, creds), recorder, wire)

    # The lab runs ScaledClock(start=fleet.clock, speed) from just before it printed 'ready'. This clock starts
    # now, a little later, so it runs slightly BEHIND the lab: every event the lab timestamps after a step of
    # the engine (a sign-in, a new container) is then later than the engine's own record of that step, never
    # earlier. The skew only makes waits look longer to the engine; the deadlines above are far away.
    clock = ScaledClock(start=fleet.clock, speed=args.speed)
    request = WaveRequest(
        inventory=lab.inventory,
        playbook=str(bench_playbook(folder, args.recheck)),
        wave="bench",
        devices=tuple(names),
        batch_size=len(names),
        concurrency=args.concurrency,
        max_fail_percent=100.0,
        entra_kerberos={d.dns_name: True for d in fleet.domains},
    )
    plan = plan_wave(store, request, credentials, clock, transport_factory=factory)
    runner = plan.runner
    done = threading.Event()
    last_change = [time.monotonic()]

    def watchdog() -> None:
        """Pause the wave once no device has changed state for --stall real seconds.

        A device whose lab user never produces what the engine waits for (the wave's deadlines are stretched
        out of reach) would otherwise keep the wave waiting for ever; pausing is the operator's own way out."""
        seen: dict[str, str] = {}
        while not done.wait(0.5):
            now = dict(runner.progress.states)
            if now != seen:
                seen, last_change[0] = now, time.monotonic()
            elif time.monotonic() - last_change[0] > args.stall:
                Store.open(folder / "state").set_wave_state("bench", "paused")
                return

    lab_before, own_cpu = lab.cpu_by_process(), time.process_time()
    started = time.monotonic()
    guard = threading.Thread(target=watchdog, daemon=True)
    guard.start()
    if wire is not None:
        wire.install()
    try:
        with profiled(args.profile):
            result = runner.run()
    finally:
        if wire is not None:
            wire.uninstall()
    done.set()
    guard.join()
    # A wave the watchdog paused ended when its last device changed state, not when the watchdog gave up.
    elapsed = (last_change[0] if result.state == "paused" else time.monotonic()) - started
    lab_spent, own_cpu = cpu_spent(lab_before, lab.cpu_by_process()), time.process_time() - own_cpu
    lab_cpu = sum(lab_spent.values())
    final = dict(runner.progress.states)
    return MigratorResult(
        len(names), result.progress.counts(), elapsed, recorder, lab_cpu, own_cpu, final, wire, max(lab_spent.values())
    )


# --------------------------------------------------------------------------------------------------------------
# NAIVE BASELINE ONLY. What a hand-written script does: paste the parameters into the script text as PowerShell
# literals and run each step as `Session.run_ps` (a new WinRS shell per command). The project itself never does
# this (values never become code: its transports pass parameters as PSRP/CLIXML data); do not reuse it elsewhere.
# --------------------------------------------------------------------------------------------------------------


def _naive_literal(value: Any) -> str:
    """NAIVE BASELINE ONLY: a value as a PowerShell literal, the way a hand-written script inlines it."""
    if value is None:
        return "$null"
    if isinstance(value, bool):
        return "$true" if value else "$false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "@(" + ", ".join(_naive_literal(v) for v in value) + ")"
    if isinstance(value, dict):
        return "@{" + "; ".join(f"{_naive_literal(str(k))} = {_naive_literal(v)}" for k, v in value.items()) + "}"
    return "'" + str(value).replace("'", "''") + "'"


def _naive_command(name: str, parameters: dict[str, Any]) -> str:
    """NAIVE BASELINE ONLY: the script text wrapped in a script block and called with inlined arguments."""
    text = load(name).text
    if not parameters:
        return text
    args = []
    for key, value in parameters.items():
        if value is True:
            args.append(f"-{key}")  # a [switch] (the scripts' boolean parameters are switches)
        elif value is False:
            continue
        else:
            args.append(f"-{key} {_naive_literal(value)}")
    return "& {\n" + text + "\n} " + " ".join(args)


@dataclass
class BaselineResult:
    devices: int
    seconds: float
    requests: int
    commands: int
    failures: int
    names: list[str]
    messages: int


def run_baseline(
    args: argparse.Namespace, lab: Lab, recorded: Mapping[str, list[tuple[str, dict[str, Any]]]]
) -> BaselineResult:
    """NAIVE BASELINE ONLY: replay, per device, every script the engine ran there, each as its own run_ps.

    It replays on devices the wave has just migrated, with that device's own parameters: the request count of a
    run_ps (open shell, command, receive(s), signal, delete shell, and the NTLM legs of its connection) does not
    depend on what the script finds, and the scripts are idempotent or harmless to repeat on a lab device."""
    inv = load_inventory(lab.inventory)
    devices = [e for e in inv.devices if recorded.get(e.name)][: args.baseline_devices]
    counter = {"requests": 0, "messages": 0, "commands": 0, "failures": 0}
    lock = threading.Lock()
    # Count HTTP requests (every POST, NTLM authentication legs included), as the engine's transports count
    # theirs: pywinrm sends through a requests Session, so its adapter sees each one. WS-Man messages alone
    # (winrm.protocol.Protocol.send_message) are counted too, to show what the authentication legs add.
    original_send = requests.adapters.HTTPAdapter.send
    original_message = winrm.protocol.Protocol.send_message

    def counting_send(self: Any, *a: Any, **kw: Any) -> Any:
        with lock:
            counter["requests"] += 1
        return original_send(self, *a, **kw)

    def counting_message(self: Any, message: Any) -> Any:
        with lock:
            counter["messages"] += 1
        return original_message(self, message)

    def one(entry: DeviceEntry) -> None:
        conn = inv.connection(entry)
        session = winrm.Session(
            f"https://{entry.address}:{conn.port}/wsman",
            auth=(lab.secrets["MIGRATOR_USERNAME"], lab.secrets["MIGRATOR_PASSWORD"]),
            transport="ntlm",
            server_cert_validation="validate",
            ca_trust_path=str(conn.ca_bundle),
        )
        for name, parameters in recorded[entry.name]:
            result = session.run_ps(_naive_command(name, parameters))
            with lock:
                counter["commands"] += 1
                counter["failures"] += result.status_code != 0

    requests.adapters.HTTPAdapter.send = counting_send  # type: ignore[method-assign]
    winrm.protocol.Protocol.send_message = counting_message  # type: ignore[method-assign]
    try:
        started = time.monotonic()
        with ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(one, devices))
        elapsed = time.monotonic() - started
    finally:
        requests.adapters.HTTPAdapter.send = original_send  # type: ignore[method-assign]
        winrm.protocol.Protocol.send_message = original_message  # type: ignore[method-assign]
    return BaselineResult(
        len(devices),
        elapsed,
        counter["requests"],
        counter["commands"],
        counter["failures"],
        [e.name for e in devices],
        counter["messages"],
    )


@dataclass
class WorkersResult:
    workers: int
    lab_processes: int
    devices: int
    states: dict[str, int]
    seconds: float  # makespan: from the wave planned to completed (or to its last change, when it stalled)
    requests: dict[str, int]
    cpu: float  # CPU seconds of the worker processes, summed
    peak_rss_kb: list[int]  # each worker process's peak resident set
    visits: list[int]
    worker_cpu: list[float]  # CPU seconds of each worker process
    lab_cpu: dict[int, float]  # CPU seconds of each lab process (parent and shards) during the wave
    per_request: float  # the lab's own time per request, measured before the wave (latency excluded)


def worker_child(
    url: str, inventory: str, fleet_clock: datetime, speed: float, concurrency: int, stop: Any, out: Any
) -> None:
    """One bench worker process: the product's worker with a counting transport, until the parent says stop."""
    lab_secrets = read_lab_secrets(Path(inventory))
    credentials = Credentials(lab_secrets["MIGRATOR_USERNAME"], SecretStr(lab_secrets["MIGRATOR_PASSWORD"]))
    clock = ScaledClock(start=fleet_clock, speed=speed)
    # The store compares due times with its own clock: it must be the workers' (virtual) one.
    store = Store.open(url, pool_size=4, now=clock.now)
    recorder = Recorder()

    def factory(entry: DeviceEntry, connection: Connection, creds: Credentials) -> Transport:
        return CountingTransport(open_transport(entry, connection, creds), recorder)

    # Leases are in the store's (virtual) time too: 60 real seconds, as the product's default.
    worker, _kits = build_worker(
        store,
        credentials,
        clock,
        concurrency=concurrency,
        poll_seconds=0.2,
        transport_factory=factory,
        lease_seconds=60.0 * speed,
    )

    def stop_when_told() -> None:
        stop.wait()
        worker.stopping.set()

    threading.Thread(target=stop_when_told, daemon=True).start()
    cpu = time.process_time()
    worker.run()  # closes its pools at the end: the recorder has every request then
    cpu = time.process_time() - cpu
    peak = peak_rss_kib()  # this worker's own (ru_maxrss would be the spawning bench's, kept across exec)
    out.put((dict(recorder.requests), cpu, peak, worker.visits))
    store.close()


def run_workers(
    args: argparse.Namespace, folder: Path, lab: Lab, fleet: Any, names: list[str], count: int, lab_processes: int
) -> WorkersResult:
    """Plan the wave in a fresh schema of --postgres and let ``count`` worker processes work it."""
    per_request = server_time_per_request(lab, args.latency)
    schema = f"bench_{secrets.token_hex(4)}"
    admin = create_engine(
        args.postgres.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = admin.url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    credentials = Credentials(lab.secrets["MIGRATOR_USERNAME"], SecretStr(lab.secrets["MIGRATOR_PASSWORD"]))
    context = multiprocessing.get_context("spawn")
    stop, out = context.Event(), context.Queue()
    try:
        with Store.open(url) as store:
            clock = ScaledClock(start=fleet.clock, speed=args.speed)
            request = WaveRequest(
                inventory=lab.inventory,
                playbook=str(bench_playbook(folder, args.recheck)),
                wave="bench",
                devices=tuple(names),
                batch_size=len(names),
                concurrency=args.concurrency,
                max_fail_percent=100.0,
                entra_kerberos={d.dns_name: True for d in fleet.domains},
            )
            plan_wave(store, request, credentials, clock, with_runner=False).close()  # the workers visit
            lab_before = lab.cpu_by_process()
            started = time.monotonic()
            StoreWaves(store, credentials.username).set_wave_state("bench", "running")
            children = [
                context.Process(
                    target=worker_child,
                    args=(
                        url,
                        str(lab.inventory),
                        fleet.clock,
                        args.speed,
                        max(1, args.concurrency // count),
                        stop,
                        out,
                    ),
                )
                for _ in range(count)
            ]
            for child in children:
                child.start()
            seen: dict[str, str] = {}
            last_change = last_print = time.monotonic()
            while True:
                time.sleep(0.5)
                if store.get_wave("bench").state == "completed":
                    elapsed = time.monotonic() - started
                    break
                states = {d.name: d.state for d in store.list_devices(wave="bench")}
                if time.monotonic() - last_print > 60:  # a long run says how far it is
                    last_print = time.monotonic()
                    tally: dict[str, int] = defaultdict(int)
                    for state in states.values():
                        tally[state] += 1
                    print(f"  after {last_print - started:.0f} s: {dict(sorted(tally.items()))}", flush=True)
                if states != seen:
                    seen, last_change = states, time.monotonic()
                elif time.monotonic() - last_change > args.stall:
                    elapsed = last_change - started
                    break
            lab_cpu = cpu_spent(lab_before, lab.cpu_by_process())
            counts: dict[str, int] = {}
            for device in store.list_devices(wave="bench"):
                counts[device.state] = counts.get(device.state, 0) + 1
            stop.set()
            reports = [out.get(timeout=300) for _ in children]
            for child in children:
                child.join(60)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
    requests_seen: dict[str, int] = defaultdict(int)
    for report in reports:
        for device, number in report[0].items():
            requests_seen[device] += number
    return WorkersResult(
        count,
        lab_processes,
        len(names),
        dict(sorted(counts.items())),
        elapsed,
        dict(requests_seen),
        sum(r[1] for r in reports),
        [r[2] for r in reports],
        [r[3] for r in reports],
        [r[1] for r in reports],
        lab_cpu,
        per_request,
    )


def print_workers(args: argparse.Namespace, results: list[WorkersResult]) -> None:
    cores = os.cpu_count() or 1
    for r in results:
        per_device = [r.requests.get(n, 0) for n in r.requests] or [0]
        mean = statistics.mean(per_device)
        # The round-trip bound: every device's requests at the injected latency plus the lab's own time, C at once.
        bound = math.ceil(r.devices / args.concurrency) * (mean * (args.latency + r.per_request))
        # The CPU floor: no process goes faster than its own CPU (one GIL each), and all of them together no
        # faster than their CPU spread over every core of this machine.
        lab_total = sum(r.lab_cpu.values())
        floor = max(max(r.lab_cpu.values(), default=0.0), max(r.worker_cpu, default=0.0), (lab_total + r.cpu) / cores)
        lab_split = " + ".join(f"{cpu:.1f}" for cpu in r.lab_cpu.values() if cpu >= 0.05)
        print(
            f"lab processes={r.lab_processes} workers={r.workers} (concurrency {max(1, args.concurrency // r.workers)}"
            f" each): states {r.states}"
        )
        print(
            f"  makespan {r.seconds:.1f} s; round-trip bound {bound:.1f} s "
            f"(ceil({r.devices}/{args.concurrency}) x {mean:.1f} requests x ({args.latency * 1000:.0f} ms + "
            f"{r.per_request * 1000:.1f} ms lab time)), bound/makespan {bound / r.seconds * 100:.0f} %; "
            f"CPU floor {floor:.1f} s, floor/makespan {floor / r.seconds * 100:.0f} % ({cores} cores)"
        )
        print(
            f"  orchestrator CPU {r.cpu / r.devices * 1000:.0f} ms/device ({r.cpu:.1f} s over {r.workers} processes); "
            f"lab CPU {lab_total / r.devices * 1000:.0f} ms/device ({lab_total:.1f} s: {lab_split or '0'}); "
            f"orchestrator peak RSS {sum(r.peak_rss_kb) / r.devices:.1f} kB/device "
            f"(per process {', '.join(f'{kb / 1024:.0f} MB' for kb in r.peak_rss_kb)}); "
            f"requests/device mean {mean:.1f}; visits per worker {r.visits}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.02, help="injected latency per request, seconds")
    parser.add_argument("--baseline-devices", type=int, default=100)
    parser.add_argument("--speed", type=float, default=100000.0, help="virtual seconds per real second")
    parser.add_argument("--recheck", default="5m", help="the playbook's waits.recheck_every")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--stall", type=float, default=20.0, help="pause the wave after this long with no progress")
    parser.add_argument(
        "--ports", type=int, nargs=2, default=(0, 0), metavar=("HTTP", "HTTPS"), help="the lab's (0: free ones)"
    )
    parser.add_argument(
        "--lab-processes",
        default="1",
        help="comma-separated process counts of the lab (`lab up --processes`), e.g. 1,2: with --workers, every "
        "pair is run; without, the first",
    )
    parser.add_argument("--profile-lab", metavar="FILE", help="run the lab under cProfile, statistics to FILE")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also count every HTTP request on the wire (authentication legs included) by step and WS-Man action, "
        "and print them for one-user certificate trust devices (adds the counting's own CPU to the orchestrator's)",
    )
    parser.add_argument(
        "--profile", metavar="FILE", help="run the wave (this process) under cProfile, statistics to FILE"
    )
    parser.add_argument("--workers", help="comma-separated worker counts (e.g. 1,2): the worker mode, see above")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test", help="for --workers")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the `finally` that stops the lab
    folder = Path(tempfile.mkdtemp(prefix="migrator-bench-wave-"))
    fleet_path, fleet = make_fleet(args.devices, args.seed, folder)
    names = [d.name for d in fleet.devices]
    lab_processes = [int(n) for n in args.lab_processes.split(",")]
    if args.workers:
        counts = [int(n) for n in args.workers.split(",")]
        results = []
        for processes in lab_processes:
            for count in counts:  # a fresh fleet and lab per run (`lab up` saves what the wave did to its fleet file)
                run_folder = folder / f"lab-{processes}-workers-{count}"
                run_folder.mkdir()
                run_fleet_path, run_fleet = make_fleet(args.devices, args.seed, run_folder)
                with lab_up(
                    run_folder, run_fleet_path, args.latency, args.speed, tuple(args.ports), None, processes
                ) as lab:
                    print(f"lab up --processes {processes}: ready in {lab.ready_after:.1f} s", flush=True)
                    results.append(run_workers(args, run_folder, lab, run_fleet, names, count, processes))
                print_workers(args, results[-1:])  # as it comes: a long series shows what it has so far
                sys.stdout.flush()
        print(
            f"fleet: {len(names)} devices ({MIX}), concurrency {args.concurrency}, latency {args.latency * 1000:.0f} ms"
        )
        print_workers(args, results)
        return
    with lab_up(
        folder, fleet_path, args.latency, args.speed, tuple(args.ports), args.profile_lab, lab_processes[0]
    ) as lab:
        per_request = server_time_per_request(lab, args.latency)
        mig = run_migrator(args, folder, lab, fleet, names)
        base = run_baseline(args, lab, mig.recorder.calls)

    d, c, lat = mig.devices, args.concurrency, args.latency
    per_device = [mig.recorder.requests.get(n, 0) for n in names]
    mean, median = statistics.mean(per_device), statistics.median(per_device)
    ok = sum(mig.states.get(s, 0) for s in FINAL_OK)
    device_time = mean * per_request
    bound = math.ceil(d / c) * (mean * lat + device_time)
    print(f"fleet: {d} devices ({MIX}), concurrency {c}, latency {lat * 1000:.0f} ms per request, speed {args.speed:g}")
    print(
        f"lab up: ready in {lab.ready_after:.1f} s; "
        f"lab time per request (measured, latency excluded): {per_request * 1000:.2f} ms"
    )
    print(f"migrator: states {mig.states}")
    print(f"migrator: {ok}/{d} devices migrated (or already on cloud Kerberos trust) in {mig.seconds:.1f} s wall")
    print(f"migrator: {d / mig.seconds * 60:.1f} devices/min")
    print(
        f"migrator: WS-Man requests per device: mean {mean:.1f}, median {median:.0f} "
        f"(runspace pools opened per device: mean {statistics.mean(mig.recorder.pools.get(n, 0) for n in names):.2f};"
        " a device's pool is kept across its visits of the wave)"
    )
    scripts: dict[str, int] = defaultdict(int)
    for calls in mig.recorder.calls.values():
        for script_name, _ in calls:
            scripts[script_name] += 1
    print(
        "migrator: scripts per device: "
        + ", ".join(f"{n} {scripts[n] / d:.2f}" for n in sorted(scripts, key=lambda k: -scripts[k]))
    )
    print(
        f"round-trip bound ceil({d}/{c}) x ({mean:.1f} x {lat * 1000:.0f} ms + {device_time * 1000:.0f} ms device time)"
        f" = {bound:.1f} s; bound / measured = {bound / mig.seconds * 100:.0f} %"
    )
    # Where the time goes: the bound lets each device's own processing run in parallel, as on a real fleet
    # where every machine has its own CPU. Here one lab process (one GIL) plays all of them and this process
    # runs every client; each can use at most one core, so their CPU seconds are a floor of their own.
    print(
        f"CPU during the wave: lab process {mig.lab_cpu:.1f} s ({mig.lab_cpu / mig.seconds * 100:.0f} % of one core), "
        f"orchestrator process {mig.own_cpu:.1f} s ({mig.own_cpu / mig.seconds * 100:.0f} % of one core); "
        f"{os.cpu_count()} cores"
    )
    print(
        f"per device: lab {mig.lab_cpu / d * 1000:.0f} ms CPU, orchestrator {mig.own_cpu / d * 1000:.0f} ms CPU; "
        f"the busiest lab process's CPU alone is a floor of {mig.lab_cpu_max:.1f} s wall (one GIL each)"
    )
    # What this machine can do at best: the lab cannot go faster than its own CPU (one GIL), and the two
    # processes together cannot go faster than their CPU spread over every core.
    floor = max(mig.lab_cpu_max, mig.own_cpu, (mig.lab_cpu + mig.own_cpu) / (os.cpu_count() or 1))
    print(
        f"CPU floor here: max(busiest lab process CPU, orchestrator CPU, (lab + orchestrator CPU) / cores) = "
        f"{floor:.1f} s; "
        f"floor / measured = {floor / mig.seconds * 100:.0f} %"
    )
    base_rpd = base.requests / max(1, base.devices)
    print(
        f"baseline (run_ps per script, {base.devices} devices, {base.commands} commands, "
        f"{base.failures} non-zero exits): "
        f"{base_rpd:.1f} requests per device, {base.devices / base.seconds * 60:.1f} devices/min ({base.seconds:.1f} s)"
    )
    print(
        "baseline: WS-Man messages alone (no authentication legs): "
        f"{base.messages / max(1, base.devices):.1f} per device"
    )
    same = statistics.mean(mig.recorder.requests[n] for n in base.names) if base.names else mean
    print(
        f"requests per device, baseline / migrator on the same {base.devices} devices "
        f"({base_rpd:.1f} / {same:.1f}): {base_rpd / same:.2f}x"
    )
    if mig.wire is not None:
        print_breakdown(mig.wire, fleet, mig.final, mig.recorder)


if __name__ == "__main__":
    main()
