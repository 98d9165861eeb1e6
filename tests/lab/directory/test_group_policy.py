"""Policy comes from the directory: GPOs linked to OUs, filtered by group, their union applied at gpupdate, at
boot and by the background refresh, overwriting local writes; moving a computer between filter groups moves it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from migrator.cli import app
from migrator.lab import policy
from migrator.lab.clock import VirtualClock
from migrator.lab.directory.build import (
    CLOUD_TRUST_GROUP,
    HELLO_GPO_GROUP,
    DomainDirectory,
    build_directories,
    group_policy_engine,
)
from migrator.lab.directory.grouppolicy import GroupPolicyEngine
from migrator.lab.fleet import generate_fleet, parse_mix
from migrator.lab.model import Device
from migrator.lab.runtime import LabPorts, LabRuntime, new_lab
from migrator.lab.truth import device_truth
from migrator.lab.windows import Lab
from tests.loopback import free_addresses

FABRIKAM = "fabrikam.local"
KEY_GPO = "Windows Hello for Business - key trust"
CLOUD_GPO = "Windows Hello for Business - cloud Kerberos trust"


def _lab(refresh: bool = True) -> tuple[Lab, VirtualClock, dict[str, DomainDirectory], GroupPolicyEngine]:
    fleet = generate_fleet(80, 21, parse_mix("key=50,cert=40,cloud=5,none=5"))
    clock = VirtualClock(fleet.clock)
    lab = new_lab(fleet, clock)
    directories = build_directories(fleet)
    engine = group_policy_engine(directories)
    lab.group_policy = engine
    lab.gpo_background_refresh = refresh
    for device in fleet.devices:
        lab.remember_group_policy(device)
    lab.start_simulation()
    return lab, clock, directories, engine


def _fabrikam_device(lab: Lab, directories: dict[str, DomainDirectory]) -> Device:
    tree = directories[FABRIKAM].tree
    group = tree.find_account(HELLO_GPO_GROUP)
    assert group is not None
    members = {str(dn).split(",")[0].removeprefix("CN=") for dn in group.get("member")}
    return next(d for d in lab.fleet.devices if d.name in members and not d.vpn_only)


def _move(directories: dict[str, DomainDirectory], device: Device, source: str | None, target: str | None) -> None:
    tree = directories[FABRIKAM].tree
    computer = tree.find_account(device.name)
    assert computer is not None
    if source:
        group = tree.find_account(source)
        assert group is not None
        tree.remove_member(group, computer.dn)
    if target:
        group = tree.find_account(target)
        assert group is not None
        tree.add_member(group, computer.dn)


def _gpo_values(device: Device) -> dict[str, object]:
    return {v.name: v.data for v in device.registry.values(policy.GPO_KEY)}


def test_a_refresh_of_an_unchanged_directory_changes_nothing() -> None:
    """The generated directory says what the fleet's registries hold: gpupdate everywhere is a no-op."""
    lab, _, _, _ = _lab(refresh=False)
    before = {d.name: d.registry.model_dump() for d in lab.fleet.devices}
    for device in lab.fleet.devices:
        if device.dc_reachable:
            lab.gpupdate(device)
    assert {d.name: d.registry.model_dump() for d in lab.fleet.devices} == before


def test_moving_a_computer_between_filter_groups_moves_its_policy_at_the_next_background_refresh() -> None:
    """Out of the key-trust GPO's group, into the cloud-trust one: nothing changes until the background refresh
    (90 to 120 virtual minutes), then the device's effective policy is cloud trust."""
    lab, clock, directories, _ = _lab()
    device = _fabrikam_device(lab, directories)
    assert lab.policy(device).effective == "key"
    _move(directories, device, HELLO_GPO_GROUP, CLOUD_TRUST_GROUP)
    clock.advance(60)
    assert lab.policy(device).effective == "key"  # not before the refresh
    clock.advance(2 * 3600)
    assert lab.policy(device).effective == "cloud"
    assert _gpo_values(device)[policy.CLOUD_TRUST] == 1
    truth = device_truth(lab, device)["group_policy"]
    assert CLOUD_TRUST_GROUP in truth["groups"] and HELLO_GPO_GROUP not in truth["groups"]
    assert truth["gpos"] == [CLOUD_GPO]


