"""Scripts defined once per runspace pool (real pypsrp against the lab): the first use of a script in a pool
defines its function, every later call sends only the function's name and the values as parameters; a pool
discarded or a pipeline failed forgets the definitions, and hostile values stay data either way."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pypsrp.powershell import PowerShell, RunspacePool

from migrator.errors import ScriptFailed
from migrator.remote.psrp import PsrpTransport, function_name
from migrator.remote.transport import run_scripts
from migrator.scripts import Script, load
from tests.integration.conftest import LabHandle

ECHO = Script("echo_value", "param([string]$Value) @{ value = $Value } | ConvertTo-Json -Compress", idempotent=True)
PROBE = Script(
    "probe_function",
    "param([string]$Name) try { $null = & $Name -Value probe; $found = $true } catch { $found = $false }\n"
    "@{ defined = $found } | ConvertTo-Json -Compress",
    idempotent=True,
)
BOOM = Script("boom", "throw 'boom'", idempotent=True)
HOSTILE = [
    "'; throw 'injected' #",
    '"; throw "injected"; "',
    "$(throw 'injected')",
    "} ; throw 'injected' ; function x {",
    "`n throw 'injected'",
    "@{ a = 1 }",
    "\u2018; throw 'smart quote' ;\u2019",
]


@pytest.fixture
def definitions(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[list[str]]]:
    """The script statements (definitions) of every pipeline a PsrpTransport builds, one list per pipeline."""
    seen: list[list[str]] = []
    build = PsrpTransport._pipeline

    def recording(self: PsrpTransport, pool: RunspacePool, items: Any) -> PowerShell:
        ps = build(self, pool, items)
        seen.append([str(c.cmd) for c in ps.commands if c.is_script])
        return ps

    monkeypatch.setattr(PsrpTransport, "_pipeline", recording)
    yield seen


def _device(lab: LabHandle) -> str:
    return lab.first(lambda d: d.join_type == "hybrid").name


def test_a_script_is_defined_once_per_pool_and_called_by_name(lab: LabHandle, definitions: list[list[str]]) -> None:
    """Three runs of one script: one definition (in the first pipeline), the same answer each time, and the
    function is there on the device."""
    transport = lab.transport(_device(lab))
    try:
        answers = [transport.run(ECHO, {"Value": "same"}).data for _ in range(3)]
        defined = transport.run(PROBE, {"Name": function_name(ECHO)}).data
    finally:
        transport.close()
    assert answers == [{"value": "same"}] * 3
    assert [len(d) for d in definitions] == [1, 0, 0, 1]  # ECHO once, then PROBE once
    assert definitions[0][0].startswith(f"function global:{function_name(ECHO)} {{")
    assert defined == {"defined": True}


def test_later_calls_send_fewer_bytes(lab: LabHandle) -> None:
    """The script text goes once: a later call of a long script is a small Command message."""
    facts = load("collect_facts")
    transport = lab.transport(_device(lab))
    sizes: list[int] = []
    try:
        assert isinstance(transport, PsrpTransport)
        transport.run(facts)
        session = transport._wsman.transport.session  # type: ignore[union-attr]
        session.hooks["response"].append(lambda r, *a, **k: sizes.append(len(r.request.body or b"")))
        transport.run(facts)
    finally:
        transport.close()
    assert sizes and max(sizes) < len(facts.text)


def test_a_closed_pool_forgets_its_definitions(lab: LabHandle, definitions: list[list[str]]) -> None:
    """A new pool (after close) knows nothing, on the device as here: the script is defined again there."""
    transport = lab.transport(_device(lab))
    try:
        transport.run(ECHO, {"Value": "a"})
        transport.close()
        assert transport.run(PROBE, {"Name": function_name(ECHO)}).data == {"defined": False}
        assert transport.run(ECHO, {"Value": "b"}).data == {"value": "b"}
    finally:
        transport.close()
    assert [len(d) for d in definitions] == [1, 1, 1]


def test_a_failed_pipeline_forgets_the_definitions(lab: LabHandle, definitions: list[list[str]]) -> None:
    """After a failed pipeline the next call defines its script again, and answers."""
    transport = lab.transport(_device(lab))
    try:
        transport.run(ECHO, {"Value": "before"})
        with pytest.raises(ScriptFailed):
            transport.run(BOOM)
        assert transport.run(ECHO, {"Value": "after"}).data == {"value": "after"}
    finally:
        transport.close()
    assert [len(d) for d in definitions] == [1, 1, 1]


def test_a_batch_defines_each_new_script_once_before_the_calls(lab: LabHandle, definitions: list[list[str]]) -> None:
    """Two scripts, one of them twice, in one pipeline: two definitions; each answer is its own call's."""
    transport = lab.transport(_device(lab))
    try:
        answers = run_scripts(
            transport, [(ECHO, {"Value": "1"}), (PROBE, {"Name": function_name(ECHO)}), (ECHO, {"Value": "2"})]
        )
    finally:
        transport.close()
    assert [a.data for a in answers] == [{"value": "1"}, {"defined": True}, {"value": "2"}]
    assert [len(d) for d in definitions] == [2]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_stay_data_in_the_defining_call_and_later_ones(lab: LabHandle, value: str) -> None:
    """A value that would be code if it were pasted into the text comes back as the same text, whether its call
    also defines the function or not."""
    transport = lab.transport(_device(lab))
    try:
        first = transport.run(ECHO, {"Value": value}).data
        later = transport.run(ECHO, {"Value": value}).data
    finally:
        transport.close()
    assert first == later == {"value": value}
