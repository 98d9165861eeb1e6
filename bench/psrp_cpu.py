"""Benchmark: the orchestrator's CPU per script call over PSRP, the ways the transport has sent scripts.

`lab up` runs as a subprocess (its own process, so this process's CPU clock measures the client alone: pypsrp,
requests, TLS, our adapter). For each way, a device's runspace pool is opened, warmed, and then ``--calls``
calls of the wave's most frequent script (``collect_facts``) and of a parametrised one (``snapshot_policy``)
are timed by ``time.process_time``; the ways alternate round by round (A B C A B C ...) so that the machine's
load falls on them alike. Printed: CPU milliseconds per call (median of the rounds) and bytes sent per call.

- ``text``: the whole script text in every pipeline (``add_script`` + ``add_parameters``), pypsrp deep-copying
  each Command as it serialises (how the transport sent scripts before);
- ``text-nocopy``: the same with a Command that is its own deep copy (``__deepcopy__``);
- ``define-once``: the transport as it is (the script defined once per pool, then called by name).

Nothing is asserted.

    python bench/psrp_cpu.py --calls 40 --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pypsrp.powershell import PowerShell, RunspacePool

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from wave import lab_up, make_fleet

from migrator.inventory import load_inventory
from migrator.remote.credentials import Credentials
from migrator.remote.psrp import PsrpTransport, _OwnCopyCommand
from migrator.scripts import Script, load

ENTRIES = {"Entries": [{"path": "HKLM:\\SOFTWARE\\Policies\\Microsoft\\PassportForWork", "name": "Enabled"}]}


class TextTransport(PsrpTransport):
    """The script text in every pipeline, as the transport sent scripts before (``nocopy``: no deep copy)."""

    nocopy = False

    def _pipeline(self, pool: RunspacePool, items: Sequence[tuple[Script, Mapping[str, Any] | None]]) -> PowerShell:
        ps = PowerShell(pool)
        for index, (script, parameters) in enumerate(items):
            if index:
                ps.add_statement()
            if self.nocopy:
                ps.commands.append(_OwnCopyCommand(script.text, pool.protocol_version or "", is_script=True))
            else:
                ps.add_script(script.text)
            if parameters:
                ps.add_parameters(dict(parameters))
        return ps


class TextNoCopyTransport(TextTransport):
    nocopy = True


WAYS: dict[str, type[PsrpTransport]] = {
    "text": TextTransport,
    "text-nocopy": TextNoCopyTransport,
    "define-once": PsrpTransport,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="migrator-bench-psrp-cpu-"))
    fleet_path, _fleet = make_fleet(4, 1, folder)
    scripts = [(load("collect_facts"), None), (load("snapshot_policy"), ENTRIES)]
    cpu: dict[str, list[float]] = {way: [] for way in WAYS}
    sent: dict[str, list[float]] = {way: [] for way in WAYS}
    first: dict[str, list[float]] = {way: [] for way in WAYS}
    with lab_up(folder, fleet_path, 0.0, 60.0, (0, 0)) as lab:
        inventory = load_inventory(lab.inventory)
        entry = inventory.devices[0]
        connection = inventory.connection(entry)
        credentials = Credentials(lab.secrets["MIGRATOR_USERNAME"], SecretStr(lab.secrets["MIGRATOR_PASSWORD"]))
        for _ in range(args.rounds):
            for way, cls in WAYS.items():
                started = time.process_time()
                transport = cls(entry, connection, credentials)
                try:
                    for script, parameters in scripts:  # the pool open and the first (defining) calls
                        transport.run(script, parameters)
                    first[way].append(time.process_time() - started)
                    session = transport._wsman.transport.session  # type: ignore[union-attr]
                    sizes: list[int] = []
                    session.hooks["response"].append(
                        lambda r, *a, into=sizes, **k: into.append(len(r.request.body or b""))
                    )
                    started = time.process_time()
                    for _ in range(args.calls):
                        for script, parameters in scripts:
                            transport.run(script, parameters)
                    cpu[way].append((time.process_time() - started) / (args.calls * len(scripts)))
                    sent[way].append(sum(sizes) / (args.calls * len(scripts)))
                finally:
                    transport.close()
    print(
        f"CPU per script call (collect_facts and snapshot_policy alternately, {args.calls} x 2 calls per round, "
        f"median of {args.rounds} rounds; the lab in its own process):"
    )
    base = statistics.median(cpu["text"])
    for way in WAYS:
        ms = statistics.median(cpu[way]) * 1000
        print(
            f"  {way:12} {ms:6.2f} ms/call  ({base * 1000 / ms:4.2f}x of text)  "
            f"{statistics.median(sent[way]) / 1024:6.1f} KiB sent/call; "
            f"pool open + first two calls {statistics.median(first[way]) * 1000:6.1f} ms"
        )


if __name__ == "__main__":
    main()
