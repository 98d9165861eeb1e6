"""``migrator serve``: the change managers' live dashboard over a store (:mod:`migrator.web`).

Exit codes (:class:`migrator.errors.ExitCode`): 0 stopped with Ctrl-C; 2 bad input (a non-loopback ``--host``
without TLS and a token, a token file that is missing, short or readable by others, TLS files that do not load, a
port that is taken) or no usable store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from migrator.cli.audit_commands import log_dir_of
from migrator.cli.storeopt import StoreOption, choose_store, open_command_store
from migrator.errors import ExitCode, InputError
from migrator.logs import configure_logging, get_logger
from migrator.store import Store
from migrator.web import Dashboard, Listen, check_listen, create_app, serve_forever
from migrator.web.security import OperatorToken, is_loopback, load_token
from migrator.web.server import bind, url_of

console = Console(highlight=False, soft_wrap=True, emoji=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)
commands = typer.Typer()

SERVE_HELP = "\n\n".join(
    [
        "A live dashboard of the store for change managers: the waves (state, change ticket, progress per state, "
        "failure budget used, canary, next approval gate, change windows), each wave's devices (search, filter), "
        "the devices that need attention, each device's timeline and audit entries, the audit chain's status and "
        "anchor, and the state diagram. Pages update by themselves; every asset is served by migrator.",
        "Read-only, without login, on 127.0.0.1. With --operator-token-file, approving a batch and pausing a wave "
        "are offered: each needs the token, the operator's name and a reason, recorded in the audit log. Any other "
        "--host needs --tls-cert, --tls-key and the token file; every page then asks for the token.",
        "Example: migrator serve --state ./state --operator-token-file ~/.migrator-token",
        "Exit codes: 0 stopped (Ctrl-C); 2 bad input (options, token file, TLS files, a port taken) or no usable "
        "store.",
    ]
)


def _fail(message: str) -> typer.Exit:
    err_console.print(f"error: {message}", markup=False)
    return typer.Exit(ExitCode.INPUT)


def dashboard_for(
    reader: Store, location: str, *, token: OperatorToken | None, log_dir: Path | None, listen: Listen
) -> Dashboard:
    """The dashboard of a store: read-only pages on ``reader``; actions (with a token) on a store opened for
    writing at ``location`` when first used."""
    local = is_loopback(listen.host)
    return Dashboard(
        reader=reader,
        open_writer=(lambda: Store.open(location, create=False)) if token is not None else None,
        token=token,
        log_dir=log_dir,
        require_login=not local,
        tls=listen.tls,
        # Loopback: only loopback names in Host (a rebinding DNS name is refused); elsewhere the login guards.
        allowed_hosts=("127.0.0.1", "localhost", "::1", "[::1]", listen.host.strip("[]")) if local else (),
    )


def start_dashboard_logging(log_dir: Path | None) -> None:
    """The JSON log beside the other commands' (``--state``/logs); a folder that cannot be written is said, and
    the dashboard runs without a log file."""
    if log_dir is None:
        return
    try:
        configure_logging(log_dir)
    except OSError as error:
        err_console.print(f"note: no log file in {log_dir} ({error.strerror or error})", markup=False)


@commands.command("serve", help=SERVE_HELP)
def serve(
    state: Annotated[
        str,
        typer.Option("--state", help="Folder of the logs, and of the store unless --store or $MIGRATOR_STORE."),
    ] = "./state",
    store_url: StoreOption = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on (beyond loopback: TLS and a token).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port (0: a free one).")] = 8080,
    operator_token_file: Annotated[
        Path | None,
        typer.Option(
            "--operator-token-file",
            help="A file holding the operator token (one line, 16+ characters, readable by you only): enables "
            "approving batches and pausing waves, and is the login beyond loopback.",
        ),
    ] = None,
    tls_cert: Annotated[Path | None, typer.Option("--tls-cert", help="TLS certificate (PEM), with --tls-key.")] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="TLS private key (PEM).")] = None,
    poll: Annotated[
        float, typer.Option("--poll", min=0.05, max=60.0, help="Seconds between two looks at the store per open page.")
    ] = 2.0,
) -> None:
    """Serve the live dashboard of a store (help: SERVE_HELP)."""
    listen = Listen(host, port, tls_cert, tls_key)
    try:
        token = load_token(operator_token_file) if operator_token_file is not None else None
        check_listen(listen, token)
    except InputError as error:
        raise _fail(str(error)) from None
    reader = open_command_store(store_url, state, read_only=True)
    try:
        serve_store(
            reader,
            choose_store(store_url, state).location,
            listen=listen,
            token=token,
            log_dir=log_dir_of(store_url, state),
            poll=poll,
        )
    finally:
        reader.close()


def serve_store(
    reader: Store,
    location: str,
    *,
    listen: Listen,
    token: OperatorToken | None,
    log_dir: Path | None,
    poll: float = 2.0,
    free_port_if_taken: bool = False,
) -> None:
    """Serve the dashboard of the store until Ctrl-C, after printing its URL (``serve``, ``demo --serve``).
    ``free_port_if_taken``: a taken port is no error, another one is used (the demo's default port)."""
    dashboard = dashboard_for(reader, location, token=token, log_dir=log_dir, listen=listen)
    dashboard.poll = poll
    app = create_app(dashboard)
    try:
        sock = bind(listen)
    except InputError as error:
        if not free_port_if_taken:
            raise _fail(str(error)) from None
        listen = Listen(listen.host, 0, listen.tls_cert, listen.tls_key)
        sock = bind(listen)
    start_dashboard_logging(log_dir)
    url = url_of(sock, listen)
    log = get_logger("web")
    log.info("dashboard started", url=url, store=reader.where, actions=token is not None, tls=listen.tls)
    console.print(f"dashboard: {url}", markup=False)
    console.print(
        "read-only; approving and pausing need the operator token" if token else "read-only (no --operator-token-file)",
        markup=False,
    )
    console.print("Ctrl-C stops it", markup=False)
    try:
        serve_forever(app, sock, listen)
    except InputError as error:
        raise _fail(str(error)) from None
    finally:
        sock.close()
        log.info("dashboard stopped", url=url)
