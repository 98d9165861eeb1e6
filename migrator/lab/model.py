"""The lab's device model: typed, JSON-serialisable state of a simulated Windows fleet.

Only *state* lives here (what a fleet file holds). Behaviour (sign-in, provisioning, container deletion) lives
in :mod:`migrator.lab.windows`, policy evaluation in :mod:`migrator.lab.policy`, fleet generation in
:mod:`migrator.lab.fleet`. Facts the orchestrator must discover remotely (policy values, OS build) are stored
where Windows stores them (the registry) so that reading them through PowerShell is the only way to know.
"""

from __future__ import annotations

import base64
import binascii
import threading
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from migrator.lab.registry import Registry

SCHEMA_VERSION = 1

JoinType = Literal["hybrid", "entra", "domain", "workgroup"]
TrustType = Literal["key", "cert", "cloud"]
SessionKind = Literal["console", "rdp"]
SessionState = Literal["Active", "Disc"]
LogonMethod = Literal["password", "hello"]
Compliance = Literal["prompt", "slow", "never", "away"]

# Cloud Kerberos trust minimum builds (MS docs "cloud Kerberos trust" prerequisites): Windows 10 21H2 with
# KB5010415 = 19044.1566, Windows 11 21H2 with KB5010414 = 22000.527, any later Windows 11 feature release.
CLOUD_TRUST_MIN_UBR: dict[int, int] = {19044: 1566, 19045: 0, 22000: 527}
# Windows 10 21H1/21H2 after KB5018410 (Oct 2022) showed OnPremTgt/CloudTgt wrongly in dsregcmd; fixed in the
# 2023-01 C update (windows-facts §1, §9.5). UBR ranges of the affected builds.
DSREG_DISPLAY_BUG_UBR: dict[int, tuple[int, int]] = {19043: (2130, 2486), 19044: (2130, 2486)}


class DeviceLock:
    """A re-entrant lock that is not part of a device's state: equal to any other, copied as a fresh lock.

    pydantic compares private attributes in ``==`` and deep-copies them; a bare RLock would make two equal
    fleets unequal and a fleet impossible to copy."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.RLock()

    def __enter__(self) -> bool:
        return self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        self._lock.release()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DeviceLock)

    __hash__ = object.__hash__

    def __deepcopy__(self, memo: dict[int, object]) -> DeviceLock:
        return DeviceLock()

    def __reduce__(self) -> tuple[type[DeviceLock], tuple[()]]:
        return (DeviceLock, ())


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=False)


class Domain(_Model):
    """An Active Directory domain users and devices belong to."""

    dns_name: str  # corp.contoso.com
    netbios: str  # CORP
    sid: str  # S-1-5-21-a-b-c
    guid: str
    forest: str
    entra_kerberos: bool  # the AzureADKerberos server object exists (Set-AzureADKerberosServer was run)
    dc_name: str  # DC01.corp.contoso.com
    dc_address: str  # what nltest prints; `lab up` sets it to where the domain's DC listens (LDAP)
    dc_site: str = "Default-First-Site-Name"
    # What the domain's Group Policy writes to HKLM\SOFTWARE\Policies\Microsoft\PassportForWork on gpupdate
    # (the "external" policy channel): value name -> DWORD. None = no WHfB GPO linked.
    gpo_passport_policy: dict[str, int] | None = None
    adfs_ra_ready: bool = True  # certificate trust enrolment authority (AD FS RA) is ready


class Tenant(_Model):
    tenant_id: str
    name: str  # Contoso
    default_domain: str  # contoso.onmicrosoft.com


class OsInfo(_Model):
    product_name: str  # "Windows 10 Enterprise" (as in the registry, also on Windows 11)
    caption: str  # "Microsoft Windows 11 Enterprise" (Win32_OperatingSystem.Caption)
    edition_id: str  # Enterprise
    display_version: str  # 21H2
    build: int  # 19044
    ubr: int  # 1566
    version: str = "10.0"
    install_date: datetime | None = None
    last_boot: datetime | None = None

    @property
    def full_build(self) -> str:
        return f"{self.build}.{self.ubr}"

    @property
    def supports_cloud_trust(self) -> bool:
        if self.build >= 22621:  # Windows 11 22H2 and later
            return True
        minimum = CLOUD_TRUST_MIN_UBR.get(self.build)
        return minimum is not None and self.ubr >= minimum

    @property
    def has_dsregcmd_display_bug(self) -> bool:
        window = DSREG_DISPLAY_BUG_UBR.get(self.build)
        return window is not None and window[0] <= self.ubr < window[1]


class Tpm(_Model):
    present: bool = True
    ready: bool = True
    spec_version: str = "2.0, 0, 1.59"  # Win32_Tpm SpecVersion style
    manufacturer: str = "IFX"
    manufacturer_version: str = "7.85.4555.0"
    # The TPM WMI provider fails for everyone (TBS service disabled, broken provider): Get-Tpm and Win32_Tpm
    # throw this message, so presence cannot be read even as an administrator.
    provider_error: str | None = None


class HelloContainer(_Model):
    """A user's Windows Hello (NGC) container."""

    trust: TrustType
    key_id: str  # NgcKeyId, {GUID}
    created: datetime
    has_passkeys: bool = False  # Windows 11 keeps device-bound passkeys in the container too
    used_with_dc: bool = False  # first PIN sign-in on hybrid needs DC line of sight; set once it succeeded


