"""The contract between the lab's PowerShell interpreter, the simulated device and the wire server.

Theory of operation
-------------------
A device executes PowerShell on behalf of a :class:`Principal` (the remote admin in a network logon, SYSTEM, or
a signed-in user through a scheduled task). The interpreter (``migrator.lab.ps``) knows the language and the
generic cmdlets (Where-Object, ConvertTo-Json, ...). Everything that touches the machine (registry, CIM,
scheduled tasks, event log, native executables such as ``dsregcmd``) comes from the device through a
:class:`Host`. The wire server (``migrator.lab.server``) only sees :class:`Executor`: a script, its parameters
and input in; an :class:`InvocationResult` of streams out.

Values that cross these seams are plain Python values plus three lab types:

- ``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes`` (``byte[]``), ``datetime.datetime`` (UTC aware),
  ``list`` (``object[]``),
- :class:`Hashtable` (PowerShell ``@{}``: ordered, case-insensitive keys),
- :class:`PSObject` (``[pscustomobject]`` and every object a cmdlet emits: ordered, case-insensitive
  properties and a list of type names, most derived first, as PSRP serialises them in ``<TN>``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable


class PrincipalKind(enum.StrEnum):
    """Who a script runs as; decides HKCU, certutil behaviour and what dsregcmd can see."""

    ADMIN = "admin"  # the WinRM/PSRP connecting account: network logon (type 3), elevated
    SYSTEM = "system"  # NT AUTHORITY\SYSTEM, e.g. a scheduled task running as SYSTEM
    USER = "user"  # an interactive user, in their own session (Interactive / at-logon task)


@dataclass(frozen=True)
class Principal:
    """A security principal on one device."""

    kind: PrincipalKind
    name: str  # DOMAIN\user, as whoami prints it (lowercase on Windows)
    sid: str
    session_id: int | None = None  # the user's session for kind USER; None for network logons and SYSTEM
    groups: tuple[str, ...] = ()  # the group SIDs of the logon token (WindowsIdentity.Groups, whoami /groups)

    @property
    def is_interactive(self) -> bool:
        return self.kind is PrincipalKind.USER and self.session_id is not None


class Hashtable(MutableMapping[str, Any]):
    """PowerShell's ``@{}`` / ``[ordered]@{}``: case-insensitive keys, insertion order kept."""

    __slots__ = ("_data",)

    def __init__(self, items: Mapping[str, Any] | Iterable[tuple[str, Any]] = ()) -> None:
        self._data: dict[str, tuple[str, Any]] = {}
        pairs = items.items() if isinstance(items, Mapping) else items
        for key, value in pairs:
            self[key] = value

    @staticmethod
    def _fold(key: Any) -> Any:
        return key.casefold() if isinstance(key, str) else key

    def __getitem__(self, key: str) -> Any:
        return self._data[self._fold(key)][1]

    def __setitem__(self, key: str, value: Any) -> None:
        folded = self._fold(key)
        original = self._data[folded][0] if folded in self._data else key
        self._data[folded] = (original, value)

    def __delitem__(self, key: str) -> None:
        del self._data[self._fold(key)]

    def __iter__(self) -> Iterator[str]:
        return (original for original, _ in self._data.values())

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"Hashtable({dict(self.items())!r})"


class PSObject:
    """An object with ordered, case-insensitive note properties and PowerShell type names."""

    __slots__ = ("properties", "to_string", "type_names", "view_data")

    def __init__(
        self,
        properties: Mapping[str, Any] | Iterable[tuple[str, Any]] = (),
        type_names: Iterable[str] = ("System.Management.Automation.PSCustomObject", "System.Object"),
        to_string: str | None = None,
        view_data: Any = None,
    ) -> None:
        self.properties = Hashtable(properties)
        self.type_names = list(type_names)
        self.to_string = to_string  # what ToString()/"$obj" gives; None = PowerShell's @{a=1; b=2} form
        # What a default view reads through a .NET method rather than a property (RegistryKey.GetValue): never
        # a property, never serialised; the formatting views alone look at it.
        self.view_data = view_data

    def get(self, name: str, default: Any = None) -> Any:
        return self.properties.get(name, default)

    def __getitem__(self, name: str) -> Any:
        return self.properties[name]

    def __contains__(self, name: object) -> bool:
        return name in self.properties

    def __eq__(self, other: object) -> bool:
        # Reference semantics like .NET objects, but tests compare by content: keep content equality.
        if not isinstance(other, PSObject):
            return NotImplemented
        return self.type_names == other.type_names and dict(self.properties) == dict(other.properties)

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"PSObject({dict(self.properties)!r}, type={self.type_names[0]!r})"


