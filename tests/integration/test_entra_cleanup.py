"""Stale Hello keys removed from the lab tenant after a certificate trust wave, through real msal + httpx: only the
old key, never the new one; journalled and audited; an in-doubt removal resolved by re-reading; the CLI in bulk."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr
from typer.testing import CliRunner

from migrator.cli import app
from migrator.cloud.cleanup import STEP, StaleKeyCleanup, normal_key_id
from migrator.cloud.client import GraphClient, RetryPolicy
from migrator.cloud.settings import GraphSettings
from migrator.directory.knowledge import DirectoryKnowledge
from migrator.engine.service import build_runner, wave_graph
from migrator.facts import DeviceFacts, UserFacts
from migrator.inventory import load_inventory
from migrator.lab.graph import GraphServer, GraphTenant
from migrator.lab.model import Device, User
from migrator.playbook import EntraSettings, Waits
from migrator.report import collect_report
from migrator.store import Store
from tests.engine.labkit import (
    LabKit,
    cooperative,
    drive,
    entra_inventory,
    make_fleet,
    open_store,
    playbook,
    running_lab,
    sign_everyone_in,
)
from tests.loopback import free_addresses

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@dataclass
class Migrated:
    kit: LabKit
    tenant: GraphTenant
    server: GraphServer
    store: Store
    settings: GraphSettings
    old_keys: dict[str, str]  # user SID -> the NgcKeyId before the wave
    names: list[str]
    work: Path

    def users(self) -> list[tuple[Device, User]]:
        return [
            (d, u) for d in self.kit.fleet.devices if d.name in self.names for u in d.users if u.sid in self.old_keys
        ]

    def graph(self) -> GraphClient:
        return GraphClient(self.settings, sleep=lambda _s: None, retry=RetryPolicy(attempts=3, initial_wait=0.01))


@pytest.fixture
def migrated(tmp_path: Path) -> Iterator[Migrated]:
    """Two hybrid certificate trust devices taken through a wave (the tenant watching), keys not yet cleaned."""
    fleet = cooperative(make_fleet(10, 6, "cert=100"))
    fleet.devices = [d for d in fleet.devices if d.join_type == "hybrid" and any(u.container for u in d.users)][:2]
    with running_lab(fleet, tmp_path / "lab") as kit:
        tenant = GraphTenant(kit.lab)
        server = GraphServer(tenant, kit.server.ca, address=free_addresses(1)[0], faults=kit.server.faults)
        server.start()
        try:
            old = {u.sid: normal_key_id(u.container.key_id) for d in fleet.devices for u in d.users if u.container}
            sign_everyone_in(kit)
            book = playbook().model_copy(
                update={"waits": Waits(recheck_every=6 * 3600, user_deadline=3 * 86400, reprovision_deadline=3 * 86400)}
            )
            names = [d.name for d in fleet.devices]
            store = open_store(tmp_path / "state", kit, book, names, wave="pilot")
            drive(kit, store, book, names)
            assert all(store.get_device(n).state == "migrated" for n in names)
            settings = GraphSettings(
                tenant_id=tenant.tenant_id,
                client_id=server.client_id,
                authority=server.authority,
                graph_url=server.url,
                ca_bundle=server.ca_bundle,
                secret=SecretStr(server.client_secret),
            )
            yield Migrated(kit, tenant, server, store, settings, old, names, tmp_path)
        finally:
            server.stop()


def _method_ids(m: Migrated, user: User) -> list[str]:
    return [method.id for method in m.tenant.hello_methods(user)]


def test_only_the_stale_key_is_removed(migrated: Migrated) -> None:
    """Before: each migrated user has the old key and the new one; after: exactly one, the new one."""
    m = migrated
    for _device, user in m.users():
        assert _method_ids(m, user) == [m.old_keys[user.sid], normal_key_id(user.container.key_id)]  # type: ignore[union-attr]
    with m.graph() as graph:
        cleanup = StaleKeyCleanup(m.store, graph, actor="tester", change_ticket="CHG-1")
        results = [r for name in m.names for r in cleanup.device(name)]
        per_user = graph.requests / len(results)
    assert results and all(r.status == "removed" for r in results), results
    assert per_user <= 4  # find the user, read the methods, delete
    for _device, user in m.users():
        assert _method_ids(m, user) == [normal_key_id(user.container.key_id)]  # type: ignore[union-attr]
    for name in m.names:
        done = [e for e in m.store.journal_entries(name) if e.step == STEP.name]
        assert done and all(e.status == "done" for e in done)
        assert any(STEP.name in a.action for a in m.store.audit_entries(name))
    deleted = collect_report(m.store, "pilot").deleted_containers
    assert deleted and {c.entra_key for c in deleted} == {"removed"} and not any(c.entra_key_remains for c in deleted)
    with m.graph() as graph:  # a second run changes nothing and sends no DELETE
        again = [r for name in m.names for r in StaleKeyCleanup(m.store, graph, actor="tester").device(name)]
        assert graph.requests == 0
    assert [r.status for r in again] == ["removed"] * len(results)


def test_an_in_doubt_removal_is_resolved_by_re_reading(migrated: Migrated) -> None:
    """A crash after the intent: when the key is gone the entry is resolved 'removed' with no DELETE sent; when it
    is still there the entry is resolved 'left' and a new attempt removes it."""
    m = migrated
    (device, gone_user), (_device2, kept_user) = m.users()[0], m.users()[-1]
    for user in (gone_user, kept_user):
        owner = next(d for d, u in m.users() if u is user)
        row = next(r for r in m.store.list_users(owner.name) if r.sid == user.sid)
        m.store.intent(
            owner.name,
            STEP.name,
            1,
            {"key_id": m.old_keys[user.sid]},
            key=f"{owner.name}/{row.name}/{STEP.name}/1",
            user=row.name,
        )
    m.tenant.delete_hello_method(gone_user, m.old_keys[gone_user.sid])  # the DELETE had reached Entra ID
    deletes_before = m.server.service.requests.get("DELETE windowsHelloForBusinessMethods", 0)
    with m.graph() as graph:
        cleanup = StaleKeyCleanup(m.store, graph, actor="tester")
        results = {r.user: r for name in m.names for r in cleanup.device(name)}
    assert all(r.status == "removed" for r in results.values())
    # one DELETE: the key still registered; the one already gone is resolved by reading alone
    assert m.server.service.requests["DELETE windowsHelloForBusinessMethods"] == deletes_before + 1
    for name in m.names:
        entries = [e for e in m.store.journal_entries(name) if e.step == STEP.name]
        assert entries[0].status == "resolved"
    gone_entry = next(e for e in m.store.journal_entries(device.name) if e.step == STEP.name)
    assert gone_entry.outcome["status"] == "removed"  # type: ignore[index]
    assert not m.store.in_doubt()
    for _device, user in m.users():
        assert _method_ids(m, user) == [normal_key_id(user.container.key_id)]  # type: ignore[union-attr]


def test_a_key_left_is_journalled_once_and_reported(migrated: Migrated) -> None:
    """No new key registered from the device yet: the old one is left, and that result is journalled (once, however
    often the cleanup runs) so the report says 'left' and why, not 'not attempted'; once the new key is there, the
    next cleanup removes the old one."""
    m = migrated
    device, user = m.users()[0]
    new_key = normal_key_id(user.container.key_id)  # type: ignore[union-attr]
    method = next(x for x in m.tenant.hello_methods(user) if x.id == new_key)
    m.tenant.delete_hello_method(user, new_key)
    old_key = m.old_keys[user.sid]
    for _ in range(2):
        with m.graph() as graph:
            results = StaleKeyCleanup(m.store, graph, actor="tester").device(device.name)
        [result] = [r for r in results if r.key_id == old_key]
        assert result.status == "left" and "no other Hello key" in result.detail
    entries = [e for e in m.store.journal_entries(device.name) if e.step == STEP.name and e.user == result.user]
    assert [(e.status, e.outcome["status"]) for e in entries] == [("done", "left")]  # type: ignore[index]
    [row] = [
        c
        for c in collect_report(m.store, "pilot").deleted_containers
        if c.device == device.name and c.user == result.user
    ]
    assert row.entra_key == "left" and "no other Hello key" in row.entra_detail
    m.tenant.state.hello_methods.append(method)  # the new key registers
    with m.graph() as graph:
        results = StaleKeyCleanup(m.store, graph, actor="tester").device(device.name)
    assert [r.status for r in results if r.key_id == old_key] == ["removed"]
    assert _method_ids(m, user) == [new_key]


def test_cli_cleans_up_a_wave_in_bulk(migrated: Migrated) -> None:
    """`migrator entra cleanup --wave pilot` with lab up's files: every stale key removed, exit 0, requests shown."""
    m = migrated
    inventory = m.work / "inventory.yaml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "defaults": {"ca_bundle": str(m.server.ca_bundle)},
                "devices": [{"name": d.name, "address": d.address} for d in m.kit.fleet.devices],
                "lab": {
                    "control": "http://127.0.0.1:9",
                    "graph": {"url": m.server.url, "authority": m.server.authority, "tenant_id": m.tenant.tenant_id},
                },
            }
        )
    )
    secrets = m.work / "lab-secrets.env"
    secrets.write_text(
        f"MIGRATOR_GRAPH_CLIENT_ID={m.server.client_id}\nMIGRATOR_GRAPH_CLIENT_SECRET={m.server.client_secret}\n"
    )
    args = [
        "entra",
        "cleanup",
        "--wave",
        "pilot",
        "--state",
        str(m.work / "state"),
        "--inventory",
        str(inventory),
        "--secrets",
        str(secrets),
        "--json",
    ]
    reader = m.server.tokens.register_app(
        "reader", roles=frozenset({"User.Read.All", "UserAuthenticationMethod.Read.All"})
    )
    read_only = m.work / "reader.env"
    read_only.write_text(
        f"MIGRATOR_GRAPH_CLIENT_ID={reader.client_id}\n"
        f"MIGRATOR_GRAPH_CLIENT_SECRET={m.server.tokens.add_secret(reader)}\n"
    )
    refused = CliRunner().invoke(app, [*args[:-2], str(read_only), "--json"], env={"MIGRATOR_STORE": ""})
    assert refused.exit_code == 2 and "UserAuthenticationMethod.ReadWrite.All" in refused.output, refused.output
    assert all(len(m.tenant.hello_methods(u)) == 2 for _d, u in m.users())  # nothing was removed
    result = CliRunner().invoke(app, args, env={"MIGRATOR_STORE": ""})
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {k["status"] for k in report["keys"]} == {"removed"} and report["graph_requests"] > 0
    assert m.server.client_secret not in result.output
    for _device, user in m.users():
        assert _method_ids(m, user) == [normal_key_id(user.container.key_id)]  # type: ignore[union-attr]
    missing = CliRunner().invoke(app, [*args[:3], "nope", *args[4:]], env={"MIGRATOR_STORE": ""})
    assert missing.exit_code == 2 and "nope" in missing.output


