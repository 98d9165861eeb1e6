"""Typed facts about one device, as the probe and the steps read them, and the migration path they imply.

Theory of operation
-------------------
Scripts return raw values (registry data, native tools' text); the steps turn them into these frozen pydantic
models, parsing native text with :mod:`migrator.parse`. Decisions are made here, in Python, where they are
tested, never on the device:

- **effective Hello policy** (:func:`evaluate_policy`), with the documented precedence (MS docs "Policy
  conflicts from multiple policy sources", "cloud Kerberos trust" deployment; windows-facts §2): Group Policy
  wins over MDM when it configures Hello at all; a user-scope value overrides the computer's except
  ``UseCloudTrustForOnPremAuth`` (computer only); ``UseCertificateForOnPremAuth`` wins over cloud trust;
  enabled with neither trust policy = key trust;
- **cloud Kerberos trust support** of a build (:func:`supports_cloud_trust`): 19044.1566+, 22000.527+, 22621+;
- **the path** (:func:`path`): ``key``, ``cert``, ``cloud`` (already there) or ``ineligible``, with reasons.

The policy precedence is written twice on purpose: here, as the product reads the values a device reports, and
in :mod:`migrator.lab.policy`, as the lab's Windows applies them. Each is the other's oracle
(``tests/test_policy_oracle.py`` checks that they agree on random values in every source), so do not merge them
or make one call the other: a change to the rules goes into both, each from the reference, and the oracle test
says whether they still agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

JoinType = Literal["hybrid", "entra", "domain", "workgroup", "unknown"]
Effective = Literal["cloud", "cert", "key", "none"]
PolicySource = Literal["gpo", "mdm", "none"]
Path = Literal["key", "cert", "cloud", "ineligible"]

GPO_ENABLED = "Enabled"
MDM_ENABLED = "UsePassportForWork"
CERT_TRUST = "UseCertificateForOnPremAuth"
CLOUD_TRUST = "UseCloudTrustForOnPremAuth"
REQUIRE_SECURITY_DEVICE = "RequireSecurityDevice"
DISABLE_POST_LOGON = "DisablePostLogonProvisioning"
POLICY_NAMES = (GPO_ENABLED, MDM_ENABLED, CERT_TRUST, CLOUD_TRUST, REQUIRE_SECURITY_DEVICE, DISABLE_POST_LOGON)

# Cloud Kerberos trust client minimums (MS docs "hybrid cloud Kerberos trust" prerequisites): Windows 10 21H2
# with KB5010415 (19044.1566), 22H2 (19045, every UBR), Windows 11 21H2 with KB5010414 (22000.527), 22621+.
CLOUD_TRUST_MIN_UBR: dict[int, int] = {19044: 1566, 19045: 0, 22000: 527}
CLOUD_TRUST_ANY_UBR_FROM = 22621


def supports_cloud_trust(build: int | None, ubr: int | None) -> bool | None:
    """Whether a Windows build runs cloud Kerberos trust; None when the build is unknown."""
    if build is None:
        return None
    if build >= CLOUD_TRUST_ANY_UBR_FROM:
        return True
    minimum = CLOUD_TRUST_MIN_UBR.get(build)
    if minimum is None:
        return False
    if ubr is None:
        return None
    return ubr >= minimum


class _Facts(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OsFacts(_Facts):
    caption: str | None = None
    version: str | None = None
    build: int | None = None
    ubr: int | None = None
    display_version: str | None = None
    edition_id: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def full_build(self) -> str | None:
        if self.build is None:
            return None
        return f"{self.build}.{self.ubr}" if self.ubr is not None else str(self.build)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def supports_cloud_trust(self) -> bool | None:
        return supports_cloud_trust(self.build, self.ubr)


class TpmFacts(_Facts):
    present: bool | None = None
    ready: bool | None = None
    error: str | None = None  # Get-Tpm failed (not elevated, module missing): presence unknown

    @property
    def usable(self) -> bool | None:
        if self.present is None:
            return None
        return bool(self.present and self.ready)


class PolicyFacts(_Facts):
    """Hello policy values from both sources, raw, and the effective result computed from them."""

    gpo_computer: dict[str, Any] = Field(default_factory=dict)
    gpo_users: dict[str, dict[str, Any]] = Field(default_factory=dict)  # SID -> values
    mdm_device: dict[str, dict[str, Any]] = Field(default_factory=dict)  # tenant id -> values
    mdm_users: dict[str, dict[str, dict[str, Any]]] = Field(default_factory=dict)  # tenant id -> SID -> values
    source: PolicySource = "none"
    effective: Effective = "none"
    enabled: bool = False
    cert_trust: bool = False
    cloud_trust: bool = False
    require_security_device: bool = False
    post_logon_enabled: bool = True
    cert_trust_any_source: bool = False  # UseCertificateForOnPremAuth=1 anywhere, even where ignored
    user_effective: dict[str, Effective] = Field(default_factory=dict)  # SID -> effective for that user
    notes: tuple[str, ...] = ()
    # Computer values a GPO manages (RSoP of the last policy processing): value name -> the GPO's display name.
    # A local write to one of them lasts until the next Group Policy refresh.
    gpo_managed: dict[str, str] = Field(default_factory=dict)

    def gpo_relevant(self) -> dict[str, int]:
        """The computer GPO values that decide the trust model (DWORDs of the names the migration uses)."""
        return dwords(self.gpo_computer)

    def mdm_relevant(self, tenant_id: str | None = None) -> dict[str, int]:
        """The MDM device values of one tenant (or every tenant, merged) that decide the trust model."""
        merged: dict[str, int] = {}
        for tenant, values in self.mdm_device.items():
            if tenant_id is None or tenant.casefold() == tenant_id.casefold():
                merged.update(dwords(values))
        return merged


class SessionFacts(_Facts):
    id: int
    kind: Literal["console", "rdp", "other"] | None = None
    state: str | None = None  # Active, Disc (as quser prints it)
    name: str | None = None  # console, rdp-tcp#0


class UserFacts(_Facts):
    sid: str
    name: str | None = None  # DOMAIN\user when Windows says (signed-in users), else the profile folder's name
    profile_path: str | None = None
    has_profile: bool = True
    signed_in: bool = False
    session: SessionFacts | None = None
    has_hello: bool = False  # the PIN credential provider lists this SID: a Hello container exists
    policy: Effective = "none"  # the effective Hello policy for this user


class DcFacts(_Facts):
    """Line of sight to a domain controller of the device's domain (``nltest /dsgetdc:<domain> /force``)."""

    domain: str | None = None
    checked: bool = False
    reachable: bool | None = None
    dc: str | None = None
    address: str | None = None
    site: str | None = None
    keylist: bool | None = None  # the DC advertises KEYLIST (needed for the partial TGT exchange)
    error: str | None = None  # ERROR_NO_SUCH_DOMAIN, ...
    exit_code: int | None = None


