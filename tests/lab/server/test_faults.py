"""Fault injection: each fault as the real clients observe it, plus profile parsing and seeding."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
import winrm
import winrm.exceptions
from pypsrp.exceptions import WSManFaultError
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from migrator.lab.server import FaultPlan, FaultProfileError, load_fault_profile, parse_fault_profile
from tests.lab.server.conftest import PASSWORD, Fleet

pytestmark = [pytest.mark.timeout(60)]


def _session(fleet: Fleet, device: str = "pc-001") -> winrm.Session:
    return winrm.Session(
        f"https://{fleet.address(device)}:{fleet.https_port}/wsman",
        auth=("labadmin", PASSWORD),
        transport="ntlm",
        server_cert_validation="validate",
        ca_trust_path=str(fleet.server.ca_bundle_path),
    )


def _wsman(fleet: Fleet, device: str = "pc-001") -> WSMan:
    return WSMan(
        fleet.address(device),
        port=fleet.https_port,
        username="labadmin",
        password=PASSWORD,
        cert_validation=str(fleet.server.ca_bundle_path),
        operation_timeout=5,
    )


@pytest.mark.integration
def test_latency_uses_the_injected_clock(fleet: Fleet) -> None:
    """Added latency (fixed ± seeded jitter) is slept on the virtual clock; the call still succeeds."""
    fleet.faults.add(kind="latency", devices=["pc-001"], delay=2.0, jitter=0.5)
    assert _session(fleet).run_cmd("hostname").status_code == 0
    assert fleet.clock.slept
    assert all(1.5 <= s <= 2.5 for s in fleet.clock.slept)
    assert len(set(fleet.clock.slept)) > 1


@pytest.mark.integration
def test_dropped_connection_is_a_connection_error(fleet: Fleet) -> None:
    """A connection closed mid-request surfaces as requests' ConnectionError; later requests work."""
    fleet.faults.add(kind="drop", devices=["pc-001"], count=1)
    with pytest.raises(requests.exceptions.ConnectionError):
        _session(fleet).run_cmd("hostname")
    assert _session(fleet).run_cmd("hostname").status_code == 0


@pytest.mark.integration
def test_offline_device_refuses_connections(fleet: Fleet) -> None:
    """An offline device stops listening (connection refused) until it is brought back."""
    fleet.lab.call(fleet.server.take_offline("pc-002"))
    with pytest.raises(requests.exceptions.ConnectionError, match="refused"):
        _session(fleet, "pc-002").run_cmd("hostname")
    assert _session(fleet, "pc-001").run_cmd("hostname").status_code == 0
    fleet.lab.call(fleet.server.bring_online("pc-002"))
    assert _session(fleet, "pc-002").run_cmd("hostname").status_code == 0


@pytest.mark.integration
def test_http_500_is_a_wsman_internal_error(fleet: Fleet) -> None:
    """An injected 500 is a real SOAP fault: pywinrm WSManFaultError and pypsrp WSManFaultError carry the code."""
    fleet.faults.add(kind="http_500", actions=["Command"], code=0x80070005, message="Access is denied.")
    with pytest.raises(winrm.exceptions.WSManFaultError) as caught:
        _session(fleet).run_cmd("hostname")
    assert caught.value.code == 500
    assert caught.value.wsman_fault_code == 0x80070005
    assert caught.value.fault_subcode == "w:InternalError"
    assert "Access is denied." in caught.value.reason
    with pytest.raises(WSManFaultError) as psrp_caught, RunspacePool(_wsman(fleet)) as pool:
        PowerShell(pool).add_script("whoami").invoke()
    assert psrp_caught.value.code == 0x80070005


@pytest.mark.integration
def test_injected_receive_timeout_is_retried_by_pywinrm(fleet: Fleet) -> None:
    """w:TimedOut on Receive is what pywinrm treats as 'keep waiting': run_cmd still succeeds."""
    fleet.faults.add(kind="timeout", actions=["Receive"], count=2)
    result = _session(fleet).run_cmd("hostname")
    assert result.std_out == b"PC-001\r\n"
    assert [f[1] for f in fleet.faults.fired] == ["timeout", "timeout"]
    protocol = _session(fleet).protocol
    fleet.faults.add(kind="timeout", actions=["Receive"], count=1)
    shell_id = protocol.open_shell()
    command_id = protocol.run_command(shell_id, "hostname")
    with pytest.raises(winrm.exceptions.WinRMOperationTimeoutError):
        protocol.get_command_output_raw(shell_id, command_id)
    assert protocol.get_command_output_raw(shell_id, command_id)[3]


@pytest.mark.integration
def test_receive_with_nothing_to_give_times_out_like_windows(fleet: Fleet) -> None:
    """Normal behaviour: after OperationTimeout an idle Receive answers w:TimedOut (code 0x80338029)."""
    with RunspacePool(_wsman(fleet)) as pool:
        ps = PowerShell(pool).add_script("wait")
        ps.begin_invoke()
        started = time.monotonic()
        while time.monotonic() - started < 5 and not fleet.executor.runspaces[-1].calls:
            time.sleep(0.01)
        pool._receive(ps.id)  # drains the Running state message
        with pytest.raises(WSManFaultError) as caught:
            pool._receive(ps.id, timeout=1)
        assert caught.value.code == 0x80338029
        ps.poll_invoke(timeout=1)  # pypsrp swallows exactly this fault while polling
        ps.stop()