def test_a_wave_with_the_playbook_switch_removes_the_stale_keys(tmp_path: Path) -> None:
    """A certificate trust wave whose playbook sets entra: remove_stale_hello_keys leaves each migrated user with
    exactly one Hello method in the lab tenant, the new one (the wave's own hook, no separate cleanup). A third
    device, probed before and whose Entra device object an admin deleted, is read at the wave's start (once, before
    any device) and made ineligible at preflight: nothing changed on it, the finding recorded for the report. The
    others, first seen by the wave, are read too, and the report counts each device's Graph requests."""
    fleet = cooperative(make_fleet(10, 6, "cert=100"))
    fleet.devices = [d for d in fleet.devices if d.join_type == "hybrid" and any(u.container for u in d.users)][:3]
    orphan = fleet.devices[2]
    with running_lab(fleet, tmp_path / "lab") as kit:
        tenant = GraphTenant(kit.lab)
        server = GraphServer(tenant, kit.server.ca, address=free_addresses(1)[0], faults=kit.server.faults)
        server.start()
        try:
            sign_everyone_in(kit)
            inventory_path = entra_inventory(tmp_path / "inventory.yaml", kit, fleet.devices, server)
            book = playbook().model_copy(
                update={
                    "waits": Waits(recheck_every=6 * 3600, user_deadline=3 * 86400, reprovision_deadline=3 * 86400),
                    "entra": EntraSettings(remove_stale_hello_keys=True),
                }
            )
            names = [d.name for d in fleet.devices]
            store = open_store(tmp_path / "state", kit, book, names, wave="pilot")
            settings = {
                "devices": names,
                "batch_size": 10,
                "concurrency": 2,
                "canary": 0,
                "max_fail_percent": 50.0,
                "approval": False,
                "windows": [],
                "entra_kerberos": {"corp.contoso.com": True, "CORP": True, "emea.corp.contoso.com": True, "EMEA": True},
            }
            inventory = load_inventory(inventory_path)
            secrets = tmp_path / "secrets.env"
            secrets.write_text(f"MIGRATOR_GRAPH_CLIENT_SECRET={server.client_secret}\n")
            probed = DeviceFacts(
                name=orphan.name, device_id=orphan.device_id, users=tuple(UserFacts(sid=u.sid) for u in orphan.users)
            )
            store.save_facts(orphan.name, probed.model_dump(mode="json"))
            tenant.delete_device(orphan.name)
            runner = build_runner(
                store,
                "pilot",
                settings,
                book,
                inventory,
                kit.credentials,
                kit.clock,
                change_ticket="CHG-7",
                directory=DirectoryKnowledge(),
                graph=wave_graph(inventory, book, secrets),
            )
            result = runner.run()
            assert result.state == "completed", result
            assert all(store.get_device(n).state == "migrated" for n in names if n != orphan.name)
            assert store.get_device(orphan.name).state == "ineligible"
            assert "no device object with deviceId" in (store.get_device(orphan.name).last_error or "")
            assert not any(u.counters.container_deletions for u in orphan.users)
            shown = collect_report(store, "pilot").as_json()["entra_at_preflight"]
            # The two devices first seen by the wave are read too (by name at its start, then at their visit).
            assert sorted((f["device"], f["device_object"]) for f in shown) == sorted(
                (d.name, "missing" if d is orphan else "present") for d in fleet.devices
            )
            spent = {g["device"]: g for g in collect_report(store, "pilot").as_json()["graph_requests"]}
            assert set(spent) == set(names) and all(g["preflight"] > 0 for g in spent.values())
            assert all(spent[n]["entra_cleanup"] > 0 for n in names if n != orphan.name)
            for device in fleet.devices:
                for user in device.users:
                    if user.container is not None and user.counters.container_deletions:
                        assert [m.id for m in tenant.hello_methods(user)] == [normal_key_id(user.container.key_id)]
            deleted = collect_report(store, "pilot").deleted_containers
            assert deleted and {c.entra_key for c in deleted} == {"removed"}
        finally:
            server.stop()
