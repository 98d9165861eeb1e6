"""``nltest /dsgetdc:<domain>`` and ``nltest /sc_verify:<domain>``: DC line of sight and the secure channel.

nltest prints ``Key: value`` lines with the key right-aligned to ``Our Site Name`` (Microsoft docs strip the
alignment; ``reference/outputs/nltest_*``), and ``Getting DC name failed: Status = 1355 0x54b
ERROR_NO_SUCH_DOMAIN`` when the DC locator finds nothing. Its exit code is the Win32 status (0 on success).
nltest runs fine in a network logon (windows-facts §8), so the caller does not matter for /dsgetdc.
"""

from __future__ import annotations

from migrator.lab.model import Domain
from migrator.lab.native._common import NativeContext, text
from migrator.lab.shell import NativeResult, PrincipalKind

ERROR_ACCESS_DENIED = (5, "ERROR_ACCESS_DENIED")
ERROR_NO_LOGON_SERVERS = (1311, "ERROR_NO_LOGON_SERVERS")
ERROR_NO_SUCH_DOMAIN = (1355, "ERROR_NO_SUCH_DOMAIN")
ERROR_INVALID_PARAMETER = (87, "ERROR_INVALID_PARAMETER")

# What a patched Windows Server 2016+ writable DC advertises (DS_DOMAIN_CONTROLLER_INFO flags). KEYLIST is the
# key-list support cloud Kerberos trust needs for the partial TGT exchange (windows-facts §4, §8).
DC_FLAGS = (
    "PDC GC DS LDAP KDC TIMESERV GTIMESERV WRITABLE DNS_DC DNS_DOMAIN DNS_FOREST CLOSE_SITE FULL_SECRET WS "
    "DS_8 DS_9 DS_10 KEYLIST"
)
_DSGETDC_OPTIONS = {
    "/force",
    "/kdc",
    "/writable",
    "/keylist",
    "/pdc",
    "/gc",
    "/ds",
    "/timeserv",
    "/gtimeserv",
    "/avoidself",
    "/netbios",
    "/dns_name",
    "/ip",
    "/background",
    "/ds_6",
    "/ds_8",
    "/ds_9",
    "/ds_10",
    "/ret_dns",
    "/ret_netbios",
    "/try_next_closest_site",
}
USAGE = """Usage: nltest [/OPTIONS]

    /SERVER:<ServerName> - Specify <ServerName>

    /SC_QUERY:<DomainName> - Query secure channel for <Domain> on <ServerName>
    /SC_VERIFY:<DomainName> - Verify secure channel for <Domain> on <ServerName>
    /DSGETDC:<DomainName> - Call DsGetDcName
        /PDC /DS /DSP /GC /KDC /TIMESERV /GTIMESERV /WS /NETBIOS /DNS /IP /FORCE /WRITABLE /AVOIDSELF /LDAPONLY
        /BACKGROUND /DS_6 /DS_8 /DS_9 /DS_10 /KEYLIST /TRY_NEXT_CLOSEST_SITE /SITE:<SiteName> /ACCOUNT:<AccountName>
        /RET_DNS /RET_NETBIOS
"""


def run(ctx: NativeContext, args: list[str]) -> NativeResult:
    if not args:
        return NativeResult(stdout=USAGE, exit_code=ERROR_INVALID_PARAMETER[0])
    verb, _, value = args[0].partition(":")
    verb = verb.casefold()
    options = [a.casefold() for a in args[1:]]
    if verb == "/dsgetdc":
        return _dsgetdc(ctx, value, options)
    if verb == "/sc_verify":
        return _sc_verify(ctx, value)
    return NativeResult(stdout=USAGE, exit_code=ERROR_INVALID_PARAMETER[0])


def _failure(operation: str, status: tuple[int, str]) -> NativeResult:
    code, name = status
    return NativeResult(stdout=text([f"{operation} failed: Status = {code} 0x{code:x} {name}"]), exit_code=code)


def _known_domain(ctx: NativeContext, name: str) -> Domain | None:
    """The domain the DC locator can find from this device: its own, or the domain of the calling user."""
    wanted = name.casefold()
    candidates = [ctx.lab.domain_of(ctx.device)]
    user = ctx.user
    if user is not None:
        candidates.append(ctx.lab.user_domain(user))
    if not wanted:  # "/dsgetdc:" with no name locates the primary domain
        return candidates[0]
    for domain in candidates:
        if domain is not None and wanted in (domain.dns_name.casefold(), domain.netbios.casefold()):
            return domain
    return None


def _dsgetdc(ctx: NativeContext, name: str, options: list[str]) -> NativeResult:
    unknown = [o for o in options if o not in _DSGETDC_OPTIONS and not o.startswith(("/site:", "/account:"))]
    if unknown:
        return NativeResult(stdout=USAGE, exit_code=ERROR_INVALID_PARAMETER[0])
    with ctx.device.lock:
        domain = _known_domain(ctx, name)
        reachable = ctx.lab.dc_available(ctx.device)
    if domain is None or not reachable:
        return _failure("Getting DC name", ERROR_NO_SUCH_DOMAIN)
    by_netbios = name.casefold() == domain.netbios.casefold() and "/ret_dns" not in options
    fields = [
        ("DC", f"\\\\{domain.dc_name}"),
        ("Address", f"\\\\{domain.dc_address}"),
        ("Dom Guid", domain.guid),
        # Asked by NetBIOS name, the locator answers with the NetBIOS domain name (DsGetDcName semantics).
        ("Dom Name", domain.netbios if by_netbios else domain.dns_name),
        ("Forest Name", domain.forest),
        ("Dc Site Name", domain.dc_site),
        ("Our Site Name", domain.dc_site),
        ("Flags", DC_FLAGS),
    ]
    width = max(len(key) for key, _ in fields)
    lines = [f"{key:>{width}}: {value}" for key, value in fields]
    lines.append("The command completed successfully")
    return NativeResult(stdout=text(lines))


def _sc_verify(ctx: NativeContext, name: str) -> NativeResult:
    # I_NetLogonControl2(NETLOGON_CONTROL_TC_VERIFY) needs administrator rights.
    if ctx.principal.kind is PrincipalKind.USER:
        return _failure("I_NetLogonControl", ERROR_ACCESS_DENIED)
    with ctx.device.lock:
        domain = ctx.lab.domain_of(ctx.device)
        joined = ctx.device.domain_joined and domain is not None
        reachable = ctx.lab.dc_available(ctx.device)
    if not joined or domain is None or name.casefold() not in (domain.dns_name.casefold(), domain.netbios.casefold()):
        return _failure("I_NetLogonControl", ERROR_NO_SUCH_DOMAIN)
    if not reachable:
        code, status = ERROR_NO_LOGON_SERVERS
        lines = [
            "Flags: 0",
            "Trusted DC Name ",
            f"Trusted DC Connection Status Status = {code} 0x{code:x} {status}",
            f"Trust Verification Status = {code} 0x{code:x} {status}",
            "The command completed successfully",
        ]
        return NativeResult(stdout=text(lines))
    lines = [
        "Flags: b0 HAS_IP  HAS_TIMESERV",
        f"Trusted DC Name \\\\{domain.dc_name.lower()}",
        "Trusted DC Connection Status Status = 0 0x0 NERR_Success",
        "Trust Verification Status = 0 0x0 NERR_Success",
        "The command completed successfully",
    ]
    return NativeResult(stdout=text(lines))
