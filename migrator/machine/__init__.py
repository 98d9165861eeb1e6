"""The per-device migration state machine (sans-IO): the table as data, guards, typed contexts, the deciders of
each state, the handlers of each step's purpose, and the ``transitions``-based runner. See
:mod:`migrator.machine.table` for the theory of operation."""

from __future__ import annotations

from migrator.machine.commands import (
    Command,
    Done,
    Event,
    Purpose,
    Resolution,
    RunStep,
    StepFailed,
    StepSucceeded,
    Wait,
)
from migrator.machine.context import DeviceContext, UserContext
from migrator.machine.core import Change, DeviceMachine, Funnel, UserEntry, UserRecord
from migrator.machine.decide import TrackedUser
from migrator.machine.errors import GuardRefused, InvalidTransition
from migrator.machine.table import DEVICE_ROWS, DEVICE_STATES, USER_ROWS, USER_STATES, Row

__all__ = [
    "DEVICE_ROWS",
    "DEVICE_STATES",
    "USER_ROWS",
    "USER_STATES",
    "Change",
    "Command",
    "DeviceContext",
    "DeviceMachine",
    "Done",
    "Event",
    "Funnel",
    "GuardRefused",
    "InvalidTransition",
    "Purpose",
    "Resolution",
    "Row",
    "RunStep",
    "StepFailed",
    "StepSucceeded",
    "TrackedUser",
    "UserContext",
    "UserEntry",
    "UserRecord",
    "Wait",
]
