"""What a parsed output means for the migration: a verdict and plain-English reasons citing the fields.

Pure functions from the typed facts of :mod:`migrator.parse` to an :class:`Explanation`. The CLI
(``migrator explain ...``) only reads the file and renders; the JSON shape produced here is the stable
contract of ``--json``.

dsregcmd verdicts, first match wins (primer "Facts an orchestrator checks"; windows-facts sections 1, 3, 9):

1. ``unknown``: nothing that looks like ``dsregcmd /status`` was found.
2. ``not-eligible``: the device cannot use cloud Kerberos trust as it stands: ``AzureAdJoined : NO`` (domain
   only or workgroup; Entra registration does not count), ``IsDeviceJoined : NO``, ``DeviceEligible : NO``.
3. ``cloud-trust-active``: ``OnPremTgt : YES`` (the user holds a cloud Kerberos partial TGT for on-premises
   AD) and the user is not known to lack a container. Caveat reported: Windows 10 21H1/21H2 with KB5018410
   displayed OnPremTgt/CloudTgt wrongly until the January 2023 update.
4. ``key-or-cert-needs-migration``: ``NgcSet : YES`` without ``OnPremTgt : YES``. ``CertEnrollment :
   enrollment authority`` / ``mobile device management`` marks certificate trust (container must be deleted
   and re-provisioned), ``none`` key trust (sign out, sign in with Hello). Blockers (no PRT, RDP session) are
   reported as reasons: the container still needs migrating.
5. ``not-eligible``: ``NgcSet : NO`` and the user cannot provision Hello at all (``AzureAdPrt : NO`` or
   ``IsUserAzureAD : NO``: no Entra identity in this session).
6. ``no-hello-container``: ``NgcSet : NO``: nothing to migrate; the user provisions under the policy in force.
7. ``unknown``: ``NgcSet`` absent (User State not captured), so the container state cannot be told.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from migrator.parse.codes import describe_code, parse_number
from migrator.parse.dsregcmd import DsregStatus
from migrator.parse.klist import KlistCloudDebug, KlistFailure, KlistResult, KlistTicket
from migrator.parse.nltest import NltestDsGetDc

__all__ = [
    "DsregVerdict",
    "Explanation",
    "KlistVerdict",
    "NltestVerdict",
    "explain_dsregcmd",
    "explain_klist",
    "explain_nltest",
]

_CERT_TRUST_ENROLLMENT = {"enrollment authority", "mobile device management"}


class DsregVerdict(enum.StrEnum):
    """What a ``dsregcmd /status`` capture means for this device and user."""

    KEY_OR_CERT_NEEDS_MIGRATION = "key-or-cert-needs-migration"
    CLOUD_TRUST_ACTIVE = "cloud-trust-active"
    NO_HELLO_CONTAINER = "no-hello-container"
    NOT_ELIGIBLE = "not-eligible"
    UNKNOWN = "unknown"


class KlistVerdict(enum.StrEnum):
    """What a ``klist`` / ``klist cloud_debug`` capture says about the cloud TGT.

    ``cloud-tgt-present``: the Entra Kerberos TGT (``krbtgt/KERBEROS.MICROSOFTONLINE.COM``) is cached, or
    ``klist cloud_debug`` reports the cloud Kerberos partial TGT for on-premises AD; the reasons say which.
    """

    CLOUD_TGT_PRESENT = "cloud-tgt-present"
    CLOUD_TGT_ABSENT = "cloud-tgt-absent"
    KLIST_FAILED = "klist-failed"
    UNKNOWN = "unknown"


class NltestVerdict(enum.StrEnum):
    """Whether ``nltest /dsgetdc:`` shows line of sight to a domain controller."""

    DC_REACHABLE = "dc-reachable"
    DC_UNREACHABLE = "dc-unreachable"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Explanation:
    """Facts (JSON-ready, stable keys), a verdict, the reasons, and rows for a human-readable table."""

    facts: Mapping[str, object]
    verdict: str
    reasons: tuple[str, ...]
    rows: tuple[tuple[str, str], ...]

    def __post_init__(self) -> None:
        # The same line can be printed twice (two captures in one file): say it once.
        object.__setattr__(self, "reasons", tuple(dict.fromkeys(self.reasons)))

    def as_json(self) -> dict[str, object]:
        """The ``--json`` document: the facts, then ``verdict`` and ``reasons``."""
        return {**self.facts, "verdict": self.verdict, "reasons": list(self.reasons)}


def _yn(value: bool | None) -> str:
    return "absent" if value is None else ("YES" if value else "NO")


def _show(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "YES" if value else "NO"
    if isinstance(value, list | tuple):
        return ", ".join(_show(item) for item in value) or "—"
    if isinstance(value, Mapping):
        return "\n".join(f"{key}: {_show(item)}" for key, item in value.items()) or "—"
    return str(value)


# Meanings of hybrid-join client error codes the runbooks meet (MS docs, troubleshoot hybrid join).
_JOIN_ERRORS = {
    "0x801c001d": "the service connection point (SCP) in AD could not be read, so the tenant is unknown",
    "0x801c03f2": "Entra ID has no device object for this computer yet (Entra Connect has not synced it)",
    "0x801c0021": "discovery of the device registration service failed",
}

_TGT_DISPLAY_BUG = (
    "Caveat: on Windows 10 21H1/21H2 with KB5018410 (October 2022), before the January 2023 update, dsregcmd "
    "displayed OnPremTgt/CloudTgt wrongly: confirm with `klist cloud_debug` (Cloud Primary (Hybrid logon) "
    "TGT available: 1) on those builds"
)


def _device_blockers(status: DsregStatus) -> list[str]:
    reasons: list[str] = []
    prereq = status.prerequisites
    if status.azure_ad_joined is False:
        reasons.append(
            "AzureAdJoined : NO — the device is not Entra joined, so no Hello provisioning under cloud Kerberos trust"
        )
        if status.domain_joined:
            reasons.append(
                "DomainJoined : YES — joined to on-premises AD only: Microsoft Entra hybrid join must "
                "complete before the device can move"
            )
        if status.client_error_code:
            meaning = _JOIN_ERRORS.get(status.client_error_code.casefold(), "the last join attempt failed")
            phase = f" (Error Phase : {status.error_phase})" if status.error_phase else ""
            reasons.append(f"Client ErrorCode : {status.client_error_code}{phase} — {meaning}")
        if status.workplace_joined:
            reasons.append(
                "WorkplaceJoined : YES — a work account is registered (Entra registered), which is not a join"
            )
        if status.ngc_set:
            reasons.append("NgcSet : YES — a Hello container exists but cannot use cloud Kerberos trust here")
    elif prereq.get("IsDeviceJoined") is False:
        reasons.append("IsDeviceJoined : NO — the device is not Entra (hybrid) joined, so Hello cannot provision")
    if prereq.get("DeviceEligible") is False:
        reasons.append("DeviceEligible : NO — the device does not meet the Hello for Business hardware requirements")
    return reasons


def _identity_blockers(status: DsregStatus) -> list[str]:
    reasons: list[str] = []
    if status.azure_ad_prt is False:
        reason = (
            "AzureAdPrt : NO — the user has no Primary Refresh Token, so Entra ID issues no cloud Kerberos "
            "TGT and Hello cannot provision"
        )
        if status.prt_attempt_status:
            number = parse_number(status.prt_attempt_status)
            name = describe_code(number, win32=False).name if number is not None else None
            reason += f" (Attempt Status : {status.prt_attempt_status}{f' {name}' if name else ''})"
        reasons.append(reason)
    if status.prerequisites.get("IsUserAzureAD") is False:
        reasons.append("IsUserAzureAD : NO — the user did not sign in with a Microsoft Entra identity")
    return reasons


def _session_notes(status: DsregStatus) -> list[str]:
    reasons: list[str] = []
    prereq = status.prerequisites
    if prereq.get("SessionIsNotRemote") is False:
        reasons.append(
            "SessionIsNotRemote : NO — dsregcmd ran in a Remote Desktop session: Hello provisioning never "
            "launches over RDP, the user must sign in at the console"
        )
    if prereq.get("PolicyEnabled") is False:
        reasons.append("PolicyEnabled : NO — the Windows Hello for Business policy is not enabled")
    if (status.user_context or "").casefold() == "system":
        reasons.append(
            "User Context : SYSTEM — User State and SSO State describe the account that ran dsregcmd: make "
            "sure that was the signed-in user"
        )
    return reasons


def _cert_trust_reason(status: DsregStatus, *, has_container: bool) -> str | None:
    enrollment = status.cert_enrollment
    if enrollment is None or enrollment.casefold() not in _CERT_TRUST_ENROLLMENT:
        return None
    if has_container:
        return (
            f"CertEnrollment : {enrollment} — certificate trust: there is no direct path, remove the "
            "certificate policy (UseCertificateForOnPremAuth), enable cloud trust, delete the container with "
            "`certutil -deletehellocontainer` in the user's context, and the user provisions again"
        )
    return (
        f"CertEnrollment : {enrollment} — the certificate trust policy is in force: it takes precedence over "
        "cloud trust, so remove UseCertificateForOnPremAuth before the user provisions"
    )


def explain_dsregcmd(status: DsregStatus) -> Explanation:
    """The verdict for one ``dsregcmd /status`` capture (rules in the module docstring)."""
    facts: dict[str, object] = {
        "azure_ad_joined": status.azure_ad_joined,
        "domain_joined": status.domain_joined,
        "join_type": status.join_type.value if status.join_type else None,
        "device_id": status.device_id,
        "tenant_id": status.tenant_id,
        "tenant_name": status.tenant_name,
        "ngc_set": status.ngc_set,
        "ngc_key_id": status.ngc_key_id,
        "azure_ad_prt": status.azure_ad_prt,
        "on_prem_tgt": status.on_prem_tgt,
        "cloud_tgt": status.cloud_tgt,
        "kerb_top_level_names": list(status.kerb_top_level_names) if status.kerb_top_level_names else None,
        "prerequisites": dict(status.prerequisites),
        "unknown_fields": {title: dict(fields) for title, fields in status.unknown_fields.items()},
    }
    rows = tuple((key, _show(value)) for key, value in facts.items() if key != "unknown_fields")
    if status.unknown_fields:
        rows += (("unknown_fields", _show({t: _show(f) for t, f in status.unknown_fields.items()})),)
    verdict, reasons = _dsreg_verdict(status)
    return Explanation(facts=facts, verdict=verdict.value, reasons=tuple(reasons), rows=rows)


def _dsreg_verdict(status: DsregStatus) -> tuple[DsregVerdict, list[str]]:
    if status.is_empty:
        return DsregVerdict.UNKNOWN, [
            "no dsregcmd /status fields were found — is this the output of `dsregcmd /status`?"
        ]
    blockers = _device_blockers(status)
    if blockers:
        return DsregVerdict.NOT_ELIGIBLE, blockers

    identity = _identity_blockers(status)
    session = _session_notes(status)
    reasons: list[str] = []
    if status.on_prem_tgt and status.ngc_set is not False:
        reasons.append(
            "OnPremTgt : YES — the user holds a cloud Kerberos partial TGT for on-premises AD: cloud Kerberos "
            "trust is in use"
        )
        if status.ngc_set:
            reasons.append("NgcSet : YES — the user's Hello container signs in through cloud Kerberos trust")
        else:
            reasons.append("NgcSet absent — the User State section was not captured")
        cert = _cert_trust_reason(status, has_container=False)
        if cert:
            reasons.append(cert)
        reasons.append(_TGT_DISPLAY_BUG)
        return DsregVerdict.CLOUD_TRUST_ACTIVE, reasons + identity + session

    if status.ngc_set:
        key_id = f" ({status.ngc_key_id})" if status.ngc_key_id else ""
        reasons.append(
            f"NgcSet : YES — the user has a Hello container{key_id} and OnPremTgt is "
            f"{_yn(status.on_prem_tgt)}: it is not signing in through cloud Kerberos trust"
        )
        cert = _cert_trust_reason(status, has_container=True)
        if cert:
            reasons.append(cert)
        elif (status.cert_enrollment or "").casefold() == "none":
            reasons.append(
                "CertEnrollment : none — key trust: enable cloud trust, then the user signs out and signs in "
                "with Hello while a domain controller is reachable"
            )
        else:
            reasons.append(
                "CertEnrollment absent (the Ngc Prerequisite Check is often omitted once Hello is "
                "provisioned) — confirm key or certificate trust from policy (UseCertificateForOnPremAuth) "
                "before choosing the path"
            )
        if status.on_prem_tgt is False and status.cloud_tgt:
            reasons.append(
                "CloudTgt : YES with OnPremTgt : NO — normal after a password sign-in even under cloud trust: "
                "re-check after a Hello sign-in or unlock"
            )
        elif status.on_prem_tgt is None:
            reasons.append(
                "OnPremTgt absent — this build predates the cloud Kerberos fields of dsregcmd (KB5018410) or "
                "the SSO State was not captured: check with `klist cloud_debug`"
            )
        return DsregVerdict.KEY_OR_CERT_NEEDS_MIGRATION, reasons + identity + session

    if status.ngc_set is False:
        if identity:
            return DsregVerdict.NOT_ELIGIBLE, [
                "NgcSet : NO — the user has no Hello container",
                *identity,
                *session,
            ]
        reasons.append(
            "NgcSet : NO — the user who ran dsregcmd has no Hello container: nothing to migrate, the user "
            "provisions under the policy in force"
        )
        cert = _cert_trust_reason(status, has_container=False)
        if cert:
            reasons.append(cert)
        if status.prerequisites.get("AdfsRefreshToken") is False:
            reasons.append(
                "AdfsRefreshToken : NO — no AD FS refresh token, so certificate enrolment through the AD FS "
                "registration authority cannot proceed"
            )
        if status.pre_req_result:
            reasons.append(f"PreReqResult : {status.pre_req_result} — the provisioning prerequisite check result")
        return DsregVerdict.NO_HELLO_CONTAINER, reasons + session

    reasons.append(
        "NgcSet absent — the User State section was not captured, so whether the user has a Hello container "
        "is unknown: run `dsregcmd /status` as the signed-in user"
    )
    if status.on_prem_tgt is False:
        reasons.append(
            "OnPremTgt : NO — no cloud Kerberos partial TGT in this session (normal after a password sign-in)"
        )
    cert = _cert_trust_reason(status, has_container=False)
    if cert:
        reasons.append(cert)
    return DsregVerdict.UNKNOWN, reasons + identity + session


# --- klist -------------------------------------------------------------------------------------------------

_KLIST_FAILURES = {
    0xC000005F: (
        "the logon session that ran klist has no Kerberos ticket cache: this is what klist prints over "
        "WinRM/PSRP (a network logon). Run it in the user's session (a scheduled task as the interactive "
        "user), not over WinRM"
    ),
    0xC000005E: (
        "no domain controller (KDC) answered: the device has no DC line of sight (VPN?); the first Hello "
        "sign-in under cloud Kerberos trust on a hybrid joined device needs one"
    ),
    0x8009030E: (
        "the session has no credentials usable for this request: the user may be in Protected Users, or the "
        "realm has no Entra Kerberos server object"
    ),
    0xC00002FD: (
        "the KDC does not support the requested encryption type: typical of the Seamless SSO AZUREADSSOACC "
        "account, not a Windows Hello for Business cloud trust problem"
    ),
}
_KLIST_FAILURES[0x80090342] = _KLIST_FAILURES[0xC00002FD]  # SEC_E_KDC_UNKNOWN_ETYPE, the same condition


def _ticket_json(ticket: KlistTicket) -> dict[str, object]:
    return {
        "index": ticket.index,
        "client": ticket.client,
        "client_realm": ticket.client_realm,
        "server": ticket.server,
        "server_realm": ticket.server_realm,
        "encryption_type": ticket.encryption_type,
        "ticket_flags": f"0x{ticket.ticket_flags:x}" if ticket.ticket_flags is not None else None,
        "ticket_flag_names": list(ticket.ticket_flag_names),
        "start_time": ticket.start_time,
        "end_time": ticket.end_time,
        "renew_time": ticket.renew_time,
        "session_key_type": ticket.session_key_type,
        "cache_flags": f"0x{ticket.cache_flags:x}" if ticket.cache_flags is not None else None,
        "kdc_called": ticket.kdc_called,
        "is_cloud_tgt": ticket.is_cloud_tgt,
        "unknown_fields": dict(ticket.unknown_fields),
    }


def _cloud_debug_json(debug: KlistCloudDebug) -> dict[str, object]:
    return {
        "cloud_kerberos_enabled_by_policy": debug.cloud_kerberos_enabled_by_policy,
        "as_rep_callback_received": debug.as_rep_callback_received,
        "as_rep_callback_used": debug.as_rep_callback_used,
        "cloud_referral_tgt_present": debug.cloud_referral_tgt_present,
        "spn_oracle_configured": debug.spn_oracle_configured,
        "kdc_proxy_present": debug.kdc_proxy_present,
        "public_key_credential_present": debug.public_key_credential_present,
        "password_derived_keys_present": debug.password_derived_keys_present,
        "plaintext_password_present": debug.plaintext_password_present,
        "as_rep_credential_type": debug.as_rep_credential_type,
        "cloud_primary_tgt_available": debug.cloud_primary_tgt_available,
        "unknown_fields": dict(debug.unknown_fields),
    }


def explain_klist(result: KlistResult, cloud_debug: KlistCloudDebug | None = None) -> Explanation:
    """The verdict for a ``klist`` capture, with ``klist cloud_debug`` facts when the capture has them."""
    debug = cloud_debug if cloud_debug is not None and not cloud_debug.is_empty else None
    failure = result.failure or (debug.failure if debug else None)
    facts: dict[str, object] = {
        "logon_id": result.logon_id or (debug.logon_id if debug else None),
        "declared_ticket_count": result.declared_ticket_count,
        "tickets": [_ticket_json(ticket) for ticket in result.tickets],
        "retrieved": result.retrieved,
        "purged": result.purged,
        "has_cloud_tgt": result.has_cloud_tgt,
        "has_on_prem_tgt": result.has_on_prem_tgt,
        "api_errors": [
            {
                "api": error.api,
                "operation": error.operation,
                "substatus": error.text,
                "substatus_name": error.substatus.name if error.substatus else None,
            }
            for error in result.api_errors
        ],
        "failure": (
            {
                "code": failure.code.hex,
                "signed": failure.code.signed,
                "name": failure.code.name,
                "message": failure.message,
            }
            if failure
            else None
        ),
        "cloud_debug": _cloud_debug_json(debug) if debug else None,
        "unknown_lines": list(result.unknown_lines),
    }
    rows: list[tuple[str, str]] = [("logon_id", _show(facts["logon_id"]))]
    for ticket in result.tickets:
        rows.append(
            (
                f"ticket #{ticket.index}",
                f"{ticket.server} @ {ticket.server_realm}\nclient {ticket.client} @ {ticket.client_realm}\n"
                f"Kdc Called: {ticket.kdc_called}",
            )
        )
    rows.append(("has_cloud_tgt", _show(result.has_cloud_tgt)))
    for error in result.api_errors:
        name = f" {error.substatus.name}" if error.substatus and error.substatus.name else ""
        rows.append((f"{error.api} ({error.operation})", f"{error.text}{name}"))
    if failure:
        rows.append(("failure", f"{failure.code.hex} {failure.code.name or ''}\n{failure.message or ''}".strip()))
    if debug:
        rows.extend((key, _show(value)) for key, value in _cloud_debug_json(debug).items() if value != {})

    verdict, reasons = _klist_verdict(result, debug, failure)
    return Explanation(facts=facts, verdict=verdict.value, reasons=tuple(reasons), rows=tuple(rows))


def _klist_verdict(
    result: KlistResult, debug: KlistCloudDebug | None, failure: KlistFailure | None
) -> tuple[KlistVerdict, list[str]]:
    reasons: list[str] = []
    for error in result.api_errors:
        name = f" ({error.substatus.name})" if error.substatus and error.substatus.name else ""
        reasons.append(f"Error calling API {error.api} ({error.operation} substatus): {error.text}{name}")
    if failure is not None:
        code = failure.code
        meaning = _KLIST_FAILURES.get(code.value) or failure.message or "no message was printed"
        name = f" ({code.name})" if code.name else ""
        reasons.insert(0, f"klist failed with {code.hex}{name} — {meaning}")
        return KlistVerdict.KLIST_FAILED, reasons
    if result.api_errors:
        return KlistVerdict.KLIST_FAILED, reasons

    if result.has_cloud_tgt:
        tgt = result.cloud_tgt
        kdc = f" (Kdc Called: {tgt.kdc_called})" if tgt and tgt.kdc_called else ""
        reasons.append(
            "Server: krbtgt/KERBEROS.MICROSOFTONLINE.COM @ KERBEROS.MICROSOFTONLINE.COM — the Microsoft Entra "
            f"Kerberos cloud TGT is cached{kdc}"
        )
    if debug:
        if debug.cloud_primary_tgt_available:
            reasons.append(
                "Cloud Primary (Hybrid logon) TGT available: 1 — the session obtained a cloud Kerberos partial "
                "TGT for on-premises AD (cloud Kerberos trust); the cache is not expiry-aware"
            )
        elif debug.cloud_primary_tgt_available is False:
            reasons.append(
                "Cloud Primary (Hybrid logon) TGT available: 0 — no cloud Kerberos partial TGT in this session"
            )
        if debug.cloud_kerberos_enabled_by_policy is False:
            reasons.append(
                "Cloud Kerberos enabled by policy: 0 — this reflects CloudKerberosTicketRetrievalEnabled "
                "(FIDO2 / Azure Files), not the Hello cloud trust switch: 0 is not by itself a failure"
            )
    if result.has_cloud_tgt or (debug and debug.cloud_primary_tgt_available):
        return KlistVerdict.CLOUD_TGT_PRESENT, reasons
    if (
        result.tickets
        or result.declared_ticket_count is not None
        or (debug and debug.cloud_primary_tgt_available is False)
    ):
        if result.tickets or result.declared_ticket_count is not None:
            reasons.append(
                f"no krbtgt/KERBEROS.MICROSOFTONLINE.COM ticket among the {len(result.tickets)} "
                f"ticket{'s' if len(result.tickets) != 1 else ''} shown"
            )
        if result.has_on_prem_tgt:
            tgt = next(t for t in result.tickets if t.is_tgt)
            reasons.append(
                f"Server: {tgt.server} @ {tgt.server_realm} — an on-premises TGT issued by {tgt.kdc_called}: "
                "a domain controller was reachable when it was issued"
            )
        return KlistVerdict.CLOUD_TGT_ABSENT, reasons
    reasons.append("no tickets, cloud_debug fields or klist errors were found — is this klist output?")
    return KlistVerdict.UNKNOWN, reasons


# --- nltest ------------------------------------------------------------------------------------------------

_NLTEST_FAILURES = {
    1355: (
        "the DC locator found no domain controller for the domain: check DNS (the _ldap._tcp.dc._msdcs SRV "
        "records), the UDP/389 LDAP ping and routing or VPN"
    ),
    1311: "no logon server answered: the device has no line of sight to a domain controller",
    1919: "no AD site could be determined: the client's subnet is not mapped to a site, or no DC answered",
    1722: "the RPC server is unavailable: the DC or the target is unreachable over RPC",
}


def explain_nltest(result: NltestDsGetDc) -> Explanation:
    """The verdict for a ``nltest /dsgetdc:<domain>`` capture: DC line of sight yes or no, and why."""
    failure = result.failure
    line_of_sight = True if result.succeeded else (False if result.failures else None)
    facts: dict[str, object] = {
        "dc": result.dc,
        "address": result.address,
        "dom_guid": result.dom_guid,
        "dom_name": result.dom_name,
        "forest_name": result.forest_name,
        "dc_site_name": result.dc_site_name,
        "our_site_name": result.our_site_name,
        "flags": list(result.flags),
        "completed_successfully": result.completed_successfully,
        "failures": [
            {
                "operation": item.operation,
                "status": item.status.value,
                "hex": item.status.hex,
                "name": item.status.name,
                "message": item.status.message,
            }
            for item in result.failures
        ],
        "dc_line_of_sight": line_of_sight,
        "unknown_fields": dict(result.unknown_fields),
    }
    rows = tuple(
        (key, _show(value)) for key, value in facts.items() if key not in {"failures", "unknown_fields"}
    ) + tuple(
        (f"Getting {item.operation} failed", f"Status = {item.status.value} {item.status.hex} {item.status.name or ''}")
        for item in result.failures
    )
    reasons: list[str] = []
    if result.failures:
        for item in result.failures:
            meaning = _NLTEST_FAILURES.get(item.status.value, item.status.message or "the DC locator failed")
            name = f" {item.status.name}" if item.status.name else ""
            reasons.append(
                f"Getting {item.operation} failed: Status = {item.status.value} {item.status.hex}{name} — {meaning}"
            )
        if failure is not None and result.dc is None:
            reasons.append(
                "without DC line of sight the first cloud-trust Hello sign-in on a hybrid joined device falls "
                "back to key trust: connect the device to the corporate network or VPN first"
            )
            return Explanation(facts, NltestVerdict.DC_UNREACHABLE.value, tuple(reasons), rows)
    if result.dc is None:
        reasons.append("no `DC:` line or DC locator error was found — is this `nltest /dsgetdc:` output?")
        return Explanation(facts, NltestVerdict.UNKNOWN.value, tuple(reasons), rows)

    site = f" in site {result.dc_site_name}" if result.dc_site_name else ""
    address = f" ({result.address})" if result.address else ""
    reasons.insert(0, f"DC: \\\\{result.dc}{address} — the DC locator found a domain controller{site}")
    flags = {flag.upper() for flag in result.flags}
    if flags and "KDC" not in flags:
        reasons.append(
            "Flags lack KDC — this DC does not offer Kerberos: locate one with `nltest /dsgetdc:<domain> /kdc`"
        )
    if flags and "WRITABLE" not in flags:
        reasons.append(
            "Flags lack WRITABLE — a read-only DC: cloud Kerberos trust needs writable DCs in the site to "
            "exchange the partial TGT"
        )
    if result.dc_site_name and result.our_site_name and result.dc_site_name != result.our_site_name:
        reasons.append(
            f"Dc Site Name {result.dc_site_name} differs from Our Site Name {result.our_site_name} — the DC is "
            "outside the client's site"
        )
    return Explanation(facts, NltestVerdict.DC_REACHABLE.value, tuple(reasons), rows)
