"""The transition table: every legal transition, every illegal event, every guard refusal; the funnel is the
only way state changes, and a refused change leaves everything as it was."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from migrator.facts import DeviceFacts, UserFacts
from migrator.machine import guards as guard_mod
from migrator.machine.context import DeviceContext, UserContext
from migrator.machine.core import Change, DeviceMachine, UserRecord
from migrator.machine.decide import TrackedUser, tracked_users
from migrator.machine.errors import GuardRefused, InvalidTransition
from migrator.machine.plan import PlanItem
from migrator.machine.table import (
    DEVICE_ROWS,
    DEVICE_STATES,
    USER_ROWS,
    USER_STATES,
    Row,
    device_rows,
    resolved_dest,
    user_rows,
)
from migrator.playbook import STEP_ORDER, Playbook, load_playbook

NOW = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
USER = "CORP\\alice"


class RecordingFunnel:
    """Records every change; can be told to refuse the next one (as a store refusing a stale write)."""

    def __init__(self) -> None:
        self.changes: list[Change] = []
        self.refuse = False

    def change(self, change: Change) -> None:
        if self.refuse:
            raise RuntimeError("the store refused")
        self.changes.append(change)

    def add_users(self, users: Any) -> None: ...

    def policy_snapshot(self, values: Any) -> None: ...

    def identify(self, user: str, container_trust: str | None, key_id: str) -> None: ...


def _playbooks() -> list[Playbook]:
    shipped = [load_playbook(n) for n in ("cert-trust-to-cloud-kerberos", "key-trust-to-cloud-kerberos")]
    every = Playbook(name="every-step", path="auto", steps=list(STEP_ORDER))
    external = Playbook(
        name="external",
        path="auto",
        steps=["preflight", "snapshot_policy", "refresh_policy", "confirm_policy", "check_dc", "delete_container"],
        policy={"channel": "external"},  # type: ignore[arg-type]
    )
    return [*shipped, load_playbook("to-cloud-kerberos"), every, external]


PLAYBOOKS = _playbooks()


@pytest.fixture
def forced(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, bool]]:
    """Guards answer from this dict (missing = False) instead of from facts."""
    answers: dict[str, bool] = {}
    monkeypatch.setattr(guard_mod, "check", lambda name, _data: answers.get(name, False))
    yield answers


def _machine(
    playbook: Playbook, state: str = "pending", user_state: str = "pending"
) -> tuple[DeviceMachine, RecordingFunnel]:
    funnel = RecordingFunnel()
    machine = DeviceMachine(
        "PC-0001",
        playbook,
        funnel,
        state=state,
        users=[UserRecord(USER, "S-1-5-21-1-2-3-1104", state=user_state, context={"sid": "S-1-5-21-1-2-3-1104"})],
    )
    return machine, funnel


def _expected(rows: list[Row], trigger: str, source: str, answers: dict[str, bool]) -> str | None:
    """What transitions must do: the first row for (trigger, source) whose guards hold."""
    for row in rows:
        holds = all(answers.get(g, False) for g in row.conditions)
        holds = holds and not any(answers.get(g, False) for g in row.unless)
        if row.trigger == trigger and source in row.source and holds:
            return resolved_dest(row, source)
    return None


def _cases(kind: str) -> list[tuple[Playbook, Row, str]]:
    cases = []
    for playbook in PLAYBOOKS:
        rows = device_rows(playbook) if kind == "device" else user_rows(playbook)
        for row in rows:
            for source in row.source:
                cases.append((playbook, row, source))
    return cases


def test_every_guard_named_by_the_table_exists_and_every_state_is_known() -> None:
    """Guards are defined in guards.py; sources and destinations are states of their machine."""
    for rows, states in ((DEVICE_ROWS, DEVICE_STATES), (USER_ROWS, USER_STATES)):
        for row in rows:
            assert set(row.conditions) | set(row.unless) <= set(guard_mod.GUARDS), row
            assert set(row.source) <= set(states) and (row.dest == "=" or row.dest in states), row
            assert row.why.strip(), row


def test_every_state_is_reachable_from_the_start() -> None:
    """No state of either machine is an island (pause/resume and rollback included)."""
    for rows, states, start in ((DEVICE_ROWS, DEVICE_STATES, "pending"), (USER_ROWS, USER_STATES, "pending")):
        seen, frontier = {start}, [start]
        while frontier:
            state = frontier.pop()
            for row in rows:
                if state in row.source and (dest := resolved_dest(row, state)) not in seen:
                    seen.add(dest)
                    frontier.append(dest)
        assert seen == set(states)


@pytest.mark.parametrize(
    ("playbook", "row", "source"), _cases("device"), ids=lambda v: getattr(v, "name", getattr(v, "trigger", str(v)))
)
def test_every_legal_device_transition(forced: dict[str, bool], playbook: Playbook, row: Row, source: str) -> None:
    """With the row's guards holding, its trigger moves the device to the first matching row's destination,
    through the funnel, exactly once."""
    forced.update({g: True for g in row.conditions})
    machine, funnel = _machine(playbook, state=source)
    change = machine.fire(row.trigger, now=NOW)
    expected = _expected(device_rows(playbook), row.trigger, source, forced)
    assert machine.state == expected == change.dest
    assert funnel.changes == [change] and change.source == source and change.user is None


@pytest.mark.parametrize(
    ("playbook", "row", "source"), _cases("user"), ids=lambda v: getattr(v, "name", getattr(v, "trigger", str(v)))
)
def test_every_legal_user_transition(forced: dict[str, bool], playbook: Playbook, row: Row, source: str) -> None:
    """Each user row, guards holding: the user (not the device) moves, through the funnel, exactly once."""
    forced.update({g: True for g in row.conditions})
    machine, funnel = _machine(playbook, state="users", user_state=source)
    change = machine.fire(row.trigger, user=USER, now=NOW)
    assert machine.user_state(USER) == _expected(user_rows(playbook), row.trigger, source, forced) == change.dest
    assert machine.state == "users" and funnel.changes == [change] and change.user == USER


def _triggers(rows: tuple[Row, ...]) -> set[str]:
    return {row.trigger for row in rows}


@pytest.mark.parametrize("playbook", PLAYBOOKS, ids=lambda p: p.name)
def test_every_illegal_event_raises_and_changes_nothing(forced: dict[str, bool], playbook: Playbook) -> None:
    """Every trigger with no row from a state raises InvalidTransition naming the legal ones; nothing moves.

    Every (state, trigger) pair of the product is fired. One machine per state takes all of that state's illegal
    triggers in turn (a refused event changes nothing, so each one meets the machine exactly as built; building a
    machine is what costs, not firing)."""
    forced.update({name: True for name in guard_mod.GUARDS})
    for kind, states, rows in (("device", DEVICE_STATES, DEVICE_ROWS), ("user", USER_STATES, USER_ROWS)):
        applicable = device_rows(playbook) if kind == "device" else user_rows(playbook)
        for state in states:
            legal = {r.trigger for r in applicable if state in r.source}
            if kind == "device":
                machine, funnel = _machine(playbook, state=state)
            else:
                machine, funnel = _machine(playbook, state="users", user_state=state)
            for trigger in sorted(_triggers(rows) - legal):
                if kind == "device":
                    with pytest.raises(InvalidTransition) as caught:
                        machine.fire(trigger, now=NOW)
                    assert machine.state == state
                else:
                    with pytest.raises(InvalidTransition) as caught:
                        machine.fire(trigger, user=USER, now=NOW)
                    assert machine.user_state(USER) == state and machine.state == "users"
                assert not isinstance(caught.value, GuardRefused)
                assert caught.value.current == state and set(caught.value.expected) == legal
                assert funnel.changes == []


@pytest.mark.parametrize(
    ("playbook", "row", "source"), [c for c in _cases("user") + _cases("device") if c[1].conditions]
)
def test_every_guard_refuses_when_it_does_not_hold(
    forced: dict[str, bool], playbook: Playbook, row: Row, source: str
) -> None:
    """Each condition of a row, made false alone, refuses the row (GuardRefused, nothing changed) unless
    another row for the same trigger takes over."""
    is_user = row in USER_ROWS
    rows = user_rows(playbook) if is_user else device_rows(playbook)
    for guard in row.conditions:
        forced.clear()
        forced.update({g: True for g in row.conditions if g != guard})
        expected = _expected(rows, row.trigger, source, forced)
        machine, funnel = _machine(
            playbook, state="users" if is_user else source, user_state=source if is_user else "pending"
        )
        kwargs: dict[str, Any] = {"user": USER} if is_user else {}
        if expected is None:
            with pytest.raises(GuardRefused) as caught:
                machine.fire(row.trigger, now=NOW, **kwargs)
            assert guard in caught.value.failed or any(f.startswith("not ") for f in caught.value.failed)
            assert funnel.changes == []
            assert (machine.user_state(USER) if is_user else machine.state) == source
        else:
            assert machine.fire(row.trigger, now=NOW, **kwargs).dest == expected


def test_a_refusing_funnel_leaves_the_state_unchanged(forced: dict[str, bool]) -> None:
    """If persisting fails, transitions does not move: the store and the machine never disagree."""
    machine, funnel = _machine(load_playbook("to-cloud-kerberos"))
    funnel.refuse = True
    with pytest.raises(RuntimeError):
        machine.fire("start", now=NOW)
    assert machine.state == "pending" and machine.context == DeviceContext()


def test_context_is_persisted_with_the_state(forced: dict[str, bool]) -> None:
    """The funnel receives the new context (as JSON) with the change; the machine keeps it only once persisted;
    a refused change keeps the old one."""
    machine, funnel = _machine(load_playbook("to-cloud-kerberos"), state="policy")
    machine.context = DeviceContext(plan=(PlanItem("p", "n", remove=True),), plan_done=0)
    change = machine.fire("policy_value_set", now=NOW, context=replace(machine.context, plan_done=1))
    assert change.context["plan_done"] == 1 and machine.context.plan_done == 1
    assert change.context["plan"] == [{"path": "p", "name": "n", "remove": True, "value": None, "before": None}]
    assert funnel.changes == [change]
    funnel.refuse = True
    with pytest.raises(RuntimeError):
        machine.fire("policy_value_set", now=NOW, context=replace(machine.context, plan_done=2))
    assert machine.context.plan_done == 1


def test_a_context_of_the_wrong_subject_is_refused(forced: dict[str, bool]) -> None:
    """A user's context handed to a device transition (or the reverse) is a programming error, not data."""
    machine, funnel = _machine(load_playbook("to-cloud-kerberos"), state="pending")
    with pytest.raises(TypeError):
        machine.fire("start", now=NOW, context=UserContext())  # type: ignore[arg-type]
    assert machine.state == "pending" and funnel.changes == []


