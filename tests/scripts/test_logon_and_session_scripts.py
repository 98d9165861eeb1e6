"""At-logon tasks, prompts and policy refresh in the lab."""

from __future__ import annotations

from migrator.lab.windows import Lab
from tests.scripts.conftest import run_on, signed_in_user


def test_armed_logon_task_deletes_at_next_sign_in_then_disarms(lab: Lab) -> None:
    """The at-logon task runs as the user at sign-in, deletes the expected container once, and disarm removes it."""
    device, user = signed_in_user(lab, "cert")
    assert user.container is not None
    key = user.container.key_id
    lab.sign_out(device, user)
    params = {"UserSid": user.sid, "ExpectedKeyId": key, "ExpectedTrust": "cert"}
    armed = run_on(lab, device, "arm_logon_task", params)
    assert armed.data is not None and armed.data["armed"] is True and armed.data["replaced"] is False
    again = run_on(lab, device, "arm_logon_task", params)
    assert again.data is not None and again.data["replaced"] is True
    assert len([t for t in device.tasks if t.name == f"migrator-logon-{user.sid}"]) == 1
    pending = run_on(lab, device, "read_logon_task_result", {"UserSid": user.sid})
    assert pending.data is not None and pending.data["result"] is None and pending.data["task_exists"] is True
    lab.sign_in(device, user)
    assert user.counters.container_deletions == 1
    read = run_on(lab, device, "read_logon_task_result", {"UserSid": user.sid})
    assert read.data is not None and read.data["result"]["deleted"] is True
    assert read.data["result"]["user"] == user.qualified_name.lower()
    disarmed = run_on(lab, device, "disarm_logon_task", {"UserSid": user.sid})
    assert disarmed.data is not None
    assert disarmed.data["task_removed"] is True and disarmed.data["task_left"] is False
    assert disarmed.data["files_left"] is False and disarmed.data["result"]["deleted"] is True
    assert not any(t.name.startswith("migrator-logon-") for t in device.tasks)


def test_arm_refuses_a_user_sid_that_is_not_a_sid(lab: Lab) -> None:
    """The SID becomes part of a path and a task name: anything else is refused."""
    device = lab.fleet.devices[0]
    run = run_on(
        lab,
        device,
        "arm_logon_task",
        {"UserSid": "S-1-5-21-1\\..\\x", "ExpectedKeyId": "{" + "0" * 8 + "-0000-0000-0000-" + "0" * 12 + "}"},
    )
    assert run.result.terminating_error is not None
    assert not any(t.name.startswith("migrator-logon-") for t in device.tasks)


def test_prompt_reaches_the_session_with_the_exact_text(lab: Lab) -> None:
    """msg gets the text on standard input and the user's session shows it."""
    device, user = signed_in_user(lab)
    session = device.session_of(user)
    assert session is not None
    text = "Please sign out and back in to finish the Windows Hello update."
    run = run_on(lab, device, "prompt_user", {"SessionId": session.session_id, "Text": text, "Seconds": 120})
    assert run.data is not None and run.data["exit_code"] == 0
    assert session.messages[-1] == text and user.counters.prompts_received == 1


def test_refresh_policy_runs_gpupdate_for_the_computer(lab: Lab) -> None:
    """gpupdate /target:computer /force runs once and its text comes back."""
    device = next(d for d in lab.fleet.devices if d.join_type == "hybrid" and d.dc_reachable)
    run = run_on(lab, device, "refresh_policy")
    assert run.data is not None and run.data["exit_code"] == 0
    assert "Computer Policy update has completed successfully." in run.data["text"]
    assert device.counters.gpupdates == 1
