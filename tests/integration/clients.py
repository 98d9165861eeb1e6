"""Unmodified pywinrm and pypsrp clients on a lab device, built from the lab's inventory and secrets (what a user
of the lab types by hand), and small helpers to read what they return."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import winrm
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from tests.integration.conftest import LabHandle


@dataclass(frozen=True)
class PSResult:
    """One pypsrp pipeline's outcome, flattened for assertions."""

    output: list[Any]
    errors: list[Any]  # pypsrp ErrorRecord objects (message, fq_error, ...)
    information: list[Any]
    had_errors: bool

    @property
    def error_ids(self) -> list[str]:
        return [str(record.fq_error) for record in self.errors]

    @property
    def error_text(self) -> str:
        return "\n".join(str(record) for record in self.errors)  # str(): the exception's message


def winrm_session(lab: LabHandle, name: str) -> winrm.Session:
    """A pywinrm Session (NTLM over HTTPS, the lab CA) on one device."""
    connection = lab.connection(name)
    entry = lab.entry(name)
    return winrm.Session(
        f"https://{entry.address}:{connection.port}/wsman",
        auth=(lab.credentials.username, lab.credentials.password.get_secret_value()),
        transport="ntlm",
        server_cert_validation="validate",
        ca_trust_path=str(connection.ca_bundle),
    )


def wsman(lab: LabHandle, name: str) -> WSMan:
    connection = lab.connection(name)
    entry = lab.entry(name)
    return WSMan(
        entry.address,
        port=connection.port,
        username=lab.credentials.username,
        password=lab.credentials.password.get_secret_value(),
        auth="ntlm",
        cert_validation=str(connection.ca_bundle),
        no_proxy=True,
    )


@contextmanager
def runspace_pool(lab: LabHandle, name: str) -> Iterator[RunspacePool]:
    with RunspacePool(wsman(lab, name)) as pool:
        yield pool


def run_ps(pool: RunspacePool, script: str) -> PSResult:
    """``add_script(script).invoke()`` on a pool, as a pypsrp user writes it."""
    ps = PowerShell(pool)
    ps.add_script(script)
    output = ps.invoke()
    return PSResult(list(output), list(ps.streams.error), list(ps.streams.information), ps.had_errors)


def run_cmd(session: winrm.Session, command: str, args: tuple[str, ...] = ()) -> tuple[int, str, str]:
    """pywinrm ``run_cmd``: (exit code, stdout, stderr) as text."""
    result = session.run_cmd(command, list(args))
    return result.status_code, result.std_out.decode("utf-8", "replace"), result.std_err.decode("utf-8", "replace")


def encoded(script: str) -> str:
    """``powershell.exe -EncodedCommand``'s argument: base64 of UTF-16LE."""
    return base64.b64encode(script.encode("utf-16-le")).decode("ascii")
