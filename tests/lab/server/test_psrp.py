"""pypsrp RunspacePool/PowerShell against the lab's PowerShell plugin endpoint."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from pypsrp.client import Client
from pypsrp.complex_objects import GenericComplexObject, PSInvocationState
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from tests.lab.server.conftest import PASSWORD, Fleet

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def _wsman(fleet: Fleet, device: str = "pc-001", https: bool = True, **kwargs: object) -> WSMan:
    return WSMan(
        fleet.address(device),
        port=fleet.https_port if https else fleet.http_port,
        ssl=https,
        username="LAB\\svc-migrator",
        password=PASSWORD,
        cert_validation=str(fleet.server.ca_bundle_path),
        operation_timeout=5,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture(params=[True, False], ids=["https", "http-encrypted"])
def pool(request: pytest.FixtureRequest, fleet: Fleet) -> Iterator[RunspacePool]:
    with RunspacePool(_wsman(fleet, https=request.param)) as runspace_pool:
        yield runspace_pool


def test_typed_objects_come_back(pool: RunspacePool) -> None:
    """Primitive, collection and custom objects arrive with their CLIXML types."""
    ps = PowerShell(pool)
    output = ps.add_script("fixed").invoke()
    assert output[:7] == ["text", 42, 2**40, True, 2.5, None, b"\x00\x01"]
    assert output[8:10] == [[1, "two"], {"Key": "value", "Count": 3}]
    custom = output[10]
    assert isinstance(custom, GenericComplexObject)
    assert custom.types == ["Lab.JoinState", "System.Object"]
    assert custom.extended_properties["Name"] == "dsregcmd"
    assert custom.extended_properties["AzureAdJoined"] is True
    assert custom.extended_properties["Nested"].extended_properties == {"Inner": 1}
    assert not ps.had_errors


def test_parameters_reach_the_runspace_as_plain_values(pool: RunspacePool, fleet: Fleet) -> None:
    """add_script + add_parameters: the Executor gets the script and plain parameter values."""
    ps = PowerShell(pool)
    ps.add_script("echo").add_parameters({"Name": "x", "Count": 3, "List": [1, 2], "Table": {"a": 1}})
    (echoed,) = ps.invoke()
    assert echoed.extended_properties == {"Name": "x", "Count": 3, "List": [1, 2], "Table": {"a": 1}}
    commands, _ = fleet.executor.runspaces[-1].calls[-1]
    assert commands[0].is_script and commands[0].text == "echo"
    assert dict(commands[0].parameters)["Table"] == {"a": 1}


def test_principal_is_the_authenticated_admin(pool: RunspacePool) -> None:
    """The runspace runs as the signed-in account, DOMAIN\\user in lower case."""
    assert PowerShell(pool).add_script("whoami").invoke() == ["lab\\svc-migrator", "pc-001"]


def test_non_terminating_error_arrives_on_the_error_stream(pool: RunspacePool) -> None:
    """ErrorRecords keep message, FQEID, category and exception type."""
    ps = PowerShell(pool)
    assert ps.add_script("error").invoke() == ["after"]
    (error,) = ps.streams.error
    assert str(error) == "Cannot find path 'HKLM:\\SOFTWARE\\Nope' because it does not exist."
    assert error.fq_error == "PathNotFound,Microsoft.PowerShell.Commands.GetItemPropertyCommand"
    assert error.reason == "ItemNotFoundException"
    assert error.message == "ObjectNotFound: (HKLM:\\SOFTWARE\\Nope:String) [Get-ItemProperty], ItemNotFoundException"
    assert error.exception.types[0] == "System.Management.Automation.ItemNotFoundException"
    assert ps.state == PSInvocationState.COMPLETED


def test_terminating_error_fails_the_pipeline(pool: RunspacePool) -> None:
    """A terminating error: state Failed, had_errors, and the record on the error stream once."""
    ps = PowerShell(pool)
    assert ps.add_script("throw").invoke() == []
    assert ps.state == PSInvocationState.FAILED
    assert ps.had_errors
    assert [str(e) for e in ps.streams.error] == ["boom"]


def test_other_streams(pool: RunspacePool) -> None:
    """Warning, verbose, debug and information records land in their streams."""
    ps = PowerShell(pool)
    ps.add_script("streams").invoke()
    assert [w.message for w in ps.streams.warning] == ["careful"]
    assert [v.message for v in ps.streams.verbose] == ["chatty"]
    assert [d.message for d in ps.streams.debug] == ["dbg"]
    assert [i.message_data for i in ps.streams.information] == ["info"]


def test_output_larger_than_an_envelope(fleet: Fleet) -> None:
    """Output several times MaxEnvelopeSize is split across Receive responses and reassembled."""
    with RunspacePool(_wsman(fleet)) as pool:
        ps = PowerShell(pool).add_script("big").add_parameter("Size", 1_500_000)
        output = ps.invoke()
    assert len(output[0]) == 1_500_000
    assert output[1] == "tail"


def test_input_and_several_pipelines_on_one_pool(pool: RunspacePool, fleet: Fleet) -> None:
    """Pipelines run one after another on the same runspace; pipeline input reaches the device."""
    first = PowerShell(pool).add_script("input").invoke(input=["a", "b", 3])
    second = PowerShell(pool).add_script("whoami").invoke()
    assert first == [{"Count": 3}, "a", "b", 3]
    assert second[0] == "lab\\svc-migrator"
    assert len(fleet.executor.runspaces) == 1
    assert fleet.executor.runspaces[0].calls[0][1] == ["a", "b", 3]


def test_stop_ends_a_running_pipeline(fleet: Fleet) -> None:
    """Signal ctrl_c stops the runspace's pipeline; a fresh pipeline then runs normally."""
    with RunspacePool(_wsman(fleet)) as pool:
        ps = PowerShell(pool).add_script("wait")
        ps.begin_invoke()
        deadline = time.monotonic() + 5
        while not fleet.executor.runspaces[-1].calls and time.monotonic() < deadline:
            time.sleep(0.01)
        ps.stop()
        assert fleet.executor.runspaces[-1].stopped.is_set()
        assert PowerShell(pool).add_script("whoami").invoke()[1] == "pc-001"


