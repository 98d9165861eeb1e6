"""``dsregcmd /status``: the device's join state and the *caller's* user, SSO and Hello prerequisite state.

Layout (learn.microsoft.com "Troubleshoot devices by using the dsregcmd command"; samples in
``reference/outputs/dsregcmd_*``): a blank line, then per section a 72-column box ``+---+`` / ``| Title |``,
a blank line, ``key : value`` lines with the key right-aligned so that every colon sits in column 28, and a
blank line. Sections in order: Device State, Device Details and Tenant Details (Entra or hybrid joined only),
User State, SSO State, Diagnostic Data, IE Proxy Config / WinHttp Default Proxy Config (newer builds), Ngc
Prerequisite Check; then the aadjerrors link.

User State, SSO State and the Ngc Prerequisite Check describe whoever *runs* dsregcmd (windows-facts §1, §6):
a user in their own session sees their container (``NgcSet``/``NgcKeyId``), their PRT and Kerberos material;
the WinRM admin (network logon) or SYSTEM sees ``NgcSet : NO``, ``AzureAdPrt : NO`` and ``WamDefaultSet :
ERROR``.
"""

from __future__ import annotations

from datetime import timedelta

from migrator.lab.cmdlets.certs import DEVICE_CERT_LIFETIME, entra_device_id, entra_device_thumbprint
from migrator.lab.derived import derived_guid
from migrator.lab.model import Device
from migrator.lab.native._common import (
    NativeContext,
    text,
    utc_stamp,
    yes_no,
)
from migrator.lab.shell import NativeResult, PrincipalKind
from migrator.lab.windows import Prerequisites

BOX = "+" + "-" * 70 + "+"
KEY_WIDTH = 26  # "DeviceCertificateValidity" plus one space: the colon lands in column 28
AADJ_ERRORS = "For more information, please visit https://www.microsoft.com/aadjerrors"
WAM_DEFAULT_GUID = "{B16898C6-A148-4967-9171-64D755DA8520} (AzureAd)"  # the Entra ID WAM provider
KERB_TOP_LEVEL_NAMES = ".windows.net,.windows.net:1433,.windows.net:3342,.azure.net,.azure.net:1433,.azure.net:3342"
DRS = "https://enterpriseregistration.windows.net"
DRS_ID = "urn:ms-drs:enterpriseregistration.windows.net"
PRT_LIFETIME = timedelta(days=14)  # a PRT is valid 14 days and renewed every 4 hours of use

Field = tuple[str, str] | None  # None = a blank line inside a section (pre-join diagnostics)

USAGE = """DSREGCMD switches
                        /? : Displays the help message for DSREGCMD
                   /status : Displays the device join status
               /status_old : Displays the device join status in old format
                     /join : Schedules and monitors the Autojoin task to Hybrid Join the device
                    /leave : Performs Hybrid Unjoin
                    /debug : Displays debug messages
                /refreshprt : Refreshes PRT in the CloudAP cache
           /refreshp2pcerts : Refreshes P2P certificates
           /cleanupaccounts : Deletes all WAM accounts
              /listaccounts : Lists all WAM accounts
             /UpdateDevice : Update device attributes to Azure AD
"""


def run(ctx: NativeContext, args: list[str]) -> NativeResult:
    switches = [a.casefold() for a in args]
    if not switches or any(s in ("/?", "-?", "/help") for s in switches):
        return NativeResult(stdout=USAGE, exit_code=0 if switches else 1)
    known = {"/status", "-status", "/debug", "-debug", "/verbose", "-verbose"}
    if switches[0] not in ("/status", "-status") or any(s not in known for s in switches):
        return NativeResult(stdout=USAGE, exit_code=1)
    with ctx.device.lock:
        return NativeResult(stdout=render_status(ctx))


# ---- the whole report --------------------------------------------------------------------------------


def render_status(ctx: NativeContext) -> str:
    device = ctx.device
    sections: list[tuple[str, list[Field]]] = [("Device State", _device_state(ctx))]
    if device.azure_ad_joined:
        sections.append(("Device Details", _device_details(ctx)))
        sections.append(("Tenant Details", _tenant_details(ctx)))
    sections.append(("User State", _user_state(ctx)))
    sections.append(("SSO State", _sso_state(ctx)))
    diagnostics = _diagnostic_data(ctx)
    if diagnostics:
        sections.append(("Diagnostic Data", diagnostics))
    if device.os.build >= 22000:
        # Windows 11 builds print the caller's proxy settings (dsregcmd_not_joined_workplacejoined_full.txt).
        sections.append(
            (
                "IE Proxy Config for Current User",
                [
                    ("Auto Detect Settings", "YES"),
                    ("Auto-Configuration URL", ""),
                    ("Proxy Server List", ""),
                    ("Proxy Bypass List", ""),
                ],
            )
        )
        sections.append(("WinHttp Default Proxy Config", [("Access Type", "DIRECT")]))
    sections.append(("Ngc Prerequisite Check", _ngc_prerequisites(ctx)))
    lines = [""]
    for title, fields in sections:
        lines += box(title)
        lines.append("")
        lines += [field_line(*f) if f is not None else "" for f in fields]
        lines.append("")
    lines += [AADJ_ERRORS, ""]
    return text(lines)


