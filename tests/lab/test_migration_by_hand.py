"""Both documented migration paths driven by hand through the lab's PowerShell and native commands.

No orchestrator: an admin session writes policy with the registry cmdlets, a scheduled task runs certutil in the
user's own context, the simulated user signs out and in, and dsregcmd (run as that user) tells the result.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from migrator.lab.model import Device
from migrator.lab.shell import Principal
from migrator.lab.windows import Lab
from migrator.parse import parse_dsregcmd
from tests.lab.conftest import make_device, make_domain, make_user

GPO = "HKLM:\\SOFTWARE\\Policies\\Microsoft\\PassportForWork"

SET_POLICY = """
param([string]$Path, [string]$Name, [int]$Value)
if (-not (Test-Path -Path $Path)) { New-Item -Path $Path -Force | Out-Null }
New-ItemProperty -Path $Path -Name $Name -Value $Value -PropertyType DWord -Force | Out-Null
"""

REMOVE_POLICY = """
param([string]$Path, [string]$Name)
Remove-ItemProperty -Path $Path -Name $Name -ErrorAction SilentlyContinue
"""

# The user-context pattern of windows-facts §6: an Interactive task for the signed-in user, output to a file.
RUN_AS_USER = """
param([string]$UserId, [string]$Execute, [string]$Arguments)
$name = 'migrator-by-hand'
$action = New-ScheduledTaskAction -Execute $Execute -Argument $Arguments
$principal = New-ScheduledTaskPrincipal -UserId $UserId -LogonType Interactive -RunLevel Limited
Register-ScheduledTask -TaskName $name -Action $action -Principal $principal -Force | Out-Null
try {
    Start-ScheduledTask -TaskName $name
    $waited = 0
    do {
        Start-Sleep -Seconds 1
        $waited++
        $state = (Get-ScheduledTask -TaskName $name).State
    } while ($state -ne 'Ready' -and $waited -lt 60)
    (Get-ScheduledTaskInfo -TaskName $name).LastTaskResult
} finally {
    Unregister-ScheduledTask -TaskName $name -Confirm:$false
}
"""


def _admin(lab: Lab, device: Device, script: str, **parameters: object) -> list[object]:
    result = lab.executor.run_script(device.name, lab.admin_principal(device), script, parameters)  # type: ignore[attr-defined]
    assert result.terminating_error is None, result.terminating_error
    return list(result.output)


def _dsregcmd_as(lab: Lab, device: Device, principal: Principal):  # type: ignore[no-untyped-def]
    result = lab.executor.run_script(device.name, principal, "dsregcmd /status | Out-String")  # type: ignore[attr-defined]
    return parse_dsregcmd("".join(str(o) for o in result.output))


def _delete_as_user(lab: Lab, device: Device, user_id: str) -> int:
    output = _admin(
        lab,
        device,
        RUN_AS_USER,
        UserId=user_id,
        Execute="cmd.exe",
        Arguments="/c certutil -deletehellocontainer > C:\\ProgramData\\delete.txt 2>&1",
    )
    return int(output[-1])  # type: ignore[call-overload]


def test_key_trust_path(lab_of: Callable[..., Lab]) -> None:
    """Key trust: enable cloud trust, the user signs out and in → cloud trust container, nothing deleted."""
    device = make_device(trust="key")
    lab = lab_of(device)
    alice = device.users[0]
    lab.sign_in(device, alice)
    key_id = alice.container.key_id  # type: ignore[union-attr]
    _admin(lab, device, SET_POLICY, Path=GPO, Name="UseCloudTrustForOnPremAuth", Value=1)
    assert lab.policy(device).effective == "cloud"
    lab.sign_out(device, alice)
    lab.sign_in(device, alice)
    status = _dsregcmd_as(lab, device, lab.user_principal(device, alice))
    assert status.ngc_set is True and (status.ngc_key_id or "").upper() == key_id.upper()
    assert status.on_prem_tgt is True and status.cloud_tgt is True
    assert alice.container is not None and alice.container.trust == "cloud"
    assert alice.counters.container_deletions == 0


def test_certificate_trust_path(lab_of: Callable[..., Lab]) -> None:
    """Cert trust: disable the cert policy, enable cloud trust, delete as the user, sign out/in → new cloud key."""
    device = make_device(trust="cert")
    lab = lab_of(device)
    alice = device.users[0]
    lab.sign_in(device, alice)
    old_key = alice.container.key_id  # type: ignore[union-attr]
    _admin(lab, device, REMOVE_POLICY, Path=GPO, Name="UseCertificateForOnPremAuth")
    _admin(lab, device, SET_POLICY, Path=GPO, Name="UseCloudTrustForOnPremAuth", Value=1)
    assert _delete_as_user(lab, device, alice.qualified_name) == 0
    assert "completed successfully" in device.files["c:\\programdata\\delete.txt"].content
    assert alice.counters.container_deletions == 1
    ran_as = {c.principal for c in device.counters.commands if "deletehellocontainer" in c.command}
    assert ran_as == {alice.qualified_name.lower()}
    lab.sign_out(device, alice)
    outcome = lab.sign_in(device, alice)
    assert outcome.provisioned == "cloud"
    lab.unlock(device, alice)  # the first Hello unlock brings the cloud Kerberos tickets
    status = _dsregcmd_as(lab, device, lab.user_principal(device, alice))
    assert status.ngc_set is True and status.ngc_key_id != old_key
    assert status.on_prem_tgt is True
    assert alice.container is not None and alice.container.trust == "cloud"
    assert not device.tasks  # the task was unregistered


def test_cert_policy_left_on_reprovisions_certificate_trust(lab_of: Callable[..., Lab]) -> None:
    """Forgetting to disable the cert policy: deletion just makes Windows provision certificate trust again."""
    device = make_device(trust="cert")
    lab = lab_of(device)
    alice = device.users[0]
    lab.sign_in(device, alice)
    _admin(lab, device, SET_POLICY, Path=GPO, Name="UseCloudTrustForOnPremAuth", Value=1)
    assert _delete_as_user(lab, device, alice.qualified_name) == 0
    lab.sign_out(device, alice)
    assert lab.sign_in(device, alice).provisioned == "cert"


def test_deletion_from_the_admin_session_fails(lab_of: Callable[..., Lab]) -> None:
    """certutil -deletehellocontainer over the admin's network logon fails with NTE_PERM and deletes nothing."""
    device = make_device(trust="cert")
    lab = lab_of(device)
    output = _admin(lab, device, "certutil -deletehellocontainer 2>&1 | Out-String; $LASTEXITCODE")
    assert "0x80090010" in str(output[0]) and output[-1] == -2146893808
    assert device.users[0].counters.container_deletions == 0


