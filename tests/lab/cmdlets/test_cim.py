"""CIM/WMI classes from the device model, Get-Tpm, Get-LocalUser, Get-Process, Test-ComputerSecureChannel."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from migrator.lab.executor import DeviceHost
from migrator.lab.model import Device
from migrator.lab.shell import AppliedPolicy, PowerShellError
from migrator.lab.windows import Lab
from tests.lab.cmdlets.conftest import run
from tests.lab.conftest import make_device


def test_win32_operating_system(admin: DeviceHost, device: Device) -> None:
    """Win32_OperatingSystem carries the model's caption and build, with CIM type names."""
    [os] = run(admin, "Get-CimInstance", ClassName="Win32_OperatingSystem").output
    assert os["Caption"] == "Microsoft Windows 10 Enterprise"
    assert os["Version"] == "10.0.19045" and os["BuildNumber"] == "19045"
    assert os["OSArchitecture"] == "64-bit" and os["ProductType"] == 1 and os["CSName"] == "PC-0001"
    assert os.type_names[0] == "Microsoft.Management.Infrastructure.CimInstance#root/cimv2/Win32_OperatingSystem"
    assert "Microsoft.Management.Infrastructure.CimInstance#Win32_OperatingSystem" in os.type_names


def test_win32_computer_system_domain_and_console_user(admin: DeviceHost) -> None:
    """A hybrid device is PartOfDomain with its DNS domain; UserName is the console user."""
    [cs] = run(admin, "gcim", ClassName="Win32_ComputerSystem").output
    assert cs["Domain"] == "corp.contoso.com" and cs["PartOfDomain"] is True and cs["DomainRole"] == 1
    assert cs["UserName"] == "CORP\\alice"
    assert cs["Manufacturer"] == "Dell Inc." and cs["Model"] == "Latitude 7440"


def test_workgroup_device_reports_workgroup(lab_of: Callable[..., Lab]) -> None:
    """An Entra-joined (not domain-joined) device reports Domain WORKGROUP and no console user."""
    device = make_device(join_type="entra", trust="cloud")
    lab = lab_of(device)
    host = DeviceHost(lab, device, lab.admin_principal(device))
    [cs] = run(host, "Get-CimInstance", ClassName="Win32_ComputerSystem").output
    assert cs["Domain"] == "WORKGROUP" and cs["PartOfDomain"] is False and cs["UserName"] is None


def test_user_profiles_with_filter(admin: DeviceHost) -> None:
    """Win32_UserProfile lists profiles; a WQL -Filter selects the loaded, non-special ones."""
    rows = run(admin, "Get-CimInstance", ClassName="Win32_UserProfile", Filter="Special = False AND Loaded = TRUE")
    assert [r["LocalPath"] for r in rows.output] == ["C:\\Users\\migrator-admin", "C:\\Users\\alice"]
    like = run(admin, "Get-CimInstance", Query="SELECT * FROM Win32_UserProfile WHERE LocalPath LIKE '%\\\\bob'")
    assert [r["SID"] for r in like.output] == ["S-1-5-21-1004336348-1177238915-682003330-1102"]


def test_invalid_class_and_namespace(admin: DeviceHost) -> None:
    """Unknown classes and namespaces fail like CIM does (HRESULT 0x80041010 / 0x8004100e)."""
    with pytest.raises(PowerShellError) as bad_class:
        run(admin, "Get-CimInstance", ClassName="Win32_Nope")
    assert bad_class.value.record.message == "Invalid class "
    assert bad_class.value.record.fully_qualified_error_id == (
        "HRESULT 0x80041010,Microsoft.Management.Infrastructure.CimCmdlets.GetCimInstanceCommand"
    )
    with pytest.raises(PowerShellError) as bad_ns:
        run(admin, "Get-CimInstance", ClassName="Win32_OperatingSystem", Namespace="root/nope")
    assert bad_ns.value.record.fully_qualified_error_id.startswith("HRESULT 0x8004100e,")


def test_win32_tpm_needs_elevation_and_its_namespace(admin: DeviceHost, alice: DeviceHost) -> None:
    """Win32_Tpm is only in root/cimv2/Security/MicrosoftTpm and only for administrators."""
    [tpm] = run(admin, "Get-CimInstance", ClassName="Win32_Tpm", Namespace="root/cimv2/Security/MicrosoftTpm").output
    assert tpm["ManufacturerIdTxt"] == "IFX" and tpm["ManufacturerId"] == 0x49465800
    assert tpm["IsActivated_InitialValue"] is True
    with pytest.raises(PowerShellError):
        run(admin, "Get-CimInstance", ClassName="Win32_Tpm")
    with pytest.raises(PowerShellError) as denied:
        run(alice, "Get-CimInstance", ClassName="Win32_Tpm", Namespace="root\\cimv2\\Security\\MicrosoftTpm")
    assert denied.value.record.category == "PermissionDenied"


def test_get_wmi_object_uses_dmtf_dates_and_system_properties(admin: DeviceHost) -> None:
    """Get-WmiObject returns ManagementObjects: __CLASS, __SERVER and DMTF datetime strings."""
    [os] = run(admin, "gwmi", Class="Win32_OperatingSystem").output
    assert os["__CLASS"] == "Win32_OperatingSystem" and os["__SERVER"] == "PC-0001"
    assert isinstance(os["LastBootUpTime"], str) and os["LastBootUpTime"].endswith(".000000+000")
    assert os.type_names[0] == "System.Management.ManagementObject#root\\cimv2\\Win32_OperatingSystem"
    with pytest.raises(PowerShellError) as bad:
        run(admin, "Get-WmiObject", Class="Win32_Nope")
    assert bad.value.record.message == 'Invalid class "Win32_Nope"'