class Certificate(_Model):
    """A certificate in Cert:\\CurrentUser\\My."""

    thumbprint: str
    subject: str
    issuer: str
    template: str  # "WHFBAuthentication"
    not_before: datetime
    not_after: datetime
    key_provider: str = "Microsoft Passport Key Storage Provider"
    hello_key_id: str | None = None  # the container key the certificate was enrolled with


class UserCounters(_Model):
    """Truth for tests: what happened to this user, counted by the lab."""

    sign_ins: int = 0
    hello_sign_ins: int = 0
    hello_sign_in_failures: int = 0
    sign_outs: int = 0
    container_deletions: int = 0
    provisionings: int = 0
    prompts_received: int = 0
    tasks_run: int = 0


class UserBehaviour(_Model):
    """How the simulated person reacts to a sign-out prompt."""

    compliance: Compliance = "prompt"
    delay_seconds: float = 300.0  # how long after a prompt the user signs out and back in
    away_until: datetime | None = None  # "away" users return (and sign in) at this time
    prefers_rdp: bool = False


class User(_Model):
    """A user with a local profile on the device."""

    sam: str  # alice (what quser prints)
    domain: str  # CORP, or AzureAD for Entra-only accounts
    upn: str
    sid: str
    display_name: str
    has_prt: bool = True  # the user gets an Entra PRT at sign-in (Entra identity synced, no AD FS issue)
    privileged: bool = False  # in msDS-NeverRevealGroup of AzureADKerberos: no partial TGT
    container: HelloContainer | None = None
    certificates: list[Certificate] = Field(default_factory=list)
    behaviour: UserBehaviour = Field(default_factory=UserBehaviour)
    counters: UserCounters = Field(default_factory=UserCounters)
    profile_path: str = ""
    last_sign_in: datetime | None = None

    @property
    def qualified_name(self) -> str:
        return f"{self.domain}\\{self.sam}"


class Session(_Model):
    """A signed-in user session (quser line)."""

    user_sid: str
    session_id: int
    kind: SessionKind = "console"
    state: SessionState = "Active"
    locked: bool = False
    logon_time: datetime
    logon_method: LogonMethod = "password"
    logon_id: str = "0x3e7"  # klist "Current LogonId"
    # Kerberos material held by the session (what klist/dsregcmd in that session show).
    on_prem_tgt: bool = False  # a TGT from an on-prem DC for the AD domain
    partial_tgt: bool = False  # cloud Kerberos trust partial TGT from Entra (dsregcmd OnPremTgt)
    cloud_tgt: bool = False  # Entra Kerberos TGT krbtgt/KERBEROS.MICROSOFTONLINE.COM (dsregcmd CloudTgt)
    prt: bool = False
    prt_update_time: datetime | None = None
    messages: list[str] = Field(default_factory=list)  # msg.exe text shown to the user


