"""The machine driven without the lab: answers in, commands and states out, read like a protocol transcript."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from migrator.machine.commands import StepSucceeded
from migrator.machine.context import load_device, load_user
from migrator.machine.purposes import IDENTIFY
from migrator.playbook import load_playbook
from tests.machine.transcript import NEW_KEY, OLD_KEY, SID, USER, Device, Transcript

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def test_a_certificate_trust_device_walks_the_documented_path() -> None:
    """Preflight, snapshot, certificate trust off and cloud trust on, confirm, read the container, the guarded
    delete of exactly the recorded key, the prompt; at the next visit the new container's cloud TGT: migrated."""
    t = Transcript()
    t.step("facts")
    t.step("snapshot")
    assert [u.name for u in t.funnel.users] == [USER] and t.triggers() == ["start", "preflight_done", "snapshot_taken"]
    plan = t.expect("set_policy")  # the whole plan in one call, certificate trust first
    assert [(v["name"], v.get("remove"), v.get("value")) for v in plan.step.parameters()["Values"]] == [
        ("UseCertificateForOnPremAuth", True, None),
        ("UseCloudTrustForOnPremAuth", None, 1),
    ]
    t.answer_as_device()
    t.step("facts")  # confirm the effective policy after the writes
    t.step("identify", USER)
    assert t.triggers()[-3:] == ["policy_written", "policy_confirmed", "start"]
    t.step("facts")  # the identify task may have changed the device: read it again before the point of no return
    delete = t.expect("delete", USER, User=SID, ExpectedKeyId=OLD_KEY, ExpectedTrust="cert")
    assert delete.point_of_no_return
    t.answer_as_device()
    t.step("facts")
    t.step("prompt", USER)
    t.expect_wait("user")
    assert (t.state_now, t.user_state()) == ("waiting_for_user", "waiting_for_reprovision")
    context = load_user(t.funnel.changes[-2].context)
    assert context.deleted and context.deleted_by_us and context.key_id == OLD_KEY and context.deleted_at is not None

    t.device.sign_in_again()
    t.visit(HOUR)
    t.step("facts")
    t.step("verify", USER)  # a read in the user's session changes no fact: no facts read after it
    t.expect_done("migrated")
    assert t.triggers()[-4:] == ["recheck", "signed_in", "cloud_verified", "all_migrated"]


def test_a_key_trust_device_gets_cloud_trust_and_nothing_is_deleted() -> None:
    """Key trust: enable cloud trust, ask the user to sign out and in, verify; no container is touched."""
    t = Transcript(playbook=load_playbook("key-trust-to-cloud-kerberos"), device=Device(trust="key"))
    t.run_until_wait_or_done()
    assert "delete" not in t.asked and "identify" not in t.asked and "prompt" in t.asked
    t.device.sign_in_again(reprovision=False)
    t.visit(HOUR)
    t.run_until_wait_or_done()
    assert t.state_now == "migrated" and "delete" not in t.asked


def test_without_a_domain_controller_nothing_is_deleted_and_the_device_waits() -> None:
    """Hybrid joined, no DC: the user waits for a DC before the point of no return; so does the device."""
    t = Transcript(device=Device(dc=False))
    wait = t.run_until_wait_or_done()
    assert (t.state_now, t.user_state(), wait.kind) == ("waiting_for_dc", "waiting_for_dc", "dc")  # type: ignore[union-attr]
    assert "delete" not in t.asked
    t.device.dc = True
    t.visit(HOUR)
    t.run_until_wait_or_done()
    assert "delete" in t.asked and t.user_state() == "waiting_for_reprovision"


