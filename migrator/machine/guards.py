"""The guards the table names, and what each one reads.

A guard is a pure function of a :class:`GuardInput` (the playbook, the time of the event, the device's facts as
last read and whether they were read in this visit, the machine's context). The point of no return
(``dc_ok`` / ``identified`` → ``deleting``) is guarded by ``policy_is_cloud``, ``no_cert_trust_any_source``,
``user_policy_is_cloud``, ``dc_line_of_sight``, ``security_device_ok``, ``container_unchanged`` and
``change_window_open``; the facts behind the first five must have been read in the current visit (a stale "DC
reachable" guards nothing).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from migrator.facts import DeviceFacts, HelloState, PathDecision
from migrator.machine.context import DeviceContext, UserContext
from migrator.machine.table import RETRY_TARGETS, USER_SETTLED
from migrator.playbook import Playbook

# Windows 10 21H1/21H2 between KB5018410 (Oct 2022) and the 2023-01 C update print OnPremTgt/CloudTgt wrongly
# in dsregcmd /status (windows-facts §1, §9.5): on those builds klist cloud_debug decides.
DSREG_DISPLAY_BUG: dict[int, tuple[int, int]] = {19043: (2130, 2485), 19044: (2130, 2485)}
WINDOWS_11_FIRST_BUILD = 22000


def has_dsregcmd_display_bug(build: int | None, ubr: int | None) -> bool:
    window = DSREG_DISPLAY_BUG.get(build or 0)
    return window is not None and ubr is not None and window[0] <= ubr <= window[1]


def same_key_id(a: str | None, b: str | None) -> bool:
    """NgcKeyIds compare without braces and case (dsregcmd prints {GUID}, the guard script lower-cases)."""
    if not a or not b:
        return False
    return a.strip().strip("{}").casefold() == b.strip().strip("{}").casefold()


@dataclass(frozen=True)
class GuardInput:
    playbook: Playbook
    now: datetime
    facts: DeviceFacts | None = None
    facts_fresh: bool = False
    decision: PathDecision | None = None
    device_context: DeviceContext = field(default_factory=DeviceContext)
    user_context: UserContext = field(default_factory=UserContext)
    user_states: Sequence[str] = ()
    hello: HelloState | None = None
    window_open: bool = True


Guard = Callable[[GuardInput], bool]


def _user_sid(i: GuardInput) -> str:
    return i.user_context.sid


def _fresh(i: GuardInput) -> DeviceFacts | None:
    return i.facts if i.facts_fresh else None


def _effective_for(facts: DeviceFacts, sid: str) -> str:
    return facts.policy.user_effective.get(sid, facts.policy.effective)


def _hybrid(i: GuardInput) -> bool:
    return i.facts is not None and i.facts.join_type == "hybrid"


def _policy_is_cloud(i: GuardInput) -> bool:
    facts = _fresh(i)
    return facts is not None and facts.policy.effective == "cloud"


def _no_cert_trust_any_source(i: GuardInput) -> bool:
    facts = _fresh(i)
    return facts is not None and not facts.policy.cert_trust_any_source


def _users_policy_is_cloud(i: GuardInput) -> bool:
    facts = _fresh(i)
    if facts is None:
        return False
    return all(_effective_for(facts, sid) == "cloud" for sid in i.device_context.tracked_sids)


def _user_policy_is_cloud(i: GuardInput) -> bool:
    facts = _fresh(i)
    return facts is not None and _effective_for(facts, _user_sid(i)) == "cloud"


def _dc_line_of_sight(i: GuardInput) -> bool:
    facts = _fresh(i)
    if facts is None:
        return False
    if facts.join_type != "hybrid":
        return True  # Entra joined: no first-sign-in DC requirement for the device itself
    return facts.dc.checked and facts.dc.reachable is True


def _security_device_ok(i: GuardInput) -> bool:
    # With RequireSecurityDevice=1 (on the device, or written by this playbook) Hello provisions only on a usable
    # TPM. Deleting a container on a device whose TPM is absent, not ready or *unknown* (Get-Tpm failed) could
    # leave the user with no Hello at all and nothing to re-provision: only a TPM positively read as usable passes.
    facts = _fresh(i)
    if facts is None:
        return False
    requires = facts.policy.require_security_device or i.playbook.policy.require_security_device
    return not requires or facts.tpm.usable is True


def _user_protected(i: GuardInput) -> bool:
    return bool(i.user_context.protected_groups)


def _container_unchanged(i: GuardInput) -> bool:
    # Here: a key id was recorded and the PIN credential provider still lists a container for the SID. The key
    # id and trust themselves are re-checked on the device by the delete script, in the same run that deletes.
    facts = _fresh(i)
    if facts is None or not i.user_context.key_id:
        return False
    user = facts.user(_user_sid(i))
    return user is not None and user.has_hello


def _cloud_tgt_verified(i: GuardInput) -> bool:
    hello = i.hello
    if hello is None or hello.status != "completed" or hello.ngc_set is not True:
        return False
    if i.user_context.deleted and same_key_id(hello.ngc_key_id, i.user_context.key_id):
        return False  # still the old container
    facts = i.facts
    if facts is not None and has_dsregcmd_display_bug(facts.os.build, facts.os.ubr):
        return hello.cloud_primary_tgt is True
    if hello.on_prem_tgt is None:
        return hello.cloud_primary_tgt is True
    return hello.on_prem_tgt is True


def _reminder_due(i: GuardInput) -> bool:
    # Only after a sign-in that brought no cloud TGT (the verify step saw Hello used, no partial TGT), within the
    # playbook's budget of reminders, and not sooner than remind_after since the last prompt.
    context = i.user_context
    if context.no_cloud_tgt is None or context.reminders >= i.playbook.prompt.reminders:
        return False
    last = context.prompted_at
    if last is not None and i.now < last + timedelta(seconds=i.playbook.prompt.remind_after):
        return False
    facts = _fresh(i)
    if facts is None:
        return False
    person = facts.user(_user_sid(i))
    return person is not None and person.signed_in and person.session is not None


def _deadline_passed(i: GuardInput) -> bool:
    since, limit = i.user_context.since, i.user_context.deadline_seconds
    if since is None or limit is None:
        return False
    return i.now >= since + timedelta(seconds=limit)


def _policy_deadline_passed(i: GuardInput) -> bool:
    since = i.device_context.policy_since
    return since is not None and i.now >= since + timedelta(seconds=i.playbook.policy.refresh_deadline)


def _unreachable_past_deadline(i: GuardInput) -> bool:
    since = i.device_context.unreachable_since
    return since is not None and i.now >= since + timedelta(seconds=i.playbook.waits.unreachable_deadline)


def _path_is(*paths: str) -> Guard:
    def check(i: GuardInput) -> bool:
        return i.decision is not None and i.decision.path in paths

    return check


def _path_on_playbook(i: GuardInput) -> bool:
    if i.decision is None or i.decision.path not in ("key", "cert"):
        return False
    return i.playbook.path in ("auto", i.decision.path)


def _path_off_playbook(i: GuardInput) -> bool:
    return i.decision is not None and i.decision.path in ("key", "cert") and not _path_on_playbook(i)


def _return_to(state: str) -> Guard:
    def check(i: GuardInput) -> bool:
        return i.device_context.return_to == state

    return check


GUARDS: dict[str, tuple[Guard, str]] = {
    "path_ineligible": (_path_is("ineligible"), "facts.path() found a blocker (join type, build, TPM, Entra Kerberos)"),
    "path_cloud": (_path_is("cloud"), "cloud trust already effective"),
    "path_on_playbook": (_path_on_playbook, "the device's path is key or cert and the playbook takes it"),
    "path_off_playbook": (_path_off_playbook, "the device's path is not the playbook's"),
    "policy_plan_done": (
        lambda i: i.device_context.plan_done >= len(i.device_context.plan),
        "every value of the policy plan was written",
    ),
    "policy_is_cloud": (_policy_is_cloud, "effective Hello policy read in this visit is cloud trust"),
    "no_cert_trust_any_source": (
        _no_cert_trust_any_source,
        "UseCertificateForOnPremAuth=1 nowhere: GPO computer or user, MDM device or user",
    ),
    "users_policy_is_cloud": (_users_policy_is_cloud, "every tracked user's effective policy is cloud trust"),
    "user_policy_is_cloud": (_user_policy_is_cloud, "this user's effective policy (user scope too) is cloud trust"),
    "security_device_ok": (
        _security_device_ok,
        "no hardware security device required (device policy and playbook), or a TPM read in this visit as usable",
    ),
    "external_channel": (
        lambda i: i.playbook.policy.by_refresh,
        "policy comes from GPO/Intune (external, ad-group, intune-group)",
    ),
    "policy_deadline_passed": (_policy_deadline_passed, "policy.refresh_deadline passed since the first refresh"),
    "every_user_migrated": (lambda i: all(s == "migrated" for s in i.user_states), "every tracked user migrated"),
    "users_finished": (lambda i: all(s in USER_SETTLED for s in i.user_states), "no user has work left"),
    "some_user_failed": (lambda i: "failed" in i.user_states, "a user failed"),
    "some_user_stalled": (lambda i: "stalled" in i.user_states, "a user stalled"),
    "user_protected": (
        _user_protected,
        "the user's token holds a group Entra Kerberos refuses (Domain Admins, Enterprise Admins, ...: "
        "msDS-NeverRevealGroup of AzureADKerberos)",
    ),
    "reminder_due": (
        _reminder_due,
        "signed in with Hello but no cloud TGT; reminders left; remind_after passed; the user has a session",
    ),
    "unreachable_past_deadline": (
        _unreachable_past_deadline,
        "unreachable since the first failure for longer than waits.unreachable_deadline",
    ),
    "needs_delete": (
        lambda i: i.user_context.needs_delete,
        "cert path, or key path with reset_key_trust_containers",
    ),
    "hybrid": (_hybrid, "Microsoft Entra hybrid joined"),
    "dc_check_applies": (
        lambda i: _hybrid(i) and i.playbook.has("check_dc"),
        "hybrid joined and the playbook lists check_dc",
    ),
    "dc_line_of_sight": (_dc_line_of_sight, "nltest /dsgetdc found a DC in this visit (hybrid joined devices)"),
    "container_unchanged": (_container_unchanged, "the container recorded at preflight is still there"),
    "change_window_open": (lambda i: i.window_open, "the change window allows a point of no return now"),
    "container_was_deleted": (lambda i: i.user_context.deleted, "this user's container was deleted"),
    "cloud_tgt_verified": (_cloud_tgt_verified, "new container, partial TGT in the session (display bug aware)"),
    "deadline_passed": (_deadline_passed, "the waiting phase's deadline passed"),
    **{f"return_to_{state}": (_return_to(state), f"the device stopped in {state}") for state in RETRY_TARGETS},
}


def check(name: str, data: GuardInput) -> bool:
    return GUARDS[name][0](data)