# ErrorCategory names as in System.Management.Automation.ErrorCategory.
ErrorCategory = Literal[
    "NotSpecified",
    "OpenError",
    "CloseError",
    "DeviceError",
    "DeadlockDetected",
    "InvalidArgument",
    "InvalidData",
    "InvalidOperation",
    "InvalidResult",
    "InvalidType",
    "MetadataError",
    "NotImplemented",
    "NotInstalled",
    "ObjectNotFound",
    "OperationStopped",
    "OperationTimeout",
    "SyntaxError",
    "ParserError",
    "PermissionDenied",
    "ResourceBusy",
    "ResourceExists",
    "ResourceUnavailable",
    "ReadError",
    "WriteError",
    "FromStdErr",
    "SecurityError",
    "ProtocolError",
    "ConnectionError",
    "AuthenticationError",
    "LimitsExceeded",
    "QuotaExceeded",
    "NotEnabled",
]


@dataclass(frozen=True)
class ErrorRecord:
    """A PowerShell ErrorRecord, shaped so the wire server can send it on the PSRP error stream."""

    message: str
    fully_qualified_error_id: str  # e.g. "PathNotFound,Microsoft.PowerShell.Commands.GetItemPropertyCommand"
    category: ErrorCategory = "NotSpecified"
    exception_type: str = "System.Management.Automation.RuntimeException"
    target_object: Any = None
    target_name: str = ""
    activity: str = ""  # the command name, as CategoryInfo.Activity shows it
    reason: str = ""  # CategoryInfo.Reason: the exception's short type name
    script_stack_trace: str = ""
    position_message: str = ""


class PowerShellError(Exception):
    """A terminating error inside the interpreter: carries the ErrorRecord that catch blocks see."""

    def __init__(self, record: ErrorRecord) -> None:
        super().__init__(record.message)
        self.record = record


@dataclass(frozen=True)
class NativeResult:
    """What a native executable wrote and returned (cmd.exe semantics: text streams and an exit code)."""

    stdout: str = ""
    stderr: str = ""
    exit_code: int = 0


# ---- cmdlets supplied by the device ---------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """One cmdlet parameter, as the binder needs it (name prefix matching, aliases, positions, switches)."""

    name: str
    kind: Literal["any", "string", "int", "bool", "switch", "string[]", "hashtable", "datetime", "object[]"] = "any"
    mandatory: bool = False
    position: int | None = None
    aliases: tuple[str, ...] = ()
    from_pipeline: bool = False  # ValueFromPipeline: the cmdlet runs once per input object
    from_pipeline_by_property_name: bool = False


class CmdletContext(Protocol):
    """What a cmdlet implementation may use while it runs."""

    @property
    def host(self) -> Host: ...

    @property
    def command_name(self) -> str: ...

    def write_error(self, record: ErrorRecord) -> None:
        """A non-terminating error: honours -ErrorAction / $ErrorActionPreference of the caller."""

    def write_warning(self, message: str) -> None: ...

    def write_verbose(self, message: str) -> None: ...

    def write_information(self, message: Any) -> None: ...


CmdletFunc = Callable[[CmdletContext, dict[str, Any]], Iterable[Any]]
"""A cmdlet body: bound parameters (by canonical name; absent optional ones omitted) in, output objects out.
It raises :class:`PowerShellError` for a terminating error and calls ``ctx.write_error`` for a
non-terminating one. With a ``from_pipeline`` parameter it is called once per input object."""


@dataclass(frozen=True)
class CmdletSpec:
    name: str  # canonical Verb-Noun
    params: tuple[Param, ...]
    func: CmdletFunc
    aliases: tuple[str, ...] = ()


# ---- the seams -------------------------------------------------------------------------------------


@runtime_checkable
class Clock(Protocol):
    """Virtual time: tests advance it, ``lab up`` maps it to real time."""

    def now(self) -> datetime: ...

    def sleep(self, seconds: float) -> None:
        """Start-Sleep and waits inside scripts: advance (virtual) or block (real-time mapping)."""


class Host(Protocol):
    """What the interpreter needs from the machine it runs on, bound to one principal."""

    @property
    def principal(self) -> Principal: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def computer_name(self) -> str: ...

    def environment(self) -> Mapping[str, str]:
        """``$env:`` for this principal (COMPUTERNAME, USERNAME, USERDOMAIN, TEMP, SystemRoot, ...)."""

    def cmdlets(self) -> Mapping[str, CmdletSpec]:
        """Device cmdlets by lower-cased name and alias (Get-ItemProperty, Get-ScheduledTask, ...)."""

    def run_native(self, command: str, args: list[str], stdin: str | None = None) -> NativeResult:
        """Run an executable by name (``dsregcmd``, ``dsregcmd.exe``, ``C:\\Windows\\System32\\certutil.exe``).

        Unknown commands return None-equivalent through :meth:`has_native`; the interpreter raises
        CommandNotFoundException itself."""

    def has_native(self, command: str) -> bool: ...

    def standard_input(self) -> str | None:
        """What the process hosting this PowerShell got on stdin (``[Console]::In``), if anything."""


