"""The ad-group policy channel against the lab's domain controllers: one modify per group and domain per batch,
journalled and audited, AD's "already so" answers settled per computer, in-doubt changes resolved by re-reading,
rollback of memberships, and missing groups or computer accounts refused before anything changes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from migrator.directory.client import open_ldap_connection
from migrator.directory.knowledge import read_directory
from migrator.directory.settings import DirectoryTarget
from migrator.engine.channels import MIGRATE, AdGroupChannel
from migrator.errors import InputError
from migrator.inventory import Inventory, load_inventory
from migrator.lab.directory.build import CLOUD_TRUST_GROUP, HELLO_GPO_GROUP
from migrator.playbook import PolicySettings
from migrator.remote.credentials import Credentials
from migrator.store import Store, content_hash
from tests.directory.conftest import CREDENTIALS, write_inventory
from tests.lab.directory.conftest import RunningDirectory, seeded_directory

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

EMEA = "emea.corp.contoso.com"
POLICY = PolicySettings(channel="ad-group", cloud_trust_group=CLOUD_TRUST_GROUP, cert_trust_group=HELLO_GPO_GROUP)


@pytest.fixture
def dcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDirectory]:
    """A fresh set of lab DCs per test (each test changes memberships) from a seeded 40-device fleet."""
    with seeded_directory(tmp_path_factory.mktemp("dc"), devices=40) as running:
        yield running


class Spy:
    """A connection factory that records every modify (DN and values) the product sends, and can act first."""

    def __init__(self) -> None:
        self.modifies: list[tuple[str, dict[str, Any]]] = []
        self.before_modify: Callable[[str], None] | None = None

    def __call__(self, target: DirectoryTarget, credentials: Credentials) -> Any:
        connection = open_ldap_connection(target, credentials)
        real = connection.modify

        def modify(dn: str, changes: dict[str, Any], controls: Any = None) -> Any:
            if self.before_modify is not None:
                self.before_modify(dn)
            self.modifies.append((dn, changes))
            return real(dn, changes, controls)

        connection.modify = modify
        return connection


def _groups_of(dcs: RunningDirectory, domain: str, device: str) -> set[str]:
    tree = dcs.directory(domain).tree
    entry = tree.find_account(f"{device}$")
    assert entry is not None
    return {str(dn).split(",", 1)[0].removeprefix("CN=") for dn in entry.get("memberOf")}


def _devices(dcs: RunningDirectory, domain: str) -> list[str]:
    return [d.name for d in dcs.fleet.devices if d.domain == domain]


def _setup(dcs: RunningDirectory, tmp_path: Path, devices: list[str]) -> tuple[Store, Inventory]:
    inventory = write_inventory(dcs, tmp_path)
    store = Store.open(tmp_path)
    store.create_wave("w", playbook_name="ad-group", playbook_hash=content_hash("x"), change_ticket="CHG-1")
    store.enroll("w", devices)
    for device in devices:  # preflight found each on a path the playbook takes: held before its policy step
        store.transition(device, "pending", "policy", "preflight_done")
    return store, inventory


def _channel(
    store: Store, inventory: Inventory, spy: Spy | None = None, policy: PolicySettings = POLICY
) -> AdGroupChannel:
    knowledge = read_directory(inventory, CREDENTIALS)
    return AdGroupChannel(
        policy,
        inventory,
        CREDENTIALS,
        store=store,
        wave="w",
        knowledge=knowledge,
        connection_factory=spy or open_ldap_connection,
    )


def test_a_batch_is_one_modify_per_group_and_domain(dcs: RunningDirectory, tmp_path: Path) -> None:
    """Every computer of a two-domain batch ends in the cloud trust group and out of the certificate trust group,
    with one LDAP modify per group per domain holding every value; intent and outcome are journalled and audited
    (change ticket included) and the audit chain verifies."""
    corp = _devices(dcs, "corp.contoso.com")[:6]
    emea = _devices(dcs, EMEA)[:6]
    store, inventory = _setup(dcs, tmp_path, corp + emea)
    was_in_cert = {d for d in emea if HELLO_GPO_GROUP in _groups_of(dcs, EMEA, d)}
    assert was_in_cert, "the EMEA devices of the seeded fleet get their certificate trust policy from the GPO"
    spy = Spy()
    _channel(store, inventory, spy).start_batch(0, corp + emea)
    for domain, names in (("corp.contoso.com", corp), (EMEA, emea)):
        for name in names:
            groups = _groups_of(dcs, domain, name)
            assert CLOUD_TRUST_GROUP in groups and HELLO_GPO_GROUP not in groups, (domain, name)
    by_group = [(dn.split(",", 1)[0], len(next(iter(changes.values()))[0][1])) for dn, changes in spy.modifies]
    assert sorted(by_group) == sorted(
        [(f"CN={CLOUD_TRUST_GROUP}", 6), (f"CN={CLOUD_TRUST_GROUP}", 6), (f"CN={HELLO_GPO_GROUP}", len(was_in_cert))]
    )
    entries = store.directory_changes("w")
    assert [(e.domain, e.purpose, e.status) for e in entries] == [
        ("corp.contoso.com", MIGRATE, "done"),
        (EMEA, MIGRATE, "done"),
    ]
    emea_entry = entries[1]
    assert {n for n, roles in emea_entry.intent["before"].items() if roles["cert"]} == was_in_cert  # type: ignore[union-attr]
    actions = [a.action for a in store.audit_entries()]
    assert "ad-group migrate intended: batch 1, emea.corp.contoso.com" in actions
    assert "ad-group migrate done: batch 1, emea.corp.contoso.com" in actions
    assert all(a.change_ticket == "CHG-1" for a in store.audit_entries() if a.action.startswith("ad-group"))
    assert store.verify_audit().ok
    # A resumed wave starts the batch again: the journal says it is done, nothing is sent.
    spy.modifies.clear()
    _channel(store, inventory, spy).start_batch(0, corp + emea)
    assert spy.modifies == [] and len(store.directory_changes("w")) == 2


def test_members_already_in_place_are_done_per_computer(dcs: RunningDirectory, tmp_path: Path) -> None:
    """A computer an admin already put in the cloud trust group is recorded as already there and not sent; when
    an admin adds another between the read and the modify, AD refuses the whole modify (entryAlreadyExists): the
    channel reads again and sends only what is still missing."""
    names = _devices(dcs, "corp.contoso.com")[:5]
    store, inventory = _setup(dcs, tmp_path, names)
    tree = dcs.directory().tree
    group = tree.find_account(CLOUD_TRUST_GROUP)
    assert group is not None
    first = tree.find_account(f"{names[0]}$")
    racing = tree.find_account(f"{names[1]}$")
    assert first is not None and racing is not None
    tree.add_member(group, first.dn)
    spy = Spy()

    def admin_adds_one(_dn: str) -> None:
        spy.before_modify = None
        tree.add_member(group, racing.dn)

    spy.before_modify = admin_adds_one
    channel = _channel(store, inventory, spy, PolicySettings(channel="ad-group", cloud_trust_group=CLOUD_TRUST_GROUP))
    [change] = channel.start_batch(0, names)
    assert all(CLOUD_TRUST_GROUP in _groups_of(dcs, "corp.contoso.com", n) for n in names)
    [membership] = change.changes
    assert sorted(membership.already) == sorted([names[0], names[1]])
    assert sorted(membership.changed) == sorted(names[2:])
    assert membership.modifies == 2  # the refused one, then the three still missing
    assert len(spy.modifies[1][1]["member"][0][1]) == 3


def test_a_missing_group_or_computer_is_refused_before_any_change(dcs: RunningDirectory, tmp_path: Path) -> None:
    """Preflight names the missing group and the domain, a device with no AD domain, and a computer with no
    account; nothing is written to the directory or the journal."""
    names = _devices(dcs, EMEA)[:3]
    store, inventory = _setup(dcs, tmp_path, names)
    spy = Spy()
    policy = PolicySettings(channel="ad-group", cloud_trust_group="GG-WHfB-CloudTrust")
    with pytest.raises(InputError) as info:
        _channel(store, inventory, spy, policy).preflight(names)
    assert f"group 'GG-WHfB-CloudTrust' does not exist in the domain {EMEA}" in str(info.value)
    entra_joined = next(d.name for d in dcs.fleet.devices if d.domain is None)
    with pytest.raises(InputError, match=f"the inventory names no AD domain \\(DNS name\\) for {entra_joined}"):
        _channel(store, inventory, spy).preflight([*names, entra_joined])
    # A device the inventory lists whose computer account is not in the directory (deleted, or a typo).
    data = yaml.safe_load(inventory.path.read_text())
    data["devices"].append({"name": "PC-GONE", "address": "127.0.0.9", "domain": EMEA})
    inventory.path.write_text(yaml.safe_dump(data))
    with pytest.raises(InputError, match=f"no computer account in the domain {EMEA} for PC-GONE"):
        _channel(store, load_inventory(inventory.path), spy).preflight([*names, "PC-GONE"])
    assert spy.modifies == [] and store.directory_changes("w") == []


def test_an_in_doubt_change_is_resolved_by_rereading(dcs: RunningDirectory, tmp_path: Path) -> None:
    """An intent without outcome (the process died after the modify, or before it) is settled by what the
    groups hold now: applied to all → resolved, nothing sent; applied to none → resolved, then one new attempt."""
    names, others = _devices(dcs, EMEA)[:4], _devices(dcs, EMEA)[4:8]
    store, inventory = _setup(dcs, tmp_path, names + others)
    tree = dcs.directory(EMEA).tree
    wanted = {n: {"cloud": True, "cert": False} for n in names}
    before = {n: {"cloud": False, "cert": HELLO_GPO_GROUP in _groups_of(dcs, EMEA, n)} for n in names}
    store.directory_intent(
        "w", batch=0, domain=EMEA, purpose=MIGRATE, attempt=1, key="w/migrate/0/emea/1",
        intent={"before": before, "wanted": wanted},
    )  # fmt: skip
    spy = Spy()
    [change] = _channel(store, inventory, spy).start_batch(0, names)  # nothing applied yet: none, then apply
    first, second = store.directory_changes("w")
    assert (first.status, first.outcome["applied"]) == ("resolved", "none")  # type: ignore[index,call-overload]
    assert second.status == "done" and change.resolved == 1 and spy.modifies
    # Now the other way: the modify went through (an admin's tool, say), the outcome was never written.
    cloud, cert = tree.find_account(CLOUD_TRUST_GROUP), tree.find_account(HELLO_GPO_GROUP)
    assert cloud is not None and cert is not None
    before = {n: {"cloud": False, "cert": HELLO_GPO_GROUP in _groups_of(dcs, EMEA, n)} for n in others}
    store.directory_intent(
        "w", batch=1, domain=EMEA, purpose=MIGRATE, attempt=1, key="w/migrate/1/emea/1",
        intent={"before": before, "wanted": {n: {"cloud": True, "cert": False} for n in others}},
    )  # fmt: skip
    for name in others:
        computer = tree.find_account(f"{name}$")
        assert computer is not None
        tree.add_member(cloud, computer.dn)
        if before[name]["cert"]:
            tree.remove_member(cert, computer.dn)
    spy.modifies.clear()
    [change] = _channel(store, inventory, spy).start_batch(1, others)
    assert spy.modifies == [] and change.nothing_to_do
    last = store.directory_changes("w")[-1]
    assert (last.status, last.outcome["applied"]) == ("resolved", "all")  # type: ignore[index,call-overload]


def test_restore_puts_each_computer_back(dcs: RunningDirectory, tmp_path: Path) -> None:
    """Rollback restores each computer's memberships as first found (in the certificate trust group again, out
    of the cloud trust group), journalled; a second restore finds nothing to do."""
    names = _devices(dcs, EMEA)[:5]
    store, inventory = _setup(dcs, tmp_path, names)
    before = {n: _groups_of(dcs, EMEA, n) for n in names}
    channel = _channel(store, inventory)
    channel.start_batch(0, names[:3])
    channel.start_batch(1, names[3:])
    assert all(CLOUD_TRUST_GROUP in _groups_of(dcs, EMEA, n) for n in names)
    [restored] = channel.restore()
    assert not restored.nothing_to_do
    assert {n: _groups_of(dcs, EMEA, n) for n in names} == before
    assert [e.purpose for e in store.directory_changes("w")] == ["migrate", "migrate", "rollback"]
    [again] = channel.restore()
    assert again.nothing_to_do and len(store.directory_changes("w")) == 3
    assert store.verify_audit().ok
