"""Shared plumbing of the device cmdlets: reaching the device, who runs, error records, bound parameters.

A device cmdlet receives a :class:`~migrator.lab.shell.CmdletContext` whose ``host`` is the device's
:class:`~migrator.lab.executor.DeviceHost`; :func:`binding` gives typed access to the lab, the device and the
principal. Errors are built with :func:`error_record` so that the fully qualified error id, category, exception
type and target look exactly like Windows PowerShell 5.1's (``PathNotFound,Microsoft.PowerShell.Commands.
GetItemPropertyCommand``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, cast

from migrator.lab.shell import (
    CmdletContext,
    ErrorCategory,
    ErrorRecord,
    Hashtable,
    PowerShellError,
    Principal,
    PrincipalKind,
    PSObject,
)

if TYPE_CHECKING:
    from migrator.lab.model import Device, User
    from migrator.lab.windows import Lab

SYSTEM_PROFILE = "C:\\Windows\\system32\\config\\systemprofile"


class DeviceBinding(Protocol):
    """What the device cmdlets need from their host (:class:`migrator.lab.executor.DeviceHost` provides it)."""

    @property
    def lab(self) -> Lab: ...

    @property
    def device(self) -> Device: ...

    @property
    def principal(self) -> Principal: ...

    @property
    def computer_name(self) -> str: ...

    def environment(self) -> Mapping[str, str]: ...


def binding(ctx: CmdletContext) -> DeviceBinding:
    """The device behind a cmdlet context; a host without one cannot run device cmdlets."""
    host = ctx.host
    if not (hasattr(host, "device") and hasattr(host, "lab")):
        raise PowerShellError(
            error_record(
                ctx.command_name,
                f"The '{ctx.command_name}' command needs a device host.",
                "DeviceHostRequired",
                "InvalidOperation",
                "System.InvalidOperationException",
            )
        )
    return cast(DeviceBinding, host)


def cmdlet_class(command: str) -> str:
    """The .NET class of a compiled cmdlet, as the second half of its error ids shows it."""
    return "Microsoft.PowerShell.Commands." + command.replace("-", "") + "Command"


def error_record(
    command: str,
    message: str,
    error_id: str,
    category: ErrorCategory,
    exception_type: str,
    target: Any = None,
    qualifier: str | None = None,
) -> ErrorRecord:
    """An ErrorRecord as PowerShell builds it: FQEID ``<error id>,<cmdlet class or CDXML command name>``."""
    return ErrorRecord(
        message=message,
        fully_qualified_error_id=f"{error_id},{qualifier or cmdlet_class(command)}",
        category=category,
        exception_type=exception_type,
        target_object=target,
        target_name="" if target is None else str(target),
        activity=command,
        reason=exception_type.rsplit(".", 1)[-1],
    )


# ---- bound parameters ------------------------------------------------------------------------------


def as_list(value: Any) -> list[Any]:
    """A parameter value as a list (PowerShell binds a scalar to an array parameter as a one-element array)."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def as_str_list(value: Any) -> list[str]:
    return [str(v) for v in as_list(value) if v is not None]


def flag(args: Mapping[str, Any], name: str) -> bool:
    """A switch parameter (present and not ``-Switch:$false``)."""
    return bool(args.get(name, False))


def opt_str(args: Mapping[str, Any], name: str) -> str | None:
    value = args.get(name)
    if value is None:
        return None
    if isinstance(value, list):
        return None if not value else str(value[0])
    return str(value)


def prop(obj: Any, name: str, default: Any = None) -> Any:
    """A property of a PSObject or a key of a hashtable/dict (pipeline objects come as either)."""
    if isinstance(obj, PSObject):
        return obj.get(name, default)
    if isinstance(obj, Hashtable | dict):
        return obj.get(name, default)
    return default


def to_datetime(value: Any) -> datetime | None:
    """A [datetime] parameter: datetimes pass, ISO text is parsed (the interpreter may hand either)."""
    if value is None or isinstance(value, datetime):
        return value
    text = str(value).strip()
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


# ---- who runs --------------------------------------------------------------------------------------


def principal_user(device: Device, principal: Principal) -> User | None:
    """The device user a USER principal is (None for the admin's network logon and SYSTEM)."""
    if principal.kind is not PrincipalKind.USER:
        return None
    return device.user(principal.sid)


def account_parts(lab: Lab, device: Device, principal: Principal) -> tuple[str, str]:
    """(USERDOMAIN, USERNAME) as ``$env:`` shows them for the principal."""
    if principal.kind is PrincipalKind.SYSTEM:
        ad_domain = lab.domain_of(device)
        # SYSTEM's environment names the computer account: USERNAME=PC-0001$, USERDOMAIN=its domain/workgroup.
        return (ad_domain.netbios if ad_domain and device.domain_joined else "WORKGROUP", f"{device.name}$")
    user = principal_user(device, principal)
    if user is not None:
        return user.domain, user.sam
    admin = lab.fleet.admin
    if principal.name.casefold() == admin.qualified_name.casefold():
        return admin.domain, admin.username
    account_domain, _, name = principal.name.rpartition("\\")
    return (account_domain.upper() or device.name), name


def profile_of(lab: Lab, device: Device, principal: Principal) -> str:
    """The principal's profile folder (USERPROFILE)."""
    if principal.kind is PrincipalKind.SYSTEM:
        return SYSTEM_PROFILE
    user = principal_user(device, principal)
    if user is not None:
        return user_profile(user)
    return f"C:\\Users\\{account_parts(lab, device, principal)[1]}"