def box(title: str) -> list[str]:
    return [BOX, f"| {title:<68} |", BOX]


def field_line(key: str, value: str) -> str:
    # Real dsregcmd writes "Key : " even for an empty value; the trailing blank is dropped here as most
    # published copies show it (dsregcmd_not_joined_workplacejoined_full.txt).
    return f"{key:>{KEY_WIDTH}} : {value}".rstrip()


# ---- sections ----------------------------------------------------------------------------------------


def _shows_kerberos_fields(device: Device) -> bool:
    """OnPremTgt/CloudTgt exist on Windows 11 and on Windows 10 since KB5018410 (19042-19045 UBR 2130)."""
    build, ubr = device.os.build, device.os.ubr
    return build >= 22000 or (19042 <= build <= 19045 and ubr >= 2130)


def _device_state(ctx: NativeContext) -> list[Field]:
    device = ctx.device
    fields: list[Field] = [
        ("AzureAdJoined", yes_no(device.azure_ad_joined)),
        ("EnterpriseJoined", "NO"),
        ("DomainJoined", yes_no(device.domain_joined)),
    ]
    domain = ctx.lab.domain_of(device)
    if device.domain_joined and domain is not None:
        fields.append(("DomainName", domain.netbios))
    if device.os.build >= 22000:
        fields.append(("Virtual Desktop", "NOT SET"))
    if device.os.build >= 19041:
        fields.append(("Device Name", device.fqdn.lower() if device.domain_joined else device.name))
    return fields


# One source with Cert:\LocalMachine\My and certutil -store my (the device certificate they list).
device_id = entra_device_id
device_thumbprint = entra_device_thumbprint


def _device_details(ctx: NativeContext) -> list[Field]:
    device = ctx.device
    issued = device.os.install_date or ctx.lab.fleet.created
    tpm = device.tpm.present and device.tpm.ready
    return [
        ("DeviceId", device_id(device)),
        ("Thumbprint", device_thumbprint(device)),
        ("DeviceCertificateValidity", f"[ {utc_stamp(issued)} -- {utc_stamp(issued + DEVICE_CERT_LIFETIME)} ]"),
        ("KeyContainerId", derived_guid("device-key-container", device_id(device))),
        ("KeyProvider", "Microsoft Platform Crypto Provider" if tpm else "Microsoft Software Key Storage Provider"),
        ("TpmProtected", yes_no(tpm)),
        ("DeviceAuthStatus", "SUCCESS"),
    ]


def _tenant_details(ctx: NativeContext) -> list[Field]:
    tenant = ctx.lab.fleet.tenant
    tid = tenant.tenant_id
    mdm = ctx.device.mdm_enrolled
    return [
        ("TenantName", tenant.name),
        ("TenantId", tid),
        ("Idp", "login.windows.net"),
        ("AuthCodeUrl", f"https://login.microsoftonline.com/{tid}/oauth2/authorize"),
        ("AccessTokenUrl", f"https://login.microsoftonline.com/{tid}/oauth2/token"),
        ("MdmUrl", "https://enrollment.manage.microsoft.com/enrollmentserver/discovery.svc" if mdm else ""),
        ("MdmTouUrl", "https://portal.manage.microsoft.com/TermsofUse.aspx" if mdm else ""),
        ("MdmComplianceUrl", "https://portal.manage.microsoft.com/?portalAction=Compliance" if mdm else ""),
        ("SettingsUrl", ""),
        ("JoinSrvVersion", "2.0"),
        ("JoinSrvUrl", f"{DRS}/EnrollmentServer/device/"),
        ("JoinSrvId", DRS_ID),
        ("KeySrvVersion", "1.0"),
        ("KeySrvUrl", f"{DRS}/EnrollmentServer/key/"),
        ("KeySrvId", DRS_ID),
        ("WebAuthNSrvVersion", "1.0"),
        ("WebAuthNSrvUrl", f"{DRS}/webauthn/{tid}/"),
        ("WebAuthNSrvId", DRS_ID),
        ("DeviceManagementSrvVer", "1.0"),
        ("DeviceManagementSrvUrl", f"{DRS}/manage/{tid}/"),
        ("DeviceManagementSrvId", DRS_ID),
    ]


