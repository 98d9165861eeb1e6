"""``whoami`` and its tables: ``/user``, ``/groups``, ``/priv``, ``/all``, ``/upn``, ``/fo`` ``/nh``.

Layout (Windows 10/11 en-US, ``whoami /?`` and the samples in ``tests/lab/outputs/whoami_*.txt``): each section
starts with a blank line, a title and a dashed underline, a blank line, then a table whose columns are as wide as
their widest cell (header included), separated by one space and underlined with ``=``; the last column is not
padded. ``/all`` prints USER, GROUP, PRIVILEGES and USER CLAIMS INFORMATION in that order.

What the token holds depends on who runs it (windows-facts §6): the WinRM admin is an elevated network logon
(NETWORK, NTLM Authentication, High Mandatory Level; every privilege of an elevated administrator, enabled, as a
remote session shows them); a signed-in user has an interactive, medium-integrity token with the five standard
user privileges; SYSTEM has the LocalSystem token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from migrator.lab import boundary
from migrator.lab.native._common import NativeContext, text
from migrator.lab.shell import NativeResult, PrincipalKind

_MANDATORY = "Mandatory group, Enabled by default, Enabled group"
_OWNER = _MANDATORY + ", Group owner"


@dataclass(frozen=True)
class _Group:
    name: str
    kind: str  # Well-known group, Alias, Group, Label
    sid: str
    attributes: str


_DELEGATE = "Obtain an impersonation token for another user in the same session"
# (name, description) of the privileges whoami lists, in the order Windows lists them for each token.
_ADMIN_PRIVILEGES = (
    ("SeIncreaseQuotaPrivilege", "Adjust memory quotas for a process"),
    ("SeSecurityPrivilege", "Manage auditing and security log"),
    ("SeTakeOwnershipPrivilege", "Take ownership of files or other objects"),
    ("SeLoadDriverPrivilege", "Load and unload device drivers"),
    ("SeSystemProfilePrivilege", "Profile system performance"),
    ("SeSystemtimePrivilege", "Change the system time"),
    ("SeProfileSingleProcessPrivilege", "Profile single process"),
    ("SeIncreaseBasePriorityPrivilege", "Increase scheduling priority"),
    ("SeCreatePagefilePrivilege", "Create a pagefile"),
    ("SeBackupPrivilege", "Back up files and directories"),
    ("SeRestorePrivilege", "Restore files and directories"),
    ("SeShutdownPrivilege", "Shut down the system"),
    ("SeDebugPrivilege", "Debug programs"),
    ("SeSystemEnvironmentPrivilege", "Modify firmware environment values"),
    ("SeChangeNotifyPrivilege", "Bypass traverse checking"),
    ("SeRemoteShutdownPrivilege", "Force shutdown from a remote system"),
    ("SeUndockPrivilege", "Remove computer from docking station"),
    ("SeManageVolumePrivilege", "Perform volume maintenance tasks"),
    ("SeImpersonatePrivilege", "Impersonate a client after authentication"),
    ("SeCreateGlobalPrivilege", "Create global objects"),
    ("SeIncreaseWorkingSetPrivilege", "Increase a process working set"),
    ("SeTimeZonePrivilege", "Change the time zone"),
    ("SeCreateSymbolicLinkPrivilege", "Create symbolic links"),
    ("SeDelegateSessionUserImpersonatePrivilege", _DELEGATE),
)
_USER_PRIVILEGES = (
    ("SeShutdownPrivilege", "Shut down the system", "Disabled"),
    ("SeChangeNotifyPrivilege", "Bypass traverse checking", "Enabled"),
    ("SeUndockPrivilege", "Remove computer from docking station", "Disabled"),
    ("SeIncreaseWorkingSetPrivilege", "Increase a process working set", "Disabled"),
    ("SeTimeZonePrivilege", "Change the time zone", "Disabled"),
)
_SYSTEM_PRIVILEGES = (
    ("SeAssignPrimaryTokenPrivilege", "Replace a process level token", "Disabled"),
    ("SeLockMemoryPrivilege", "Lock pages in memory", "Enabled"),
    ("SeIncreaseQuotaPrivilege", "Adjust memory quotas for a process", "Disabled"),
    ("SeTcbPrivilege", "Act as part of the operating system", "Enabled"),
    ("SeSecurityPrivilege", "Manage auditing and security log", "Disabled"),
    ("SeTakeOwnershipPrivilege", "Take ownership of files or other objects", "Disabled"),
    ("SeLoadDriverPrivilege", "Load and unload device drivers", "Disabled"),
    ("SeSystemProfilePrivilege", "Profile system performance", "Enabled"),
    ("SeSystemtimePrivilege", "Change the system time", "Disabled"),
    ("SeProfileSingleProcessPrivilege", "Profile single process", "Enabled"),
    ("SeIncreaseBasePriorityPrivilege", "Increase scheduling priority", "Enabled"),
    ("SeCreatePagefilePrivilege", "Create a pagefile", "Enabled"),
    ("SeCreatePermanentPrivilege", "Create permanent shared objects", "Enabled"),
    ("SeBackupPrivilege", "Back up files and directories", "Disabled"),
    ("SeRestorePrivilege", "Restore files and directories", "Disabled"),
    ("SeShutdownPrivilege", "Shut down the system", "Disabled"),
    ("SeDebugPrivilege", "Debug programs", "Enabled"),
    ("SeAuditPrivilege", "Generate security audits", "Enabled"),
    ("SeSystemEnvironmentPrivilege", "Modify firmware environment values", "Disabled"),
    ("SeChangeNotifyPrivilege", "Bypass traverse checking", "Enabled"),
    ("SeUndockPrivilege", "Remove computer from docking station", "Disabled"),
    ("SeManageVolumePrivilege", "Perform volume maintenance tasks", "Disabled"),
    ("SeImpersonatePrivilege", "Impersonate a client after authentication", "Enabled"),
    ("SeCreateGlobalPrivilege", "Create global objects", "Enabled"),
    ("SeIncreaseWorkingSetPrivilege", "Increase a process working set", "Enabled"),
    ("SeTimeZonePrivilege", "Change the time zone", "Enabled"),
    ("SeCreateSymbolicLinkPrivilege", "Create symbolic links", "Enabled"),
    ("SeDelegateSessionUserImpersonatePrivilege", _DELEGATE, "Enabled"),
)  # fmt: skip
_WELL_KNOWN = "Well-known group"
_DOMAIN_GROUPS = {"513": "Domain Users", "512": "Domain Admins", "572": "Denied RODC Password Replication Group"}
_OPTIONS = ("/user", "/groups", "/priv", "/all", "/upn", "/fqdn", "/logonid", "/claims", "/fo", "/nh")


def run(ctx: NativeContext, args: list[str]) -> NativeResult:
    principal = ctx.principal
    options = [a.casefold() for a in args]
    if not options:
        return NativeResult(stdout=text([principal.name.lower()]))
    if options == ["/upn"]:
        return _upn(ctx)
    values = {index + 1 for index, a in enumerate(options) if a == "/fo"}  # /FO's format name
    unknown = next(
        (a for i, a in enumerate(args) if a.casefold() not in _OPTIONS and a != "/?" and i not in values), None
    )
    unmodelled = next((a for a in args if a.casefold() in ("/?", "/fo", "/fqdn", "/logonid")), None)
    if unknown is None and unmodelled is not None:
        # The help text, /fo list|csv, and /fqdn and /logonid (what the lab does not track) are not modelled.
        message = boundary.native_refusal(f"whoami {unmodelled}", "lab/native/whoami")
        return NativeResult(stderr=text([message]), exit_code=boundary.EXIT_CODE)
    if unknown is not None:
        return NativeResult(
            stderr=text([f"ERROR: Invalid argument/option - '{unknown}'.", 'Type "WHOAMI /?" for usage.']),
            exit_code=1,
        )
    header = "/nh" not in options
    sections = {"/all": ("user", "groups", "priv", "claims")}.get(options[0], ())
    wanted = [o[1:] for o in options if o in ("/user", "/groups", "/priv", "/claims")]
    lines: list[str] = []
    for section in sections or tuple(wanted):
        lines += _SECTIONS[section](ctx, header)
    return NativeResult(stdout=text(lines))


def _upn(ctx: NativeContext) -> NativeResult:
    user = ctx.user
    if user is not None and ctx.principal.kind is PrincipalKind.USER and "@" in user.upn:
        return NativeResult(stdout=text([user.upn]))
    return NativeResult(
        stderr=text(
            [
                "ERROR: Unable to get User Principal Name (UPN) as the current logged-on user",
                "       is not a domain user.",
            ]
        ),
        exit_code=1,
    )


def _table(title: str, headers: tuple[str, ...], rows: Sequence[tuple[str, ...]], header: bool) -> list[str]:
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

    def line(cells: tuple[str, ...]) -> str:
        padded = [cell.ljust(widths[i]) for i, cell in enumerate(cells[:-1])]
        return " ".join([*padded, cells[-1]]).rstrip()

    lines = ["", title, "-" * len(title), ""]
    if header:
        lines += [line(headers), " ".join("=" * w for w in widths)]
    lines += [line(row) for row in rows]
    return lines


def _user_section(ctx: NativeContext, header: bool) -> list[str]:
    principal = ctx.principal
    return _table("USER INFORMATION", ("User Name", "SID"), [(principal.name.lower(), principal.sid)], header)


def groups_of(ctx: NativeContext) -> list[_Group]:
    """The groups of the caller's token, in the order whoami lists them."""
    principal = ctx.principal
    if principal.kind is PrincipalKind.SYSTEM:
        return [
            _Group(
                "BUILTIN\\Administrators", "Alias", "S-1-5-32-544", "Enabled by default, Enabled group, Group owner"
            ),
            _Group("Everyone", _WELL_KNOWN, "S-1-1-0", _MANDATORY),
            _Group("NT AUTHORITY\\Authenticated Users", _WELL_KNOWN, "S-1-5-11", _MANDATORY),
            _Group("Mandatory Label\\System Mandatory Level", "Label", "S-1-16-16384", ""),
        ]
    domain = principal.name.partition("\\")[0].upper()
    user = ctx.user
    if user is not None:
        found = ctx.lab.user_domain(user)
        domain = found.netbios if found is not None else user.domain
    groups = [_Group("Everyone", _WELL_KNOWN, "S-1-1-0", _MANDATORY)]
    session = ctx.session
    session_kind = session.kind if session is not None else "console"
    if principal.kind is PrincipalKind.ADMIN:
        groups += [
            _Group("BUILTIN\\Administrators", "Alias", "S-1-5-32-544", _OWNER),
            _Group("BUILTIN\\Users", "Alias", "S-1-5-32-545", _MANDATORY),
            _Group("NT AUTHORITY\\NETWORK", _WELL_KNOWN, "S-1-5-2", _MANDATORY),
            _Group("NT AUTHORITY\\Authenticated Users", _WELL_KNOWN, "S-1-5-11", _MANDATORY),
            _Group("NT AUTHORITY\\This Organization", _WELL_KNOWN, "S-1-5-15", _MANDATORY),
        ]
        if principal.sid.startswith("S-1-5-21-"):
            groups.append(
                _Group(f"{domain}\\Domain Users", "Group", principal.sid.rsplit("-", 1)[0] + "-513", _MANDATORY)
            )
        groups += [
            _Group("NT AUTHORITY\\NTLM Authentication", _WELL_KNOWN, "S-1-5-64-10", _MANDATORY),
            _Group("Mandatory Label\\High Mandatory Level", "Label", "S-1-16-12288", ""),
        ]
        return groups
    groups += [
        _Group("BUILTIN\\Users", "Alias", "S-1-5-32-545", _MANDATORY),
        _Group("NT AUTHORITY\\INTERACTIVE", _WELL_KNOWN, "S-1-5-4", _MANDATORY),
        # A console session's token has CONSOLE LOGON; a Remote Desktop session's REMOTE INTERACTIVE LOGON.
        _Group("CONSOLE LOGON", _WELL_KNOWN, "S-1-2-1", _MANDATORY)
        if session_kind != "rdp"
        else _Group("NT AUTHORITY\\REMOTE INTERACTIVE LOGON", _WELL_KNOWN, "S-1-5-14", _MANDATORY),
        _Group("NT AUTHORITY\\Authenticated Users", _WELL_KNOWN, "S-1-5-11", _MANDATORY),
        _Group("NT AUTHORITY\\This Organization", _WELL_KNOWN, "S-1-5-15", _MANDATORY),
        _Group("LOCAL", _WELL_KNOWN, "S-1-2-0", _MANDATORY),
    ]
    for sid in principal.groups:
        rid = sid.rsplit("-", 1)[1]
        if sid.startswith("S-1-5-21-") and rid in _DOMAIN_GROUPS:
            groups.append(_Group(f"{domain}\\{_DOMAIN_GROUPS[rid]}", "Group", sid, _MANDATORY))
    groups += [
        _Group("Authentication authority asserted identity", _WELL_KNOWN, "S-1-18-1", _MANDATORY),
        _Group("Mandatory Label\\Medium Mandatory Level", "Label", "S-1-16-8192", ""),
    ]
    return groups


