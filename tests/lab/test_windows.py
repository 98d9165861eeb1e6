"""Windows behaviour of a lab device: sign-in, provisioning decision, container deletion, users over time."""

from __future__ import annotations

from collections.abc import Callable

from migrator.lab import policy
from migrator.lab.clock import VirtualClock
from migrator.lab.model import Device
from migrator.lab.windows import NGC_PROVIDER_KEY, Lab
from tests.lab.conftest import make_device, make_domain, make_user


def _enable_cloud_trust(device: Device, *, drop_cert: bool = True) -> None:
    if drop_cert:
        device.registry.delete_value(policy.GPO_KEY, "UseCertificateForOnPremAuth")
    device.registry.set_value(policy.GPO_KEY, "UseCloudTrustForOnPremAuth", 1, "REG_DWORD")


def _events(device: Device, event_id: int) -> list[str]:
    return [e.message for e in device.events if e.event_id == event_id]


def test_key_trust_moves_by_signing_in_with_a_dc(lab_of: Callable[..., Lab]) -> None:
    """Key trust: enable cloud trust, sign out and in with Hello and a DC → cloud trust, same key, no deletion."""
    device = make_device(trust="key")
    lab = lab_of(device)
    alice = device.users[0]
    key_id = alice.container.key_id  # type: ignore[union-attr]
    _enable_cloud_trust(device)
    outcome = lab.sign_in(device, alice)
    assert outcome.method == "hello"
    assert alice.container is not None and alice.container.trust == "cloud"
    assert alice.container.key_id == key_id
    session = device.session_of(alice)
    assert session is not None and session.partial_tgt and session.cloud_tgt and session.on_prem_tgt
    assert alice.counters.container_deletions == 0 and alice.counters.provisionings == 0


def test_key_trust_without_dc_silently_stays_key(lab_of: Callable[..., Lab]) -> None:
    """Hybrid key trust sign-in without DC line of sight falls back to key trust cached logon."""
    device = make_device(trust="key")
    device.dc_reachable = False
    lab = lab_of(device)
    alice = device.users[0]
    _enable_cloud_trust(device)
    outcome = lab.sign_in(device, alice)
    assert outcome.method == "hello" and not outcome.hello_failed
    assert alice.container is not None and alice.container.trust == "key"
    assert not device.session_of(alice).partial_tgt  # type: ignore[union-attr]


def test_certificate_trust_path_rebuilds_the_container(lab_of: Callable[..., Lab]) -> None:
    """Cert trust: policy switched, container deleted as the user, sign out/in → new cloud container and key."""
    device = make_device(trust="cert")
    lab = lab_of(device)
    alice = device.users[0]
    old_key = alice.container.key_id  # type: ignore[union-attr]
    lab.sign_in(device, alice)
    _enable_cloud_trust(device)
    outcome = lab.delete_hello_container(device, lab.user_principal(device, alice))
    assert outcome.deleted and outcome.key_id == old_key
    assert alice.container is None and alice.counters.container_deletions == 1
    lab.sign_out(device, alice)
    signed = lab.sign_in(device, alice)
    assert signed.method == "password"
    assert signed.provisioned == "cloud" and signed.provisioning_event == 358
    assert alice.container is not None and alice.container.trust == "cloud" and alice.container.key_id != old_key
    launched = _events(device, 358)[-1]
    assert "Cloud trust for on premise auth policy is enabled: Yes" in launched
    assert "User account has Cloud TGT: Yes" in launched
    # The next Hello unlock (with a DC) brings the cloud Kerberos tickets.
    assert lab.unlock(device, alice)
    session = device.session_of(alice)
    assert session is not None and session.logon_method == "hello" and session.cloud_tgt and session.on_prem_tgt


