"""PostgreSQL for the tests: one database of its own per test session, a fresh schema per test.

The server is ``MIGRATOR_TEST_POSTGRES_URL`` (default: the local one, ``postgresql+psycopg://postgres@127.0.0.1:5432
/test``, trust authentication, as on the developers' machines and in CI). The URL's database is only where the
session connects to create its own, ``migrator_test_<pid>_<random>``: nothing is assumed about what that database
holds, and two sessions running the suite at once never share a database. Each test gets a schema of its own in
the session's database (the store URL names it with ``options=-csearch_path=<schema>``), dropped after the test;
the session's database is dropped at the end (``WITH (FORCE)``: a store a failing test left open does not keep it).

PostgreSQL is part of the suite: an unreachable server fails every PostgreSQL test with one clear message. Only an
explicit ``MIGRATOR_TEST_POSTGRES=off`` skips them (a machine without a server, on purpose).
"""

from __future__ import annotations

import os
import secrets

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url

ENV_URL = "MIGRATOR_TEST_POSTGRES_URL"
ENV_SWITCH = "MIGRATOR_TEST_POSTGRES"
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def switched_off() -> bool:
    """``MIGRATOR_TEST_POSTGRES=off`` (or 0/no/false): the PostgreSQL half of the suite is skipped, saying so."""
    return os.environ.get(ENV_SWITCH, "on").strip().lower() in ("off", "0", "no", "false")


def server_url() -> URL:
    url = make_url(os.environ.get(ENV_URL) or DEFAULT_URL)
    if url.drivername == "postgresql":  # the driver the `postgres` and `test` extras install
        url = url.set(drivername="postgresql+psycopg")
    return url


def with_schema(url: URL, schema: str) -> str:
    """The store URL of ``schema`` in ``url``'s database (libpq's ``options``: the schema is the search path)."""
    return url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)


class PostgresSession:
    """The session's own database on the test server; :meth:`new_schema` gives each test an empty schema."""

    def __init__(self, admin: URL) -> None:
        self.admin = admin
        self.database = f"migrator_test_{os.getpid()}_{secrets.token_hex(4)}"
        self.url = admin.set(database=self.database)
        self._admin_engine: Engine | None = None
        self._engine: Engine | None = None

    def start(self) -> None:
        self._admin_engine = create_engine(self.admin, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
        with self._admin_engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.database}"'))
        self._engine = create_engine(self.url, isolation_level="AUTOCOMMIT", pool_size=1)

    def new_schema(self) -> tuple[str, str]:
        """A new, empty schema: its name and the store URL that works in it."""
        assert self._engine is not None
        name = f"t_{secrets.token_hex(6)}"
        with self._engine.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
        return name, with_schema(self.url, name)

    def drop_schema(self, name: str) -> None:
        """Drop a test's schema; a store still open (a test that failed midway) leaves it to the database's drop."""
        assert self._engine is not None
        try:
            with self._engine.connect() as conn:
                conn.execute(text("SET lock_timeout = '2s'"))
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        except sa_exc.DBAPIError:
            pass

    def stop(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
        if self._admin_engine is not None:
            with self._admin_engine.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'))
            self._admin_engine.dispose()


class _Holder:
    """The session's database once created, or why it could not be (one message for every PostgreSQL test)."""

    session: PostgresSession | None = None
    failure: str | None = None


def postgres_session() -> PostgresSession:
    """The session's database, created on first use; fails (or, switched off, skips) the calling test."""
    if switched_off():
        pytest.skip(f"PostgreSQL tests switched off ({ENV_SWITCH}=off)")
    if _Holder.failure is not None:
        pytest.fail(_Holder.failure, pytrace=False)
    if _Holder.session is None:
        admin = server_url()
        session = PostgresSession(admin)
        try:
            session.start()
        except (sa_exc.SQLAlchemyError, ImportError) as error:
            detail = str(getattr(error, "orig", None) or error).splitlines()[0] if str(error) else type(error).__name__
            _Holder.failure = (
                f"PostgreSQL test server {admin.render_as_string(hide_password=True)} is unreachable or refused to "
                f"create a database ({detail}). Start it, point {ENV_URL} at one (a server where the tests may "
                f"create and drop databases), or set {ENV_SWITCH}=off to skip the PostgreSQL tests on purpose."
            )
            pytest.fail(_Holder.failure, pytrace=False)
        _Holder.session = session
    return _Holder.session


def stop_postgres_session() -> None:
    if _Holder.session is not None:
        _Holder.session.stop()
        _Holder.session = None
