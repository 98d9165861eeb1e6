"""Store throughput and size: run ``.venv/bin/python bench/store.py [--devices N] [--dir DIR] [--postgres URL]``.

Prints transitions persisted per second (1 and 8 threads, synchronous NORMAL and FULL), journal intent+outcome
pairs per second, audit appends per second, and the store's size per 1,000 devices after a realistic run (each
device: 15 transitions, 8 journal pairs, 2 facts snapshots of ~3 KB, 4 policy values, 10 audit entries), on
SQLite. With ``--postgres URL`` (a server where it may create a database, e.g.
``postgresql://postgres@127.0.0.1/test``) the same rates on PostgreSQL too, each in a schema of a database it
creates and drops. Figures only: nothing here is asserted.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from migrator.store import AuditEntry, PolicyValue, Store, content_hash

Where = Callable[[str], str]  # a bench's name -> the location of a fresh store for it

PFW = r"HKLM\SOFTWARE\Policies\Microsoft\PassportForWork"
CYCLE = ["pending", "preflight", "policy_set", "containers_cleared", "verified"]


def _open(where: Where, name: str, synchronous: Literal["NORMAL", "FULL"] = "FULL") -> Store:
    store = Store.open(where(name), synchronous=synchronous)
    store.create_wave("bench", playbook_name="key-to-cloud", playbook_hash=content_hash(name), change_ticket="CHG1")
    return store


def _walk(store: Store, device: str, moves: int) -> None:
    """``moves`` transitions around CYCLE (each one a committed transaction)."""
    state = store.get_device(device).state
    for _ in range(moves):
        target = CYCLE[(CYCLE.index(state) + 1) % len(CYCLE)]
        state = store.transition(device, state, target, f"to {target}").state


def transitions_per_second(where: Where, threads: int, synchronous: Literal["NORMAL", "FULL"]) -> float:
    store = _open(where, f"transitions-{threads}-{synchronous}", synchronous)
    moves = 400
    names = [f"PC-{t:02}" for t in range(threads)]
    store.enroll("bench", names)
    workers = [threading.Thread(target=_walk, args=(store, name, moves)) for name in names]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    store.close()
    return threads * moves / elapsed


def _rate(count: int, action: Callable[[int], object]) -> float:
    started = time.perf_counter()
    for index in range(count):
        action(index)
    return count / (time.perf_counter() - started)


def journal_pairs_per_second(where: Where) -> float:
    store = _open(where, "journal")
    store.enroll("bench", ["PC-1"])

    def pair(index: int) -> None:
        entry = store.intent("PC-1", "set_cloud_trust_policy", index, {"value": 1}, key=f"PC-1/{index}")
        store.outcome(entry.id, {"previous": None}, ok=True)

    rate = _rate(500, pair)
    store.close()
    return rate


def audit_appends_per_second(where: Where) -> float:
    store = _open(where, "audit")
    rate = _rate(
        1000,
        lambda i: store.append_audit(AuditEntry("bench", "transition", f"PC-{i}", "CHG1", {"s": "a"}, {"s": "b"})),
    )
    store.close()
    return rate


def _facts(device: str, index: int) -> dict[str, object]:
    """About 3 KB of facts shaped like what dsregcmd, klist and quser parsers produce."""
    return {
        "dsregcmd": {
            "AzureAdJoined": True,
            "DomainJoined": True,
            "DeviceId": f"{index:08x}-1234-5678-9abc-def012345678",
            "TenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "TenantName": "Contoso",
            "DeviceAuthStatus": "SUCCESS",
            "KeyContainerId": f"{index:08x}-aaaa-bbbb-cccc-dddddddddddd",
            "TpmProtected": True,
            "ngc_prerequisites": {
                "IsDeviceJoined": True,
                "IsUserAzureAD": True,
                "PolicyEnabled": True,
                "PostLogonEnabled": True,
                "DeviceEligible": True,
                "SessionIsNotRemote": True,
                "CertEnrollment": "none",
                "PreReqResult": "WillProvision",
            },
            "sso": {"AzureAdPrt": True, "OnPremTgt": True, "CloudTgt": False, "KerbTopLevelNames": ".contoso.com"},
            "diagnostics": [f"line {n}: AttemptStatus 0x{n:08x} server {device}.contoso.com" for n in range(30)],
        },
        "klist": {"tickets": [{"server": f"krbtgt/CONTOSO.COM @ CONTOSO.COM #{n}", "kdc": "DC01"} for n in range(12)]},
        "users": [{"name": f"CONTOSO\\user{n}", "session": n, "state": "Active"} for n in range(3)],
        "policy": {"UseCloudTrustForOnPremAuth": None, "Enabled": 1, "UseCertificateForOnPremAuth": 0},
    }


def realistic_size_per_thousand(directory: Path, devices: int) -> tuple[int, float]:
    store = _open(lambda name: str(directory / name), "realistic")
    names = [f"PC-{n:05}" for n in range(devices)]
    store.enroll("bench", names)
    started = time.perf_counter()
    for n, name in enumerate(names):
        state = "pending"
        for move in range(15):
            target = CYCLE[(CYCLE.index(state) + 1) % len(CYCLE)]
            audit = AuditEntry("engine", f"transition {target}", before={"state": state}, after={"state": target})
            state = store.transition(name, state, target, f"to {target}", audit=audit if move < 10 else None).state
        for step in range(8):
            entry = store.intent(
                name, f"step-{step}", 1, {"script": "Set-Policy.ps1", "value": step}, key=f"{name}/{step}"
            )
            store.outcome(entry.id, {"changed": True, "previous": None}, ok=True)
        for index in range(2):
            store.save_facts(name, _facts(name, n * 2 + index))
        store.snapshot_policy(
            name,
            [
                PolicyValue(PFW, "UseCloudTrustForOnPremAuth", existed=False),
                PolicyValue(PFW, "Enabled", existed=True, type="DWord", data=1),
                PolicyValue(PFW, "UseCertificateForOnPremAuth", existed=True, type="DWord", data=1),
                PolicyValue(PFW, "RequireSecurityDevice", existed=True, type="DWord", data=1),
            ],
        )
    elapsed = time.perf_counter() - started
    with store.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    assert store.verify_audit().ok
    store.close()
    size = sum(p.stat().st_size for p in (directory / "realistic").iterdir())
    return size, elapsed


@contextmanager
def postgres_schemas(server: str) -> Iterator[Where]:
    """A database of this run's own on ``server`` (dropped at the end), and a fresh schema in it per bench."""
    url = make_url(server)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    database = f"migrator_bench_{os.getpid()}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{database}"'))
    own = url.set(database=database)
    engine = create_engine(own, isolation_level="AUTOCOMMIT")

    def where(name: str) -> str:
        schema = name.replace("-", "_").lower()
        with engine.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        return own.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)

    try:
        yield where
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()


