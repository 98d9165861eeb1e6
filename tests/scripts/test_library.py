"""The script library's contract: headers, parameters, one JSON object, no code built from values."""

from __future__ import annotations

import re

import pytest

from migrator.scripts import available, load
from migrator.steps import CATALOGUE

SCRIPTS = available()


def test_every_expected_script_is_shipped() -> None:
    """The library has every script the steps name."""
    assert {info.script for info in CATALOGUE.values()} <= set(SCRIPTS)
    assert {"collect_facts", "user_context", "set_policy", "snapshot_policy", "restore_policy"} <= set(SCRIPTS)


@pytest.mark.parametrize("name", SCRIPTS)
def test_header_param_block_and_single_json_output(name: str) -> None:
    """Each script cites its Microsoft doc, has a param() block, stops on errors and ends in one JSON object."""
    script = load(name)
    assert "learn.microsoft.com" in script.source or "hello-for-business" in script.source
    text = script.text  # as sent: the same code without comment lines
    assert len(text) < len(script.source) and "learn.microsoft.com" not in text
    assert re.search(r"^param\(", text, re.MULTILINE)
    assert "$ErrorActionPreference = 'Stop'" in text
    last = [line for line in text.splitlines() if line.strip()][-1]
    assert last.strip().endswith("ConvertTo-Json -Compress -Depth 6")


@pytest.mark.parametrize("name", SCRIPTS)
def test_no_dynamic_code(name: str) -> None:
    """No script turns text into code (Invoke-Expression, ScriptBlock::Create, -Command/-EncodedCommand)."""
    text = load(name).text.casefold()
    for banned in ("invoke-expression", "iex ", "[scriptblock]::create", "-encodedcommand", " -command "):
        assert banned not in text, banned


@pytest.mark.parametrize("step", sorted(CATALOGUE))
def test_step_and_script_agree_on_idempotency(step: str) -> None:
    """A step may be retried blindly only if its script says so too."""
    info = CATALOGUE[step]
    assert info.idempotent == load(info.script).idempotent


def test_only_the_container_delete_is_a_point_of_no_return() -> None:
    """The one irreversible step is the guarded container delete, and it is not idempotent."""
    irreversible = [name for name, info in CATALOGUE.items() if info.point_of_no_return]
    assert irreversible == ["delete_hello_container"]
    assert not CATALOGUE["delete_hello_container"].idempotent


def _inner(text: str) -> str:
    match = re.search(r"^\$inner = @'\n(.*?)\n'@$", text, re.MULTILINE | re.DOTALL)
    assert match is not None
    return match.group(1)


def test_user_context_and_logon_task_run_the_same_inner_script() -> None:
    """The at-logon task and the on-demand task run the very same guarded user-context script."""
    assert _inner(load("user_context").text) == _inner(load("arm_logon_task").text)
