"""``klist``: the Kerberos tickets of the *caller's* logon session, built from the lab's session flags.

A user in their own session sees the on-premises TGT (``Session.on_prem_tgt``) and the Entra Kerberos cloud
TGT (``Session.cloud_tgt``, ``krbtgt/KERBEROS.MICROSOFTONLINE.COM``, ``Kdc Called: TicketSuppliedAtLogon``);
``klist cloud_debug`` shows the CloudAP cache, where the cloud Kerberos trust partial TGT lives
(``Session.partial_tgt``). The WinRM admin's network logon has no ticket cache: klist fails with 1312 /
0xc000005f (windows-facts §8). SYSTEM sees the computer account's TGT. Texts follow
``reference/outputs/klist_*``; klist indents ticket details with a tab. The exit code of a failure is its
status as a signed 32-bit int.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from migrator.lab.derived import derived_bytes
from migrator.lab.native._common import (
    SYSTEM_LOGON_ID,
    NativeContext,
    klist_time,
    signed32,
    text,
)
from migrator.lab.shell import NativeResult, PrincipalKind

AES256 = "AES-256-CTS-HMAC-SHA1-96"
CLOUD_REALM = "KERBEROS.MICROSOFTONLINE.COM"
TGT_LIFETIME = timedelta(hours=10)
TGT_RENEWAL = timedelta(days=7)
TGT_FLAGS = (0x40E10000, "forwardable renewable initial pre_authent name_canonicalize")
CLOUD_TGT_FLAGS = (0x40810000, "forwardable renewable name_canonicalize")
SERVICE_FLAGS = (0x40A50000, "forwardable renewable pre_authent ok_as_delegate name_canonicalize")

STATUS_NO_SUCH_LOGON_SESSION = (
    0xC000005F,
    "A specified logon session does not exist. It may already have been terminated.",
)
STATUS_NO_LOGON_SERVERS = 0xC000005E
SEC_E_NO_CREDENTIALS = (0x8009030E, "No credentials are available in the security package")
# Registry values behind "Cloud Kerberos enabled by policy" (CloudKerberosTicketRetrievalEnabled: the Kerberos
# policy for Azure Files / FIDO2 cloud TGT retrieval, NOT the Hello trust switch; windows-facts §2).
CLOUD_KERBEROS_POLICY_KEYS = (
    "HKLM\\SYSTEM\\CurrentControlSet\\Control\\Lsa\\Kerberos\\Parameters",
    "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Policies\\System\\Kerberos\\Parameters",
)
USAGE = (
    "Usage: klist [-lh <LogonId.HighPart>] [-li <LogonId.LowPart>] tickets | tgt | purge | sessions | kcd_cache "
    "| get <service principal name> | add_bind <domain name> <kdc name> | query_bind | purge_bind | cloud_debug"
)


@dataclass(frozen=True)
class Ticket:
    client: str  # "alice @ CORP.CONTOSO.COM"
    server: str  # "krbtgt/CORP.CONTOSO.COM @ CORP.CONTOSO.COM"
    encryption: str
    flags: tuple[int, str]
    start: datetime
    end: datetime
    renew: datetime | None
    cache_flags: str
    kdc_called: str

    def lines(self, index: int) -> list[str]:
        value, names = self.flags
        return [
            f"#{index}>\tClient: {self.client}",
            f"\tServer: {self.server}",
            f"\tKerbTicket Encryption Type: {self.encryption}",
            f"\tTicket Flags 0x{value:x} -> {names}",
            f"\tStart Time: {klist_time(self.start)}",
            f"\tEnd Time:   {klist_time(self.end)}",
            f"\tRenew Time: {klist_time(self.renew) if self.renew else '0'}",
            f"\tSession Key Type: {AES256}",
            f"\tCache Flags: {self.cache_flags}",
            f"\tKdc Called: {self.kdc_called}",
        ]


def run(ctx: NativeContext, args: list[str]) -> NativeResult:
    words = list(args)
    target_logon: str | None = None
    if len(words) >= 2 and words[0].casefold() in ("-li", "/li"):
        target_logon = words[1].casefold()
        words = words[2:]
    verb = words[0].casefold() if words else "tickets"
    if target_logon is not None:
        return _other_session(ctx, target_logon, verb)
    if verb == "tickets":
        return _tickets(ctx)
    if verb == "tgt":
        return _tgt(ctx)
    if verb == "purge":
        return _purge(ctx)
    if verb == "get" and len(words) >= 2:
        return _get(ctx, words[1])
    if verb == "cloud_debug":
        return _cloud_debug(ctx)
    return NativeResult(stdout=text([USAGE]), exit_code=1)


# ---- tickets -----------------------------------------------------------------------------------------


def _header(ctx: NativeContext) -> list[str]:
    return ["", f"Current LogonId is 0:{ctx.logon_id()}"]


def _failed(status: tuple[int, str] | int) -> tuple[str, int]:
    code, message = status if isinstance(status, tuple) else (status, "")
    signed = signed32(code)
    suffix = f"/{signed}: {message}" if message else ""
    return f"klist failed with 0x{code:08x}{suffix}", signed


def session_tickets(ctx: NativeContext) -> list[Ticket]:
    """The tickets in the caller's logon session cache (SYSTEM: the computer account's TGT)."""
    device = ctx.device
    if ctx.principal.kind is PrincipalKind.SYSTEM:
        domain = ctx.lab.domain_of(device)
        if not device.domain_joined or domain is None or not ctx.lab.dc_available(device):
            return []
        start = device.os.last_boot or ctx.lab.fleet.created
        realm = domain.dns_name.upper()
        return [_tgt_ticket(f"{device.name.upper()}$", realm, start, domain.dc_name)]
    user, session = ctx.user, ctx.session
    if user is None or session is None:
        return []
    tickets: list[Ticket] = []
    domain = ctx.lab.user_domain(user)
    if session.on_prem_tgt and domain is not None:
        tickets.append(_tgt_ticket(user.sam, domain.dns_name.upper(), session.logon_time, domain.dc_name))
    if session.cloud_tgt:
        tickets.append(
            Ticket(
                client=f"{user.upn} @ AzureAD",
                server=f"krbtgt/{CLOUD_REALM} @ {CLOUD_REALM}",
                encryption="Unknown (-1)",
                flags=CLOUD_TGT_FLAGS,
                start=session.logon_time,
                end=session.logon_time + TGT_LIFETIME,
                renew=session.logon_time + TGT_RENEWAL,
                cache_flags="0x400 -> 0x400",
                kdc_called="TicketSuppliedAtLogon",
            )
        )
    return tickets


def _tgt_ticket(client: str, realm: str, start: datetime, dc: str) -> Ticket:
    return Ticket(
        client=f"{client} @ {realm}",
        server=f"krbtgt/{realm} @ {realm}",
        encryption=AES256,
        flags=TGT_FLAGS,
        start=start,
        end=start + TGT_LIFETIME,
        renew=start + TGT_RENEWAL,
        cache_flags="0x1 -> PRIMARY",
        kdc_called=dc,
    )


def _ticket_list(tickets: list[Ticket]) -> list[str]:
    lines = ["", f"Cached Tickets: ({len(tickets)})", ""]
    for index, ticket in enumerate(tickets):
        lines += ticket.lines(index)
        lines.append("")
    return lines


def _network_logon_failure(ctx: NativeContext, api: str) -> NativeResult:
    failed, code = _failed(STATUS_NO_SUCH_LOGON_SESSION)
    lines = [*_header(ctx), f"Error calling API LsaCallAuthenticationPackage ({api} substatus): 1312", "", failed, ""]
    return NativeResult(stdout=text(lines), exit_code=code)


def _tickets(ctx: NativeContext) -> NativeResult:
    if ctx.is_network_logon:
        return _network_logon_failure(ctx, "ShowTickets")
    with ctx.device.lock:
        tickets = session_tickets(ctx)
        header = _header(ctx)
    return NativeResult(stdout=text([*header, *_ticket_list(tickets)]))


def _other_session(ctx: NativeContext, logon_id: str, verb: str) -> NativeResult:
    """``klist -li 0x3e7``: an elevated caller may read the SYSTEM session's cache; others are not found."""
    if ctx.principal.kind is PrincipalKind.USER or logon_id not in (SYSTEM_LOGON_ID, "999") or verb != "tickets":
        return _network_logon_failure(ctx, "ShowTickets")
    system = NativeContext(ctx.lab, ctx.device, ctx.lab.system_principal(), ctx.stdin)
    return _tickets(system)


