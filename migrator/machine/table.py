"""The migration's states, transitions and events, as data: the one place each is defined.

Theory of operation
-------------------
A device walks one of the two documented paths (MS docs "Windows Hello for Business cloud Kerberos trust":
*Migrate from key trust* / *Migrate from certificate trust*); each of its users walks a sub-machine of their own
(shared devices have several).

**States** are :class:`State` records: a name, a :class:`Category` and what the state means. The categories say
what happens next, and every other module imports them from here (engine, reports, CLI, tests):

* ``active``: the machine has work to do now (a visit runs it until it waits or ends);
* ``waiting``: looked at again on the recheck schedule: a person, a domain controller, or the device itself
  (``waiting_for_device``: it could not be reached; it is tried again until ``waits.unreachable_deadline``);
* ``parked``: nothing happens until someone acts: ``stalled`` (a deadline passed: a person decides), and the two
  states ``migrator resume`` continues by itself (``resumes``): ``unreachable`` (past the unreachable deadline)
  and ``error`` (an unexpected exception: a bug, recorded with its traceback);
* ``final``: done; ``success`` marks the final states that are on cloud Kerberos trust.

A wave is *settled* when every device is final or parked without ``resumes`` (:data:`DEVICE_SETTLED`).

**Rows**: each :class:`Row` is one legal transition in the vocabulary of ``transitions``: ``trigger``,
``source``, ``dest``, ``conditions`` (guards that must all hold) and ``unless`` (guards that must all fail), plus

* ``steps`` / ``steps_any`` / ``without``: playbook steps that must all / at least one / none be listed for the
  row to exist at all, so a machine built from a playbook has only the rows its steps call for;
* ``why``: one line, citing the Microsoft document the row follows.

Rows for the same trigger and source are tried in order; the first whose guards hold is taken (that is how
``transitions`` resolves them). A trigger with no row from the current state is illegal
(:class:`~migrator.machine.errors.InvalidTransition`); a row whose guards fail is refused
(:class:`~migrator.machine.errors.GuardRefused`); neither changes anything. Rollback is rows of the same table
(``begin_rollback``, ``restored``), run by the same machine.

**Events** that arrive from outside the machine's own decisions (a device that does not answer, a lease taken
over, a wave paused or halted, a deadline, an operator's retry, a user signing in while we wait, a bug) are
listed in :data:`DEVICE_EVENTS` and :data:`USER_EVENTS`. For every such event and every non-final state the
table has a row, or an entry in :data:`IGNORED` saying why the event changes nothing there
(``tests/machine/test_table.py`` enumerates the pairs).

The diagram of ``migrator diagram`` is drawn from these rows (:mod:`migrator.machine.diagram`); the guards are
defined in :mod:`migrator.machine.guards`; what each state decides and what each step's answer means is in
:mod:`migrator.machine.decide` and :mod:`migrator.machine.purposes`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from migrator.playbook import Playbook


class Category(StrEnum):
    ACTIVE = "active"
    WAITING = "waiting"
    PARKED = "parked"
    FINAL = "final"


@dataclass(frozen=True)
class State:
    name: str
    category: Category
    meaning: str
    success: bool = False  # final and on cloud Kerberos trust
    resumes: bool = False  # parked, and `migrator resume` continues it by itself (the `retry` row)


_A, _W, _P, _F = Category.ACTIVE, Category.WAITING, Category.PARKED, Category.FINAL

# ---- device states ----------------------------------------------------------------------------------------
DEVICE_STATE_TABLE: tuple[State, ...] = (
    State("pending", _A, "enrolled in a wave, not looked at yet"),
    State("preflight", _A, "reading join type, build, TPM, policy and users before changing anything"),
    State("snapshot", _A, "recording the policy values about to change, for rollback"),
    State("policy", _A, "writing the policy plan (or refreshing Group Policy for an external channel)"),
    State("confirming", _A, "reading the effective policy after the writes"),
    State("users", _A, "working through each tracked user"),
    State("rolling_back", _A, "restoring the snapshot policy values"),
    State("waiting_for_user", _W, "every unfinished user waits for a person: sign-in, sign-out/in, re-provisioning"),
    State("waiting_for_dc", _W, "every unfinished user waits for line of sight to a domain controller"),
    State(
        "waiting_for_device",
        _W,
        "the device did not answer (refused, timed out, rebooting, busy): tried again at each recheck until "
        "waits.unreachable_deadline; not a failure",
    ),
    State("stalled", _P, "a deadline passed (a user never signed in, the policy never arrived): a person decides"),
    State(
        "unreachable",
        _P,
        "unreachable for longer than waits.unreachable_deadline; `migrator resume` tries again",
        resumes=True,
    ),
    State(
        "error",
        _P,
        "an unexpected exception (a bug), recorded with its traceback; `migrator resume` retries once it is fixed",
        resumes=True,
    ),
    State("migrated", _F, "every tracked user is on cloud Kerberos trust, verified", success=True),
    State("already_cloud", _F, "cloud Kerberos trust was already effective: nothing to do", success=True),
    State("ineligible", _F, "a prerequisite is missing (join type, build, TPM, Entra Kerberos, playbook path)"),
    State("failed", _F, "a step failed in a way retrying cannot fix; the reason is recorded"),
    State("rolled_back", _F, "the snapshot policy values are back; what could not be restored is listed"),
)

# ---- user states ------------------------------------------------------------------------------------------
USER_STATE_TABLE: tuple[State, ...] = (
    State("pending", _A, "tracked at preflight, not started"),
    State("identifying", _A, "reading the user's container in their own session (when they are signed in)"),
    State("dc_check", _A, "hybrid joined: checking line of sight to a domain controller"),
    State("deleting", _A, "every guard of the point of no return holds: deleting the container in the user's context"),
    State("prompted", _A, "asking the user to sign out and back in"),
    State("verifying", _A, "reading the cloud TGT in the user's session"),
    State("waiting_for_dc", _W, "no line of sight to a domain controller: nothing is deleted or asked"),
    State("armed", _W, "an at-logon task deletes the container at the user's next sign-in"),
    State("waiting_for_sign_in", _W, "waiting for the user's next Windows Hello sign-in"),
    State("waiting_for_reprovision", _W, "waiting for the user to set up Windows Hello again"),
    State("stalled", _P, "a deadline passed, or Entra Kerberos refuses the account: a person decides"),
    State("migrated", _F, "cloud trust container and cloud TGT verified", success=True),
    State("failed", _F, "a step failed, or a guard of the point of no return can no longer hold"),
)


def _names(table: tuple[State, ...], *categories: Category) -> tuple[str, ...]:
    return tuple(s.name for s in table if s.category in categories)


DEVICE_STATES: tuple[str, ...] = tuple(s.name for s in DEVICE_STATE_TABLE)
DEVICE_ACTIVE = _names(DEVICE_STATE_TABLE, _A)
DEVICE_WAITING = _names(DEVICE_STATE_TABLE, _W)
DEVICE_PARKED = _names(DEVICE_STATE_TABLE, _P)
DEVICE_FINAL = _names(DEVICE_STATE_TABLE, _F)
DEVICE_SUCCESS = tuple(s.name for s in DEVICE_STATE_TABLE if s.success)
DEVICE_RESUMED = tuple(s.name for s in DEVICE_STATE_TABLE if s.resumes)  # parked states `resume` continues
# Nothing more happens to these without a person: a wave whose devices are all here is completed.
DEVICE_SETTLED = (*DEVICE_FINAL, *(s for s in DEVICE_PARKED if s not in DEVICE_RESUMED))
DEVICE_INITIAL = "pending"
# The states a device can come back to after waiting for the device, an error or an operator's retry: where
# the machine has work, or waits for it (rollback excepted: it has its own entry, `begin_rollback`).
RETURNABLE = (*(s for s in DEVICE_ACTIVE if s != "rolling_back"), "waiting_for_user", "waiting_for_dc")
RETRY_TARGETS = (*RETURNABLE, "rolling_back")  # an error during a rollback is retried into the rollback

USER_STATES: tuple[str, ...] = tuple(s.name for s in USER_STATE_TABLE)
USER_ACTIVE = _names(USER_STATE_TABLE, _A)
USER_WAITING = _names(USER_STATE_TABLE, _W)
USER_PARKED = _names(USER_STATE_TABLE, _P)
USER_FINAL = _names(USER_STATE_TABLE, _F)
USER_SUCCESS = tuple(s.name for s in USER_STATE_TABLE if s.success)
USER_SETTLED = (*USER_FINAL, *USER_PARKED)  # no work left for the user without a person
USER_INITIAL = "pending"


def device_state(name: str) -> State | None:
    """The device state of that name (None for a name this version does not know, e.g. from a newer store)."""
    return _DEVICE_BY_NAME.get(name)


def user_state(name: str) -> State | None:
    return _USER_BY_NAME.get(name)


_DEVICE_BY_NAME = {s.name: s for s in DEVICE_STATE_TABLE}
_USER_BY_NAME = {s.name: s for s in USER_STATE_TABLE}


@dataclass(frozen=True)
class ControlPlaneStep:
    """A change made in the cloud control plane (Entra ID, Intune) for one user of one device, once the user's
    machine has reached one of ``after``: run by :mod:`migrator.cloud` rather than on the device, journalled
    (intent before, outcome after, in-doubt resolved by re-reading the tenant) and audited like a device step."""

    name: str  # the journal's step name
    after: tuple[str, ...]  # the user states it may follow
    requires: tuple[str, ...]  # what the user's context must hold (UserContext fields that must be truthy)
    playbook_switch: str  # the playbook setting that turns it on
    why: str


REMOVE_STALE_HELLO_KEY = ControlPlaneStep(
    "remove_stale_hello_key",
    after=USER_SUCCESS,
    requires=("deleted_by_us", "key_id"),
    playbook_switch="entra.remove_stale_hello_keys",
    why="Deleting the container leaves its key registered in Entra ID (the user's authentication methods) until an "
    "admin removes it (MS docs: hello-hybrid-cloud-kerberos-trust, 'Migrate from certificate trust'; Graph "
    "'Delete windowsHelloForBusinessAuthenticationMethod'); only once the user is verified on the new key",
)
CONTROL_PLANE_STEPS: tuple[ControlPlaneStep, ...] = (REMOVE_STALE_HELLO_KEY,)

POLICY_STEPS = ("disable_cert_trust", "enable_cloud_trust", "refresh_policy")
# The guards of the point of no return, read from facts of the current visit: both rows into `deleting` name them,
# and the machine checks them again in `deleting`, just before the delete is sent.
PONR_GUARDS = (
    "policy_is_cloud",
    "no_cert_trust_any_source",
    "user_policy_is_cloud",
    "dc_line_of_sight",
    "security_device_ok",
    "container_unchanged",
)

DOC_CERT = "MS docs: hello-hybrid-cloud-kerberos-trust, 'Migrate from certificate trust deployment model'"
DOC_KEY = "MS docs: hello-hybrid-cloud-kerberos-trust, 'Migrate from key trust deployment model'"
DOC_PREREQ = "MS docs: hello-hybrid-cloud-kerberos-trust, 'Prerequisites'"
DOC_POLICY = "MS docs: hello-for-business configure, 'Policy conflicts from multiple policy sources'"
DOC_DC = "MS docs: hello-hybrid-cloud-kerberos-trust-provision, 'first sign-in needs line of sight to a DC'"
DOC_USER = "windows-facts §6: user-context work through an Interactive scheduled task"


@dataclass(frozen=True)
class Row:
    trigger: str
    source: tuple[str, ...]
    dest: str
    why: str
    conditions: tuple[str, ...] = ()
    unless: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()
    steps_any: tuple[str, ...] = ()
    without: tuple[str, ...] = ()
    point_of_no_return: bool = False

    def applies_to(self, playbook: Playbook | None) -> bool:
        """Whether a machine built from ``playbook`` has this row (None: every row, for docs)."""
        if playbook is None:
            return True
        listed = set(playbook.steps)
        if any(step not in listed for step in self.steps):
            return False
        if self.steps_any and not any(step in listed for step in self.steps_any):
            return False
        return not any(step in listed for step in self.without)

    def as_transition(self) -> dict[str, object]:
        """The row in ``transitions``' own vocabulary (guards by name)."""
        return {
            "trigger": self.trigger,
            "source": list(self.source),
            "dest": self.dest,
            "conditions": list(self.conditions),
            "unless": list(self.unless),
        }


