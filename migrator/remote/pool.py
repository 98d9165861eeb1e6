"""Keep a device's transport (its PSRP runspace pool) open between the visits of one wave.

A device that waits (for a sign-in, a DC, a re-provisioned container) is visited again; opening a new runspace
pool for each visit costs the authentication legs, the WS-Man Create and the Receive that reports the pool
opened, and closing it a Delete. When the next visit comes soon, the pool of the last one is reused instead.
It is not kept for long: WinRM closes idle shells itself (``IdleTimeout``, 2 h by default; MS-WSMV 3.1.4.1 lets
the service drop a shell at any time), and a wave of thousands of waiting devices must not hold thousands of
shells. So a pool idle for longer than ``max_idle`` seconds, or beyond the ``max_open`` most recently used, is
closed; a reused pool that the device has dropped fails like any lost connection (the adapters discard it and
the step is retried or deferred by the usual rules).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from migrator.inventory import Connection, DeviceEntry
from migrator.remote.credentials import Credentials
from migrator.remote.transport import ScriptResult, Transport, run_scripts
from migrator.scripts import Script

Factory = Callable[[DeviceEntry, Connection, Credentials], Transport]


class _Lease:
    """What one visit holds: the pooled transport, with ``close`` giving it back instead of closing it."""

    def __init__(self, pool: TransportPool, key: str, inner: Transport) -> None:
        self._pool = pool
        self._key = key
        self._inner = inner
        self._start = inner.requests_sent
        self._closed = False

    @property
    def device(self) -> str:
        return self._inner.device

    @property
    def requests_sent(self) -> int:
        """This visit's requests only (the pooled transport counts since it was opened)."""
        return self._inner.requests_sent - self._start

    def run(self, script: Script, parameters: Mapping[str, Any] | None = None) -> ScriptResult:
        return self._inner.run(script, parameters)

    def run_batch(self, items: Sequence[tuple[Script, Mapping[str, Any] | None]]) -> list[ScriptResult]:
        return run_scripts(self._inner, items)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._pool.give_back(self._key, self._inner)


class TransportPool:
    """Open transports by device, handed out one visit at a time (a device's visits never overlap)."""

    def __init__(
        self,
        factory: Factory,
        *,
        max_idle: float = 60.0,
        max_open: int = 256,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._factory = factory
        self._max_idle = max_idle
        self._max_open = max_open
        self._monotonic = monotonic
        self._idle: OrderedDict[str, tuple[Transport, float]] = OrderedDict()  # least recently used first
        self._lock = threading.Lock()
        self.opened = 0
        self.reused = 0

    def lease(self, entry: DeviceEntry, connection: Connection, credentials: Credentials) -> Transport:
        key = entry.name.casefold()
        stale: list[Transport] = []
        with self._lock:
            found = self._idle.pop(key, None)
            stale.extend(self._expire())
            if found is not None and self._monotonic() - found[1] > self._max_idle:
                stale.append(found[0])
                found = None
            if found is not None:
                self.reused += 1
        self._close(stale)
        if found is not None:
            return _Lease(self, key, found[0])
        inner = self._factory(entry, connection, credentials)
        with self._lock:
            self.opened += 1
        return _Lease(self, key, inner)

    def give_back(self, key: str, transport: Transport) -> None:
        with self._lock:
            self._idle[key] = (transport, self._monotonic())
            self._idle.move_to_end(key)
            surplus = []
            while len(self._idle) > self._max_open:
                _, (old, _) = self._idle.popitem(last=False)
                surplus.append(old)
            surplus.extend(self._expire())
        self._close(surplus)

    def discard(self, device: str) -> None:
        """Close a device's pool now (it reached a final state: no visit will come)."""
        with self._lock:
            found = self._idle.pop(device.casefold(), None)
        if found is not None:
            self._close([found[0]])

    def close_idle(self) -> None:
        """Close what has been idle longer than ``max_idle`` now (the wave is about to sleep)."""
        with self._lock:
            expired = self._expire()
        self._close(expired)

    def close(self) -> None:
        with self._lock:
            every = [t for t, _ in self._idle.values()]
            self._idle.clear()
        self._close(every)

    def _expire(self) -> list[Transport]:
        now = self._monotonic()
        expired = [k for k, (_, since) in self._idle.items() if now - since > self._max_idle]
        return [self._idle.pop(k)[0] for k in expired]

    @staticmethod
    def _close(transports: list[Transport]) -> None:
        for transport in transports:
            transport.close()  # the adapters never raise from close (a device gone away is not an error)
