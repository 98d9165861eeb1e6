"""The step catalogue: one module per question or action on a device.

Each step names the script it runs (:mod:`migrator.scripts`), the parameters it passes (values only, never
text), whether it may be retried after an ambiguous failure, whether it is a point of no return, and how its
answer becomes typed facts (:mod:`migrator.facts`). :func:`run_step` runs one through a transport.
"""

from __future__ import annotations

from migrator.steps import (
    collect_facts,
    delete_container,
    hello_state,
    logon_task,
    prompt_user,
    refresh_policy,
    restore_policy,
    set_policy,
    snapshot_policy,
)
from migrator.steps._base import Step, StepInfo, run_step, run_steps
from migrator.steps.collect_facts import CollectFacts
from migrator.steps.delete_container import DeleteHelloContainer
from migrator.steps.hello_state import ReadHelloState
from migrator.steps.logon_task import ArmLogonTask, DisarmLogonTask, ReadLogonTaskResult
from migrator.steps.prompt_user import PromptUser
from migrator.steps.refresh_policy import RefreshPolicy
from migrator.steps.restore_policy import RestorePolicy
from migrator.steps.set_policy import PolicyWrite, SetPolicy
from migrator.steps.snapshot_policy import SnapshotPolicy

CATALOGUE: dict[str, StepInfo] = {
    info.name: info
    for info in (
        collect_facts.INFO,
        hello_state.INFO,
        delete_container.INFO,
        set_policy.INFO,
        snapshot_policy.INFO,
        restore_policy.INFO,
        logon_task.ARM,
        logon_task.READ,
        logon_task.DISARM,
        prompt_user.INFO,
        refresh_policy.INFO,
    )
}

__all__ = [
    "CATALOGUE",
    "ArmLogonTask",
    "CollectFacts",
    "DeleteHelloContainer",
    "DisarmLogonTask",
    "PolicyWrite",
    "PromptUser",
    "ReadHelloState",
    "ReadLogonTaskResult",
    "RefreshPolicy",
    "RestorePolicy",
    "SetPolicy",
    "SnapshotPolicy",
    "Step",
    "StepInfo",
    "run_step",
    "run_steps",
]