class TaskAction(_Model):
    execute: str
    arguments: str = ""
    working_directory: str = ""


class TaskTrigger(_Model):
    kind: Literal["AtLogOn", "Once", "AtStartup"]
    user_id: str | None = None  # AtLogOn for one user (DOMAIN\user); None = any user
    start: datetime | None = None


class ScheduledTask(_Model):
    name: str
    path: str = "\\"
    user_id: str  # principal: DOMAIN\user, SID, or SYSTEM
    logon_type: Literal["Interactive", "ServiceAccount", "Password", "S4U", "InteractiveOrPassword"] = "Interactive"
    run_level: Literal["Limited", "Highest"] = "Limited"
    actions: list[TaskAction] = Field(default_factory=list)
    triggers: list[TaskTrigger] = Field(default_factory=list)
    state: Literal["Ready", "Running", "Disabled", "Queued"] = "Ready"
    last_run_time: datetime | None = None
    last_task_result: int = 267011  # 0x41303: SCHED_S_TASK_HAS_NOT_RUN
    number_of_missed_runs: int = 0
    author: str = ""
    description: str = ""
    registered: datetime | None = None
    delete_expired_after_run: bool = False


class EventRecord(_Model):
    log_name: str  # Microsoft-Windows-User Device Registration/Admin
    provider: str  # Microsoft-Windows-User Device Registration
    event_id: int
    level: Literal["Information", "Warning", "Error", "Critical", "Verbose"] = "Information"
    time_created: datetime
    message: str
    record_id: int = 0
    user_sid: str | None = None


class CommandRecord(_Model):
    """A native command or PowerShell pipeline run on the device, with who ran it (truth for tests)."""

    time: datetime
    principal: str
    kind: Literal["native", "powershell", "task"]
    command: str


class DeviceCounters(_Model):
    commands: list[CommandRecord] = Field(default_factory=list)
    reboots: int = 0
    gpupdates: int = 0


def _bytes_from_base64(value: Any) -> Any:
    # A fleet file holds bytes as base64 text; Python callers hand bytes.
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"not base64: {exc}") from None
    return value


FileBytes = Annotated[
    bytes,
    BeforeValidator(_bytes_from_base64),
    PlainSerializer(lambda data: base64.b64encode(data).decode("ascii"), return_type=str, when_used="json"),
]

# Windows-1252 (the ANSI code page of en-US Windows): 0x80-0x9F differ from Latin-1; the five bytes the code
# page leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D) map to the same code points, as MultiByteToWideChar does.
_CP1252_HIGH = "\u20ac\x81\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\x8d\u017d\x8f"
_CP1252_HIGH += "\x90\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\x9d\u017e\u0178"
_CP1252_TABLE = {0x80 + index: char for index, char in enumerate(_CP1252_HIGH)}


