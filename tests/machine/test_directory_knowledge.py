"""What the directory says, handed to the machine as data: a user Entra Kerberos never serves is parked at
preflight, group named, and nothing is ever asked of the device for that user."""

from __future__ import annotations

from migrator.machine.context import load_user
from tests.machine.transcript import SETTINGS, SID, USER, Transcript

TIER0 = "CORP\\Tier0 Operators"


def test_a_user_in_a_never_reveal_group_is_parked_at_preflight_with_the_group_named() -> None:
    """pending --> stalled (account_refused) in the preflight's own decision, before the snapshot; the policy
    still changes for the device, and no identify, delete or prompt is ever asked for that user."""
    t = Transcript(settings=SETTINGS.model_copy(update={"never_reveal": {SID: (TIER0,)}}))
    t.step("facts")
    t.expect("snapshot")
    assert t.user_state() == "stalled"
    assert t.triggers() == ["start", "preflight_done", "account_refused"]
    refused = t.funnel.changes[-1]
    assert (refused.user, refused.source, refused.dest) == (USER, "pending", "stalled")
    assert refused.last_error is not None and TIER0 in refused.last_error
    assert load_user(refused.context).protected_groups == (TIER0,)
    t.answer_as_device()
    plan = t.expect("set_policy")  # the whole plan in one call, certificate trust first
    assert [(v["name"], v.get("remove"), v.get("value")) for v in plan.step.parameters()["Values"]] == [
        ("UseCertificateForOnPremAuth", True, None),
        ("UseCloudTrustForOnPremAuth", None, 1),
    ]
    t.answer_as_device()
    t.step("facts")
    for _ in range(5):
        command = t.next()
        if not hasattr(command, "purpose"):
            break
        assert command.user != USER, command
        t.answer_as_device()
    assert not {"identify", "delete", "prompt"} & set(t.asked)


def test_without_the_directory_the_user_is_tracked_as_before() -> None:
    """No never_reveal entry: the same user goes on to be identified in its session."""
    t = Transcript()
    t.step("facts")
    t.expect("snapshot")
    assert t.user_state() == "pending" and "account_refused" not in t.triggers()
