"""user_context.ps1 in the lab: the task runs as the user, the guard holds, and nothing is left behind."""

from __future__ import annotations

from typing import Any

from migrator.lab.model import Device, HelloContainer, User
from migrator.lab.windows import Lab, sync_ngc_registry
from migrator.steps._user_task import read_hello_state
from tests.scripts.conftest import run_on, signed_in_user


def _left_behind(lab: Lab, device_name: str) -> tuple[list[str], list[str]]:
    device = lab.device(device_name)
    tasks = [t.path + t.name for t in device.tasks if t.path.startswith("\\migrator")]
    files = [f.path for f in device.files.values() if not f.is_directory and "\\migrator\\" in f.path.casefold()]
    return tasks, files


def _guarded_delete(lab: Lab, device: Device, user: User, **extra: object) -> dict[str, Any]:
    """Run delete-container for the user's current container; the inner result (guard, deleted)."""
    assert user.container is not None
    parameters = {"User": user.sid, "Command": "delete-container", "ExpectedKeyId": user.container.key_id, **extra}
    run = run_on(lab, device, "user_context", parameters)
    assert run.data is not None
    result: dict[str, Any] = run.data["result"]
    return result


def test_hello_state_runs_as_the_user_and_cleans_up(lab: Lab) -> None:
    """The task's commands are recorded under the user's name, and no task or file remains."""
    device, user = signed_in_user(lab)
    before = len(device.counters.commands)
    run = run_on(lab, device, "user_context", {"User": user.sid, "Command": "hello-state", "TimeoutSeconds": 30})
    assert run.data is not None and run.data["status"] == "completed"
    assert run.data["result"]["user"] == user.qualified_name.lower()
    assert run.data["cleaned_up"] == {"task": True, "files": True}
    as_user = [c.command for c in device.counters.commands[before:] if c.principal == user.qualified_name.lower()]
    assert any(c.startswith("dsregcmd") for c in as_user) and any(c.startswith("klist") for c in as_user)
    assert _left_behind(lab, device.name) == ([], [])
    assert user.counters.tasks_run == 1


def test_user_not_signed_in_is_reported_and_cleaned_up(lab: Lab) -> None:
    """An Interactive task for a user with no session never starts: status not-started, nothing left."""
    device, user = signed_in_user(lab)
    lab.sign_out(device, user)
    run = run_on(lab, device, "user_context", {"User": user.sid, "Command": "hello-state", "TimeoutSeconds": 5})
    assert run.data is not None and run.data["status"] == "not-started"
    assert run.data["last_task_result"] == 0x41303
    assert _left_behind(lab, device.name) == ([], [])


def test_unknown_command_is_refused_before_anything_is_registered(lab: Lab) -> None:
    """Only allow-listed commands run: anything else stops the script before a task exists."""
    device, user = signed_in_user(lab)
    run = run_on(lab, device, "user_context", {"User": user.sid, "Command": "whoami; certutil", "TimeoutSeconds": 5})
    assert run.result.terminating_error is not None
    assert device.tasks == [] or all(not t.path.startswith("\\migrator") for t in device.tasks)


def test_guarded_delete_refuses_when_the_container_changed(lab: Lab) -> None:
    """A container re-provisioned with another key id is not deleted."""
    device, user = signed_in_user(lab)
    assert user.container is not None
    old_key = user.container.key_id
    user.container = HelloContainer(
        trust=user.container.trust, key_id="{11111111-2222-4333-8444-555555555555}", created=lab.clock.now()
    )
    sync_ngc_registry(device, user)
    run = run_on(
        lab,
        device,
        "user_context",
        {"User": user.sid, "Command": "delete-container", "ExpectedKeyId": old_key, "TimeoutSeconds": 30},
    )
    assert run.data is not None and run.data["status"] == "completed"
    assert run.data["result"]["deleted"] is False
    assert run.data["result"]["guard"]["refusals"] == ["container key id changed"]
    assert user.container is not None and user.counters.container_deletions == 0
    assert not any("certutil" in c.command and "deletehello" in c.command.casefold() for c in device.counters.commands)


