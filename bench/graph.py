"""Benchmarks of Graph work against the lab tenant: preflight reads and stale Hello key cleanup (prints figures;
never asserted in tests).

Preflight reads: a wave of the generated fleet's devices, half of them with facts already recorded (read by
deviceId at the wave's start), half first seen by the wave (found by name at its start, the rest read at their
first visit), through :class:`migrator.cloud.knowledge.EntraPreflight` as a wave run does; prints the Graph
requests per device of each half, as the report counts them (:mod:`migrator.cloud.spend`).

A generated fleet's certificate trust users are taken through the documented migration in the lab (cloud policy,
container deleted in the user's session, sign-out and sign-in: a new key is registered, the old one stays), and
recorded in a store as migrated; then :class:`migrator.cloud.cleanup.StaleKeyCleanup` removes the stale keys
through real msal + httpx over HTTPS. Prints the Graph requests and the time per user, without and with
throttling (a 429 with ``Retry-After: 0`` on one request in five).

Usage: ``.venv/bin/python bench/graph.py [--devices 200]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from migrator.cloud.cleanup import StaleKeyCleanup, normal_key_id
from migrator.cloud.client import GraphClient
from migrator.cloud.knowledge import EntraPreflight
from migrator.cloud.settings import GraphSettings
from migrator.cloud.spend import graph_spend
from migrator.facts import DeviceFacts, UserFacts
from migrator.lab import policy
from migrator.lab.clock import VirtualClock
from migrator.lab.fleet import generate_fleet, parse_mix
from migrator.lab.graph import GraphServer, GraphTenant
from migrator.lab.runtime import new_lab
from migrator.lab.server.certs import LabCA
from migrator.store import Store, content_hash


def migrate_in_lab(devices: int, store: Store) -> tuple[GraphTenant, int]:
    """The fleet's hybrid cert-trust users moved to cloud trust in the lab, recorded as migrated in ``store``."""
    fleet = generate_fleet(devices, 9, parse_mix("cert=100"))
    lab = new_lab(fleet, VirtualClock(fleet.clock))
    tenant = GraphTenant(lab)
    store.create_wave("bench", playbook_name="bench", playbook_hash=content_hash("bench"))
    users = 0
    for domain in fleet.domains:
        domain.entra_kerberos = True
    for device in fleet.devices:
        if device.join_type != "hybrid":
            continue
        device.dc_reachable, device.vpn_only = True, False
        store.enroll("bench", [device.name])
        store.save_facts(device.name, {"name": device.name, "device_id": device.device_id})
        for user in device.users:
            if user.container is None:
                continue
            user.has_prt, user.privileged = True, False
            old = user.container.key_id
            device.registry.delete_value(policy.GPO_KEY, policy.CERT_TRUST)
            device.registry.set_value(policy.GPO_KEY, policy.CLOUD_TRUST, 1, "REG_DWORD")
            lab.sign_in(device, user)
            lab.delete_hello_container(device, lab.user_principal(device, user))
            lab.sign_out(device, user)
            lab.sign_in(device, user)
            if user.container is None or normal_key_id(user.container.key_id) == normal_key_id(old):
                continue
            store.add_user(device.name, user.qualified_name, sid=user.sid, container_trust="cert", key_id=old)
            context = {"sid": user.sid, "deleted_by_us": True, "key_id": old}
            store.user_transition(device.name, user.qualified_name, "pending", "migrated", "bench", context=context)
            users += 1
    return tenant, users


def _settings(tenant: GraphTenant, server: GraphServer) -> GraphSettings:
    return GraphSettings(
        tenant_id=tenant.tenant_id,
        client_id=server.client_id,
        authority=server.authority,
        graph_url=server.url,
        ca_bundle=server.ca_bundle,
        secret=SecretStr(server.client_secret),
    )


