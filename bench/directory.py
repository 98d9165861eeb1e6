"""Benchmark of the product's directory reads against the lab's DCs (prints figures; never asserted in tests).

A wave reads each domain once, before any device (:func:`migrator.directory.knowledge.read_directory`): the Entra
Kerberos object, its key version, and the transitive members of each msDS-NeverRevealGroup group, paged. This
prints, for fleets of 100 and D devices (default 10,000), the LDAP requests and the time of that read (it must not
grow with the devices), and of ``inventory from-ad``'s paged computer search of the largest domain (which does:
one page per 1,000 computers). The DCs are the lab's, built from the generated fleet, on free loopback ports.

Usage: ``.venv/bin/python bench/directory.py [--devices 10000]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from migrator.directory.client import DirectoryClient
from migrator.directory.knowledge import read_directory
from migrator.directory.reader import read_computers
from migrator.directory.settings import resolve_target
from migrator.lab.fleet import generate_fleet, parse_mix
from tests.directory.conftest import CREDENTIALS, write_inventory
from tests.lab.directory.conftest import start_directory, stop_directory


def measure(devices: int, work: Path) -> None:
    started = time.perf_counter()
    fleet = generate_fleet(devices, 21, parse_mix("key=50,cert=40,cloud=5,none=5"))
    running, loop, thread = start_directory(fleet, work)
    built = time.perf_counter() - started
    try:
        inventory = write_inventory(running, work)
        read_directory(inventory, CREDENTIALS)  # warm (TLS session, imports)
        knowledge = read_directory(inventory, CREDENTIALS)
        protected = sum(len(d.protected) for d in knowledge.domains.values())
        print(
            f"{devices:>6} devices, {len(knowledge.domains)} domains: wave read {knowledge.requests} LDAP requests "
            f"in {knowledge.seconds * 1000:.0f} ms ({protected} protected accounts; lab built in {built:.1f} s)"
        )
        biggest = max(fleet.domains, key=lambda d: sum(x.domain == d.dns_name for x in fleet.devices))
        target = resolve_target(inventory, biggest.dns_name)
        started = time.perf_counter()
        with DirectoryClient(target, CREDENTIALS) as client:
            computers = sum(1 for _ in read_computers(client))
            requests = client.requests
        print(
            f"{'':>6}  inventory from-ad {biggest.dns_name}: {computers} computers, {requests} LDAP requests "
            f"in {(time.perf_counter() - started) * 1000:.0f} ms"
        )
    finally:
        stop_directory(running, loop, thread)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for count in (100, args.devices):
            sub = Path(folder) / str(count)
            sub.mkdir()
            measure(count, sub)


if __name__ == "__main__":
    main()
