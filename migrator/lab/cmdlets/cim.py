"""CIM/WMI classes built from the device model, plus Get-Tpm, Get-LocalUser and Get-Process.

Get-CimInstance emits CimInstances (``Microsoft.Management.Infrastructure.CimInstance#root/cimv2/...``, dates as
datetimes); Get-WmiObject emits ManagementObjects (``System.Management.ManagementObject#root\\cimv2\\...``, WMI
system properties ``__CLASS``..., dates as DMTF strings ``20261102080000.000000+000``), as on Windows
PowerShell 5.1. Win32_Tpm lives in ``root/cimv2/Security/MicrosoftTpm`` and, like Get-Tpm, needs elevation.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from migrator.lab.cmdlets._base import (
    DeviceBinding,
    as_list,
    as_str_list,
    binding,
    cim_type_names,
    error_record,
    flag,
    is_elevated,
    opt_str,
    prop,
    user_profile,
)
from migrator.lab.cmdlets.paths import is_wildcard, wildcard_match
from migrator.lab.cmdlets.wql import WqlError, evaluate, parse_query, parse_where
from migrator.lab.shell import CmdletContext, CmdletSpec, ErrorCategory, Param, PowerShellError, PSObject
from migrator.lab.windows import ADMIN_SID

CIMV2 = "root/cimv2"
TPM_NAMESPACE = "root/cimv2/Security/MicrosoftTpm"
RSOP_NAMESPACE = "root/rsop/computer"  # Resultant Set of Policy logging of the computer's last policy processing
_ELEVATED_ONLY = (TPM_NAMESPACE, RSOP_NAMESPACE)
CIM_CMDLETS = "Microsoft.Management.Infrastructure.CimCmdlets"
CIM_EXCEPTION = "Microsoft.Management.Infrastructure.CimException"

Props = list[tuple[str, Any]]


# ---- the classes ---------------------------------------------------------------------------------------------


def _boot(b: DeviceBinding) -> datetime:
    return b.device.os.last_boot or (b.lab.clock.now() - timedelta(hours=9))


def _install(b: DeviceBinding) -> datetime:
    return b.device.os.install_date or datetime(2023, 3, 14, 10, 12, tzinfo=UTC)


def _console_user(b: DeviceBinding) -> str | None:
    """Win32_ComputerSystem.UserName: the console session's user (RDP users are not shown)."""
    for session in b.device.sessions:
        if session.kind == "console":
            user = b.device.user(session.user_sid)
            if user is not None:
                return user.qualified_name
    return None


def _operating_system(b: DeviceBinding) -> list[Props]:
    os = b.device.os
    return [
        [
            ("Caption", os.caption),
            ("Version", f"{os.version}.{os.build}"),
            ("BuildNumber", str(os.build)),
            ("BuildType", "Multiprocessor Free"),
            ("OSArchitecture", "64-bit"),
            ("CSName", b.device.name.upper()),
            ("Manufacturer", "Microsoft Corporation"),
            ("Name", f"{os.caption}|C:\\WINDOWS|\\Device\\Harddisk0\\Partition3"),
            ("InstallDate", _install(b)),
            ("LastBootUpTime", _boot(b)),
            ("LocalDateTime", b.lab.clock.now()),
            ("OperatingSystemSKU", 4),
            ("OSLanguage", 1033),
            ("Locale", "0409"),
            ("MUILanguages", ["en-US"]),
            ("OSType", 18),
            ("ProductType", 1),
            ("Organization", ""),
            ("RegisteredUser", "user"),
            ("SerialNumber", "00329-00000-00003-AA" + _digits(b.device.name, 3)),
            ("ServicePackMajorVersion", 0),
            ("ServicePackMinorVersion", 0),
            ("Status", "OK"),
            ("SystemDirectory", "C:\\WINDOWS\\system32"),
            ("SystemDrive", "C:"),
            ("WindowsDirectory", "C:\\WINDOWS"),
            ("TotalVisibleMemorySize", 16608520),
            ("FreePhysicalMemory", 8123456),
        ]
    ]


