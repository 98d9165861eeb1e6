"""Benchmark of Kerberos against NTLM for the device transports, on an in-process lab with its MIT KDCs (prints
figures; never asserted in tests).

For PSRP and WinRM, over HTTP (message encryption) and HTTPS, with ``auth: ntlm`` and ``auth: kerberos``
(ticket from the password, in migrator's private MEMORY cache): the WS-Man requests (HTTP POSTs, authentication
legs included) of a cold facts collection on one device, and the median time of a cold collection (connection,
authentication, pool/shell, one script) over D devices (default 24) one after another. Kerberos costs one AS
exchange per process and one TGS exchange per device (its service ticket), then one HTTP leg; NTLM two legs.

Usage: ``.venv/bin/python bench/kerberos_auth.py [--devices 24]`` (needs MIT Kerberos: .ci/system-packages)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from migrator.inventory import Inventory, load_inventory
from migrator.lab.directory.kdc import missing_tools
from migrator.lab.fleet import generate_fleet, parse_mix
from migrator.lab.runtime import LabPorts, LabRuntime
from migrator.remote import open_transport
from migrator.remote.credentials import Credentials, load_credentials
from migrator.steps import CollectFacts, run_step


def _address(index: int) -> str:
    return f"127.95.{index // 250}.{index % 250 + 1}"


def measure(
    inventory: Inventory, credentials: Credentials, transport: str, scheme: str, auth: str, http_port: int
) -> tuple[int, float]:
    """(requests of the first device's cold collection, median seconds of a cold collection per device)."""
    times: list[float] = []
    first_requests = 0
    for index, entry in enumerate(inventory.devices):
        update: dict[str, object] = {"transport": transport, "auth": auth}
        if scheme == "http":
            update.update(scheme="http", port=http_port)
        connection = inventory.connection(entry).model_copy(update=update)
        started = time.perf_counter()
        t = open_transport(entry, connection, credentials)
        try:
            run_step(t, CollectFacts())
            if index == 0:
                first_requests = t.requests_sent
        finally:
            t.close()
        times.append(time.perf_counter() - started)
    return first_requests, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=24)
    args = parser.parse_args()
    if missing_tools():
        sys.exit(f"MIT Kerberos is not installed ({', '.join(missing_tools())}): bash .ci/system-packages")
    with tempfile.TemporaryDirectory(prefix="bench-kerberos-") as tmp:
        work = Path(tmp)
        fleet = generate_fleet(args.devices, 42, parse_mix("key=50,cert=40,cloud=5,none=5"))
        for index, device in enumerate(fleet.devices):
            device.address = _address(index)
        dc_addresses = {d.dns_name: f"127.96.0.{i + 1}" for i, d in enumerate(fleet.domains)}
        started = time.perf_counter()
        runtime = LabRuntime(
            fleet, work, ports=LabPorts(http=0, https=0, ldap=0, ldaps=0), dc_addresses=dc_addresses, kerberos=True
        )
        runtime.start()
        print(f"lab up with KDCs: {time.perf_counter() - started:.1f}s ({args.devices} devices)")
        try:
            path = work / "inventory.yaml"
            runtime.write_inventory(path)
            os.environ["KRB5CCNAME"] = f"FILE:{work / 'never-written'}"  # the password's TGT lives in memory
            inventory = load_inventory(path)
            credentials = load_credentials(work / "lab-secrets.env", environ={})
            http_port = runtime.server.http_port or 0
            print("transport scheme auth       requests(cold, 1 device)  median cold collection per device")
            for transport in ("psrp", "winrm"):
                for scheme in ("http", "https"):
                    for auth in ("ntlm", "kerberos"):
                        requests, median = measure(inventory, credentials, transport, scheme, auth, http_port)
                        print(f"{transport:9} {scheme:6} {auth:10} {requests:>24}  {median * 1000:8.1f} ms")
            assert not (work / "never-written").exists()
        finally:
            runtime.stop()


if __name__ == "__main__":
    main()
