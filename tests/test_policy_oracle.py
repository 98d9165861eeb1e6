"""facts.py and lab/policy.py read the Hello policy precedence alike on any registry: each is the other's oracle.

``migrator.facts.evaluate_policy`` reads the raw values a device reports; ``migrator.lab.policy.evaluate`` reads
the lab device's registry. They are written apart on purpose (see both module docstrings). Here random values
in every source (GPO computer and user, MDM device and user of the device's tenant, and of a stale tenant) go
into one lab registry; the product sees them as collect_facts.ps1 reports them (each key's values as
Get-ItemProperty returns them), and both must give the same effective policy, per device and per user, and
the same "certificate trust set anywhere" answer. The device is joined and MDM enrolled: the product is told its
tenant (dsregcmd names it) and the lab reads that tenant's MDM values (it reads none on a device not enrolled).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import event, given, note, settings
from hypothesis import strategies as st

from migrator import facts
from migrator.lab import policy
from migrator.lab.registry import Registry, RegType

TENANT = "8e2a1b4c-3f5d-4e6a-9b7c-1d2e3f4a5b6c"
STALE_TENANT = "0b9f3c2e-1111-4222-8333-944455556666"  # an earlier join's key: Windows does not read it
SIDS = ("S-1-5-21-1-2-3-1101", "S-1-5-21-1-2-3-1102", "S-1-5-21-1-2-3-1103")

# Every name either reader knows, in both sources' spellings, and one neither decides on.
NAMES = (*facts.POLICY_NAMES, "EnablePinRecovery")
Values = dict[str, tuple[RegType, Any]]

# Mostly what policies write (DWORD 1 or 0), sometimes what they do not (2, a QWORD, a string).
_value = st.sampled_from(
    [("REG_DWORD", 1)] * 4
    + [("REG_DWORD", 0)] * 2
    + [("REG_DWORD", 2), ("REG_QWORD", 1), ("REG_QWORD", 0), ("REG_SZ", "1")]
)
# A source is absent (None, a third of the time), present with no values ({}), or holds some of the names, each
# spelled as Group Policy writes it or in another case (registry value names are case-insensitive).


@st.composite
def _some_values(draw: st.DrawFn) -> Values:
    values: Values = {}
    for name in NAMES:
        if draw(st.booleans()):
            spelling = draw(st.sampled_from([name, name, name.lower(), name.upper()]))
            values[spelling] = draw(_value)
    return values


_values = _some_values()
_source = st.one_of(st.none(), _values, _values)


@dataclass(frozen=True)
class Sources:
    """What a device's registry holds in each policy source (None: the key does not exist)."""

    gpo_computer: Values | None
    gpo_users: dict[str, Values | None]
    mdm_device: Values | None
    mdm_users: dict[str, Values | None]
    stale_mdm_device: Values | None
    stale_mdm_user: Values | None


@st.composite
def sources(draw: st.DrawFn) -> Sources:
    users = draw(st.lists(st.sampled_from(SIDS), min_size=1, max_size=3, unique=True))
    return Sources(
        gpo_computer=draw(_source),
        gpo_users={sid: draw(_source) for sid in users},
        mdm_device=draw(_source),
        mdm_users={sid: draw(_source) for sid in users},
        stale_mdm_device=draw(_source),
        stale_mdm_user=draw(_source),
    )


def _write(registry: Registry, path: str, values: Values | None) -> None:
    if values is None:
        return
    registry.create_key(path)
    for name, (reg_type, data) in values.items():
        registry.set_value(path, name, data, reg_type)


def _registry(drawn: Sources) -> Registry:
    registry = Registry()
    _write(registry, policy.GPO_KEY, drawn.gpo_computer)
    _write(registry, policy.mdm_device_key(TENANT), drawn.mdm_device)
    _write(registry, policy.mdm_device_key(STALE_TENANT), drawn.stale_mdm_device)
    _write(registry, policy.mdm_user_key(STALE_TENANT, SIDS[0]), drawn.stale_mdm_user)
    for sid, values in drawn.gpo_users.items():
        _write(registry, policy.gpo_user_key(sid), values)
    for sid, values in drawn.mdm_users.items():
        _write(registry, policy.mdm_user_key(TENANT, sid), values)
    return registry


def _read(registry: Registry, path: str) -> dict[str, Any] | None:
    """One key's values as collect_facts.ps1 reports them (Read-RegistryValues), None when the key is missing."""
    if registry.get_key(path) is None:
        return None
    return {value.name: value.coerced() for value in registry.values(path)}


def _reported(registry: Registry, users: list[str]) -> facts.PolicyFacts:
    """What the product computes from the values the device reports (collect_facts.ps1, then evaluate_policy)."""
    gpo_users = {sid: v for sid in users if (v := _read(registry, policy.gpo_user_key(sid))) is not None}
    mdm = []
    for tenant_key in registry.subkeys(policy.MDM_ROOT):
        tenant = tenant_key.rsplit("\\", 1)[1]
        for scope_key in registry.subkeys(tenant_key):
            values = _read(registry, scope_key + "\\Policies")
            if values is not None:
                mdm.append((tenant, scope_key.rsplit("\\", 1)[1], values))
    return facts.evaluate_policy(
        _read(registry, policy.GPO_KEY) or {}, gpo_users, mdm, tenant_id=TENANT, user_sids=users
    )


@settings(derandomize=True, max_examples=500, deadline=None, print_blob=True)
@given(sources())
def test_product_and_lab_agree_on_the_effective_policy(drawn: Sources) -> None:
    """Device view, every user's view and 'certificate trust anywhere' are the same in facts.py and lab/policy.py."""
    registry = _registry(drawn)
    users = list(drawn.gpo_users)
    product = _reported(registry, users)
    machine = policy.evaluate(registry, TENANT)
    per_user = {sid: policy.evaluate(registry, TENANT, sid) for sid in users}
    event(f"device: {machine.effective} from {machine.source}")  # --hypothesis-show-statistics: coverage
    event(f"a user differs from the device: {any(v.effective != machine.effective for v in per_user.values())}")
    event(f"certificate trust set somewhere: {product.cert_trust_any_source}")
    note(f"product: {product!r}")
    note(f"lab, device: {machine!r}")
    note(f"lab, users: { {sid: v.effective for sid, v in per_user.items()} }")

    assert (product.source, product.effective) == (machine.source, machine.effective)
    assert (product.enabled, product.cert_trust, product.cloud_trust) == (
        machine.enabled,
        machine.cert_trust,
        machine.cloud_trust,
    )
    assert (product.require_security_device, product.post_logon_enabled) == (
        machine.require_security_device,
        machine.post_logon_enabled,
    )
    assert product.user_effective == {sid: view.effective for sid, view in per_user.items()}
    # The product's answer is device-wide (the delete guard's); the lab answers per view: the device's and
    # each user's, together, cover every source.
    lab_anywhere = machine.cert_trust_any_source or any(v.cert_trust_any_source for v in per_user.values())
    assert product.cert_trust_any_source == lab_anywhere
