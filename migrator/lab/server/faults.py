"""Fault injection for the lab's WinRM endpoints: seeded, scriptable, per device or fleet-wide.

A :class:`FaultPlan` holds :class:`FaultRule` s, from a YAML profile (:func:`load_fault_profile`) or added
in Python. The server asks the plan at three points of every request and the plan answers which rules fire:

========================  ==============================================================================
stage                     kinds, and what the client observes (as against Windows)
========================  ==============================================================================
``http`` (request read)   ``latency`` (delay ± jitter), ``drop`` (connection closed, no response →
                          ``ConnectionError``), ``reboot`` (listeners down for ``duration``, shells and
                          runspaces lost, device state kept), ``offline`` (listeners closed → connection
                          refused; ``duration`` 0 = until :meth:`LabServer.bring_online`)
``auth``                  ``unauthorized`` (password changed: 401 → ``InvalidCredentialsError`` /
                          ``AuthenticationError``)
``kerberos`` (AP-REQ)     ``clock_skew`` (the device's clock is ``skew`` seconds off: beyond Kerberos' 5 minutes, its
                          accepted AP-REQ is answered 401 with a KRB-ERROR KRB_AP_ERR_SKEW token, as Windows
                          answers; NTLM is not affected)
``action`` (WS-Man)       ``http_500`` (``w:InternalError`` SOAP fault with a WinRM code), ``timeout``
                          (``w:TimedOut`` 0x80338029, as Receive answers after OperationTimeout), ``busy``
                          (``w:QuotaLimit`` 0x803381A6, MaxConcurrentOperationsPerUser)
``exec``                  ``slow`` (adds ``delay`` ± jitter of execution time to commands/pipelines)
``graph`` (lab tenant)    ``throttle`` (Graph answers 429 ``TooManyRequests`` with ``Retry-After: delay``
                          seconds; ``actions`` name Graph operations, e.g. ``windowsHelloForBusinessMethods``,
                          ``members``, ``syncDevice``; the rule's ``devices`` glob is matched against ``graph``)
========================  ==============================================================================

A rule matches devices by glob (``devices``, default every device) and WS-Man actions by name (``actions``,
e.g. ``[Command, Receive]``; default all), skips its first ``after`` matches, fires with ``probability``
(drawn from a ``random.Random`` seeded by profile seed, rule index and device, so each device's fault
sequence is reproducible whatever the interleaving) and at most ``count`` times per device.

Durations use the server's injected :class:`LabClock`, so tests run with :class:`VirtualClock` and never wait.
"""

from __future__ import annotations

import asyncio
import enum
import fnmatch
import random
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from migrator.yamlsource import INPUT_LIMIT, InputFileError, YamlDocument, load_yaml, parse_yaml, validate_data


class LabClock(Protocol):
    """Time as the fault machinery sees it."""

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class RealClock:
    """Wall-clock time (``lab up``)."""

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


@dataclass
class VirtualClock:
    """Virtual time for tests: ``sleep`` advances the clock at once and records the request.

    ``hold()`` makes sleeps block until :meth:`release` instead, so a test can observe a device while it is
    down (e.g. during a reboot) and then let time pass.
    """

    now: float = 0.0
    slept: list[float] = field(default_factory=list)
    _gate: asyncio.Event | None = None

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if self._gate is not None:
            await self._gate.wait()
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)

    def hold(self) -> None:
        """Block subsequent sleeps until :meth:`release` (call on the server's loop thread)."""
        self._gate = asyncio.Event()

    def release(self) -> None:
        if self._gate is not None:
            self._gate.set()
            self._gate = None


class FaultKind(enum.StrEnum):
    LATENCY = "latency"
    DROP = "drop"
    OFFLINE = "offline"
    REBOOT = "reboot"
    UNAUTHORIZED = "unauthorized"
    HTTP_500 = "http_500"
    TIMEOUT = "timeout"
    BUSY = "busy"
    SLOW = "slow"
    CLOCK_SKEW = "clock_skew"
    THROTTLE = "throttle"


STAGES: dict[str, frozenset[FaultKind]] = {
    "http": frozenset({FaultKind.LATENCY, FaultKind.DROP, FaultKind.OFFLINE, FaultKind.REBOOT}),
    "auth": frozenset({FaultKind.UNAUTHORIZED}),
    "action": frozenset({FaultKind.HTTP_500, FaultKind.TIMEOUT, FaultKind.BUSY}),
    "exec": frozenset({FaultKind.SLOW}),
    "kerberos": frozenset({FaultKind.CLOCK_SKEW}),
    "graph": frozenset({FaultKind.THROTTLE}),
}


