"""How reports read state names: which need a person's attention, which are final, and in what order to list them.

The state machine (issue 5) names its parked and terminal states ``migrated``, ``already_cloud``,
``ineligible``, ``failed``, ``rolled_back``, ``waiting_for_user``, ``waiting_for_dc``, ``paused`` and
``stalled``; everything else is a step in progress. Reports only read names, so a store written by any version
of the machine renders: unknown states sort among the in-progress ones and never need attention.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

AttentionKind = Literal["failed", "stalled", "waiting", "paused"]

MIGRATED = "migrated"
ALREADY_CLOUD = "already_cloud"
INELIGIBLE = "ineligible"
FAILED = "failed"
ROLLED_BACK = "rolled_back"
STALLED = "stalled"
PAUSED = "paused"
INITIAL = "pending"  # the store's default state for a freshly enrolled device or user

# A device (or user) here is done: no step of the wave will run for it again without a person deciding so.
FINAL_STATES = frozenset({MIGRATED, ALREADY_CLOUD, INELIGIBLE, FAILED, ROLLED_BACK})
# Done and on cloud Kerberos trust: what "users migrated" counts.
SUCCESS_STATES = frozenset({MIGRATED, ALREADY_CLOUD})
# Step names (playbook vocabulary and step-module vocabulary) whose success means a Hello container is gone.
DELETE_STEPS = frozenset({"delete_container", "delete_hello_container"})
RESTORE_STEPS = frozenset({"restore_policy", "rollback"})

# Listing order: the start, work in progress, then what needs a person, then the end states.
_TAIL = (PAUSED, STALLED, FAILED, ROLLED_BACK, INELIGIBLE, ALREADY_CLOUD, MIGRATED)


def attention(state: str) -> AttentionKind | None:
    """Why a device or user in ``state`` needs someone to look at it, or None when it does not."""
    if state == FAILED or state.endswith("_failed"):
        return "failed"
    if state == STALLED or state.startswith("stalled"):
        return "stalled"
    if state.startswith("waiting"):
        return "waiting"
    if state == PAUSED:
        return "paused"
    return None


def is_rollback_state(state: str) -> bool:
    """A state the rollback path uses (``rolled_back``, ``rolling_back``, ``rollback_failed``...)."""
    folded = state.casefold()
    return folded == ROLLED_BACK or folded.startswith(("rolling_back", "rollback"))


def state_sort_key(state: str) -> tuple[int, str]:
    """Sort key: ``pending`` first, then states in progress (by name), waiting, then parked and final ones."""
    if state == INITIAL:
        return (0, "")
    if state in _TAIL:
        return (3 + _TAIL.index(state), "")
    if state.startswith("waiting"):
        return (2, state)
    return (1, state)


def ordered_states(states: Iterable[str]) -> list[str]:
    """Distinct state names, in listing order."""
    return sorted(set(states), key=state_sort_key)