def test_deleting_with_cert_policy_left_on_reprovisions_cert_trust(lab_of: Callable[..., Lab]) -> None:
    """Certificate-trust policy still set: deletion only makes Windows provision certificate trust again."""
    device = make_device(trust="cert")
    lab = lab_of(device)
    alice = device.users[0]
    lab.sign_in(device, alice)
    _enable_cloud_trust(device, drop_cert=False)
    assert lab.delete_hello_container(device, lab.user_principal(device, alice)).deleted
    lab.sign_out(device, alice)
    outcome = lab.sign_in(device, alice)
    assert outcome.provisioned == "cert"
    assert "Machine is governed by enrollment authority policy." in _events(device, 358)[-1]
    assert alice.certificates and alice.certificates[-1].hello_key_id == alice.container.key_id  # type: ignore[union-attr]


def test_first_pin_sign_in_on_hybrid_without_dc_fails(lab_of: Callable[..., Lab]) -> None:
    """A new cloud container on a hybrid device cannot sign in without a DC: the user falls back to password."""
    device = make_device(trust="cert")
    lab = lab_of(device)
    alice = device.users[0]
    lab.sign_in(device, alice)
    _enable_cloud_trust(device)
    lab.delete_hello_container(device, lab.user_principal(device, alice))
    lab.sign_out(device, alice)
    lab.sign_in(device, alice)  # provisions cloud trust
    lab.sign_out(device, alice)
    lab.set_dc_reachable(device, False)
    outcome = lab.sign_in(device, alice)
    assert outcome.hello_failed and "0xC000005E" in outcome.hello_failure_reason
    assert outcome.method == "password" and alice.counters.hello_sign_in_failures == 1
    lab.sign_out(device, alice)
    lab.set_dc_reachable(device, True)
    assert lab.sign_in(device, alice).method == "hello"


def test_domain_without_entra_kerberos_blocks_provisioning(lab_of: Callable[..., Lab]) -> None:
    """Hybrid device, cloud trust policy, domain without the Entra Kerberos object → event 360, no container."""
    device = make_device(trust="cloud", users=[make_user("bob", 1102)])
    lab = lab_of(device, domains=[make_domain(entra_kerberos=False)])
    bob = device.users[0]
    outcome = lab.sign_in(device, bob)
    assert outcome.provisioning_event == 360 and bob.container is None
    message = _events(device, 360)[-1]
    assert message.startswith("Windows Hello for Business provisioning will not be launched.")
    assert "User account has Cloud TGT: No" in message


def test_deletion_as_admin_or_system_fails_and_changes_nothing(lab_of: Callable[..., Lab]) -> None:
    """certutil -deletehellocontainer from a network logon or SYSTEM answers NTE_PERM and deletes nothing."""
    device = make_device(trust="cert")
    lab = lab_of(device)
    alice = device.users[0]
    for principal in (lab.admin_principal(device), lab.system_principal()):
        outcome = lab.delete_hello_container(device, principal)
        assert not outcome.deleted and outcome.reason == "NTE_PERM" and outcome.hresult == 0x80090010
    assert alice.container is not None and alice.counters.container_deletions == 0


def test_deleting_twice_reports_no_keyset(lab_of: Callable[..., Lab]) -> None:
    """A second deletion finds no container (NTE_BAD_KEYSET) and the count stays at one."""
    device = make_device(trust="cert")
    lab = lab_of(device)
    alice = device.users[0]
    lab.sign_in(device, alice)
    principal = lab.user_principal(device, alice)
    assert lab.delete_hello_container(device, principal).deleted
    again = lab.delete_hello_container(device, principal)
    assert not again.deleted and again.reason == "NTE_BAD_KEYSET"
    assert alice.counters.container_deletions == 1


def test_old_build_ignores_cloud_trust_and_provisions_key(lab_of: Callable[..., Lab]) -> None:
    """Builds below the cloud trust minimum do not know the cloud trust policy: they provision key trust."""
    device = make_device(trust="cloud", users=[make_user("carol", 1103)], build=19044, ubr=1288)
    lab = lab_of(device)
    carol = device.users[0]
    outcome = lab.sign_in(device, carol)
    assert outcome.provisioned == "key"


