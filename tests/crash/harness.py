"""Crash harness: the driver runs in a child process against the lab in the test process, and is killed with
SIGKILL at a chosen journal point (``MIGRATOR_CRASH_AT``, see :func:`migrator.engine.device.journal_point`),
then restarted until every device is done.

Children come from a ``forkserver`` with the driver preloaded, so a restart costs milliseconds, not an
interpreter start. Time: the child visits every due device at a frozen "now" the parent gives it, then asks the
parent (over a pipe) to advance the lab's virtual clock to the next due time. A restarted child is the same
worker (same lease owner) coming back, and first visits every device.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from migrator.engine.device import CRASH_ENV, visit
from migrator.inventory import Connection, DeviceEntry
from migrator.lab.model import Fleet
from migrator.lab.truth import fleet_truth
from migrator.playbook import Playbook
from migrator.remote.credentials import Credentials
from migrator.store import Store
from tests.engine.labkit import ENTRA_KERBEROS, FAST_RETRY, LabKit, open_store, running_lab
from tests.forkserver import forkserver_context

OWNER = "crash-harness-worker"
_context = forkserver_context("migrator.engine.device", "tests.crash.harness")


@dataclass(frozen=True)
class Target:
    name: str
    address: str
    domain: str | None


@dataclass
class Outcome:
    states: dict[str, str]
    users: dict[str, dict[str, str]]
    truth: dict[str, Any]
    journal: dict[str, list[tuple[str | None, str, Any, Any]]]  # device -> (user, step, status, outcome)
    kills: int = 0
    journal_points: int = 0
    restarts: list[int] = field(default_factory=list)


def child_main(
    pipe: Pipe,
    store_dir: str,
    targets: list[Target],
    port: int,
    username: str,
    password: str,
    playbook_json: str,
    crash_at: int | None,
) -> None:
    """The driver process: visit due devices at the parent's time; ask it to move time on; exit when done."""
    if crash_at is not None:
        os.environ[CRASH_ENV] = str(crash_at)
    frozen = [datetime.fromisoformat(pipe.recv())]
    playbook = Playbook.model_validate_json(playbook_json)
    store = Store.open(store_dir, now=lambda: frozen[0], synchronous="NORMAL")
    credentials = Credentials(username, SecretStr(password))
    connection = Connection(transport="psrp", scheme="http", port=port, auth="ntlm", read_timeout=60)
    due: dict[str, datetime | None] = {t.name: frozen[0] for t in targets}
    while True:
        for target in targets:
            when = due[target.name]
            if when is not None and when <= frozen[0]:
                result = visit(
                    target.name,
                    store=store,
                    playbook=playbook,
                    entry=DeviceEntry(name=target.name, address=target.address, domain=target.domain),
                    connection=connection,
                    credentials=credentials,
                    clock=lambda: frozen[0],
                    owner=OWNER,
                    path_settings=ENTRA_KERBEROS,
                    retry=FAST_RETRY,
                    sleep=lambda _s: None,
                )
                due[target.name] = result.next_due
        upcoming = [w for w in due.values() if w is not None]
        if not upcoming:
            store.close()
            pipe.send(("done", None))
            return
        pipe.send(("advance", min(upcoming).isoformat()))
        frozen[0] = datetime.fromisoformat(pipe.recv())


def _serve(kit: LabKit, pipe: Pipe, process: Any) -> str:
    """Answer the child until it is done ("done") or dead ("killed")."""
    while True:
        if pipe.poll(0.02):
            try:
                kind, value = pipe.recv()
            except (EOFError, OSError):
                break
            if kind == "done":
                return "done"
            kit.clock.advance_to(max(datetime.fromisoformat(value), kit.now()))
            pipe.send(kit.now().isoformat())
        elif not process.is_alive():
            break
    process.join(10)
    if process.exitcode == -signal.SIGKILL:
        return "killed"
    raise AssertionError(f"the driver process ended with exit code {process.exitcode}")


def run(
    fleet: Fleet,
    work: Path,
    playbook: Playbook,
    *,
    kills: list[int] | None = None,
    setup: Any = None,
    max_restarts: int = 20,
) -> Outcome:
    """Run the wave to its end, killing the driver at ``kills[0]``, then (restarted) ``kills[1]``..."""
    plan = list(kills or [])
    with running_lab(fleet, work / "lab") as kit:
        if setup is not None:
            setup(kit)
        targets = [Target(d.name, d.address, d.domain) for d in fleet.devices]
        names = [t.name for t in targets]
        open_store(work / "state", kit, playbook, names).close()
        killed = 0
        for _ in range(max_restarts):
            crash_at = plan.pop(0) if plan else None
            parent, child = _context.Pipe()
            process = _context.Process(
                target=child_main,
                args=(
                    child,
                    str(work / "state"),
                    targets,
                    kit.http_port,
                    kit.credentials.username,
                    kit.password,
                    playbook.model_dump_json(),
                    crash_at,
                ),
            )
            process.start()
            child.close()
            parent.send(kit.now().isoformat())
            ending = _serve(kit, parent, process)
            parent.close()
            if ending == "done":
                break
            killed += 1
        else:
            raise AssertionError("the driver never finished")
        with Store.open(work / "state", now=kit.now) as store:
            states = {n: store.get_device(n).state for n in names}
            users = {n: {u.name: u.state for u in store.list_users(n)} for n in names}
            journal = {n: [(e.user, e.step, e.status, e.outcome) for e in store.journal_entries(n)] for n in names}
            assert store.verify_audit().ok
            assert sorted(d.name for d in store.list_devices()) == sorted(names)
        points = sum(1 + (status != "intent") for entries in journal.values() for _, _, status, _ in entries)
        return Outcome(states, users, fleet_truth(kit.lab), journal, killed, points)