def test_a_device_that_stops_answering_while_its_user_is_awaited_waits_for_the_device_then_carries_on() -> None:
    """The stranding of issue 14: waiting for the user, the device is unreachable at the next visit. It is not an
    illegal move nor a failure: the device waits for the device (with the error and since when) and, answering
    again, carries on where it was; its user never moved."""
    t = Transcript()
    t.run_until_wait_or_done()
    assert t.state_now == "waiting_for_user"
    t.visit(HOUR)
    t.expect("facts")
    t.fail("DeviceUnreachable", "connection refused", transient=True)
    wait = t.expect_wait("device")
    assert t.state_now == "waiting_for_device" and t.user_state() == "waiting_for_reprovision"
    assert "connection refused" in wait.reason and t.machine.context.return_to == "waiting_for_user"
    assert (
        t.funnel.changes[-1].last_error is not None and "tried again at each recheck" in t.funnel.changes[-1].last_error
    )

    t.visit(HOUR)  # still down
    t.expect("facts")
    t.fail("DeviceUnreachable", "connection refused", transient=True)
    t.expect_wait("device")
    assert t.machine.context.unreachable_since == t.now - HOUR  # the spell's start is kept

    t.device.sign_in_again()
    t.visit(HOUR)
    t.step("facts")
    assert t.triggers()[-1] == "reached" and t.state_now == "waiting_for_user"
    assert t.machine.context.return_to is None and t.machine.context.unreachable_since is None
    t.run_until_wait_or_done()
    assert t.state_now == "migrated"


def test_past_the_unreachable_deadline_the_device_is_parked_then_resume_tries_again() -> None:
    """Unreachable for longer than waits.unreachable_deadline (3 days): parked as unreachable, not failed;
    resume (retry) waits for the device again, with a new deadline, and it carries on once it answers."""
    t = Transcript()
    t.run_until_wait_or_done()
    for _ in range(4):
        t.visit(DAY)
        t.expect("facts")
        t.fail("DeviceUnreachable", "connect timeout", transient=True)
    t.expect_done("unreachable")
    assert t.triggers()[-1] == "unreachable_too_long" and "connect timeout" in (t.funnel.changes[-1].last_error or "")
    t.visit(DAY)
    t.machine.retry(t.now)
    assert t.state_now == "waiting_for_device" and t.machine.context.unreachable_since == t.now
    t.step("facts")
    assert t.state_now == "waiting_for_user" and t.triggers()[-2:] == ["retry", "reached"]


def test_a_transient_failure_of_a_user_step_never_fails_the_user() -> None:
    """A user-context read the device did not answer: the device waits for the device; the user keeps its state."""
    t = Transcript()
    t.until_user("identifying")
    t.expect("identify", USER)
    t.fail("ConnectionLost", "read timed out", transient=True)
    assert (t.state_now, t.user_state()) == ("waiting_for_device", "identifying")
    assert t.machine.context.return_to == "users"


def test_credentials_refused_fail_the_device_and_leave_its_users_as_they_were() -> None:
    """A 401 is about the account, not the user's step: the device fails (counted by the failure budget), the
    user keeps waiting; an operator's retry, the password fixed, carries on from where the device was."""
    t = Transcript()
    t.run_until_wait_or_done()
    t.visit(HOUR)
    t.expect("facts")
    t.fail("AuthenticationFailed", "the credentials were rejected (HTTP 401)", transient=False, device_wide=True)
    assert (t.state_now, t.user_state()) == ("failed", "waiting_for_reprovision")
    t.expect_done("failed")
    t.machine.retry(t.now)
    assert t.state_now == "waiting_for_user"
    t.device.sign_in_again()
    t.run_until_wait_or_done()
    assert t.state_now == "migrated"


def test_a_script_failure_of_a_user_step_fails_that_user_and_then_the_device() -> None:
    """The delete script failed on the device (not transient): the user fails with the reason, then the device."""
    t = Transcript()
    t.until_user("deleting")
    t.expect("delete", USER)
    t.fail("ScriptFailed", "certutil failed", transient=False)
    assert t.user_state() == "failed"
    t.run_until_wait_or_done()
    assert t.state_now == "failed" and "certutil failed" in (t.funnel.changes[-1].last_error or "")


def test_an_unexpected_exception_parks_the_device_in_error_and_a_retry_carries_on() -> None:
    """The driver hands a bug to the machine: error, with the summary as last_error and the traceback in the
    context; the retry (resume) goes back to the state the device was in, and nothing else changed."""
    t = Transcript()
    t.run_until_wait_or_done()
    t.visit(HOUR)
    t.machine.crash("internal error: KeyError: 'x'", "Traceback (most recent call last): ...", t.now)
    assert t.state_now == "error" and t.machine.context.return_to == "waiting_for_user"
    assert t.funnel.changes[-1].last_error == "internal error: KeyError: 'x'"
    assert t.funnel.changes[-1].context["traceback"].startswith("Traceback")
    t.expect_done("error")
    t.machine.retry(t.now)
    assert t.state_now == "waiting_for_user" and t.machine.context.traceback is None
    t.device.sign_in_again()
    t.run_until_wait_or_done()
    assert t.state_now == "migrated"