def _r(
    trigger: str,
    source: str | Iterable[str],
    dest: str,
    why: str,
    *,
    conditions: tuple[str, ...] = (),
    unless: tuple[str, ...] = (),
    steps: tuple[str, ...] = (),
    steps_any: tuple[str, ...] = (),
    without: tuple[str, ...] = (),
    point_of_no_return: bool = False,
) -> Row:
    sources = (source,) if isinstance(source, str) else tuple(source)
    return Row(trigger, sources, dest, why, conditions, unless, steps, steps_any, without, point_of_no_return)


DEVICE_ROWS: tuple[Row, ...] = (
    _r("start", "pending", "preflight", f"Read before changing anything: join type, build, TPM, policy ({DOC_PREREQ})"),
    _r(
        "found_ineligible",
        "preflight",
        "ineligible",
        f"Not Entra/hybrid joined, build too old, no usable TPM, or no Entra Kerberos object ({DOC_PREREQ})",
        conditions=("path_ineligible",),
    ),
    _r(
        "found_cloud",
        "preflight",
        "already_cloud",
        f"Cloud trust policy already effective and no certificate trust left: nothing to do ({DOC_POLICY})",
        conditions=("path_cloud",),
    ),
    _r(
        "found_off_path",
        "preflight",
        "ineligible",
        "The device's trust model is not the one this playbook migrates (key trust under the cert playbook, ...)",
        conditions=("path_off_playbook",),
    ),
    _r(
        "preflight_done",
        "preflight",
        "snapshot",
        "Record every policy value about to change before changing it, so rollback can restore it",
        conditions=("path_on_playbook",),
        steps=("snapshot_policy",),
    ),
    _r(
        "preflight_done",
        "preflight",
        "policy",
        f"Change the policy ({DOC_CERT} steps 1-2)",
        conditions=("path_on_playbook",),
        steps_any=POLICY_STEPS,
        without=("snapshot_policy",),
    ),
    _r(
        "preflight_done",
        "preflight",
        "confirming",
        f"Nothing to write: confirm the effective policy ({DOC_POLICY})",
        conditions=("path_on_playbook",),
        steps=("confirm_policy",),
        without=("snapshot_policy", *POLICY_STEPS),
    ),
    _r(
        "snapshot_taken",
        "snapshot",
        "policy",
        f"Disable certificate trust in every source, enable cloud trust ({DOC_CERT} steps 1-2; {DOC_KEY} step 2)",
        steps_any=POLICY_STEPS,
    ),
    _r(
        "snapshot_taken",
        "snapshot",
        "confirming",
        f"No policy step listed: confirm what GPO/Intune deployed ({DOC_POLICY})",
        steps=("confirm_policy",),
        without=POLICY_STEPS,
    ),
    _r(
        "policy_value_set",
        "policy",
        "policy",
        "One value of the policy plan written (set_policy returns the value it replaced, for the audit log)",
        steps_any=("disable_cert_trust", "enable_cloud_trust"),
    ),
    _r(
        "policy_written",
        "policy",
        "confirming",
        f"Every value of the plan is written: confirm it is effective ({DOC_POLICY})",
        conditions=("policy_plan_done",),
        steps=("confirm_policy",),
    ),
    _r(
        "policy_refreshed",
        "policy",
        "confirming",
        "gpupdate /force ran (external channel: GPO/Intune deliver the values): confirm they are effective",
        conditions=("policy_plan_done",),
        steps=("refresh_policy", "confirm_policy"),
    ),
    _r(
        "policy_confirmed",
        "confirming",
        "users",
        f"Effective policy (read after the writes) is cloud trust for the device and every tracked user ({DOC_POLICY})",
        conditions=("policy_is_cloud", "users_policy_is_cloud"),
    ),
    _r(
        "policy_pending",
        "confirming",
        "policy",
        "External channel: GPO/Intune have not delivered cloud trust yet; refresh again at the next recheck",
        conditions=("external_channel",),
        unless=("policy_deadline_passed",),
        steps=("refresh_policy",),
    ),
    _r(
        "policy_not_effective",
        "confirming",
        "failed",
        "The written policy is not effective (a GPO or user-scope value overrides it): deleting a container "
        f"now would only re-provision certificate trust ({DOC_CERT})",
        unless=("external_channel",),
    ),
    _r(
        "policy_deadline",
        ("confirming", "policy"),
        "stalled",
        "External channel: the policy did not arrive before policy.refresh_deadline (visible, not failed)",
        conditions=("external_channel", "policy_deadline_passed"),
        steps=("refresh_policy",),
    ),
    _r(
        "policy_deadline",
        "confirming",
        "failed",
        "No refresh to wait for: the values written are still not effective at policy.refresh_deadline (a GPO or "
        f"user-scope value overrides them), so the policy is not effective ({DOC_CERT})",
        conditions=("policy_deadline_passed",),
        without=("refresh_policy",),
    ),
    _r(
        "users_waiting_for_dc",
        "users",
        "waiting_for_dc",
        f"Every unfinished user waits for line of sight to a domain controller ({DOC_DC})",
    ),
    _r(
        "users_waiting",
        "users",
        "waiting_for_user",
        "Every unfinished user waits for a person: sign-in, sign-out/in or re-provisioning",
    ),
    _r(
        "recheck",
        ("waiting_for_user", "waiting_for_dc"),
        "users",
        "A device waiting for people or a DC is looked at again every waits.recheck_every",
    ),
    _r(
        "all_migrated",
        "users",
        "migrated",
        "Every tracked user has a cloud trust container and a cloud TGT in their session",
        conditions=("every_user_migrated",),
    ),
    _r(
        "some_failed",
        "users",
        "failed",
        "Every user is finished and at least one failed (the reason is on the user)",
        conditions=("users_finished", "some_user_failed"),
    ),
    _r(
        "some_stalled",
        "users",
        "stalled",
        "Every user is finished, none failed, and at least one never completed before its deadline",
        conditions=("users_finished", "some_user_stalled"),
        unless=("some_user_failed",),
    ),
    _r(
        "unreachable",
        (*RETURNABLE, "waiting_for_device"),
        "waiting_for_device",
        "The device did not answer (refused, timed out, rebooting, busy; retried per playbook.retries): not a "
        "failure, as Ansible reports such hosts unreachable; look again at each recheck",
        unless=("unreachable_past_deadline",),
    ),
    _r(
        "unreachable",
        "rolling_back",
        "=",
        "A rollback step could not reach the device: it stays rolling back, and `migrator rollback` goes on later",
    ),
    _r(
        "unreachable_too_long",
        "waiting_for_device",
        "unreachable",
        "Unreachable for longer than waits.unreachable_deadline: parked with the last error; `resume` tries again",
        conditions=("unreachable_past_deadline",),
    ),
    *(
        _r(
            "reached",
            "waiting_for_device",
            state,
            "The device answers again: carry on where it was",
            conditions=(f"return_to_{state}",),
        )
        for state in RETURNABLE
    ),
    _r(
        "step_failed",
        (*RETURNABLE, "waiting_for_device"),
        "failed",
        "A step failed in a way retrying cannot fix (script error, credentials, unreadable answer)",
    ),
    _r(
        "step_failed",
        "rolling_back",
        "=",
        "A rollback step failed: the device stays rolling back with the error; `migrator rollback` tries again",
    ),
    _r(
        "retry",
        "unreachable",
        "waiting_for_device",
        "`migrator resume` (or an operator) tries an unreachable device again, with a new deadline",
    ),
    *(
        _r(
            "retry",
            ("error", "failed", "stalled"),
            state,
            "`migrator resume` retries a device in error (the bug fixed); an operator retries a failed or stalled "
            "one: back where it stopped, with fresh facts (every step is idempotent or guarded)",
            conditions=(f"return_to_{state}",),
        )
        for state in RETRY_TARGETS
    ),
    _r(
        "internal_error",
        tuple(s for s in DEVICE_STATES if s != "error"),
        "error",
        "An unexpected exception (a bug): recorded with its traceback, never swallowed or reported as something "
        "else; `resume` retries once it is fixed",
    ),
    _r("internal_error", "error", "=", "Another unexpected exception: the newest traceback is recorded"),
    _r(
        "begin_rollback",
        tuple(s for s in DEVICE_STATES if s not in ("rolled_back", "rolling_back")),
        "rolling_back",
        "Rollback restores the snapshot policy values through the journalled path",
    ),
    _r(
        "restored",
        "rolling_back",
        "rolled_back",
        "Every snapshot value is back; a deleted container cannot come back (the user re-provisions)",
    ),
)