def decode_file_text(data: bytes) -> str:
    """A file's bytes as Windows PowerShell 5.1 reads them as text (Get-Content, ``powershell.exe -File``).

    A byte order mark names the encoding (UTF-8, UTF-16 LE/BE) and is not part of the text; without one the
    bytes are ANSI (Windows-1252), which is what StreamReader with ``Encoding.Default`` and BOM detection does."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace")
    if data.startswith(b"\xff\xfe"):
        return data[2:].decode("utf-16-le", errors="replace")
    if data.startswith(b"\xfe\xff"):
        return data[2:].decode("utf-16-be", errors="replace")
    return data.decode("latin-1").translate(_CP1252_TABLE)


class VFile(_Model):
    """A file on the device (task output files, scripts, files copied in byte for byte).

    ``content`` is the text readers see. A file written as bytes (``[System.IO.File]``, FileStream, pypsrp's
    ``Client.copy``) also keeps ``data``, its exact bytes, and ``content`` is those bytes read as text
    (:func:`decode_file_text`). A text file has ``data`` None and its bytes are ``content`` in UTF-8 (what
    FileInfo.Length counts). Assigning ``content`` makes the file a text file again; :meth:`set_bytes` is the
    one way to store bytes. A fleet file stores ``data`` as base64 instead of the derived ``content``.
    """

    path: str  # display spelling: C:\ProgramData\migrator\out.json
    content: str = ""
    data: FileBytes | None = None
    modified: datetime | None = None
    is_directory: bool = False

    @model_validator(mode="after")
    def _text_of_bytes(self) -> VFile:
        if self.data is not None:
            self.__dict__["content"] = decode_file_text(self.data)
        return self

    @model_serializer(mode="wrap")
    def _without_derived_text(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        dumped = handler(self)
        if info.mode_is_json() and isinstance(dumped, dict):
            # Only one truth in the file: the bytes when there are any, else the text (as before bytes existed).
            dumped.pop("content" if self.data is not None else "data", None)
        return dumped

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "content" and self.__dict__.get("data") is not None:
            super().__setattr__("data", None)
        super().__setattr__(name, value)

    def raw(self) -> bytes:
        """The file's bytes: as written, or the text in UTF-8."""
        return self.data if self.data is not None else self.content.encode("utf-8")

    def set_bytes(self, data: bytes) -> None:
        """Store exact bytes (the text view follows them)."""
        data = bytes(data)
        super().__setattr__("data", data)
        super().__setattr__("content", decode_file_text(data))

    @property
    def size(self) -> int:
        """FileInfo.Length: the number of bytes."""
        return len(self.data) if self.data is not None else len(self.content.encode("utf-8"))


class Device(_Model):
    """One simulated Windows device."""

    name: str  # PC-0001 (NetBIOS computer name)
    address: str  # 127.20.0.1: where its listeners live
    join_type: JoinType
    domain: str | None = None  # DNS name of its AD domain (hybrid and domain joined)
    os: OsInfo
    tpm: Tpm = Field(default_factory=Tpm)
    device_id: str | None = None  # Entra device id (AzureAdJoined devices)
    device_cert_thumbprint: str | None = None
    manufacturer: str = "Dell Inc."
    model: str = "Latitude 7440"
    dc_reachable: bool = True
    vpn_only: bool = False  # line of sight to a DC only while on VPN (flaps in the simulation)
    mdm_enrolled: bool = False
    local_admins: list[str] = Field(default_factory=list)  # DOMAIN\name of accounts allowed to connect
    registry: Registry = Field(default_factory=Registry)
    users: list[User] = Field(default_factory=list)
    sessions: list[Session] = Field(default_factory=list)
    tasks: list[ScheduledTask] = Field(default_factory=list)
    events: list[EventRecord] = Field(default_factory=list)
    files: dict[str, VFile] = Field(default_factory=dict)  # by case-folded path
    counters: DeviceCounters = Field(default_factory=DeviceCounters)
    groups: list[str] = Field(default_factory=list)  # inventory groups the generator suggests
    notes: list[str] = Field(default_factory=list)  # why the generator made it so (old build, VPN, ...)
    next_session_id: int = 2
    next_event_record: int = 1

    _lock: DeviceLock = PrivateAttr(default_factory=DeviceLock)

    @property
    def lock(self) -> DeviceLock:
        """Serialises every mutation of this device (scripts run in worker threads)."""
        return self._lock

    @property
    def fqdn(self) -> str:
        return f"{self.name}.{self.domain}" if self.domain else self.name

    @property
    def azure_ad_joined(self) -> bool:
        return self.join_type in ("hybrid", "entra")

    @property
    def domain_joined(self) -> bool:
        return self.join_type in ("hybrid", "domain")

    def user(self, name_or_sid: str) -> User | None:
        """Find a user by SID, DOMAIN\\sam, UPN or sam (case-insensitive)."""
        wanted = name_or_sid.casefold()
        for user in self.users:
            if wanted in (
                user.sid.casefold(),
                user.qualified_name.casefold(),
                user.upn.casefold(),
                user.sam.casefold(),
            ):
                return user
        return None

    def session_of(self, user: User) -> Session | None:
        for session in self.sessions:
            if session.user_sid == user.sid:
                return session
        return None