def _computer_system(b: DeviceBinding) -> list[Props]:
    device = b.device
    joined = device.domain_joined
    return [
        [
            ("Name", device.name.upper()),
            ("Domain", device.domain if joined and device.domain else "WORKGROUP"),
            ("Workgroup", None if joined else "WORKGROUP"),
            ("PartOfDomain", joined),
            ("DomainRole", 1 if joined else 0),  # member / standalone workstation
            ("DNSHostName", device.name),
            ("UserName", _console_user(b)),
            ("Manufacturer", device.manufacturer),
            ("Model", device.model),
            ("PrimaryOwnerName", "user"),
            ("SystemFamily", device.model.split(" ")[0]),
            ("SystemType", "x64-based PC"),
            ("PCSystemType", 2),
            ("NumberOfProcessors", 1),
            ("NumberOfLogicalProcessors", 8),
            ("TotalPhysicalMemory", 17007124480),
            ("HypervisorPresent", False),
            ("Status", "OK"),
        ]
    ]


def _user_profiles(b: DeviceBinding) -> list[Props]:
    now = b.lab.clock.now()
    rows: list[Props] = []
    special = (
        ("S-1-5-18", "C:\\WINDOWS\\system32\\config\\systemprofile"),
        ("S-1-5-19", "C:\\WINDOWS\\ServiceProfiles\\LocalService"),
        ("S-1-5-20", "C:\\WINDOWS\\ServiceProfiles\\NetworkService"),
    )
    for sid, path in special:
        rows.append(_profile_row(sid, path, True, now, True))
    admin_path = f"C:\\Users\\{b.lab.fleet.admin.username}"
    rows.append(_profile_row(ADMIN_SID, admin_path, b.principal.sid == ADMIN_SID, now, False))
    for user in b.device.users:
        loaded = b.device.session_of(user) is not None
        last = now if loaded else (user.last_sign_in or _install(b))
        rows.append(_profile_row(user.sid, user_profile(user), loaded, last, False))
    return rows


def _profile_row(sid: str, path: str, loaded: bool, last_use: datetime, special: bool) -> Props:
    return [
        ("LocalPath", path),
        ("SID", sid),
        ("Loaded", loaded),
        ("LastUseTime", last_use),
        ("Special", special),
        ("RoamingConfigured", False),
        ("RoamingPath", None),
        ("RoamingPreference", None),
        ("Status", 0),
        ("HealthStatus", 3),
        ("LastDownloadTime", None),
        ("LastUploadTime", None),
    ]


def manufacturer_id(text: str) -> int:
    """TPM manufacturer ids are the vendor's ASCII code in a UINT32 (``IFX`` → 0x49465800)."""
    return int.from_bytes(text.encode("ascii")[:4].ljust(4, b"\0"), "big")


def _tpm(b: DeviceBinding) -> list[Props]:
    tpm = b.device.tpm
    if not tpm.present:
        return []
    return [
        [
            ("IsActivated_InitialValue", tpm.ready),
            ("IsEnabled_InitialValue", tpm.ready),
            ("IsOwned_InitialValue", tpm.ready),
            ("ManufacturerId", manufacturer_id(tpm.manufacturer)),
            ("ManufacturerIdTxt", tpm.manufacturer),
            ("ManufacturerVersion", tpm.manufacturer_version),
            ("ManufacturerVersionFull20", tpm.manufacturer_version),
            ("ManufacturerVersionInfo", "SLB9672"),
            ("PhysicalPresenceVersionInfo", "1.3"),
            ("SpecVersion", tpm.spec_version),
        ]
    ]


# (name, session 0 or per user session)
_SYSTEM_PROCESSES = (
    ("System Idle Process", 0),
    ("System", 4),
    ("Registry", 96),
    ("smss.exe", 388),
    ("csrss.exe", 560),
    ("wininit.exe", 640),
    ("services.exe", 712),
    ("lsass.exe", 728),
    ("svchost.exe", 900),
    ("svchost.exe", 964),
    ("WmiPrvSE.exe", 3100),
    ("wsmprovhost.exe", 4412),
)
_SESSION_PROCESSES = ("csrss.exe", "winlogon.exe", "dwm.exe", "sihost.exe", "explorer.exe", "RuntimeBroker.exe")


