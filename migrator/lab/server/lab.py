"""The fleet's WinRM front door: one event loop, two listeners per device, on the device's loopback address.

See the package docstring for the theory of operation.

Ports: every device listens on the same HTTP port and the same HTTPS port (one inventory ``port`` serves the
whole fleet). A port given as 0 is chosen when the first devices start listening: the first device's address is
bound with port 0, the kernel's choice is read back, and the other devices bind that same port; if one of them
finds it taken (another lab on a shared address), everything opened is closed and a fresh port is drawn. With
``free_if_taken`` a given port that some device address has taken is replaced the same way (the demo's and
``lab up``'s defaults). Once a device listens the ports never change: clients and inventories hold them, and a
device that comes back from a reboot binds them again.

A device's listeners are published (:attr:`DeviceRuntime.servers`) only once all of them listen, so "the device
listens" is never half true: a reader who sees listeners can connect to every one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import ssl
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from migrator.lab import shell
from migrator.lab.server.auth import Account, DeviceAccounts, NtlmUserFiles
from migrator.lab.server.certs import DeviceCertificate, LabCA
from migrator.lab.server.faults import FaultPlan, LabClock, RealClock
from migrator.lab.server.http import HttpConnection
from migrator.lab.server.service import DeviceService

log = logging.getLogger(__name__)

T = TypeVar("T")

# How often a shared free port is drawn again when another listener holds it on one of the device addresses.
FREE_PORT_ATTEMPTS = 20


@dataclass
class DeviceRuntime:
    """Everything the listeners of one device need."""

    lab: LabServer
    name: str
    address: str
    computer_name: str
    accounts: DeviceAccounts
    allow_basic: bool
    certificate: DeviceCertificate
    service: DeviceService
    servers: list[asyncio.Server] = field(default_factory=list)
    connections: set[HttpConnection] = field(default_factory=set)
    online: bool = True
    ssl_context: ssl.SSLContext | None = None
    hostname: str | None = None  # its DNS name (fqdn): the host of its SPNs


class LabServer:
    """WS-Man (WinRM) server for a simulated fleet; devices run their work through an :class:`Executor`."""

    def __init__(
        self,
        executor: shell.Executor,
        lab_dir: Path,
        *,
        http_port: int | None = 5985,
        https_port: int | None = 5986,
        faults: FaultPlan | None = None,
        clock: LabClock | None = None,
        free_if_taken: bool = False,
    ) -> None:
        """``http_port``/``https_port``: None = no such listener, 0 = a free port chosen at :meth:`start` (read
        the choice back from these attributes, or use :meth:`url`); ``free_if_taken``: a port that is taken on
        some device address is replaced by a free one instead of failing the start."""
        self.executor = executor
        self.http_port = http_port
        self.https_port = https_port
        self.free_if_taken = free_if_taken
        self.faults = faults or FaultPlan()
        self.clock: LabClock = clock or RealClock()
        self.ca = LabCA(lab_dir / "pki")
        self.ntlm_files = NtlmUserFiles()
        # Set by the runtime once the lab's KDCs run: the listeners then accept Kerberos too.
        self.keytabs: dict[str, Path] = {}  # device name -> the keytab of its SPNs
        self.krb5_config: Path | None = None
        self.devices: dict[str, DeviceRuntime] = {}
        self.executions = 0  # commands and pipelines started, for tests and benchmarks
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = False
        self._ports_settled = False  # a device has listened: the ports are what clients know, they stay
        self._listen_lock: asyncio.Lock | None = None  # one listen at a time (they may draw the shared ports)

    # ---- fleet ------------------------------------------------------------------------------------------

    @property
    def ca_bundle_path(self) -> Path:
        """PEM bundle of the lab CA: ``ca_trust_path`` (pywinrm) / ``cert_validation`` (pypsrp)."""
        return self.ca.bundle_path

    def add_device(
        self,
        name: str,
        address: str,
        accounts: Iterable[Account],
        *,
        computer_name: str | None = None,
        hostname: str | None = None,
        allow_basic: bool = True,
    ) -> DeviceRuntime:
        """Register a device; its listeners start with :meth:`start` (or at once if already started)."""
        if name in self.devices:
            raise ValueError(f"device {name!r} is already registered")
        if not ipaddress.ip_address(address).is_loopback:
            raise ValueError(f"device {name!r}: the lab listens on 127.0.0.0/8 only, not {address}")
        computer = (computer_name or name.split(".", 1)[0]).upper()
        table = DeviceAccounts(computer_name=computer, accounts=list(accounts))
        self.ntlm_files.write(name, table)
        runtime = DeviceRuntime(
            lab=self,
            name=name,
            address=address,
            computer_name=computer,
            accounts=table,
            allow_basic=allow_basic,
            certificate=self.ca.issue(hostname or name, address),
            service=DeviceService(
                name, computer, self.executor, faults=self.faults, clock=self.clock, on_exec=self._count_execution
            ),
            hostname=hostname,
        )
        self.devices[name] = runtime
        return runtime

    def set_accounts(self, name: str, accounts: Iterable[Account]) -> None:
        """Replace a device's accounts (a password change); existing authenticated connections stay valid."""
        device = self.devices[name]
        device.accounts = DeviceAccounts(computer_name=device.computer_name, accounts=list(accounts))
        self.ntlm_files.write(name, device.accounts)

    def url(self, name: str, https: bool = True) -> str:
        device = self.devices[name]
        port = self.https_port if https else self.http_port
        return f"{'https' if https else 'http'}://{device.address}:{port}/wsman"

    def _count_execution(self) -> None:
        self.executions += 1

    # ---- lifecycle --------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start listening for every device that is online and not yet listening."""
        self._started = True
        await self._listen(list(self.devices.values()))

    async def stop(self) -> None:
        for device in self.devices.values():
            await self._close_listeners(device)
            await device.service.reset()
        for task in list(self._tasks):
            task.cancel()
        self._started = False
        self.ntlm_files.close()

    async def _listen(self, candidates: list[DeviceRuntime]) -> None:
        """Listen (HTTP and HTTPS) on the address of each candidate that is online and not listening yet.

        All or nothing: a failure closes whatever this call opened. Each device's listeners are published
        together, after the last bind, and only if the device is still online then (a reboot or ``offline``
        that came while binding wins)."""
        if self._listen_lock is None:
            self._listen_lock = asyncio.Lock()
        async with self._listen_lock:
            devices = [d for d in candidates if d.online and not d.servers]
            if not devices:
                return
            for device in devices:
                if device.ssl_context is None:
                    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                    context.load_cert_chain(device.certificate.cert_path, device.certificate.key_path)
                    device.ssl_context = context
            opened: dict[str, list[asyncio.Server]] = {d.name: [] for d in devices}
            chosen: dict[bool, int] = {}
            try:
                for https in (False, True):
                    port = self.https_port if https else self.http_port
                    if port is None:
                        continue
                    chosen[https], servers = await self._bind(devices, https, port)
                    for device, server in zip(devices, servers, strict=True):
                        opened[device.name].append(server)
            except BaseException:
                await self._close_servers([s for servers in opened.values() for s in servers])
                raise
            self.http_port = chosen.get(False, self.http_port)
            self.https_port = chosen.get(True, self.https_port)
            self._ports_settled = True
            for device in devices:
                if device.online and not device.servers:
                    device.servers = opened[device.name]
                else:
                    await self._close_servers(opened[device.name])

    async def _bind(self, devices: list[DeviceRuntime], https: bool, port: int) -> tuple[int, list[asyncio.Server]]:
        """One listener per device, all on one port: ``port``, or a free one (see the module docstring)."""
        if port != 0:
            try:
                return port, await self._bind_each(devices, https, port)
            except OSError as err:
                if not (err.errno == errno.EADDRINUSE and self.free_if_taken and not self._ports_settled):
                    raise
                log.info("port %d is taken on a device address: listening on a free port instead", port)
        for _ in range(FREE_PORT_ATTEMPTS):
            first = await self._open(devices[0], https, 0)
            free = int(first.sockets[0].getsockname()[1])
            try:
                return free, [first, *await self._bind_each(devices[1:], https, free)]
            except OSError as err:
                await self._close_servers([first])
                if err.errno != errno.EADDRINUSE:
                    raise
        raise OSError(
            errno.EADDRINUSE,
            f"no {'HTTPS' if https else 'HTTP'} port was free on all {len(devices)} device addresses "
            f"in {FREE_PORT_ATTEMPTS} draws",
        )

    async def _bind_each(self, devices: list[DeviceRuntime], https: bool, port: int) -> list[asyncio.Server]:
        servers: list[asyncio.Server] = []
        try:
            for device in devices:
                servers.append(await self._open(device, https, port))
        except BaseException:
            await self._close_servers(servers)
            raise
        return servers

    async def _open(self, device: DeviceRuntime, https: bool, port: int) -> asyncio.Server:
        return await asyncio.start_server(
            self._acceptor(device, https),
            host=device.address,
            port=port,
            ssl=device.ssl_context if https else None,
            reuse_address=True,
            backlog=128,
        )

    def _acceptor(
        self, device: DeviceRuntime, https: bool
    ) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            connection = HttpConnection(device, https, reader, writer, self._schedule)
            device.connections.add(connection)
            try:
                await connection.serve()
            finally:
                device.connections.discard(connection)

        return accept

    async def _close_listeners(self, device: DeviceRuntime) -> None:
        # Not under the listen lock, and with no await before the sockets are closed: a reboot or drop fault
        # closes the listeners before the client sees its connection go, so its next connect is refused.
        servers, device.servers = device.servers, []
        for server in servers:
            server.close()
        for connection in list(device.connections):
            connection.writer.transport.abort()
        await self._close_servers(servers)

    @staticmethod
    async def _close_servers(servers: list[asyncio.Server]) -> None:
        for server in servers:
            server.close()
        for server in servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()

    def _schedule(self, work: Awaitable[None]) -> None:
        async def runner() -> None:
            await work

        task = asyncio.ensure_future(runner())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- faults as operations ---------------------------------------------------------------------------

    async def take_offline(self, name: str, duration: float | None = None) -> None:
        """Stop listening (clients get connection refused); back after ``duration`` if given."""
        device = self.devices[name]
        device.online = False
        await self._close_listeners(device)
        if duration is not None:
            await self.clock.sleep(duration)
            await self.bring_online(name)

    async def bring_online(self, name: str) -> None:
        device = self.devices[name]
        device.online = True
        if self._started:
            await self._listen([device])

    async def reboot(self, name: str, down_for: float = 0.0) -> None:
        """A reboot: listeners down for ``down_for``, every shell and runspace lost; device state is kept."""
        device = self.devices[name]
        device.online = False
        await self._close_listeners(device)
        await device.service.reset()
        await self.clock.sleep(down_for)
        await self.bring_online(name)


class BackgroundLab:
    """Runs a :class:`LabServer` on its own event loop thread, for synchronous callers (tests, ``lab up``)."""

    def __init__(self, server: LabServer) -> None:
        self.server = server
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="migrator-lab-server", daemon=True)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run ``coro`` on the server loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self, timeout: float = 30.0) -> None:
        """Start the loop thread and the server's listeners (waiting up to ``timeout`` seconds for them)."""
        self._thread.start()
        self.call(self.server.start(), timeout)

    def stop(self) -> None:
        try:
            self.call(self.server.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()

    @contextlib.contextmanager
    def running(self) -> Iterator[BackgroundLab]:
        self.start()
        try:
            yield self
        finally:
            self.stop()