def _tgt(ctx: NativeContext) -> NativeResult:
    if ctx.is_network_logon:
        return _network_logon_failure(ctx, "RetrieveTkt")
    with ctx.device.lock:
        header = _header(ctx)
        primary = next((t for t in session_tickets(ctx) if t.cache_flags.endswith("PRIMARY")), None)
    if primary is None:
        failed, code = _failed(SEC_E_NO_CREDENTIALS)
        return NativeResult(stdout=text([*header, "", failed]), exit_code=code)
    client, _, realm = primary.client.partition(" @ ")
    value, names = primary.flags
    key_bytes = " ".join(["00"] * 32)  # klist shows zeros unless AllowTgtSessionKey is set
    encoded = _encoded_ticket(primary, ctx.device.name)
    lines = [
        *header,
        "",
        "Cached TGT:",
        "",
        "ServiceName        : krbtgt",
        "TargetName (SPN)   : krbtgt",
        f"ClientName         : {client}",
        f"DomainName         : {realm}",
        f"TargetDomainName   : {realm}",
        f"AltTargetDomainName: {realm}",
        f"Ticket Flags       : 0x{value:x} -> {names}",
        f"Session Key        : KeyType 0x12 - {AES256}",
        f"                   : KeyLength 32 - {key_bytes}",
        f"StartTime          : {klist_time(primary.start)}",
        f"EndTime            : {klist_time(primary.end)}",
        f"RenewUntil         : {klist_time(primary.renew) if primary.renew else '0'}",
        "TimeSkew           :  + 0:00 minute(s)",
        f"EncodedTicket      : (size: {len(encoded)})",
        *_hex_dump(encoded),
        "",
    ]
    return NativeResult(stdout=text(lines))