@dataclass(frozen=True)
class InformationRecord:
    """One record of the information stream (System.Management.Automation.InformationRecord, PowerShell 5.0+).

    Write-Information and Write-Host both write one; Write-Host's has the tag ``PSHOST`` and a
    HostInformationMessage as its data. ``displayed``: whether a console host prints it (Write-Host, or
    Write-Information under ``Continue``); a record under ``SilentlyContinue`` is still in the stream."""

    message_data: Any
    source: str = ""
    tags: tuple[str, ...] = ()
    time_generated: datetime | None = None
    displayed: bool = True

    @property
    def text(self) -> str:
        data = self.message_data
        if isinstance(data, PSObject) and data.to_string is not None:
            return data.to_string
        return "" if data is None else str(data)


@dataclass
class InvocationResult:
    """Everything one pipeline invocation produced, stream by stream, in order within each stream."""

    output: list[Any] = field(default_factory=list)
    errors: list[ErrorRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    verbose: list[str] = field(default_factory=list)
    debug: list[str] = field(default_factory=list)
    information: list[Any] = field(default_factory=list)  # InformationRecord (or a plain value from a test double)
    had_errors: bool = False  # PowerShell.HadErrors: any error record, terminating or not
    terminating_error: ErrorRecord | None = None  # set when the pipeline stopped on a terminating error
    exit_code: int | None = None  # set by an `exit N` statement (powershell.exe passes it on as its exit code)


@dataclass(frozen=True)
class Command:
    """One command of a PSRP pipeline: a script (``add_script``) or a cmdlet (``add_cmdlet``)."""

    text: str  # script text, or the cmdlet name when is_script is False
    is_script: bool = True
    parameters: tuple[tuple[str | None, Any], ...] = ()  # (name, value); name None = positional argument
    use_local_scope: bool | None = None


class Runspace(Protocol):
    """One PowerShell runspace on a device (variables and functions persist between invocations)."""

    def invoke(self, commands: list[Command], input: list[Any] | None = None) -> InvocationResult:
        """Run one pipeline to completion (a terminating error ends up in the result, not raised)."""

    def stop(self) -> None:
        """Stop the pipeline now running (PSRP Signal stop): it ends with a PipelineStoppedException."""

    def close(self) -> None: ...


class Executor(Protocol):
    """What the wire server calls: open runspaces and run cmd.exe command lines on a device as a principal."""

    def open_runspace(self, device: str, principal: Principal) -> Runspace: ...

    def run_command_line(
        self, device: str, principal: Principal, command_line: str, stdin: str | None = None
    ) -> NativeResult:
        """WinRS ``cmd`` shell: one command line as cmd.exe would run it (``powershell -EncodedCommand`` too),
        with what the client sent on stdin (WinRS Send) as its standard input."""


# ---- Group Policy from the directory -------------------------------------------------------------------------


@dataclass(frozen=True)
class AppliedPolicy:
    """What Group Policy gives one device at a refresh: the union of the GPOs that apply to the computer (and
    to each of its users), and which GPOs those were."""

    computer: Mapping[str, int]  # HKLM\SOFTWARE\Policies\Microsoft\PassportForWork value -> DWORD
    users: Mapping[str, Mapping[str, int]]  # user SID -> HKU\<SID>\SOFTWARE\Policies\... value -> DWORD
    gpos: tuple[str, ...]  # display names of the GPOs applied (computer and user)
    groups: tuple[str, ...]  # the computer's groups, nested ones included
    # computer value -> (display name, DN) of the GPO whose setting won (precedence 1): what the Resultant Set
    # of Policy logging records (RSOP_RegistryPolicySetting in root\RSOP\Computer) at each refresh
    computer_from: Mapping[str, tuple[str, str]] = field(default_factory=dict)


@runtime_checkable
class GroupPolicySource(Protocol):
    """Where a device's Group Policy comes from (the lab's domain controllers): wired in by the runtime."""

    def policy_for(self, device_name: str, domain: str, user_sids: tuple[str, ...]) -> AppliedPolicy | None:
        """The policy for a computer of ``domain`` and its users; None if the directory does not know it."""
        ...


@runtime_checkable
class AccountDirectory(Protocol):
    """What the domain controllers know about a user account, for the device's view of it: wired in by the
    runtime; None from a method means the directory does not know the account (the fleet's flags then hold)."""

    def token_groups(self, user_sid: str) -> tuple[str, ...] | None:
        """The SIDs of the account's domain groups, nested ones and the primary group included."""
        ...

    def never_revealed(self, user_sid: str) -> bool | None:
        """Whether the account is in a group the AzureADKerberos object's msDS-NeverRevealGroup names."""
        ...
