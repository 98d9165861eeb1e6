"""User-context work through the real clients: the task runs as the user, cleans up, and the delete is guarded."""

from __future__ import annotations

import pytest

from migrator.lab.model import Device, HelloContainer, User
from migrator.lab.windows import sync_ngc_registry
from migrator.steps import DeleteHelloContainer, PromptUser, ReadHelloState, RefreshPolicy, run_step
from tests.integration.conftest import FAST_RETRY, LabHandle

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def _signed_in(lab: LabHandle, trust: str, skip: int = 0) -> tuple[Device, User]:
    found = [
        (d, u)
        for d in lab.runtime.fleet.devices
        for u in d.users
        if u.container is not None
        and u.container.trust == trust
        and (s := d.session_of(u)) is not None
        and s.kind == "console"
        and len(d.users) == 1
    ]
    return found[skip]


def _migrator_leftovers(device: Device) -> tuple[list[str], list[str]]:
    with device.lock:
        tasks = [t.path + t.name for t in device.tasks if t.path.startswith("\\migrator")]
        files = [f.path for f in device.files.values() if not f.is_directory and "\\migrator\\" in f.path.casefold()]
    return tasks, files


@pytest.mark.parametrize("transport", ["psrp", "winrm"])
def test_hello_state_runs_as_the_user_and_cleans_up(lab: LabHandle, transport: str) -> None:
    """dsregcmd and klist run under the user's own principal; no task and no file is left."""
    device, user = _signed_in(lab, "key", skip=0 if transport == "psrp" else 1)
    before = len(device.counters.commands)
    connection = lab.transport(device.name, transport=transport)
    try:
        state = run_step(connection, ReadHelloState(user.sid, timeout_seconds=60), policy=FAST_RETRY)
    finally:
        connection.close()
    assert state.status == "completed" and state.cleaned_up
    assert state.ran_as == user.qualified_name.lower() and state.ran_as_sid == user.sid
    assert user.container is not None and state.ngc_key_id is not None
    assert state.ngc_key_id.casefold() == user.container.key_id.casefold()
    with device.lock:
        new = device.counters.commands[before:]
    as_user = {c.command for c in new if c.principal == user.qualified_name.lower() and c.kind == "native"}
    assert {"dsregcmd.exe /status", "klist.exe", "klist.exe cloud_debug"} <= as_user
    assert not any(
        c.command.startswith("dsregcmd") and c.principal == user.qualified_name.lower()
        for c in new
        if c.kind == "powershell"
    )
    assert _migrator_leftovers(device) == ([], [])


def test_guarded_delete_refuses_a_reprovisioned_container_then_deletes_once(lab: LabHandle) -> None:
    """The lab re-provisions the container with another key id: refused; with the new id: deleted exactly once."""
    device, user = _signed_in(lab, "cert")
    assert user.container is not None
    old_key = user.container.key_id
    new_key = "{9f1c2b3a-4d5e-4f60-8a7b-1c2d3e4f5a6b}"
    with device.lock:
        user.container = HelloContainer(trust="cert", key_id=new_key, created=lab.runtime.clock.now())
        sync_ngc_registry(device, user)
    transport = lab.transport(device.name)
    try:
        refused = run_step(transport, DeleteHelloContainer(user.sid, old_key, "cert", 60), policy=FAST_RETRY)
        assert refused.status == "completed" and refused.refused and not refused.deleted
        assert refused.guard is not None and refused.guard.refusals == ("container key id changed",)
        assert user.container is not None and user.counters.container_deletions == 0
        done = run_step(transport, DeleteHelloContainer(user.sid, new_key, "cert", 60), policy=FAST_RETRY)
    finally:
        transport.close()
    assert done.deleted and done.certutil_succeeded and done.cleaned_up
    assert user.counters.container_deletions == 1
    with device.lock:
        deletes = [
            c for c in device.counters.commands if "deletehellocontainer" in c.command.casefold() and c.kind == "native"
        ]
    assert [c.principal for c in deletes] == [user.qualified_name.lower()]
    assert _migrator_leftovers(device) == ([], [])


NASTY = 'Sign out\' ; certutil -deletehellocontainer ; "$(whoami)" `n && msg * pwned | ü€😀 '
# Long enough that WinRM sends the wrapper on standard input (over cmd.exe's 8,191-character command line).
LONG_TAIL = "x" * 5000


@pytest.mark.parametrize("transport", ["psrp", "winrm"])
def test_hostile_prompt_text_arrives_as_data(lab: LabHandle, transport: str) -> None:
    """Quotes, $(), ;, backticks, unicode and a long tail reach the session verbatim; only msg ran."""
    device, user = _signed_in(lab, "key", skip=2 if transport == "psrp" else 3)
    session = device.session_of(user)
    assert session is not None
    before = len(device.counters.commands)
    connection = lab.transport(device.name, transport=transport)
    try:
        result = run_step(connection, PromptUser(session.session_id, NASTY + LONG_TAIL, 60), policy=FAST_RETRY)
    finally:
        connection.close()
    assert result.delivered
    assert session.messages[-1] == (NASTY + LONG_TAIL).strip()
    with device.lock:
        natives = [c.command for c in device.counters.commands[before:] if c.kind == "native"]
    assert [c for c in natives if not c.startswith("powershell.exe")] == [f"msg.exe {session.session_id} /TIME:60"]


def test_winrm_over_http_with_message_encryption(lab: LabHandle) -> None:
    """WinRM over plain HTTP with NTLM sealing runs a step (gpupdate) and reads its answer."""
    device = lab.first(lambda d: d.join_type == "hybrid" and d.dc_reachable)
    connection = lab.transport(device.name, transport="winrm", scheme="http", port=lab.http_port)
    try:
        refresh = run_step(connection, RefreshPolicy(), policy=FAST_RETRY)
    finally:
        connection.close()
    assert refresh.succeeded and refresh.computer_policy_completed
