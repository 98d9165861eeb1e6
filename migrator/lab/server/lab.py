"""The fleet's WinRM front door: one event loop, two listeners per device, on the device's loopback address.

See the package docstring for the theory of operation.
"""

from __future__ import annotations

import asyncio
import contextlib
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
    ) -> None:
        self.executor = executor
        self.http_port = http_port
        self.https_port = https_port
        self.faults = faults or FaultPlan()
        self.clock: LabClock = clock or RealClock()
        self.ca = LabCA(lab_dir / "pki")
        self.ntlm_files = NtlmUserFiles()
        self.devices: dict[str, DeviceRuntime] = {}
        self.executions = 0  # commands and pipelines started, for tests and benchmarks
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = False

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
        for device in self.devices.values():
            if device.online and not device.servers:
                await self._listen(device)

    async def stop(self) -> None:
        for device in self.devices.values():
            await self._close_listeners(device)
            await device.service.reset()
        for task in list(self._tasks):
            task.cancel()
        self._started = False
        self.ntlm_files.close()

    async def _listen(self, device: DeviceRuntime) -> None:
        if device.ssl_context is None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(device.certificate.cert_path, device.certificate.key_path)
            device.ssl_context = context
        for port, https in ((self.http_port, False), (self.https_port, True)):
            if port is None:
                continue
            server = await asyncio.start_server(
                self._acceptor(device, https),
                host=device.address,
                port=port,
                ssl=device.ssl_context if https else None,
                reuse_address=True,
                backlog=128,
            )
            device.servers.append(server)

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
        servers, device.servers = device.servers, []
        for server in servers:
            server.close()
        for connection in list(device.connections):
            connection.writer.transport.abort()
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
        if self._started and not device.servers:
            await self._listen(device)

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

    def start(self) -> None:
        self._thread.start()
        self.call(self.server.start())

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