def test_an_in_doubt_delete_is_resolved_by_reading_never_by_repeating() -> None:
    """The delete's answer was lost: the journalled intent rebuilds the command; fresh facts showing no container
    settle it as deleted (and the user moves on); a different key id settles it as replaced, not deleted."""
    t = Transcript()
    t.until_user("deleting")
    delete = t.expect("delete", USER)
    rebuilt = t.machine.command_for(delete.payload())
    assert rebuilt == delete
    t.device.has_hello = False  # the delete did happen
    t.machine.take_facts(t.device.facts())
    assert t.machine.resolution_read(delete) is None  # no container: nothing else to read
    resolution = t.machine.resolve(delete, None, t.now, 7)
    assert resolution.applied and resolution.event is not None
    t.machine.handle(resolution.event)
    assert t.user_state() == "prompted" and load_user(t.funnel.changes[-1].context).deleted

    other = Transcript()
    other.until_user("deleting")
    delete = other.expect("delete", USER)
    other.device.key_id = NEW_KEY  # the user re-provisioned in between: this container must never be deleted
    other.machine.take_facts(other.device.facts())
    read = other.machine.resolution_read(delete)
    assert read is not None and read.purpose == "read_back"
    resolution = other.machine.resolve(delete, other.device.hello(), other.now, 7)
    assert resolution.applied and resolution.event is not None and resolution.event.result.refused
    other.machine.handle(resolution.event)
    assert other.user_state() == "verifying"


def test_a_journalled_answer_whose_transition_was_lost_is_replayed_once() -> None:
    """A crash after the outcome's commit: the answer is applied from the journal, and not a second time."""
    t = Transcript()
    t.step("facts")
    t.step("snapshot")
    command = t.expect("set_policy")
    payload, outcome = command.payload(), {"ok": True, "result": None}
    assert t.machine.replay(payload, outcome, t.now, 5)
    assert t.machine.context.plan_done == 2 and t.machine.context.applied == 5
    assert not t.machine.replay(payload, outcome, t.now, 5)
    assert t.machine.context.plan_done == 2


def test_one_policy_call_moves_the_machine_once_per_value_and_a_crash_between_them_replays_the_rest() -> None:
    """The plan in one call, one journal entry: one transition (one audit entry) per value; only the last marks
    the entry applied, so a crash after the first value's transition replays the second, and only it."""
    t = Transcript()
    t.step("facts")
    t.step("snapshot")
    command = t.expect("set_policy")
    t.answer_as_device()
    changes = [c for c in t.funnel.changes if c.trigger == "policy_value_set"]
    assert [(c.after or {}).get("name") for c in changes] == [
        "UseCertificateForOnPremAuth",
        "UseCloudTrustForOnPremAuth",
    ]
    assert [c.context["applied"] for c in changes] == [None, 1]

    crashed = Transcript()
    crashed.step("facts")
    crashed.step("snapshot")
    crashed.expect("set_policy")
    first = crashed.machine.context.plan[0]
    crashed.machine.fire(
        "policy_value_set",
        now=crashed.now,
        context=replace(crashed.machine.context, plan_done=1),
        after={"name": first.name},
    )
    assert crashed.machine.replay(command.payload(), {"ok": True, "result": None}, crashed.now, 9)
    replayed = [c for c in crashed.funnel.changes if c.trigger == "policy_value_set"]
    assert [(c.after or {}).get("name") for c in replayed] == [
        "UseCertificateForOnPremAuth",
        "UseCloudTrustForOnPremAuth",
    ]
    assert crashed.machine.context.plan_done == 2 and crashed.machine.context.applied == 9