def _encoded_ticket(ticket: Ticket, device_name: str) -> bytes:
    """A stand-in for the DER ticket: an ASN.1 [APPLICATION 1] header over deterministic filler."""
    body = derived_bytes(1180, device_name, ticket.client, ticket.server, ticket.start.isoformat())
    inner = b"\x30\x82" + len(body).to_bytes(2, "big") + body
    return b"\x61\x82" + len(inner).to_bytes(2, "big") + inner


def _hex_dump(data: bytes) -> list[str]:
    lines = []
    for offset in range(0, len(data), 16):
        chunk = data[offset : offset + 16]
        hexes = [f"{b:02x}" for b in chunk]
        left, right = " ".join(hexes[:8]), " ".join(hexes[8:])
        ascii_part = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        lines.append(f"{offset:04x}  {left}:{right:<23}  {ascii_part}")
    return lines


def _purge(ctx: NativeContext) -> NativeResult:
    if ctx.is_network_logon:
        return _network_logon_failure(ctx, "PurgeTicket")
    with ctx.device.lock:
        header = _header(ctx)
        session = ctx.session
        if session is not None:
            # The Kerberos cache empties; the CloudAP cache (partial TGT, klist cloud_debug) is not touched.
            session.on_prem_tgt = False
            session.cloud_tgt = False
    return NativeResult(stdout=text([*header, "\tDeleting all tickets:", "\tTicket(s) purged!", ""]))