@pytest.mark.integration
def test_password_changed_gives_401(fleet: Fleet) -> None:
    """An 'unauthorized' fault answers 401: pywinrm InvalidCredentialsError."""
    fleet.faults.add(kind="unauthorized", devices=["pc-001"])
    with pytest.raises(winrm.exceptions.InvalidCredentialsError):
        _session(fleet).run_cmd("hostname")
    assert _session(fleet, "pc-002").run_cmd("hostname").status_code == 0


@pytest.mark.integration
def test_busy_winrm_returns_the_quota_fault(fleet: Fleet) -> None:
    """MaxConcurrentOperationsPerUser: w:QuotaLimit with 0x803381A6 in WSManFault and MSFT_WmiError."""
    fleet.faults.add(kind="busy", actions=["Command"], count=1)
    with pytest.raises(winrm.exceptions.WSManFaultError) as caught:
        _session(fleet).run_cmd("hostname")
    assert caught.value.wsman_fault_code == 0x803381A6
    assert caught.value.wmierror_code == 0x803381A6
    assert "maximum number of 1500 concurrent operations" in caught.value.reason


@pytest.mark.integration
def test_slow_device_adds_execution_time(fleet: Fleet) -> None:
    """A slow device sleeps (virtually) before executing; output is unchanged."""
    fleet.faults.add(kind="slow", devices=["pc-002"], delay=45.0)
    assert _session(fleet, "pc-002").run_cmd("hostname").std_out == b"PC-002\r\n"
    assert fleet.clock.slept == [45.0]


@pytest.mark.integration
def test_reboot_drops_shells_and_refuses_while_down(fleet: Fleet) -> None:
    """A reboot: connection refused while down, then the old shell is gone (w:InvalidSelectors)."""
    protocol = _session(fleet).protocol
    shell_id = protocol.open_shell()

    async def hold() -> None:
        fleet.clock.hold()

    async def release() -> None:
        fleet.clock.release()

    fleet.lab.call(hold())
    fleet.faults.add(kind="reboot", devices=["pc-001"], duration=120.0, count=1)
    with pytest.raises(requests.exceptions.ConnectionError):
        protocol.run_command(shell_id, "hostname")
    with pytest.raises(requests.exceptions.ConnectionError, match="refused"):
        _session(fleet).run_cmd("hostname")
    fleet.lab.call(release())
    deadline = time.monotonic() + 5
    while not fleet.server.devices["pc-001"].servers and time.monotonic() < deadline:
        time.sleep(0.01)
    fresh = _session(fleet).protocol
    with pytest.raises(winrm.exceptions.WSManFaultError) as caught:
        fresh.run_command(shell_id, "hostname")
    assert caught.value.wsman_fault_code == 0x8033805B
    assert fleet.clock.now == 120.0
    assert _session(fleet).run_cmd("hostname").status_code == 0


def test_profile_from_yaml(tmp_path: Path) -> None:
    """A YAML profile loads into rules with their fields."""
    path = tmp_path / "faults.yaml"
    path.write_text("seed: 7\nfaults:\n  - kind: latency\n    devices: ['pc-*']\n    delay: 1.5\n    jitter: 0.5\n")
    profile = load_fault_profile(path)
    assert profile.seed == 7
    assert profile.faults[0].kind == "latency"
    assert profile.faults[0].devices == ["pc-*"]


def test_profile_errors_name_file_line_and_field(tmp_path: Path) -> None:
    """Validation errors read file:line: field: problem."""
    text = "seed: 1\nfaults:\n  - kind: latency\n    delay: 1\n  - kind: meteor\n    probability: 3\n"
    with pytest.raises(FaultProfileError) as caught:
        parse_fault_profile(text, "lab/faults.yaml")
    message = str(caught.value)
    assert "lab/faults.yaml:5: faults.1.kind:" in message
    assert "lab/faults.yaml:6: faults.1.probability:" in message
    with pytest.raises(FaultProfileError, match=r"lab/faults.yaml:3: invalid YAML"):
        parse_fault_profile("faults:\n  - [unclosed\n", "lab/faults.yaml")


def test_probability_is_seeded_per_device() -> None:
    """The same seed gives the same per-device sequence regardless of how devices interleave."""
    profile = parse_fault_profile("seed: 3\nfaults:\n  - kind: drop\n    probability: 0.5\n")
    first, second = FaultPlan(profile), FaultPlan(profile)
    a = [bool(first.decide("http", "pc-001")) for _ in range(20)]
    for _ in range(7):
        second.decide("http", "pc-002")
    b = [bool(second.decide("http", "pc-001")) for _ in range(20)]
    assert a == b
    assert 0 < sum(a) < 20


def test_after_and_count_bound_a_rule() -> None:
    """'after' skips the first matches, 'count' caps how often the rule fires per device."""
    plan = FaultPlan()
    plan.add(kind="http_500", actions=["Command"], after=1, count=2)
    fired = [bool(plan.decide("action", "pc-001", "Command")) for _ in range(5)]
    assert fired == [False, True, True, False, False]
    assert plan.decide("action", "pc-001", "Receive") == []