class EventFacts(_Facts):
    """One User Device Registration provisioning event (358 launched, 360 not launched, 362 cert prerequisites)."""

    id: int
    time: str | None = None
    level: str | None = None
    user_sid: str | None = None
    launched: bool | None = None
    cloud_trust_policy_enabled: bool | None = None
    has_cloud_tgt: bool | None = None
    cert_policy_enabled: bool | None = None
    governed_by: str | None = None


class EntraKerberosFacts(_Facts):
    """What the device can say about the Microsoft Entra Kerberos server object of its users' domains.

    ``KerbTopLevelNames`` appears only in ``dsregcmd /status`` run in the user's own context, never to the admin
    network logon the probe uses, so the device's answer is a hint from provisioning events ("User account has
    Cloud TGT: Yes/No" after cloud trust was tried); the orchestrator's per-domain setting decides."""

    kerb_top_level_names: str = "unknown from the admin context"
    event_hint: bool | None = None  # True: a user got a cloud TGT; False: cloud trust tried, no cloud TGT
    domains: tuple[str, ...] = ()  # the AD domains concerned (device domain, else the users' domains)


class DeviceFacts(_Facts):
    name: str  # the inventory name
    computer_name: str | None = None
    join_type: JoinType = "unknown"
    azure_ad_joined: bool | None = None
    domain_joined: bool | None = None
    domain: str | None = None  # DNS name of the AD domain (domain joined)
    tenant_id: str | None = None
    tenant_name: str | None = None
    device_id: str | None = None
    os: OsFacts = Field(default_factory=OsFacts)
    tpm: TpmFacts = Field(default_factory=TpmFacts)
    policy: PolicyFacts = Field(default_factory=PolicyFacts)
    users: tuple[UserFacts, ...] = ()
    dc: DcFacts = Field(default_factory=DcFacts)
    entra_kerberos: EntraKerberosFacts = Field(default_factory=EntraKerberosFacts)
    events: tuple[EventFacts, ...] = ()
    caller: str | None = None  # the account the facts were read as
    problems: tuple[str, ...] = ()  # parts the device could not answer (tolerated)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def supports_cloud_trust(self) -> bool | None:
        return self.os.supports_cloud_trust

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cert_trust_any_source(self) -> bool:
        return self.policy.cert_trust_any_source

    def user(self, sid_or_name: str) -> UserFacts | None:
        wanted = sid_or_name.casefold()
        for user in self.users:
            if user.sid.casefold() == wanted or (user.name is not None and user.name.casefold() == wanted):
                return user
        return None