def process_table(b: DeviceBinding) -> list[tuple[str, int, int, str, str]]:
    """(name, pid, session id, owner domain, owner user) of the device's processes."""
    rows = [(name, pid, 0, "NT AUTHORITY", "SYSTEM") for name, pid in _SYSTEM_PROCESSES]
    for session in b.device.sessions:
        user = b.device.user(session.user_sid)
        for index, name in enumerate(_SESSION_PROCESSES):
            pid = 5000 + session.session_id * 100 + index * 4
            if name in ("csrss.exe", "winlogon.exe") or user is None:
                rows.append((name, pid, session.session_id, "NT AUTHORITY", "SYSTEM"))
            elif name == "dwm.exe":
                rows.append((name, pid, session.session_id, "Window Manager", f"DWM-{session.session_id}"))
            else:
                rows.append((name, pid, session.session_id, user.domain, user.sam))
    return rows


def _processes(b: DeviceBinding) -> list[Props]:
    return [
        [
            ("Name", name),
            ("ProcessId", pid),
            ("ParentProcessId", 0 if pid < 100 else 712),
            ("SessionId", session),
            ("ExecutablePath", None if pid < 100 else f"C:\\WINDOWS\\system32\\{name}"),
            ("CommandLine", None if pid < 100 else f"C:\\WINDOWS\\system32\\{name}"),
            ("Caption", name),
            ("Handle", str(pid)),
            ("HandleCount", 500),
            ("ThreadCount", 10),
            ("WorkingSetSize", 20 * 1024 * 1024),
        ]
        for name, pid, session, _, _ in process_table(b)
    ]


def _bios(b: DeviceBinding) -> list[Props]:
    return [
        [
            ("Manufacturer", b.device.manufacturer),
            ("Name", "1.21.0"),
            ("SerialNumber", _digits(b.device.name, 7, alpha=True)),
            ("SMBIOSBIOSVersion", "1.21.0"),
            ("Version", "DELL   - 1072009"),
            ("ReleaseDate", datetime(2024, 5, 7, tzinfo=UTC)),
        ]
    ]


def _digits(seed: str, count: int, alpha: bool = False) -> str:
    digest = hashlib.sha256(seed.encode()).hexdigest().upper()
    return digest[:count] if alpha else "".join(str(int(c, 16) % 10) for c in digest[:count])


# The registry client-side extension's key of the Hello values, as RSoP records it (relative to HKLM).
_PASSPORT_KEY = "SOFTWARE\\Policies\\Microsoft\\PassportForWork"
REG_DWORD = 4


def _gpo_guid(dn: str) -> str:
    return dn.split(",", 1)[0].partition("=")[2]


def _rsop_gpos(b: DeviceBinding) -> list[Props]:
    """RSOP_GPO: the GPOs the computer's last policy processing applied (from the lab's directory)."""
    applied = b.lab.applied_policy.get(b.device.name)
    if applied is None:
        return []
    seen = dict(applied.computer_from.values())
    return [
        [
            ("accessDenied", False),
            ("enabled", True),
            ("filterAllowed", True),
            ("guidName", _gpo_guid(dn)),
            ("id", dn),
            ("name", name),
            ("version", 1),
        ]
        for name, dn in sorted(seen.items())
    ]


def _rsop_registry(b: DeviceBinding) -> list[Props]:
    """RSOP_RegistryPolicySetting: each computer registry value a GPO set at the last processing, the winning
    GPO's at precedence 1 ([MS-GPREG]; RSoP WMI classes). The lab's GPOs set only PassportForWork DWORDs."""
    applied = b.lab.applied_policy.get(b.device.name)
    if applied is None:
        return []
    rows: list[Props] = []
    for name, data in sorted(applied.computer.items()):
        _, dn = applied.computer_from.get(name, ("", ""))
        rows.append(
            [
                ("command", ""),
                ("deleted", False),
                ("GPOID", dn),
                ("id", "{" + str(uuid.uuid5(uuid.NAMESPACE_URL, f"{dn}/{name}")).upper() + "}"),
                ("name", name),
                ("precedence", 1),
                ("registryKey", _PASSPORT_KEY),
                ("value", list(int(data).to_bytes(4, "little"))),
                ("valueName", name),
                ("valueType", REG_DWORD),
            ]
        )
    return rows