# ---------------------------------------------------------------------------------------------------------
# The user machine (one per tracked user of a device).
# ---------------------------------------------------------------------------------------------------------
USER_ROWS: tuple[Row, ...] = (
    _r(
        "start",
        "pending",
        "identifying",
        f"Read the user's container (NgcKeyId) in their own session before the guarded delete ({DOC_USER})",
        conditions=("needs_delete",),
        steps=("delete_container",),
    ),
    _r(
        "start",
        "pending",
        "dc_check",
        f"Hybrid joined: the first sign-in under cloud trust needs line of sight to a DC ({DOC_DC})",
        conditions=("hybrid",),
        unless=("needs_delete",),
        steps=("check_dc",),
    ),
    _r(
        "start",
        "pending",
        "prompted",
        f"Ask the user to sign out and back in ({DOC_KEY} step 3)",
        unless=("needs_delete", "dc_check_applies"),
        steps=("prompt_sign_out",),
    ),
    _r(
        "start",
        "pending",
        "waiting_for_sign_in",
        f"No prompt listed: wait for the user's next sign-in ({DOC_KEY} step 3)",
        unless=("needs_delete", "dc_check_applies"),
        without=("prompt_sign_out",),
    ),
    _r(
        "identified",
        "identifying",
        "dc_check",
        "Container recorded (key id, trust); hybrid: check the DC before the point of no return",
        conditions=("dc_check_applies",),
        steps=("check_dc",),
    ),
    _r(
        "identified",
        "identifying",
        "deleting",
        f"Container recorded; every guard of the point of no return holds ({DOC_CERT} step 3)",
        conditions=(*PONR_GUARDS, "change_window_open"),
        unless=("dc_check_applies", "user_protected"),
        point_of_no_return=True,
    ),
    _r(
        "container_gone",
        ("identifying", "dc_check", "deleting", "armed"),
        "prompted",
        "The container is already gone (deleted earlier, by us or the user): nothing to delete; ask for sign-in",
        steps=("prompt_sign_out",),
    ),
    _r(
        "container_gone",
        ("identifying", "dc_check", "deleting", "armed"),
        "waiting_for_reprovision",
        "The container is already gone: wait for the user to provision a new one",
        without=("prompt_sign_out",),
    ),
    _r(
        "dc_ok",
        "dc_check",
        "deleting",
        f"Point of no return: cloud policy verified from every source, DC reachable, container unchanged "
        f"({DOC_CERT} step 3, {DOC_DC})",
        conditions=("needs_delete", *PONR_GUARDS, "change_window_open"),
        unless=("user_protected",),
        point_of_no_return=True,
    ),
    _r(
        "dc_ok",
        "dc_check",
        "prompted",
        f"Key trust, DC reachable: ask the user to sign out and in with Hello ({DOC_KEY} step 3)",
        conditions=("dc_line_of_sight",),
        unless=("needs_delete",),
        steps=("prompt_sign_out",),
    ),
    _r(
        "dc_ok",
        "dc_check",
        "waiting_for_sign_in",
        f"Key trust, DC reachable: wait for the next Hello sign-in ({DOC_KEY} step 3)",
        conditions=("dc_line_of_sight",),
        unless=("needs_delete",),
        without=("prompt_sign_out",),
    ),
    _r(
        "dc_missing",
        "dc_check",
        "waiting_for_dc",
        f"No line of sight to a DC: never pass the point of no return, never prompt ({DOC_DC})",
        unless=("dc_line_of_sight",),
    ),
    _r("recheck", "waiting_for_dc", "dc_check", "Look again every waits.recheck_every"),
    _r(
        "guards_lost",
        "deleting",
        "dc_check",
        "Re-read before sending the delete: a guard no longer holds, so go back and decide again",
    ),
    _r(
        "container_deleted",
        "deleting",
        "prompted",
        f"Deleted in the user's own context; ask them to sign out and in ({DOC_CERT} steps 3-4)",
        steps=("prompt_sign_out",),
    ),
    _r(
        "container_deleted",
        "deleting",
        "waiting_for_reprovision",
        f"Deleted in the user's own context; wait for re-provisioning ({DOC_CERT} step 5)",
        without=("prompt_sign_out",),
    ),
    _r(
        "container_replaced",
        ("identifying", "deleting", "armed"),
        "verifying",
        "The device refused the delete: the container is no longer the recorded one (replaced, or already cloud)",
    ),
    _r(
        "logon_task_armed",
        "deleting",
        "armed",
        f"User not signed in: an at-logon task runs the guarded delete at their next sign-in ({DOC_USER})",
    ),
    _r(
        "task_deleted_container",
        "armed",
        "waiting_for_reprovision",
        "The at-logon task deleted the container at sign-in; Windows re-provisions in that same sign-in",
    ),
    _r(
        "logon_task_removed",
        ("waiting_for_reprovision", "verifying", "armed"),
        "=",
        "The at-logon task and its files are removed once its result is read",
    ),
    _r(
        "prompt_sent",
        "prompted",
        "waiting_for_reprovision",
        f"Asked to sign out and in; the new container comes at the next sign-in ({DOC_CERT} steps 4-5)",
        conditions=("container_was_deleted",),
    ),
    _r(
        "prompt_sent",
        "prompted",
        "waiting_for_sign_in",
        f"Asked to sign out and in with Hello ({DOC_KEY} step 3)",
        unless=("container_was_deleted",),
    ),
    _r(
        "signed_in",
        ("waiting_for_sign_in", "waiting_for_reprovision"),
        "verifying",
        "The user is signed in (with a container): check the cloud TGT in their session",
        steps=("verify_cloud",),
    ),
    _r(
        "signed_in",
        ("waiting_for_sign_in", "waiting_for_reprovision"),
        "migrated",
        "No verification listed: a sign-in after the change is the end of the documented path",
        without=("verify_cloud",),
    ),
    _r(
        "cloud_verified",
        "verifying",
        "migrated",
        "New container is cloud trust and the session holds the partial TGT (dsregcmd OnPremTgt; on builds with "
        "the 19043/19044 UBR 2130-2485 display bug, klist cloud_debug)",
        conditions=("cloud_tgt_verified",),
    ),
    _r(
        "not_yet_cloud",
        "verifying",
        "waiting_for_reprovision",
        "No cloud TGT yet (first Hello unlock or sign-in brings it): look again later",
        conditions=("container_was_deleted",),
    ),
    _r(
        "not_yet_cloud",
        "verifying",
        "waiting_for_sign_in",
        f"Still key trust (no cloud TGT): wait for the next Hello sign-in with a DC ({DOC_KEY})",
        unless=("container_was_deleted",),
    ),
    _r(
        "account_refused",
        ("pending", "identifying", "verifying"),
        "stalled",
        "The account is in a group Entra Kerberos never serves (msDS-NeverRevealGroup of AzureADKerberos, read from "
        "the directory at preflight or from the user's token): cloud Kerberos trust cannot work for it, so nothing "
        "is deleted and nobody waits (windows-facts §9.7)",
        conditions=("user_protected",),
    ),
    _r(
        "remind",
        ("waiting_for_sign_in", "waiting_for_reprovision"),
        "prompted",
        "Signed in again but no cloud TGT (e.g. signed in off the network: no DC for the first sign-in): a DC "
        f"answers now, so ask once more ({DOC_DC})",
        conditions=("reminder_due", "dc_line_of_sight"),
        steps=("prompt_sign_out",),
    ),
    _r(
        "deadline",
        ("identifying", "waiting_for_dc", "armed", "waiting_for_sign_in", "waiting_for_reprovision"),
        "stalled",
        "Past its deadline from the playbook's waits: visible to the change manager, not failed",
        conditions=("deadline_passed",),
    ),
    _r(
        "deferred",
        (*USER_ACTIVE, *USER_WAITING),
        "=",
        "A user-context run could not start or finish (task timeout): try again at the next recheck",
    ),
    _r(
        "step_failed",
        (*USER_ACTIVE, *USER_WAITING),
        "failed",
        "A step failed in a way retrying cannot fix, or a guard of the point of no return can no longer hold",
    ),
    _r(
        "retry",
        ("failed", "stalled"),
        "waiting_for_reprovision",
        "An operator retries the user whose container is already gone: wait for re-provisioning again, with a new "
        "deadline (nothing is deleted twice)",
        conditions=("container_was_deleted",),
    ),
    _r(
        "retry",
        ("failed", "stalled"),
        "pending",
        "An operator retries the user: start again from reading the container (every step is guarded)",
        unless=("container_was_deleted",),
    ),
)


