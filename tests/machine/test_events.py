"""Events from outside the machine's own decisions: every one, in every non-final state, has a row or a documented
decision to change nothing; an ignored event changes nothing; the categories are defined once, in the table."""

from __future__ import annotations

import pytest

from migrator.machine.core import DeviceMachine, UserRecord
from migrator.machine.table import (
    DEVICE_ACTIVE,
    DEVICE_EVENTS,
    DEVICE_FINAL,
    DEVICE_PARKED,
    DEVICE_RESUMED,
    DEVICE_ROWS,
    DEVICE_SETTLED,
    DEVICE_STATE_TABLE,
    DEVICE_STATES,
    DEVICE_SUCCESS,
    DEVICE_WAITING,
    IGNORED,
    USER_EVENTS,
    USER_FINAL,
    USER_ROWS,
    USER_STATES,
    Category,
)
from migrator.playbook import STEP_ORDER, Playbook
from tests.machine.transcript import SID, START, USER, RecordingFunnel

EVERY_STEP = Playbook(name="every-step", path="auto", steps=list(STEP_ORDER))


def _pairs() -> list[tuple[str, str, str]]:
    device = [("device", e, s) for e in DEVICE_EVENTS for s in DEVICE_STATES if s not in DEVICE_FINAL]
    user = [("user", e, s) for e in USER_EVENTS for s in USER_STATES if s not in USER_FINAL]
    return device + user


def _has_row(kind: str, event: str, state: str) -> bool:
    rows = DEVICE_ROWS if kind == "device" else USER_ROWS
    return any(row.trigger == event and state in row.source for row in rows)


@pytest.mark.parametrize(("kind", "event", "state"), _pairs(), ids=str)
def test_every_event_in_every_non_final_state_has_a_row_or_a_documented_decision(
    kind: str, event: str, state: str
) -> None:
    """(event, state): a row takes it, or the table says in words why it changes nothing there; never both."""
    ignored = IGNORED.get((event, state))
    if _has_row(kind, event, state):
        assert ignored is None, f"{event} in {state} has a row and is also listed as ignored"
    else:
        assert ignored and len(ignored) > 20, f"{kind} event {event} in {state}: no row and no documented decision"


def test_every_ignored_pair_names_a_known_event_and_state() -> None:
    """No stale entry: each ignored pair is an event of the list and a state of a machine."""
    for (event, state), why in IGNORED.items():
        assert event in (*DEVICE_EVENTS, *USER_EVENTS), event
        assert state in (*DEVICE_STATES, *USER_STATES), state
        assert why.strip()


@pytest.mark.parametrize(
    ("event", "state"),
    sorted((e, s) for (e, s) in IGNORED if e in DEVICE_EVENTS and s in DEVICE_STATES and not _has_row("device", e, s)),
)
def test_an_ignored_device_event_changes_nothing(event: str, state: str) -> None:
    """Handed to the machine, an ignored event is logged and nothing moves: no funnel change, same state."""
    funnel = RecordingFunnel()
    machine = DeviceMachine("PC-0001", EVERY_STEP, funnel, state=state)
    assert machine.on(event, now=START) is None
    assert machine.state == state and funnel.changes == []


@pytest.mark.parametrize(
    ("event", "state"),
    sorted((e, s) for (e, s) in IGNORED if e in USER_EVENTS and s in USER_STATES and not _has_row("user", e, s)),
)
def test_an_ignored_user_event_changes_nothing(event: str, state: str) -> None:
    funnel = RecordingFunnel()
    users = [UserRecord(USER, SID, state=state, context={"sid": SID})]
    machine = DeviceMachine("PC-0001", EVERY_STEP, funnel, state="users", users=users)
    assert machine.on(event, user=USER, now=START) is None
    assert machine.user_state(USER) == state and funnel.changes == []


def test_the_categories_partition_the_states() -> None:
    """Each device state is in exactly one category; successes are final; what resume continues is parked;
    settled is final plus the parked states a person decides."""
    groups = (DEVICE_ACTIVE, DEVICE_WAITING, DEVICE_PARKED, DEVICE_FINAL)
    assert sorted(s for g in groups for s in g) == sorted(DEVICE_STATES)
    assert set(DEVICE_SUCCESS) <= set(DEVICE_FINAL) and set(DEVICE_RESUMED) <= set(DEVICE_PARKED)
    assert set(DEVICE_SETTLED) == set(DEVICE_FINAL) | (set(DEVICE_PARKED) - set(DEVICE_RESUMED))
    assert all(state.meaning for state in DEVICE_STATE_TABLE)
    assert {s.name for s in DEVICE_STATE_TABLE if s.category is Category.WAITING} == set(DEVICE_WAITING)


def test_a_parked_or_final_device_asks_for_nothing() -> None:
    """The machine answers Done for every parked and final state, from the category alone."""
    for state in (*DEVICE_PARKED, *DEVICE_FINAL):
        machine = DeviceMachine("PC-0001", EVERY_STEP, RecordingFunnel(), state=state)
        machine.begin_visit(START)
        command = machine.advance(START)
        assert type(command).__name__ == "Done" and command.state == state  # type: ignore[union-attr]
