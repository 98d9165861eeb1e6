"""Property: any sequence of valid transitions, persisted and reloaded by a fresh Store, gives the same state,
version and history."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from migrator.store import Store, content_hash
from tests.store.conftest import FakeClock

# A small graph in the shape of the per-device machine: forward steps, failure, retry.
GRAPH = {
    "pending": ["preflight", "ineligible"],
    "preflight": ["policy_set", "failed"],
    "policy_set": ["containers_cleared", "failed", "rolled_back"],
    "containers_cleared": ["verified", "failed"],
    "verified": ["done"],
    "failed": ["pending", "rolled_back"],
    "rolled_back": ["pending"],
    "ineligible": [],
    "done": [],
}
DEVICES = ["PC-A", "PC-B", "pc-c"]


@settings(max_examples=25, deadline=None)
@given(choices=st.lists(st.tuples(st.sampled_from(DEVICES), st.integers(min_value=0, max_value=7)), max_size=30))
def test_transitions_survive_a_reload(choices: list[tuple[str, int]]) -> None:
    """State, version and transition history after reopening equal what the writes returned."""
    with tempfile.TemporaryDirectory() as directory:
        clock = FakeClock()
        expected: dict[str, tuple[str, int]] = {name: ("pending", 0) for name in DEVICES}
        history: dict[str, list[tuple[str, str]]] = {name: [] for name in DEVICES}
        with Store.open(Path(directory), now=clock) as store:
            store.create_wave("w", playbook_name="p", playbook_hash=content_hash("x"))
            store.enroll("w", DEVICES)
            for name, pick in choices:
                state, _ = expected[name]
                targets = GRAPH[state]
                if not targets:
                    continue
                target = targets[pick % len(targets)]
                row = store.transition(name, state, target, f"{state}->{target}", attempt=pick)
                expected[name] = (row.state, row.version)
                history[name].append((state, target))
        with Store.open(Path(directory), now=clock) as fresh:
            for name in DEVICES:
                device = fresh.get_device(name)
                assert (device.state, device.version) == expected[name]
                assert device.version == len(history[name])
                moves = fresh.export_device_timeline(name).transitions
                assert [(t.from_state, t.to_state) for t in moves] == history[name]
            assert sum(fresh.counts().values()) == len(DEVICES)
