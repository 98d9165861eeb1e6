"""A small fake Host for the interpreter tests: a fixed clock, two device cmdlets, a few native commands,
and a journal of every cmdlet and native invocation (so tests can prove what ran)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from migrator.lab.ps import PSRunspace, run_script
from migrator.lab.shell import (
    CmdletContext,
    CmdletSpec,
    Command,
    ErrorRecord,
    InvocationResult,
    NativeResult,
    Param,
    PowerShellError,
    Principal,
    PrincipalKind,
    PSObject,
)

T0 = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


class FixedClock:
    """Virtual time: ``sleep`` advances it and records the slices."""

    def __init__(self, now: datetime = T0) -> None:
        self.current = now
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self.current

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.current += timedelta(seconds=seconds)


@dataclass
class FakeHost:
    clock: FixedClock = field(default_factory=FixedClock)
    computer_name: str = "PC-0001"
    principal: Principal = field(
        default_factory=lambda: Principal(PrincipalKind.ADMIN, "corp\\admin", "S-1-5-21-1-2-3-500")
    )
    env: dict[str, str] = field(
        default_factory=lambda: {
            "COMPUTERNAME": "PC-0001",
            "USERNAME": "admin",
            "USERDOMAIN": "CORP",
            "TEMP": "C:\\Users\\admin\\AppData\\Local\\Temp",
            "SystemRoot": "C:\\Windows",
        }
    )
    natives: dict[str, NativeResult] = field(default_factory=dict)
    journal: list[tuple[str, Any]] = field(default_factory=list)
    specs: dict[str, CmdletSpec] = field(default_factory=dict)

    def environment(self) -> Mapping[str, str]:
        return self.env

    def cmdlets(self) -> Mapping[str, CmdletSpec]:
        return self.specs

    def has_native(self, command: str) -> bool:
        return command.casefold() in self.natives

    def run_native(self, command: str, args: list[str], stdin: str | None = None) -> NativeResult:
        self.journal.append(("native", (command, list(args), stdin)))
        result = self.natives[command.casefold()]
        if command.casefold() in ("echoargs", "echoargs.exe"):
            return NativeResult(stdout="\n".join(args) + ("\n" if args else ""), exit_code=0)
        return result

    def add_cmdlet(self, spec: CmdletSpec) -> None:
        self.specs[spec.name.casefold()] = spec
        for alias in spec.aliases:
            self.specs[alias.casefold()] = spec


def _get_thing(ctx: CmdletContext, params: dict[str, Any]) -> Iterable[Any]:
    host = ctx.host
    assert isinstance(host, FakeHost)
    host.journal.append(("Get-Thing", dict(params)))
    name = params.get("Name", "*")
    if name == "missing":
        ctx.write_error(
            ErrorRecord(
                message="Cannot find thing 'missing'.",
                fully_qualified_error_id="ThingNotFound,Lab.GetThingCommand",
                category="ObjectNotFound",
                exception_type="System.Management.Automation.ItemNotFoundException",
                target_object=name,
            )
        )
        return
    if name == "boom":
        raise PowerShellError(
            ErrorRecord(
                message="The thing exploded.",
                fully_qualified_error_id="ThingExploded,Lab.GetThingCommand",
                category="InvalidOperation",
                exception_type="System.InvalidOperationException",
            )
        )
    if params.get("Verbose_note"):
        ctx.write_verbose("never")
    ctx.write_verbose(f"Getting {name}")
    if params.get("Warn"):
        ctx.write_warning("thing is old")
    for index in range(params.get("Count", 2)):
        yield PSObject(
            [("Name", f"{name}{index}"), ("Index", index), ("Enabled", index % 2 == 0)],
            ["Lab.Thing", "System.Object"],
        )


def _set_thing(ctx: CmdletContext, params: dict[str, Any]) -> Iterable[Any]:
    host = ctx.host
    assert isinstance(host, FakeHost)
    host.journal.append(("Set-Thing", dict(params)))
    if params.get("PassThru"):
        yield f"{params['Name']}={params.get('Value')}"
    return


def make_host() -> FakeHost:
    fake = FakeHost()
    fake.add_cmdlet(
        CmdletSpec(
            name="Get-Thing",
            params=(
                Param("Name", "string", position=0),
                Param("Count", "int"),
                Param("Warn", "switch"),
                Param("Since", "datetime"),
            ),
            func=_get_thing,
            aliases=("gth",),
        )
    )
    fake.add_cmdlet(
        CmdletSpec(
            name="Set-Thing",
            params=(
                Param("Name", "string", mandatory=True, position=0, from_pipeline_by_property_name=True),
                Param("Value", "any", position=1, from_pipeline=True),
                Param("Tags", "string[]"),
                Param("Options", "hashtable"),
                Param("Enabled", "bool"),
                Param("PassThru", "switch"),
            ),
            func=_set_thing,
        )
    )
    fake.natives["dsregcmd"] = NativeResult(stdout="+----+\n| Device State |\n+----+\n AzureAdJoined : YES\n")
    fake.natives["dsregcmd.exe"] = fake.natives["dsregcmd"]
    fake.natives["failing.exe"] = NativeResult(
        stdout="partial\n", stderr="first problem\nsecond problem\n", exit_code=5
    )
    fake.natives["oneline"] = NativeResult(stdout="only line\r\n")
    fake.natives["echoargs"] = NativeResult()
    return fake


@pytest.fixture
def host() -> FakeHost:
    return make_host()


@pytest.fixture
def ps(host: FakeHost) -> Any:
    """Run a script against the fake host and return the InvocationResult."""

    def run(script: str, parameters: dict[str, Any] | None = None, input: list[Any] | None = None) -> InvocationResult:
        return run_script(host, script, parameters, input)

    return run


@pytest.fixture
def out(ps: Any) -> Any:
    """Run a script and return its output; fail the test on any error record."""

    def run(script: str, parameters: dict[str, Any] | None = None, input: list[Any] | None = None) -> list[Any]:
        result = ps(script, parameters, input)
        assert result.terminating_error is None, result.terminating_error
        assert not result.errors, result.errors
        return result.output

    return run


@pytest.fixture
def runspace(host: FakeHost) -> PSRunspace:
    return PSRunspace(host)


def script(text: str, **parameters: Any) -> Command:
    return Command(text=text, parameters=tuple(parameters.items()))