def _user_state(ctx: NativeContext) -> list[Field]:
    user = ctx.user
    if user is None:
        # Elevated/SYSTEM/network contexts have no WAM default account (windows-facts §1, azure-docs #48791).
        return [("NgcSet", "NO"), ("WorkplaceJoined", "NO"), ("WamDefaultSet", "ERROR")]
    fields: list[Field] = []
    container = user.container
    if container is not None:
        view = ctx.lab.policy(ctx.device, user)
        # CanReset: non-destructive PIN reset needs the PIN reset service (EnablePinRecovery); otherwise a
        # forgotten PIN can only be reset by re-provisioning (DestructiveOnly).
        recovery = view.gpo.get("EnablePinRecovery", view.mdm.get("EnablePinRecovery", 0)) == 1
        fields += [
            ("NgcSet", "YES"),
            ("NgcKeyId", container.key_id.upper()),
            ("CanReset", "DestructiveAndNonDestructive" if recovery else "DestructiveOnly"),
        ]
    else:
        fields.append(("NgcSet", "NO"))
    fields.append(("WorkplaceJoined", "NO"))
    session = ctx.session
    if ctx.device.azure_ad_joined and session is not None and session.prt:
        fields += [
            ("WamDefaultSet", "YES"),
            ("WamDefaultAuthority", "organizations"),
            ("WamDefaultId", "https://login.microsoft.com"),
            ("WamDefaultGUID", WAM_DEFAULT_GUID),
        ]
    else:
        fields.append(("WamDefaultSet", "NO"))
    return fields


def _sso_state(ctx: NativeContext) -> list[Field]:
    device = ctx.device
    session = ctx.session
    authority = f"https://login.microsoftonline.com/{ctx.lab.fleet.tenant.tenant_id}"
    kerberos_fields = device.azure_ad_joined and _shows_kerberos_fields(device)
    if session is None or not session.prt:
        fields: list[Field] = [
            ("AzureAdPrt", "NO"),
            ("AzureAdPrtAuthority", authority if device.azure_ad_joined and ctx.user is not None else "NO"),
            ("EnterprisePrt", "NO"),
            ("EnterprisePrtAuthority", "NO"),
        ]
        if kerberos_fields:
            fields += [("OnPremTgt", "NO"), ("CloudTgt", "NO")]
        return fields
    updated = session.prt_update_time or session.logon_time
    fields = [
        ("AzureAdPrt", "YES"),
        ("AzureAdPrtUpdateTime", utc_stamp(updated)),
        ("AzureAdPrtExpiryTime", utc_stamp(updated + PRT_LIFETIME)),
        ("AzureAdPrtAuthority", authority),
        ("EnterprisePrt", "NO"),
        ("EnterprisePrtAuthority", ""),
    ]
    if kerberos_fields:
        on_prem, cloud = session.partial_tgt, session.cloud_tgt
        if device.os.has_dsregcmd_display_bug:
            # Windows 10 21H1/21H2 between KB5018410 (Oct 2022) and the 2023-01 C update printed both fields
            # wrongly: the device HAS the partial TGT (klist cloud_debug "Cloud Primary (Hybrid logon) TGT
            # available: 1") yet dsregcmd said NO (MS Supportability wiki "Cloud kerberos trust only dsregcmd
            # /status display bug", windows-facts §1, §9.5). The lab shows NO for both; klist cloud_debug and
            # klist keep showing the truth.
            on_prem = cloud = False
        fields += [("OnPremTgt", yes_no(on_prem)), ("CloudTgt", yes_no(cloud))]
        if cloud:
            fields.append(("KerbTopLevelNames", KERB_TOP_LEVEL_NAMES))
    return fields


def _executing_account(ctx: NativeContext) -> str:
    device = ctx.device
    user = ctx.user
    if user is not None:
        return f"{user.qualified_name}, {user.upn}"
    domain = ctx.lab.domain_of(device)
    if ctx.principal.kind is PrincipalKind.SYSTEM:
        # SYSTEM acts as the computer account on the network (dsregcmd_domainjoined_..._ws2022.txt).
        if device.domain_joined and domain is not None:
            account = f"{device.name.upper()}$"
            return f"{domain.netbios}\\{account}, {account}@{domain.dns_name}"
        return "NT AUTHORITY\\SYSTEM"
    return ctx.principal.name.upper() if "\\" not in ctx.principal.name else _upper_domain(ctx.principal.name)


def _upper_domain(name: str) -> str:
    domain, _, account = name.partition("\\")
    return f"{domain.upper()}\\{account}"


