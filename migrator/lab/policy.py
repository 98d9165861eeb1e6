"""Windows Hello for Business policy as Windows evaluates it, from the registry of one device.

Sources (windows-facts §2; MS docs "Policy conflicts from multiple policy sources", PassportForWork CSP):

- Group Policy, computer: ``HKLM\\SOFTWARE\\Policies\\Microsoft\\PassportForWork`` (``Enabled``,
  ``UseCertificateForOnPremAuth``, ``UseCloudTrustForOnPremAuth``, ``RequireSecurityDevice``, ...).
- Group Policy, user: ``HKU\\<SID>\\SOFTWARE\\Policies\\Microsoft\\PassportForWork``: overrides the matching
  computer value (``UseCloudTrustForOnPremAuth`` is computer-only).
- MDM (Intune, PassportForWork CSP): ``HKLM\\SOFTWARE\\Microsoft\\Policies\\PassportForWork\\<TenantId>\\Device
  \\Policies`` (``UsePassportForWork``, ...), and per user ``...\\<TenantId>\\<UserSid>\\Policies``.

Precedence: when Group Policy configures Hello at all, it wins and the MDM values are ignored (MDMWinsOverGP
does not cover PassportForWork). Within the winning source, certificate trust wins over cloud Kerberos trust.
Hello enabled with neither trust policy means key trust.

This is written twice on purpose: here, as the lab's model of Windows, and in :mod:`migrator.facts`, as the
product reads the values a device reports. Each is the other's oracle (``tests/test_policy_oracle.py`` checks
that they agree on random values in every source), so do not merge them or import one from the other (the
product never imports the lab anyway): a change to the rules goes into both, each from the reference, and the
oracle test says whether they still agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from migrator.lab.registry import Registry

GPO_KEY = "HKLM\\SOFTWARE\\Policies\\Microsoft\\PassportForWork"
GPO_USER_SUBKEY = "SOFTWARE\\Policies\\Microsoft\\PassportForWork"
MDM_ROOT = "HKLM\\SOFTWARE\\Microsoft\\Policies\\PassportForWork"

Effective = Literal["cloud", "cert", "key", "none"]
Source = Literal["gpo", "mdm", "none"]

# The value names each source uses for the settings the migration cares about.
GPO_ENABLED = "Enabled"
MDM_ENABLED = "UsePassportForWork"
CERT_TRUST = "UseCertificateForOnPremAuth"
CLOUD_TRUST = "UseCloudTrustForOnPremAuth"
REQUIRE_SECURITY_DEVICE = "RequireSecurityDevice"
DISABLE_POST_LOGON = "DisablePostLogonProvisioning"
_RELEVANT = (GPO_ENABLED, MDM_ENABLED, CERT_TRUST, CLOUD_TRUST, REQUIRE_SECURITY_DEVICE, DISABLE_POST_LOGON)


def mdm_device_key(tenant_id: str) -> str:
    return f"{MDM_ROOT}\\{tenant_id}\\Device\\Policies"


def mdm_user_key(tenant_id: str, user_sid: str) -> str:
    return f"{MDM_ROOT}\\{tenant_id}\\{user_sid}\\Policies"


def gpo_user_key(user_sid: str) -> str:
    return f"HKU\\{user_sid}\\{GPO_USER_SUBKEY}"


_BY_FOLDED_NAME = {name.casefold(): name for name in _RELEVANT}


def _dwords(registry: Registry, path: str) -> dict[str, int]:
    # Windows matches registry value names without regard to case: "enabled" is the Enabled policy.
    out: dict[str, int] = {}
    for value in registry.values(path):
        data = value.coerced()
        name = _BY_FOLDED_NAME.get(value.name.casefold())
        if isinstance(data, int) and name is not None:
            out[name] = data
    return out


@dataclass(frozen=True)
class PolicyView:
    """The Hello policy one user (or the machine, without a user) gets on one device."""

    gpo: dict[str, int]  # computer values merged with the user's (user wins)
    mdm: dict[str, int]
    source: Source
    enabled: bool
    cert_trust: bool
    cloud_trust: bool
    require_security_device: bool
    post_logon_enabled: bool
    cert_trust_any_source: bool  # UseCertificateForOnPremAuth=1 anywhere, even where ignored
    notes: list[str] = field(default_factory=list)

    @property
    def effective(self) -> Effective:
        if not self.enabled:
            return "none"
        if self.cert_trust:
            return "cert"
        if self.cloud_trust:
            return "cloud"
        return "key"


def evaluate(registry: Registry, tenant_id: str | None, user_sid: str | None = None) -> PolicyView:
    """Evaluate the effective Hello policy from the registry, as Windows does at sign-in."""
    gpo_computer = _dwords(registry, GPO_KEY)
    gpo_user = _dwords(registry, gpo_user_key(user_sid)) if user_sid else {}
    gpo_user.pop(CLOUD_TRUST, None)  # computer-only setting: a user-scope value is not read
    gpo = {**gpo_computer, **gpo_user}
    mdm: dict[str, int] = {}
    if tenant_id:
        mdm = _dwords(registry, mdm_device_key(tenant_id))
        if user_sid:
            mdm_user = _dwords(registry, mdm_user_key(tenant_id, user_sid))
            mdm_user.pop(CLOUD_TRUST, None)
            mdm.update(mdm_user)
    notes: list[str] = []
    cert_any = gpo.get(CERT_TRUST) == 1 or mdm.get(CERT_TRUST) == 1
    if gpo:
        source: Source = "gpo"
        winning, enabled_name = gpo, GPO_ENABLED
        if mdm:
            notes.append("Group Policy configures Windows Hello for Business: MDM PassportForWork values ignored")
    elif mdm:
        source, winning, enabled_name = "mdm", mdm, MDM_ENABLED
    else:
        source, winning, enabled_name = "none", {}, GPO_ENABLED
    enabled = winning.get(enabled_name) == 1
    cert_trust = winning.get(CERT_TRUST) == 1
    cloud_trust = winning.get(CLOUD_TRUST) == 1
    if cert_trust and cloud_trust:
        notes.append("UseCertificateForOnPremAuth wins over UseCloudTrustForOnPremAuth: certificate trust applies")
    return PolicyView(
        gpo=gpo,
        mdm=mdm,
        source=source,
        enabled=enabled,
        cert_trust=cert_trust,
        cloud_trust=cloud_trust,
        require_security_device=winning.get(REQUIRE_SECURITY_DEVICE) == 1,
        post_logon_enabled=winning.get(DISABLE_POST_LOGON) != 1,
        cert_trust_any_source=cert_any,
        notes=notes,
    )
