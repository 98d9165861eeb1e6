"""What each state decides: one registered decider per device state and per user state.

A decider looks at the machine (facts of this visit, the state's context) and either moves it (through
:meth:`~migrator.machine.core.DeviceMachine.fire`, then returns None: decide again from the new state) or returns
the next :class:`~migrator.machine.commands.Command`: a step to run (built by the step's purpose handler in
:mod:`migrator.machine.purposes`), a wait, or done. Deciders do no I/O.

Device deciders that need facts read in this visit say so (``fresh``): the machine reads them first. Parked and
final states have no decider: the machine answers :class:`Done` for them (their category says so, in the table).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from migrator.facts import DeviceFacts, UserFacts
from migrator.machine import guards as guard_mod
from migrator.machine import purposes as p
from migrator.machine.commands import Command, RunStep, Wait
from migrator.machine.context import UserContext
from migrator.machine.plan import gpo_overwrite_warning, policy_plan
from migrator.machine.table import USER_SETTLED
from migrator.steps import PromptUser

if TYPE_CHECKING:
    from migrator.machine.core import DeviceMachine, UserEntry

DeviceDecide = Callable[["DeviceMachine", datetime], "Command | None"]
UserDecide = Callable[["DeviceMachine", "UserEntry", UserFacts, datetime], "Command | None"]


Ahead = Callable[["DeviceMachine"], "tuple[RunStep, ...]"]


@dataclass(frozen=True)
class DeviceDecider:
    decide: DeviceDecide
    fresh: bool  # needs facts read in this visit
    # Reads a later state will need, riding in this state's facts read (its pipeline): no request of their own.
    ahead: Ahead | None = None


DEVICE_DECIDERS: dict[str, DeviceDecider] = {}
USER_DECIDERS: dict[str, UserDecide] = {}


def device(*states: str, fresh: bool = True, ahead: Ahead | None = None) -> Callable[[DeviceDecide], DeviceDecide]:
    def register(fn: DeviceDecide) -> DeviceDecide:
        for state in states:
            DEVICE_DECIDERS[state] = DeviceDecider(fn, fresh, ahead)
        return fn

    return register


def user(*states: str) -> Callable[[UserDecide], UserDecide]:
    def register(fn: UserDecide) -> UserDecide:
        for state in states:
            USER_DECIDERS[state] = fn
        return fn

    return register


# ---------------------------------------------------------------------------------------------------------
# Device states
# ---------------------------------------------------------------------------------------------------------


@device("pending", fresh=False)
def _pending(m: DeviceMachine, now: datetime) -> Command | None:
    m.fire("start", now=now)
    return None


@dataclass(frozen=True)
class TrackedUser:
    """A user preflight decided to track, with the trust of their container (None: no container)."""

    name: str
    sid: str
    container_trust: str | None


def tracked_users(m: DeviceMachine, facts: DeviceFacts) -> list[TrackedUser]:
    """The users the playbook tracks on this device (with a container, or signed in), with their trust."""
    tracked: list[TrackedUser] = []
    for person in facts.users:
        if m.playbook.users == "with_container" and not person.has_hello:
            continue
        if m.playbook.users == "signed_in" and not person.signed_in:
            continue
        trust = None
        if person.has_hello:
            effective = facts.policy.user_effective.get(person.sid, facts.policy.effective)
            trust = effective if effective in ("key", "cert", "cloud") else "key"
        tracked.append(TrackedUser(person.name or person.sid, person.sid, trust))
    return tracked


def _snapshot_ahead(m: DeviceMachine) -> tuple[RunStep, ...]:
    # The values the snapshot state will read, discovered with preflight's facts (the plan is not known yet).
    return (p.DISCOVER.command(),) if m.playbook.has("snapshot_policy") else ()


@device("preflight", ahead=_snapshot_ahead)
def _preflight(m: DeviceMachine, now: datetime) -> Command | None:
    facts, decision = m.facts, m.decision
    assert facts is not None and decision is not None
    reasons = tuple(decision.reasons)
    summary = "; ".join(reasons) if reasons else None
    for trigger in ("found_ineligible", "found_cloud", "found_off_path"):
        if trigger == "found_off_path":
            summary = (
                f"device is on the {decision.path} trust path; playbook {m.playbook.name} migrates "
                f"{m.playbook.path} trust devices"
            )
        if m.try_fire(
            trigger,
            now=now,
            context=replace(m.context, reasons=reasons, reason=summary),
            last_error=summary if trigger != "found_cloud" else None,
            path=decision.path,
        ):
            return None
    tracked = tracked_users(m, facts)
    plan = tuple(policy_plan(facts, m.playbook))
    overwritten = gpo_overwrite_warning(facts, plan)
    m.funnel.add_users(tracked)
    after: dict[str, Any] = {"path": decision.path, "users": [u.name for u in tracked], "planned": len(plan)}
    if overwritten:
        after["gpo_managed"] = dict(facts.policy.gpo_managed)
    m.fire(
        "preflight_done",
        now=now,
        warning=overwritten,
        context=replace(
            m.context,
            path=decision.path,
            reasons=reasons,
            plan=plan,
            plan_done=0,
            tracked_sids=tuple(u.sid for u in tracked),
            users=tuple(u.name for u in tracked),
        ),
        path=decision.path,
        before={"effective_policy": facts.policy.effective, "join_type": facts.join_type},
        after=after,
    )
    for tracked_user in tracked:
        m.track(tracked_user)
        entry = m.users.get(tracked_user.name)
        if entry is not None and entry.model.state == "pending":
            # The directory already says Entra Kerberos never serves this account: parked now, group named.
            p.refused_account(m, entry, now)
    return None


@device("snapshot")
def _snapshot(m: DeviceMachine, now: datetime) -> Command | None:
    values = p.SNAPSHOT.discovered(m, m.context.plan)
    if values is not None:
        p.SNAPSHOT.take(m, values, now)
        return None
    return p.SNAPSHOT.command(m.context.plan)


@device("policy", fresh=False)
def _policy(m: DeviceMachine, now: datetime) -> Command | None:
    if m.facts is None:
        return m.read_facts()
    if m.context.policy_since is None:
        # Kept with the next change the funnel persists: the external channel's deadline counts from here.
        m.context = replace(m.context, policy_since=now)
    # Writing the plan decides nothing from the facts (the plan and its progress are in the context); they are
    # read again once, before the writes are confirmed, not after every value.
    plan, done = m.context.plan, m.context.plan_done
    if done < len(plan):
        # The rest of the plan in one call; confirmed by the facts read right after it, in the same pipeline (the
        # confirming state decides on them) unless a refresh comes first.
        command = replace(p.SET_POLICY.command(plan[done:]), companions=_identify_ahead(m))
        return command if m.playbook.has("refresh_policy") else p.confirmed(command)
    if m.playbook.has("refresh_policy"):
        if m.refreshed_this_visit:
            return Wait(m.recheck(now), "waiting for Group Policy / Intune to deliver the policy", "policy")
        return p.REFRESH.command()
    m.fire("policy_written", now=now)
    return None


def _identify_ahead(m: DeviceMachine) -> tuple[RunStep, ...]:
    """The identify of every signed-in user whose container is to be deleted, sent with the policy write (each its
    own journal entry): the container is read in the user's session whatever the policy, and the facts read after
    both are what the point of no return is decided on. Only on facts of this visit (a signed-in user)."""
    if not m.facts_fresh or m.facts is None:
        return ()
    ahead = []
    for name in sorted(m.users):
        entry = m.users[name]
        person = person_of(m, entry)
        context = entry.context
        if entry.model.state != "pending" or not context.needs_delete or context.key_id or context.protected_groups:
            continue
        if person is not None and person.has_hello and person.signed_in:
            ahead.append(p.IDENTIFY.command(entry))
    return tuple(ahead)


@device("confirming")
def _confirming(m: DeviceMachine, now: datetime) -> Command | None:
    assert m.facts is not None
    policy = m.facts.policy
    described = f"effective policy {policy.effective} (source {policy.source})"
    if policy.notes:
        described += "; " + "; ".join(policy.notes)
    if m.try_fire("policy_confirmed", now=now, after={"effective_policy": policy.effective}):
        return None
    if m.playbook.has("refresh_policy"):
        late = f"policy did not arrive in time: {described}"
        return_to = "policy"
    else:
        # Nothing refreshes it: past the deadline the written values are simply not effective (failed).
        late = f"cloud trust is not effective after the writes (policy.refresh_deadline passed): {described}"
        return_to = "confirming"
    if m.try_fire(
        "policy_deadline",
        now=now,
        last_error=late,
        context=replace(m.context, reason=late, return_to=return_to),
    ):
        return None
    if m.try_fire("policy_pending", now=now, last_error=f"waiting for the policy: {described}"):
        return Wait(m.recheck(now), "waiting for Group Policy / Intune to deliver cloud trust", "policy")
    m.fire(
        "policy_not_effective",
        now=now,
        last_error=f"cloud trust is not effective after the writes: {described}",
        context=replace(m.context, reason=described, return_to="confirming"),
    )
    return None


@device("waiting_for_user", "waiting_for_dc")
def _waiting(m: DeviceMachine, now: datetime) -> Command | None:
    m.fire("recheck", now=now)
    return None


@device("waiting_for_device", fresh=False)
def _waiting_for_device(m: DeviceMachine, now: datetime) -> Command | None:
    # The facts read is the probe: its answer moves the device back where it was (the FACTS handler fires
    # `reached`), a failure keeps it waiting (`unreachable`, or `unreachable_too_long` past the deadline).
    return m.read_facts()


@device("users")
def _users(m: DeviceMachine, now: datetime) -> Command | None:
    waits: list[Wait] = []
    for name in sorted(m.users):
        entry = m.users[name]
        if entry.model.state in USER_SETTLED:
            continue
        if entry.waited is not None:
            waits.append(entry.waited)
            continue
        person = person_of(m, entry)
        if person is None:
            m.fire("step_failed", user=name, now=now, last_error="the user's profile is no longer on the device")
            return None
        return USER_DECIDERS[entry.model.state](m, entry, person, now)  # None: a user moved: decide again
    if waits:
        until = min(w.until for w in waits)
        if all(w.kind == "dc" for w in waits):
            m.fire("users_waiting_for_dc", now=now)
            return Wait(until, "every unfinished user waits for line of sight to a domain controller", "dc")
        m.fire("users_waiting", now=now)
        return Wait(until, "; ".join(sorted({w.reason for w in waits})), "user")
    for trigger, message in (
        ("all_migrated", None),
        ("some_failed", _users_in(m, "failed")),
        ("some_stalled", _users_in(m, "stalled")),
    ):
        if m.try_fire(
            trigger, now=now, last_error=message, context=replace(m.context, reason=message, return_to="users")
        ):
            return None
    raise RuntimeError(f"{m.device}: users finished but no final row applies")


def _users_in(m: DeviceMachine, state: str) -> str:
    """Each user in ``state`` with their own reason: the device's one line is what recaps and reports show."""
    return f"user(s) {state}: " + "; ".join(
        f"{u.record.name} ({u.error})" if u.error else u.record.name for u in m.users.values() if u.model.state == state
    )


