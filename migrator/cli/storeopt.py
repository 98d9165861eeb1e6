"""Where a command's store is, said once for every command that reads or writes it.

The store is ``--store`` (a ``postgresql://`` or ``sqlite://`` URL, a directory or a database file), else
``MIGRATOR_STORE`` from the environment, else the ``--state`` folder (its ``migrator.db``). ``--state`` stays the
folder of the logs either way. :func:`open_command_store` opens it for every command, so each says the same thing
when there is none or it cannot be used (exit 2, :class:`migrator.errors.ExitCode`).

Architecture rule 7: a URL's password is never shown. Messages name the store as SQLAlchemy renders it with
``hide_password=True`` (:func:`shown`), and the password is registered with the log's redaction before the store
is opened, so no log record, error or report carries it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from migrator.errors import ExitCode
from migrator.logs import register_secret
from migrator.store import NoStore, Store, StoreError

STORE_ENV = "MIGRATOR_STORE"

StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="The store: a postgresql://user@host/db URL (or sqlite://), a directory or a database file. "
        f"Default: ${STORE_ENV}, else the --state folder. The password of a URL is never printed.",
        show_default=False,
    ),
]


@dataclass(frozen=True)
class StoreChoice:
    """The store a command uses: what :meth:`Store.open` takes, and where it came from (for messages)."""

    location: str
    via: str  # "--store", "MIGRATOR_STORE" or "--state"

    @property
    def shown(self) -> str:
        return shown(self.location)


def choose_store(store: str | None, state: str | Path) -> StoreChoice:
    """``--store``, else ``MIGRATOR_STORE``, else ``--state``."""
    if store:
        return StoreChoice(store, "--store")
    from_env = os.environ.get(STORE_ENV, "").strip()
    if from_env:
        return StoreChoice(from_env, STORE_ENV)
    return StoreChoice(str(state), "--state")


def shown(location: str) -> str:
    """A store location fit to print: a URL with its password masked (one that does not parse: its scheme only)."""
    if "://" not in location:
        return location
    try:
        return make_url(location).render_as_string(hide_password=True)
    except (sa_exc.ArgumentError, ValueError):  # ValueError: a port that is not a number
        return location.split("://", 1)[0] + "://..."


def _password(location: str) -> str | None:
    if "://" not in location:
        return None
    try:
        return make_url(location).password
    except (sa_exc.ArgumentError, ValueError):
        return None


def open_command_store(store: str | None, state: str | Path, *, read_only: bool = False, create: bool = True) -> Store:
    """Open the command's store (see the module docstring), or exit 2 saying why, the password masked.

    ``read_only``: the commands that only read; ``create=False``: the commands that never start a store (a mistyped
    location must not look like an empty migration)."""
    choice = choose_store(store, state)
    register_secret(_password(choice.location))
    try:
        return Store.open(choice.location, read_only=read_only, create=create and not read_only)
    except NoStore as error:
        _fail(
            f"no store in {choice.shown} (from {choice.via}): run `migrator run` first, or pass the --state or "
            f"--store of an earlier run ({error})"
        )
    except StoreError as error:
        _fail(f"{error} ({error.action})")


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(ExitCode.INPUT)
