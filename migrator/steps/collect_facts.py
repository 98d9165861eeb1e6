"""Collect every fact the probe needs in one pipeline (``collect_facts.ps1``), read-only and idempotent."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PureWindowsPath
from typing import Any, ClassVar

from migrator.errors import ProtocolError
from migrator.facts import (
    DcFacts,
    DeviceFacts,
    EntraKerberosFacts,
    EventFacts,
    JoinType,
    OsFacts,
    SessionFacts,
    TpmFacts,
    UserFacts,
    evaluate_policy,
    relevant_domains,
)
from migrator.parse import parse_dsregcmd, parse_nltest_dsgetdc, parse_provisioning_event, parse_quser
from migrator.parse.quser import QuserSession
from migrator.steps._base import StepInfo, as_dict, as_list, native_text, opt_int, opt_str

INFO = StepInfo(
    name="collect_facts",
    script="collect_facts",
    idempotent=True,
    point_of_no_return=False,
    summary="join state, OS, TPM, Hello policy (both sources), users and sessions, DC line of sight, events",
)


@dataclass(frozen=True)
class CollectFacts:
    """Read a device's facts; ``device`` is the inventory name the facts are filed under."""

    info: ClassVar[StepInfo] = INFO

    def parameters(self) -> dict[str, Any]:
        return {}

    def read(self, device: str, data: Mapping[str, Any]) -> DeviceFacts:
        return read_facts(device, data)


def _session_kind(name: str | None) -> str | None:
    if not name:
        return None
    folded = name.casefold()
    if folded == "console":
        return "console"
    if folded.startswith("rdp"):
        return "rdp"
    return "other"


def _join_type(azure: bool | None, domain: bool | None) -> JoinType:
    if azure is None or domain is None:
        return "unknown"
    if azure:
        return "hybrid" if domain else "entra"
    return "domain" if domain else "workgroup"


def _profile_name(path: str | None) -> str | None:
    if not path:
        return None
    leaf = PureWindowsPath(path).name
    return leaf or None


def _domain_sid(sid: str) -> str | None:
    """The domain (or machine) part of an account SID: S-1-5-21-a-b-c of S-1-5-21-a-b-c-RID."""
    parts = sid.split("-")
    return "-".join(parts[:-1]).casefold() if sid.upper().startswith("S-1-5-21-") and len(parts) == 8 else None


def _account_names(
    profiles: list[dict[str, Any]], last_logged_on: dict[str, Any], caller: dict[str, Any]
) -> dict[str, str]:
    """``DOMAIN\\user`` per profile SID (folded), from what the device says without asking a DC.

    A signed-in user's Volatile Environment names them; LogonUI names the last user who signed in (often the one
    who is not signed in now). A user with neither gets the NetBIOS domain that another account of the same
    domain SID was seen with (the connecting admin's included) and the profile folder's name (Windows names it
    after the account, with ``.DOMAIN`` added on a clash): ``fhaddad`` on a device where ``EMEA\\fhaddad`` signed
    in is ``EMEA\\fhaddad``, never a bare name that a domain-qualified one would not match."""
    names: dict[str, str] = {}
    domains: dict[str, str] = {}

    def learn(sid: str | None, qualified: str | None) -> None:
        if not sid or not qualified or "\\" not in qualified:
            return
        domain, _, user = qualified.partition("\\")
        if not domain or not user:
            return
        names.setdefault(sid.casefold(), qualified)
        if (prefix := _domain_sid(sid)) is not None:
            domains.setdefault(prefix, domain)

    for profile in profiles:
        sam, user_domain = opt_str(profile.get("user_name")), opt_str(profile.get("user_domain"))
        if sam and user_domain:
            learn(str(profile["sid"]), f"{user_domain}\\{sam}")
    learn(opt_str(last_logged_on.get("sid")), opt_str(last_logged_on.get("sam_user")))
    known_profiles = set(names)
    learn(opt_str(caller.get("sid")), opt_str(caller.get("name")))
    for profile in profiles:
        sid = str(profile["sid"])
        if sid.casefold() in known_profiles:
            continue
        folder = _profile_name(opt_str(profile.get("profile_path")))
        domain = domains.get(_domain_sid(sid) or "")
        if folder and domain:
            user = folder[: -len(domain) - 1] if folder.casefold().endswith("." + domain.casefold()) else folder
            names[sid.casefold()] = f"{domain}\\{user}"
    return names