@device("rolling_back", fresh=False)
def _rolling_back(m: DeviceMachine, now: datetime) -> Command | None:
    # First every armed at-logon delete task goes (it would delete a container under the restored policy), then
    # the snapshot is written back; each through the journal, like any step.
    for _name, entry in sorted(m.users.items()):
        if entry.context.task_armed or entry.model.state == "armed":
            return p.DISARM.command(entry)
    if m.snapshot:
        return p.RESTORE.command(m.snapshot)  # its answer ends the rollback (the RESTORE handler)
    m.fire("restored", now=now, after={"restored": [], "why": "nothing was changed: no snapshot value to restore"})
    return None


# ---------------------------------------------------------------------------------------------------------
# User states
# ---------------------------------------------------------------------------------------------------------


def person_of(m: DeviceMachine, entry: UserEntry) -> UserFacts | None:
    facts = m.facts
    return facts.user(entry.context.sid or entry.record.sid) if facts is not None else None


@user("pending")
def _user_pending(m: DeviceMachine, entry: UserEntry, person: UserFacts, now: datetime) -> Command | None:
    context = entry.context
    if context.needs_delete:
        context = p.phase(context, "identify", now, m)
    m.fire("start", user=entry.record.name, now=now, context=context)
    return None


def _gone(m: DeviceMachine, entry: UserEntry, now: datetime, **changes: Any) -> None:
    """The container is already gone: nothing to delete; what comes next is re-provisioning."""
    context = p.phase(replace(entry.context, deleted=True, **changes), "reprovision", now, m)
    m.fire("container_gone", user=entry.record.name, now=now, context=context)


