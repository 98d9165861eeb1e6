"""Test-ComputerSecureChannel (Windows PowerShell 5.1, Microsoft.PowerShell.Management).

True when the device is domain joined and a DC of its domain answers; the -Verbose text follows the msdocs
example (``Performing operation "Test-ComputerSecureChannel" on Target "SERVER01".`` then ``"The secure
channel between 'SERVER01' and 'net.fabrikam.com' is alive and working correctly."``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from migrator.lab.cmdlets._base import binding, error_record, flag, opt_str
from migrator.lab.shell import CmdletContext, CmdletSpec, Param, PowerShellError


def _test_secure_channel(ctx: CmdletContext, args: dict[str, Any]) -> Iterator[Any]:
    b = binding(ctx)
    device = b.device
    computer = device.name.upper()
    if not device.domain_joined or not device.domain:
        raise PowerShellError(
            error_record(
                ctx.command_name,
                "Cannot verify the secure channel password for the local computer. Local computer is not joined "
                "to a domain.",
                "ComputerNotInDomain",
                "InvalidOperation",
                "System.InvalidOperationException",
                computer,
            )
        )
    ctx.write_verbose(f'Performing operation "Test-ComputerSecureChannel" on Target "{computer}".')
    domain = b.lab.domain_of(device)
    server = opt_str(args, "Server")
    reachable = device.dc_reachable and (
        server is None
        or domain is None
        or server.casefold() in (domain.dc_name.casefold(), domain.dc_name.split(".")[0].casefold())
    )
    if flag(args, "Repair") and reachable:
        ctx.write_verbose(
            f"\"The secure channel between '{computer}' and '{device.domain}' was successfully repaired.\""
        )
        yield True
        return
    yield reachable
    state = "is alive and working correctly" if reachable else "is broken"
    ctx.write_verbose(f"\"The secure channel between '{computer}' and '{device.domain}' {state}.\"")


SPECS: tuple[CmdletSpec, ...] = (
    CmdletSpec(
        "Test-ComputerSecureChannel",
        (
            Param("Server", "string"),
            Param("Repair", "switch"),
            Param("Credential", "any"),
            Param("WhatIf", "switch"),
            Param("Confirm", "switch"),
        ),
        _test_secure_channel,
    ),
)