class FaultRule(BaseModel):
    """One fault: what, where, when, how often."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: FaultKind
    devices: list[str] = Field(default_factory=lambda: ["*"])
    actions: list[str] = Field(default_factory=list)
    probability: float = Field(default=1.0, ge=0.0, le=1.0)
    after: int = Field(default=0, ge=0)
    count: int | None = Field(default=None, ge=1)
    delay: float = Field(default=0.0, ge=0.0)
    jitter: float = Field(default=0.0, ge=0.0)
    duration: float = Field(default=0.0, ge=0.0)
    code: int | None = Field(default=None, ge=0, le=0xFFFFFFFF)
    message: str | None = None
    skew: float = Field(default=0.0, ge=-86400.0 * 366, le=86400.0 * 366)  # clock_skew: seconds the device is off


class FaultProfile(BaseModel):
    """A YAML fault profile: ``seed`` and a list of ``faults``."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    faults: list[FaultRule] = Field(default_factory=list)


class FaultProfileError(ValueError):
    """A fault profile failed to load; the message names file, line and field."""


def parse_fault_profile(text: str, source: str = "<fault profile>") -> FaultProfile:
    """Validate YAML text into a profile; errors read ``file:line: field: problem``."""
    try:
        doc = parse_yaml(text, source)
    except InputFileError as err:
        raise FaultProfileError(_as_profile_error(err)) from None
    return _validate(doc)


def load_fault_profile(path: Path) -> FaultProfile:
    """A profile file of at most :data:`~migrator.yamlsource.INPUT_LIMIT` bytes, read by the hardened loader."""
    try:
        doc = load_yaml(path, "fault profile", INPUT_LIMIT)
    except InputFileError as err:
        raise FaultProfileError(_as_profile_error(err)) from None
    return _validate(doc)


def _as_profile_error(err: InputFileError) -> str:
    return "\n".join(
        f"{p.file}:{p.line}: {p.field + ': ' if p.field else ''}{p.message}" if p.line else str(p) for p in err.problems
    )


def _validate(doc: YamlDocument) -> FaultProfile:
    try:
        return validate_data(FaultProfile, doc.data if doc.data is not None else {}, doc.path, doc.mark_of)
    except InputFileError as err:
        lines = []
        for p in err.problems:
            if p.line is None:  # the count of problems past the first ones
                lines.append(str(p))
            else:  # file:line: faults.1.kind: problem, as the lab's other messages
                field_name = re.sub(r"\[(\d+)\]", r".\1", p.field) or "(profile)"
                lines.append(f"{p.file}:{p.line}: {field_name}: {p.message}")
        raise FaultProfileError("\n".join(lines)) from None


@dataclass
class _Counter:
    seen: int = 0
    fired: int = 0


class FaultPlan:
    """The rules in force and their per-device counters; all decisions are made here."""

    def __init__(self, profile: FaultProfile | None = None) -> None:
        self.seed = profile.seed if profile else 0
        self._rules: list[FaultRule] = list(profile.faults) if profile else []
        self._counters: dict[tuple[int, str], _Counter] = {}
        self._rngs: dict[tuple[int, str], random.Random] = {}
        self.fired: list[tuple[str, FaultKind, str]] = []  # (device, kind, action) log for tests and reports

    @property
    def rules(self) -> tuple[FaultRule, ...]:
        return tuple(self._rules)

    def add(self, rule: FaultRule | None = None, /, **fields: Any) -> FaultRule:
        """Add a rule (a :class:`FaultRule` or its fields as keywords); returns it."""
        new_rule = rule if rule is not None else FaultRule.model_validate(fields)
        self._rules.append(new_rule)
        return new_rule

    def clear(self) -> None:
        self._rules.clear()
        self._counters.clear()
        self._rngs.clear()

    def _rng(self, index: int, device: str) -> random.Random:
        key = (index, device)
        if key not in self._rngs:
            self._rngs[key] = random.Random(f"{self.seed}:{index}:{device}")
        return self._rngs[key]

    def decide(self, stage: str, device: str, action: str = "") -> list[FaultRule]:
        """The rules of ``stage`` that fire now for ``device`` (and WS-Man ``action`` when known)."""
        kinds = STAGES[stage]
        fired = []
        for index, rule in enumerate(self._rules):
            if rule.kind not in kinds:
                continue
            if not any(fnmatch.fnmatchcase(device, pattern) for pattern in rule.devices):
                continue
            if rule.actions and action not in rule.actions:
                continue
            counter = self._counters.setdefault((index, device), _Counter())
            counter.seen += 1
            if counter.seen <= rule.after:
                continue
            if rule.count is not None and counter.fired >= rule.count:
                continue
            if rule.probability < 1.0 and self._rng(index, device).random() >= rule.probability:
                continue
            counter.fired += 1
            self.fired.append((device, rule.kind, action))
            fired.append(rule)
        return fired

    def delay_for(self, rule: FaultRule, device: str) -> float:
        """``delay`` plus a seeded uniform jitter in [-jitter, +jitter], never negative."""
        if not rule.jitter:
            return rule.delay
        index = self._rules.index(rule)
        return max(0.0, rule.delay + self._rng(index, device).uniform(-rule.jitter, rule.jitter))
