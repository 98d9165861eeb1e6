"""Preflight's Entra ID reads against the lab tenant through unmodified msal + httpx: the Windows Hello for Business
enrollment policy, the device objects in batches of 15, each user's Hello methods once; a deleted or disabled device
object recorded clearly; a part that cannot be read recorded, the rest still read."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr
from typer.testing import CliRunner

from migrator.cli import app
from migrator.cloud.client import GraphClient, RetryPolicy
from migrator.cloud.knowledge import (
    AUDIT_ACTION,
    DeviceQuery,
    EntraPreflight,
    TenantKnowledge,
    preflight_wave,
    read_device_names,
    read_devices,
    read_tenant,
)
from migrator.cloud.settings import GraphSettings
from migrator.cloud.spend import graph_spend
from migrator.facts import DeviceFacts, UserFacts
from migrator.lab.clock import VirtualClock
from migrator.lab.graph import GraphServer, GraphTenant, normal_key_id
from migrator.lab.model import Device, EnrollmentHello
from migrator.lab.runtime import new_lab
from migrator.lab.server.certs import LabCA
from migrator.report import collect_report, render_html
from migrator.store import Store, content_hash
from tests.lab.conftest import T0, make_device, make_fleet, make_user
from tests.loopback import free_addresses

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

DEVICES = 20  # two batches of the `in` filter (15 + 5)


@dataclass
class Tenant:
    tenant: GraphTenant
    server: GraphServer
    devices: list[Device]

    def graph(self, secret: str | None = None) -> GraphClient:
        settings = GraphSettings(
            tenant_id=self.tenant.tenant_id,
            client_id=self.server.client_id,
            authority=self.server.authority,
            graph_url=self.server.url,
            ca_bundle=self.server.ca_bundle,
            secret=SecretStr(secret or self.server.client_secret),
        )
        return GraphClient(settings, sleep=lambda _s: None, retry=RetryPolicy(attempts=2, initial_wait=0.01))

    def queries(self) -> list[DeviceQuery]:
        return [DeviceQuery(d.name, d.device_id, tuple(u.sid for u in d.users)) for d in self.devices]


@pytest.fixture
def lab_tenant(tmp_path: Path) -> Iterator[Tenant]:
    """20 hybrid devices, each with two users; the user ``shared`` has a profile on every one of them."""
    devices = []
    for n in range(DEVICES):
        device = make_device(
            f"PC-{n:04d}", users=[make_user(f"user{n}", 2000 + n, "cert"), make_user("shared", 1999, "cert")]
        )
        device.device_id = str(uuid.uuid5(uuid.NAMESPACE_OID, device.name))
        device.mdm_enrolled = True
        devices.append(device)
    lab = new_lab(make_fleet(devices), VirtualClock(T0))
    tenant = GraphTenant(lab, check_ins=False)
    server = GraphServer(tenant, LabCA(tmp_path / "ca"), address=free_addresses(1)[0])
    server.start()
    try:
        yield Tenant(tenant, server, devices)
    finally:
        server.stop()


def test_the_lab_serves_the_enrollment_configurations_to_httpx(lab_tenant: Tenant) -> None:
    """Graph's list of enrollment configurations, typed; the Windows Hello one seeded from the fleet (Intune in use:
    enabled, TPM required as every enrolled device has one) and changed by an admin."""
    with lab_tenant.graph() as graph:
        items = graph.enrollment_configurations()
        hello = [i for i in items if i["@odata.type"].endswith("deviceEnrollmentWindowsHelloForBusinessConfiguration")]
        assert len(hello) == 1 and len(items) == 2
        assert hello[0]["state"] == "enabled" and hello[0]["securityDeviceRequired"] is True
        assert hello[0]["pinMinimumLength"] == 6 and hello[0]["id"].endswith("_DefaultWindowsHelloForBusiness")
        lab_tenant.tenant.set_enrollment_hello(EnrollmentHello(state="disabled"))
        knowledge = read_tenant(graph, [])
    assert knowledge.enrollment is not None and knowledge.enrollment.state == "disabled"
    assert "does not provision" in knowledge.enrollment.at_reenrollment()
    assert knowledge.requests == 1


def test_preflight_reads_are_batched_once_per_wave(lab_tenant: Tenant) -> None:
    """1 request for the enrollment policy, 2 for 20 device objects (15 per `in` filter), 2 per distinct user."""
    with lab_tenant.graph() as graph:
        knowledge = read_tenant(graph, lab_tenant.queries())
    users = DEVICES + 1  # each device's own user, and `shared` read once for all twenty devices
    assert knowledge.requests == 1 + 2 + 2 * users
    assert lab_tenant.server.service.requests["GET devices"] == 2
    assert lab_tenant.server.service.requests["GET deviceEnrollmentConfigurations"] == 1
    assert not knowledge.failures
    device = lab_tenant.devices[3]
    finding = knowledge.finding(lab_tenant.queries()[3])
    assert finding["device_object"] == "present" and finding["device_problem"] is None
    assert finding["device_object_id"] == lab_tenant.tenant.device_object_id(device)
    own = device.users[0]
    methods = finding["users"][own.sid]["hello_methods"]
    assert [m["key_id"] for m in methods] == [normal_key_id(own.container.key_id)]  # type: ignore[union-attr]
    assert methods[0]["created"] and methods[0]["device"] == device.name
    shared = finding["users"][device.users[1].sid]["hello_methods"]
    assert len(shared) == DEVICES  # one key per device the shared user provisioned on
    policy = finding["enrollment_policy"]
    assert policy["state"] == "enabled" and "cloud Kerberos trust" in policy["at_reenrollment"]


def test_a_deleted_or_disabled_device_object_is_a_clear_finding(lab_tenant: Tenant) -> None:
    deleted, disabled = lab_tenant.devices[0], lab_tenant.devices[16]
    lab_tenant.tenant.delete_device(deleted.name)
    lab_tenant.tenant.disable_device(disabled.name)
    with lab_tenant.graph() as graph:
        knowledge = read_tenant(graph, lab_tenant.queries())
    gone = knowledge.finding(lab_tenant.queries()[0])
    assert gone["device_object"] == "missing" and gone["device_object_id"] is None
    assert f"no device object with deviceId {deleted.device_id}" in gone["device_problem"]
    assert "Primary Refresh Token" in gone["device_problem"]
    # the user's methods are still read: the key stays registered after the device object is deleted
    assert gone["users"][deleted.users[0].sid]["hello_methods"]
    off = knowledge.finding(lab_tenant.queries()[16])
    assert off["device_object"] == "disabled" and "accountEnabled false" in off["device_problem"]
    unregistered = knowledge.finding(DeviceQuery("PC-9999", None, ()))
    assert unregistered["device_object"] == "not_registered"


def test_a_missing_permission_is_recorded_and_the_rest_still_read(lab_tenant: Tenant) -> None:
    """An app without DeviceManagementServiceConfig.Read.All: the enrollment part is a recorded 403, the devices
    and users are read; nothing raises."""
    registration = lab_tenant.server.app_registration
    registration.roles = frozenset(r for r in registration.roles if not r.startswith("DeviceManagementServiceConfig"))
    with lab_tenant.graph() as graph:
        knowledge = read_tenant(graph, lab_tenant.queries()[:2])
    assert knowledge.enrollment is None
    assert "403" in knowledge.failures["enrollment"]
    finding = knowledge.finding(lab_tenant.queries()[0])
    assert finding["device_object"] == "present" and finding["failures"] == {
        "enrollment": knowledge.failures["enrollment"]
    }


def test_an_unreadable_device_batch_is_unknown_not_missing(lab_tenant: Tenant) -> None:
    """Devices not answered (the token refused) are ``unknown``, never reported as deleted."""
    with lab_tenant.graph(secret="wrong") as graph:
        knowledge = read_tenant(graph, lab_tenant.queries()[:1])
    finding = knowledge.finding(lab_tenant.queries()[0])
    assert finding["device_object"] == "unknown" and "devices" in knowledge.failures


def test_a_wave_records_each_device_finding_and_the_report_shows_them(lab_tenant: Tenant, tmp_path: Path) -> None:
    """preflight_wave reads from the recorded facts, appends one finding per device to the audit log; a second read
    after the admin deleted a device object adds findings and loses none; HTML and JSON show the latest."""
    store = Store.open(tmp_path / "state", synchronous="NORMAL")
    try:
        store.create_wave("pilot", playbook_name="to-cloud-kerberos", playbook_hash=content_hash("x"))
        chosen = lab_tenant.devices[:3]
        store.enroll("pilot", [d.name for d in chosen])
        for device in chosen:
            users = tuple(UserFacts(sid=u.sid) for u in device.users)
            store.save_facts(
                device.name,
                DeviceFacts(name=device.name, device_id=device.device_id, users=users).model_dump(mode="json"),
            )
        with lab_tenant.graph() as graph:
            first = preflight_wave(store, graph, "pilot", actor="admin@contoso")
            assert first.requests == 1 + 1 + 2 * 4  # policy, one device batch, 3 own users + shared
            lab_tenant.tenant.delete_device(chosen[1].name)
            preflight_wave(store, graph, "pilot", actor="admin@contoso")
        recorded = store.audit_entries(action=AUDIT_ACTION)
        assert len(recorded) == 6 and store.verify_audit().ok
        assert [r.after["device_object"] for r in recorded if r.device == chosen[1].name] == ["present", "missing"]  # type: ignore[index,call-overload]
        report = collect_report(store, "pilot")
        shown = {f["device"]: f for f in report.as_json()["entra_at_preflight"]}
        assert shown[chosen[1].name]["device_object"] == "missing"
        assert shown[chosen[0].name]["device_object"] == "present"
        assert shown[chosen[0].name]["enrollment_policy"]["state"] == "enabled"
        per_device = {d["name"]: d for d in report.as_json()["devices"]}
        assert per_device[chosen[1].name]["entra_at_preflight"]["device_object"] == "missing"
        html = render_html(report)
        assert 'id="entra-preflight"' in html and "Entra ID at preflight" in html
        assert f"no device object with deviceId {chosen[1].device_id}" in html
        assert "It is applied only when a device enrolls in Intune" in html
        assert "1 of 3 devices have a device object to look at" in html
    finally:
        store.close()


def test_cli_reads_and_records_a_wave(lab_tenant: Tenant, tmp_path: Path) -> None:
    """`migrator entra preflight --wave pilot`: the findings as JSON, exit 1 with a deleted device object (recorded,
    the store kept), exit 0 once every device has its object; bad input exits 2."""
    state = tmp_path / "state"
    chosen = lab_tenant.devices[:2]
    store = Store.open(state, synchronous="NORMAL")
    store.create_wave("pilot", playbook_name="to-cloud-kerberos", playbook_hash=content_hash("x"))
    store.enroll("pilot", [d.name for d in chosen])
    for device in chosen:
        users = tuple(UserFacts(sid=u.sid) for u in device.users)
        facts = DeviceFacts(name=device.name, device_id=device.device_id, users=users)
        store.save_facts(device.name, facts.model_dump(mode="json"))
    store.close()
    server = lab_tenant.server
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "defaults": {"ca_bundle": str(server.ca_bundle)},
                "devices": [{"name": d.name, "address": d.address} for d in chosen],
                "lab": {
                    "control": "http://127.0.0.1:9",
                    "graph": {"url": server.url, "authority": server.authority, "tenant_id": server.tenant.tenant_id},
                },
            }
        )
    )
    secrets = tmp_path / "lab-secrets.env"
    secrets.write_text(
        f"MIGRATOR_GRAPH_CLIENT_ID={server.client_id}\nMIGRATOR_GRAPH_CLIENT_SECRET={server.client_secret}\n"
    )
    args = ["entra", "preflight", "--wave", "pilot", "--state", str(state), "--inventory", str(inventory)]
    args += ["--secrets", str(secrets)]
    env = {"MIGRATOR_STORE": ""}
    lab_tenant.tenant.delete_device(chosen[0].name)
    flagged = CliRunner().invoke(app, [*args, "--json"], env=env)
    assert flagged.exit_code == 1, flagged.output
    answer = json.loads(flagged.output)
    assert [d["device_object"] for d in answer["devices"]] == ["missing", "present"]
    assert answer["graph_requests"] == 1 + 1 + 2 * 3 and not answer["failures"]
    assert server.client_secret not in flagged.output
    lab_tenant.tenant.state.deleted_devices.clear()  # the admin re-joined it
    fine = CliRunner().invoke(app, args, env=env)
    assert fine.exit_code == 0, fine.output
    assert "enrollment policy: enabled" in fine.output and "0 to look at" in fine.output
    store = Store.open(state, synchronous="NORMAL")
    try:
        assert len(store.audit_entries(action=AUDIT_ACTION)) == 4  # both reads kept
    finally:
        store.close()
    unknown = CliRunner().invoke(app, [*args[:3], "nope", *args[4:]], env=env)
    assert unknown.exit_code == 2 and "no wave named 'nope'" in unknown.output


def test_a_wave_start_finds_new_devices_by_name_and_their_visit_reads_the_rest(
    lab_tenant: Tenant, tmp_path: Path
) -> None:
    """EntraPreflight: the recorded devices read by deviceId at the start, the 15 first-seen ones found by name in
    one request; a first-seen device's visit reads only its own user (``shared`` is known), once; a deviceId the
    name lookup did not answer for is read at the visit; requests per device add up to what was sent."""
    store = Store.open(tmp_path / "state", synchronous="NORMAL")
    try:
        store.create_wave("pilot", playbook_name="to-cloud-kerberos", playbook_hash=content_hash("x"))
        store.enroll("pilot", [d.name for d in lab_tenant.devices])
        recorded, first_seen = lab_tenant.devices[:5], lab_tenant.devices[5:]
        for device in recorded:
            users = tuple(UserFacts(sid=u.sid) for u in device.users)
            store.save_facts(
                device.name,
                DeviceFacts(name=device.name, device_id=device.device_id, users=users).model_dump(mode="json"),
            )
        with lab_tenant.graph() as graph:
            entra = EntraPreflight(store, graph, "pilot", actor="admin@contoso")
            entra.start([d.name for d in lab_tenant.devices])
            assert graph.requests == 1 + 1 + 2 * 6 + 1  # policy, 5 ids, 5 own users + shared, 15 names
            assert entra.states() == {d.device_id: "present" for d in lab_tenant.devices}
            newcomer = first_seen[0]
            facts = DeviceFacts(
                name=newcomer.name,
                device_id=newcomer.device_id,
                users=tuple(UserFacts(sid=u.sid) for u in newcomer.users),
            )
            before = graph.requests
            assert entra.device(newcomer.name, facts)[str(newcomer.device_id)] == "present"
            assert graph.requests - before == 2  # its own user by SID and their Hello methods
            assert entra.device(newcomer.name, facts) == entra.states() and graph.requests - before == 2
            moved = first_seen[1]  # re-joined since: a deviceId the wave start did not read
            rejoined = DeviceFacts(name=moved.name, device_id=str(uuid.uuid4()), users=())
            assert entra.device(moved.name, rejoined)[str(rejoined.device_id)] == "missing"
            sent = graph.requests
        findings = {r.device: r.after for r in store.audit_entries(action=AUDIT_ACTION)}
        assert set(findings) == {d.name for d in [*recorded, newcomer, moved]}
        assert findings[newcomer.name]["graph_requests"] == 2  # type: ignore[index,call-overload]
        assert findings[moved.name]["device_object"] == "missing"  # type: ignore[index,call-overload]
        spent = graph_spend(store.audit_entries(), [d.name for d in lab_tenant.devices])
        assert round(sum(s.total for s in spent.values()), 6) == sent
        assert spent[recorded[0].name.casefold()].total == pytest.approx(14 / 5)
        assert spent[newcomer.name.casefold()].total == pytest.approx(1 / 15 + 2)
        assert spent[first_seen[2].name.casefold()].total == pytest.approx(1 / 15)
    finally:
        store.close()


def test_a_failed_read_leaves_the_object_unknown_and_a_later_answer_replaces_it(lab_tenant: Tenant) -> None:
    """A device batch that cannot be read is ``unknown`` in the states the machine gets (a warning, never
    "missing"); a later read of the same id replaces the failure."""
    device = lab_tenant.devices[0]
    knowledge = TenantKnowledge()
    with lab_tenant.graph(secret="wrong") as graph:
        read_devices(graph, knowledge, [str(device.device_id)])
    assert knowledge.device_states() == {device.device_id: "unknown"} and "devices" in knowledge.failures
    later = TenantKnowledge()
    with lab_tenant.graph() as graph:
        read_devices(graph, later, [str(device.device_id)])
    knowledge.merge(later)
    assert knowledge.device_states() == {device.device_id: "present"} and "devices" not in knowledge.failures


def test_counting_attributes_requests_to_the_thread_that_sent_them(lab_tenant: Tenant) -> None:
    """Threads sharing one client each count only their own requests; an outer block counts an inner one's."""
    with lab_tenant.graph() as graph:
        graph.token()
        counts: dict[int, int] = {}

        def work(n: int) -> None:
            with graph.counting() as outer:
                for _ in range(n):
                    with graph.counting() as inner:
                        graph.enrollment_configurations()
                    assert inner.requests == 1
            counts[n] = outer.requests

        threads = [threading.Thread(target=work, args=(n,)) for n in (1, 2, 3, 4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert counts == {1: 1, 2: 2, 3: 3, 4: 4} and graph.requests == 10


def test_run_refuses_a_missing_or_wrong_client_secret_before_writing(lab_tenant: Tenant, tmp_path: Path) -> None:
    """`migrator run` with an inventory naming the tenant: no client secret, or one the token endpoint refuses,
    exits 2 with the reason (never the secret), and the store holds no wave."""
    server = lab_tenant.server
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "devices": [{"name": d.name, "address": "127.0.0.1"} for d in lab_tenant.devices[:2]],
                "entra": {
                    "tenant_id": server.tenant.tenant_id,
                    "client_id": server.client_id,
                    "authority": server.authority,
                    "graph_url": server.url,
                    "ca_bundle": str(server.ca_bundle),
                },
            }
        )
    )
    state = tmp_path / "state"
    env = {"MIGRATOR_STORE": "", "MIGRATOR_GRAPH_CLIENT_SECRET": ""}
    for secret, reason in ((None, "no client secret"), ("not-the-secret", "refused app")):
        secrets = tmp_path / "secrets.env"
        lines = ["MIGRATOR_USERNAME=CORP\\admin", "MIGRATOR_PASSWORD=not-used"]
        secrets.write_text("\n".join([*lines, *([f"MIGRATOR_GRAPH_CLIENT_SECRET={secret}"] if secret else [])]) + "\n")
        args = ["run", "-i", str(inventory), "--state", str(state), "--secrets", str(secrets), "--yes"]
        result = CliRunner().invoke(app, args, env=env)
        assert result.exit_code == 2 and reason in result.output, result.output
        assert server.client_secret not in result.output
        if state.exists() and any(state.iterdir()):
            with Store.open(state) as store:
                assert store.list_waves() == []


def test_a_device_named_by_its_fqdn_is_found_by_its_host_name(lab_tenant: Tenant) -> None:
    """An inventory that names devices by FQDN: the name lookup asks for the host names, in one request."""
    first, second = lab_tenant.devices[:2]
    knowledge = TenantKnowledge()
    with lab_tenant.graph() as graph:
        read_device_names(graph, knowledge, [f"{first.name}.corp.contoso.com", second.name])
        assert graph.requests == 1
    assert knowledge.device_states() == {first.device_id: "present", second.device_id: "present"}