ClassSource = Callable[[DeviceBinding], list[Props]]
# class name → (namespace, class hierarchy most derived first, key properties, instances)
CLASSES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...], ClassSource]] = {
    "win32_operatingsystem": (
        CIMV2,
        ("Win32_OperatingSystem", "CIM_OperatingSystem", "CIM_LogicalElement", "CIM_ManagedSystemElement"),
        ("Name",),
        _operating_system,
    ),
    "win32_computersystem": (
        CIMV2,
        (
            "Win32_ComputerSystem",
            "CIM_UnitaryComputerSystem",
            "CIM_ComputerSystem",
            "CIM_System",
            "CIM_LogicalElement",
            "CIM_ManagedSystemElement",
        ),
        ("Name",),
        _computer_system,
    ),
    "win32_userprofile": (CIMV2, ("Win32_UserProfile",), ("SID",), _user_profiles),
    "win32_process": (
        CIMV2,
        ("Win32_Process", "CIM_Process", "CIM_LogicalElement", "CIM_ManagedSystemElement"),
        ("Handle",),
        _processes,
    ),
    "win32_bios": (
        CIMV2,
        ("Win32_BIOS", "CIM_BIOSElement", "CIM_SoftwareElement", "CIM_LogicalElement", "CIM_ManagedSystemElement"),
        ("Name",),
        _bios,
    ),
    "win32_tpm": (TPM_NAMESPACE, ("Win32_Tpm",), ("ManufacturerId",), _tpm),
    "rsop_gpo": (RSOP_NAMESPACE, ("RSOP_GPO",), ("id",), _rsop_gpos),
    "rsop_registrypolicysetting": (
        RSOP_NAMESPACE,
        ("RSOP_RegistryPolicySetting", "RSOP_PolicySetting"),
        ("id", "precedence"),
        _rsop_registry,
    ),
}
_NAMESPACES = {
    ns.casefold()
    for ns in (
        CIMV2,
        TPM_NAMESPACE,
        RSOP_NAMESPACE,
        "root/rsop",
        "root/cimv2/Security",
        "root",
        "root/Microsoft/Windows/TaskScheduler",
    )
}


def _namespace(text: str | None) -> str:
    return (text or CIMV2).replace("\\", "/").strip("/").casefold()


# ---- Get-CimInstance / Get-WmiObject ---------------------------------------------------------------------------


def _cim_error(command: str, message: str, hresult: int, category: ErrorCategory, target: str) -> PowerShellError:
    return PowerShellError(
        error_record(
            command,
            message,
            f"HRESULT 0x{hresult:08x}",
            category,
            CIM_EXCEPTION,
            target,
            qualifier=f"{CIM_CMDLETS}.{command.replace('-', '')}Command",
        )
    )


def _wmi_error(
    command: str, message: str, category: ErrorCategory, exception: str = "System.Management.ManagementException"
) -> PowerShellError:
    error_id = "GetWMIManagementException" if exception.endswith("ManagementException") else exception
    return PowerShellError(error_record(command, message, error_id, category, exception))