def _get(ctx: NativeContext, target: str) -> NativeResult:
    header = _header(ctx)
    if ctx.is_network_logon:
        failed, code = _failed(SEC_E_NO_CREDENTIALS)
        lines = [*header, "Error calling API LsaCallAuthenticationPackage (GetTicket substatus): 0x520", failed]
        return NativeResult(stdout=text(lines), exit_code=code)
    device = ctx.device
    with device.lock:
        user, session = ctx.user, ctx.session
        domain = ctx.lab.user_domain(user) if user is not None else ctx.lab.domain_of(device)
        dc = ctx.lab.dc_available(device)
        has_tgt = any(t.cache_flags.endswith("PRIMARY") for t in session_tickets(ctx))
        # A TGT is (re)acquired from a DC: with the password the session holds, or by exchanging the cloud
        # Kerberos trust partial TGT (Entra joined devices locate the DC of the user's domain too).
        can_acquire = (
            domain is not None
            and dc
            and (ctx.principal.kind is PrincipalKind.SYSTEM or session is not None)
            and (device.domain_joined or (session is not None and session.partial_tgt))
        )
        if not has_tgt and not can_acquire:
            return NativeResult(
                stdout=text(
                    [
                        *header,
                        "Error calling API LsaCallAuthenticationPackage (GetTicket substatus): 0x51f",
                        f"klist failed with 0x{STATUS_NO_LOGON_SERVERS:08x}",
                    ]
                ),
                exit_code=signed32(STATUS_NO_LOGON_SERVERS),
            )
        if session is not None and not has_tgt:
            session.on_prem_tgt = True
        tickets = session_tickets(ctx)
        name = target.split("/", maxsplit=1)[0] if target.casefold().startswith("krbtgt") else target
        if not target.casefold().startswith("krbtgt") and domain is not None:
            # A service ticket is shown, not cached: the lab keeps only TGTs per session.
            client = tickets[0].client if tickets else f"{device.name.upper()}$ @ {domain.dns_name.upper()}"
            start = ctx.now()
            tickets.append(
                Ticket(
                    client=client,
                    server=f"{target} @ {domain.dns_name.upper()}",
                    encryption=AES256,
                    flags=SERVICE_FLAGS,
                    start=start,
                    end=start + TGT_LIFETIME,
                    renew=start + TGT_RENEWAL,
                    cache_flags="0",
                    kdc_called=domain.dc_name,
                )
            )
    lines = [*header, f"A ticket to {name} has been retrieved successfully.", *_ticket_list(tickets)]
    return NativeResult(stdout=text(lines))


# ---- cloud_debug -------------------------------------------------------------------------------------


def _cloud_policy(ctx: NativeContext) -> bool:
    for key in CLOUD_KERBEROS_POLICY_KEYS:
        value = ctx.device.registry.get_value(key, "CloudKerberosTicketRetrievalEnabled")
        if value is not None and value.coerced() == 1:
            return True
    return False


def _cloud_debug(ctx: NativeContext) -> NativeResult:
    # A network logon or SYSTEM has nothing in the CloudAP cache: every flag reads 0.
    with ctx.device.lock:
        header = _header(ctx)
        session = ctx.session
        partial = bool(session and session.partial_tgt)
        cloud = bool(session and session.cloud_tgt)
        hello = bool(session and session.logon_method == "hello")
        password = bool(session and session.logon_method == "password")
        policy = _cloud_policy(ctx)
    values = [
        ("Cloud Kerberos enabled by policy", int(policy)),
        ("AS_REP callback received", int(partial or cloud)),
        ("AS_REP callback used", int(partial)),
        ("Cloud Referral TGT present in cache", int(cloud)),
        ("SPN oracle configured", int(policy and cloud)),
        ("KDC proxy present in cache", int(policy and cloud)),
        ("Public Key Credential Present", int(hello)),
        ("Password-derived Keys Present", int(password)),
        ("Plaintext Password Present", 0),  # wiped from memory after logon
        ("AS_REP Credential Type", 2 if partial else 0),
        ("Cloud Primary (Hybrid logon) TGT available", int(partial)),
    ]
    lines = [*header, "Cloud Kerberos Debug info:", *(f"{k}: {v}" for k, v in values), ""]
    return NativeResult(stdout=text(lines))
