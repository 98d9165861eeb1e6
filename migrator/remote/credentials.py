"""Where the connecting account's credentials come from, and how they stay secret.

Order: a secrets file (``--secrets FILE``, ``KEY=value`` lines such as the lab's ``lab-secrets.env``), then the
environment (``MIGRATOR_USERNAME``, ``MIGRATOR_PASSWORD``, and for Kerberos ``MIGRATOR_PRINCIPAL``, the account as
``user@REALM``), then a Kerberos ticket ``kinit`` left in the credential cache (``KRB5CCNAME`` honoured: no password
is needed then, and only Kerberos and Negotiate devices can be reached), then an interactive prompt when a
terminal is attached. The password is a :class:`pydantic.SecretStr`: its ``repr`` and ``str`` show ``**********``, so it
cannot leak through a log line, a traceback's locals or an exception message.
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from migrator.errors import InputError

USERNAME_VAR = "MIGRATOR_USERNAME"
PASSWORD_VAR = "MIGRATOR_PASSWORD"  # noqa: S105 - the variable's name, not a password
PRINCIPAL_VAR = "MIGRATOR_PRINCIPAL"


@dataclass(frozen=True)
class Credentials:
    """Who connects. An empty password means "the Kerberos ticket in the credential cache" (see the module)."""

    username: str
    password: SecretStr
    principal: str | None = None  # the Kerberos principal (user@REALM), when it is not derived from username

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=**********, principal={self.principal!r})"

    @property
    def from_ccache(self) -> bool:
        """No password: Kerberos takes the ticket ``kinit`` left in the credential cache."""
        return not self.password.get_secret_value()


def read_env_file(path: Path) -> dict[str, str]:
    """Parse ``KEY=value`` lines (``#`` comments, optional quotes, optional ``export``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise InputError(f"{path}: cannot read secrets file: {err.strerror or err}") from None
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            # Do not echo the line: it may hold a secret.
            raise InputError(f"{path}, line {number}: expected KEY=value")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def load_credentials(
    secrets_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    prompt: Callable[[str], str] | None = None,
    interactive: bool | None = None,
    ccache_principal: Callable[[], str | None] | None = None,
) -> Credentials:
    """Find the credentials (secrets file, then environment, then a Kerberos ccache, then a prompt); never logs
    them. ``ccache_principal``: who holds a valid ticket in the credential cache (default: ask MIT krb5)."""
    env = os.environ if environ is None else environ
    source: Mapping[str, str] = read_env_file(secrets_file) if secrets_file is not None else {}
    username = source.get(USERNAME_VAR) or env.get(USERNAME_VAR)
    password = source.get(PASSWORD_VAR) or env.get(PASSWORD_VAR)
    principal = source.get(PRINCIPAL_VAR) or env.get(PRINCIPAL_VAR) or None
    if not password:
        # No password: a ticket `kinit` left (KRB5CCNAME honoured) is used as it is, for Kerberos and Negotiate.
        if ccache_principal is None:
            from migrator.remote.kerberos import ambient_principal  # noqa: PLC0415 - loads krb5 only when needed

            ccache_principal = ambient_principal
        holder = ccache_principal()
        if holder is not None:
            return Credentials(username or holder, SecretStr(""), principal or holder)
    can_prompt = sys.stdin.isatty() if interactive is None else interactive
    if (not username or not password) and can_prompt:
        ask = prompt or input
        if not username:
            username = ask("Username (DOMAIN\\user): ").strip()
        if not password:
            password = getpass.getpass("Password: ") if prompt is None else prompt("Password: ")
    if not username or not password:
        where = f"{secrets_file} or " if secrets_file else ""
        raise InputError(
            f"no credentials: set {USERNAME_VAR} and {PASSWORD_VAR} in {where}the environment, "
            "pass --secrets FILE, get a Kerberos ticket with kinit, or run in a terminal to be prompted"
        )
    return Credentials(username, SecretStr(password), principal)
