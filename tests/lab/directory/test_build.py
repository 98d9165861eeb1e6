"""The directory generated from a fleet: seeded, consistent with the fleet, quick enough for `lab up`."""

from __future__ import annotations

import json
import time
from pathlib import Path

from migrator.lab.directory.build import CLOUD_TRUST_GROUP, build_directories, group_policy_engine
from migrator.lab.directory.dit import Directory, sid_from_bytes
from migrator.lab.fleet import generate_fleet, parse_mix
from migrator.lab.fleetfile import load_fleet, save_fleet

MIX = parse_mix("key=50,cert=40,cloud=5,none=5")


def _snapshot(tree: Directory) -> list[tuple[str, list[tuple[str, list[str | bytes]]]]]:
    return [(e.dn, [(a.name, list(a.values)) for a in e.attributes()]) for e in tree.subtree(tree.base_dn)]


def test_same_fleet_same_directory() -> None:
    """Two builds from the same fleet are identical, attribute for attribute; another seed differs."""
    fleet = generate_fleet(40, 9, MIX)
    first, second = build_directories(fleet), build_directories(fleet)
    for key in first:
        assert _snapshot(first[key].tree) == _snapshot(second[key].tree)
    other = build_directories(generate_fleet(40, 10, MIX))
    assert _snapshot(other["corp.contoso.com"].tree) != _snapshot(first["corp.contoso.com"].tree)


def test_every_domain_joined_device_and_domain_user_is_in_its_domain() -> None:
    """Computers of joined devices and the users of each domain are there, with the fleet's SIDs; SIDs are unique."""
    fleet = generate_fleet(80, 4, MIX)
    directories = build_directories(fleet)
    for device in fleet.devices:
        if device.domain:
            tree = directories[device.domain.casefold()].tree
            assert tree.find_account(device.name) is not None, device.name
        for user in device.users:
            domain = next((d for d in fleet.domains if d.netbios == user.domain), None)
            if domain is None:
                continue
            entry = directories[domain.dns_name.casefold()].tree.find_account(user.sam)
            assert entry is not None and sid_from_bytes(entry.first("objectSid")) == user.sid  # type: ignore[arg-type]
    for directory in directories.values():
        sids = [e.first("objectSid") for e in directory.tree.subtree(directory.tree.base_dn) if e.has("objectSid")]
        assert len(sids) == len(set(sids))


def test_a_large_fleet_s_directory_builds_fast() -> None:
    """1,000 devices: the directories build well within `lab up`'s budget."""
    fleet = generate_fleet(1000, 1, MIX)
    started = time.perf_counter()
    build_directories(fleet)
    assert time.perf_counter() - started < 3.0


def test_admin_changes_survive_a_save_and_a_restart(tmp_path: Path) -> None:
    """Membership and GPO edits are kept in the fleet file (directory_changes) and replayed onto the directory
    generated at the next start; a fleet nobody changed keeps its former file form."""
    fleet = generate_fleet(20, 5, MIX)
    untouched = save_fleet(fleet, tmp_path / "untouched.json")
    assert "directory_changes" not in json.loads(untouched.read_text())
    directories = build_directories(fleet)
    tree = directories["fabrikam.local"].tree
    group = tree.find_account(CLOUD_TRUST_GROUP)
    admin = tree.find_account("migrator-admin")
    assert group is not None and admin is not None
    tree.add_member(group, admin.dn)
    engine = group_policy_engine(directories, fleet.directory_changes)
    engine.set_value("FABRIKAM", "Windows Hello for Business - key trust", "UseCloudTrustForOnPremAuth", 1)
    reloaded = load_fleet(save_fleet(fleet, tmp_path / "fleet.json"))
    again = build_directories(reloaded)
    group_again = again["fabrikam.local"].tree.find_account(CLOUD_TRUST_GROUP)
    assert group_again is not None and admin.dn in group_again.get("member")
    key_gpo = next(p for p in again["fabrikam.local"].policies if p.name.endswith("key trust"))
    assert key_gpo.values["UseCloudTrustForOnPremAuth"] == 1
