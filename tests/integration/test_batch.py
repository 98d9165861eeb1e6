"""Scripts in one pipeline (PsrpTransport.run_batch, through run_scripts): one Command for several scripts, each
answer to its own script, a later failure ending the list early; WinRS runs them one by one."""

from __future__ import annotations

import pytest

from migrator.errors import ScriptFailed
from migrator.remote.transport import run_scripts
from migrator.scripts import Script, load
from tests.integration.conftest import LabHandle

BOOM = Script("boom", "throw 'boom'", idempotent=True)
ENTRIES = {"Entries": [{"path": "HKLM:\\SOFTWARE\\Policies\\Microsoft\\PassportForWork", "name": "Enabled"}]}


def _device(lab: LabHandle) -> str:
    return lab.first(lambda d: d.join_type == "hybrid").name


def test_two_scripts_in_one_pipeline_answer_as_two_runs_with_fewer_requests(lab: LabHandle) -> None:
    name = _device(lab)
    snapshot, facts = load("snapshot_policy"), load("collect_facts")
    transport = lab.transport(name)
    try:
        transport.run(facts)  # the pool is open: what follows counts scripts only
        before = transport.requests_sent
        one = [transport.run(snapshot, ENTRIES), transport.run(facts)]
        separate = transport.requests_sent - before
        before = transport.requests_sent
        both = run_scripts(transport, [(snapshot, ENTRIES), (facts, None)])
        batched = transport.requests_sent - before
    finally:
        transport.close()
    assert both[0].data == one[0].data  # each answer is its own script's
    assert set(both[1].data) == set(one[1].data) and both[1].data != both[0].data
    assert batched < separate  # one Command and its Receives instead of two


@pytest.mark.parametrize("transport_name", ["psrp", "winrm"])
def test_a_later_failure_ends_the_list_and_a_first_failure_raises(lab: LabHandle, transport_name: str) -> None:
    name = _device(lab)
    transport = lab.transport(name, transport=transport_name)
    try:
        answers = run_scripts(transport, [(load("collect_facts"), None), (BOOM, None)])
        assert len(answers) == 1 and "policy" in answers[0].data
        with pytest.raises(ScriptFailed):
            run_scripts(transport, [(BOOM, None), (load("collect_facts"), None)])
    finally:
        transport.close()