def _line(what: str, rate: float) -> None:
    print(f"{what:<59}{rate:8.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000, help="devices in the realistic run (default 1000)")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the stores (default: a temp dir)")
    parser.add_argument("--postgres", default=None, help="also measure on this PostgreSQL server (a URL)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as temp:
        directory = Path(temp)

        def in_directory(name: str) -> str:
            return str(directory / name)

        for synchronous in ("FULL", "NORMAL"):
            for threads in (1, 8):
                rate = transitions_per_second(in_directory, threads, synchronous)
                print(f"transitions/s, SQLite synchronous={synchronous:<6}, {threads} thread(s): {rate:8.0f}")
        print(
            f"journal intent+outcome pairs/s (FULL):                     {journal_pairs_per_second(in_directory):8.0f}"
        )
        print(
            f"audit appends/s (FULL):                                    {audit_appends_per_second(in_directory):8.0f}"
        )
        size, elapsed = realistic_size_per_thousand(directory, args.devices)
        print(
            f"realistic run: {args.devices} devices in {elapsed:.1f} s; store size {size:,} bytes "
            f"= {size * 1000 / args.devices / 1e6:.2f} MB per 1,000 devices"
        )
    if args.postgres:
        with postgres_schemas(args.postgres) as on_postgres:
            for threads in (1, 8):
                rate = transitions_per_second(on_postgres, threads, "FULL")
                _line(f"transitions/s, PostgreSQL, {threads} thread(s):", rate)
            _line("journal intent+outcome pairs/s, PostgreSQL:", journal_pairs_per_second(on_postgres))
            _line("audit appends/s, PostgreSQL:", audit_appends_per_second(on_postgres))


if __name__ == "__main__":
    main()
