"""PSRunspace as the wire server uses it: state across invocations, PSRP commands (scripts with parameters,
cmdlets, pipelines of commands, input), stop() from another thread, and what InvocationResult reports."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

from migrator.lab.ps import PSRunspace, run_script
from migrator.lab.shell import Command, Runspace
from tests.lab.ps.conftest import FakeHost, script


def test_is_a_runspace(runspace: PSRunspace) -> None:
    """PSRunspace satisfies the shell.Runspace protocol."""
    assert isinstance(runspace, PSRunspace)
    typed: Runspace = runspace
    assert typed is runspace


def test_state_persists_between_invocations(runspace: PSRunspace) -> None:
    """Variables and functions defined by one invoke are there for the next (AddScript without local scope)."""
    runspace.invoke([script("$counter = 41; function Get-Next { $script:counter + 1 }")])
    assert runspace.invoke([script("Get-Next")]).output == [42]


def test_use_local_scope_keeps_variables_local(runspace: PSRunspace) -> None:
    """useLocalScope=True runs the script in its own scope."""
    runspace.invoke([Command(text="$hidden = 1", use_local_scope=True)])
    assert runspace.invoke([script("$hidden -eq $null")]).output == [True]


def test_script_parameters_bind_to_param_block(host: FakeHost) -> None:
    """Named and positional PSRP parameters bind to the script's param(); defaults and switches apply."""
    text = (
        "param([Parameter(Mandatory)][string]$Name, [int]$Count = 2, [switch]$Loud, [string[]]$Tags)\n"
        "\"$Name $Count $Loud $($Tags -join '+')\""
    )
    result = run_script(host, text, {"Name": "dev", "Loud": True, "Tags": ["a", "b"]})
    assert result.output == ["dev 2 True a+b"]
    positional = PSRunspace(host).invoke([Command(text=text, parameters=((None, "p"), ("Count", "5")))])
    assert positional.output == ["p 5 False "]


def test_missing_mandatory_script_parameter(host: FakeHost) -> None:
    """A mandatory parameter left out fails the pipeline (no prompt in remoting)."""
    result = run_script(host, "param([Parameter(Mandatory=$true)]$Name) 'ran'")
    assert result.output == []
    assert result.terminating_error is not None
    assert result.terminating_error.message == (
        "Cannot process command because of one or more missing mandatory parameters: Name."
    )


def test_cmdlet_commands_and_pipelines(runspace: PSRunspace) -> None:
    """add_cmdlet + add_parameter, several commands = one pipeline, input objects feed the first command."""
    result = runspace.invoke(
        [
            Command(text="Get-Thing", is_script=False, parameters=(("Name", "z"), ("Count", 3))),
            Command(text="Where-Object", is_script=False, parameters=(("FilterScript", None),)),
        ]
    )
    assert result.terminating_error is not None  # Where-Object without a filter is refused, not guessed
    piped = runspace.invoke(
        [
            Command(text="Get-Thing", is_script=False, parameters=(("Name", "z"), ("Count", 3))),
            Command(text="Select-Object", is_script=False, parameters=(("ExpandProperty", "Name"),)),
            Command(text="$input | ForEach-Object { $_.ToUpper() }"),
        ]
    )
    assert piped.output == ["Z0", "Z1", "Z2"]
    with_input = runspace.invoke([Command(text="process { $_ * 2 }")], input=[1, 2, 3])
    assert with_input.output == [2, 4, 6]
    measured = runspace.invoke([Command(text="Measure-Object", is_script=False)], input=[1, 2])
    assert measured.output[0]["Count"] == 2


def test_result_streams_and_flags(runspace: PSRunspace) -> None:
    """had_errors for non-terminating errors; terminating_error only when the pipeline failed."""
    soft = runspace.invoke([script("Write-Error 'soft'; 'still here'")])
    assert soft.had_errors and soft.terminating_error is None and soft.output == ["still here"]
    hard = runspace.invoke([script("throw 'hard'")])
    assert hard.had_errors and hard.terminating_error is not None and hard.errors[-1] == hard.terminating_error
    clean = runspace.invoke([script("'ok'")])
    assert not clean.had_errors and clean.errors == []


def test_exit_sets_lastexitcode(runspace: PSRunspace) -> None:
    """exit N ends the script quietly and leaves $LASTEXITCODE = N."""
    result = runspace.invoke([script("'a'; exit 3; 'b'")])
    assert result.output == ["a"] and result.terminating_error is None
    assert runspace.invoke([script("$LASTEXITCODE")]).output == [3]


class BlockingClock:
    """A clock whose sleep blocks a little in real time, so another thread can stop the pipeline."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.current = datetime(2026, 1, 1)

    def now(self) -> datetime:
        return self.current

    def sleep(self, seconds: float) -> None:
        self.started.set()
        threading.Event().wait(0.005)
        self.current += timedelta(seconds=seconds)


def test_stop_from_another_thread_ends_with_pipeline_stopped(host: FakeHost) -> None:
    """stop() during Start-Sleep ends the invocation with PipelineStoppedException; finally blocks run."""
    clock = BlockingClock()
    host.clock = clock  # type: ignore[assignment]
    runspace = PSRunspace(host)
    results: list[Any] = []
    worker = threading.Thread(
        target=lambda: results.append(
            runspace.invoke([script("try { 'start'; Start-Sleep -Seconds 3600 } finally { Write-Host 'cleanup' }")])
        )
    )
    worker.start()
    assert clock.started.wait(5)
    runspace.stop()
    worker.join(5)
    assert not worker.is_alive()
    (result,) = results
    assert result.output == ["start"]
    assert [record.text for record in result.information] == ["cleanup"]
    assert result.terminating_error is not None
    assert result.terminating_error.exception_type == "System.Management.Automation.PipelineStoppedException"
    assert result.terminating_error.message == "The pipeline has been stopped."
    assert runspace.invoke([script("'usable again'")]).output == ["usable again"]


def test_stop_interrupts_a_busy_loop(host: FakeHost) -> None:
    """A loop without sleeps is stopped between statements."""
    runspace = PSRunspace(host)
    results: list[Any] = []
    worker = threading.Thread(target=lambda: results.append(runspace.invoke([script("while ($true) { $i++ }")])))
    worker.start()
    threading.Event().wait(0.05)
    runspace.stop()
    worker.join(5)
    assert not worker.is_alive()
    assert results[0].terminating_error.fully_qualified_error_id == "PipelineStopped"


def test_a_longer_script_with_loops(out: Any) -> None:
    """A script of a few hundred statements with loops, functions and pipelines runs to the right answer."""
    body = "\n".join(f"$acc += Add-Two {i}" for i in range(150))
    text = (
        "function Add-Two([int]$n) { $n + 2 }\n$acc = 0\n"
        + body
        + "\nforeach ($i in 1..500) { if ($i % 7 -eq 0) { $acc += 1 } }\n"
        + "$acc += (1..200 | Where-Object { $_ % 2 } | Measure-Object -Sum).Sum\n$acc"
    )
    assert out(text) == [sum(i + 2 for i in range(150)) + 71 + 10000.0]