# ---------------------------------------------------------------------------------------------------------
# Events from outside the machine's own decisions, and where each changes nothing (and why).
# ---------------------------------------------------------------------------------------------------------
DEVICE_EVENTS = (
    "unreachable",  # a step could not reach the device (refused, timeout, reboot, busy, dropped answer)
    "unreachable_too_long",  # ... for longer than waits.unreachable_deadline
    "reached",  # the device answers again
    "step_failed",  # a step failed for good (script error, credentials, unreadable answer)
    "lease_lost",  # the store says another worker holds the device's lease
    "pause",  # an operator paused the wave
    "halt",  # the wave halted (failure budget, canary)
    "retry",  # `migrator resume` or an operator tries again
    "internal_error",  # an unexpected exception
    "begin_rollback",  # an operator rolls the device back
)
USER_EVENTS = (
    "deadline",  # the waiting phase's deadline passed
    "signed_in",  # the user signed in while we wait
    "container_gone",  # the user's container is gone (deleted by us earlier, by the user, or by Windows)
    "step_failed",
    "deferred",  # a user-context run could not start or finish
    "retry",
)

_PARKED_NOTHING_RUNS = "parked: no step is sent in a parked state, so no answer can go missing or fail"
_WAVE_LEVEL = (
    "a wave-level decision: no new visit starts and a running visit stops before its next step; the device keeps "
    "its state, which `migrator resume` continues"
)
_FENCED = (
    "the store refuses every write without the lease (fencing): the visit stops, the state stays as the store has "
    "it, and the worker holding the lease goes on"
)
_NOTHING_TO_RETRY = "nothing to retry: the device has work or waits for it, and its next visit goes on"

