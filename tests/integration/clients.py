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


# An admin's way to run a command line as the signed-in user (windows-facts §6): an Interactive task whose
# output goes to a file, polled while Windows reports it Running, then read back.
_AS_USER = r"""
param($User, $Line)
$dir = Join-Path $env:ProgramData 'lab-test'
New-Item -ItemType Directory -Path $dir -Force | Out-Null
$out = Join-Path $dir 'out.txt'
$action = New-ScheduledTaskAction -Execute 'cmd.exe' -Argument ('/c ' + $Line + ' > "' + $out + '" 2>&1')
$principal = New-ScheduledTaskPrincipal -UserId $User -LogonType Interactive -RunLevel Limited
Register-ScheduledTask -TaskName 'lab-test' -Action $action -Principal $principal -Force | Out-Null
Start-ScheduledTask -TaskName 'lab-test'
$states = @([string](Get-ScheduledTask -TaskName 'lab-test').State)
for ($i = 0; $i -lt 60 -and (Get-ScheduledTask -TaskName 'lab-test').State -eq 'Running'; $i++) {
    Start-Sleep -Seconds 1
}
$states += [string](Get-ScheduledTask -TaskName 'lab-test').State
$info = Get-ScheduledTaskInfo -TaskName 'lab-test'
Unregister-ScheduledTask -TaskName 'lab-test' -Confirm:$false
[pscustomobject]@{
    States = $states -join ','
    LastTaskResult = [int64]$info.LastTaskResult
    Output = (Get-Content -LiteralPath $out -Raw)
}
"""


_FIELDS = ("States", "LastTaskResult", "Output")


def run_as_user(pool: RunspacePool, user: str, line: str) -> dict[str, Any]:
    """Run a cmd.exe line as ``user`` through a scheduled task; its states, LastTaskResult and output."""
    ps = PowerShell(pool)
    ps.add_script(_AS_USER).add_parameters({"User": user, "Line": line})
    output = ps.invoke()
    assert not ps.had_errors, [str(e) for e in ps.streams.error]
    (result,) = output
    return {
        name: result.adapted_properties.get(name, result.extended_properties.get(name))
        for name in ("States", "LastTaskResult", "Output")
    }