def test_a_local_write_to_a_gpo_managed_value_is_overwritten_at_the_next_refresh() -> None:
    """An admin's local registry write to a value a GPO sets lasts until the next background refresh."""
    lab, clock, directories, _ = _lab()
    device = _fabrikam_device(lab, directories)
    device.registry.set_value(policy.GPO_KEY, policy.GPO_ENABLED, 0, "REG_DWORD")
    device.registry.set_value(policy.GPO_KEY, policy.CLOUD_TRUST, 1, "REG_DWORD")
    assert _gpo_values(device)[policy.GPO_ENABLED] == 0
    clock.advance(2 * 3600)
    assert _gpo_values(device) == {policy.GPO_ENABLED: 1, policy.REQUIRE_SECURITY_DEVICE: 1}


def test_effective_policy_is_the_union_of_the_gpos_that_apply() -> None:
    """In both filter groups, a computer gets the key-trust GPO's values and the cloud-trust GPO's, at gpupdate."""
    lab, _, directories, _ = _lab(refresh=False)
    device = _fabrikam_device(lab, directories)
    _move(directories, device, None, CLOUD_TRUST_GROUP)
    assert lab.gpupdate(device)
    assert _gpo_values(device) == {
        policy.GPO_ENABLED: 1,
        policy.REQUIRE_SECURITY_DEVICE: 1,
        policy.CLOUD_TRUST: 1,
    }
    assert set(lab.applied_policy[device.name].gpos) == {KEY_GPO, CLOUD_GPO}


def test_a_gpo_that_stops_applying_takes_its_values_with_it_and_boot_applies_policy() -> None:
    """Out of every filter group, the GPO's values go at the next policy processing, here the boot."""
    lab, _, directories, _ = _lab(refresh=False)
    device = _fabrikam_device(lab, directories)
    _move(directories, device, HELLO_GPO_GROUP, None)
    lab.reboot(device)
    assert _gpo_values(device) == {}
    assert lab.policy(device).effective == "none"


def test_editing_a_gpo_reaches_its_computers_at_gpupdate() -> None:
    """`lab gpo set` edits the GPO (as GPMC would); gpupdate brings the value; --remove takes it away."""
    lab, _, directories, engine = _lab(refresh=False)
    device = _fabrikam_device(lab, directories)
    engine.set_value(FABRIKAM, KEY_GPO, policy.CLOUD_TRUST, 1)
    lab.gpupdate(device)
    assert lab.policy(device).effective == "cloud"
    engine.set_value(FABRIKAM, KEY_GPO, policy.CLOUD_TRUST, None)
    lab.gpupdate(device)
    assert policy.CLOUD_TRUST not in _gpo_values(device)


def test_user_gpos_follow_the_user_s_group() -> None:
    """The user GPO (User Configuration) filtered to a group writes the user's hive policy for its members."""
    lab, _, directories, _ = _lab(refresh=False)
    with_hive = [
        (d, u)
        for d in lab.fleet.devices
        for u in d.users
        if any(True for _ in d.registry.values(policy.gpo_user_key(u.sid)))
    ]
    if not with_hive:
        pytest.skip("this fleet has no user-hive Hello policy")
    device, user = with_hive[0]
    domain = lab.domain_of(device)
    assert domain is not None
    tree = next(d.tree for d in directories.values() if d.domain.netbios == user.domain)
    group, member = tree.find_account("Hello Certificate Users"), tree.find_sid(user.sid)
    assert group is not None and member is not None
    tree.remove_member(group, member.dn)
    lab.gpupdate(device)
    assert list(device.registry.values(policy.gpo_user_key(user.sid))) == []


def test_lab_gpo_and_lab_group_commands_on_a_running_lab(tmp_path: Path) -> None:
    """`lab gpo list|show|set` and `lab group` against `lab up`; inspect shows groups and GPOs."""
    fleet = generate_fleet(6, 21, parse_mix("key=50,cert=40,cloud=5,none=5"))
    for device, address in zip(fleet.devices, free_addresses(6), strict=True):
        device.address = address
    runtime = LabRuntime(fleet, tmp_path / "lab", speed=60.0, ports=LabPorts(http=0, https=0, ldap=0, ldaps=0))
    runtime.start()
    inventory = tmp_path / "lab" / "inventory.yaml"
    runtime.write_inventory(inventory)
    runner = CliRunner()
    try:
        listed = runner.invoke(app, ["lab", "gpo", "FABRIKAM", "list", "--inventory", str(inventory)])
        assert listed.exit_code == 0, listed.output
        assert KEY_GPO in listed.output and "Hello Policy Computers" in listed.output
        shown = runner.invoke(app, ["lab", "gpo", "fabrikam.local", "show", CLOUD_GPO, "--inventory", str(inventory)])
        assert shown.exit_code == 0 and "OU=Workstations,DC=fabrikam,DC=local" in shown.output
        args = ["lab", "gpo", "FABRIKAM", "set", KEY_GPO, "--value", "DisablePostLogonProvisioning=1"]
        edited = runner.invoke(app, [*args, "--inventory", str(inventory)])
        assert edited.exit_code == 0 and '"DisablePostLogonProvisioning": 1' in edited.output
        removed = runner.invoke(
            app, ["lab", "gpo", "FABRIKAM", "set", KEY_GPO, "--remove", "Nope", "--inventory", str(inventory)]
        )
        assert removed.exit_code == 2 and "does not set" in removed.output
        inspected = runner.invoke(app, ["lab", "inspect", "--json", "--inventory", str(inventory)])
        assert inspected.exit_code == 0
        assert '"group_policy"' in inspected.output and '"gpos_at_next_refresh"' in inspected.output
    finally:
        runtime.stop()


