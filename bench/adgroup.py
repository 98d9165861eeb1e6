"""Benchmark of the ad-group policy channel against the lab's DCs (prints figures; never asserted in tests).

A wave of D devices (default 10,000) in batches of B (default 1,000) moves each batch's computer accounts into the
cloud trust GPO's group and out of the certificate trust GPO's group with
:meth:`migrator.engine.channels.AdGroupChannel.start_batch`: per domain and batch, one bind, one search per group,
one search per 1,000 computers and one modify per group with work. This prints the LDAP requests, the modifies
and the time of the whole wave's changes, and of its rollback: they grow with domains × batches, not with
devices. Every domain-joined device of a domain with Entra Kerberos is put at its policy step first, as preflight
would leave it. The DCs are the lab's, built from the generated fleet, on free loopback ports.

Usage: ``.venv/bin/python bench/adgroup.py [--devices 10000] [--batch 1000]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from migrator.directory.knowledge import read_directory
from migrator.engine.channels import AdGroupChannel
from migrator.lab.directory.build import CLOUD_TRUST_GROUP, HELLO_GPO_GROUP
from migrator.playbook import PolicySettings
from migrator.store import Store, content_hash
from tests.directory.conftest import CREDENTIALS, write_inventory
from tests.lab.directory.conftest import seeded_directory


def measure(devices: int, batch: int, work: Path) -> None:
    started = time.perf_counter()
    with seeded_directory(work / "dc", devices=devices) as running:
        built = time.perf_counter() - started
        inventory = write_inventory(running, work)
        knowledge = read_directory(inventory, CREDENTIALS)
        eligible = {d.dns_name for d in running.fleet.domains if d.entra_kerberos}
        names = [d.name for d in running.fleet.devices if d.domain in eligible]
        with Store.open(work / "state", synchronous="NORMAL") as store:
            store.create_wave("bench", playbook_name="ad-group", playbook_hash=content_hash("bench"))
            store.enroll("bench", names)
            for name in names:
                store.transition(name, "pending", "policy", "preflight_done")
            policy = PolicySettings(
                channel="ad-group", cloud_trust_group=CLOUD_TRUST_GROUP, cert_trust_group=HELLO_GPO_GROUP
            )
            channel = AdGroupChannel(policy, inventory, CREDENTIALS, store=store, wave="bench", knowledge=knowledge)
            batches = [names[i : i + batch] for i in range(0, len(names), batch)]
            began = time.perf_counter()
            changes = [c for index, chunk in enumerate(batches) for c in channel.start_batch(index, chunk)]
            moved = time.perf_counter() - began
            modifies = sum(m.modifies for c in changes for m in c.changes)
            requests = channel.requests
            began = time.perf_counter()
            restored = channel.restore()
            undone = time.perf_counter() - began
            restore_modifies = sum(m.modifies for c in restored for m in c.changes)
    print(
        f"{devices:>6} devices ({len(names)} in {len(eligible)} domains with Entra Kerberos), batches of {batch} "
        f"({len(batches)}); lab DCs built in {built:.1f} s"
    )
    print(
        f"  migrate : {requests:>5} LDAP requests, {modifies:>3} modifies, {moved * 1000:>7.0f} ms "
        f"({len(changes)} domain changes, {requests / max(1, len(names)):.3f} requests per device)"
    )
    print(
        f"  rollback: {channel.requests - requests:>5} LDAP requests, {restore_modifies:>3} modifies, "
        f"{undone * 1000:>7.0f} ms ({len(restored)} domain changes)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=1_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        measure(100, min(args.batch, 50), Path(folder) / "small")
        measure(args.devices, args.batch, Path(folder) / "large")


if __name__ == "__main__":
    main()