TRIGGERS = sorted(_triggers(DEVICE_ROWS) | _triggers(USER_ROWS))


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(TRIGGERS), st.booleans(), st.sets(st.sampled_from(sorted(guard_mod.GUARDS)))),
        max_size=25,
    )
)
def test_random_event_sequences_keep_the_funnel_and_the_state_in_step(steps: list[tuple[str, bool, set[str]]]) -> None:
    """Any sequence of events: each accepted one is one funnel change from the state the machine was in, each
    refused one changes nothing, and the state is always a state of its machine."""
    answers: dict[str, bool] = {}
    original = guard_mod.check
    guard_mod.check = lambda name, _data: answers.get(name, False)  # type: ignore[assignment]
    try:
        machine, funnel = _machine(load_playbook("to-cloud-kerberos"), state="users")
        for trigger, on_user, true_guards in steps:
            answers.clear()
            answers.update({g: True for g in true_guards})
            before = (machine.state, machine.user_state(USER), len(funnel.changes))
            try:
                change = machine.fire(trigger, user=USER if on_user else None, now=NOW)
            except InvalidTransition:
                assert (machine.state, machine.user_state(USER), len(funnel.changes)) == before
                continue
            assert len(funnel.changes) == before[2] + 1 and change.source == (before[1] if on_user else before[0])
            assert machine.state in DEVICE_STATES and machine.user_state(USER) in USER_STATES
    finally:
        guard_mod.check = original


def test_tracked_users_follow_the_playbook_setting() -> None:
    """users: with_container tracks users with a container; signed_in tracks signed-in users."""
    facts = DeviceFacts(
        name="PC-0001",
        users=(
            UserFacts(sid="S-1-5-21-1", name="CORP\\a", has_hello=True, signed_in=False),
            UserFacts(sid="S-1-5-21-2", name="CORP\\b", has_hello=False, signed_in=True),
        ),
    )
    with_container = DeviceMachine("PC-0001", load_playbook("to-cloud-kerberos"), RecordingFunnel())
    assert [u.name for u in tracked_users(with_container, facts)] == ["CORP\\a"]
    signed = load_playbook("to-cloud-kerberos").model_copy(update={"users": "signed_in"})
    assert [u.name for u in tracked_users(DeviceMachine("PC-0001", signed, RecordingFunnel()), facts)] == ["CORP\\b"]
    assert TrackedUser("CORP\\a", "S-1-5-21-1", "key") == tracked_users(with_container, facts)[0]
