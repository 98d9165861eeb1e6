"""End to end: a lab wave through the ``intune-group`` channel with Intune check-ins on.

Intune-managed devices (hybrid joined devices of CORP and Entra joined devices, whose Hello policy comes from the
lab tenant's profiles) are migrated by moving each batch's Entra device objects between the groups the profiles
are assigned to, through real msal + httpx; the policy then survives several check-ins (a local registry write
would not); rollback puts the memberships back; a missing group is refused before anything changes; a group
change left in doubt is resolved by re-reading the group, not by sending it again."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr
from typer.testing import CliRunner

from migrator.cli import app
from migrator.cloud.client import GraphClient, RetryPolicy
from migrator.cloud.settings import GraphSettings
from migrator.engine.channels import MIGRATE, IntuneGroupChannel
from migrator.engine.service import WaveRequest, plan_wave
from migrator.errors import CloudUnavailable, InputError
from migrator.inventory import load_inventory
from migrator.lab import policy as policy_mod
from migrator.lab.fleet import generate_fleet, parse_mix
from migrator.lab.graph.tenant import PROFILES
from migrator.lab.model import Device
from migrator.lab.runtime import LabPorts, LabRuntime
from migrator.lab.truth import fleet_truth
from migrator.playbook import PolicySettings, builtin_path
from migrator.remote.credentials import load_credentials
from migrator.report import collect_report
from migrator.store import Store, content_hash
from tests.engine.labkit import cooperative
from tests.loopback import free_addresses

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CLOUD_GROUP, CERT_GROUP = PROFILES[0].group, PROFILES[1].group  # the lab's cloud / certificate trust profiles


def _managed(device: Device) -> bool:
    """An Intune-managed device with an Entra object, a TPM, users, and no Hello GPO (computer or user scope)."""
    return (
        device.mdm_enrolled
        and device.device_id is not None
        and device.tpm.present
        and _supported(device.os.build, device.os.ubr)
        and bool(device.users)
        and not device.registry.key_exists(policy_mod.GPO_KEY)
        and not any(device.registry.key_exists(policy_mod.gpo_user_key(u.sid)) for u in device.users)
    )


def _supported(build: int, ubr: int) -> bool:
    """A build cloud Kerberos trust supports (19044.1566, 19045, 22000.527, 22621+)."""
    return (build == 19044 and ubr >= 1566) or build == 19045 or (build == 22000 and ubr >= 527) or build >= 22621


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[LabRuntime, Path]]:
    fleet = cooperative(generate_fleet(60, 21, parse_mix("key=50,cert=40,cloud=5,none=5")))
    for device, address in zip(fleet.devices, free_addresses(len(fleet.devices)), strict=True):
        device.address = address
    dcs = dict(zip((d.dns_name for d in fleet.domains), free_addresses(len(fleet.domains)), strict=True))
    runtime = LabRuntime(
        fleet,
        tmp_path / "lab",
        speed=3600.0,
        ports=LabPorts(http=0, https=0, ldap=0, ldaps=0),
        dc_addresses=dcs,
        graph_address=free_addresses(1)[0],
        intune_check_ins=True,
    )
    runtime.start()
    inventory = tmp_path / "lab" / "inventory.yaml"
    runtime.write_inventory(inventory)
    try:
        yield runtime, inventory
    finally:
        runtime.stop()


def _ids(runtime: LabRuntime) -> tuple[str, str]:
    return runtime.tenant.group_id(CLOUD_GROUP), runtime.tenant.group_id(CERT_GROUP)


def _playbook(runtime: LabRuntime, folder: Path) -> Path:
    """The shipped intune-group playbook naming the lab tenant's profile groups, at a lab's pace."""
    data = yaml.safe_load(builtin_path("intune-group-to-cloud-kerberos").read_text(encoding="utf-8"))
    cloud, cert = _ids(runtime)
    data["policy"] = {**data["policy"], "cloud_trust_group": cloud, "cert_trust_group": cert}
    data["waits"] = {**data["waits"], "recheck_every": "15m"}
    path = folder / "intune-group.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _groups(runtime: LabRuntime, name: str) -> set[str]:
    return {group for group, members in runtime.tenant.state.group_members.items() if name in members}


def _effective(runtime: LabRuntime) -> dict[str, str]:
    return {d["name"]: d["policy"]["effective"] for d in fleet_truth(runtime.lab)["devices"]}


def _graph(runtime: LabRuntime) -> GraphClient:
    settings = GraphSettings(
        tenant_id=runtime.tenant.tenant_id,
        client_id=runtime.graph.client_id,
        authority=runtime.graph.authority,
        graph_url=runtime.graph.url,
        ca_bundle=runtime.graph.ca_bundle,
        secret=SecretStr(runtime.graph.client_secret),
    )
    return GraphClient(settings, sleep=lambda _s: None, retry=RetryPolicy(attempts=3, initial_wait=0.01))


def test_an_intune_group_wave_migrates_managed_devices_and_survives_check_ins(
    lab: tuple[LabRuntime, Path], tmp_path: Path
) -> None:
    """Key and certificate trust Intune-managed devices end migrated in batches of 3; each device is moved into the
    cloud trust profile's group, out of the certificate trust one, and synced; it stays on cloud trust through
    three more check-ins; the report counts each device's Graph requests (preflight reads, group changes); rollback
    restores the memberships, journalled and audited."""
    runtime, inventory = lab
    effective = _effective(runtime)
    managed = [d for d in runtime.fleet.devices if _managed(d)]
    key = [d.name for d in managed if effective[d.name] == "key"][:3]
    cert = [d.name for d in managed if effective[d.name] == "cert"][:3]
    assert key and cert, "the seeded fleet has Intune-managed key and certificate trust devices"
    chosen = key + cert
    before = {n: _groups(runtime, n) for n in chosen}
    assert all(CERT_GROUP in before[n] for n in cert)
    store = Store.open(tmp_path / "state")
    secrets = inventory.parent / "lab-secrets.env"
    request = WaveRequest(
        inventory=inventory,
        playbook=str(_playbook(runtime, tmp_path)),
        wave="intune",
        devices=tuple(chosen),
        batch_size=3,
        concurrency=4,
        change_ticket="CHG-17",
    )
    synced_before = len(runtime.tenant.syncs)
    plan = plan_wave(store, request, load_credentials(secrets), runtime.clock, secrets_file=secrets)
    result = plan.runner.run()
    states = {d.name: d.state for d in store.list_devices("intune")}
    assert result.state == "completed", (result.reason, states)
    assert set(states.values()) == {"migrated"}, states
    for name in chosen:
        groups = _groups(runtime, name)
        assert CLOUD_GROUP in groups and CERT_GROUP not in groups, name
    target = f"entra:{runtime.tenant.tenant_id}"
    changes = store.directory_changes("intune")
    assert {(c.domain, c.purpose, c.status) for c in changes} == {(target, MIGRATE, "done")}
    assert sorted({str(n) for c in changes for n in c.intent["wanted"]}) == sorted(chosen)  # type: ignore[union-attr]
    assert {n for n, _at in runtime.tenant.syncs[synced_before:]} >= set(chosen)  # syncDevice on each
    # Each device's Graph requests: its preflight reads and its share of its batch's group changes.
    spent = {g["device"]: g for g in collect_report(store, "intune").as_json()["graph_requests"]}
    assert set(spent) == set(chosen)
    assert all(spent[n]["preflight"] > 0 and spent[n]["intune_group"] > 0 for n in chosen), spent
    # Three check-ins later (about every 8 virtual hours), Intune still gives cloud trust.
    check_ins = {n: sum(d == n for d, _at in runtime.tenant.syncs) for n in chosen}
    runtime.clock.sleep(26 * 3600)
    for name in chosen:
        assert sum(d == name for d, _at in runtime.tenant.syncs) >= check_ins[name] + 2, name
    effective = _effective(runtime)
    assert {n: effective[n] for n in chosen} == dict.fromkeys(chosen, "cloud")
    # Rollback: memberships as they were before the wave.
    rolled = CliRunner().invoke(
        app,
        [
            "rollback",
            "--state",
            str(tmp_path / "state"),
            "--wave",
            "intune",
            "--inventory",
            str(inventory),
            "--secrets",
            str(secrets),
            "--playbook",
            str(_playbook(runtime, tmp_path)),
            "--json",
        ],
    )
    assert rolled.exit_code == 0, rolled.output
    assert json.loads(rolled.stdout)["memberships"]
    assert {n: _groups(runtime, n) for n in chosen} == before
    assert store.directory_changes("intune")[-1].purpose == "rollback"
    actions = [a.action for a in store.audit_entries()]
    assert any(a.startswith("intune-group rollback done") for a in actions)
    assert store.verify_audit().ok


def test_run_refuses_a_missing_group_before_anything_changes(lab: tuple[LabRuntime, Path], tmp_path: Path) -> None:
    """`migrator run` and `migrator plan` with the shipped playbook (placeholder group ids the tenant does not
    have): exit 2, the group and the tenant named, no wave in the store and no membership changed."""
    runtime, inventory = lab
    names = [d.name for d in runtime.fleet.devices if _managed(d)][:2]
    before = {n: _groups(runtime, n) for n in names}
    state = tmp_path / "state"
    result = CliRunner().invoke(
        app,
        [
            "run",
            "-i",
            str(inventory),
            "--playbook",
            "intune-group-to-cloud-kerberos",
            "--limit",
            ",".join(names),
            "--state",
            str(state),
            "--secrets",
            str(inventory.parent / "lab-secrets.env"),
            "--yes",
        ],
    )
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert "group '00000000-0000-0000-0000-0000000000c1' does not exist in the tenant" in said
    with Store.open(state) as store:
        assert store.list_waves() == []
    planned = CliRunner().invoke(
        app,
        [
            "plan",
            "-i",
            str(inventory),
            "--playbook",
            "intune-group-to-cloud-kerberos",
            "--limit",
            ",".join(names),
            "--secrets",
            str(inventory.parent / "lab-secrets.env"),
        ],
    )
    assert planned.exit_code == 2, planned.output
    assert "group '00000000-0000-0000-0000-0000000000c1' does not exist" in " ".join(planned.output.split())
    assert {n: _groups(runtime, n) for n in names} == before


def test_an_in_doubt_group_change_is_resolved_by_re_reading(lab: tuple[LabRuntime, Path], tmp_path: Path) -> None:
    """The connection breaks after Graph applied the first add: the intent stays in doubt. The next run reads the
    group, settles the entry with what it shows (never sending that add again), and finishes the rest."""
    runtime, inventory = lab
    effective = _effective(runtime)
    names = [d.name for d in runtime.fleet.devices if _managed(d) and effective[d.name] == "cert"][:3]
    assert len(names) == 3
    store = Store.open(tmp_path / "state")
    store.create_wave("w", playbook_name="intune-group", playbook_hash=content_hash("x"), change_ticket="CHG-1")
    store.enroll("w", names)
    for name in names:
        store.transition(name, "pending", "policy", "preflight_done")
    cloud, cert = _ids(runtime)
    policy = PolicySettings(channel="intune-group", cloud_trust_group=cloud, cert_trust_group=cert)
    inv = load_inventory(inventory)
    credentials = load_credentials(inventory.parent / "lab-secrets.env")
    sent: list[tuple[str, str]] = []

    with _graph(runtime) as graph:
        real_add = graph.add_group_member

        def add_then_break(group_id: str, object_id: str) -> None:
            sent.append((group_id, object_id))
            real_add(group_id, object_id)
            raise CloudUnavailable(graph.tenant, "the connection dropped after the request was sent")

        graph.add_group_member = add_then_break  # type: ignore[method-assign]
        with pytest.raises(CloudUnavailable):
            IntuneGroupChannel(policy, inv, credentials, store=store, wave="w", graph=graph).start_batch(0, names)
    (entry,) = store.directory_changes("w")
    assert entry.in_doubt and len(sent) == 1
    first = runtime.tenant.device_named(names[0])
    assert first is not None and CLOUD_GROUP in _groups(runtime, names[0])

    with _graph(runtime) as graph:
        again: list[str] = []
        real_add = graph.add_group_member

        def record(group_id: str, object_id: str) -> None:
            again.append(object_id)
            real_add(group_id, object_id)

        graph.add_group_member = record  # type: ignore[method-assign]
        channel = IntuneGroupChannel(policy, inv, credentials, store=store, wave="w", graph=graph)
        (change,) = channel.start_batch(0, names)
    assert change.resolved == 1
    assert runtime.tenant.device_object_id(first) not in again  # the applied add was not sent again
    entries = store.directory_changes("w")
    assert [e.status for e in entries] == ["resolved", "done"]
    assert entries[0].outcome["applied"] == "none"  # type: ignore[index, call-overload]  # not whole yet
    for name in names:
        groups = _groups(runtime, name)
        assert CLOUD_GROUP in groups and CERT_GROUP not in groups, name
    assert all(channel.released(n) for n in names)
    assert store.verify_audit().ok


def test_a_member_added_meanwhile_is_settled_and_a_deleted_device_refused(
    lab: tuple[LabRuntime, Path], tmp_path: Path
) -> None:
    """An admin adds a device to the cloud trust group between the channel's read and its add: Graph answers 400,
    the group is read again and the device recorded as already there. A device whose Entra object an admin deleted
    is refused by preflight, named, before any group changes."""
    runtime, inventory = lab
    names = [d.name for d in runtime.fleet.devices if _managed(d) and CLOUD_GROUP not in _groups(runtime, d.name)][:3]
    assert len(names) == 3
    store = Store.open(tmp_path / "state")
    store.create_wave("w", playbook_name="intune-group", playbook_hash=content_hash("x"), change_ticket="CHG-1")
    store.enroll("w", names)
    for name in names:
        store.transition(name, "pending", "policy", "preflight_done")
    cloud, cert = _ids(runtime)
    policy = PolicySettings(channel="intune-group", cloud_trust_group=cloud, cert_trust_group=cert)
    inv = load_inventory(inventory)
    credentials = load_credentials(inventory.parent / "lab-secrets.env")
    with _graph(runtime) as graph:
        real_add = graph.add_group_member
        meddled: list[str] = []

        def admin_first(group_id: str, object_id: str) -> None:
            if not meddled:
                meddled.append(object_id)
                runtime.tenant.add_member(CLOUD_GROUP, object_id)
            real_add(group_id, object_id)

        graph.add_group_member = admin_first  # type: ignore[method-assign]
        (change,) = IntuneGroupChannel(policy, inv, credentials, store=store, wave="w", graph=graph).start_batch(
            0, names
        )
    added = next(c for c in change.changes if c.member)
    assert len(added.already) == 1 and len(added.changed) == 2, added
    assert all(CLOUD_GROUP in _groups(runtime, n) for n in names)
    (entry,) = store.directory_changes("w")
    assert entry.status == "done"

    gone = next(d.name for d in runtime.fleet.devices if _managed(d) and d.name not in names)
    runtime.tenant.delete_device(gone)
    before = {n: _groups(runtime, n) for n in names}
    with _graph(runtime) as graph, pytest.raises(InputError, match=f"no Entra device object named {gone}"):
        IntuneGroupChannel(policy, inv, credentials, graph=graph).preflight([*names, gone])
    assert {n: _groups(runtime, n) for n in names} == before
