"""The per-device migration state machine (sans-IO): the table as data, guards, commands and events, and the
``transitions``-based runner. See :mod:`migrator.machine.table` for the theory of operation."""

from __future__ import annotations

from migrator.machine.commands import Command, Done, Event, Resolution, RunStep, StepFailed, StepSucceeded, Wait
from migrator.machine.core import Change, DeviceMachine, Funnel, TrackedUser, UserRecord
from migrator.machine.errors import GuardRefused, InvalidTransition
from migrator.machine.table import DEVICE_ROWS, DEVICE_STATES, USER_ROWS, USER_STATES, Row

__all__ = [
    "DEVICE_ROWS",
    "DEVICE_STATES",
    "USER_ROWS",
    "USER_STATES",
    "Change",
    "Command",
    "DeviceMachine",
    "Done",
    "Event",
    "Funnel",
    "GuardRefused",
    "InvalidTransition",
    "Resolution",
    "Row",
    "RunStep",
    "StepFailed",
    "StepSucceeded",
    "TrackedUser",
    "UserRecord",
    "Wait",
]
