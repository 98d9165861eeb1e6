"""What Ansible sends, reproduced with unmodified pywinrm and pypsrp (Ansible itself is not needed), and the
PowerShell behaviours it relies on: ``$input`` from WinRS stdin, ``exit``/``$Host.SetShouldExit`` reaching the
exit code and the client's host, and the information stream (items 5 and 7 of issue 11).

The request sequences follow ansible-core's connection plugins: ``winrm.py`` (``open_shell(codepage=65001)``,
``run_command(..., console_mode_stdin=...)``, WinRS Send of the module payload, ``get_command_output_raw`` until
done, ``cleanup_command``, ``close_shell``) and ``psrp.py`` (a RunspacePool with a PSHost, the decoded
``-EncodedCommand`` script plus ``exit $LASTEXITCODE`` run with ``use_local_scope``, the rc read from the host);
the command line and bootstrap are the powershell shell plugin's ``_encode_script`` and
``bootstrap_wrapper.ps1``."""

from __future__ import annotations

import pytest
from pypsrp.host import PSHost
from pypsrp.powershell import PowerShell, RunspacePool
from winrm.protocol import Protocol

from tests.integration.clients import encoded, run_cmd, run_ps, runspace_pool, winrm_session, wsman
from tests.integration.conftest import LabHandle

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

COMMON_ARGS = ["-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Unrestricted"]
BOOTSTRAP = r"""&chcp.com 65001 > $null
if ($PSVersionTable.PSVersion -lt [Version]"3.0") {
    '{"failed":true,"msg":"Ansible requires PowerShell v3.0 or newer"}'; exit 1
}
$exec_wrapper_str = $input | Out-String
$split_parts = $exec_wrapper_str.Split(@("`0`0`0`0"), 2, [StringSplitOptions]::RemoveEmptyEntries)
If (-not $split_parts.Length -eq 2) { throw "invalid payload" }
Set-Variable -Name json_raw -Value $split_parts[1]
$exec_wrapper = [ScriptBlock]::Create($split_parts[0])
&$exec_wrapper"""


def _encode_script(script: str) -> list[str]:
    """ansible's powershell shell plugin, ``_encode_script(strict_mode=False, preserve_rc=False)``."""
    text = "\n".join(line.strip() for line in script.splitlines() if line.strip())
    return [*COMMON_ARGS, "-EncodedCommand", encoded(text)]


def _winrm_exec(protocol: Protocol, args: list[str], stdin: bytes | None = None) -> tuple[int, bytes, bytes]:
    """ansible's winrm.py ``_winrm_exec``: one command in an open shell, stdin sent as WinRS Send."""
    shell_id = protocol.open_shell(codepage=65001)
    try:
        command_id = protocol.run_command(shell_id, "PowerShell", args, console_mode_stdin=stdin is None)
        try:
            if stdin is not None:
                protocol.send_command_input(shell_id, command_id, stdin, end=True)
            stdout, stderr, done, code = b"", b"", False, 0
            while not done:
                out, err, code, done = protocol.get_command_output_raw(shell_id, command_id)
                stdout, stderr = stdout + out, stderr + err
            return code, stdout, stderr
        finally:
            protocol.cleanup_command(shell_id, command_id)
    finally:
        protocol.close_shell(shell_id)


def _device(lab: LabHandle) -> str:
    return lab.runtime.fleet.devices[1].name


def test_ansible_raw_over_winrm(lab: LabHandle) -> None:
    """`raw: hostname; whoami` and a failing `raw: exit 3`, as ansible's winrm plugin sends them."""
    protocol = winrm_session(lab, _device(lab)).protocol
    code, out, err = _winrm_exec(protocol, _encode_script("hostname\nwhoami"))
    assert (code, err) == (0, b"")
    assert out.decode().split("\r\n")[:2] == [_device(lab), lab.credentials.username.lower()]
    code, _, _ = _winrm_exec(protocol, _encode_script("cmd /c exit 3\nexit $LASTEXITCODE"))
    assert code == 3


def test_ansible_module_bootstrap_reads_its_payload_from_stdin(lab: LabHandle) -> None:
    """The module wrapper arrives on stdin: ``$input`` has it, the exec wrapper runs with ``$json_raw``."""
    protocol = winrm_session(lab, _device(lab)).protocol
    wrapper = "$j = $json_raw | ConvertFrom-Json; 'module ' + $j.module_entry; exit 0"
    payload = f"{wrapper}\0\0\0\0" + '{"module_entry": "win_ping"}'
    code, out, err = _winrm_exec(protocol, _encode_script(BOOTSTRAP), stdin=payload.encode())
    assert (code, out, err) == (0, b"module win_ping\r\n", b"")


def test_ansible_raw_over_psrp_reads_the_rc_from_the_host(lab: LabHandle) -> None:
    """ansible's psrp plugin: the script in the runspace with ``exit $LASTEXITCODE``; rc through SetShouldExit."""
    for script, output, rc in (("hostname", [_device(lab)], 0), ("cmd /c exit 5", [], 5)):
        host = PSHost(None, None, False, "Ansible PSRP Host", None, None, "1.0")
        with RunspacePool(wsman(lab, _device(lab)), host=host) as pool:
            ps = PowerShell(pool)
            ps.add_script(f"{script}\nexit $LASTEXITCODE", use_local_scope=True)
            result = ps.invoke()
        assert [str(line) for line in result] == output
        assert host.rc == rc, script


def test_set_should_exit_ends_the_script_with_its_code(lab: LabHandle) -> None:
    """``$Host.SetShouldExit(3)``: powershell.exe exits 3 and nothing after it runs."""
    script = "'before'; $Host.SetShouldExit(3); 'after'"
    code, out, err = run_cmd(winrm_session(lab, _device(lab)), "powershell.exe", ("-EncodedCommand", encoded(script)))
    assert (code, out, err) == (3, "before\r\n", "")


def test_information_stream_records(lab: LabHandle) -> None:
    """Write-Information records arrive (even under SilentlyContinue); Write-Host's carry PSHOST and their source."""
    with runspace_pool(lab, _device(lab)) as pool:
        result = run_ps(pool, "Write-Information 'quiet' -Tags a,b; Write-Host 'shown'; 'out'")
    assert result.output == ["out"]
    quiet, shown = result.information
    assert (str(quiet.message_data), quiet.source, list(quiet.tags)) == ("quiet", "Write-Information", ["a", "b"])
    assert (str(shown.message_data), shown.source, list(shown.tags)) == ("shown", "Write-Host", ["PSHOST"])
    assert shown.computer == _device(lab)


def test_ansible_module_wrapper_stops_at_an_explicit_refusal(lab: LabHandle) -> None:
    """Past the bootstrap, Ansible's exec wrapper asks for the language mode: the lab says it does not model it,
    on stderr and with a failing exit code, never a misleading error about the payload."""
    protocol = winrm_session(lab, _device(lab)).protocol
    wrapper = "if ($ExecutionContext.SessionState.LanguageMode -ne 'FullLanguage') { 'constrained' }; 'ran'"
    payload = f"{wrapper}\0\0\0\0" + '{"module_entry": "win_ping"}'
    code, out, err = _winrm_exec(protocol, _encode_script(BOOTSTRAP), stdin=payload.encode())
    assert code == 1 and out == b""
    assert b"is not modelled by the lab (lab/ps/intrinsics)" in err and b"NotModelledByLab" in err
