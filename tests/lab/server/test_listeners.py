"""Listeners: free ports chosen once for the whole fleet, and a device that listens on all its ports or none."""

from __future__ import annotations

import asyncio
import errno
import socket
from pathlib import Path

import pytest
import requests

from migrator.lab.server import BackgroundLab, LabServer
from tests.lab.server.conftest import ADMIN, FakeExecutor, Fleet
from tests.loopback import free_addresses, listening

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def _accepts(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(5)
        return probe.connect_ex((address, port)) == 0


def _server(tmp_path: Path, addresses: list[str], **ports: object) -> LabServer:
    server = LabServer(FakeExecutor(), tmp_path, **ports)  # type: ignore[arg-type]
    for index, address in enumerate(addresses):
        server.add_device(f"pc-{index + 1:03d}", address, [ADMIN])
    return server


def test_port_zero_is_one_free_port_shared_by_every_device(fleet: Fleet) -> None:
    """With ports 0 the lab picks one HTTP and one HTTPS port; every device listens on both; url() names them."""
    http, https = fleet.server.http_port, fleet.server.https_port
    assert http and https and http != https
    for name in fleet.devices:
        address = fleet.address(name)
        assert _accepts(address, http) and _accepts(address, https)
        assert fleet.server.url(name) == f"https://{address}:{https}/wsman"
    response = requests.post(fleet.server.url("pc-002", https=False), data=b"", timeout=5)
    assert response.status_code == 401  # a WinRM listener: it asks for Negotiate


def test_a_port_taken_on_one_address_is_replaced_when_allowed(tmp_path: Path) -> None:
    """free_if_taken: a given port that another program holds on a device address becomes a free shared port."""
    addresses = free_addresses(3)
    with listening(addresses[1]) as taken:
        strict = BackgroundLab(_server(tmp_path / "strict", addresses, http_port=taken, https_port=None))
        with pytest.raises(OSError) as caught:
            strict.start()
        strict.stop()
        assert caught.value.errno == errno.EADDRINUSE
        server = _server(tmp_path / "lenient", addresses, http_port=taken, https_port=None, free_if_taken=True)
        with BackgroundLab(server).running():
            assert server.http_port not in (None, 0, taken)
            assert all(_accepts(address, server.http_port) for address in addresses)  # type: ignore[arg-type]


def test_a_free_port_is_drawn_again_when_another_address_has_it(tmp_path: Path) -> None:
    """The port the kernel gives the first address may be taken on another: everything closes, a new one is drawn."""
    addresses = free_addresses(2)
    held: list[socket.socket] = []

    class Crowded(LabServer):
        """Another program takes the first port drawn, on the second address, just before the lab gets there."""

        async def _open(self, device, https, port):  # type: ignore[no-untyped-def]
            if device.address == addresses[1] and not held:
                squatter = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                squatter.bind((device.address, port))
                squatter.listen(1)
                held.append(squatter)
            return await super()._open(device, https, port)

    server = Crowded(FakeExecutor(), tmp_path, http_port=0, https_port=None)
    for index, address in enumerate(addresses):
        server.add_device(f"pc-{index + 1:03d}", address, [ADMIN])
    try:
        with BackgroundLab(server).running():
            first_draw = held[0].getsockname()[1]
            assert server.http_port not in (None, 0, first_draw)
            assert all(_accepts(address, server.http_port) for address in addresses)  # type: ignore[arg-type]
    finally:
        held[0].close()


def test_a_device_comes_back_with_all_its_listeners_at_once(fleet: Fleet) -> None:
    """Watched at every step of the server loop, a device coming online has no listener or all, never some."""
    device = fleet.server.devices["pc-001"]

    async def watch() -> set[int]:
        await fleet.server.take_offline("pc-001")
        coming = asyncio.ensure_future(fleet.server.bring_online("pc-001"))
        seen = set()
        while not coming.done():
            seen.add(len(device.servers))
            await asyncio.sleep(0)
        await coming
        return seen | {len(device.servers)}

    assert fleet.lab.call(watch()) == {0, 2}
    assert _accepts(fleet.address("pc-001"), fleet.https_port)


def test_two_bring_online_at_once_listen_once(fleet: Fleet) -> None:
    """A device brought online twice at once (a timed offline ending as someone brings it back) just listens."""

    async def twice() -> None:
        await fleet.server.take_offline("pc-002")
        await asyncio.gather(fleet.server.bring_online("pc-002"), fleet.server.bring_online("pc-002"))

    fleet.lab.call(twice())
    assert len(fleet.server.devices["pc-002"].servers) == 2
    assert _accepts(fleet.address("pc-002"), fleet.http_port)


def test_going_offline_while_coming_online_stays_offline(fleet: Fleet) -> None:
    """An offline that arrives while the device binds its ports wins: it ends with no listener, refusing."""

    async def race() -> None:
        await fleet.server.take_offline("pc-001")
        coming = asyncio.ensure_future(fleet.server.bring_online("pc-001"))
        await asyncio.sleep(0)  # the bring-online is now binding
        await fleet.server.take_offline("pc-001")
        await coming

    fleet.lab.call(race())
    assert fleet.server.devices["pc-001"].servers == []
    assert not _accepts(fleet.address("pc-001"), fleet.https_port)