@user("identifying")
def _identifying(m: DeviceMachine, entry: UserEntry, person: UserFacts, now: datetime) -> Command | None:
    if entry.context.key_id:
        return identified(m, entry, now)
    if not person.has_hello:
        _gone(m, entry, now)
        return None
    name = entry.record.name
    if m.try_fire("deadline", user=name, now=now, last_error="never signed in: the container was not read"):
        return None
    if person.signed_in:
        # The facts the point of no return is decided on ride in the identify task's own pipeline, read right
        # after it (the identify is still journalled alone: intent before, outcome after).
        return p.confirmed(p.IDENTIFY.command(entry))
    p.wait_user(m, entry, now, "user not signed in: their container is read at their next sign-in")
    return None


def identified(m: DeviceMachine, entry: UserEntry, now: datetime) -> Command | None:
    if p.refused_account(m, entry, now):
        return None
    if m.guard("dc_check_applies", entry.record.name):
        m.fire("identified", user=entry.record.name, now=now)
        return None
    return toward_point_of_no_return(m, entry, now, "identified")


@user("dc_check")
def _dc_check(m: DeviceMachine, entry: UserEntry, person: UserFacts, now: datetime) -> Command | None:
    name = entry.record.name
    if not m.guard("dc_line_of_sight", name):
        m.fire("dc_missing", user=name, now=now, context=p.phase(entry.context, "dc", now, m))
        return None
    if not entry.context.needs_delete:
        m.fire("dc_ok", user=name, now=now, context=p.phase(entry.context, "sign_in", now, m))
        return None
    return toward_point_of_no_return(m, entry, now, "dc_ok")


