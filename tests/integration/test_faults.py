"""Each lab fault kind gives the right error class and retry behaviour; nothing non-retryable is sent twice.

"Sent" is counted on the device: the lab's command log (``device.counters.commands``) records every native
command a script ran, so a step that ran twice shows two ``msg.exe`` (or two ``dsregcmd.exe /status``) lines."""

from __future__ import annotations

from typing import Any

import pytest

from migrator.errors import AuthenticationFailed, ConnectionLost, DeviceBusy, DeviceUnreachable, RemoteError
from migrator.steps import CollectFacts, PromptUser, ReadLogonTaskResult, RefreshPolicy, run_step
from migrator.steps._base import Step
from tests.integration.conftest import FAST_RETRY, LabHandle

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _runs(lab: LabHandle, device: str, prefix: str, since: int) -> int:
    target = lab.device(device)
    with target.lock:
        return sum(1 for c in target.counters.commands[since:] if c.kind == "native" and c.command.startswith(prefix))


def _attempt(
    lab: LabHandle, device: str, step: Step[Any], arm: dict[str, Any] | None = None, **overrides: object
) -> tuple[Any, list[int]]:
    """Run a step with fast retries; returns (result or the RemoteError raised, retry attempt numbers).

    ``arm``: a fault rule added once the connection is open (a read-only warm-up step has run), so that an
    HTTP-stage fault (which cannot name a WS-Man action) hits the step's own requests."""
    retries: list[int] = []
    transport = lab.transport(device, **overrides)
    try:
        if arm is not None:
            run_step(transport, ReadLogonTaskResult("S-1-5-21-1-2-3-4"), policy=FAST_RETRY)
            lab.runtime.server.faults.add(devices=[device], **arm)
        result: Any = run_step(transport, step, policy=FAST_RETRY, on_retry=lambda n, e, w: retries.append(n))
    except RemoteError as err:
        result = err
    finally:
        transport.close()
    return result, retries


def _prompt(lab: LabHandle, index: int) -> tuple[str, PromptUser]:
    devices = [d for d in lab.runtime.fleet.devices if d.sessions]
    device = devices[index]
    return device.name, PromptUser(device.sessions[0].session_id, "Please sign out.", 30)


def _fired(lab: LabHandle, device: str) -> int:
    return sum(1 for name, _, _ in lab.runtime.server.faults.fired if name == device)


def test_latency_and_slow_execution_only_take_longer(faults: LabHandle) -> None:
    """latency and slow faults do not fail a probe."""
    name = faults.runtime.fleet.devices[0].name
    faults.runtime.server.faults.add(kind="latency", devices=[name], delay=0.02)
    faults.runtime.server.faults.add(kind="slow", devices=[name], delay=0.05)
    result, retries = _attempt(faults, name, CollectFacts())
    assert not isinstance(result, RemoteError) and retries == []


def test_offline_device_is_unreachable_after_bounded_retries(faults: LabHandle) -> None:
    """Connection refused: DeviceUnreachable, retried up to the policy's attempts, nothing ran."""
    name = faults.runtime.fleet.devices[1].name
    since = len(faults.device(name).counters.commands)
    faults.runtime.server.faults.add(kind="offline", devices=[name])
    result, retries = _attempt(faults, name, CollectFacts())
    assert isinstance(result, DeviceUnreachable) and not result.may_have_run
    assert retries == list(range(1, FAST_RETRY.attempts))
    assert _runs(faults, name, "dsregcmd", since) == 0


def test_reboot_is_waited_out(faults: LabHandle) -> None:
    """A rebooting device refuses connections for a while; the idempotent probe succeeds after retrying."""
    name = faults.runtime.fleet.devices[2].name
    faults.runtime.server.faults.add(kind="reboot", devices=[name], duration=0.15, count=1)
    result, retries = _attempt(faults, name, CollectFacts())
    assert not isinstance(result, RemoteError) and retries


