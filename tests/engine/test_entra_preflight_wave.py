"""End to end: a lab wave whose inventory names an Entra ID tenant reads Entra ID for every device, including the
devices first seen by the wave (found by name at its start, looked up at their first visit), through real msal +
httpx; a disabled or deleted device object makes its device ineligible with the reason, an unreadable one lets
it go on with a warning, and the report shows the Graph requests spent on each device."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrator.directory.knowledge import DirectoryKnowledge
from migrator.engine.service import WaveRequest, build_runner, load_wave_inputs, plan_wave, signed_in_graph
from migrator.errors import CloudCredentialsError, InputError
from migrator.inventory import load_inventory
from migrator.lab.graph import GraphServer, GraphTenant
from migrator.lab.server.faults import FaultKind, FaultRule
from migrator.playbook import Waits
from migrator.report import collect_report
from migrator.report.csvout import write_devices_csv
from migrator.report.html import render_html
from migrator.store import Store
from tests.engine.labkit import (
    cooperative,
    entra_inventory,
    make_fleet,
    open_store,
    playbook,
    running_lab,
    sign_everyone_in,
)
from tests.loopback import free_addresses

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ENTRA_KERBEROS = {"corp.contoso.com": True, "CORP": True, "emea.corp.contoso.com": True, "EMEA": True}


def test_every_device_of_a_wave_is_read_in_entra_id_and_its_graph_requests_reported(tmp_path: Path) -> None:
    """Four devices no probe has seen: the first one's read fails (throttled past the retries) and it is migrated
    with a warning; a disabled and a deleted device object keep theirs from being migrated, with the reason; the
    last is read and migrated. A wrong secret is refused before anything is written."""
    fleet = cooperative(make_fleet(10, 6, "cert=100"))
    fleet.devices = [d for d in fleet.devices if d.join_type == "hybrid" and any(u.container for u in d.users)][:4]
    unreadable, disabled, deleted, present = fleet.devices
    with running_lab(fleet, tmp_path / "lab") as kit:
        tenant = GraphTenant(kit.lab)
        server = GraphServer(tenant, kit.server.ca, address=free_addresses(1)[0], faults=kit.server.faults)
        server.start()
        try:
            sign_everyone_in(kit)
            inventory_path = entra_inventory(tmp_path / "inventory.yaml", kit, fleet.devices, server)
            book = playbook().model_copy(
                update={"waits": Waits(recheck_every=6 * 3600, user_deadline=3 * 86400, reprovision_deadline=3 * 86400)}
            )
            assert not book.entra.remove_stale_hello_keys  # the inventory's entra: section alone opens Graph
            inventory = load_inventory(inventory_path)
            # Without a secret the wave is refused while its inputs are checked; a wrong one before any write.
            with pytest.raises(InputError, match="no client secret"):
                load_wave_inputs(WaveRequest(inventory=inventory_path))
            wrong = tmp_path / "wrong.env"
            wrong.write_text("MIGRATOR_GRAPH_CLIENT_SECRET=not-the-secret\n")
            with pytest.raises(CloudCredentialsError, match="refused app"):
                signed_in_graph(inventory, book, wrong)
            secrets = tmp_path / "secrets.env"
            secrets.write_text(f"MIGRATOR_GRAPH_CLIENT_SECRET={server.client_secret}\n")
            graph = signed_in_graph(inventory, book, secrets)
            assert graph is not None

            names = [d.name for d in fleet.devices]
            store = open_store(tmp_path / "state", kit, book, names, wave="pilot")
            tenant.disable_device(disabled.name)
            tenant.delete_device(deleted.name)
            # Ten throttled answers to device reads: the five attempts of the wave start's name lookup, then the
            # five of the first device's own lookup at its visit (one visit at a time, in order): its object
            # stays unknown, never "deleted"; the other devices' lookups are answered.
            kit.server.faults.add(FaultRule(kind=FaultKind.THROTTLE, actions=["devices"], count=10))
            settings = {
                "devices": names,
                "batch_size": 10,
                "concurrency": 1,
                "canary": 0,
                "max_fail_percent": 75.0,
                "approval": False,
                "windows": [],
                "entra_kerberos": ENTRA_KERBEROS,
            }
            runner = build_runner(
                store,
                "pilot",
                settings,
                book,
                inventory,
                kit.credentials,
                kit.clock,
                change_ticket="CHG-8",
                directory=DirectoryKnowledge(),
                graph=graph,
            )
            result = runner.run()
            assert result.state == "completed", result

            assert store.get_device(unreadable.name).state == "migrated"
            reasons = (store.get_device(unreadable.name).context or {}).get("reasons", [])
            assert any("could not be read" in r for r in reasons), reasons
            assert store.get_device(disabled.name).state == "ineligible"
            assert "is disabled" in (store.get_device(disabled.name).last_error or "")
            assert store.get_device(deleted.name).state == "ineligible"
            assert "no device object with deviceId" in (store.get_device(deleted.name).last_error or "")
            assert store.get_device(present.name).state == "migrated"
            assert not any(u.counters.container_deletions for d in (disabled, deleted) for u in d.users)

            report = collect_report(store, "pilot")
            shown = {f["device"]: f["device_object"] for f in report.as_json()["entra_at_preflight"]}
            assert shown == {
                unreadable.name: "unknown",
                disabled.name: "disabled",
                deleted.name: "missing",
                present.name: "present",
            }
            spent = {g["device"]: g for g in report.as_json()["graph_requests"]}
            assert set(spent) == set(names)
            # Every device's users are read at its visit (a user by SID, then their Hello methods: 2 each), plus
            # its object's lookup (the name lookup failed); the throttled attempts count as requests sent.
            for device in fleet.devices:
                own = 2 * len({u.sid for u in device.users}) + (5 if device is unreadable else 1)
                assert spent[device.name]["preflight"] >= own, (device.name, spent[device.name])
            sent = graph.requests
            assert round(sum(g["total"] for g in spent.values())) == sent
            html = render_html(report)
            assert "Graph requests per device" in html and all(name in html for name in names)
            out = tmp_path / "devices.csv"
            with out.open("w", encoding="utf-8") as handle:
                write_devices_csv(report, handle)
            assert out.read_text().splitlines()[0].endswith(",graph_requests")
        finally:
            server.stop()


def test_a_plan_without_a_runner_reads_nothing_in_entra_id(tmp_path: Path) -> None:
    """`run` and `resume` on a shared store plan the wave for workers, which read Entra ID for their own visits: the
    plan alone sends no Graph request but its sign-in (each process that visits reads once, not twice). Its runner,
    built on first use, does the wave-start read; :meth:`WavePlan.close` closes Graph when no runner was built."""
    fleet = cooperative(make_fleet(10, 6, "cert=100"))
    fleet.devices = [d for d in fleet.devices if d.join_type == "hybrid"][:2]
    with running_lab(fleet, tmp_path / "lab") as kit:
        server = GraphServer(GraphTenant(kit.lab), kit.server.ca, address=free_addresses(1)[0])
        server.start()
        try:
            inventory_path = entra_inventory(tmp_path / "inventory.yaml", kit, fleet.devices, server)
            secrets = tmp_path / "secrets.env"
            secrets.write_text(f"MIGRATOR_GRAPH_CLIENT_SECRET={server.client_secret}\n")
            request = WaveRequest(inventory=inventory_path, wave="w", entra_kerberos=ENTRA_KERBEROS)
            names = [d.name for d in fleet.devices]
            with Store.open(tmp_path / "state", now=kit.now) as store:
                plan = plan_wave(store, request, kit.credentials, kit.clock, secrets_file=secrets, with_runner=False)
                assert plan.graph is not None and plan.graph.requests == 0
                assert "runner" not in plan.__dict__ and plan.wave.devices == tuple(names)
                assert not any(g["total"] for g in collect_report(store, "w").as_json()["graph_requests"])
                read = plan.runner.on_end  # the runner, built now, read Entra ID at the wave's start (by name)
                assert plan.graph.requests > 0 and read
                spent = {g["device"]: g["preflight"] for g in collect_report(store, "w").as_json()["graph_requests"]}
                assert set(spent) == set(names) and all(spent.values()), spent
                plan.close()  # the runner was built: its end closes Graph
                assert plan.graph.http.is_closed
        finally:
            server.stop()