# ---- policy precedence -------------------------------------------------------------------------------------


_CANONICAL_NAMES = {name.casefold(): name for name in POLICY_NAMES}


def dwords(values: Mapping[str, Any]) -> dict[str, int]:
    """The DWORD policy values the migration reads, under their canonical names. Registry value names are
    case-insensitive (https://learn.microsoft.com/windows/win32/sysinfo/registry-element-size-limits: "value names
    are not case sensitive"), so a hand-written ``usecertificateforonpremauth`` counts as much as Group Policy's
    ``UseCertificateForOnPremAuth``: missing it would hide certificate trust from the point of no return."""
    out: dict[str, int] = {}
    for name, data in values.items():
        canonical = _CANONICAL_NAMES.get(name.casefold())
        if canonical is not None and isinstance(data, int) and not isinstance(data, bool):
            out[canonical] = data
    return out


def _resolve(gpo: dict[str, int], mdm: dict[str, int]) -> tuple[PolicySource, dict[str, int], str]:
    if gpo:
        return "gpo", gpo, GPO_ENABLED
    if mdm:
        return "mdm", mdm, MDM_ENABLED
    return "none", {}, GPO_ENABLED


def _effective(winning: dict[str, int], enabled_name: str) -> Effective:
    if winning.get(enabled_name) != 1:
        return "none"
    if winning.get(CERT_TRUST) == 1:
        return "cert"  # certificate trust wins over cloud Kerberos trust (MS docs cloud Kerberos trust deploy)
    if winning.get(CLOUD_TRUST) == 1:
        return "cloud"
    return "key"


def _for_user(
    gpo_computer: dict[str, int], gpo_user: dict[str, int], mdm_device: dict[str, int], mdm_user: dict[str, int]
) -> Effective:
    user_gpo = {k: v for k, v in gpo_user.items() if k != CLOUD_TRUST}  # computer-only setting
    user_mdm = {k: v for k, v in mdm_user.items() if k != CLOUD_TRUST}  # CSP: device scope only
    _, winning, enabled_name = _resolve({**gpo_computer, **user_gpo}, {**mdm_device, **user_mdm})
    return _effective(winning, enabled_name)


