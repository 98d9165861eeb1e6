"""Hostile values (quotes, $(), ;, backticks, newlines, unicode, very long strings) in device, user and domain
names and in parameters arrive as data: the device's command log shows nothing else ran."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migrator.lab import policy
from migrator.lab.fleet import VOLATILE_ENVIRONMENT
from migrator.lab.windows import Lab
from migrator.steps.collect_facts import read_facts
from tests.scripts.conftest import make_lab, run_on, signed_in_user

NASTY = [
    "'",
    '"',
    "`",
    "$(Remove-Item C:\\ -Recurse)",
    "; certutil -deletehellocontainer",
    "' ; whoami ; '",
    '" & whoami & "',
    "`n`r",
    "\n",
    "\r\n#",
    "$env:COMPUTERNAME",
    "@{a=1}",
    "{0}",
    "%COMPUTERNAME%",
    "&& shutdown /r",
    "| Out-File C:\\pwned.txt",
    "<#",
    "#>",
    "\u202e",
    "ü€😀漢字",
    "\x00",
]
hostile = st.one_of(
    st.lists(st.sampled_from(NASTY), min_size=1, max_size=6).map("".join),
    st.text(min_size=1, max_size=60),
    st.builds(lambda s: s * 400, st.sampled_from(NASTY)),  # very long
)
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _new_commands(lab: Lab, device_name: str, since: int) -> list[tuple[str, str]]:
    device = lab.device(device_name)
    return [(c.kind, c.command) for c in device.counters.commands[since:]]


@SETTINGS
@given(text=hostile)
def test_prompt_text_arrives_verbatim_and_runs_nothing_else(text: str) -> None:
    """The message text reaches the session as data; only powershell and one msg.exe ran."""
    lab = make_lab()
    device, user = signed_in_user(lab)
    session = device.session_of(user)
    assert session is not None
    since = len(device.counters.commands)
    run = run_on(lab, device, "prompt_user", {"SessionId": session.session_id, "Text": text, "Seconds": 30})
    commands = _new_commands(lab, device.name, since)
    natives = [c for kind, c in commands if kind == "native"]
    if not text.strip():
        assert run.result.terminating_error is not None and natives == []
        return
    assert natives == [f"msg.exe {session.session_id} /TIME:30"]
    assert run.data is not None and run.data["exit_code"] == 0
    assert session.messages[-1] == text.strip()


@SETTINGS
@given(name=hostile)
def test_hostile_user_for_a_task_is_only_a_name_that_maps_to_nobody(name: str) -> None:
    """A hostile user name fails to map to an account: no task runs, nothing is left, nothing else ran."""
    lab = make_lab()
    device, user = signed_in_user(lab)
    since = len(device.counters.commands)
    run = run_on(lab, device, "user_context", {"User": name, "Command": "hello-state", "TimeoutSeconds": 5})
    commands = _new_commands(lab, device.name, since)
    assert [kind for kind, _ in commands] == ["powershell"]
    if run.data is not None:
        # A name that happens to be a real built-in account ('LOCAL SERVICE') registers but has no session to
        # run in: not started. Either way the value stayed a name.
        assert run.data["status"] in ("register-failed", "not-started")
        assert run.data["user"] == name
        assert run.data["cleaned_up"] == {"task": True, "files": True}
    else:  # blank names are refused before anything is created
        assert not name.strip()
    assert not [t for t in device.tasks if t.path.startswith("\\migrator")]
    assert user.counters.tasks_run == 0


@SETTINGS
@given(value=hostile)
def test_hostile_policy_data_is_stored_verbatim(value: str) -> None:
    """A hostile string value is written as REG_SZ data, exactly, and read back exactly."""
    lab = make_lab()
    device = lab.fleet.devices[0]
    since = len(device.counters.commands)
    path = "HKLM:\\SOFTWARE\\Policies\\Microsoft\\PassportForWork"
    record = {"path": path, "name": "MigratorNote", "value": value, "type": "String"}
    run = run_on(lab, device, "set_policy", {"Values": [record]})
    assert run.data is not None, run.result.terminating_error
    stored = device.registry.get_value(policy.GPO_KEY, "MigratorNote")
    assert stored is not None and stored.data == value
    assert run.data["changes"][0]["current"]["data"] == value
    assert [kind for kind, _ in _new_commands(lab, device.name, since)] == ["powershell"]


@SETTINGS
@given(name=hostile)
def test_hostile_policy_names_and_paths_are_refused(name: str) -> None:
    """A value name or key path outside the allowed shapes is refused and nothing is written."""
    lab = make_lab()
    device = lab.fleet.devices[0]
    before = device.registry.model_dump()
    for params in (
        {"path": "HKLM:\\SOFTWARE\\Policies\\Microsoft\\PassportForWork", "name": name, "value": 1},
        {"path": "HKLM:\\SOFTWARE\\Policies\\Microsoft\\PassportForWork\\" + name, "name": "Enabled", "value": 1},
    ):
        run = run_on(lab, device, "set_policy", {"Values": [params]})
        if run.data is not None:  # a harmless name that matches the allowed shape
            assert run.data["changes"][0]["current"]["existed"] is True
            return
    assert device.registry.model_dump() == before


@SETTINGS
@given(sam=hostile, domain=hostile, computer=hostile)
def test_hostile_device_user_and_domain_names_come_back_as_data(sam: str, domain: str, computer: str) -> None:
    """collect_facts returns hostile names as JSON strings and runs only its fixed native commands."""
    lab = make_lab()
    device, user = signed_in_user(lab)
    device.registry.set_value(f"HKU\\{user.sid}\\{VOLATILE_ENVIRONMENT}", "USERNAME", sam, "REG_SZ")
    device.registry.set_value(f"HKU\\{user.sid}\\{VOLATILE_ENVIRONMENT}", "USERDOMAIN", domain, "REG_SZ")
    device.domain = domain  # Win32_ComputerSystem.Domain: what nltest would be asked about
    device.name = computer
    since = len(device.counters.commands)
    run = run_on(lab, device, "collect_facts")
    assert run.data is not None, run.result.terminating_error
    facts = read_facts(computer, json.loads(json.dumps(run.data)))
    assert run.data["computer_name"] == computer.upper()
    found = facts.user(user.sid)
    assert found is not None and found.name == (f"{domain}\\{sam}" if sam.strip() and domain.strip() else found.name)
    natives = [c for kind, c in _new_commands(lab, computer, since) if kind == "native"]
    assert natives[:2] == ["dsregcmd.exe /status", "quser.exe"]
    # The hostile domain never becomes an nltest argument (only DNS-shaped names do).
    assert all(not c.startswith("nltest") or c == f"nltest.exe /dsgetdc:{domain} /force" for c in natives[2:])
    assert len(natives) <= 3
