"""Reading user-context answers (captured from the lab): Hello state and the guarded delete."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from migrator.steps import DeleteHelloContainer, PromptUser, ReadHelloState

DATA = Path(__file__).parent / "data"
SID = "S-1-5-21-2376503845-224576495-3709267711-1104"


def _load(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"user_context_{name}.json").read_text())  # type: ignore[no-any-return]


def test_hello_state_reads_the_users_own_dsregcmd_and_klist() -> None:
    """The task ran as the user; NgcKeyId, cert enrolment and tickets come from the parsers."""
    state = ReadHelloState(SID).read("PC-0002", _load("hello_state"))
    assert state.status == "completed" and state.cleaned_up
    assert state.ran_as == "emea\\lnowak" and state.ran_as_sid == SID
    assert state.ngc_set is True and state.ngc_key_id == "{51B3FB36-0509-4DFD-AA5D-AA44404602D0}"
    assert state.cert_enrollment == "enrollment authority"
    assert state.onprem_krbtgt_ticket and not state.krbtgt_cloud_ticket
    assert not state.cloud_trust_active


def test_parameters_name_the_command_never_carry_code() -> None:
    """The step sends the command by name and the expected container as values."""
    step = DeleteHelloContainer(SID, "{51B3FB36-0509-4DFD-AA5D-AA44404602D0}", "cert", timeout_seconds=60)
    assert step.parameters() == {
        "User": SID,
        "Command": "delete-container",
        "ExpectedKeyId": "{51B3FB36-0509-4DFD-AA5D-AA44404602D0}",
        "ExpectedTrust": "cert",
        "TimeoutSeconds": 60,
    }
    assert step.info.point_of_no_return and not step.info.idempotent


def test_refused_delete_says_why() -> None:
    """A changed key id is a refusal, not a deletion."""
    outcome = DeleteHelloContainer(SID, "{00000000-0000-4000-8000-000000000000}").read(
        "PC-0002", _load("delete_refused")
    )
    assert outcome.refused and not outcome.deleted and outcome.certutil_succeeded is None
    assert outcome.guard is not None and outcome.guard.refusals == ("container key id changed",)
    assert outcome.guard.cert_store_read is False  # the lab has no certificate store: trust read from key id only


def test_done_delete_reads_certutil() -> None:
    """A deletion carries certutil's success and its sign-out request."""
    outcome = DeleteHelloContainer(SID, "{51B3FB36-0509-4DFD-AA5D-AA44404602D0}").read("PC-0002", _load("delete_done"))
    assert outcome.deleted and not outcome.refused and outcome.certutil_succeeded and outcome.sign_out_required
    assert outcome.cleaned_up and outcome.ran_as == "emea\\lnowak"


def test_not_started_task_is_read_as_such() -> None:
    """A user with no session: the task never ran (0x41303), no result."""
    data = {
        "status": "not-started",
        "last_task_result": 267011,
        "result": None,
        "cleaned_up": {"task": True, "files": True},
    }
    state = ReadHelloState(SID).read("PC-0002", data)
    assert state.status == "not-started" and state.ngc_set is None and state.exit_code == 267011


def test_a_delete_carrying_the_prompt_sends_its_values_and_reads_what_msg_answered() -> None:
    """The prompt's session, text and seconds go as parameters of the delete; its answer is the delete's prompt."""
    prompt = PromptUser(3, "Please sign out and back in.", 120)
    step = DeleteHelloContainer(SID, "{51B3FB36-0509-4DFD-AA5D-AA44404602D0}", "cert", prompt=prompt)
    params = step.parameters()
    assert (params["PromptSession"], params["PromptText"], params["PromptSeconds"]) == (3, prompt.text, 120)
    data = {**_load("delete_done"), "prompt": {"session_id": 3, "seconds": 120, "exit_code": 0, "text": ""}}
    outcome = step.read("PC-0002", data)
    assert outcome.deleted and outcome.prompt is not None and outcome.prompt.delivered
    assert DeleteHelloContainer(SID, "{51B3FB36-0509-4DFD-AA5D-AA44404602D0}").read("PC-0002", data).prompt is None