def test_closing_the_pool_closes_the_runspace(fleet: Fleet) -> None:
    """Delete on the shell closes the device runspace."""
    with RunspacePool(_wsman(fleet, device="pc-002")) as pool:
        PowerShell(pool).add_script("whoami").invoke()
    runspace = fleet.executor.runspaces[-1]
    deadline = time.monotonic() + 5
    while not runspace.closed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert runspace.closed


def test_pool_messages_set_max_and_available_runspaces(pool: RunspacePool) -> None:
    """SET_MAX_RUNSPACES and GET_AVAILABLE_RUNSPACES are answered."""
    pool.max_runspaces = 4
    assert pool.max_runspaces == 4
    assert pool.get_available_runspaces() == 4


def test_client_execute_ps(fleet: Fleet) -> None:
    """Client.execute_ps runs through the same path (Invoke-Expression with the script as parameter)."""
    client = Client(
        fleet.address("pc-001"), port=fleet.http_port, ssl=False, username="labadmin", password=PASSWORD, auth="ntlm"
    )
    output, _streams, had_errors = client.execute_ps("Get-Service")
    assert output == "ran: Invoke-Expression"
    assert not had_errors
    commands, _ = fleet.executor.runspaces[-1].calls[-1]
    assert commands[0].text == "Invoke-Expression" and not commands[0].is_script


def test_pools_on_two_devices_at_once(fleet: Fleet) -> None:
    """Two devices served concurrently from one loop, each by its own executor runspace."""
    results: dict[str, list[object]] = {}

    def run(device: str) -> None:
        with RunspacePool(_wsman(fleet, device=device)) as pool:
            results[device] = PowerShell(pool).add_script("whoami").invoke()

    threads = [threading.Thread(target=run, args=(name,)) for name in fleet.devices]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == {name: ["lab\\svc-migrator", name] for name in fleet.devices}
