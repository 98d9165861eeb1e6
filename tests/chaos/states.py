"""Where the chaos test aims its faults; the state categories themselves come from :mod:`migrator.machine.table`
(one definition, imported everywhere). A fault armed for a state the machine never enters is simply never armed.
"""

from __future__ import annotations

from migrator.machine import table

DEVICE_ACTIVE = table.DEVICE_ACTIVE
DEVICE_WAITING = table.DEVICE_WAITING
DEVICE_PARKED = table.DEVICE_PARKED
DEVICE_FINAL = table.DEVICE_FINAL
DEVICE_SUCCESS = table.DEVICE_SUCCESS
STALLED = "stalled"

# Where faults are injected: the active states a visit walks through and the waiting states, with the ones issue 14
# adds (waiting_for_device: unreachable, retried at each recheck). rolling_back is left out: no schedule rolls back.
TARGET_DEVICE_STATES: tuple[str, ...] = (
    "pending",
    "preflight",
    "snapshot",
    "policy",
    "confirming",
    "users",
    "waiting_for_user",
    "waiting_for_dc",
    "waiting_for_device",
)
# User states around the point of no return and the waits for a person, for faults aimed at one user's step.
TARGET_USER_STATES: tuple[str, ...] = (
    "identifying",
    "dc_check",
    "deleting",
    "armed",
    "prompted",
    "waiting_for_sign_in",
    "waiting_for_reprovision",
    "verifying",
)