def test_lab_group_moves_a_running_device_s_policy_at_its_background_refresh(tmp_path: Path) -> None:
    """End to end: `lab up` with background refresh (fast clock), `lab group` moves a FABRIKAM computer from the
    key-trust GPO's group to the cloud-trust one, and `lab inspect` shows cloud trust after its next refresh."""
    fleet = generate_fleet(80, 21, parse_mix("key=50,cert=40,cloud=5,none=5"))
    for device, address in zip(fleet.devices, free_addresses(80), strict=True):
        device.address = address
    runtime = LabRuntime(
        fleet, tmp_path / "lab", speed=7200.0, ports=LabPorts(http=0, https=0, ldap=0, ldaps=0), gpo_refresh=True
    )
    device = _fabrikam_device(runtime.lab, runtime.directories)
    runtime.start()
    inventory = tmp_path / "lab" / "inventory.yaml"
    runtime.write_inventory(inventory)
    runner = CliRunner()
    base = ["--inventory", str(inventory)]
    try:
        for action, group in (("remove", HELLO_GPO_GROUP), ("add", CLOUD_TRUST_GROUP)):
            moved = runner.invoke(app, ["lab", "group", "FABRIKAM", action, group, device.name, *base])
            assert moved.exit_code == 0, moved.output
        deadline = time.monotonic() + 20  # 120 virtual minutes are 1 s at this speed
        effective = ""
        while time.monotonic() < deadline:
            shown = runner.invoke(app, ["lab", "inspect", device.name, "--json", *base])
            effective = json.loads(shown.output)["devices"][0]["policy"]["effective"]
            if effective == "cloud":
                break
            time.sleep(0.2)
        assert effective == "cloud"
        truth = json.loads(runner.invoke(app, ["lab", "inspect", device.name, "--json", *base]).output)
        assert truth["devices"][0]["group_policy"]["gpos"] == [CLOUD_GPO]
    finally:
        runtime.stop()


def test_gpupdate_target_applies_one_side_only() -> None:
    """`gpupdate /target:computer` leaves user policy as it was, `/target:user` leaves computer policy (a local
    write to a GPO-managed computer value survives it), and a plain gpupdate applies both."""
    lab, _, directories, _ = _lab(refresh=False)
    with_hive = [
        (d, u)
        for d in lab.fleet.devices
        for u in d.users
        if any(True for _ in d.registry.values(policy.gpo_user_key(u.sid))) and _gpo_values(d)
    ]
    if not with_hive:
        pytest.skip("this fleet has no device with both computer and user-hive Hello policy")
    device, user = with_hive[0]
    tree = next(d.tree for d in directories.values() if d.domain.netbios == user.domain)
    group, member = tree.find_account("Hello Certificate Users"), tree.find_sid(user.sid)
    assert group is not None and member is not None
    tree.remove_member(group, member.dn)
    name = next(iter(_gpo_values(device)))
    device.registry.set_value(policy.GPO_KEY, name, 7, "REG_DWORD")  # a local write to a GPO-managed value

    assert lab.gpupdate(device, users=False)
    assert list(device.registry.values(policy.gpo_user_key(user.sid))) != []
    assert _gpo_values(device)[name] != 7
    device.registry.set_value(policy.GPO_KEY, name, 7, "REG_DWORD")
    assert lab.gpupdate(device, computer=False)
    assert list(device.registry.values(policy.gpo_user_key(user.sid))) == []
    assert _gpo_values(device)[name] == 7
    assert lab.gpupdate(device)
    assert _gpo_values(device)[name] != 7