def _select(ctx: CmdletContext, args: Mapping[str, Any], wmi: bool) -> tuple[str, tuple[str, ...], str, list[Props]]:
    """(namespace, classes, canonical namespace spelling, matching instances) for a class query."""
    b = binding(ctx)
    command = ctx.command_name
    class_name = opt_str(args, "Class" if wmi else "ClassName")
    condition = None
    if opt_str(args, "Query"):
        try:
            class_name, condition = parse_query(str(args["Query"]))
        except WqlError:
            if wmi:
                raise _wmi_error(command, "Invalid query ", "InvalidArgument") from None
            raise _cim_error(command, "Invalid query ", 0x80041017, "InvalidArgument", str(args["Query"])) from None
    if not class_name:
        raise PowerShellError(
            error_record(
                command,
                "Cannot bind argument to parameter 'ClassName' because it is null.",
                "ParameterArgumentValidationErrorNullNotAllowed",
                "InvalidData",
                "System.Management.Automation.ParameterBindingValidationException",
            )
        )
    namespace = _namespace(opt_str(args, "Namespace"))
    if namespace not in _NAMESPACES:
        spelled = opt_str(args, "Namespace") or CIMV2
        if wmi:
            raise _wmi_error(command, f'Invalid namespace "{spelled}"', "InvalidArgument")
        raise _cim_error(command, "Invalid namespace ", 0x8004100E, "MetadataError", spelled)
    entry = CLASSES.get(class_name.casefold())
    if entry is None or entry[0].casefold() != namespace:
        if wmi:
            raise _wmi_error(command, f'Invalid class "{class_name}"', "InvalidType")
        raise _cim_error(
            command, "Invalid class ", 0x80041010, "MetadataError", f"{namespace.replace('/', chr(92))}:{class_name}"
        )
    home, classes, _, source = entry
    if home in _ELEVATED_ONLY and not is_elevated(b.principal):
        if wmi:
            raise _wmi_error(
                command,
                "Access is denied. (Exception from HRESULT: 0x80070005 (E_ACCESSDENIED))",
                "NotSpecified",
                "System.UnauthorizedAccessException",
            )
        raise _cim_error(command, "Access denied ", 0x80041003, "PermissionDenied", f"{home}:{classes[0]}")
    if home == TPM_NAMESPACE and b.device.tpm.provider_error:
        if wmi:
            raise _wmi_error(command, b.device.tpm.provider_error, "NotSpecified")
        raise _cim_error(command, "Provider load failure ", 0x80041013, "NotSpecified", f"{home}:{classes[0]}")
    if opt_str(args, "Filter"):
        try:
            condition = parse_where(str(args["Filter"]))
        except WqlError:
            if wmi:
                raise _wmi_error(command, "Invalid query ", "InvalidArgument") from None
            raise _cim_error(command, "Invalid query ", 0x80041017, "InvalidArgument", str(args["Filter"])) from None
    rows = source(b)
    if condition is not None:
        rows = [row for row in rows if evaluate(condition, dict(row))]
    return home, classes, home, rows


def _property_filter(args: Mapping[str, Any], row: Props, keys: tuple[str, ...]) -> Props:
    """-Property: other (non-key) properties come back empty, as a partial CIM instance."""
    wanted = {p.casefold() for p in as_str_list(args.get("Property"))}
    if not wanted or "*" in wanted:
        return row
    keep = wanted | {k.casefold() for k in keys}
    return [(name, value if name.casefold() in keep else None) for name, value in row]


def _get_cim_instance(ctx: CmdletContext, args: dict[str, Any]) -> Iterator[Any]:
    home, classes, _, rows = _select(ctx, args, wmi=False)
    keys = CLASSES[classes[0].casefold()][2]
    for row in rows:
        obj = PSObject([*_property_filter(args, row, keys), ("PSComputerName", None)], cim_type_names(home, classes))
        key_text = ", ".join(f'{k} = "{obj.get(k)}"' for k in keys)
        obj.to_string = f"{classes[0]} ({key_text})"
        yield obj