def test_get_tpm_elevated_and_not(admin: DeviceHost, alice: DeviceHost) -> None:
    """Get-Tpm answers the admin and refuses a standard user."""
    [tpm] = run(admin, "Get-Tpm").output
    assert tpm["TpmPresent"] is True and tpm["TpmReady"] is True and tpm["ManufacturerIdTxt"] == "IFX"
    with pytest.raises(PowerShellError) as denied:
        run(alice, "Get-Tpm")
    assert denied.value.record.fully_qualified_error_id == (
        "Microsoft.Tpm.Commands.TpmWmiException,Microsoft.Tpm.Commands.GetTpmCommand"
    )


def test_a_broken_tpm_provider_fails_even_for_the_admin(admin: DeviceHost, device: Device) -> None:
    """With the TPM provider failing, Get-Tpm and Win32_Tpm throw for an administrator too: presence is unknown."""
    device.tpm.provider_error = "The TPM provider could not be loaded."
    with pytest.raises(PowerShellError) as failed:
        run(admin, "Get-Tpm")
    assert failed.value.record.message == "The TPM provider could not be loaded."
    with pytest.raises(PowerShellError):
        run(admin, "Get-CimInstance", Namespace="root/cimv2/Security/MicrosoftTpm", ClassName="Win32_Tpm")


def test_get_local_user_and_processes(admin: DeviceHost) -> None:
    """Built-in local accounts exist; explorer.exe runs in alice's session and GetOwner names her."""
    names = [u["Name"] for u in run(admin, "Get-LocalUser").output]
    assert names == ["Administrator", "DefaultAccount", "Guest", "WDAGUtilityAccount"]
    missing = run(admin, "Get-LocalUser", Name=["nobody"])
    assert missing.error.fully_qualified_error_id == "UserNotFound,Microsoft.PowerShell.Commands.GetLocalUserCommand"
    [explorer] = run(admin, "Get-CimInstance", ClassName="Win32_Process", Filter="Name = 'explorer.exe'").output
    [owner] = run(admin, "Invoke-CimMethod", InputObject=explorer, MethodName="GetOwner").output
    assert (owner["Domain"], owner["User"], owner["ReturnValue"]) == ("CORP", "alice", 0)
    [proc] = run(admin, "Get-Process", Name=["explorer"], IncludeUserName=True).output
    assert proc["UserName"] == "CORP\\alice"
    assert run(admin, "Get-Process", Name=["nothere"]).error.fully_qualified_error_id.startswith(
        "NoProcessFoundForGivenName,"
    )


def test_secure_channel(admin: DeviceHost, device: Device, lab_of: Callable[..., Lab]) -> None:
    """True with a reachable DC (msdocs verbose text), False without one, an error off the domain."""
    ok = run(admin, "Test-ComputerSecureChannel")
    assert ok.output == [True]
    assert ok.ctx.verbose == [
        'Performing operation "Test-ComputerSecureChannel" on Target "PC-0001".',
        "\"The secure channel between 'PC-0001' and 'corp.contoso.com' is alive and working correctly.\"",
    ]
    device.dc_reachable = False
    assert run(admin, "Test-ComputerSecureChannel").output == [False]
    entra = make_device(name="PC-0002", join_type="entra", trust="cloud")
    lab = lab_of(entra)
    with pytest.raises(PowerShellError) as caught:
        run(DeviceHost(lab, entra, lab.admin_principal(entra)), "Test-ComputerSecureChannel")
    assert caught.value.record.fully_qualified_error_id == (
        "ComputerNotInDomain,Microsoft.PowerShell.Commands.TestComputerSecureChannelCommand"
    )


def test_rsop_names_the_gpo_behind_each_computer_value(lab: Lab, device: Device, admin: DeviceHost) -> None:
    """root\\RSOP\\Computer: each PassportForWork value the last policy processing set, with the winning GPO's
    id (RSOP_RegistryPolicySetting, precedence 1, a DWORD as 4 little-endian bytes) and that GPO (RSOP_GPO);
    nothing before any processing. Administrators only, as on Windows."""
    namespace = "root\\rsop\\computer"
    assert run(admin, "Get-CimInstance", Namespace=namespace, ClassName="RSOP_RegistryPolicySetting").output == []
    dn = "CN={6AC1786C-016F-11D2-945F-00C04FB984F9},CN=Policies,CN=System,DC=corp,DC=contoso,DC=com"
    lab.applied_policy[device.name] = AppliedPolicy(
        computer={"UseCertificateForOnPremAuth": 1},
        users={},
        gpos=("WHfB cert trust",),
        groups=(),
        computer_from={"UseCertificateForOnPremAuth": ("WHfB cert trust", dn)},
    )
    [setting] = run(admin, "Get-CimInstance", Namespace=namespace, ClassName="RSOP_RegistryPolicySetting").output
    assert setting["registryKey"] == "SOFTWARE\\Policies\\Microsoft\\PassportForWork"
    assert (setting["valueName"], setting["GPOID"], setting["precedence"]) == ("UseCertificateForOnPremAuth", dn, 1)
    assert list(setting["value"]) == [1, 0, 0, 0] and setting["valueType"] == 4
    [gpo] = run(admin, "Get-CimInstance", Namespace=namespace, ClassName="RSOP_GPO").output
    assert (gpo["id"], gpo["name"]) == (dn, "WHfB cert trust")
    alice = DeviceHost(lab, device, lab.user_principal(device, device.users[0]))
    with pytest.raises(PowerShellError, match="Access denied"):
        run(alice, "Get-CimInstance", Namespace=namespace, ClassName="RSOP_GPO", ErrorAction="Stop")