IGNORED: dict[tuple[str, str], str] = {
    **{("unreachable", s): _PARKED_NOTHING_RUNS for s in DEVICE_PARKED},
    **{("step_failed", s): _PARKED_NOTHING_RUNS for s in DEVICE_PARKED},
    **{
        ("unreachable_too_long", s): "the unreachable deadline counts from the first failure, which moves the device "
        "to waiting_for_device: only there can it pass"
        for s in DEVICE_STATES
        if s not in ("waiting_for_device", *DEVICE_FINAL)
    },
    **{
        ("reached", s): "only a device waiting for the device has something to carry on with when it answers"
        for s in DEVICE_STATES
        if s not in ("waiting_for_device", *DEVICE_FINAL)
    },
    **{("lease_lost", s): _FENCED for s in DEVICE_STATES if s not in DEVICE_FINAL},
    **{("pause", s): _WAVE_LEVEL for s in DEVICE_STATES if s not in DEVICE_FINAL},
    **{("halt", s): _WAVE_LEVEL for s in DEVICE_STATES if s not in DEVICE_FINAL},
    **{("retry", s): _NOTHING_TO_RETRY for s in (*DEVICE_ACTIVE, *DEVICE_WAITING)},
    ("begin_rollback", "rolling_back"): "already rolling back: `migrator rollback` goes on from where it was",
    # Users.
    **{
        ("deadline", s): "an active step ends at once; the waiting phase that follows checks the deadline"
        for s in ("pending", "dc_check", "deleting", "prompted", "verifying")
    },
    ("deadline", "stalled"): "already parked: the deadline passed before",
    ("signed_in", "pending"): "the start decides from this visit's facts, signed in or not",
    ("signed_in", "identifying"): "a sign-in is what identifying waits for: the container is read in that session",
    ("signed_in", "dc_check"): "the DC decides first; the sign-in is seen by the waiting phase that follows",
    ("signed_in", "deleting"): "the delete runs in the session now open, or as an at-logon task if there is none",
    ("signed_in", "armed"): "the at-logon task runs at that sign-in; its result is read next",
    ("signed_in", "prompted"): "the prompt goes to the session now open; a new sign-in is looked for after it",
    ("signed_in", "verifying"): "verifying reads the session that is open",
    ("signed_in", "waiting_for_dc"): "a sign-in without a DC cannot get a cloud TGT: the DC is checked first",
    ("signed_in", "stalled"): "parked: a person decides (retry); the next visit does not look",
    ("container_gone", "pending"): "the start reads the container first",
    ("container_gone", "prompted"): "the container is already deleted: the new one is awaited next",
    ("container_gone", "waiting_for_sign_in"): "a user who removed their own key trust container re-provisions "
    "at the next sign-in, which is what we wait for",
    ("container_gone", "waiting_for_reprovision"): "that is what re-provisioning starts from",
    ("container_gone", "verifying"): "verifying reads the container itself",
    ("container_gone", "waiting_for_dc"): "seen at the next DC check, before any delete",
    ("container_gone", "stalled"): "parked: a person decides (retry)",
    ("step_failed", "stalled"): "parked: no user step runs",
    ("deferred", "stalled"): "parked: no user step runs",
    **{("retry", s): "nothing to retry: the user has work or waits for it" for s in (*USER_ACTIVE, *USER_WAITING)},
}


def device_rows(playbook: Playbook | None = None) -> list[Row]:
    return [row for row in DEVICE_ROWS if row.applies_to(playbook)]


def user_rows(playbook: Playbook | None = None) -> list[Row]:
    return [row for row in USER_ROWS if row.applies_to(playbook)]


def resolved_dest(row: Row, source: str) -> str:
    """``"="`` means "stays where it is" (a self-transition that records data: a retry, a written value)."""
    return source if row.dest == "=" else row.dest
