"""The migration's states and transitions, as data: the one place every legal state change is listed.

Theory of operation
-------------------
A device walks one of the two documented paths (MS docs "Windows Hello for Business cloud Kerberos trust":
*Migrate from key trust* / *Migrate from certificate trust*); each of its users walks a sub-machine of their own
(shared devices have several). Each :class:`Row` is one legal transition in the vocabulary of ``transitions``:
``trigger``, ``source``, ``dest``, ``conditions`` (guards that must all hold) and ``unless`` (guards that must
all fail), plus

* ``steps`` / ``steps_any`` / ``without``: playbook steps that must all / at least one / none be listed for the
  row to exist at all, so a machine built from a playbook has only the rows its steps call for;
* ``why``: one line, citing the Microsoft document the row follows.

Rows for the same trigger and source are tried in order; the first whose guards hold is taken (that is how
``transitions`` resolves them). A trigger with no row from the current state is illegal
(:class:`~migrator.machine.errors.InvalidTransition`); a row whose guards fail is refused
(:class:`~migrator.machine.errors.GuardRefused`); neither changes anything. The diagram of ``migrator diagram``
is drawn from these rows (:mod:`migrator.machine.diagram`); the guards are defined in
:mod:`migrator.machine.guards`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from migrator.playbook import Playbook

# ---- device states ----------------------------------------------------------------------------------------
DEVICE_ACTIVE = ("pending", "preflight", "snapshot", "policy", "confirming", "users")
DEVICE_WAITING = ("waiting_for_user", "waiting_for_dc")
DEVICE_PARKED = ("paused", "stalled")
DEVICE_FINAL = ("migrated", "already_cloud", "ineligible", "failed", "rolled_back")
DEVICE_STATES: tuple[str, ...] = (*DEVICE_ACTIVE, *DEVICE_WAITING, *DEVICE_PARKED, "rolling_back", *DEVICE_FINAL)
DEVICE_INITIAL = "pending"
# States a device can be paused in (and resumed to): everything that still has work or waits for it.
PAUSABLE = (*DEVICE_ACTIVE, *DEVICE_WAITING)

# ---- user states ------------------------------------------------------------------------------------------
USER_ACTIVE = ("pending", "identifying", "dc_check", "deleting", "prompted", "verifying")
USER_WAITING = ("waiting_for_dc", "armed", "waiting_for_sign_in", "waiting_for_reprovision")
USER_FINAL = ("migrated", "stalled", "failed")
USER_STATES: tuple[str, ...] = (*USER_ACTIVE, *USER_WAITING, *USER_FINAL)
USER_INITIAL = "pending"

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


# ---------------------------------------------------------------------------------------------------------
# The device machine.
# ---------------------------------------------------------------------------------------------------------
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
    _r("recheck", DEVICE_WAITING, "users", "A waiting device is looked at again every waits.recheck_every"),
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
        "deferred",
        DEVICE_ACTIVE,
        "=",
        "The device could not be reached (retried per playbook.retries): try again at the next recheck",
    ),
    _r(
        "step_failed",
        DEVICE_ACTIVE,
        "failed",
        "A step failed in a way retrying cannot fix (script error, credentials, unreadable answer)",
    ),
    _r(
        "unreachable_too_long",
        DEVICE_ACTIVE,
        "failed",
        "The device stayed unreachable past waits.user_deadline",
        conditions=("unreachable_past_deadline",),
    ),
    _r("pause", PAUSABLE, "paused", "An operator paused the wave: nothing is sent until resumed"),
    *(
        _r(
            "resume",
            "paused",
            state,
            "Resume where the device was paused",
            conditions=(f"paused_in_{state}",),
        )
        for state in PAUSABLE
    ),
    _r(
        "retry",
        ("failed", "stalled"),
        "pending",
        "An operator retries: every step is idempotent or guarded, so starting over from preflight is safe",
    ),
    _r(
        "begin_rollback",
        tuple(s for s in DEVICE_STATES if s not in ("rolled_back", "rolling_back")),
        "rolling_back",
        "Rollback restores the snapshot policy values through the journalled path",
    ),
    _r(
        "rolled_back",
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
        ("identifying", "verifying"),
        "stalled",
        "The account is in a group Entra Kerberos never serves (msDS-NeverRevealGroup of AzureADKerberos): cloud "
        "Kerberos trust cannot work for it, so nothing is deleted and nobody waits (windows-facts §9.7)",
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
    _r("retry", ("failed", "stalled"), "pending", "An operator retries the user: every step is guarded"),
)


def device_rows(playbook: Playbook | None = None) -> list[Row]:
    return [row for row in DEVICE_ROWS if row.applies_to(playbook)]


def user_rows(playbook: Playbook | None = None) -> list[Row]:
    return [row for row in USER_ROWS if row.applies_to(playbook)]


def resolved_dest(row: Row, source: str) -> str:
    """``"="`` means "stays where it is" (a self-transition that records data: a retry, a written value)."""
    return source if row.dest == "=" else row.dest