def _match_session(
    sessions: list[QuserSession], ids: list[tuple[int, str | None]], sam: str | None, folder: str | None
) -> tuple[QuserSession | None, str | None]:
    """The quser row of a user: by the session ids of their Volatile Environment, else by name."""
    for number, name in ids:
        for session in sessions:
            if session.session_id == number:
                return session, name or session.session_name
    for candidate in (sam, folder.split(".", 1)[0] if folder else None):
        if not candidate:
            continue
        for session in sessions:
            if session.username.casefold() == candidate.casefold():
                return session, session.session_name
    return None, None


def read_facts(device: str, data: Mapping[str, Any]) -> DeviceFacts:
    """Turn ``collect_facts.ps1``'s JSON into :class:`DeviceFacts` (native text through migrator.parse)."""
    if data.get("schema") != 1:
        raise ProtocolError(device, "collect_facts answered with an unknown schema")
    problems = [f"{p.get('where')}: {p.get('message')}" for p in map(as_dict, as_list(data.get("problems")))]
    dsreg_text, dsreg_code = native_text(data.get("dsregcmd"))
    status = parse_dsregcmd(dsreg_text)
    computer = as_dict(data.get("computer_system"))
    azure = status.azure_ad_joined
    domain_joined = status.domain_joined
    if domain_joined is None and "part_of_domain" in computer:
        domain_joined = bool(computer["part_of_domain"])
    if status.is_empty:
        problems.append(f"dsregcmd /status gave nothing readable (exit code {dsreg_code})")
    domain = opt_str(computer.get("domain")) if domain_joined else None

    raw_os = as_dict(data.get("os"))
    os = OsFacts(
        caption=opt_str(raw_os.get("caption")),
        version=opt_str(raw_os.get("version")),
        build=opt_int(raw_os.get("build_number")) or opt_int(raw_os.get("current_build")),
        ubr=opt_int(raw_os.get("ubr")),
        display_version=opt_str(raw_os.get("display_version")),
        edition_id=opt_str(raw_os.get("edition_id")),
    )
    raw_tpm = as_dict(data.get("tpm"))
    tpm = TpmFacts(
        present=raw_tpm.get("present") if isinstance(raw_tpm.get("present"), bool) else None,
        ready=raw_tpm.get("ready") if isinstance(raw_tpm.get("ready"), bool) else None,
        error=opt_str(raw_tpm.get("error")),
    )

    caller = as_dict(data.get("caller"))
    caller_sid = opt_str(caller.get("sid"))
    profiles = [p for p in map(as_dict, as_list(data.get("profiles"))) if opt_str(p.get("sid"))]
    # The connecting admin has a profile too: it is not one of the device's users.
    profiles = [p for p in profiles if str(p["sid"]).casefold() != (caller_sid or "").casefold()]
    sids = [str(p["sid"]) for p in profiles]

    raw_policy = as_dict(data.get("policy"))
    mdm_entries = [
        (str(m.get("tenant_id")), str(m.get("scope")), as_dict(m.get("values")))
        for m in map(as_dict, as_list(raw_policy.get("mdm")))
        if m.get("tenant_id") and m.get("scope")
    ]
    gpo_users = {str(k): as_dict(v) for k, v in as_dict(raw_policy.get("gpo_users")).items()}
    policy = evaluate_policy(
        as_dict(raw_policy.get("gpo_computer")), gpo_users, mdm_entries, tenant_id=status.tenant_id, user_sids=sids
    )
    managed = {
        name: str(m.get("gpo") or "")
        for m in map(as_dict, as_list(raw_policy.get("gpo_managed")))
        if (name := opt_str(m.get("name")))
    }
    if managed:
        policy = policy.model_copy(update={"gpo_managed": managed})

    quser_text, _ = native_text(data.get("quser"))
    quser = parse_quser(quser_text)
    ngc = {str(s).casefold() for s in as_list(data.get("ngc_sids"))}
    names = _account_names(profiles, as_dict(data.get("last_logged_on")), caller)
    users: list[UserFacts] = []
    for profile in profiles:
        sid = str(profile["sid"])
        path = opt_str(profile.get("profile_path"))
        sam = opt_str(profile.get("user_name"))
        folder = _profile_name(path)
        name = names.get(sid.casefold()) or sam or folder
        ids = [
            (number, opt_str(s.get("session_name")))
            for s in map(as_dict, as_list(profile.get("sessions")))
            if (number := opt_int(s.get("id"))) is not None
        ]
        row, session_name = _match_session(list(quser.sessions), ids, sam, folder)
        session = None
        if row is not None:
            session = SessionFacts(
                id=row.session_id,
                kind=_session_kind(row.session_name or session_name),  # type: ignore[arg-type]
                state=row.state,
                name=row.session_name or session_name,
            )
        users.append(
            UserFacts(
                sid=sid,
                name=name,
                profile_path=path,
                has_profile=True,
                signed_in=row is not None,
                session=session,
                has_hello=sid.casefold() in ngc,
                policy=policy.user_effective.get(sid, policy.effective),
            )
        )

    dc = DcFacts(domain=domain)
    raw_nltest = data.get("nltest")
    if isinstance(raw_nltest, dict):
        text, code = native_text(raw_nltest)
        parsed = parse_nltest_dsgetdc(text)
        reachable = code == 0 and parsed.dc is not None
        error = None
        if parsed.failures:
            first = parsed.failures[0].status
            error = first.name or f"0x{first.value:x}"
        elif not reachable:
            error = f"nltest exit code {code}"
        dc = DcFacts(
            domain=opt_str(raw_nltest.get("domain")) or domain,
            checked=True,
            reachable=reachable,
            dc=parsed.dc,
            address=parsed.address,
            site=parsed.dc_site_name,
            keylist="KEYLIST" in {f.upper() for f in parsed.flags} if reachable else None,
            error=error,
            exit_code=code,
        )

    events: list[EventFacts] = []
    for raw in map(as_dict, as_list(data.get("events"))):
        event_id = opt_int(raw.get("id"))
        if event_id is None:
            continue
        parsed_event = parse_provisioning_event(str(raw.get("message") or ""))
        events.append(
            EventFacts(
                id=event_id,
                time=opt_str(raw.get("time")),
                level=opt_str(raw.get("level")),
                user_sid=opt_str(raw.get("user_sid")),
                launched=parsed_event.launched,
                cloud_trust_policy_enabled=parsed_event.cloud_trust_policy_enabled,
                has_cloud_tgt=parsed_event.has_cloud_tgt,
                cert_policy_enabled=parsed_event.cert_auth_policy_enabled,
                governed_by=parsed_event.governed_by,
            )
        )
    # Newest first (Get-WinEvent's order): the latest event that tested the cloud TGT is the hint.
    tested = [e.has_cloud_tgt for e in sorted(events, key=lambda e: e.time or "", reverse=True)]
    hint = next((t for t in tested if t is not None), None)

    join_type = _join_type(azure, domain_joined)
    facts = DeviceFacts(
        name=device,
        computer_name=opt_str(data.get("computer_name")),
        join_type=join_type,
        azure_ad_joined=azure,
        domain_joined=domain_joined,
        domain=domain,
        tenant_id=status.tenant_id,
        tenant_name=status.tenant_name,
        device_id=status.device_id,
        os=os,
        tpm=tpm,
        policy=policy,
        users=tuple(users),
        dc=dc,
        events=tuple(events),
        caller=opt_str(caller.get("name")),
        problems=tuple(problems),
    )
    return facts.model_copy(
        update={"entra_kerberos": EntraKerberosFacts(event_hint=hint, domains=tuple(relevant_domains(facts)))}
    )