def evaluate_policy(
    gpo_computer: Mapping[str, Any],
    gpo_users: Mapping[str, Mapping[str, Any]],
    mdm: Sequence[tuple[str, str, Mapping[str, Any]]],
    tenant_id: str | None = None,
    user_sids: list[str] | None = None,
) -> PolicyFacts:
    """The effective Hello policy from raw values: ``mdm`` is (tenant id, scope ``Device`` or a SID, values).

    When the device's tenant is known only its MDM values count (a stale tenant key from an earlier join is
    not read by Windows); otherwise every tenant's values are merged."""
    mdm_device: dict[str, dict[str, Any]] = {}
    mdm_users: dict[str, dict[str, dict[str, Any]]] = {}
    for tenant, scope, values in mdm:
        if scope.casefold() == "device":
            mdm_device[tenant] = dict(values)
        else:
            mdm_users.setdefault(tenant, {})[scope] = dict(values)

    def counts(tenant: str) -> bool:
        return tenant_id is None or tenant.casefold() == tenant_id.casefold()

    gpo = dwords(gpo_computer)
    mdm_merged: dict[str, int] = {}
    for tenant, values in mdm_device.items():
        if counts(tenant):
            mdm_merged.update(dwords(values))
    source, winning, enabled_name = _resolve(gpo, mdm_merged)
    effective = _effective(winning, enabled_name)
    notes: list[str] = []
    if gpo and mdm_merged:
        notes.append("Group Policy configures Windows Hello for Business: the MDM PassportForWork values are ignored")
    if winning.get(CERT_TRUST) == 1 and winning.get(CLOUD_TRUST) == 1:
        notes.append("UseCertificateForOnPremAuth wins over UseCloudTrustForOnPremAuth: certificate trust applies")
    cert_any = gpo.get(CERT_TRUST) == 1 or mdm_merged.get(CERT_TRUST) == 1
    cert_any = cert_any or any(dwords(v).get(CERT_TRUST) == 1 for v in gpo_users.values())
    cert_any = cert_any or any(
        dwords(v).get(CERT_TRUST) == 1 for t, users in mdm_users.items() if counts(t) for v in users.values()
    )
    user_effective: dict[str, Effective] = {}
    for sid in user_sids or []:
        gpo_user = dwords(gpo_users.get(sid, {}))
        mdm_user: dict[str, int] = {}
        for tenant, users in mdm_users.items():
            if counts(tenant) and sid in users:
                mdm_user.update(dwords(users[sid]))
        user_effective[sid] = _for_user(gpo, gpo_user, mdm_merged, mdm_user)
        if user_effective[sid] != effective:
            notes.append(f"user {sid}: user-scope policy makes it {user_effective[sid]} (computer: {effective})")
    return PolicyFacts(
        gpo_computer=dict(gpo_computer),
        gpo_users={sid: dict(v) for sid, v in gpo_users.items()},
        mdm_device=mdm_device,
        mdm_users=mdm_users,
        source=source,
        effective=effective,
        enabled=winning.get(enabled_name) == 1,
        cert_trust=winning.get(CERT_TRUST) == 1,
        cloud_trust=winning.get(CLOUD_TRUST) == 1,
        require_security_device=winning.get(REQUIRE_SECURITY_DEVICE) == 1,
        post_logon_enabled=winning.get(DISABLE_POST_LOGON) != 1,
        cert_trust_any_source=cert_any,
        user_effective=user_effective,
        notes=tuple(notes),
    )


# ---- the migration path --------------------------------------------------------------------------------------


class PathSettings(BaseModel):
    """What the orchestrator knows beyond the device: Entra Kerberos per AD domain (DNS or NetBIOS name), the
    accounts Entra Kerberos never serves (from the directory), and whether the playbook will itself require a
    hardware security device (RequireSecurityDevice=1)."""

    model_config = ConfigDict(frozen=True)

    entra_kerberos: dict[str, bool] = Field(default_factory=dict)
    require_security_device: bool = False
    # From the directory (msDS-NeverRevealGroup of AzureADKerberos, transitively): user SID → the groups that
    # keep it out. Such a user gets no partial TGT; the machine parks it at preflight with the group named.
    never_reveal: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    # From Entra ID through Graph (migrator.cloud.knowledge): Entra deviceId (casefolded) → its device object as
    # read, "present", "disabled", "missing" or "unknown" (the read failed: a warning, never taken for missing).
    # A device without an enabled object gets no Primary Refresh Token,
    # so its users neither provision Hello nor get a cloud Kerberos ticket: it is not migrated.
    entra_devices: dict[str, str] = Field(default_factory=dict)

    def entra_kerberos_for(self, domain: str) -> bool | None:
        wanted = domain.casefold()
        for name, present in self.entra_kerberos.items():
            if name.casefold() == wanted:
                return present
        return None