def test_rdp_session_never_provisions(lab_of: Callable[..., Lab]) -> None:
    """Provisioning is not launched over Remote Desktop."""
    device = make_device(trust="cloud", users=[make_user("dave", 1104)])
    lab = lab_of(device)
    outcome = lab.sign_in(device, device.users[0], kind="rdp")
    assert outcome.provisioning_event == 360
    assert "User is not connected to the machine via Remote Desktop: No" in _events(device, 360)[-1]


def test_users_obey_prompts_after_their_delay(lab_of: Callable[..., Lab], clock: VirtualClock) -> None:
    """A prompted user signs out and back in after a delay; a 'never' user stays put."""
    alice, bob = make_user("alice", 1101, "key"), make_user("bob", 1102, "key")
    bob.behaviour.compliance = "never"
    alice.behaviour.delay_seconds = 60
    device = make_device(trust="key", users=[alice, bob])
    lab = lab_of(device)
    lab.sign_in(device, alice)
    lab.sign_in(device, bob)
    reached = lab.prompt(device, None, "Please sign out and back in.")
    assert {u.sam for u in reached} == {"alice", "bob"}
    clock.advance(3600)
    assert alice.counters.sign_outs == 1 and alice.counters.sign_ins == 2
    assert bob.counters.sign_outs == 0 and bob.counters.prompts_received == 1


def test_gpupdate_applies_domain_policy_only_with_a_dc(lab_of: Callable[..., Lab]) -> None:
    """gpupdate writes the domain's WHfB GPO values into the computer policy key when a DC answers."""
    domain = make_domain()
    domain.gpo_passport_policy = {"Enabled": 1, "UseCloudTrustForOnPremAuth": 1}
    device = make_device(trust="cert")
    lab = lab_of(device, domains=[domain])
    device.dc_reachable = False
    assert not lab.gpupdate(device)
    assert lab.policy(device).effective == "cert"
    device.dc_reachable = True
    assert lab.gpupdate(device)
    assert lab.policy(device).effective == "cloud"


def test_reboot_ends_sessions_and_users_come_back(lab_of: Callable[..., Lab], clock: VirtualClock) -> None:
    """shutdown /r ends every session; users sign back in after the restart."""
    device = make_device(trust="key")
    lab = lab_of(device)
    alice = device.users[0]
    lab.sign_in(device, alice)
    lab.reboot(device)
    assert device.sessions == [] and device.counters.reboots == 1
    clock.advance(3 * 3600)
    assert device.session_of(alice) is not None


def test_pin_provider_registry_follows_the_container(lab_of: Callable[..., Lab]) -> None:
    """The PIN credential provider key for a user exists exactly while the user has a container."""
    device = make_device(trust="cert")
    lab = lab_of(device)
    alice = device.users[0]
    lab.sign_in(device, alice)
    key = f"{NGC_PROVIDER_KEY}\\{alice.sid}"
    lab.delete_hello_container(device, lab.user_principal(device, alice))
    assert not device.registry.key_exists(key)
    lab.sign_out(device, alice)
    lab.sign_in(device, alice)
    assert device.registry.read(key, "LogonCredsAvailable") == 1


def test_devices_compare_and_copy_by_state_not_by_lock() -> None:
    """Two devices with the same state are equal, and a deep copy works and gets its own lock."""
    first, second = make_device(), make_device()
    assert first == second
    copy = first.model_copy(deep=True)
    assert copy == first and copy.lock is not first.lock
    with copy.lock:
        pass


def test_sign_in_writes_and_sign_out_removes_the_volatile_environment(lab_of: Callable[..., Lab]) -> None:
    """HKU\\<SID>\\Volatile Environment exists while the user is signed in (admin scripts read it)."""
    device = make_device(trust="key")
    lab = lab_of(device)
    alice = device.users[0]
    key = f"HKU\\{alice.sid}\\Volatile Environment"
    lab.sign_in(device, alice)
    assert device.registry.read(key, "USERNAME") == "alice"
    assert device.registry.read(key, "USERDOMAIN") == "CORP"
    lab.sign_out(device, alice)
    assert not device.registry.key_exists(key)
