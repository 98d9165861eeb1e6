"""Benchmark: the lab's Kerberos KDCs at fleet scale (issue 15: "report the KDC start time and RSS").

Builds the realms a `lab up --devices N` fleet has (users, the admin, HTTP/ and host/ for every device name and
FQDN, ldap/ for every DC, cross-realm trust), creates their databases and keytab in a temporary state folder,
starts one `krb5kdc` per realm and prints: principals per realm, the time to build the databases and keytab,
the time until every KDC listens, the KDCs' RSS, and one `kinit` against the first realm. Nothing is asserted.

    python bench/kdc.py --devices 1000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

from migrator.lab.directory.kdc import missing_tools
from migrator.lab.fleet import generate_fleet, parse_mix
from migrator.lab.runtime import LabPorts, LabRuntime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if missing_tools():
        raise SystemExit(f"MIT Kerberos is not installed ({', '.join(missing_tools())})")
    fleet = generate_fleet(args.devices, args.seed, parse_mix("key=50,cert=40,cloud=5,none=5"))
    with tempfile.TemporaryDirectory(prefix="migrator-bench-kdc-", dir=os.environ.get("BENCH_DIR")) as folder:
        runtime = LabRuntime(fleet, Path(folder), ports=LabPorts(http=0, https=0, ldap=0, ldaps=0), kerberos=True)
        kdc = runtime.kdc
        assert kdc is not None
        for realm in kdc.realms:
            count = len(realm.acceptor_principals()) + len(set(realm.users)) + 1
            print(f"realm {realm.name}: {count} principals ({len(realm.acceptor_principals())} acceptors)")
        started = time.monotonic()
        kdc.prepare()
        prepared = time.monotonic() - started
        kdc.launch()
        listening = time.monotonic() - started
        try:
            print(f"databases and keytab: {prepared:.2f} s; every KDC listening after {listening:.2f} s")
            print(f"KDCs: {len(kdc.processes)} processes, RSS {kdc.rss_kib() / 1024:.1f} MiB in all")
            env = dict(os.environ, KRB5_CONFIG=str(kdc.krb5_conf_path), KRB5CCNAME=f"FILE:{folder}/ccache")
            principal = f"{fleet.admin.username}@{kdc.realms[0].name}"
            begin = time.monotonic()
            subprocess.run(
                ["kinit", principal], input=runtime.password + "\n", text=True, env=env, check=True, capture_output=True
            )
            print(f"kinit {principal}: {(time.monotonic() - begin) * 1000:.0f} ms")
        finally:
            kdc.stop()


if __name__ == "__main__":
    main()
