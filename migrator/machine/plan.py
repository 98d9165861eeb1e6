"""The policy plan: which registry values the ``policy`` state writes, computed once from the preflight facts.

Where Hello policy lives (windows-facts §2; MS docs "PassportForWork CSP", "cloud Kerberos trust" deployment):
Group Policy in ``HKLM\\SOFTWARE\\Policies\\Microsoft\\PassportForWork`` (and per user under ``HKU\\<SID>``),
MDM in ``HKLM\\SOFTWARE\\Microsoft\\Policies\\PassportForWork\\<tenant>\\{Device|<SID>}\\Policies``.

* ``disable_cert_trust``: ``UseCertificateForOnPremAuth`` is removed (Not Configured) wherever it is 1 — GPO
  computer and user hives, MDM device and user scopes — because it wins over cloud trust from any of them;
* ``enable_cloud_trust``: the GPO computer key gets ``Enabled=1``, ``UseCloudTrustForOnPremAuth=1`` (a
  computer-only setting) and, when the playbook asks, ``RequireSecurityDevice=1``. Group Policy wins over MDM, so
  these values are then the device's Hello policy.

Only values that differ from what preflight read are planned; each entry keeps the value it replaces for the
audit log (rollback restores from the store's snapshot, which carries the registry type).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from migrator.facts import CERT_TRUST, CLOUD_TRUST, GPO_ENABLED, REQUIRE_SECURITY_DEVICE, DeviceFacts, dwords
from migrator.playbook import Playbook

GPO_KEY = "HKLM:\\SOFTWARE\\Policies\\Microsoft\\PassportForWork"
MDM_ROOT = "HKLM:\\SOFTWARE\\Microsoft\\Policies\\PassportForWork"


def gpo_user_key(sid: str) -> str:
    return f"Registry::HKEY_USERS\\{sid}\\SOFTWARE\\Policies\\Microsoft\\PassportForWork"


def mdm_key(tenant: str, scope: str) -> str:
    return f"{MDM_ROOT}\\{tenant}\\{scope}\\Policies"


@dataclass(frozen=True)
class PlanItem:
    """One registry write of the policy plan (``value`` None with ``remove``), and the value it replaces."""

    path: str
    name: str
    remove: bool
    value: int | None = None
    before: int | str | None = None


def _entry(path: str, name: str, before: Any, *, value: int | None = None) -> PlanItem:
    kept = before if isinstance(before, int | str) and not isinstance(before, bool) else None
    return PlanItem(path, name, remove=value is None, value=value, before=kept)


def policy_plan(facts: DeviceFacts, playbook: Playbook) -> list[PlanItem]:
    """The SetPolicy writes, in order (certificate trust goes first, as MS docs order the steps)."""
    plan: list[PlanItem] = []
    policy = facts.policy
    if playbook.policy.channel != "local":
        return plan

    def counts(tenant: str) -> bool:
        return facts.tenant_id is None or tenant.casefold() == facts.tenant_id.casefold()

    if playbook.has("disable_cert_trust"):
        if dwords(policy.gpo_computer).get(CERT_TRUST) == 1:
            plan.append(_entry(GPO_KEY, CERT_TRUST, 1))
        for sid, values in sorted(policy.gpo_users.items()):
            if dwords(values).get(CERT_TRUST) == 1:
                plan.append(_entry(gpo_user_key(sid), CERT_TRUST, 1))
        for tenant, values in sorted(policy.mdm_device.items()):
            if counts(tenant) and dwords(values).get(CERT_TRUST) == 1:
                plan.append(_entry(mdm_key(tenant, "Device"), CERT_TRUST, 1))
        for tenant, by_user in sorted(policy.mdm_users.items()):
            for sid, values in sorted(by_user.items()):
                if counts(tenant) and dwords(values).get(CERT_TRUST) == 1:
                    plan.append(_entry(mdm_key(tenant, sid), CERT_TRUST, 1))
    if playbook.has("enable_cloud_trust"):
        wanted = {GPO_ENABLED: 1, CLOUD_TRUST: 1}
        if playbook.policy.require_security_device:
            wanted[REQUIRE_SECURITY_DEVICE] = 1
        # Value names compare case-insensitively, as the registry does (facts.dwords).
        raw = {name.casefold(): data for name, data in policy.gpo_computer.items()}
        current_values = dwords(policy.gpo_computer)
        for name, value in wanted.items():
            if current_values.get(name) != value:
                plan.append(_entry(GPO_KEY, name, raw.get(name.casefold()), value=value))
    return plan


# The wave settings list of devices whose local policy writes a GPO will undo (reports show it).
GPO_OVERWRITES = "gpo_overwrites_local_writes"


def gpo_overwrite_warning(facts: DeviceFacts, plan: Sequence[PlanItem]) -> str | None:
    """A warning when the plan writes to the computer policy key and Group Policy manages that key (RSoP of the
    last processing, :attr:`~migrator.facts.PolicyFacts.gpo_managed`): the registry client-side extension
    rewrites it at the next background refresh (every 90 minutes plus up to 30, MS docs "Group Policy background
    refresh"), so the local write does not last."""
    managed = facts.policy.gpo_managed
    if not managed or not any(item.path == GPO_KEY for item in plan):
        return None
    gpos = ", ".join(repr(g) for g in sorted(set(managed.values())))
    return (
        f"{GPO_KEY.removeprefix('HKLM:')} is managed by GPO {gpos} (it sets {', '.join(sorted(managed))}): Group "
        "Policy rewrites it at the next refresh (every 90-120 minutes) and undoes the local channel's writes; "
        "migrate GPO-managed devices with the ad-group channel, or change the GPO"
    )


def snapshot_entries(plan: Sequence[PlanItem]) -> tuple[tuple[str, str], ...]:
    """What snapshot_policy reads: every planned value, plus the GPO trust values rollback may need."""
    entries: list[tuple[str, str]] = [
        (GPO_KEY, n) for n in (GPO_ENABLED, CLOUD_TRUST, CERT_TRUST, REQUIRE_SECURITY_DEVICE)
    ]
    for item in plan:
        pair = (item.path, item.name)
        if pair not in entries:
            entries.append(pair)
    return tuple(entries)
