"""The lab tenant's behaviour without HTTP: Hello keys follow the devices, Intune check-ins follow the groups."""

from __future__ import annotations

from collections.abc import Callable

from migrator.lab import policy
from migrator.lab.clock import VirtualClock
from migrator.lab.graph import PROFILES, GraphTenant, normal_key_id
from migrator.lab.graph.tenant import CHECK_IN_SECONDS
from migrator.lab.model import Device
from migrator.lab.windows import Lab
from tests.lab.conftest import TENANT, make_device


def _entra(device: Device) -> Device:
    device.device_id = "0f0e0d0c-0b0a-4909-8807-060504030201"
    return device


def _by_trust(trust: str) -> str:
    return next(p.group for p in PROFILES if p.trust == trust)


def test_provisioning_registers_a_key_and_deleting_the_container_leaves_it(lab_of: Callable[..., Lab]) -> None:
    """A new container's key is registered on the user; the deleted container's key stays registered."""
    device = _entra(make_device(trust="cert"))
    lab = lab_of(device)
    tenant = GraphTenant(lab)
    alice = device.users[0]
    old = normal_key_id(alice.container.key_id)  # type: ignore[union-attr]
    assert [m.id for m in tenant.hello_methods(alice)] == [old]
    lab.sign_in(device, alice)
    device.registry.delete_value(policy.GPO_KEY, "UseCertificateForOnPremAuth")
    device.registry.set_value(policy.GPO_KEY, "UseCloudTrustForOnPremAuth", 1, "REG_DWORD")
    assert lab.delete_hello_container(device, lab.user_principal(device, alice)).deleted
    assert [m.id for m in tenant.hello_methods(alice)] == [old]
    lab.sign_out(device, alice)
    assert lab.sign_in(device, alice).provisioned == "cloud"
    new = normal_key_id(alice.container.key_id)  # type: ignore[union-attr]
    assert [m.id for m in tenant.hello_methods(alice)] == [old, new]
    tenant.delete_hello_method(alice, old)
    assert [m.id for m in tenant.hello_methods(alice)] == [new]


def test_check_in_applies_the_profiles_of_the_device_groups(lab_of: Callable[..., Lab], clock: VirtualClock) -> None:
    """An enrolled device gets the cloud profile once in its group, at the next regular check-in (8 hours)."""
    device = _entra(make_device(trust="none"))
    device.mdm_enrolled = True
    key = policy.mdm_device_key(TENANT)
    device.registry.set_value(key, policy.MDM_ENABLED, 1, "REG_DWORD")
    device.registry.set_value(key, policy.CERT_TRUST, 1, "REG_DWORD")
    lab = lab_of(device)
    tenant = GraphTenant(lab)
    assert tenant.members(_by_trust("cert")) == [device]  # derived from the policy it already had
    tenant.start()
    object_id = tenant.device_object_id(device)
    tenant.add_member(_by_trust("cloud"), object_id)
    tenant.check_in(device)  # in both groups: the cert setting conflicts, the device keeps its value
    assert lab.policy(device).effective == "cert"
    tenant.remove_member(_by_trust("cert"), object_id)
    clock.advance(CHECK_IN_SECONDS * 2)
    assert tenant.syncs and lab.policy(device).effective == "cloud"