class PathDecision(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: Path
    reasons: tuple[str, ...] = ()  # why ineligible, or what to watch (warnings)


def relevant_domains(facts: DeviceFacts) -> list[str]:
    """The AD domains whose Entra Kerberos object matters: the device's, else its users' (Entra joined)."""
    if facts.domain_joined and facts.domain:
        return [facts.domain]
    domains: list[str] = []
    for user in facts.users:
        if user.name and "\\" in user.name:
            netbios = user.name.split("\\", 1)[0]
            if netbios.casefold() not in ("azuread", ".") and netbios not in domains:
                domains.append(netbios)
    return domains


def path(facts: DeviceFacts, settings: PathSettings | None = None) -> PathDecision:
    """The migration path a device would take, with the reasons (ineligibility first, then warnings)."""
    settings = settings or PathSettings()
    blockers: list[str] = []
    warnings: list[str] = []
    if facts.join_type in ("domain", "workgroup"):
        blockers.append(f"not Microsoft Entra joined or hybrid joined (join type {facts.join_type})")
    elif facts.join_type == "unknown":
        blockers.append("join state unknown (dsregcmd /status could not be read)")
    support = facts.os.supports_cloud_trust
    if support is False:
        blockers.append(
            f"Windows build {facts.os.full_build} is older than cloud Kerberos trust needs "
            "(19044.1566, 22000.527 or 22621+)"
        )
    elif support is None:
        warnings.append("Windows build unknown: cloud Kerberos trust support not verified")
    # RequireSecurityDevice=1 (in force now, or written by the playbook) makes Hello provision only on a TPM
    # (PassportForWork CSP, Policies/RequireSecurityDevice): on a device without a usable one, a user whose
    # container is deleted never gets a new one.
    requires_tpm = facts.policy.require_security_device or settings.require_security_device
    if requires_tpm and facts.tpm.usable is False:
        blockers.append("no usable TPM while the policy requires a hardware security device")
    elif requires_tpm and facts.tpm.usable is None:
        warnings.append(
            "TPM state unknown"
            + (f" ({facts.tpm.error})" if facts.tpm.error else "")
            + ": a container is not deleted until a usable TPM is confirmed"
        )
    if facts.join_type in ("hybrid", "entra"):
        domains = relevant_domains(facts)
        for domain in domains:
            known = settings.entra_kerberos_for(domain)
            if known is False:
                blockers.append(f"no Microsoft Entra Kerberos server object in domain {domain}")
            elif known is None:
                warnings.append(f"Microsoft Entra Kerberos in domain {domain} not confirmed (no per-domain setting)")
        if not domains:
            warnings.append("no AD domain known for this device's users: Microsoft Entra Kerberos not checked")
        for user in facts.users:
            groups = settings.never_reveal.get(user.sid)
            if groups and user.has_hello:
                warnings.append(
                    f"user {user.name or user.sid} is in {', '.join(groups)} (msDS-NeverRevealGroup of "
                    "AzureADKerberos): no partial TGT for it, so it is parked at preflight and keeps its container"
                )
        object_state = settings.entra_devices.get((facts.device_id or "").casefold())
        if object_state == "missing":
            blockers.append(
                f"Microsoft Entra ID has no device object with deviceId {facts.device_id} (deleted?): no Primary "
                "Refresh Token on this device, so no Hello provisioning and no cloud Kerberos ticket; re-join it"
            )
        elif object_state == "disabled":
            blockers.append(
                f"the Microsoft Entra device object {facts.device_id} is disabled: no Primary Refresh Token on this "
                "device until it is enabled"
            )
        elif object_state == "unknown":
            warnings.append(
                f"the Microsoft Entra device object {facts.device_id} could not be read: its state (present, "
                "disabled or deleted) is not confirmed"
            )
        if facts.entra_kerberos.event_hint is False:
            warnings.append(
                "provisioning events say a user had no cloud TGT under cloud trust policy "
                "(Entra Kerberos missing for the user's domain, or a privileged user)"
            )
    if facts.join_type == "hybrid" and facts.dc.checked and facts.dc.reachable is False:
        warnings.append(
            "no line of sight to a domain controller now: the first Hello sign-in after the change needs one"
        )
    effective = facts.policy.effective
    if effective == "cert":
        chosen: Path = "cert"
    elif effective == "cloud":
        chosen = "cloud"
    else:
        chosen = "key"
        if effective == "none":
            warnings.append("no Windows Hello for Business policy yet: enabling cloud trust needs no container reset")
    if effective != "cert" and facts.policy.cert_trust_any_source:
        warnings.append("UseCertificateForOnPremAuth=1 is set in a source that does not apply now: clear it too")
    if effective == "cloud" and any(u.has_hello and u.policy == "cert" for u in facts.users):
        chosen = "cert"
        warnings.append("a user-scope certificate trust policy applies to users with a container")
    if blockers:
        return PathDecision(path="ineligible", reasons=tuple(blockers + warnings))
    return PathDecision(path=chosen, reasons=tuple(warnings))


# ---- answers of the action steps ------------------------------------------------------------------------------

TaskStatus = Literal["completed", "timeout", "not-started", "register-failed"]


# Domain groups whose members Entra Kerberos refuses by default (RID → name): the Denied RODC Password
# Replication Group and what it holds.
NEVER_REVEAL_RIDS = {
    "512": "Domain Admins",
    "516": "Domain Controllers",
    "517": "Cert Publishers",
    "518": "Schema Admins",
    "519": "Enterprise Admins",
    "520": "Group Policy Creator Owners",
    "521": "Read-only Domain Controllers",
    "572": "Denied RODC Password Replication Group",
}


class HelloState(_Facts):
    """A user's own Hello and Kerberos state, read in their session (dsregcmd /status, klist, klist cloud_debug)."""

    status: TaskStatus
    user: str  # as asked (SID or DOMAIN\\user)
    ran_as: str | None = None  # whoami of the task: proves it ran as the user
    ran_as_sid: str | None = None
    exit_code: int | None = None
    ngc_set: bool | None = None
    ngc_key_id: str | None = None
    azure_ad_prt: bool | None = None
    on_prem_tgt: bool | None = None  # dsregcmd SSO State: partial TGT (cloud Kerberos trust)
    cloud_tgt: bool | None = None
    cert_enrollment: str | None = None
    cloud_primary_tgt: bool | None = None  # klist cloud_debug "Cloud Primary (Hybrid logon) TGT available"
    krbtgt_cloud_ticket: bool = False  # klist lists krbtgt/KERBEROS.MICROSOFTONLINE.COM
    onprem_krbtgt_ticket: bool = False  # klist lists krbtgt/<AD realm>
    cleaned_up: bool = False  # task unregistered and files deleted
    message: str | None = None
    group_sids: tuple[str, ...] = ()  # the user's token groups (WindowsIdentity.Groups)

    @property
    def protected_groups(self) -> tuple[str, ...]:
        """The token's groups that Entra Kerberos refuses (msDS-NeverRevealGroup of AzureADKerberos, by default
        the Denied RODC Password Replication Group and its members): such an account gets no partial TGT, so
        cloud Kerberos trust cannot serve it (windows-facts §9.7)."""
        found = []
        for sid in self.group_sids:
            if sid.upper().startswith("S-1-5-21-"):
                name = NEVER_REVEAL_RIDS.get(sid.rsplit("-", 1)[1])
                if name is not None:
                    found.append(name)
        return tuple(found)

    @property
    def cloud_trust_active(self) -> bool:
        """The user signed in with cloud Kerberos trust: a partial TGT was issued (windows-facts §3, §8)."""
        return bool(self.cloud_primary_tgt or self.on_prem_tgt)


class DeleteGuard(_Facts):
    ngc_set: bool = False
    key_id: str | None = None
    expected_key_id: str | None = None
    expected_trust: str | None = None
    observed_trust: str | None = None  # key, cert, cloud, or key-or-cert when the certificate store is unreadable
    cert_store_read: bool = False
    refusals: tuple[str, ...] = ()


class PromptResult(_Facts):
    session_id: int
    seconds: int
    delivered: bool
    exit_code: int | None = None
    text: str = ""


class DeleteOutcome(_Facts):
    """What the guarded ``certutil -deletehellocontainer`` found and did, in the user's own context."""

    status: TaskStatus
    user: str
    ran_as: str | None = None
    deleted: bool = False
    refused: bool = False
    guard: DeleteGuard | None = None
    certutil_succeeded: bool | None = None
    certutil_error: str | None = None
    sign_out_required: bool = False
    exit_code: int | None = None
    cleaned_up: bool = False
    message: str | None = None
    # The request to sign out and back in, shown right after a delete that asked for it (None: not asked, or
    # nothing was deleted): the prompt step's answer, carried by the delete's own run.
    prompt: PromptResult | None = None


RegistryType = Literal["DWord", "QWord", "String", "ExpandString", "MultiString", "Binary"]


class PolicyValue(_Facts):
    """One registry value as a snapshot record: ``existed`` False means restore removes it."""

    path: str
    name: str
    existed: bool = False
    type: RegistryType | None = None
    data: Any = None


class PolicyChange(_Facts):
    previous: PolicyValue
    current: PolicyValue
    changed: bool


class RestoreAction(_Facts):
    path: str
    name: str
    action: Literal["set", "removed", "unchanged"]


class LogonTaskArmed(_Facts):
    task: str
    armed: bool
    replaced: bool
    pending_result: bool


class LogonTaskResult(_Facts):
    task: str
    task_exists: bool
    state: str | None = None
    last_run_time: str | None = None
    last_task_result: int | None = None
    outcome: DeleteOutcome | None = None  # present once the at-logon run wrote its result


class LogonTaskDisarmed(_Facts):
    task: str
    task_removed: bool
    task_left: bool
    files_left: bool
    outcome: DeleteOutcome | None = None


class PolicyRefresh(_Facts):
    succeeded: bool
    computer_policy_completed: bool | None = None
    restart_required: bool = False
    errors: tuple[str, ...] = ()
    exit_code: int | None = None
