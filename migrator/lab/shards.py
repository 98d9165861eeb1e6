"""A lab in several processes (``migrator lab up --processes N``): the fleet's devices sharded over N children.

One Python process serves a fleet's WinRM on one GIL; with a large fleet and a fast orchestrator the lab, not
the product, is then what a benchmark measures. Sharding splits the devices, not the services:

- device *i* (in fleet order) belongs to shard *i mod N*; each shard is a child process (``multiprocessing``,
  spawn or forkserver: never a plain fork of a threaded parent) that loads the fleet, keeps its own devices and
  serves their 127.x addresses (WS-Man, WinRS, PSRP; the same two ports on every address, as in one process)
  with their behaviour: scripts, sign-ins, scheduled tasks, GPO refresh, VPN flaps;
- the parent (:class:`ShardedLabRuntime`) keeps what is one per lab: the domain controllers (LDAP, KDCs), the
  Graph tenant, the control endpoint and the clock. It keeps a copy of every device too, for the tenant (which
  reads them) and for saving the fleet at stop, refreshed from the shards when a device registers a Hello key
  and at stop;
- each shard reaches the parent's services over its ``multiprocessing`` connection (:class:`Channel`: requests
  both ways, answered on worker threads) for what a device needs of them: its Group Policy from the DCs
  (``policy_for``), an account's token groups and whether Entra Kerberos refuses it, the tenant's record of a
  new Hello key; the parent sends a shard the Intune check-ins' writes, the KDC's keytabs, and the control
  endpoint's device commands (``/v1/devices``, ``/v1/users``, ``/v1/dc``, ``/v1/power``, routed by device);
- the virtual clock is one: every shard builds its :class:`~migrator.lab.clock.ScaledClock` from the parent's
  origin (virtual start, ``time.monotonic()`` reading), and the monotonic clock is the machine's.

A shard that dies is noticed by the parent (:meth:`ShardedLabRuntime.dead_shard`; ``lab up`` then stops the lab
and exits 1); a shard whose parent dies sees its connection close and exits, so no shard outlives its lab.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from migrator.errors import InputError
from migrator.lab.clock import ScaledClock
from migrator.lab.control import ControlServer
from migrator.lab.fleetfile import load_fleet, save_fleet
from migrator.lab.graph.tenant import apply_check_in
from migrator.lab.model import Device, Fleet
from migrator.lab.runtime import LabPorts, LabRuntime, new_lab, power
from migrator.lab.server import Account, BackgroundLab, FaultPlan, LabServer, load_fault_profile
from migrator.lab.shell import AppliedPolicy
from migrator.lab.windows import Lab

READY_TIMEOUT = 300.0  # seconds a shard may take to load its devices and listen (10,000 devices on a busy box)
CALL_TIMEOUT = 120.0


class ShardError(Exception):
    """A shard failed, died, or its connection closed."""


Handler = Callable[[str, Any], Any]


class Channel:
    """Requests both ways over one ``multiprocessing`` connection: ``call`` sends and waits for the answer;
    the other side's requests run on a small thread pool (a device's GPO refresh must not wait for a control
    command the same shard is answering)."""

    def __init__(self, conn: Connection, handler: Handler, on_close: Callable[[], None] | None = None) -> None:
        self._conn = conn
        self._handler = handler
        self._on_close = on_close
        self._send_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, Future[Any]] = {}
        self._pending_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="lab-shard-call")
        self.closed = threading.Event()
        self._reader = threading.Thread(target=self._read, name="lab-shard-channel", daemon=True)

    def start(self) -> None:
        self._reader.start()

    def _send(self, message: tuple[Any, ...]) -> None:
        with self._send_lock:
            self._conn.send(message)

    def call(self, kind: str, payload: Any = None, timeout: float = CALL_TIMEOUT) -> Any:
        if self.closed.is_set():
            raise ShardError("the connection to the other process is closed")
        ident = next(self._ids)
        future: Future[Any] = Future()
        with self._pending_lock:
            self._pending[ident] = future
        try:
            self._send(("req", ident, kind, payload))
        except (OSError, ValueError) as err:
            with self._pending_lock:
                self._pending.pop(ident, None)
            raise ShardError(f"cannot reach the other process: {err}") from None
        return future.result(timeout)

    def notify(self, kind: str, payload: Any = None) -> None:
        """Send without waiting for an answer (the other side's handler runs; its result is dropped)."""
        with contextlib.suppress(OSError, ValueError):
            self._send(("req", 0, kind, payload))

    def _read(self) -> None:
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                break
            if message[0] == "req":
                _tag, ident, kind, payload = message
                self._pool.submit(self._answer, ident, kind, payload)
            else:
                _tag, ident, ok, value = message
                with self._pending_lock:
                    future = self._pending.pop(ident, None)
                if future is not None:
                    if ok:
                        future.set_result(value)
                    else:
                        future.set_exception(ShardError(value))
        self.closed.set()
        with self._pending_lock:
            pending, self._pending = self._pending, {}
        for future in pending.values():
            future.set_exception(ShardError("the other process closed the connection"))
        if self._on_close is not None:
            self._on_close()

    def _answer(self, ident: int, kind: str, payload: Any) -> None:
        try:
            result: tuple[Any, ...] = ("res", ident, True, self._handler(kind, payload))
        except Exception as err:  # the caller gets the failure as a ShardError
            result = ("res", ident, False, f"{type(err).__name__}: {err}")
        if ident:
            with contextlib.suppress(OSError, ValueError):
                self._send(result)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.close()
        self._pool.shutdown(wait=False, cancel_futures=True)


def shard_of(index: int, processes: int) -> int:
    """The shard of the device at ``index`` in fleet order."""
    return index % processes


# ---- the shard (child process) ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ShardSpec:
    """What a shard needs to build its part of the lab (pickled to the child)."""

    index: int
    processes: int
    fleet_path: str
    work_dir: str
    speed: float
    origin: tuple[datetime, float]
    http_port: int | None
    https_port: int | None
    free_if_taken: bool
    admin: Account
    gpo_refresh: bool
    fault_profile: str | None
    ports_from_first: bool = False  # wait for the ports shard 0 listens on ("listen") before listening


class _RemotePolicy:
    """The parent's domain controllers, as a shard's devices see them (``GroupPolicySource``)."""

    def __init__(self, channel: Channel) -> None:
        self._channel = channel

    def policy_for(self, device_name: str, domain: str, user_sids: tuple[str, ...]) -> AppliedPolicy | None:
        result: AppliedPolicy | None = self._channel.call("policy_for", (device_name, domain, user_sids))
        return result


class _RemoteAccounts:
    """The parent's directory accounts (``AccountDirectory``)."""

    def __init__(self, channel: Channel) -> None:
        self._channel = channel

    def token_groups(self, user_sid: str) -> tuple[str, ...] | None:
        result: tuple[str, ...] | None = self._channel.call("token_groups", user_sid)
        return result

    def never_revealed(self, user_sid: str) -> bool | None:
        result: bool | None = self._channel.call("never_revealed", user_sid)
        return result


class _Shard:
    def __init__(self, spec: ShardSpec, conn: Connection) -> None:
        self.spec = spec
        self.stopped = threading.Event()
        self.ports_known = threading.Event()
        self.channel = Channel(conn, self.handle, on_close=self._parent_gone)
        fleet = load_fleet(spec.fleet_path)
        fleet.devices = [d for i, d in enumerate(fleet.devices) if shard_of(i, spec.processes) == spec.index]
        self.fleet = fleet
        start, origin_real = spec.origin
        self.clock = ScaledClock(start=start, speed=spec.speed, origin_real=origin_real)
        self.lab: Lab = new_lab(fleet, self.clock)
        self.lab.group_policy = _RemotePolicy(self.channel)
        self.lab.accounts = _RemoteAccounts(self.channel)
        self.lab.gpo_background_refresh = spec.gpo_refresh
        self.lab.on_change(self._on_change)
        faults = FaultPlan(load_fault_profile(Path(spec.fault_profile))) if spec.fault_profile else FaultPlan()
        self.server = LabServer(
            self.lab.executor,
            Path(spec.work_dir),
            http_port=spec.http_port,
            https_port=spec.https_port,
            faults=faults,
            free_if_taken=spec.free_if_taken,
        )
        self.background = BackgroundLab(self.server)
        self.control = ControlServer(self.lab, "", self._power)

    def _parent_gone(self) -> None:
        if not self.stopped.is_set():
            os._exit(3)  # the lab is gone: no shard outlives it

    def _on_change(self, what: str, device: Device) -> None:
        if what == "provisioned":  # the tenant registers the new Hello key from the device's state
            self.channel.notify("provisioned", device.model_dump(mode="json"))

    async def _power(self, device: str, action: str, duration: float | None) -> None:
        await power(self.lab, self.server, self.background, device, action, duration)

    def run(self) -> None:
        self.channel.start()
        for device in self.fleet.devices:
            self.lab.remember_group_policy(device)
            self.server.add_device(
                device.name, device.address, [self.spec.admin], computer_name=device.name, hostname=device.fqdn
            )
        if self.spec.ports_from_first:
            self.ports_known.wait()  # loaded while the first shard chose the ports; now listen on the same
        try:
            # Thousands of listeners on a busy machine take longer than one call's usual 30 seconds.
            self.background.start(timeout=READY_TIMEOUT)
        except OSError as err:  # TimeoutError included
            why = f"{err.strerror} ({err})" if err.strerror else f"{type(err).__name__} {err}".strip()
            self.channel.notify("failed", f"lab shard {self.spec.index} cannot listen: {why}")
            self.stopped.set()
            return
        self.lab.start_simulation()
        self.clock.start()
        self.channel.notify("ready", (self.server.http_port, self.server.https_port))
        self.stopped.wait()

    def handle(self, kind: str, payload: Any) -> Any:
        if kind == "control":
            method, path, query, args = payload
            return self.background.call(self.control.handle(method, path, query, args), timeout=CALL_TIMEOUT)
        if kind == "listen":
            self.server.http_port, self.server.https_port = payload
            self.ports_known.set()
            return None
        if kind == "check_in":
            name, settings, conflicting = payload
            apply_check_in(self.lab.device(name), self.fleet.tenant.tenant_id, settings, conflicting)
            return None
        if kind == "kerberos":
            keytabs, krb5_config = payload
            self.server.keytabs.update(keytabs)
            self.server.krb5_config = krb5_config
            return None
        if kind == "executions":
            return self.server.executions
        if kind == "stop":
            self.clock.stop()
            with contextlib.suppress(Exception):
                self.background.stop()
            devices = [d.model_dump(mode="json") for d in self.fleet.devices]
            self.stopped.set()
            return devices
        raise ValueError(f"unknown request {kind!r}")


def run_shard(spec: ShardSpec, conn: Connection) -> None:
    """A shard's process: serve its devices until the parent says stop (or goes away)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent stops us
    shard = _Shard(spec, conn)
    shard.run()
    # The answer to "stop" is on its way from a pool thread: let it leave before the process does.
    shard.channel._pool.shutdown(wait=True)


# ---- the parent ---------------------------------------------------------------------------------------------


@dataclass
class _Child:
    index: int
    process: BaseProcess
    channel: Channel
    ready: Future[tuple[int | None, int | None]]


class ShardedLabRuntime(LabRuntime):
    """A :class:`~migrator.lab.runtime.LabRuntime` whose devices run in ``processes`` child processes."""

    def __init__(
        self,
        fleet: Fleet,
        work_dir: Path,
        *,
        processes: int,
        fault_profile: Path | None = None,
        mp_context: BaseContext | None = None,
        **options: Any,
    ) -> None:
        """``processes``: how many shards (at least 1); ``fault_profile``: the YAML fault profile the shards
        load (the parent's Graph endpoint takes ``faults``, built from it by the caller); ``mp_context``: spawn
        by default (tests pass their forkserver). The other options are :class:`LabRuntime`'s."""
        if processes < 1:
            raise ValueError("processes must be at least 1")
        super().__init__(fleet, work_dir, **options)
        self.processes = processes
        self.fault_profile = fault_profile
        self._context = mp_context or multiprocessing.get_context("spawn")
        self._gpo_refresh = bool(options.get("gpo_refresh", True))
        self._children: list[_Child] = []
        self._shard_index = {d.name.casefold(): shard_of(i, processes) for i, d in enumerate(fleet.devices)}
        self._position = {d.name.casefold(): i for i, d in enumerate(fleet.devices)}
        self._stopping = False
        self.control.router = self._route
        self.tenant.forward_check_in = self._forward_check_in
        self.lab.gpo_background_refresh = False  # the shards refresh their devices; the parent's copies rest

    # ---- start ----------------------------------------------------------------------------------------------

    def _add_devices(self) -> None:
        """The shards listen for the devices; the parent's server only carries the event loop and the CA."""

    def _start_life(self) -> None:
        self.clock.start()  # the parent's clock runs the tenant's check-ins; the shards run the devices' lives
        fleet_path = self.work_dir / ".shard-fleet.json"
        save_fleet(self.fleet, fleet_path)
        # Every shard loads its devices at once; the first chooses the ports (free ones, or those asked for), the
        # others listen on the same two once it has (every device address has the same two ports).
        children = [
            self._spawn(i, fleet_path, self.server.http_port, self.server.https_port, self.ports.free_if_taken)
            for i in range(self.processes)
        ]
        http, https = self._wait_ready(children[0])
        for child in children[1:]:
            try:
                child.channel.call("listen", (http, https))
            except ShardError as err:
                self._abort_shards()
                raise InputError(f"lab shard {child.index} exited while starting: {err}") from None
        for child in children[1:]:
            self._wait_ready(child)
        fleet_path.unlink(missing_ok=True)
        self.server.http_port, self.server.https_port = http, https

    def _spawn(self, index: int, fleet_path: Path, http: int | None, https: int | None, free: bool) -> _Child:
        parent_end, child_end = self._context.Pipe(duplex=True)
        spec = ShardSpec(
            index=index,
            processes=self.processes,
            fleet_path=str(fleet_path),
            work_dir=str(self.work_dir),
            speed=self.clock.speed,
            origin=self.clock.origin,
            http_port=http,
            https_port=https,
            free_if_taken=free and index == 0,
            admin=self.admin_account,
            gpo_refresh=self._gpo_refresh,
            fault_profile=str(self.fault_profile) if self.fault_profile else None,
            ports_from_first=index > 0,
        )
        process = self._context.Process(  # type: ignore[attr-defined]
            target=run_shard, args=(spec, child_end), name=f"migrator-lab-shard-{index}", daemon=True
        )
        ready: Future[tuple[int | None, int | None]] = Future()
        channel = Channel(parent_end, lambda kind, payload: self._from_shard(index, ready, kind, payload))
        child = _Child(index, process, channel, ready)
        self._children.append(child)
        process.start()
        child_end.close()
        channel.start()
        return child

    def _wait_ready(self, child: _Child) -> tuple[int | None, int | None]:
        waited = 0.0
        while waited < READY_TIMEOUT:
            try:
                return child.ready.result(timeout=0.5)
            except TimeoutError:
                pass
            except InputError:
                self._abort_shards()
                raise
            waited += 0.5
            if not child.process.is_alive() or child.channel.closed.is_set():
                self._abort_shards()
                raise InputError(f"lab shard {child.index} exited while starting (exit code {child.process.exitcode})")
        self._abort_shards()
        raise InputError(f"lab shard {child.index} did not start in {READY_TIMEOUT:.0f}s")

    def _from_shard(self, index: int, ready: Future[tuple[int | None, int | None]], kind: str, payload: Any) -> Any:
        if kind == "policy_for":
            return self.group_policy.policy_for(*payload)
        if kind == "token_groups":
            return self.lab.accounts.token_groups(payload) if self.lab.accounts is not None else None
        if kind == "never_revealed":
            return self.lab.accounts.never_revealed(payload) if self.lab.accounts is not None else None
        if kind == "provisioned":
            device = self._refresh_copy(payload)
            self.lab._notify("provisioned", device)  # the tenant registers the key, as in one process
            return None
        if kind == "ready":
            ready.set_result(payload)
            return None
        if kind == "failed":
            ready.set_exception(InputError(str(payload)))
            return None
        raise ValueError(f"unknown request {kind!r} from shard {index}")

    def _refresh_copy(self, data: dict[str, Any]) -> Device:
        device = Device.model_validate(data)
        position = self._position[device.name.casefold()]
        self.fleet.devices[position] = device
        return device

    def _start_listeners(self) -> None:
        try:
            super()._start_listeners()
        except InputError:
            self._abort_shards()
            self._abort()
            raise

    def _accept_kerberos(self) -> None:
        assert self.kdc is not None
        keytabs: list[dict[str, Path]] = [{} for _ in range(self.processes)]
        for i, device in enumerate(self.fleet.devices):
            keytabs[shard_of(i, self.processes)][device.name] = self.kdc.keytab_for([device.name, device.fqdn])
        for child in self._children:
            child.channel.call("kerberos", (keytabs[child.index], self.kdc.krb5_conf_path))
        self.server.krb5_config = self.kdc.krb5_conf_path

    # ---- running --------------------------------------------------------------------------------------------

    def child_pids(self) -> list[int]:
        return [child.process.pid for child in self._children if child.process.pid is not None]

    def dead_shard(self) -> str | None:
        """Why the lab cannot go on (a shard exited or closed its connection), or None while all run."""
        if self._stopping:
            return None
        for child in self._children:
            if not child.process.is_alive() or child.channel.closed.is_set():
                child.process.join(timeout=1)
                code = child.process.exitcode
                how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
                return f"lab shard {child.index} (pid {child.process.pid}) died ({how}); the lab stops"
        return None

    @property
    def executions(self) -> int:
        total = 0
        for child in self._children:
            with contextlib.suppress(ShardError, TimeoutError):
                total += int(child.channel.call("executions", timeout=5))
        return total

    def _forward_check_in(self, name: str, settings: dict[str, int], conflicting: frozenset[str]) -> None:
        child = self._children[self._shard_index[name.casefold()]]
        child.channel.call("check_in", (name, settings, conflicting))

    async def _route(
        self, method: str, path: str, query: dict[str, list[str]], args: dict[str, Any]
    ) -> tuple[int, Any]:
        """A device command, answered by the shard that runs the device (truth: by each shard, merged)."""
        if path == "/v1/devices" and method == "GET":
            names = query.get("name", [])
            wanted: dict[int, list[str]] = {}
            for name in names:
                index = self._shard_index.get(name.casefold())
                if index is None:
                    return 400, {"error": f"no device named {name!r} in the lab"}
                wanted.setdefault(index, []).append(name)
            targets = sorted(wanted) if names else list(range(self.processes))
            answers = await asyncio.gather(
                *(self._ask(index, method, path, {"name": wanted.get(index, [])}, args) for index in targets)
            )
            devices: list[Any] = []
            for status, payload in answers:
                if status != 200:
                    return status, payload
                devices += payload["devices"]
            order = {name.casefold(): i for i, name in enumerate(names)} if names else self._position
            devices.sort(key=lambda d: order.get(str(d["name"]).casefold(), 0))
            return 200, {"clock": self.clock.now().isoformat(), "devices": devices}
        name = str(args.get("device", ""))
        index = self._shard_index.get(name.casefold())
        if index is None:
            return 400, {"error": f"no device named {name!r} in the lab"}
        return await self._ask(index, method, path, query, args)

    async def _ask(
        self, index: int, method: str, path: str, query: dict[str, list[str]], args: dict[str, Any]
    ) -> tuple[int, Any]:
        try:
            status, payload = await asyncio.to_thread(
                self._children[index].channel.call, "control", (method, path, query, args)
            )
        except ShardError as err:
            return 503, {"error": f"lab shard {index}: {err}"}
        return int(status), payload

    # ---- stop -----------------------------------------------------------------------------------------------

    def stop(self) -> Fleet:
        """Stop the shards (their devices' state comes back into the fleet), then the parent's services."""
        self._stopping = True
        for child in self._children:
            if child.process.is_alive() and not child.channel.closed.is_set():
                with contextlib.suppress(ShardError, TimeoutError):
                    for data in child.channel.call("stop", timeout=30):
                        self._refresh_copy(data)
        self._abort_shards()
        return super().stop()

    def _abort_shards(self) -> None:
        """End every shard process: asked first, then terminated, then killed; none is left behind."""
        for child in self._children:
            child.process.join(timeout=5)
            if child.process.is_alive():
                child.process.terminate()
                child.process.join(timeout=5)
            if child.process.is_alive():
                child.process.kill()
                child.process.join(timeout=5)
            child.channel.close()


def sharded_runtime(
    fleet: Fleet,
    work_dir: Path,
    processes: int,
    ports: LabPorts,
    faults: FaultPlan | None,
    fault_profile: Path | None,
    **options: Any,
) -> LabRuntime:
    """``lab up``'s runtime: in one process for ``processes == 1`` (as before), else sharded."""
    if processes == 1:
        return LabRuntime(fleet, work_dir, ports=ports, faults=faults, **options)
    return ShardedLabRuntime(
        fleet, work_dir, processes=processes, ports=ports, faults=faults, fault_profile=fault_profile, **options
    )


__all__ = ["Channel", "ShardError", "ShardedLabRuntime", "run_shard", "shard_of", "sharded_runtime"]
