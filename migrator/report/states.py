"""How reports read state names: which need a person's attention, which are final, and in what order to list them.

Every category comes from the machine's table (:mod:`migrator.machine.table`), where each state is defined once.
A store written by another version may hold a state this one does not know: it sorts among the states in
progress and never needs attention (reports render any store).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from migrator.machine.table import (
    DEVICE_ACTIVE,
    DEVICE_FINAL,
    DEVICE_PARKED,
    DEVICE_SUCCESS,
    DEVICE_WAITING,
    USER_WAITING,
    Category,
    device_state,
    user_state,
)

AttentionKind = Literal["failed", "error", "stalled", "unreachable", "waiting"]

MIGRATED = "migrated"
FAILED = "failed"
ROLLED_BACK = "rolled_back"
STALLED = "stalled"
INITIAL = "pending"  # the store's default state for a freshly enrolled device or user
ROLLING_BACK = "rolling_back"  # every rollback enters it (begin_rollback, or a retry of one that hit an error)
# The device did not answer: waiting for it at each recheck, then parked past waits.unreachable_deadline. The
# device context says since when (``unreachable_since``).
UNANSWERED = ("waiting_for_device", "unreachable")

# A device here is done: no step of the wave will run for it again without a person deciding so.
FINAL_STATES = frozenset(DEVICE_FINAL)
# Done and on cloud Kerberos trust: what "users migrated" counts.
SUCCESS_STATES = frozenset(DEVICE_SUCCESS)

# Listing order: the start, work in progress, waiting, parked, then the final states (successes last).
_ORDER = (
    *DEVICE_ACTIVE,
    *DEVICE_WAITING,
    *USER_WAITING,
    *DEVICE_PARKED,
    *(s for s in DEVICE_FINAL if s not in DEVICE_SUCCESS),
    *DEVICE_SUCCESS,
)


def attention(state: str) -> AttentionKind | None:
    """Why a device or user in ``state`` needs someone to look at it, or None when it does not."""
    if state in (FAILED, "error", STALLED, "unreachable"):
        return state  # type: ignore[return-value]
    known = device_state(state) or user_state(state)
    if known is not None and known.category is Category.WAITING:
        return "waiting"
    return None


def resume_retries(state: str) -> bool:
    """Whether ``migrator resume`` continues a device parked in ``state`` by itself (the table's ``resumes``)."""
    known = device_state(state)
    return known is not None and known.resumes


def state_sort_key(state: str) -> tuple[int, str]:
    """Sort key: ``pending`` first, then the table's order; an unknown state among those in progress."""
    if state in _ORDER:
        return (_ORDER.index(state), "")
    return (len(DEVICE_ACTIVE), state)


def ordered_states(states: Iterable[str]) -> list[str]:
    """Distinct state names, in listing order."""
    return sorted(set(states), key=state_sort_key)