def test_wrong_password_is_not_retried(faults: LabHandle) -> None:
    """HTTP 401: AuthenticationFailed at once, no retry, nothing ran."""
    name = faults.runtime.fleet.devices[3].name
    since = len(faults.device(name).counters.commands)
    faults.runtime.server.faults.add(kind="unauthorized", devices=[name])
    result, retries = _attempt(faults, name, CollectFacts())
    assert isinstance(result, AuthenticationFailed) and retries == []
    assert "password" in str(result) and faults.credentials.password.get_secret_value() not in str(result)
    assert _runs(faults, name, "dsregcmd", since) == 0


@pytest.mark.parametrize("transport", ["psrp", "winrm"])
def test_dropped_command_is_retried_for_an_idempotent_step(faults: LabHandle, transport: str) -> None:
    """A dropped Command (answer lost) is retried for an idempotent step, which then succeeds."""
    device = [d for d in faults.runtime.fleet.devices if d.join_type == "hybrid" and d.dc_reachable][
        0 if transport == "psrp" else 1
    ]
    step: Step[Any] = CollectFacts() if transport == "psrp" else RefreshPolicy()
    result, retries = _attempt(faults, device.name, step, {"kind": "drop", "count": 1}, transport=transport)
    assert not isinstance(result, RemoteError), result
    assert retries == [1] and _fired(faults, device.name) == 1


@pytest.mark.parametrize("transport", ["psrp", "winrm"])
def test_dropped_command_is_not_resent_for_a_prompt(faults: LabHandle, transport: str) -> None:
    """The same lost answer for a non-idempotent prompt: ConnectionLost, not retried, msg ran at most once."""
    name, step = _prompt(faults, 0 if transport == "psrp" else 1)
    since = len(faults.device(name).counters.commands)
    result, retries = _attempt(faults, name, step, {"kind": "drop", "count": 1}, transport=transport)
    assert isinstance(result, ConnectionLost) and result.may_have_run and retries == []
    assert _runs(faults, name, "msg.exe", since) <= 1


def test_http_500_after_send_is_not_resent_for_a_prompt(faults: LabHandle) -> None:
    """An HTTP 500 to the Command: DeviceBusy that may have run, not retried for a prompt."""
    name, step = _prompt(faults, 2)
    since = len(faults.device(name).counters.commands)
    faults.runtime.server.faults.add(kind="http_500", devices=[name], actions=["Command"], count=1)
    result, retries = _attempt(faults, name, step)
    assert isinstance(result, DeviceBusy) and retries == []
    assert _runs(faults, name, "msg.exe", since) <= 1


def test_http_500_is_retried_for_the_probe(faults: LabHandle) -> None:
    """The same fault on the idempotent probe is retried and the probe succeeds."""
    name = faults.runtime.fleet.devices[6].name
    faults.runtime.server.faults.add(kind="http_500", devices=[name], actions=["Command"], count=1)
    result, retries = _attempt(faults, name, CollectFacts())
    assert not isinstance(result, RemoteError) and retries == [1]


def test_quota_busy_is_retried_even_for_a_prompt_and_delivers_once(faults: LabHandle) -> None:
    """WinRM quota (refused before running): DeviceBusy, safe to retry; the message is shown exactly once."""
    name, step = _prompt(faults, 3)
    since = len(faults.device(name).counters.commands)
    faults.runtime.server.faults.add(kind="busy", devices=[name], actions=["Command"], count=1)
    result, retries = _attempt(faults, name, step)
    assert not isinstance(result, RemoteError), result
    assert retries == [1] and _runs(faults, name, "msg.exe", since) == 1


@pytest.mark.parametrize("transport", ["psrp", "winrm"])
def test_receive_timeout_is_polled_through(faults: LabHandle, transport: str) -> None:
    """w:TimedOut on a Receive is WS-Man's normal long-poll answer: the client asks again, the script ran once."""
    name, step = _prompt(faults, 4 if transport == "psrp" else 5)
    since = len(faults.device(name).counters.commands)
    faults.runtime.server.faults.add(kind="timeout", devices=[name], actions=["Receive"], count=1)
    result, retries = _attempt(faults, name, step, transport=transport)
    if isinstance(result, ConnectionLost):  # a client that surfaces it must not resend the prompt
        assert retries == [] and _runs(faults, name, "msg.exe", since) <= 1
    else:
        assert not isinstance(result, RemoteError), result
        assert _runs(faults, name, "msg.exe", since) == 1
