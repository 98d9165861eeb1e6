"""The wave's transport pool: one open transport per device across visits, closed when idle, final or surplus."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr

from migrator.inventory import Connection, DeviceEntry
from migrator.remote.credentials import Credentials
from migrator.remote.pool import TransportPool
from migrator.remote.transport import ScriptResult
from migrator.scripts import Script

CREDS = Credentials("CORP\\admin", SecretStr("pw"))
CONN = Connection()
SCRIPT = Script("x", "x", idempotent=True)


class Fake:
    def __init__(self, name: str) -> None:
        self.name = name
        self.requests = 0
        self.closed = 0
        self.open = False

    @property
    def device(self) -> str:
        return self.name

    @property
    def requests_sent(self) -> int:
        return self.requests

    def run(self, script: Script, parameters: Mapping[str, Any] | None = None) -> ScriptResult:
        if not self.open:  # opened on first use, as the adapters do: authentication, Create, Receive
            self.open, self.requests = True, self.requests + 3
        self.requests += 2
        return ScriptResult({})

    def close(self) -> None:
        self.closed += 1


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _pool(clock: Clock, **kwargs: Any) -> tuple[TransportPool, list[Fake]]:
    made: list[Fake] = []

    def factory(entry: DeviceEntry, _c: Connection, _k: Credentials) -> Fake:
        made.append(Fake(entry.name))
        return made[-1]

    return TransportPool(factory, monotonic=clock, **kwargs), made


def _entry(name: str) -> DeviceEntry:
    return DeviceEntry(name=name, address="127.0.0.1")


def test_a_second_visit_soon_after_reuses_the_open_transport_and_counts_its_own_requests() -> None:
    clock = Clock()
    pool, made = _pool(clock)
    first = pool.lease(_entry("PC-1"), CONN, CREDS)
    first.run(SCRIPT)
    assert first.requests_sent == 5
    first.close()
    first.close()  # twice is once
    clock.now = 30
    second = pool.lease(_entry("pc-1"), CONN, CREDS)
    second.run(SCRIPT)
    assert second.requests_sent == 2 and len(made) == 1 and made[0].closed == 0
    assert (pool.opened, pool.reused) == (1, 1)
    second.close()
    pool.discard("PC-1")  # final: closed at once
    assert made[0].closed == 1
    pool.close()
    assert made[0].closed == 1


def test_idle_and_surplus_transports_are_closed() -> None:
    clock = Clock()
    pool, made = _pool(clock, max_idle=60, max_open=2)
    for name in ("A", "B", "C"):
        pool.lease(_entry(name), CONN, CREDS).close()
    assert [f.closed for f in made] == [1, 0, 0]  # A was the least recently used beyond max_open
    clock.now = 61
    again = pool.lease(_entry("B"), CONN, CREDS)  # B idled too long: a fresh one; C expires too
    assert len(made) == 4 and [f.closed for f in made] == [1, 1, 1, 0]
    again.close()
    clock.now = 200
    pool.close_idle()  # the wave goes to sleep: B's pool has idled past max_idle
    assert made[3].closed == 1
    pool.close()
    assert made[3].closed == 1