def _diagnostic_data(ctx: NativeContext) -> list[Field]:
    device = ctx.device
    if device.azure_ad_joined:
        return [
            ("AadRecoveryEnabled", "NO"),
            ("Executing Account Name", _executing_account(ctx)),
            ("KeySignTest", "PASSED"),
        ]
    if not device.domain_joined:
        return []  # workgroup: no join is attempted, nothing to diagnose (azure-docs #48791)
    # Domain joined but not hybrid joined: the pre-join diagnostics of a device whose tenant has no service
    # connection point for it (0x801c001d, AD Configuration Test 0x80070002), as in the WS2022 sample.
    context = {
        PrincipalKind.SYSTEM: "SYSTEM",
        PrincipalKind.ADMIN: "ELEVATED User",
        PrincipalKind.USER: "UN-ELEVATED User",
    }[ctx.principal.kind]
    dc = ctx.lab.dc_available(device)
    previous = device.os.last_boot or ctx.lab.fleet.created
    return [
        ("Diagnostics Reference", "www.microsoft.com/aadjerrors"),
        ("User Context", context),
        ("Client Time", utc_stamp(ctx.now())),
        # Without a DC the LDAP ping fails: ERROR_NO_SUCH_DOMAIN as an HRESULT; later tests are skipped.
        ("AD Connectivity Test", "PASS" if dc else "FAIL [0x8007054b]"),
        ("AD Configuration Test", "FAIL [0x80070002]" if dc else "SKIPPED"),
        ("DRS Discovery Test", "SKIPPED"),
        ("DRS Connectivity Test", "SKIPPED"),
        ("Token acquisition Test", "SKIPPED"),
        ("Fallback to Sync-Join", "ENABLED"),
        None,
        ("Previous Registration", utc_stamp(previous)),
        ("Error Phase", "discover"),
        ("Client ErrorCode", "0x801c001d"),
    ]


def _ngc_prerequisites(ctx: NativeContext) -> list[Field]:
    device = ctx.device
    user = ctx.user
    if user is None:
        return _ngc_prerequisites_without_user(ctx)
    session = ctx.session
    prereq = ctx.lab.prerequisites(device, user, session.kind if session is not None else "console")
    fields: list[Field] = [
        ("IsDeviceJoined", yes_no(prereq.device_joined)),
        ("IsUserAzureAD", yes_no(prereq.user_aad and session is not None and session.prt)),
        ("PolicyEnabled", yes_no(prereq.policy_enabled)),
        ("PostLogonEnabled", yes_no(prereq.post_logon_enabled)),
        ("DeviceEligible", yes_no(prereq.hardware_ok)),
        ("SessionIsNotRemote", yes_no(prereq.not_remote)),
        ("CertEnrollment", prereq.governed_by),
    ]
    fields += _trust_specific_prerequisites(device, prereq)
    will = prereq.will_provision and (session is not None and session.prt)
    fields.append(("PreReqResult", "WillProvision" if will else "WillNotProvision"))
    return fields


def _trust_specific_prerequisites(device: Device, prereq: Prerequisites) -> list[Field]:
    fields: list[Field] = []
    if prereq.cert_policy:
        ready = bool(prereq.enrollment_ready)
        fields += [
            ("AdfsRefreshToken", yes_no(ready)),
            ("AdfsRaIsReady", yes_no(ready)),
            ("LogonCertTemplateReady", "YES ( StateReady )" if ready else "NO ( StateNotReady )"),
        ]
    elif prereq.cloud_tgt is not None:
        # The cloud-trust prerequisite: named CloudTGT before Windows 11 23H2, OnPremTGT since (windows-facts §1).
        fields.append(("OnPremTGT" if device.os.build >= 22631 else "CloudTGT", yes_no(prereq.cloud_tgt)))
    return fields


def _ngc_prerequisites_without_user(ctx: NativeContext) -> list[Field]:
    device = ctx.device
    view = ctx.lab.policy(device)
    hardware = (device.tpm.present and device.tpm.ready) or not view.require_security_device
    governed = "none"
    if view.cert_trust:
        governed = "mobile device management" if view.source == "mdm" else "enrollment authority"
    return [
        ("IsDeviceJoined", yes_no(device.azure_ad_joined)),
        ("IsUserAzureAD", "NO"),  # the admin/SYSTEM account has no Entra sign-in on this device
        ("PolicyEnabled", yes_no(view.enabled)),
        ("PostLogonEnabled", yes_no(view.post_logon_enabled)),
        ("DeviceEligible", yes_no(hardware)),
        # A WinRM network logon is a remote session for Hello provisioning; SYSTEM runs in session 0 locally.
        ("SessionIsNotRemote", yes_no(ctx.principal.kind is PrincipalKind.SYSTEM)),
        ("CertEnrollment", governed),
        ("PreReqResult", "WillNotProvision"),
    ]