def _passkey_warning(m: DeviceMachine) -> str | None:
    facts = m.facts
    if facts is not None and (facts.os.build or 0) >= guard_mod.WINDOWS_11_FIRST_BUILD:
        # Windows 11 keeps device-bound passkeys in the Hello container: deleting it deletes them too
        # (windows-facts §5, §9.11). The device does not tell whether this container holds any.
        return "Windows 11: the Hello container may also hold device-bound passkeys, which are deleted with it"
    return None


def toward_point_of_no_return(m: DeviceMachine, entry: UserEntry, now: datetime, trigger: str) -> Command | None:
    name = entry.record.name
    assert m.facts is not None
    person = person_of(m, entry)
    if person is not None and not person.has_hello:
        _gone(m, entry, now)
        return None
    failing = m.failing_ponr_guards(name)
    if failing:
        m.fire(
            "step_failed",
            user=name,
            now=now,
            last_error="not deleting the container: guard(s) " + ", ".join(failing) + " do not hold "
            f"(effective policy {m.facts.policy.effective}, certificate trust anywhere: "
            f"{m.facts.policy.cert_trust_any_source})",
        )
        return None
    if not m.window(now):
        p.wait_user(m, entry, now, "outside the change window: the point of no return waits", "window")
        return None
    warning = _passkey_warning(m)
    m.fire(
        trigger,
        user=name,
        now=now,
        context=replace(entry.context, delete_warning=warning),
        before={"key_id": entry.context.key_id, "trust": entry.context.trust},
        after={"point_of_no_return": "delete_container"},
        warning=warning,
    )
    return None


@user("waiting_for_dc")
def _user_waiting_for_dc(m: DeviceMachine, entry: UserEntry, person: UserFacts, now: datetime) -> Command | None:
    name = entry.record.name
    if m.guard("dc_line_of_sight", name):  # a DC that answers at the deadline's recheck still counts
        m.fire("recheck", user=name, now=now)
        return None
    if m.try_fire("deadline", user=name, now=now, last_error="no line of sight to a domain controller"):
        return None
    p.wait_user(m, entry, now, "no line of sight to a domain controller", "dc")
    return None


@user("deleting")
def _deleting(m: DeviceMachine, entry: UserEntry, person: UserFacts, now: datetime) -> Command | None:
    failing = m.failing_ponr_guards(entry.record.name)
    if failing or not m.window(now):
        m.fire(
            "guards_lost",
            user=entry.record.name,
            now=now,
            last_error="guard(s) no longer hold: " + ", ".join(failing or ["change_window_open"]),
        )
        return None
    if person.signed_in:
        prompt = None
        if m.playbook.has("prompt_sign_out") and person.session is not None:
            # The request to sign out and in rides in the delete's own run (shown only if it deleted).
            prompt = PromptUser(person.session.id, m.playbook.prompt.text, m.playbook.prompt.seconds)
        # The facts the next decision needs are read right after, in the same pipeline.
        return p.confirmed(p.DELETE.command(entry, prompt))
    return p.ARM.command(entry)


