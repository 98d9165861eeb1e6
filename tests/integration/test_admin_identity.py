"""whoami's tables, certutil -store and the Cert: drive, through unmodified pywinrm and pypsrp (item 2 of issue 11).

Layouts: ``tests/lab/outputs/whoami_*.txt`` and ``certutil_store_my.txt``."""

from __future__ import annotations

import pytest

from migrator.lab import boundary
from migrator.lab.cmdlets.certs import entra_device_id, entra_device_thumbprint
from migrator.lab.model import Device, User
from tests.integration.clients import run_as_user, run_cmd, run_ps, runspace_pool, winrm_session
from tests.integration.conftest import LabHandle

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def _hybrid(lab: LabHandle) -> Device:
    return lab.first(lambda d: d.join_type == "hybrid" and d.dc_reachable)


def _columns(header: str, underline: str) -> list[int]:
    """Where each column starts, from the ``=== ===`` underline."""
    starts = [0]
    starts += [
        index + 1 for index, char in enumerate(underline) if char == " " and underline[index + 1 : index + 2] == "="
    ]
    assert header.split() and len(starts) >= 2
    return starts


def test_whoami_groups_priv_and_all_as_the_winrm_admin(lab: LabHandle) -> None:
    """The admin's network-logon token: Administrators (owner), NETWORK, High Mandatory Level, every privilege."""
    session = winrm_session(lab, _hybrid(lab).name)
    code, out, err = run_cmd(session, "whoami", ("/groups",))
    assert (code, err) == (0, "")
    lines = out.split("\r\n")
    assert lines[:4] == ["", "GROUP INFORMATION", "-----------------", ""]
    header, underline = lines[4], lines[5]
    starts = _columns(header, underline)
    assert [header[s:].split("  ")[0].strip() for s in starts] == ["Group Name", "Type", "SID", "Attributes"]
    rows = {line[: starts[1]].rstrip(): line for line in lines[6:] if line}
    assert rows["BUILTIN\\Administrators"][starts[2] :].startswith("S-1-5-32-544")
    assert rows["BUILTIN\\Administrators"].endswith("Enabled group, Group owner")
    assert "NT AUTHORITY\\NETWORK" in rows and "Mandatory Label\\High Mandatory Level" in rows
    assert all(line[starts[1] - 1] == " " for line in rows.values())
    code, out, _ = run_cmd(session, "whoami", ("/priv",))
    assert code == 0 and "PRIVILEGES INFORMATION" in out
    privileges = {line.split()[0]: line.split()[-1] for line in out.split("\r\n")[6:] if line}
    assert privileges["SeDebugPrivilege"] == "Enabled" and privileges["SeChangeNotifyPrivilege"] == "Enabled"
    code, out, _ = run_cmd(session, "whoami", ("/all",))
    titles = [line for line in out.split("\r\n") if line.endswith("INFORMATION")]
    assert code == 0 and titles == [
        "USER INFORMATION",
        "GROUP INFORMATION",
        "PRIVILEGES INFORMATION",
        "USER CLAIMS INFORMATION",
    ]
    assert out.endswith("Kerberos support for Dynamic Access Control on this device has been disabled.\r\n")
    code, _, err = run_cmd(session, "whoami", ("/fo", "csv"))
    assert code == boundary.EXIT_CODE and boundary.PHRASE in err


def test_certutil_store_my_lists_the_entra_device_certificate(lab: LabHandle) -> None:
    """The machine store holds CN=<device id> from MS-Organization-Access; the admin's own store is empty."""
    device = _hybrid(lab)
    session = winrm_session(lab, device.name)
    code, out, _ = run_cmd(session, "certutil", ("-store", "my"))
    lines = out.split("\r\n")
    assert code == 0
    assert lines[:2] == ['My "Personal"', "================ Certificate 0 ================"]
    assert f"Subject: CN={entra_device_id(device)}" in lines
    assert f"Cert Hash(sha1): {entra_device_thumbprint(device).lower()}" in lines
    assert any(line.startswith("Issuer: CN=MS-Organization-Access") for line in lines)
    assert lines[-2] == "CertUtil: -store command completed successfully."
    code, out, _ = run_cmd(session, "certutil", ("-user", "-store", "my"))
    assert (code, out) == (0, 'My "Personal"\r\nCertUtil: -store command completed successfully.\r\n')
    domain_only = lab.first(lambda d: d.join_type == "domain")
    code, out, _ = run_cmd(winrm_session(lab, domain_only.name), "certutil", ("-store", "My"))
    assert (code, out) == (0, 'My "Personal"\r\nCertUtil: -store command completed successfully.\r\n')
    for args in (("-store", "root"), ("-dump",), ("-store",)):
        code, _, err = run_cmd(session, "certutil", args)
        assert code == boundary.EXIT_CODE and boundary.PHRASE in err, args
    code, out, _ = run_cmd(session, "certutil", ("-frobnicate",))
    assert code != 0 and out.startswith("CertUtil: Unknown arg: -frobnicate")


def test_cert_drive_shows_the_same_certificates(lab: LabHandle) -> None:
    """Get-ChildItem Cert:\\LocalMachine\\My agrees with dsregcmd; other stores are refused as not modelled."""
    device = _hybrid(lab)
    with runspace_pool(lab, device.name) as pool:
        result = run_ps(
            pool, "Get-ChildItem Cert:\\LocalMachine\\My | ForEach-Object { $_.Thumbprint + '|' + $_.Subject }"
        )
        assert result.output == [f"{entra_device_thumbprint(device)}|CN={entra_device_id(device)}"]
        assert run_ps(pool, "@(Get-ChildItem Cert:\\CurrentUser\\My).Count").output == [0]
        thumb = entra_device_thumbprint(device)
        assert run_ps(pool, f"Test-Path Cert:\\LocalMachine\\My\\{thumb}").output == [True]
        refused = run_ps(pool, "Get-ChildItem Cert:\\LocalMachine\\Root")
        assert refused.error_ids == [boundary.ERROR_ID]


def _cert_user(lab: LabHandle) -> tuple[Device, User]:
    return next(
        (d, u)
        for d in lab.runtime.fleet.devices
        for u in d.users
        if u.certificates and d.session_of(u) is not None and d.join_type == "hybrid"
    )


def test_the_signed_in_user_sees_their_hello_certificate(lab: LabHandle) -> None:
    """As the user (an Interactive task), certutil -user -store my lists the WHfB authentication certificate in
    the Passport key storage provider; whoami /groups shows the interactive, medium-integrity token."""
    device, user = _cert_user(lab)
    with runspace_pool(lab, device.name) as pool:
        result = run_as_user(pool, user.sid, "certutil -user -store my")
        # Task states as Windows reports them: Running at once, then Ready with the action's exit code.
        assert (result["States"], result["LastTaskResult"]) == ("Running,Ready", 0)
        out = result["Output"]
        assert f"Cert Hash(sha1): {user.certificates[0].thumbprint.lower()}" in out
        assert "  Provider = Microsoft Passport Key Storage Provider" in out
        assert "Template: WHFBAuthentication" in out
        groups = run_as_user(pool, user.sid, "whoami /groups")["Output"]
        assert "NT AUTHORITY\\INTERACTIVE" in groups and "Mandatory Label\\Medium Mandatory Level" in groups
