"""How a simulated Windows device behaves where the migration depends on it.

Theory of operation
-------------------
:class:`Lab` owns a :class:`~migrator.lab.model.Fleet`, a :class:`~migrator.lab.clock.SimClock` and a seeded
random generator, and implements the behaviour the primer (``whfb-cloud-kerberos-trust.md``) describes:

- **sign-in** (console or RDP, password or Hello): the Hello logon uses the trust the policy and the domain
  allow (cloud Kerberos trust needs the Entra Kerberos object in the user's domain and, on hybrid joined
  devices, a DC for the first PIN use, else Windows falls back); then at-logon tasks run; then, if the user has
  no container, the **provisioning decision** (events 358/360/362) and, when launched, a new container of the
  effective trust with a new key id;
- **container deletion** (``certutil -deletehellocontainer``): only in the user's own interactive context;
- **users**: a prompt (``msg``) makes a simulated person sign out and back in after a seeded delay, or never;
  users lock and unlock during the day, and an unlock with Hello refreshes their Kerberos material;
- **line of sight**: VPN-only devices gain and lose their DC over time.

Everything is driven by the clock, and every mutation of a device happens under that device's lock.
Counters on users and devices are the truth tests assert on ("deleted exactly once").
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from migrator.lab import policy as policy_mod
from migrator.lab.clock import SimClock
from migrator.lab.model import (
    Certificate,
    CommandRecord,
    Device,
    Domain,
    EventRecord,
    Fleet,
    HelloContainer,
    LogonMethod,
    ScheduledTask,
    Session,
    SessionKind,
    TrustType,
    User,
)
from migrator.lab.shell import (
    AccountDirectory,
    AppliedPolicy,
    GroupPolicySource,
    NativeResult,
    Principal,
    PrincipalKind,
)

if TYPE_CHECKING:
    from migrator.lab.shell import Executor

UDR_LOG = "Microsoft-Windows-User Device Registration/Admin"
UDR_PROVIDER = "Microsoft-Windows-User Device Registration"
SYSTEM_SID = "S-1-5-18"
MORE_DETAILS = "See https://go.microsoft.com/fwlink/?linkid=832647 for more details."


class LabError(Exception):
    """A request the lab cannot honour (unknown device or user): a caller mistake, not Windows behaviour."""


def new_guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _yes_no(flag: bool | None) -> str:
    return "Not Tested" if flag is None else ("Yes" if flag else "No")


@dataclass(frozen=True)
class Prerequisites:
    """The provisioning decision's inputs, as events 358/360 and dsregcmd's Ngc Prerequisite Check show them."""

    device_joined: bool
    user_aad: bool
    policy_enabled: bool
    post_logon_enabled: bool
    hardware_ok: bool
    not_remote: bool
    cert_policy: bool
    governed_by: str  # "enrollment authority", "mobile device management", "none"
    cloud_policy: bool
    cloud_tgt: bool | None  # None = Not Tested
    enrollment_ready: bool | None  # cert trust only
    effective: policy_mod.Effective

    @property
    def will_provision(self) -> bool:
        base = all(
            (
                self.device_joined,
                self.user_aad,
                self.policy_enabled,
                self.post_logon_enabled,
                self.hardware_ok,
                self.not_remote,
            )
        )
        if not base:
            return False
        if self.cert_policy and self.enrollment_ready is False:
            return False
        return self.cloud_tgt is not False

    def event_lines(self) -> list[str]:
        """The body of event 358/360 after its first line (newer builds' cloud-trust lines included)."""
        return [
            f"Device is AAD joined ( AADJ or DJ++ ): {_yes_no(self.device_joined)} ",
            f"User has logged on with AAD credentials: {_yes_no(self.user_aad)} ",
            f"Windows Hello for Business policy is enabled: {_yes_no(self.policy_enabled)} ",
            f"Windows Hello for Business post-logon provisioning is enabled: {_yes_no(self.post_logon_enabled)} ",
            f"Local computer meets Windows hello for business hardware requirements: {_yes_no(self.hardware_ok)} ",
            f"User is not connected to the machine via Remote Desktop: {_yes_no(self.not_remote)} ",
            f"User certificate for on premise auth policy is enabled: {_yes_no(self.cert_policy)} ",
            f"Machine is governed by {self.governed_by} policy. ",
            f"Cloud trust for on premise auth policy is enabled: {_yes_no(self.cloud_policy)} ",
            f"User account has Cloud TGT: {_yes_no(self.cloud_tgt)} ",
            MORE_DETAILS,
        ]


@dataclass
class SignInOutcome:
    """What one sign-in did (for tests and ``lab user``)."""

    session: Session
    method: LogonMethod
    hello_failed: bool = False
    hello_failure_reason: str = ""
    provisioned: TrustType | None = None
    provisioning_event: int | None = None  # 358, 360 or 362
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DeleteOutcome:
    """Result of ``certutil -deletehellocontainer`` in a given context."""

    deleted: bool
    hresult: int = 0
    reason: str = ""  # NTE_PERM, NTE_BAD_KEYSET
    key_id: str | None = None
    had_passkeys: bool = False


SCHED_S_TASK_RUNNING = 0x41301  # 267009: LastTaskResult while the task runs
ADMIN_SID = "S-1-5-21-3623811015-3361044348-30300820-1013"
# The PIN credential provider lists, per user SID, who has a Hello (NGC) credential on this device; admin
# scripts read it because the NGC folder itself is readable only by LocalService.
NGC_PROVIDER_KEY = (
    "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Authentication\\Credential Providers"
    "\\{D6886603-9D2F-4EB2-B667-1971041FA96B}"
)


VOLATILE_ENVIRONMENT = "Volatile Environment"


def write_volatile_environment(device: Device, user: User, domain: Domain | None) -> None:
    """HKU\\<SID>\\Volatile Environment: written at sign-in, gone with the hive at sign-out (admin scripts map a
    session to its user through it)."""
    key = f"HKU\\{user.sid}\\{VOLATILE_ENVIRONMENT}"
    profile = user.profile_path or f"C:\\Users\\{user.sam}"
    logon_server = f"\\\\{domain.dc_name.split('.')[0]}" if domain and device.dc_reachable else f"\\\\{device.name}"
    values = {
        "LOGONSERVER": logon_server,
        "USERDOMAIN": user.domain,
        "USERNAME": user.sam,
        "USERPROFILE": profile,
        "HOMEDRIVE": "C:",
        "HOMEPATH": profile[2:],
        "APPDATA": profile + "\\AppData\\Roaming",
        "LOCALAPPDATA": profile + "\\AppData\\Local",
    }
    if domain is not None:
        values["USERDNSDOMAIN"] = domain.dns_name.upper()
    for name, value in values.items():
        device.registry.set_value(key, name, value, "REG_SZ")


LOGON_UI_KEY = "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Authentication\\LogonUI"


def last_logged_on_values(user: User) -> dict[str, str]:
    """What LogonUI records of the last user who signed in (kept after they sign out)."""
    return {
        "LastLoggedOnUser": user.qualified_name,
        "LastLoggedOnSAMUser": user.qualified_name,
        "LastLoggedOnUserSID": user.sid,
        "LastLoggedOnDisplayName": user.display_name,
    }


def sync_ngc_registry(device: Device, user: User) -> None:
    """Keep the PIN credential provider's per-user key in step with the user's container."""
    key = f"{NGC_PROVIDER_KEY}\\{user.sid}"
    if user.container is None:
        device.registry.delete_key(key, recurse=True)
    else:
        device.registry.set_value(key, "LogonCredsAvailable", 1, "REG_DWORD")


# Well-known SIDs of an interactive user's token: Everyone, BUILTIN\Users, INTERACTIVE, Authenticated Users.
_TOKEN_BASE = ("S-1-1-0", "S-1-5-32-545", "S-1-5-4", "S-1-5-11")


def token_groups(user: User) -> tuple[str, ...]:
    """The group SIDs in a user's logon token: Domain Users for an AD account, and for a privileged one Domain
    Admins plus the Denied RODC Password Replication Group it is nested in (which AzureADKerberos's
    msDS-NeverRevealGroup names, so Entra Kerberos issues it no partial TGT)."""
    groups = list(_TOKEN_BASE)
    if user.sid.startswith("S-1-5-21-"):
        domain_sid = user.sid.rsplit("-", 1)[0]
        groups.append(f"{domain_sid}-513")
        if user.privileged:
            groups += [f"{domain_sid}-512", f"{domain_sid}-572"]
    return tuple(groups)


class Lab:
    """The behaviour of a whole simulated fleet over time."""

    def __init__(
        self,
        fleet: Fleet,
        clock: SimClock,
        seed: int | None = None,
        *,
        executor: Callable[[Lab], Executor] | None = None,
    ) -> None:
        self.fleet = fleet
        self.clock = clock
        self.rng = random.Random(fleet.seed if seed is None else seed)
        self._listeners: list[Callable[[str, Device], None]] = []
        self._simulation_started = False
        self._executor = executor(self) if executor is not None else None
        # Group Policy from the directory (the runtime wires the lab's DCs in); None: the domain's fixed GPO.
        self.group_policy: GroupPolicySource | None = None
        # The accounts' groups from the directory (wired by the runtime): tokens and who Entra Kerberos refuses.
        self.accounts: AccountDirectory | None = None
        self.gpo_background_refresh = False  # every 90 + 0-30 virtual minutes, as Windows (LabRuntime turns it on)
        self.applied_policy: dict[str, AppliedPolicy] = {}  # device name -> what its last refresh applied
        self._gpo_applied_names: dict[str, dict[str, set[str]]] = {}  # device -> registry key -> names set by GPO

    # ---- lookups ---------------------------------------------------------------------------------------

    def device(self, name: str) -> Device:
        device = self.fleet.device(name)
        if device is None:
            raise LabError(f"no device named {name!r} in the lab")
        return device

    def user(self, device: Device, name: str) -> User:
        user = device.user(name)
        if user is None:
            raise LabError(f"device {device.name} has no user {name!r}")
        return user

    def domain_of(self, device: Device) -> Domain | None:
        return self.fleet.domain(device.domain)

    def user_domain(self, user: User) -> Domain | None:
        """The AD domain of a user (by NetBIOS name); Entra-only accounts (AzureAD\\...) have none."""
        for domain in self.fleet.domains:
            if domain.netbios.casefold() == user.domain.casefold():
                return domain
        return None

    def policy(self, device: Device, user: User | None = None) -> policy_mod.PolicyView:
        tenant = self.fleet.tenant.tenant_id if device.mdm_enrolled else None
        return policy_mod.evaluate(device.registry, tenant, user.sid if user else None)

    # ---- principals ------------------------------------------------------------------------------------

    def admin_principal(self, device: Device, account: str | None = None) -> Principal:
        name = (account or self.fleet.admin.qualified_name).lower()
        return Principal(PrincipalKind.ADMIN, name, ADMIN_SID)

    @staticmethod
    def system_principal() -> Principal:
        return Principal(PrincipalKind.SYSTEM, "nt authority\\system", SYSTEM_SID)

    def user_principal(self, device: Device, user: User) -> Principal:
        session = device.session_of(user)
        groups = self.accounts.token_groups(user.sid) if self.accounts is not None else None
        return Principal(
            PrincipalKind.USER,
            user.qualified_name.lower(),
            user.sid,
            session.session_id if session else None,
            token_groups(user) if groups is None else (*_TOKEN_BASE, *groups),
        )

    def is_privileged(self, user: User) -> bool:
        """Whether Entra Kerberos refuses the user a partial TGT: from the directory when it knows (a group
        change there counts at the next sign-in), else the fleet's flag."""
        known = self.accounts.never_revealed(user.sid) if self.accounts is not None else None
        return user.privileged if known is None else known

    # ---- the executor (scripts, native commands) --------------------------------------------------------

    @property
    def executor(self) -> Executor:
        """The device executor (PowerShell + native commands) the lab was built with: the one wiring of them
        is :func:`migrator.lab.runtime.new_lab`."""
        if self._executor is None:
            raise LabError("this lab was built without an executor (build it with migrator.lab.runtime.new_lab)")
        return self._executor

    def run_command_line(self, device: Device, principal: Principal, command_line: str) -> NativeResult:
        return self.executor.run_command_line(device.name, principal, command_line)

    # ---- bookkeeping -----------------------------------------------------------------------------------

    def on_change(self, listener: Callable[[str, Device], None]) -> None:
        """Be told of notable changes (``what``, device): used by ``lab up`` status and tests."""
        self._listeners.append(listener)

    def _notify(self, what: str, device: Device) -> None:
        for listener in list(self._listeners):
            listener(what, device)

    def record_command(
        self, device: Device, principal: Principal, kind: Literal["native", "powershell", "task"], command: str
    ) -> None:
        with device.lock:
            device.counters.commands.append(
                CommandRecord(time=self.clock.now(), principal=principal.name, kind=kind, command=command)
            )

    def log_event(
        self,
        device: Device,
        event_id: int,
        message: str,
        level: Literal["Information", "Warning", "Error"] = "Information",
        user_sid: str | None = None,
    ) -> EventRecord:
        with device.lock:
            record = EventRecord(
                log_name=UDR_LOG,
                provider=UDR_PROVIDER,
                event_id=event_id,
                level=level,
                time_created=self.clock.now(),
                message=message,
                record_id=device.next_event_record,
                user_sid=user_sid,
            )
            device.next_event_record += 1
            device.events.append(record)
            return record

    @contextmanager
    def _locked(self, device: Device) -> Iterator[None]:
        with device.lock:
            yield

    # ---- line of sight ---------------------------------------------------------------------------------

    def set_dc_reachable(self, device: Device, reachable: bool) -> None:
        with device.lock:
            device.dc_reachable = reachable
        self._notify("dc", device)

    def dc_available(self, device: Device) -> bool:
        """A DC of the device's domain answers now (domain-joined devices; Entra joined: the user's domain)."""
        return device.dc_reachable and (device.domain_joined or device.join_type == "entra")

    # ---- provisioning decision ---------------------------------------------------------------------------

    def prerequisites(self, device: Device, user: User, session_kind: SessionKind = "console") -> Prerequisites:
        view = self.policy(device, user)
        effective = view.effective
        cloud_policy = view.cloud_trust and not view.cert_trust
        # Builds older than the cloud Kerberos trust minimum do not know UseCloudTrustForOnPremAuth: they
        # provision key trust (MS docs prerequisites; windows-facts §9.4).
        if effective == "cloud" and not device.os.supports_cloud_trust:
            effective = "key"
            cloud_policy = False
        cloud_tgt: bool | None = None
        if cloud_policy and device.join_type == "hybrid":
            domain = self.user_domain(user)
            cloud_tgt = bool(domain and domain.entra_kerberos and not self.is_privileged(user) and user.has_prt)
        enrollment_ready: bool | None = None
        governed_by = "none"
        if view.cert_trust:
            governed_by = "mobile device management" if view.source == "mdm" else "enrollment authority"
            domain = self.user_domain(user)
            enrollment_ready = bool(domain and domain.adfs_ra_ready)
        return Prerequisites(
            device_joined=device.azure_ad_joined,
            user_aad=device.azure_ad_joined and user.has_prt,
            policy_enabled=view.enabled,
            post_logon_enabled=view.post_logon_enabled,
            hardware_ok=(device.tpm.present and device.tpm.ready) or not view.require_security_device,
            not_remote=session_kind == "console",
            cert_policy=view.cert_trust,
            governed_by=governed_by,
            cloud_policy=cloud_policy,
            cloud_tgt=cloud_tgt,
            enrollment_ready=enrollment_ready,
            effective=effective,
        )

    def _provision(self, device: Device, user: User, session: Session, outcome: SignInOutcome) -> None:
        """Post-logon provisioning (358 launched → new container; 360/362 not launched)."""
        prereq = self.prerequisites(device, user, session.kind)
        if not prereq.will_provision:
            event_id = 362 if prereq.cert_policy and prereq.enrollment_ready is False else 360
            lines = ["Windows Hello for Business provisioning will not be launched. ", *prereq.event_lines()]
            if event_id == 362:
                lines = [
                    "Windows Hello for Business provisioning will not be launched. ",
                    *prereq.event_lines()[:7],
                    "Enterprise user logon certificate enrollment endpoint is ready: No ",
                    "Enterprise user logon certificate template is : Not Tested ",
                    "User has successfully authenticated to the enterprise STS: Not Tested ",
                    "Certificate enrollment method: enrollment authority ",
                    MORE_DETAILS,
                ]
            self.log_event(device, event_id, "\n".join(lines), "Warning", user.sid)
            outcome.provisioning_event = event_id
            return
        lines = ["Windows Hello for Business provisioning will be launched. ", *prereq.event_lines()]
        self.log_event(device, 358, "\n".join(lines), "Information", user.sid)
        if prereq.effective == "none":  # pragma: no cover - will_provision implies an enabled policy
            return
        trust: TrustType = prereq.effective
        now = self.clock.now()
        key_id = "{" + new_guid(self.rng).upper() + "}"  # as dsregcmd prints NgcKeyId
        user.container = HelloContainer(trust=trust, key_id=key_id, created=now)
        sync_ngc_registry(device, user)
        user.counters.provisionings += 1
        self.log_event(
            device,
            300,
            "The Microsoft Passport key was successfully registered with Azure AD. \n"
            f"Key ID: {key_id} \nUPN: {user.upn} \nAttestation: ATT_SOFT \n"
            f"Client request ID: {new_guid(self.rng)} \nServer request ID: {new_guid(self.rng)} \n"
            "Server response: ",
            "Information",
            user.sid,
        )
        if trust == "cert":
            thumbprint = uuid.UUID(int=self.rng.getrandbits(128)).hex.upper() + "ABCDEF01"
            user.certificates.append(
                Certificate(
                    thumbprint=thumbprint[:40],
                    subject=f"CN={user.display_name}",
                    issuer=f"CN={(self.user_domain(user) or self.fleet.domains[0]).netbios}-CA",
                    template="WHFBAuthentication",
                    not_before=now,
                    not_after=now + timedelta(days=365),
                    hello_key_id=key_id,
                )
            )
            self.log_event(
                device,
                355,
                "Successfully enrolled for a logon certificate using a Registration Authority. \n"
                f"Upn: {user.upn} \nTenantId: {self.fleet.tenant.tenant_id} \n"
                "Authority: https://sts.contoso.com/adfs \nResource: urn:ms-drs:sts.contoso.com \nExitCode: 0",
                "Information",
                user.sid,
            )
        outcome.provisioned = trust
        outcome.provisioning_event = 358
        # Users lock and unlock during the day: the first Hello unlock brings the new trust's tickets
        # (MS docs: cloud Kerberos trust TGT is obtained at "sign-in or unlock").
        self.clock.call_later(self.rng.uniform(300, 3600), lambda: self._daily_unlock(device.name, user.sid))
        self._notify("provisioned", device)

    # ---- Hello logon ------------------------------------------------------------------------------------

    def _hello_logon(self, device: Device, user: User, session: Session, outcome: SignInOutcome) -> bool:
        """Authenticate with the container; set the session's tickets. False = fell back to password."""
        container = user.container
        if container is None:
            return False
        view = self.policy(device, user)
        domain = self.user_domain(user)
        dc = self.dc_available(device)
        cloud_capable = (
            view.effective == "cloud"
            and device.os.supports_cloud_trust
            and device.join_type in ("hybrid", "entra")
            and container.trust in ("key", "cloud")
            and domain is not None
            and domain.entra_kerberos
            and not self.is_privileged(user)
            and user.has_prt
        )
        # MS docs: the first sign-in with a new credential on a hybrid joined device needs line of sight to a
        # DC. A key-trust container falls back silently (below); a never-used one fails (0xC000005E).
        if device.join_type == "hybrid" and not dc and not container.used_with_dc and container.trust != "key":
            outcome.hello_failed = True
            outcome.hello_failure_reason = (
                "Something went wrong and your PIN isn't available (status: 0xC000005E, "
                "STATUS_NO_LOGON_SERVERS): the first PIN sign-in needs a domain controller"
            )
            user.counters.hello_sign_in_failures += 1
            return False
        if cloud_capable:
            session.partial_tgt = True
            session.cloud_tgt = True
            if device.join_type == "hybrid":
                if dc:
                    session.on_prem_tgt = True  # the DC exchanged the partial TGT for a full TGT
                    container.used_with_dc = True
                    container.trust = "cloud"  # key trust users move by signing in (no deletion needed)
                elif container.trust == "key":
                    # Without a DC the cloud trust logon fails and Windows silently uses key trust cached
                    # logon (msendpointmgr part 3): no partial TGT, still key trust.
                    session.partial_tgt = session.cloud_tgt = False
                    outcome.notes.append("no DC line of sight: key trust cached logon, still key trust")
            else:
                container.trust = "cloud"
                container.used_with_dc = container.used_with_dc or dc
        else:
            session.on_prem_tgt = dc and device.domain_joined
            if dc and device.domain_joined:
                container.used_with_dc = True
        session.logon_method = "hello"
        user.counters.hello_sign_ins += 1
        return True

    # ---- users -----------------------------------------------------------------------------------------

    def sign_in(
        self,
        device: Device,
        user: User,
        kind: SessionKind = "console",
        method: LogonMethod | None = None,
    ) -> SignInOutcome:
        """A user signs in (or reconnects a disconnected session)."""
        with device.lock:
            existing = device.session_of(user)
            if existing is not None:
                existing.state = "Active"
                existing.locked = False
                existing.kind = kind if existing.kind != kind else existing.kind
                return SignInOutcome(existing, existing.logon_method)
            now = self.clock.now()
            session = Session(
                user_sid=user.sid,
                session_id=device.next_session_id,
                kind=kind,
                logon_time=now,
                logon_id=f"0x{self.rng.randrange(0x100000, 0xFFFFFF):x}",
            )
            device.next_session_id += 1
            outcome = SignInOutcome(session, "password")
            wants_hello = method != "password" and user.container is not None and kind == "console"
            if not (wants_hello and self._hello_logon(device, user, session, outcome)):
                session.logon_method = "password"
                session.on_prem_tgt = self.dc_available(device) and device.domain_joined
            outcome.method = session.logon_method
            session.prt = device.azure_ad_joined and user.has_prt
            session.prt_update_time = now if session.prt else None
            device.sessions.append(session)
            write_volatile_environment(device, user, self.user_domain(user))
            for name, value in last_logged_on_values(user).items():
                device.registry.set_value(LOGON_UI_KEY, name, value, "REG_SZ")
            user.counters.sign_ins += 1
            user.last_sign_in = now
        self._notify("sign-in", device)
        self._run_logon_tasks(device, user)
        with device.lock:
            if user.container is None and device.session_of(user) is session:
                self._provision(device, user, session, outcome)
        return outcome

    def sign_out(self, device: Device, user: User) -> bool:
        with device.lock:
            session = device.session_of(user)
            if session is None:
                return False
            device.sessions.remove(session)
            device.registry.delete_key(f"HKU\\{user.sid}\\{VOLATILE_ENVIRONMENT}", recurse=True)
            user.counters.sign_outs += 1
        self._notify("sign-out", device)
        return True

    def lock(self, device: Device, user: User) -> bool:
        with device.lock:
            session = device.session_of(user)
            if session is None:
                return False
            session.locked = True
            return True

    def unlock(self, device: Device, user: User, method: LogonMethod | None = None) -> bool:
        """Unlock; with Hello it refreshes the Kerberos material as a sign-in does (MS docs: "sign-in or unlock")."""
        with device.lock:
            session = device.session_of(user)
            if session is None:
                return False
            session.locked = False
            session.state = "Active"
            if method != "password" and user.container is not None and session.kind == "console":
                probe = SignInOutcome(session, "hello")
                if self._hello_logon(device, user, session, probe):
                    session.logon_method = "hello"
            return True

    def _daily_unlock(self, device_name: str, user_sid: str) -> None:
        device = self.fleet.device(device_name)
        if device is None:
            return
        user = device.user(user_sid)
        if user is None or device.session_of(user) is None:
            return
        self.lock(device, user)
        self.unlock(device, user)
        self._notify("unlock", device)

    def prompt(self, device: Device, session_id: int | None, text: str) -> list[User]:
        """``msg``: show text in one session (or all, with None); the people there react per their behaviour."""
        reached: list[User] = []
        with device.lock:
            for session in list(device.sessions):
                if session_id is not None and session.session_id != session_id:
                    continue
                user = device.user(session.user_sid)
                if user is None:
                    continue
                session.messages.append(text)
                user.counters.prompts_received += 1
                reached.append(user)
        for user in reached:
            self._schedule_compliance(device, user)
        return reached

    def _schedule_compliance(self, device: Device, user: User) -> None:
        behaviour = user.behaviour
        if behaviour.compliance == "never":
            return
        factor = self.rng.uniform(0.5, 1.5) if behaviour.compliance == "prompt" else self.rng.uniform(5, 20)
        if behaviour.compliance == "away":
            factor = self.rng.uniform(20, 50)
        delay = behaviour.delay_seconds * factor
        name, sid = device.name, user.sid

        def comply() -> None:
            dev = self.fleet.device(name)
            person = dev.user(sid) if dev else None
            if dev is None or person is None or dev.session_of(person) is None:
                return
            self.sign_out(dev, person)
            self.sign_in(dev, person, "rdp" if person.behaviour.prefers_rdp else "console")

        self.clock.call_later(delay, comply)

    def logoff(self, device: Device, session_id: int) -> bool:
        """``logoff <id>``: end a session; the person signs back in after a while (work lost, not the will)."""
        with device.lock:
            session = next((s for s in device.sessions if s.session_id == session_id), None)
            user = device.user(session.user_sid) if session else None
        if session is None or user is None:
            return False
        self.sign_out(device, user)
        if user.behaviour.compliance != "never":
            self._sign_in_later(device, user, user.behaviour.delay_seconds * self.rng.uniform(0.2, 1.0))
        return True

    def _sign_in_later(self, device: Device, user: User, delay: float) -> None:
        name, sid = device.name, user.sid

        def back() -> None:
            dev = self.fleet.device(name)
            person = dev.user(sid) if dev else None
            if dev is not None and person is not None and dev.session_of(person) is None:
                self.sign_in(dev, person, "rdp" if person.behaviour.prefers_rdp else "console")

        self.clock.call_later(delay, back)

    def reboot(self, device: Device, delay_seconds: float = 0.0) -> None:
        """``shutdown /r``: every session ends; users who were signed in come back after it restarts."""

        def restart() -> None:
            with device.lock:
                users = [u for u in (device.user(s.user_sid) for s in device.sessions) if u is not None]
                device.sessions.clear()
                for user in users:
                    device.registry.delete_key(f"HKU\\{user.sid}\\{VOLATILE_ENVIRONMENT}", recurse=True)
                device.counters.reboots += 1
                device.os.last_boot = self.clock.now()
            if self.group_policy is not None:
                self.gpupdate(device)  # computer policy is applied at boot (foreground processing)
            self._notify("reboot", device)
            for user in users:
                if user.behaviour.compliance != "never":
                    self._sign_in_later(device, user, 120 + user.behaviour.delay_seconds * self.rng.uniform(0.2, 1))

        if delay_seconds > 0:
            self.clock.call_later(delay_seconds, restart)
        else:
            restart()

    # ---- containers -----------------------------------------------------------------------------------

    def delete_hello_container(self, device: Device, principal: Principal) -> DeleteOutcome:
        """``certutil -deletehellocontainer`` as ``principal``: acts on the caller's own container only.

        A network logon (WinRM) or SYSTEM has no access to a user's NGC container: Windows answers NTE_PERM
        (0x80090010, windows-facts §5)."""
        if principal.kind is not PrincipalKind.USER or principal.session_id is None:
            return DeleteOutcome(False, 0x80090010, "NTE_PERM")
        with device.lock:
            user = device.user(principal.sid)
            if user is None or user.container is None:
                return DeleteOutcome(False, 0x80090016, "NTE_BAD_KEYSET")
            container = user.container
            user.container = None
            sync_ngc_registry(device, user)
            # The certificates enrolled with the container's key stay in Cert:\CurrentUser\My: deleting the NGC
            # container deletes keys, not the certificate store's entries (they list "Missing stored keyset").
            user.counters.container_deletions += 1
        domain = self.user_domain(user)
        self.log_event(
            device,
            312,
            "The existing NGC container was successfully deleted. \n"
            f"User SID: {user.sid} \nIDP domain: login.windows.net \n"
            f"Tenant domain: {domain.dns_name if domain else self.fleet.tenant.default_domain}",
            "Information",
            user.sid,
        )
        self._notify("container-deleted", device)
        return DeleteOutcome(True, 0, "", container.key_id, container.has_passkeys)

    # ---- scheduled tasks -------------------------------------------------------------------------------

    def task_principal(self, device: Device, task: ScheduledTask) -> Principal | None:
        """Who a task runs as now, or None when it cannot run (Interactive task, user not signed in)."""
        if task.user_id.upper() in ("SYSTEM", "NT AUTHORITY\\SYSTEM", SYSTEM_SID):
            return self.system_principal()
        user = device.user(task.user_id)
        if user is None:
            return None
        session = device.session_of(user)
        if task.logon_type in ("Interactive", "InteractiveOrPassword") and session is None:
            return None  # "Interactive only": runs only in the user's existing session
        return self.user_principal(device, user)

    def run_task(self, device: Device, task: ScheduledTask) -> bool:
        """Run a task's actions now as its principal; False when it could not start."""
        principal = self.task_principal(device, task)
        if principal is None:
            return False
        with device.lock:
            task.state = "Running"
            task.last_task_result = SCHED_S_TASK_RUNNING
            task.last_run_time = self.clock.now()
        result = 0
        for action in task.actions:
            program = f'"{action.execute}"' if " " in action.execute else action.execute
            line = f"{program} {action.arguments}".strip()
            self.record_command(device, principal, "task", line)
            result = self.run_command_line(device, principal, line).exit_code
        with device.lock:
            task.last_task_result = result
            task.state = "Ready" if task.state == "Running" else task.state
            if principal.kind is PrincipalKind.USER:
                user = device.user(principal.sid)
                if user is not None:
                    user.counters.tasks_run += 1
        return True

    def start_task(self, device: Device, task: ScheduledTask, delay_seconds: float = 1.0) -> None:
        """Start-ScheduledTask: the Task Scheduler starts it asynchronously, about a second later."""
        if task.state == "Disabled":
            return
        if self.task_principal(device, task) is None:
            return  # Interactive task for a user with no session: nothing happens, result stays 0x41303
        with device.lock:
            # Windows reports the task Running as soon as Start-ScheduledTask returns (its process is being
            # launched), with LastTaskResult 0x41301 SCHED_S_TASK_RUNNING until it ends; then Ready and the
            # action's exit code. An admin's "wait while Running" loop depends on it.
            task.state = "Running"
            task.last_task_result = SCHED_S_TASK_RUNNING
            task.last_run_time = self.clock.now()
        name, path = device.name, task.path + task.name

        def start() -> None:
            dev = self.fleet.device(name)
            if dev is None:
                return
            current = next((t for t in dev.tasks if (t.path + t.name).casefold() == path.casefold()), None)
            if current is None:
                return
            if not self.run_task(dev, current):
                with dev.lock:
                    current.state = "Ready"

        self.clock.call_later(delay_seconds, start)

    def _run_logon_tasks(self, device: Device, user: User) -> None:
        with device.lock:
            due = [
                t
                for t in device.tasks
                if t.state != "Disabled"
                and any(
                    trig.kind == "AtLogOn" and (trig.user_id is None or device.user(trig.user_id) is user)
                    for trig in t.triggers
                )
            ]
        for task in due:
            self.run_task(device, task)

    # ---- policy refresh ----------------------------------------------------------------------------------

    def gpupdate(self, device: Device, *, computer: bool = True, users: bool = True) -> bool:
        """Apply Group Policy to the computer policy key and, from the directory, to its users' (``gpupdate
        /target:computer`` or ``/target:user`` applies one side only); needs a DC (False otherwise). From the
        directory when one is wired in (:meth:`_apply_directory_policy`), else the domain's fixed WHfB GPO."""
        domain = self.domain_of(device)
        with device.lock:
            device.counters.gpupdates += 1
            if not device.domain_joined or domain is None:
                return True  # nothing to apply: local policy only, completes successfully
            if not device.dc_reachable:
                return False
            applied = (
                self.group_policy.policy_for(device.name, domain.dns_name, tuple(u.sid for u in device.users))
                if self.group_policy is not None
                else None
            )
            if applied is not None:
                self._apply_directory_policy(device, applied, computer=computer, users=users)
            elif computer and domain.gpo_passport_policy is not None:
                key = policy_mod.GPO_KEY
                for name in [v.name for v in device.registry.values(key)]:
                    if name not in domain.gpo_passport_policy:
                        device.registry.delete_value(key, name)
                for name, value in domain.gpo_passport_policy.items():
                    device.registry.set_value(key, name, value, "REG_DWORD")
        self._notify("gpupdate", device)
        return True

    def _apply_directory_policy(
        self, device: Device, applied: AppliedPolicy, *, computer: bool = True, users: bool = True
    ) -> None:
        """Write the union of the GPOs that apply, as the registry client-side extension does: a key some GPO
        sets holds exactly the GPOs' values (a local write to it is overwritten, a value no GPO sets removed);
        a key no GPO sets any more loses the values GPO had put there; a key GPO never managed is left alone."""
        history = self._gpo_applied_names.setdefault(device.name, {})
        targets: dict[str, dict[str, int]] = {policy_mod.GPO_KEY: dict(applied.computer)} if computer else {}
        for user in device.users if users else ():
            targets[policy_mod.gpo_user_key(user.sid)] = dict(applied.users.get(user.sid, {}))
        for key, values in targets.items():
            if values:
                for name in [v.name for v in device.registry.values(key)]:
                    if name not in values:
                        device.registry.delete_value(key, name)
                for name, value in values.items():
                    device.registry.set_value(key, name, value, "REG_DWORD")
                history[key] = set(values)
            else:
                for name in history.pop(key, set()):
                    device.registry.delete_value(key, name)
        self.applied_policy[device.name] = applied

    def remember_group_policy(self, device: Device) -> None:
        """Record, without writing, what Group Policy has already put on ``device``: a fleet starts with its
        policy applied, so a GPO that later stops applying removes what it had set."""
        domain = self.domain_of(device)
        if self.group_policy is None or domain is None or not device.domain_joined:
            return
        applied = self.group_policy.policy_for(device.name, domain.dns_name, tuple(u.sid for u in device.users))
        if applied is None:
            return
        history = self._gpo_applied_names.setdefault(device.name, {})
        if applied.computer:
            history[policy_mod.GPO_KEY] = set(applied.computer)
        for sid, values in applied.users.items():
            history[policy_mod.gpo_user_key(sid)] = set(values)
        self.applied_policy[device.name] = applied

    def _schedule_gpo_refresh(self, device_name: str) -> None:
        """Background refresh of computer policy: every 90 minutes plus a random 0-30 (MS docs, "Group Policy
        background refresh"); a refresh without a DC simply fails and waits for the next one."""

        def refresh() -> None:
            device = self.fleet.device(device_name)
            if device is None:
                return
            self.gpupdate(device)
            self._schedule_gpo_refresh(device_name)

        self.clock.call_later(90 * 60 + self.rng.uniform(0, 30 * 60), refresh)

    # ---- the passage of time ----------------------------------------------------------------------------

    def start_simulation(self) -> None:
        """Schedule the background life of the fleet: VPN flaps, away users coming back. Idempotent."""
        if self._simulation_started:
            return
        self._simulation_started = True
        now = self.clock.now()
        for device in self.fleet.devices:
            if device.vpn_only:
                self._schedule_vpn(device.name)
            if self.gpo_background_refresh and device.domain_joined:
                self._schedule_gpo_refresh(device.name)
            for user in device.users:
                away = user.behaviour.away_until
                if user.behaviour.compliance == "away" and away is not None and away > now:
                    self._sign_in_later(device, user, (away - now).total_seconds())
                elif user.behaviour.compliance in ("prompt", "slow") and device.session_of(user) is None:
                    # People who are signed out now come to their PC later in the working day (slow ones later).
                    prompt = user.behaviour.compliance == "prompt"
                    hours = self.rng.uniform(0.5, 12) if prompt else self.rng.uniform(12, 72)
                    self._sign_in_later(device, user, hours * 3600)

    def _schedule_vpn(self, device_name: str) -> None:
        def flip() -> None:
            device = self.fleet.device(device_name)
            if device is None:
                return
            self.set_dc_reachable(device, not device.dc_reachable)
            hours = self.rng.uniform(1, 6) if device.dc_reachable else self.rng.uniform(2, 16)
            self.clock.call_later(hours * 3600, flip)

        self.clock.call_later(self.rng.uniform(0.5, 8) * 3600, flip)

    def now(self) -> datetime:
        return self.clock.now()