@user("armed")
def _armed(m: DeviceMachine, entry: UserEntry, person: UserFacts, now: datetime) -> Command | None:
    if entry.context.deadline_due:
        return p.DISARM.command(entry)
    return p.READ_TASK.command(entry)


@user("prompted")
def _prompted(m: DeviceMachine, entry: UserEntry, person: UserFacts, now: datetime) -> Command | None:
    if m.playbook.has("prompt_sign_out") and person.signed_in and person.session is not None:
        return p.PROMPT.command(entry, person.session.id, m.playbook)
    p.prompt_sent(m, entry, now, skipped=True)
    return None


@user("waiting_for_reprovision", "waiting_for_sign_in")
def _waiting_for_person(m: DeviceMachine, entry: UserEntry, person: UserFacts, now: datetime) -> Command | None:
    if entry.context.task_armed:
        return p.DISARM.command(entry)
    name, state = entry.record.name, entry.model.state
    if entry.prompted_now:
        # People need minutes to save their work and sign out: reading their session right after the message
        # would only find the old one.
        p.wait_user(m, entry, now, "asked to sign out and back in: looking again at the next recheck")
        return None
    ready = person.signed_in and (person.has_hello or state == "waiting_for_sign_in")
    if ready and entry.hello is None:
        m.fire("signed_in", user=name, now=now)
        return None
    # The deadline counts only once this visit's sign-in (if any) was looked at: a user who signed in with a cloud
    # TGT just before the recheck that falls on the deadline is migrated, not stalled.
    if m.try_fire("deadline", user=name, now=now, last_error=deadline_message(state, entry.context, person)):
        return None
    if entry.hello is not None and m.try_fire(
        "remind",
        user=name,
        now=now,
        context=replace(entry.context, reminders=entry.context.reminders + 1, no_cloud_tgt=None),
    ):
        return None
    reason = (
        "waiting for the user to set up Windows Hello again"
        if state == "waiting_for_reprovision"
        else "waiting for the user to sign in again with Windows Hello"
    )
    p.wait_user(m, entry, now, reason)
    return None


@user("verifying")
def _verifying(m: DeviceMachine, entry: UserEntry, person: UserFacts, now: datetime) -> Command | None:
    if entry.context.task_armed:
        return p.DISARM.command(entry)
    return p.VERIFY.command(entry)


def deadline_message(state: str, context: UserContext, person: UserFacts | None = None) -> str:
    if person is not None and person.session is not None and person.session.kind == "rdp":
        # Provisioning's own prerequisite check (event 358: "User is not connected to the machine via Remote
        # Desktop") fails in an RDP session: a user who only signs in remotely never gets a container.
        return (
            "the user signs in only over Remote Desktop, where Windows Hello is not set up: "
            + ("no new container" if state == "waiting_for_reprovision" else "no Hello sign-in")
            + " before the deadline; a console sign-in is needed"
        )
    seen = context.no_cloud_tgt
    if seen is not None:
        # The user did sign in with Hello under cloud trust policy; Windows just never got a partial TGT.
        # Documented causes (MS Learn, cloud Kerberos trust deployment; windows-facts §9.6, §9.7, §9.9): the
        # account is in msDS-NeverRevealGroup of AzureADKerberos (Domain Admins and other privileged groups, by
        # default), its AD domain has no Entra Kerberos object, or the user has no Entra PRT.
        prt = " (and no Entra PRT: AzureAdPrt NO)" if seen.prt is False else ""
        return (
            "signed in again with Windows Hello but never got a cloud TGT (partial TGT) before the deadline"
            + prt
            + ": each sign-in had no line of sight to a DC (off the network or VPN), or the account is "
            "privileged (msDS-NeverRevealGroup of AzureADKerberos) or its domain has no Microsoft Entra "
            "Kerberos, which cloud Kerberos trust cannot serve"
        )
    if state == "waiting_for_reprovision":
        return "the user did not set up Windows Hello again before the deadline"
    return "the user did not sign in again before the deadline"
