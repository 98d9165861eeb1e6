"""Serving the dashboard with uvicorn: who may listen where, the socket, TLS, and running until stopped.

The socket is bound here (port 0: a free one) and handed to uvicorn, so the URL printed is the one that listens,
and a port already taken is said before anything starts. uvicorn keeps its own logging off (``log_config=None``,
no access log): :class:`migrator.web.app.Protect` writes one structured record per request to the project's log.
"""

from __future__ import annotations

import errno
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

from migrator.errors import InputError
from migrator.web.security import OperatorToken, is_loopback

# Seconds uvicorn waits for open requests when stopping: event streams never end by themselves.
GRACEFUL_SECONDS = 1


@dataclass(frozen=True)
class Listen:
    host: str
    port: int
    tls_cert: Path | None = None
    tls_key: Path | None = None

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None


def check_listen(listen: Listen, token: OperatorToken | None) -> None:
    """Refuse what would expose the store: beyond loopback, TLS and a token are required (every page then
    needs a login). Raises :class:`InputError` naming the option to add."""
    if (listen.tls_cert is None) != (listen.tls_key is None):
        raise InputError("--tls-cert and --tls-key go together: give both, or neither")
    for option, path in (("--tls-cert", listen.tls_cert), ("--tls-key", listen.tls_key)):
        if path is not None and not path.is_file():
            raise InputError(f"{option} {path}: no such file")
    if is_loopback(listen.host):
        return
    missing = [
        what
        for what, absent in (
            ("--tls-cert and --tls-key (the pages and the token must not cross the network in clear)", not listen.tls),
            ("--operator-token-file (every page then needs it)", token is None),
        )
        if absent
    ]
    if missing:
        raise InputError(
            f"--host {listen.host} is reachable from other machines: it needs {' and '.join(missing)}; "
            "or listen on 127.0.0.1"
        )


def bind(listen: Listen) -> socket.socket:
    """The listening socket (port 0: a free one); :class:`InputError` when the address cannot be had."""
    family = socket.AF_INET6 if ":" in listen.host else socket.AF_INET
    try:
        return socket.create_server((listen.host.strip("[]"), listen.port), family=family, reuse_port=False)
    except OSError as error:
        why = "the port is taken" if error.errno == errno.EADDRINUSE else (error.strerror or str(error))
        raise InputError(f"cannot listen on {listen.host}:{listen.port}: {why}") from None


def url_of(sock: socket.socket, listen: Listen) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if listen.tls else 'http'}://{shown}:{port}/"


class _Server(uvicorn.Server):
    """uvicorn's server that tells the dashboard's event streams to end when it stops (they would otherwise
    hold the graceful shutdown until its timeout)."""

    def __init__(self, config: uvicorn.Config, stopping: threading.Event) -> None:
        super().__init__(config)
        self.stopping = stopping

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.stopping.set()
        await super().shutdown(sockets)


def server_for(app: Starlette, listen: Listen) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        ssl_certfile=str(listen.tls_cert) if listen.tls_cert else None,
        ssl_keyfile=str(listen.tls_key) if listen.tls_key else None,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        lifespan="on",
    )
    try:
        config.load()  # TLS files are read here: a bad certificate or key is bad input, said before serving
    except (ssl.SSLError, OSError) as error:
        raise InputError(f"--tls-cert {listen.tls_cert} / --tls-key {listen.tls_key}: {error}") from None
    dashboard = getattr(app.state, "dashboard", None)
    return _Server(config, dashboard.stopping if dashboard is not None else threading.Event())


def serve_forever(app: Starlette, sock: socket.socket, listen: Listen) -> None:
    """Serve until Ctrl-C or SIGTERM. uvicorn stops gracefully, then raises the signal again for the default
    handler: Ctrl-C is how a dashboard is meant to end, so that KeyboardInterrupt is the normal end."""
    server = server_for(app, listen)
    with suppress(KeyboardInterrupt):
        server.run(sockets=[sock])


@contextmanager
def serving(app: Starlette, listen: Listen) -> Iterator[str]:
    """Serve in a background thread while the block runs (tests, tools); yields the URL."""
    sock = bind(listen)
    server = server_for(app, listen)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="dashboard", daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if server.started:
                break
            thread.join(0.01)
        yield url_of(sock, listen)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
