"""Parse ``klist`` (ticket listing, ``klist get``, ``klist purge``, failures) and ``klist cloud_debug``.

``klist`` prints ``Current LogonId is 0:0x...``, ``Cached Tickets: (n)`` and one block per ticket,
``#n>  Client: ...`` followed by indented ``Name: value`` lines (``Ticket Flags`` has no colon). It reports a
failure as ``Error calling API LsaCallAuthenticationPackage (<Op> substatus): <code>`` and/or
``klist failed with 0x<status>/<signed>: <message>``; captures often lose the message or the decimal part.

The cloud TGT that Microsoft Entra Kerberos issues shows as ``krbtgt/KERBEROS.MICROSOFTONLINE.COM @
KERBEROS.MICROSOFTONLINE.COM`` (windows-facts section 8). Inside a WinRM/PSRP session (a network logon with no
Kerberos credentials) klist fails with 0xc000005f STATUS_NO_SUCH_LOGON_SESSION: checks of a user's tickets
must run in that user's session.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from migrator.parse._text import split_lines
from migrator.parse.codes import StatusCode, describe_code, parse_number

__all__ = [
    "CLOUD_TGT_SERVER",
    "KlistApiError",
    "KlistCloudDebug",
    "KlistFailure",
    "KlistResult",
    "KlistTicket",
    "parse_klist",
    "parse_klist_cloud_debug",
]

CLOUD_TGT_SERVER = "krbtgt/KERBEROS.MICROSOFTONLINE.COM"


@dataclass(frozen=True, slots=True)
class KlistTicket:
    """One cached ticket (``#n>`` block)."""

    index: int
    client: str | None  # principal name, before " @ "
    client_realm: str | None
    server: str | None  # service principal name, before " @ "
    server_realm: str | None
    encryption_type: str | None  # "KerbTicket Encryption Type"
    ticket_flags: int | None
    ticket_flag_names: tuple[str, ...]
    start_time: str | None  # as printed, in the device's locale and time zone
    end_time: str | None
    renew_time: str | None
    session_key_type: str | None
    cache_flags: int | None
    cache_flag_names: tuple[str, ...]
    kdc_called: str | None
    unknown_fields: Mapping[str, str]

    @property
    def is_tgt(self) -> bool:
        """True for a ticket-granting ticket (server ``krbtgt/...``)."""
        return bool(self.server and self.server.casefold().startswith("krbtgt/"))

    @property
    def is_cloud_tgt(self) -> bool:
        """True for the Microsoft Entra Kerberos cloud TGT."""
        return bool(self.server and self.server.casefold() == CLOUD_TGT_SERVER.casefold())


@dataclass(frozen=True, slots=True)
class KlistApiError:
    """``Error calling API <api> (<operation> substatus): <code>``."""

    api: str
    operation: str
    substatus: StatusCode | None
    text: str  # the code as printed


@dataclass(frozen=True, slots=True)
class KlistFailure:
    """``klist failed with 0x<code>[/<signed>][: <message>]``, message filled from the code when cut off."""

    code: StatusCode
    message: str | None


@dataclass(frozen=True, slots=True)
class KlistResult:
    """What one ``klist`` run printed."""

    logon_id: str | None
    declared_ticket_count: int | None  # "Cached Tickets: (n)"
    tickets: tuple[KlistTicket, ...]
    retrieved: str | None  # "A ticket to <target> has been retrieved successfully."
    purged: bool
    api_errors: tuple[KlistApiError, ...]
    failure: KlistFailure | None
    unknown_lines: tuple[str, ...]

    @property
    def failed(self) -> bool:
        """True when klist reported a failure."""
        return self.failure is not None or bool(self.api_errors)

    @property
    def has_cloud_tgt(self) -> bool:
        """True when the Entra Kerberos cloud TGT is in the cache."""
        return any(ticket.is_cloud_tgt for ticket in self.tickets)

    @property
    def has_on_prem_tgt(self) -> bool:
        """True when a TGT of another realm (on-premises AD) is in the cache."""
        return any(ticket.is_tgt and not ticket.is_cloud_tgt for ticket in self.tickets)

    @property
    def cloud_tgt(self) -> KlistTicket | None:
        """The cloud TGT, if cached."""
        return next((ticket for ticket in self.tickets if ticket.is_cloud_tgt), None)


_LOGON_ID = re.compile(r"^Current LogonId is (?P<id>\S+)", re.IGNORECASE)
_CACHED = re.compile(r"^Cached Tickets:\s*\((?P<count>\d+)\)", re.IGNORECASE)
_TICKET_START = re.compile(r"^#(?P<index>\d+)>\s*(?P<rest>.*)$")
_RETRIEVED = re.compile(r"^A ticket to (?P<target>.+?) has been retrieved successfully\.?$", re.IGNORECASE)
_API_ERROR = re.compile(r"^Error calling API (?P<api>\S+) \((?P<op>.+?) substatus\):\s*(?P<code>\S+)", re.IGNORECASE)
_FAILED = re.compile(
    r"^klist failed with (?P<hex>0x[0-9a-fA-F]+)(?:/(?P<dec>-?\d+))?(?::\s*(?P<msg>.*))?$", re.IGNORECASE
)
_TICKET_FIELD = re.compile(r"^(?P<key>[A-Za-z][A-Za-z ]*?)\s*:\s*(?P<value>.*)$")
_FLAGS = re.compile(r"^Ticket Flags\s+(?P<value>0x[0-9a-fA-F]+)\s*(?:->\s*(?P<names>.*))?$", re.IGNORECASE)
_FLAG_VALUE = re.compile(r"^(?P<value>0x[0-9a-fA-F]+|\d+)\s*(?:->\s*(?P<names>.*))?$")
_PURGE = frozenset({"deleting all tickets:", "ticket(s) purged!"})


def _split_principal(value: str) -> tuple[str, str | None]:
    # "ayan@<> @ AzureAD": the realm follows the last " @ "; the name may itself hold "@" (a UPN).
    name, sep, realm = value.rpartition(" @ ")
    return (name.strip(), realm.strip()) if sep else (value.strip(), None)


def _flag_parts(value: str | None) -> tuple[int | None, tuple[str, ...]]:
    if value is None:
        return None, ()
    match = _FLAG_VALUE.match(value.strip())
    if not match:
        return None, tuple(value.split())
    return parse_number(match.group("value")), tuple((match.group("names") or "").split())


def _build_ticket(index: int, fields: dict[str, str], flags_line: str | None) -> KlistTicket:
    known = {
        "client",
        "server",
        "kerbticket encryption type",
        "start time",
        "end time",
        "renew time",
        "session key type",
        "cache flags",
        "kdc called",
    }
    folded = {key.casefold(): value for key, value in fields.items()}
    client, client_realm = _split_principal(folded["client"]) if "client" in folded else (None, None)
    server, server_realm = _split_principal(folded["server"]) if "server" in folded else (None, None)
    ticket_flags: int | None = None
    ticket_flag_names: tuple[str, ...] = ()
    if flags_line:
        match = _FLAGS.match(flags_line)
        if match:
            ticket_flags = int(match.group("value"), 16)
            ticket_flag_names = tuple((match.group("names") or "").split())
    cache_flags, cache_flag_names = _flag_parts(folded.get("cache flags"))
    return KlistTicket(
        index=index,
        client=client,
        client_realm=client_realm,
        server=server,
        server_realm=server_realm,
        encryption_type=folded.get("kerbticket encryption type"),
        ticket_flags=ticket_flags,
        ticket_flag_names=ticket_flag_names,
        start_time=folded.get("start time"),
        end_time=folded.get("end time"),
        renew_time=folded.get("renew time"),
        session_key_type=folded.get("session key type"),
        cache_flags=cache_flags,
        cache_flag_names=cache_flag_names,
        kdc_called=folded.get("kdc called"),
        unknown_fields={key: value for key, value in fields.items() if key.casefold() not in known},
    )


def parse_klist(text: str) -> KlistResult:
    """Parse the output of ``klist`` / ``klist tickets`` / ``klist get <spn>``; never raises."""
    logon_id: str | None = None
    declared: int | None = None
    retrieved: str | None = None
    purged = False
    tickets: list[KlistTicket] = []
    api_errors: list[KlistApiError] = []
    failure: KlistFailure | None = None
    unknown: list[str] = []
    current: tuple[int, dict[str, str], list[str]] | None = None  # index, fields, flags line

    def close_ticket() -> None:
        nonlocal current
        if current is not None:
            index, fields, flags = current
            tickets.append(_build_ticket(index, fields, flags[0] if flags else None))
            current = None

    for raw in split_lines(text):
        line = raw.strip()
        if not line:
            continue
        if match := _TICKET_START.match(line):
            close_ticket()
            current = (int(match.group("index")), {}, [])
            line = match.group("rest").strip()
            if not line:
                continue
        if current is not None:
            if line.casefold().startswith("ticket flags"):
                current[2].append(line)
                continue
            if (field_match := _TICKET_FIELD.match(line)) and not _LOGON_ID.match(line):
                current[1][field_match.group("key").strip()] = field_match.group("value").strip()
                continue
            close_ticket()
        if match := _LOGON_ID.match(line):
            logon_id = match.group("id")
        elif match := _CACHED.match(line):
            declared = int(match.group("count"))
        elif match := _RETRIEVED.match(line):
            retrieved = match.group("target")
        elif line.casefold() in _PURGE:
            purged = True
        elif match := _API_ERROR.match(line):
            number = parse_number(match.group("code"))
            # The substatus is a Win32 code when printed in decimal ("1312") or as a small hex ("0x51f"),
            # an HRESULT/NTSTATUS otherwise ("0x80090342").
            api_errors.append(
                KlistApiError(
                    api=match.group("api"),
                    operation=match.group("op"),
                    substatus=describe_code(number) if number is not None else None,
                    text=match.group("code"),
                )
            )
        elif match := _FAILED.match(line):
            code = describe_code(int(match.group("hex"), 16), win32=False)
            message = (match.group("msg") or "").strip() or code.message
            failure = KlistFailure(code=code, message=message)
        else:
            unknown.append(line)
    close_ticket()
    return KlistResult(
        logon_id=logon_id,
        declared_ticket_count=declared,
        tickets=tuple(tickets),
        retrieved=retrieved,
        purged=purged,
        api_errors=tuple(api_errors),
        failure=failure,
        unknown_lines=tuple(unknown),
    )


# klist cloud_debug labels (windows-facts section 8) -> attribute names. All but the credential type are
# 0/1 flags; the CloudAP cache it reads is not expiry-aware, so a 1 means "was obtained", not "is valid".
_CLOUD_DEBUG_FIELDS: dict[str, str] = {
    "cloud kerberos enabled by policy": "cloud_kerberos_enabled_by_policy",
    "as_rep callback received": "as_rep_callback_received",
    "as_rep callback used": "as_rep_callback_used",
    "cloud referral tgt present in cache": "cloud_referral_tgt_present",
    "spn oracle configured": "spn_oracle_configured",
    "kdc proxy present in cache": "kdc_proxy_present",
    "public key credential present": "public_key_credential_present",
    "password-derived keys present": "password_derived_keys_present",
    "plaintext password present": "plaintext_password_present",
    "as_rep credential type": "as_rep_credential_type",
    "cloud primary (hybrid logon) tgt available": "cloud_primary_tgt_available",
}
_NUMERIC_FIELD = re.compile(r"^(?P<key>[^:]+?)\s*:\s*(?P<value>.*)$")


@dataclass(frozen=True, slots=True)
class KlistCloudDebug:
    """``klist cloud_debug``: the CloudAP Kerberos state of the calling logon session."""

    logon_id: str | None
    cloud_kerberos_enabled_by_policy: bool | None  # CloudKerberosTicketRetrievalEnabled, not the WHfB switch
    as_rep_callback_received: bool | None
    as_rep_callback_used: bool | None
    cloud_referral_tgt_present: bool | None
    spn_oracle_configured: bool | None
    kdc_proxy_present: bool | None
    public_key_credential_present: bool | None
    password_derived_keys_present: bool | None
    plaintext_password_present: bool | None
    as_rep_credential_type: int | None
    cloud_primary_tgt_available: bool | None  # the partial TGT for on-prem AD (cloud Kerberos trust)
    unknown_fields: Mapping[str, str]
    failure: KlistFailure | None

    @property
    def is_empty(self) -> bool:
        """True when no cloud_debug field was found."""
        return all(getattr(self, attribute) is None for attribute in _CLOUD_DEBUG_FIELDS.values())


def parse_klist_cloud_debug(text: str) -> KlistCloudDebug:
    """Parse ``klist cloud_debug``; numeric flags become bool, the credential type an int."""
    values: dict[str, bool | int | None] = dict.fromkeys(_CLOUD_DEBUG_FIELDS.values())
    unknown: dict[str, str] = {}
    logon_id: str | None = None
    failure: KlistFailure | None = None
    for raw in split_lines(text):
        line = raw.strip()
        if not line:
            continue
        if match := _LOGON_ID.match(line):
            logon_id = match.group("id")
            continue
        if match := _FAILED.match(line):
            code = describe_code(int(match.group("hex"), 16), win32=False)
            failure = KlistFailure(code=code, message=(match.group("msg") or "").strip() or code.message)
            continue
        match = _NUMERIC_FIELD.match(line)
        if not match:
            continue
        key, value = match.group("key").strip(), match.group("value").strip()
        attribute = _CLOUD_DEBUG_FIELDS.get(key.casefold())
        number = parse_number(value)
        if attribute is None or number is None:
            unknown[key] = value
        elif attribute == "as_rep_credential_type":
            values[attribute] = number
        else:
            values[attribute] = number != 0
    return KlistCloudDebug(
        logon_id=logon_id,
        cloud_kerberos_enabled_by_policy=_as_bool(values["cloud_kerberos_enabled_by_policy"]),
        as_rep_callback_received=_as_bool(values["as_rep_callback_received"]),
        as_rep_callback_used=_as_bool(values["as_rep_callback_used"]),
        cloud_referral_tgt_present=_as_bool(values["cloud_referral_tgt_present"]),
        spn_oracle_configured=_as_bool(values["spn_oracle_configured"]),
        kdc_proxy_present=_as_bool(values["kdc_proxy_present"]),
        public_key_credential_present=_as_bool(values["public_key_credential_present"]),
        password_derived_keys_present=_as_bool(values["password_derived_keys_present"]),
        plaintext_password_present=_as_bool(values["plaintext_password_present"]),
        as_rep_credential_type=_as_int(values["as_rep_credential_type"]),
        cloud_primary_tgt_available=_as_bool(values["cloud_primary_tgt_available"]),
        unknown_fields=unknown,
        failure=failure,
    )


def _as_bool(value: bool | int | None) -> bool | None:
    return value if isinstance(value, bool) else None


def _as_int(value: bool | int | None) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
