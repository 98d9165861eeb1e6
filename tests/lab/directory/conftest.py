"""A running set of lab domain controllers for the directory tests: free loopback addresses, free ports."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import ldap3
import pytest

from migrator.lab.directory.build import DomainDirectory, build_directories
from migrator.lab.directory.server import DirectoryServer, DomainControllerRuntime
from migrator.lab.fleet import generate_fleet, parse_mix
from migrator.lab.model import Fleet
from migrator.lab.server.certs import LabCA
from tests.loopback import free_addresses

PASSWORD = "Lab-Passw0rd!"
ADMIN = "migrator-admin"
CORP = "corp.contoso.com"
CORP_DN = "DC=corp,DC=contoso,DC=com"


@dataclass
class RunningDirectory:
    fleet: Fleet
    server: DirectoryServer
    ca_path: Path

    def dc(self, domain: str = CORP) -> DomainControllerRuntime:
        return self.server.controller(domain)

    def directory(self, domain: str = CORP) -> DomainDirectory:
        return self.dc(domain).directory

    def ldap(self, domain: str = CORP) -> ldap3.Server:
        dc = self.dc(domain)
        return ldap3.Server(dc.address, port=dc.ldap_port, get_info=ldap3.NONE)

    def ldaps(self, domain: str = CORP) -> ldap3.Server:
        dc = self.dc(domain)
        tls = ldap3.Tls(validate=2, ca_certs_file=str(self.ca_path))  # ssl.CERT_REQUIRED
        return ldap3.Server(dc.address, port=dc.ldaps_port, use_ssl=True, tls=tls, get_info=ldap3.NONE)

    def admin(self, domain: str = CORP) -> ldap3.Connection:
        """An NTLM-bound connection as the lab admin (``LAB\\migrator-admin``), as ldap3 does NTLM."""
        connection = ldap3.Connection(
            self.ldap(domain), user=f"LAB\\{ADMIN}", password=PASSWORD, authentication=ldap3.NTLM
        )
        assert connection.bind(), connection.result
        return connection


def start_directory(fleet: Fleet, tmp: Path) -> tuple[RunningDirectory, asyncio.AbstractEventLoop, threading.Thread]:
    directories = build_directories(fleet)
    addresses = dict(zip(directories, free_addresses(len(directories)), strict=True))
    ca = LabCA(tmp / "pki")
    server = DirectoryServer(directories, ca, addresses, ldap_port=0, ldaps_port=0)
    for key, directory in directories.items():
        entry = directory.tree.find_account(ADMIN)
        assert entry is not None
        server.set_password(entry, key, PASSWORD)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(30)
    return RunningDirectory(fleet, server, ca.bundle_path), loop, thread


def stop_directory(running: RunningDirectory, loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    asyncio.run_coroutine_threadsafe(running.server.stop(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


@contextmanager
def seeded_directory(tmp: Path, devices: int = 60) -> Iterator[RunningDirectory]:
    """Three domains from a seeded fleet (seed 21), as `lab up` builds them, on free addresses and ports."""
    fleet = generate_fleet(devices, 21, parse_mix("key=50,cert=40,cloud=5,none=5"))
    running, loop, thread = start_directory(fleet, tmp)
    try:
        yield running
    finally:
        stop_directory(running, loop, thread)


@pytest.fixture(scope="module")
def lab_directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDirectory]:
    """Three domains from a seeded 60-device fleet, as `lab up` builds them, on free addresses and ports."""
    with seeded_directory(tmp_path_factory.mktemp("dc")) as running:
        yield running