def preflight(devices: int, work: Path) -> None:
    """Preflight reads of one wave run: half the devices recorded, half first seen (module docstring)."""
    fleet = generate_fleet(devices, 9, parse_mix("cert=100"))
    lab = new_lab(fleet, VirtualClock(fleet.clock))
    tenant = GraphTenant(lab)
    store = Store.open(work / "state-preflight")
    store.create_wave("bench", playbook_name="bench", playbook_hash=content_hash("bench"))
    chosen = [d for d in fleet.devices if d.device_id]
    store.enroll("bench", [d.name for d in chosen])
    facts = {
        d.name: DeviceFacts(name=d.name, device_id=d.device_id, users=tuple(UserFacts(sid=u.sid) for u in d.users))
        for d in chosen
    }
    recorded, first_seen = chosen[0::2], chosen[1::2]
    for device in recorded:
        store.save_facts(device.name, facts[device.name].model_dump(mode="json"))
    server = GraphServer(tenant, LabCA(work / "pki"), address="127.18.0.1")
    server.start()
    try:
        with GraphClient(_settings(tenant, server)) as graph:
            graph.token()
            started = time.perf_counter()
            entra = EntraPreflight(store, graph, "bench", actor="bench")
            entra.start([d.name for d in chosen])
            at_start = graph.requests
            for device in chosen:  # each device's first visit, with its fresh facts
                entra.device(device.name, facts[device.name])
            seconds = time.perf_counter() - started
            spent = graph_spend(store.audit_entries(), [d.name for d in chosen])
            users = len({u.sid for d in chosen for u in d.users})

            def per_device(group: list[Any]) -> float:
                return sum(spent[d.name.casefold()].total for d in group if d.name.casefold() in spent) / len(group)

            print(
                f"preflight reads: {len(chosen)} devices ({len(recorded)} recorded, {len(first_seen)} first seen), "
                f"{users} distinct users: {graph.requests} Graph requests ({at_start} at the wave's start, "
                f"{graph.requests - at_start} at the visits), {seconds:.2f} s; per device: recorded "
                f"{per_device(recorded):.2f}, first seen {per_device(first_seen):.2f}, all "
                f"{graph.requests / len(chosen):.2f}"
            )
    finally:
        server.stop()
        store.close()


def run(devices: int, throttle: bool, work: Path) -> None:
    store = Store.open(work / f"state-{throttle}")
    tenant, users = migrate_in_lab(devices, store)
    server = GraphServer(tenant, LabCA(work / "pki"), address="127.18.0.1")
    if throttle:
        server.service.faults.add(kind="throttle", probability=0.2, delay=0)
    server.start()
    try:
        with GraphClient(_settings(tenant, server)) as graph:
            graph.token()  # the token (and TLS) once, outside the per-user figures
            in_graph = [0.0]
            send = graph.request

            def timed(*args: Any, **kwargs: Any) -> Any:
                began = time.perf_counter()
                try:
                    return send(*args, **kwargs)
                finally:
                    in_graph[0] += time.perf_counter() - began

            graph.request = timed  # type: ignore[method-assign]
            cleanup = StaleKeyCleanup(store, graph, actor="bench")
            started = time.perf_counter()
            results = [r for row in store.list_devices(wave="bench") for r in cleanup.device(row.name)]
            seconds = time.perf_counter() - started
            removed = sum(r.status == "removed" for r in results)
            print(
                f"{'throttled 20%' if throttle else 'no throttling'}: {users} users, {removed} stale keys removed, "
                f"{graph.requests} Graph requests ({graph.requests / max(users, 1):.2f} per user, "
                f"{len(graph.retries)} retries after 429), {seconds:.2f} s ({1000 * seconds / max(users, 1):.1f} ms "
                f"per user, {1000 * in_graph[0] / max(users, 1):.1f} ms of it in Graph requests, the rest journal "
                "and audit commits)"
            )
    finally:
        server.stop()
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        preflight(args.devices, Path(work))
        for throttle in (False, True):
            run(args.devices, throttle, Path(work))


if __name__ == "__main__":
    main()
