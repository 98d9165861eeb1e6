"""Devices see accounts as the directory has them: token groups and who Entra Kerberos refuses follow `lab group`."""

from __future__ import annotations

from migrator.lab.clock import VirtualClock
from migrator.lab.directory.accounts import DirectoryAccounts
from migrator.lab.directory.build import TIER0_GROUP, build_directories
from migrator.lab.fleet import generate_fleet, parse_mix
from migrator.lab.runtime import new_lab
from migrator.lab.windows import token_groups


def _wired():  # type: ignore[no-untyped-def]
    fleet = generate_fleet(80, 21, parse_mix("key=50,cert=40,cloud=5,none=5"))
    lab = new_lab(fleet, VirtualClock(fleet.clock))
    directories = build_directories(fleet)
    lab.accounts = DirectoryAccounts(
        {k: d.tree for k, d in directories.items()}, {k: d.domain.sid for k, d in directories.items()}
    )
    return lab, directories


def test_the_generated_directory_agrees_with_the_fleet_s_privileged_flags_and_tokens() -> None:
    """For every domain user: never-revealed exactly when the fleet says privileged; the device token holds
    the same privileged groups (512, 572) as the fleet-only token."""
    lab, _ = _wired()
    checked = 0
    for device in lab.fleet.devices:
        for user in device.users:
            domain = lab.user_domain(user)
            if domain is None:
                continue
            if domain.entra_kerberos:
                assert lab.is_privileged(user) == user.privileged, user.qualified_name
            groups = set(lab.user_principal(device, user).groups)
            privileged_rids = {g.rsplit("-", 1)[1] for g in groups if g.rsplit("-", 1)[1] in ("512", "572")}
            expected = {g.rsplit("-", 1)[1] for g in token_groups(user) if g.rsplit("-", 1)[1] in ("512", "572")}
            assert privileged_rids == expected
            assert set(token_groups(user)) <= groups
            checked += 1
    assert checked > 50


def test_a_user_an_admin_adds_to_a_never_revealed_group_is_refused_a_partial_tgt() -> None:
    """`lab group CORP add "Tier0 Operators" <user>`: the user's token carries the group's SID and Entra
    Kerberos now refuses them, though the fleet never marked them privileged."""
    lab, directories = _wired()
    device, user = next((d, u) for d in lab.fleet.devices for u in d.users if u.domain == "CORP" and not u.privileged)
    tree = directories["corp.contoso.com"].tree
    group, member = tree.find_account(TIER0_GROUP), tree.find_sid(user.sid)
    assert group is not None and member is not None
    assert not lab.is_privileged(user)
    tree.add_member(group, member.dn)
    assert lab.is_privileged(user)
    tier0_sid = directories["corp.contoso.com"].domain.sid
    assert any(
        g.startswith(tier0_sid) and g.rsplit("-", 1)[1] not in ("512", "513", "572")
        for g in lab.user_principal(device, user).groups
    )
