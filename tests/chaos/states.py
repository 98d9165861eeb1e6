"""The machine's state categories, by name, as the chaos test reads them.

Issue 14 moves these lists into :mod:`migrator.machine.table` (one definition, imported everywhere). Every name
the table already defines is imported from it; a name it does not define yet is defined here with the contents
the issue gives it, so switching to the table's is deleting a line. ``TARGET_DEVICE_STATES`` lists the states
the issue names (new ones included): a fault armed for a state the machine never enters is simply never armed.
"""

from __future__ import annotations

from migrator.machine import table

DEVICE_ACTIVE: tuple[str, ...] = table.DEVICE_ACTIVE
DEVICE_WAITING: tuple[str, ...] = table.DEVICE_WAITING
DEVICE_PARKED: tuple[str, ...] = table.DEVICE_PARKED
DEVICE_FINAL: tuple[str, ...] = table.DEVICE_FINAL
# Not in the table yet (issue 14): success is final and on cloud Kerberos trust.
DEVICE_SUCCESS: tuple[str, ...] = getattr(table, "DEVICE_SUCCESS", ("migrated", "already_cloud"))
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