@pytest.mark.parametrize("entra_kerberos", [True, False])
def test_hybrid_failure_paths(lab_of: Callable[..., Lab], entra_kerberos: bool) -> None:
    """No DC: the new container's first PIN sign-in fails; no Entra Kerberos: provisioning is not launched."""
    bob = make_user("bob", 1102, "cert")
    device = make_device(trust="cert", users=[bob])
    lab = lab_of(device, domains=[make_domain(entra_kerberos=entra_kerberos)])
    lab.sign_in(device, bob)
    _admin(lab, device, REMOVE_POLICY, Path=GPO, Name="UseCertificateForOnPremAuth")
    _admin(lab, device, SET_POLICY, Path=GPO, Name="UseCloudTrustForOnPremAuth", Value=1)
    assert _delete_as_user(lab, device, bob.qualified_name) == 0
    lab.sign_out(device, bob)
    outcome = lab.sign_in(device, bob)
    if not entra_kerberos:
        assert outcome.provisioning_event == 360 and bob.container is None
        return
    assert outcome.provisioned == "cloud"
    lab.sign_out(device, bob)
    lab.set_dc_reachable(device, False)
    failed = lab.sign_in(device, bob)
    assert failed.hello_failed and failed.method == "password"
    nltest = _admin(lab, device, "nltest /dsgetdc:corp.contoso.com 2>&1 | Out-String; $LASTEXITCODE")
    assert "ERROR_NO_SUCH_DOMAIN" in str(nltest[0]) and nltest[-1] == 1355
