"""pywinrm and pypsrp's WinRS against the lab: transports, authentication and the cmd shell."""

from __future__ import annotations

import pytest
import requests
import winrm
import winrm.exceptions
from pypsrp.client import Client
from pypsrp.exceptions import AuthenticationError
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan
from winrm.protocol import Protocol

from tests.lab.server.conftest import PASSWORD, Fleet

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def _session(fleet: Fleet, device: str, user: str, password: str, transport: str, https: bool) -> winrm.Session:
    address = fleet.address(device)
    url = f"https://{address}:{fleet.https_port}/wsman" if https else f"http://{address}:{fleet.http_port}/wsman"
    return winrm.Session(
        url,
        auth=(user, password),
        transport=transport,
        server_cert_validation="validate",
        ca_trust_path=str(fleet.server.ca_bundle_path),
    )


def test_pywinrm_ntlm_over_https_validates_the_lab_ca(fleet: Fleet) -> None:
    """run_cmd('hostname') over HTTPS+NTLM verifies the device certificate against the lab CA bundle."""
    result = _session(fleet, "pc-001", "labadmin", PASSWORD, "ntlm", https=True).run_cmd("hostname")
    assert (result.status_code, result.std_out, result.std_err) == (0, b"PC-001\r\n", b"")


def test_pywinrm_ntlm_over_http_uses_message_encryption(fleet: Fleet) -> None:
    """Over HTTP the SOAP bodies are sealed (multipart/encrypted) and run_ps reaches the device decoded."""
    session = _session(fleet, "pc-002", "LAB\\svc-migrator", PASSWORD, "ntlm", https=False)
    result = session.run_ps("Get-Date -Format o")
    assert result.status_code == 0
    assert result.std_out == b"PS> Get-Date -Format o\r\n"
    assert session.protocol.transport.encryption is not None
    device, principal, line = fleet.executor.command_lines[-1]
    assert device == "pc-002"
    assert principal.name == "lab\\svc-migrator"
    assert line.lower().startswith("powershell -encodedcommand ")


def test_exit_code_and_stderr_reach_the_client(fleet: Fleet) -> None:
    """A failing command line returns its exit code and its stderr bytes."""
    result = _session(fleet, "pc-001", "labadmin", PASSWORD, "ntlm", https=True).run_cmd("fail")
    assert result.status_code == 9009
    assert b"is not recognized" in result.std_err


def test_large_stdout_spans_several_receives(fleet: Fleet) -> None:
    """Output bigger than one envelope arrives whole over several Receive responses."""
    result = _session(fleet, "pc-001", "labadmin", PASSWORD, "ntlm", https=True).run_cmd("big", ["300000"])
    assert result.std_out == b"y" * 300000


def test_basic_over_https_with_a_local_account(fleet: Fleet) -> None:
    """Basic works over HTTPS for a local administrator, and the principal is COMPUTER\\user."""
    result = _session(fleet, "pc-001", "labadmin", PASSWORD, "basic", https=True).run_cmd("whoami")
    assert result.std_out == b"pc-001\\labadmin\r\n"


def test_basic_over_http_is_refused(fleet: Fleet) -> None:
    """AllowUnencrypted=false: Basic on HTTP gets a 401 that offers only Negotiate."""
    with pytest.raises(winrm.exceptions.InvalidCredentialsError):
        _session(fleet, "pc-001", "labadmin", PASSWORD, "basic", https=False).run_cmd("hostname")
    response = requests.post(f"http://{fleet.address('pc-001')}:{fleet.http_port}/wsman", data=b"", timeout=5)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Negotiate"


def test_https_offers_negotiate_and_basic(fleet: Fleet) -> None:
    """The 401 on HTTPS lists Negotiate and Basic, as WinRM does with Basic enabled."""
    response = requests.post(
        f"https://{fleet.address('pc-001')}:{fleet.https_port}/wsman",
        data=b"",
        verify=str(fleet.server.ca_bundle_path),
        timeout=5,
    )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Negotiate, Basic realm="WSMAN"'


@pytest.mark.parametrize("transport", ["ntlm", "basic"])
def test_wrong_password_is_refused(fleet: Fleet, transport: str) -> None:
    """A wrong password gets 401, which pywinrm reports as InvalidCredentialsError."""
    with pytest.raises(winrm.exceptions.InvalidCredentialsError):
        _session(fleet, "pc-001", "labadmin", "not-the-password", transport, https=True).run_cmd("hostname")
    assert fleet.executor.command_lines == []


def test_account_that_is_not_admin_is_refused(fleet: Fleet) -> None:
    """Correct credentials of a non-administrator are answered 401 (WinRM's default SDDL)."""
    with pytest.raises(winrm.exceptions.InvalidCredentialsError):
        _session(fleet, "pc-001", "clerk", PASSWORD, "ntlm", https=True).run_cmd("hostname")


def test_pypsrp_execute_cmd_with_upn_over_http(fleet: Fleet) -> None:
    """pypsrp's Client.execute_cmd signs in with a UPN and message encryption."""
    client = Client(
        fleet.address("pc-001"), port=fleet.http_port, ssl=False, username="svc-migrator@lab.example", password=PASSWORD
    )
    assert client.execute_cmd("whoami") == ("lab\\svc-migrator\r\n", "", 0)


def test_pypsrp_wrong_password_raises_authentication_error(fleet: Fleet) -> None:
    """pypsrp sees the 401 as AuthenticationError."""
    wsman = WSMan(
        fleet.address("pc-002"),
        port=fleet.https_port,
        username="labadmin",
        password="wrong",
        cert_validation=str(fleet.server.ca_bundle_path),
    )
    with pytest.raises(AuthenticationError), RunspacePool(wsman) as pool:
        PowerShell(pool).add_script("whoami").invoke()


def test_kerberos_only_client_finds_no_offer(fleet: Fleet) -> None:
    """Kerberos is not offered: a client that only speaks Kerberos finds no usable WWW-Authenticate."""
    response = requests.post(
        f"https://{fleet.address('pc-001')}:{fleet.https_port}/wsman",
        data=b"",
        headers={"Authorization": "Kerberos YIIBAA=="},
        verify=str(fleet.server.ca_bundle_path),
        timeout=5,
    )
    assert response.status_code == 401
    assert "Kerberos" not in response.headers["WWW-Authenticate"]


def test_stdin_sent_before_receive_reaches_the_command(fleet: Fleet) -> None:
    """WinRS Send with End=true delivers stdin to the command, which starts once its input is complete."""
    protocol = Protocol(
        endpoint=f"https://{fleet.address('pc-001')}:{fleet.https_port}/wsman",
        transport="ntlm",
        username="labadmin",
        password=PASSWORD,
        server_cert_validation="validate",
        ca_trust_path=str(fleet.server.ca_bundle_path),
    )
    shell_id = protocol.open_shell()
    command_id = protocol.run_command(shell_id, "hostname")
    protocol.send_command_input(shell_id, command_id, b"line one\r\n", end=True)
    protocol.get_command_output(shell_id, command_id)
    protocol.close_shell(shell_id)
    assert fleet.executor.stdin[-1] == "line one\r\n"
