"""Loopback addresses and ports for the labs the tests start: drawn at random and checked, never fixed.

Labs in tests listen on port 0 (:class:`~migrator.lab.server.LabServer` then chooses one free port that every
device address can take), so two runs of the suite at once (another worktree, CI) never need distinct addresses
to work. Addresses are still drawn at random, one /24 block per lab from 127.100.0.0 to 127.250.255.255: clear of
127.0.0.1, of ``lab up``'s default fleet (127.20.x.y) and of the demo's (127.30.x.y), so that a lab a developer
runs by hand and the tests rarely share an address at all.
"""

from __future__ import annotations

import errno
import random
import socket
from collections.abc import Iterator
from contextlib import contextmanager

# Not the global generator: hypothesis and the fleet generators seed that one, and every lab would draw alike.
_draw = random.SystemRandom()
_PER_BLOCK = 254  # .1 to .254


def free_addresses(count: int) -> list[str]:
    """``count`` distinct loopback addresses in a random block (consecutive /24s past 254), each checked by a bind.

    The check binds port 0 on each address: it proves the address is usable for a listener here (all of
    127.0.0.0/8 is on Linux; elsewhere only some may be), not that no one else ever listens on it, which is
    why the labs use free ports as well."""
    if count < 1:
        raise ValueError("count >= 1")
    second, third = _draw.randint(100, 250), _draw.randrange(256)
    addresses = [
        f"127.{second}.{(third + index // _PER_BLOCK) % 256}.{index % _PER_BLOCK + 1}" for index in range(count)
    ]
    for address in addresses:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((address, 0))
    return addresses


@contextmanager
def listening(address: str, port: int = 0) -> Iterator[int]:
    """Hold ``address:port`` (0: a free port) with a listening socket, as another program would; yields the port.

    If that port is already held there, it is held by someone else: the caller sees the same thing (a taken
    port), so that is not an error."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        try:
            holder.bind((address, port))
            holder.listen(1)
        except OSError as err:
            if port == 0 or err.errno != errno.EADDRINUSE:
                raise
        yield port or int(holder.getsockname()[1])


@contextmanager
def closed_port(address: str = "127.0.0.1") -> Iterator[int]:
    """A port on ``address`` where a connection is refused: bound by this socket, which never listens."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind((address, 0))
        yield int(holder.getsockname()[1])