def test_a_user_retried_after_the_delete_waits_again_and_nothing_is_deleted_twice() -> None:
    """A stalled user whose container is gone: the operator's retry waits for re-provisioning again (a new
    deadline), never back through the point of no return."""
    t = Transcript()
    t.run_until_wait_or_done()
    for _ in range(8):
        t.visit(DAY)
        t.run_until_wait_or_done()
    assert (t.state_now, t.user_state()) == ("stalled", "stalled")
    t.machine.retry(t.now)
    assert t.user_state() == "waiting_for_reprovision" and t.state_now == "users"
    entry = t.machine.users[USER]
    assert entry.context.since == t.now and entry.context.phase == "reprovision" and entry.context.deleted
    asked = len(t.asked)
    t.run_until_wait_or_done()
    assert "delete" not in t.asked[asked:] and t.state_now == "waiting_for_user"


def test_a_user_who_signed_in_before_the_deadline_recheck_is_verified_not_stalled() -> None:
    """The recheck that falls on the deadline finds the user signed in with the new container: the sign-in is
    looked at first (verified, migrated); only a user still without a cloud TGT then is stalled."""
    t = Transcript()
    t.run_until_wait_or_done()
    t.device.sign_in_again()
    t.visit(timedelta(days=7, hours=1))  # past the 7-day reprovision deadline
    t.run_until_wait_or_done()
    assert t.state_now == "migrated" and "deadline" not in t.triggers()

    late = Transcript()
    late.run_until_wait_or_done()
    late.device.sign_in_again(cloud_tgt=False)
    late.visit(timedelta(days=7, hours=1))
    late.run_until_wait_or_done()
    assert late.state_now == "stalled" and late.triggers()[-3:] == ["not_yet_cloud", "deadline", "some_stalled"]


def test_past_the_policy_deadline_without_a_refresh_the_device_fails_on_the_tables_row() -> None:
    """A playbook without refresh_policy: written values still not effective at policy.refresh_deadline is the
    policy_deadline row from confirming to failed (policy not effective), never an illegal event."""
    t = Transcript()
    assert not t.playbook.has("refresh_policy")
    t.step("facts")
    t.step("snapshot")
    t.step("set_policy")
    t.device.cloud = False  # a GPO or user-scope value overrides what was written
    t.now += timedelta(seconds=t.playbook.policy.refresh_deadline + 1)
    t.step("facts")
    t.expect_done("failed")
    last = t.funnel.changes[-1]
    assert (last.trigger, last.source, last.dest) == ("policy_deadline", "confirming", "failed")
    assert last.last_error is not None and "not effective" in last.last_error
    assert load_device(last.context).return_to == "confirming"


def test_reads_and_identify_ride_in_pipelines_so_the_full_path_takes_five_steps() -> None:
    """Answered as the engine does (riders and companions from the same pipeline): the snapshot comes from the
    values discovered with preflight's facts, the user's container is read with the policy write (its own journal
    entry), the prompt comes with the delete; the point of no return is still decided on facts read after every
    journalled step."""
    t = Transcript()
    facts = t.expect("facts")
    assert [r.purpose.value for r in facts.riders] == ["discover"]
    discover = facts.riders[0]
    t.answer_as_device()
    values = t.device.snapshot(discover)
    t.machine.handle(StepSucceeded(discover, values, t.now))
    write = t.expect("set_policy")  # no snapshot step: taken from what preflight discovered
    assert t.funnel.snapshots and t.triggers()[-1] == "snapshot_taken"
    assert [(c.purpose.value, c.user) for c in write.companions] == [("identify", USER)]
    assert [r.purpose.value for r in write.riders] == ["facts"]
    t.answer_as_device()
    identify = write.companions[0]
    IDENTIFY.companion(t.machine, StepSucceeded(identify, t.device.hello(), t.now, 99))
    t.machine.handle(StepSucceeded(write.riders[0], t.device.facts(), t.now))
    delete = t.expect("delete", USER, ExpectedKeyId=OLD_KEY, PromptSession=t.device.session)
    assert [r.purpose.value for r in delete.riders] == ["facts"] and delete.point_of_no_return
    prompt = t.device.prompt()
    t.answer(t.device.delete().model_copy(update={"prompt": prompt}))
    assert t.user_state() == "waiting_for_reprovision" and t.triggers()[-2:] == ["container_deleted", "prompt_sent"]
    t.machine.handle(StepSucceeded(delete.riders[0], t.device.facts(), t.now))
    t.expect_wait("user")
    assert "identify" not in t.asked and "prompt" not in t.asked and "snapshot" not in t.asked
