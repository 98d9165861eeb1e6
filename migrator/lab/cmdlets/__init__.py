"""Device cmdlets: what a simulated Windows device offers PowerShell beyond the language itself.

One module per area — :mod:`.items` (registry and file-system providers), :mod:`.tasks` (ScheduledTasks
module), :mod:`.events` (Get-WinEvent), :mod:`.cim` (Get-CimInstance/Get-WmiObject, Get-Tpm, local users,
processes), :mod:`.netlogon` (Test-ComputerSecureChannel), :mod:`.services` (Get-Service),
:mod:`.certs` (the Cert: drive); :mod:`.dotnet_files` serves System.IO to the
interpreter over the same files. :func:`device_cmdlets` is the one table the
interpreter sees, by lower-cased name and Windows alias, built once per process. Each cmdlet body runs under
its device's lock and is drained inside it, so a lazy generator never touches the device unlocked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from migrator.lab.cmdlets import cim, events, items, netlogon, services, tasks
from migrator.lab.cmdlets._base import binding
from migrator.lab.cmdlets.dotnet_files import device_file_system
from migrator.lab.ps.dotnet_io import register_file_system
from migrator.lab.shell import CmdletContext, CmdletFunc, CmdletSpec

# System.IO in scripts ([System.IO.File], FileStream, FileInfo) works on the same device files as the cmdlets.
register_file_system(device_file_system)


def _locked(func: CmdletFunc) -> CmdletFunc:
    def run(ctx: CmdletContext, args: dict[str, Any]) -> Iterable[Any]:
        device = binding(ctx).device
        with device.lock:
            return list(func(ctx, args))

    run.__name__ = getattr(func, "__name__", "cmdlet")
    run.__doc__ = func.__doc__
    return run


def all_specs() -> tuple[CmdletSpec, ...]:
    """Every device cmdlet, unwrapped (tests call bodies directly through these)."""
    return (*items.SPECS, *tasks.SPECS, *events.SPECS, *cim.SPECS, *netlogon.SPECS, *services.SPECS)


@cache
def device_cmdlets() -> Mapping[str, CmdletSpec]:
    """Device cmdlets by lower-cased name and alias; each body locked on its device."""
    table: dict[str, CmdletSpec] = {}
    for spec in all_specs():
        locked = CmdletSpec(spec.name, spec.params, _locked(spec.func), spec.aliases)
        for key in (spec.name, *spec.aliases):
            folded = key.casefold()
            if folded in table:
                raise ValueError(f"device cmdlet name {key!r} registered twice")
            table[folded] = locked
    return table
