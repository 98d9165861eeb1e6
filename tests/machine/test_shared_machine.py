"""One ``transitions`` machine per transition table, shared by every device and user that walks it: each device
keeps its own state, its guards read its own facts, its changes reach its own funnel, and threads may share it."""

from __future__ import annotations

import threading

from migrator.machine.core import DeviceMachine, UserRecord, shared_machine
from migrator.machine.table import DEVICE_STATES, device_rows, user_rows
from migrator.playbook import STEP_ORDER, Playbook
from tests.machine.transcript import SID, START, USER, Device, RecordingFunnel

EVERY_STEP = Playbook(name="every-step", path="auto", steps=list(STEP_ORDER))
NO_DELETE = ("delete_container", "wait_for_reprovision")
KEY_ONLY = Playbook(name="key-only", path="key", steps=[s for s in STEP_ORDER if s not in NO_DELETE])


def test_devices_of_one_playbook_share_one_machine_and_another_table_gets_its_own() -> None:
    """Same table: the same machine object for every device (and for every user); another table: another."""
    first = DeviceMachine("PC-0001", EVERY_STEP, RecordingFunnel(), users=[UserRecord(USER, SID)])
    second = DeviceMachine("PC-0002", EVERY_STEP, RecordingFunnel(), users=[UserRecord(USER, SID)])
    assert first._machine is second._machine
    assert first.users[USER].machine is second.users[USER].machine is not first._machine
    other = DeviceMachine("PC-0003", KEY_ONLY, RecordingFunnel(), users=[UserRecord(USER, SID)])
    assert user_rows(KEY_ONLY) != user_rows(EVERY_STEP)  # no delete, no re-provisioning wait
    assert other.users[USER].machine is not first.users[USER].machine


def test_a_guard_reads_its_own_device_and_a_change_reaches_its_own_funnel() -> None:
    """found_cloud (guard path_cloud) moves the device whose facts say cloud trust, not its neighbour."""
    cloud, cert = RecordingFunnel(), RecordingFunnel()
    a = DeviceMachine("PC-0001", EVERY_STEP, cloud, state="preflight", facts=Device(cloud=True).facts())
    b = DeviceMachine("PC-0002", EVERY_STEP, cert, state="preflight", facts=Device().facts())
    assert b.try_fire("found_cloud", now=START) is None
    assert a.try_fire("found_cloud", now=START) is not None
    assert (a.state, b.state) == ("already_cloud", "preflight")
    assert [c.dest for c in cloud.changes] == ["already_cloud"] and cert.changes == []


def test_the_cache_is_bounded() -> None:
    """A small LRU: a long-lived worker that meets many playbooks keeps a handful of machines."""
    maxsize = shared_machine.cache_info().maxsize
    assert maxsize is not None and maxsize <= 64
    states = tuple(DEVICE_STATES)
    assert shared_machine(states, tuple(device_rows(EVERY_STEP))) is shared_machine(
        states, tuple(device_rows(EVERY_STEP))
    )


def test_threads_walk_their_devices_on_the_shared_machine() -> None:
    """Many devices on many threads, one machine: each ends where its own facts lead, every change recorded once."""
    machines = [
        DeviceMachine(
            f"PC-{n:04d}", EVERY_STEP, RecordingFunnel(), state="preflight", facts=Device(cloud=n % 2 == 0).facts()
        )
        for n in range(40)
    ]
    barrier = threading.Barrier(8)

    def walk(chunk: list[DeviceMachine]) -> None:
        barrier.wait()
        for machine in chunk:
            machine.try_fire("found_cloud", now=START)

    threads = [threading.Thread(target=walk, args=(machines[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for n, machine in enumerate(machines):
        expected = "already_cloud" if n % 2 == 0 else "preflight"
        assert machine.state == expected
        assert len(machine.funnel.changes) == (1 if n % 2 == 0 else 0)  # type: ignore[attr-defined]