def dmtf(when: datetime) -> str:
    """A DMTF datetime as WMI (Get-WmiObject) hands it out: ``yyyymmddHHMMSS.ffffff+UUU``."""
    aware = when if when.tzinfo else when.replace(tzinfo=UTC)
    offset = int((aware.utcoffset() or timedelta()).total_seconds() // 60)
    sign = "+" if offset >= 0 else "-"
    return aware.strftime("%Y%m%d%H%M%S.%f") + f"{sign}{abs(offset):03d}"


def _get_wmi_object(ctx: CmdletContext, args: dict[str, Any]) -> Iterator[Any]:
    b = binding(ctx)
    home, classes, _, rows = _select(ctx, args, wmi=True)
    keys = CLASSES[classes[0].casefold()][2]
    wmi_ns = home.replace("/", "\\")
    type_names = [
        *(f"System.Management.ManagementObject#{wmi_ns}\\{c}" for c in classes),
        *(f"System.Management.ManagementObject#{c}" for c in classes),
        "System.Management.ManagementObject",
        "System.Management.ManagementBaseObject",
        "System.ComponentModel.Component",
        "System.MarshalByRefObject",
        "System.Object",
    ]
    server = b.device.name.upper()
    for row in _rows_for_wmi(rows):
        relpath = f"{classes[0]}." + ",".join(f'{k}="{dict(row).get(k)}"' for k in keys)
        system: Props = [
            ("__GENUS", 2),
            ("__CLASS", classes[0]),
            ("__SUPERCLASS", classes[1] if len(classes) > 1 else None),
            ("__DYNASTY", classes[-1]),
            ("__RELPATH", relpath),
            ("__PROPERTY_COUNT", len(row)),
            ("__DERIVATION", list(classes[1:])),
            ("__SERVER", server),
            ("__NAMESPACE", wmi_ns),
            ("__PATH", f"\\\\{server}\\{wmi_ns}:{relpath}"),
        ]
        props = [*system, *_property_filter(args, row, keys), ("PSComputerName", server)]
        yield PSObject(props, type_names, to_string=f"\\\\{server}\\{wmi_ns}:{relpath}")


def _rows_for_wmi(rows: list[Props]) -> Iterator[Props]:
    for row in rows:
        yield [(name, dmtf(value) if isinstance(value, datetime) else value) for name, value in row]


def _invoke_cim_method(ctx: CmdletContext, args: dict[str, Any]) -> Iterator[Any]:
    """Invoke-CimMethod: Win32_Process.GetOwner (how scripts find who runs explorer.exe)."""
    b = binding(ctx)
    method = opt_str(args, "MethodName") or ""
    target = args.get("InputObject")
    if method.casefold() != "getowner" or prop(target, "ProcessId") is None:
        raise PowerShellError(
            error_record(
                ctx.command_name,
                "Method not found ",
                "HRESULT 0x80041055",
                "MetadataError",
                CIM_EXCEPTION,
                method,
                qualifier=f"{CIM_CMDLETS}.InvokeCimMethodCommand",
            )
        )
    pid = int(prop(target, "ProcessId"))
    for _, row_pid, _, domain, user in process_table(b):
        if row_pid == pid:
            yield PSObject(
                [("Domain", domain), ("ReturnValue", 0), ("User", user), ("PSComputerName", None)],
                cim_type_names("root/cimv2", ("__PARAMETERS",)),
            )
            return
    yield PSObject([("Domain", None), ("ReturnValue", 2), ("User", None), ("PSComputerName", None)])


# ---- Get-Tpm ----------------------------------------------------------------------------------------------------


def _get_tpm(ctx: CmdletContext, args: dict[str, Any]) -> Iterator[Any]:
    b = binding(ctx)
    if not is_elevated(b.principal):
        # The TrustedPlatformModule module reads Win32_Tpm, which only administrators may open.
        raise PowerShellError(
            error_record(
                ctx.command_name,
                "Access denied.",
                "Microsoft.Tpm.Commands.TpmWmiException",
                "NotSpecified",
                "Microsoft.Tpm.Commands.TpmWmiException",
                qualifier="Microsoft.Tpm.Commands.GetTpmCommand",
            )
        )
    tpm = b.device.tpm
    if tpm.provider_error:
        raise PowerShellError(
            error_record(
                ctx.command_name,
                tpm.provider_error,
                "Microsoft.Tpm.Commands.TpmWmiException",
                "NotSpecified",
                "Microsoft.Tpm.Commands.TpmWmiException",
                qualifier="Microsoft.Tpm.Commands.GetTpmCommand",
            )
        )
    ready = tpm.present and tpm.ready
    yield PSObject(
        [
            ("TpmPresent", tpm.present),
            ("TpmReady", ready),
            ("TpmEnabled", ready),
            ("TpmActivated", ready),
            ("TpmOwned", ready),
            ("RestartPending", False),
            ("ManufacturerId", manufacturer_id(tpm.manufacturer) if tpm.present else 0),
            ("ManufacturerIdTxt", tpm.manufacturer if tpm.present else None),
            ("ManufacturerVersion", tpm.manufacturer_version if tpm.present else None),
            ("ManufacturerVersionFull20", tpm.manufacturer_version if tpm.present else None),
            ("ManagedAuthLevel", "Full"),
            ("OwnerAuth", None),
            ("OwnerClearDisabled", False),
            ("AutoProvisioning", "Enabled"),
            ("LockedOut", False),
            ("LockoutHealTime", "10 minutes"),
            ("LockoutCount", 0),
            ("LockoutMax", 31),
            ("SelfTest", None),
        ],
        ("Microsoft.Tpm.Commands.TpmObject", "System.Object"),
        to_string="Microsoft.Tpm.Commands.TpmObject",
    )


# ---- Get-LocalUser ------------------------------------------------------------------------------------------------


def machine_sid(b: DeviceBinding) -> str:
    """The device's local account domain SID (stable per device name)."""
    digest = hashlib.sha256(b.device.name.casefold().encode()).digest()
    parts = [int.from_bytes(digest[i : i + 4], "big") % 4000000000 for i in (0, 4, 8)]
    return "S-1-5-21-" + "-".join(str(p) for p in parts)


def _local_users(b: DeviceBinding) -> list[Props]:
    sid = machine_sid(b)
    builtin = (
        ("Administrator", 500, "Built-in account for administering the computer/domain"),
        ("DefaultAccount", 503, "A user account managed by the system."),
        ("Guest", 501, "Built-in account for guest access to the computer/domain"),
        (
            "WDAGUtilityAccount",
            504,
            "A user account managed and used by the system for Windows Defender Application Guard scenarios.",
        ),
    )
    rows = [
        [
            ("Name", name),
            ("Enabled", False),
            ("Description", description),
            ("FullName", ""),
            ("SID", f"{sid}-{rid}"),
            ("PrincipalSource", "Local"),
            ("LastLogon", None),
            ("PasswordLastSet", None),
            ("ObjectClass", "User"),
            ("AccountExpires", None),
            ("PasswordRequired", rid != 503),
        ]
        for name, rid, description in builtin
    ]
    for user in b.device.users:
        if user.domain.casefold() == b.device.name.casefold():
            rows.append(
                [
                    ("Name", user.sam),
                    ("Enabled", True),
                    ("Description", ""),
                    ("FullName", user.display_name),
                    ("SID", user.sid),
                    ("PrincipalSource", "Local"),
                    ("LastLogon", user.last_sign_in),
                    ("PasswordLastSet", None),
                    ("ObjectClass", "User"),
                    ("AccountExpires", None),
                    ("PasswordRequired", True),
                ]
            )
    return rows


def _get_local_user(ctx: CmdletContext, args: dict[str, Any]) -> Iterator[Any]:
    b = binding(ctx)
    rows = _local_users(b)
    names = as_str_list(args.get("Name"))
    sids = as_str_list(args.get("SID"))
    selected: list[Props] = []
    if not names and not sids:
        selected = rows
    for name in names:
        hits = [r for r in rows if wildcard_match(name, str(dict(r)["Name"]))]
        if not hits and not is_wildcard(name):
            ctx.write_error(
                error_record(
                    ctx.command_name,
                    f"User {name} was not found.",
                    "UserNotFound",
                    "ObjectNotFound",
                    "Microsoft.PowerShell.Commands.UserNotFoundException",
                    name,
                )
            )
        selected.extend(hits)
    for sid in sids:
        hits = [r for r in rows if str(dict(r)["SID"]).casefold() == sid.casefold()]
        if not hits:
            ctx.write_error(
                error_record(
                    ctx.command_name,
                    f"User {sid} was not found.",
                    "UserNotFound",
                    "ObjectNotFound",
                    "Microsoft.PowerShell.Commands.UserNotFoundException",
                    sid,
                )
            )
        selected.extend(hits)
    for row in selected:
        yield PSObject(
            row,
            (
                "Microsoft.PowerShell.Commands.LocalUser",
                "Microsoft.PowerShell.Commands.LocalPrincipal",
                "System.Object",
            ),
            to_string=str(dict(row)["Name"]),
        )


# ---- Get-Process ----------------------------------------------------------------------------------------------------


def _get_process(ctx: CmdletContext, args: dict[str, Any]) -> Iterator[Any]:
    b = binding(ctx)
    table = process_table(b)
    include_user = flag(args, "IncludeUserName")
    if include_user and not is_elevated(b.principal):
        raise PowerShellError(
            error_record(
                ctx.command_name,
                "The 'IncludeUserName' parameter requires elevated user rights. Try running the command again in "
                "a session that has been opened with elevated user rights (that is, Run as Administrator).",
                "IncludeUserNameRequiresElevation",
                "InvalidOperation",
                "System.InvalidOperationException",
                qualifier=None,
            )
        )
    names = as_str_list(args.get("Name"))
    ids = [int(i) for i in as_list(args.get("Id"))]
    selected = table
    if names:
        selected = []
        for name in names:
            hits = [row for row in table if wildcard_match(name, row[0].removesuffix(".exe"))]
            if not hits and not is_wildcard(name):
                ctx.write_error(
                    error_record(
                        ctx.command_name,
                        f'Cannot find a process with the name "{name}". Verify the process name and call the cmdlet '
                        "again.",
                        "NoProcessFoundForGivenName",
                        "ObjectNotFound",
                        "Microsoft.PowerShell.Commands.ProcessCommandException",
                        name,
                    )
                )
            selected.extend(hits)
    elif ids:
        selected = [row for row in table if row[1] in ids]
    for name, pid, session, domain, user in selected:
        short = name.removesuffix(".exe")
        props: Props = [
            ("Name", short),
            ("Id", pid),
            ("ProcessName", short),
            ("SessionId", session),
            ("Handles", 500),
            ("CPU", 1.25),
            ("WS", 20 * 1024 * 1024),
            ("Path", None if pid < 100 else f"C:\\WINDOWS\\system32\\{name}"),
        ]
        if include_user:
            props.append(("UserName", f"{domain}\\{user}"))
        type_names = (("System.Diagnostics.Process#IncludeUserName",) if include_user else ()) + (
            "System.Diagnostics.Process",
            "System.ComponentModel.Component",
            "System.MarshalByRefObject",
            "System.Object",
        )
        yield PSObject(props, type_names, to_string=f"System.Diagnostics.Process ({short})")


# ---- specs -----------------------------------------------------------------------------------------------------------

_CIM_COMMON = (
    Param("ComputerName", "string[]", aliases=("CN", "ServerName")),
    Param("CimSession", "any"),
    Param("OperationTimeoutSec", "int", aliases=("OT",)),
)

SPECS: tuple[CmdletSpec, ...] = (
    CmdletSpec(
        "Get-CimInstance",
        (
            Param("ClassName", "string", position=0),
            Param("Namespace", "string"),
            Param("Filter", "string"),
            Param("Query", "string"),
            Param("Property", "string[]", aliases=("SelectProperties",)),
            Param("KeyOnly", "switch"),
            Param("Shallow", "switch"),
            Param("QueryDialect", "string"),
            *_CIM_COMMON,
        ),
        _get_cim_instance,
        aliases=("gcim",),
    ),
    CmdletSpec(
        "Get-WmiObject",
        (
            Param("Class", "string", position=0, aliases=("ClassName",)),
            Param("Property", "string[]", position=1),
            Param("Namespace", "string", aliases=("NS",)),
            Param("Filter", "string"),
            Param("Query", "string"),
            Param("ComputerName", "string[]", aliases=("Cn",)),
            Param("Credential", "any"),
            Param("List", "switch"),
        ),
        _get_wmi_object,
        aliases=("gwmi",),
    ),
    CmdletSpec(
        "Invoke-CimMethod",
        (
            Param("InputObject", "any", from_pipeline=True, aliases=("CimInstance",)),
            Param("MethodName", "string", position=1, aliases=("Name",)),
            Param("Arguments", "hashtable"),
            Param("ClassName", "string"),
            Param("Namespace", "string"),
            *_CIM_COMMON,
        ),
        _invoke_cim_method,
        aliases=("icim",),
    ),
    CmdletSpec("Get-Tpm", (), _get_tpm),
    CmdletSpec(
        "Get-LocalUser",
        (Param("Name", "string[]", position=0, from_pipeline=True), Param("SID", "string[]")),
        _get_local_user,
        aliases=("glu",),
    ),
    CmdletSpec(
        "Get-Process",
        (
            Param("Name", "string[]", position=0, aliases=("ProcessName",), from_pipeline_by_property_name=True),
            Param("Id", "any", aliases=("PID",)),
            Param("IncludeUserName", "switch"),
            Param("ComputerName", "string[]", aliases=("Cn",)),
        ),
        _get_process,
        aliases=("gps", "ps"),
    ),
)
