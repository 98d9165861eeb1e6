"""Get-Service (Microsoft.PowerShell.Management) for the services the migration depends on.

The lab models a fixed set of services whose state follows the device: WinRM (the listener the lab answers
on), the Task Scheduler, Group Policy Client, Netlogon (running on domain-joined devices only), the Microsoft
Passport services Hello for Business uses, CNG Key Isolation, Web Account Manager, TPM Base Services (stopped
when the device's TPM is absent or its provider is broken), DNS Client, Windows Event Log, Windows Time and
Workstation. Objects are System.ServiceProcess.ServiceController with Status/StartType as their enum names.

Asking for every service (no -Name), for a wildcard, or for a service outside the set is refused as not
modelled: the lab cannot list what it does not hold, and cannot tell a real service name from a made-up one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from migrator.lab.boundary import NotModelledByLab
from migrator.lab.cmdlets._base import as_str_list, binding
from migrator.lab.cmdlets.paths import is_wildcard
from migrator.lab.model import Device
from migrator.lab.shell import CmdletContext, CmdletSpec, Param, PSObject

SERVICE_TYPES = (
    "System.ServiceProcess.ServiceController",
    "System.ComponentModel.Component",
    "System.MarshalByRefObject",
    "System.Object",
)
# name → (display name, start type, service type)
SERVICES: dict[str, tuple[str, str, str]] = {
    "Dnscache": ("DNS Client", "Automatic", "Win32ShareProcess"),
    "EventLog": ("Windows Event Log", "Automatic", "Win32ShareProcess"),
    "gpsvc": ("Group Policy Client", "Automatic", "Win32ShareProcess"),
    "KeyIso": ("CNG Key Isolation", "Manual", "Win32ShareProcess"),
    "LanmanWorkstation": ("Workstation", "Automatic", "Win32ShareProcess"),
    "Netlogon": ("Netlogon", "Automatic", "Win32ShareProcess"),
    "NgcCtnrSvc": ("Microsoft Passport Container", "Manual", "Win32ShareProcess"),
    "NgcSvc": ("Microsoft Passport", "Manual", "Win32ShareProcess"),
    "Schedule": ("Task Scheduler", "Automatic", "Win32ShareProcess"),
    "TBS": ("TPM Base Services", "Automatic", "Win32ShareProcess"),
    "TokenBroker": ("Web Account Manager", "Manual", "Win32ShareProcess"),
    "W32Time": ("Windows Time", "Manual", "Win32ShareProcess"),
    "WinRM": ("Windows Remote Management (WS-Management)", "Automatic", "Win32ShareProcess"),
}


def _status(device: Device, name: str) -> str:
    if name == "Netlogon":
        return "Running" if device.domain_joined else "Stopped"
    if name == "TBS":
        return "Running" if device.tpm.present and device.tpm.provider_error is None else "Stopped"
    return "Running"


def service_object(device: Device, name: str) -> PSObject:
    display, start, kind = SERVICES[name]
    status = _status(device, name)
    return PSObject(
        [
            ("Name", name),
            ("RequiredServices", []),
            ("CanPauseAndContinue", False),
            ("CanShutdown", False),
            ("CanStop", status == "Running"),
            ("DisplayName", display),
            ("DependentServices", []),
            ("MachineName", "."),
            ("ServiceName", name),
            ("ServicesDependedOn", []),
            ("ServiceType", kind),
            ("StartType", start),
            ("Status", status),
        ],
        SERVICE_TYPES,
        to_string="System.ServiceProcess.ServiceController",
    )


def _get_service(ctx: CmdletContext, args: dict[str, Any]) -> Iterator[Any]:
    device = binding(ctx).device
    names = as_str_list(args.get("Name"))
    if args.get("DisplayName") is not None or args.get("InputObject") is not None:
        raise NotModelledByLab("Get-Service -DisplayName/-InputObject", module="lab/cmdlets/services")
    if args.get("ComputerName") is not None:
        raise NotModelledByLab("Get-Service -ComputerName", module="lab/cmdlets/services")
    if not names:
        raise NotModelledByLab(
            "Get-Service without -Name (the lab holds only the services the migration uses)",
            module="lab/cmdlets/services",
        )
    by_name = {name.casefold(): name for name in SERVICES}
    for wanted in names:
        if is_wildcard(wanted):
            raise NotModelledByLab(f"Get-Service '{wanted}' (wildcards)", module="lab/cmdlets/services")
        name = by_name.get(wanted.casefold())
        if name is None:
            raise NotModelledByLab(f"The service '{wanted}'", module="lab/cmdlets/services")
        yield service_object(device, name)


SPECS: tuple[CmdletSpec, ...] = (
    CmdletSpec(
        "Get-Service",
        (
            Param("Name", "string[]", position=0, aliases=("ServiceName",), from_pipeline_by_property_name=True),
            Param("DisplayName", "string[]"),
            Param("ComputerName", "string[]", aliases=("Cn",)),
            Param("InputObject", "any"),
            Param("DependentServices", "switch"),
            Param("RequiredServices", "switch"),
            Param("Include", "string[]"),
            Param("Exclude", "string[]"),
        ),
        _get_service,
        aliases=("gsv",),
    ),
)