def test_guarded_delete_deletes_exactly_once(lab: Lab) -> None:
    """With the expected key id the container is deleted; a second run finds none and deletes nothing."""
    device, user = signed_in_user(lab, "cert")
    assert user.container is not None
    key = user.container.key_id
    params = {"User": user.sid, "Command": "delete-container", "ExpectedKeyId": key, "ExpectedTrust": "cert"}
    first = run_on(lab, device, "user_context", params)
    assert first.data is not None and first.data["result"]["deleted"] is True
    second = run_on(lab, device, "user_context", params)
    assert second.data is not None and second.data["result"]["deleted"] is False
    assert second.data["result"]["guard"]["refusals"] == ["no Hello container"]
    assert user.counters.container_deletions == 1
    deletes = [c for c in device.counters.commands if "deletehellocontainer" in c.command.casefold()]
    assert [c.principal for c in deletes] == [user.qualified_name.lower()]


def test_guarded_delete_refuses_a_key_container_that_moved_to_cloud_trust(lab: Lab) -> None:
    """Expecting key trust, a container now used with cloud Kerberos trust (partial TGT) is kept."""
    device, user = signed_in_user(lab)
    session = device.session_of(user)
    assert session is not None and user.container is not None
    session.partial_tgt = True
    result = _guarded_delete(lab, device, user, ExpectedTrust="key")
    assert result["deleted"] is False
    assert "container is no longer key trust" in result["guard"]["refusals"]


def test_a_privileged_account_is_named_and_its_container_never_deleted(lab: Lab) -> None:
    """hello-state reports the token's groups (Domain Admins → protected); the guarded delete, also the one an
    at-logon task runs without a prior identify, refuses for such an account and keeps the container."""
    device, user = signed_in_user(lab, "cert")
    assert user.container is not None
    user.privileged = True
    state = run_on(lab, device, "user_context", {"User": user.sid, "Command": "hello-state", "TimeoutSeconds": 30})
    assert state.data is not None
    hello = read_hello_state(user.sid, state.data)
    assert hello.protected_groups == ("Domain Admins", "Denied RODC Password Replication Group")
    result = _guarded_delete(lab, device, user, TimeoutSeconds=30)
    assert result["deleted"] is False
    assert any("Entra Kerberos refuses" in r for r in result["guard"]["refusals"])
    assert user.container is not None and user.counters.container_deletions == 0


def test_a_guarded_delete_that_deletes_shows_the_sign_out_prompt_in_the_same_run(lab: Lab) -> None:
    """With PromptSession the prompt follows a delete in the same script run (msg, text on stdin); a refused
    delete shows nothing."""
    device, user = signed_in_user(lab, "cert")
    session = device.session_of(user)
    assert user.container is not None and session is not None
    text = "Please sign out and back in to finish the Windows Hello update."
    prompt = {"PromptSession": session.session_id, "PromptText": text, "PromptSeconds": 120}
    params = {"User": user.sid, "Command": "delete-container", "ExpectedKeyId": user.container.key_id, **prompt}
    first = run_on(lab, device, "user_context", params)
    assert first.data is not None and first.data["result"]["deleted"] is True
    assert first.data["prompt"]["exit_code"] == 0 and first.data["prompt"]["session_id"] == session.session_id
    assert session.messages[-1] == text and user.counters.prompts_received == 1
    again = run_on(lab, device, "user_context", params)
    assert again.data is not None and again.data["result"]["deleted"] is False and again.data["prompt"] is None
    assert user.counters.prompts_received == 1
    hello = run_on(lab, device, "user_context", {"User": user.sid, "Command": "hello-state", **prompt})
    assert hello.result.terminating_error is not None  # a prompt goes only with delete-container