def user_profile(user: User) -> str:
    return user.profile_path or f"C:\\Users\\{user.sam}"


def temp_of(lab: Lab, device: Device, principal: Principal) -> str:
    """TEMP/TMP: SYSTEM uses C:\\Windows\\TEMP, every account its profile's AppData\\Local\\Temp."""
    if principal.kind is PrincipalKind.SYSTEM:
        return "C:\\Windows\\TEMP"
    return profile_of(lab, device, principal) + "\\AppData\\Local\\Temp"


def process_environment(lab: Lab, device: Device, principal: Principal) -> dict[str, str]:
    """The environment block of a process started as ``principal``: ``$env:`` in its scripts, ``%VAR%`` in its
    command lines (values as Windows 10/11 sets them), sorted by name regardless of case."""
    user_domain, user_name = account_parts(lab, device, principal)
    profile = profile_of(lab, device, principal)
    temp = temp_of(lab, device, principal)
    env: dict[str, str] = {
        "ALLUSERSPROFILE": "C:\\ProgramData",
        "APPDATA": f"{profile}\\AppData\\Roaming",
        "CommonProgramFiles": "C:\\Program Files\\Common Files",
        "CommonProgramFiles(x86)": "C:\\Program Files (x86)\\Common Files",
        "CommonProgramW6432": "C:\\Program Files\\Common Files",
        "COMPUTERNAME": device.name.upper(),
        "ComSpec": "C:\\Windows\\system32\\cmd.exe",
        "DriverData": "C:\\Windows\\System32\\Drivers\\DriverData",
        "LOCALAPPDATA": f"{profile}\\AppData\\Local",
        "NUMBER_OF_PROCESSORS": "8",
        "OS": "Windows_NT",
        "Path": "C:\\Windows\\system32;C:\\Windows;C:\\Windows\\System32\\Wbem;"
        "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\;C:\\Windows\\System32\\OpenSSH\\;"
        f"{profile}\\AppData\\Local\\Microsoft\\WindowsApps",
        "PATHEXT": ".COM;.EXE;.BAT;.CMD;.VBS;.VBE;.JS;.JSE;.WSF;.WSH;.MSC;.CPL",
        "PROCESSOR_ARCHITECTURE": "AMD64",
        "PROCESSOR_IDENTIFIER": "Intel64 Family 6 Model 186 Stepping 2, GenuineIntel",
        "PROCESSOR_LEVEL": "6",
        "PROCESSOR_REVISION": "ba02",
        "ProgramData": "C:\\ProgramData",
        "ProgramFiles": "C:\\Program Files",
        "ProgramFiles(x86)": "C:\\Program Files (x86)",
        "ProgramW6432": "C:\\Program Files",
        "PSModulePath": f"{profile}\\Documents\\WindowsPowerShell\\Modules;"
        "C:\\Program Files\\WindowsPowerShell\\Modules;"
        "C:\\Windows\\system32\\WindowsPowerShell\\v1.0\\Modules",
        "PUBLIC": "C:\\Users\\Public",
        "SystemDrive": "C:",
        "SystemRoot": "C:\\Windows",
        "TEMP": temp,
        "TMP": temp,
        "USERDOMAIN": user_domain,
        "USERNAME": user_name,
        "USERPROFILE": profile,
        "windir": "C:\\Windows",
    }
    if principal.kind is not PrincipalKind.SYSTEM:
        env["HOMEDRIVE"] = "C:"
        env["HOMEPATH"] = profile[2:]
    domain = lab.domain_of(device)
    user = device.user(principal.sid) if principal.kind is PrincipalKind.USER else None
    if user is not None and (user_domain_obj := lab.user_domain(user)) is not None:
        # Domain accounts get the DNS domain and the DC that logged them on.
        env["USERDNSDOMAIN"] = user_domain_obj.dns_name.upper()
        env["LOGONSERVER"] = "\\\\" + user_domain_obj.dc_name.split(".")[0]
        env["USERDOMAIN_ROAMINGPROFILE"] = user_domain
    elif principal.kind is PrincipalKind.ADMIN and domain is not None:
        env["USERDNSDOMAIN"] = domain.dns_name.upper()
    return dict(sorted(env.items(), key=lambda kv: kv[0].casefold()))


def is_elevated(principal: Principal) -> bool:
    """The WinRM admin (network logon of a local administrator) and SYSTEM are elevated; users are not."""
    return principal.kind is not PrincipalKind.USER


# ---- CIM objects -------------------------------------------------------------------------------------

CIM_INSTANCE = "Microsoft.Management.Infrastructure.CimInstance"


def cim_type_names(namespace: str, classes: tuple[str, ...]) -> list[str]:
    """PSRP type names of a CIM instance: namespace-qualified classes, then short classes, most derived first."""
    return [
        *(f"{CIM_INSTANCE}#{namespace}/{cls}" for cls in classes),
        *(f"{CIM_INSTANCE}#{cls}" for cls in classes),
        CIM_INSTANCE,
        "System.Object",
    ]


def cim_object(namespace: str, classes: tuple[str, ...], props: list[tuple[str, Any]]) -> PSObject:
    """A CimInstance as Get-CimInstance / CDXML cmdlets emit it (PSComputerName empty for the local machine)."""
    return PSObject([*props, ("PSComputerName", None)], cim_type_names(namespace, classes), to_string=None)
