"""The lease heartbeat: a worker's device leases are short, and renewed while the worker lives.

Theory of operation
-------------------
* A lease lasts :data:`DEFAULT_LEASE_SECONDS` (``migrator run/resume --lease-seconds``), so the devices of a
  worker that died anywhere come back within about that long; on the worker's own host at once, because
  :meth:`migrator.store.Store.acquire` sees that the holder's process is gone.
* A live worker must not lose a lease in the middle of a long step (a slow script, a device rebooting).
  :class:`LeaseKeeper` renews every lease it holds every third of the TTL, from one daemon thread, so a lease
  survives two missed beats. The thread runs only while a lease is held: it starts with the first
  :meth:`~LeaseKeeper.acquire` and ends once the last lease is released.
* Renewing is the store's strict :meth:`~migrator.store.Store.renew`: an expired lease is not taken back,
  because another worker may have acted on the device meanwhile. A renewal that finds the lease gone drops
  the device and logs it; the visit learns it at its next fenced write (``LeaseNotHeld``) and stops. A store
  that is busy or unreachable only delays a beat: the next one tries again.
* Time is injected: ``monotonic`` measures when a beat is due and ``wait(seconds)`` passes the time (by
  default an event that a release sets, so the thread ends without waiting out its interval).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from types import TracebackType

from migrator.errors import InputError
from migrator.logs import get_logger
from migrator.store import LeaseNotHeld, Store, StoreError

DEFAULT_LEASE_SECONDS = 60.0
BEATS_PER_TTL = 3  # a lease outlives two missed beats

_log = get_logger("engine.leases")


class LeaseKeeper:
    """Takes, renews (every ``ttl_seconds / 3``) and releases the device leases one worker holds in one store.

    Each device is held under the owner it was acquired with (a :class:`~migrator.store.LeaseOwner`'s text, or
    any string). Thread-safe: the visits of a wave share one keeper."""

    def __init__(
        self,
        store: Store,
        *,
        ttl_seconds: float = DEFAULT_LEASE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
        wait: Callable[[float], object] | None = None,
    ) -> None:
        if ttl_seconds <= 0:
            raise InputError(f"lease seconds must be positive, not {ttl_seconds}")
        self.store = store
        self.ttl_seconds = ttl_seconds
        self.interval = ttl_seconds / BEATS_PER_TTL
        self._monotonic = monotonic
        self._wake = threading.Event()
        self._wait = wait or self._wake.wait
        self._lock = threading.Lock()
        self._held: dict[str, str] = {}  # device -> owner
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------------ holding

    def acquire(self, device: str, owner: str) -> bool:
        """Take the device's lease for ``owner`` (see :meth:`Store.acquire`) and keep it renewed; False when
        another live worker holds it."""
        if not self.store.acquire(device, owner, self.ttl_seconds):
            return False
        self.hold(device, owner)
        return True

    def hold(self, device: str, owner: str) -> None:
        """Keep renewing a lease ``owner`` already holds (starting the heartbeat if it is not running)."""
        with self._lock:
            self._held[device] = owner
            if self._thread is None:
                self._thread = threading.Thread(target=self._beat, name="lease-keeper", daemon=True)
                self._thread.start()

    def release(self, device: str) -> bool:
        """Stop renewing the device's lease and give it up; False when it was not held (or no longer was)."""
        with self._lock:
            owner = self._held.pop(device, None)
        self._wake.set()  # the heartbeat ends at once when nothing is left to renew
        return owner is not None and self.store.release(device, owner)

    def release_all(self) -> None:
        """Give up every lease still held (at the end of a run); the keeper can be used again afterwards."""
        for device in self.held():
            try:
                self.release(device)
            except StoreError as error:  # it expires by itself within one TTL
                _log.warning("lease not released", device=device, error=str(error))

    def held(self) -> dict[str, str]:
        """The devices whose leases are being renewed, with their owners."""
        with self._lock:
            return dict(self._held)

    @property
    def running(self) -> bool:
        """Whether the heartbeat thread runs (it does exactly while leases are held)."""
        with self._lock:
            return self._thread is not None

    def __enter__(self) -> LeaseKeeper:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release_all()

    # ---------------------------------------------------------------------------------- heartbeat

    def renew_all(self) -> dict[str, datetime]:
        """One beat: renew every held lease; returns the new expiries. A lease found gone is dropped."""
        renewed: dict[str, datetime] = {}
        for device, owner in self.held().items():
            try:
                renewed[device] = self.store.renew(device, owner, self.ttl_seconds)
            except LeaseNotHeld as error:
                with self._lock:
                    if self._held.get(device) != owner:
                        continue  # released while this beat ran: nothing was lost
                    del self._held[device]
                _log.warning("lease lost: another worker may act on the device now", device=device, error=str(error))
            except StoreError as error:
                _log.warning(
                    "lease not renewed at this beat; the next one tries again", device=device, error=str(error)
                )
        return renewed

    def _beat(self) -> None:
        due = self._monotonic() + self.interval
        while True:
            self._wait(max(0.0, due - self._monotonic()))
            if self._monotonic() >= due:
                self.renew_all()
                due = self._monotonic() + self.interval
            with self._lock:
                self._wake.clear()
                if not self._held:  # all released, or the last lease lost at this beat
                    self._thread = None
                    return