def _groups_section(ctx: NativeContext, header: bool) -> list[str]:
    rows = [(g.name, g.kind, g.sid, g.attributes) for g in groups_of(ctx)]
    return _table("GROUP INFORMATION", ("Group Name", "Type", "SID", "Attributes"), rows, header)


def privileges_of(ctx: NativeContext) -> list[tuple[str, str, str]]:
    kind = ctx.principal.kind
    if kind is PrincipalKind.SYSTEM:
        return list(_SYSTEM_PRIVILEGES)
    if kind is PrincipalKind.USER:
        return list(_USER_PRIVILEGES)
    return [(name, description, "Enabled") for name, description in _ADMIN_PRIVILEGES]


def _privileges_section(ctx: NativeContext, header: bool) -> list[str]:
    headers = ("Privilege Name", "Description", "State")
    return _table("PRIVILEGES INFORMATION", headers, privileges_of(ctx), header)


def _claims_section(ctx: NativeContext, header: bool) -> list[str]:
    title = "USER CLAIMS INFORMATION"
    return [
        "",
        title,
        "-" * len(title),
        "",
        "User claims unknown.",
        "",
        "Kerberos support for Dynamic Access Control on this device has been disabled.",
    ]


_SECTIONS = {
    "user": _user_section,
    "groups": _groups_section,
    "priv": _privileges_section,
    "claims": _claims_section,
}