class AdminAccount(_Model):
    """The account the orchestrator connects with (its password is never in the fleet file)."""

    domain: str = "LAB"
    username: str = "migrator-admin"

    @property
    def qualified_name(self) -> str:
        return f"{self.domain}\\{self.username}"


class DirectoryChange(_Model):
    """A change an admin made to a lab domain's directory while the lab ran (``lab group``, an LDAP modify,
    ``lab gpo set``). The directory is generated from the seed at every start and these are replayed onto it,
    so what an admin changed survives a ``lab up`` restart."""

    domain: str  # DNS name
    kind: Literal["member-add", "member-remove", "gpo-set", "gpo-remove"]
    target: str  # the group's DN, or the GPO's GUID
    name: str  # the member's DN, or the value's name
    value: int | None = None
    user: bool = False  # a GPO's User Configuration


class EntraHelloMethod(_Model):
    """A Windows Hello for Business key registered on a user in Entra ID (one of their authentication methods).

    Provisioning registers the key (event 300, "registered with Azure AD"); deleting the container on the device
    does not remove it: it stays until an admin (or the migration) deletes the method through Graph."""

    id: str  # the key's id: the container's NgcKeyId GUID, lower case, without braces
    user_upn: str
    device_name: str
    created: datetime
    key_strength: Literal["normal", "weak", "unknown"] = "normal"


class EnrollmentHello(_Model):
    """The tenant-wide Windows Hello for Business enrollment policy (Intune: Devices > Enrollment > Windows Hello
    for Business; Graph's deviceEnrollmentWindowsHelloForBusinessConfiguration). Applied to a device only when it
    enrolls in Intune; it has no cloud Kerberos trust setting (that comes from a configuration profile)."""

    state: Literal["notConfigured", "enabled", "disabled"] = "notConfigured"
    security_device_required: bool = False  # TPM required
    pin_minimum_length: int = 6
    pin_maximum_length: int = 127
    pin_uppercase: Literal["allowed", "required", "disallowed"] = "disallowed"
    pin_lowercase: Literal["allowed", "required", "disallowed"] = "disallowed"
    pin_special: Literal["allowed", "required", "disallowed"] = "disallowed"
    pin_expiration_days: int = 0
    pin_previous_block_count: int = 0
    unlock_with_biometrics: bool = True
    remote_passport: bool = False


class EntraState(_Model):
    """What the lab tenant keeps between runs: registered Hello keys, Entra group members, Intune check-ins."""

    hello_methods: list[EntraHelloMethod] = Field(default_factory=list)
    group_members: dict[str, list[str]] = Field(default_factory=dict)  # group display name -> device names
    deleted_devices: list[str] = Field(default_factory=list)  # device names whose Entra object an admin deleted
    disabled_devices: list[str] = Field(default_factory=list)  # device names whose Entra object an admin disabled
    enrollment_hello: EnrollmentHello | None = None  # None: a fleet saved before the tenant served it
    last_mdm_sync: dict[str, datetime] = Field(default_factory=dict)  # device name -> last Intune check-in


class Fleet(_Model):
    """A whole lab: what ``lab fleet`` writes and ``lab up --fleet`` reads."""

    schema_version: int = SCHEMA_VERSION
    seed: int
    created: datetime
    clock: datetime  # the virtual time the fleet was saved at
    tenant: Tenant
    domains: list[Domain]
    admin: AdminAccount = Field(default_factory=AdminAccount)
    devices: list[Device]
    directory_changes: list[DirectoryChange] = Field(default_factory=list)  # written only when there are some
    # The lab tenant's state (migrator.lab.graph); None until a tenant has run: it is then derived from the devices.
    entra: EntraState | None = None

    def domain(self, dns_name: str | None) -> Domain | None:
        if dns_name is None:
            return None
        for domain in self.domains:
            if domain.dns_name.casefold() == dns_name.casefold():
                return domain
        return None

    def device(self, name: str) -> Device | None:
        for device in self.devices:
            if device.name.casefold() == name.casefold():
                return device
        return None
