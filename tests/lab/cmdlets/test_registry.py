"""Registry provider cmdlets: values, keys, HKCU per principal, value types and Windows' exact errors."""

from __future__ import annotations

import pytest

from migrator.lab import policy
from migrator.lab.executor import DeviceHost
from migrator.lab.model import Device
from migrator.lab.shell import PowerShellError
from migrator.lab.windows import ADMIN_SID, SYSTEM_SID
from tests.lab.cmdlets.conftest import run

PFW = "HKLM:\\SOFTWARE\\Policies\\Microsoft\\PassportForWork"


def test_get_item_property_returns_values_and_provider_properties(admin: DeviceHost) -> None:
    """Get-ItemProperty emits the key's values then PSPath, PSParentPath, PSChildName, PSDrive, PSProvider."""
    result = run(admin, "Get-ItemProperty", Path=[PFW])
    assert result.errors == []
    [obj] = result.output
    assert list(obj.properties) == [
        "Enabled",
        "RequireSecurityDevice",
        "UseCertificateForOnPremAuth",
        "PSPath",
        "PSParentPath",
        "PSChildName",
        "PSDrive",
        "PSProvider",
    ]
    assert obj["Enabled"] == 1
    assert (
        obj["PSPath"]
        == "Microsoft.PowerShell.Core\\Registry::HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\PassportForWork"
    )
    assert (
        obj["PSParentPath"] == "Microsoft.PowerShell.Core\\Registry::HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft"
    )
    assert obj["PSChildName"] == "PassportForWork"
    assert obj["PSDrive"] == "HKLM"
    assert obj["PSProvider"] == "Microsoft.PowerShell.Core\\Registry"
    assert obj.type_names[0] == "System.Management.Automation.PSCustomObject"


def test_get_item_property_missing_key_is_path_not_found(admin: DeviceHost) -> None:
    """A missing key gives the non-terminating ItemNotFoundException with the path as typed."""
    result = run(admin, "gp", Path=["HKLM:\\SOFTWARE\\Foo"])
    assert result.output == []
    error = result.error
    assert error.message == "Cannot find path 'HKLM:\\SOFTWARE\\Foo' because it does not exist."
    assert error.fully_qualified_error_id == "PathNotFound,Microsoft.PowerShell.Commands.GetItemPropertyCommand"
    assert error.category == "ObjectNotFound"
    assert error.exception_type == "System.Management.Automation.ItemNotFoundException"
    assert error.target_object == "HKLM:\\SOFTWARE\\Foo"


def test_get_item_property_value_missing_property_is_argument_exception(admin: DeviceHost) -> None:
    """A missing value names the long hive path, as the registry provider's PSArgumentException does."""
    result = run(admin, "Get-ItemPropertyValue", Path=[PFW], Name=["UseCloudTrustForOnPremAuth"])
    assert result.output == []
    error = result.error
    assert error.message == (
        "Property UseCloudTrustForOnPremAuth does not exist at path "
        "HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\PassportForWork."
    )
    assert error.fully_qualified_error_id == (
        "System.Management.Automation.PSArgumentException,Microsoft.PowerShell.Commands.GetItemPropertyValueCommand"
    )
    assert error.category == "InvalidArgument"
    assert error.exception_type == "System.Management.Automation.PSArgumentException"


def test_get_item_property_value_returns_raw_values(admin: DeviceHost) -> None:
    """Get-ItemPropertyValue returns the data itself, one object per name."""
    result = run(admin, "Get-ItemPropertyValue", Path=[PFW], Name=["Enabled", "RequireSecurityDevice"])
    assert result.output == [1, 1]


def test_key_without_values_yields_nothing(admin: DeviceHost, device: Device) -> None:
    """Get-ItemProperty on a key without values produces no object and no error."""
    device.registry.create_key("HKLM\\SOFTWARE\\Empty")
    result = run(admin, "Get-ItemProperty", Path=["HKLM:\\SOFTWARE\\Empty"])
    assert result.output == [] and result.errors == []


def test_named_property_missing_writes_error_and_keeps_found_ones(admin: DeviceHost) -> None:
    """-Name with one existing and one missing value emits the found one and an error for the other."""
    result = run(admin, "Get-ItemProperty", Path=[PFW], Name=["Enabled", "Nope"])
    [obj] = result.output
    assert next(iter(obj.properties)) == "Enabled" and "Nope" not in obj
    assert result.error.fully_qualified_error_id.startswith("System.Management.Automation.PSArgumentException,")


@pytest.mark.parametrize(
    ("host_name", "sid"),
    [("admin", ADMIN_SID), ("system", SYSTEM_SID), ("alice", "S-1-5-21-1004336348-1177238915-682003330-1101")],
)
def test_hkcu_is_the_running_principals_hive(
    host_name: str, sid: str, request: pytest.FixtureRequest, device: Device
) -> None:
    """HKCU maps to HKU\\<SID> of whoever runs the script: admin, SYSTEM and users each have their own."""
    host: DeviceHost = request.getfixturevalue(host_name)
    run(host, "New-Item", Path=["HKCU:\\Software\\Migrator"], Force=True)
    run(host, "Set-ItemProperty", Path=["HKCU:\\Software\\Migrator"], Name="Who", Value=host_name)
    assert device.registry.read(f"HKU\\{sid}\\Software\\Migrator", "Who") == host_name
    result = run(host, "Get-ItemProperty", Path=["HKCU:\\Software\\Migrator"])
    assert result.output[0]["Who"] == host_name
    assert result.output[0]["PSPath"] == "Microsoft.PowerShell.Core\\Registry::HKEY_CURRENT_USER\\Software\\Migrator"
    assert result.output[0]["PSDrive"] == "HKCU"


def test_hku_is_not_a_drive_but_the_provider_path_works(admin: DeviceHost, device: Device) -> None:
    """HKU: is not a default drive in Windows PowerShell 5.1; Registry::HKEY_USERS\\<SID> is always there."""
    sid = device.users[0].sid
    device.registry.set_value(f"HKU\\{sid}\\{policy.GPO_USER_SUBKEY}", "Enabled", 1, "REG_DWORD")
    bad = run(admin, "Get-ItemProperty", Path=[f"HKU:\\{sid}\\{policy.GPO_USER_SUBKEY}"])
    assert bad.error.message == "Cannot find drive. A drive with the name 'HKU' does not exist."
    assert bad.error.fully_qualified_error_id == "DriveNotFound,Microsoft.PowerShell.Commands.GetItemPropertyCommand"
    assert bad.error.exception_type == "System.Management.Automation.DriveNotFoundException"
    good = run(admin, "Get-ItemProperty", Path=[f"Registry::HKEY_USERS\\{sid}\\{policy.GPO_USER_SUBKEY}"])
    [obj] = good.output
    assert obj["Enabled"] == 1
    assert "PSDrive" not in obj
    assert obj["PSPath"].startswith("Microsoft.PowerShell.Core\\Registry::HKEY_USERS\\S-1-5-21-")


@pytest.mark.parametrize(
    ("kind", "value", "reg_type", "expected"),
    [
        ("DWord", 1, "REG_DWORD", 1),
        ("DWord", "0x10", "REG_DWORD", 16),
        ("DWord", -1, "REG_DWORD", -1),
        ("QWord", 2**40, "REG_QWORD", 2**40),
        ("String", "hello", "REG_SZ", "hello"),
        ("ExpandString", "%SystemRoot%\\system32", "REG_EXPAND_SZ", "C:\\Windows\\system32"),
        ("MultiString", ["a", "b"], "REG_MULTI_SZ", ["a", "b"]),
        ("Binary", [1, 2, 255], "REG_BINARY", b"\x01\x02\xff"),
        ("Binary", b"\x00\x01", "REG_BINARY", b"\x00\x01"),
    ],
)
def test_value_types_round_trip(
    admin: DeviceHost, device: Device, kind: str, value: object, reg_type: str, expected: object
) -> None:
    """New-ItemProperty -PropertyType stores the REG_* type; Get-ItemPropertyValue returns PowerShell's view."""
    run(admin, "New-Item", Path=["HKLM:\\SOFTWARE\\Types"], Force=True)
    created = run(admin, "New-ItemProperty", Path=["HKLM:\\SOFTWARE\\Types"], Name="V", PropertyType=kind, Value=value)
    assert created.errors == []
    stored = device.registry.get_value("HKLM\\SOFTWARE\\Types", "V")
    assert stored is not None and stored.type == reg_type
    assert run(admin, "Get-ItemPropertyValue", Path=["HKLM:\\SOFTWARE\\Types"], Name=["V"]).output == [expected]


def test_set_item_property_keeps_type_and_creates_missing_values(admin: DeviceHost, device: Device) -> None:
    """Set-ItemProperty keeps an existing value's type and infers DWORD for a new integer value."""
    run(admin, "Set-ItemProperty", Path=[PFW], Name="Enabled", Value="0")
    enabled = device.registry.get_value(policy.GPO_KEY, "Enabled")
    assert enabled is not None and enabled.type == "REG_DWORD" and enabled.coerced() == 0
    run(admin, "Set-ItemProperty", Path=[PFW], Name="UseCloudTrustForOnPremAuth", Value=1)
    cloud = device.registry.get_value(policy.GPO_KEY, "UseCloudTrustForOnPremAuth")
    assert cloud is not None and cloud.type == "REG_DWORD"
    run(admin, "sp", Path=[PFW], Name="Note", Value="text", Type="ExpandString")
    note = device.registry.get_value(policy.GPO_KEY, "Note")
    assert note is not None and note.type == "REG_EXPAND_SZ"


def test_set_item_property_on_missing_key_fails(admin: DeviceHost) -> None:
    """Set-ItemProperty does not create keys: PathNotFound from SetItemPropertyCommand."""
    result = run(admin, "Set-ItemProperty", Path=["HKLM:\\SOFTWARE\\Nope"], Name="X", Value=1)
    assert result.error.fully_qualified_error_id == "PathNotFound,Microsoft.PowerShell.Commands.SetItemPropertyCommand"


def test_new_item_property_refuses_existing_value_without_force(admin: DeviceHost, device: Device) -> None:
    """An existing value gives "The property already exists." (IOException); -Force replaces it, type too."""
    result = run(admin, "New-ItemProperty", Path=[PFW], Name="Enabled", Value=0, PropertyType="DWord")
    error = result.error
    assert error.message == "The property already exists."
    assert (
        error.fully_qualified_error_id == "System.IO.IOException,Microsoft.PowerShell.Commands.NewItemPropertyCommand"
    )
    assert error.category == "ResourceExists"
    assert error.target_object == "HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\PassportForWork"
    forced = run(admin, "New-ItemProperty", Path=[PFW], Name="Enabled", Value="0", PropertyType="String", Force=True)
    assert forced.output[0]["Enabled"] == "0"
    value = device.registry.get_value(policy.GPO_KEY, "Enabled")
    assert value is not None and value.type == "REG_SZ"


def test_new_item_property_bad_dword_is_a_write_error(admin: DeviceHost) -> None:
    """A DWord value that is not a number is refused as PowerShell's conversion refuses it."""
    result = run(admin, "New-ItemProperty", Path=[PFW], Name="X", Value="abc", PropertyType="DWord")
    assert result.error.message.startswith('Cannot convert value "abc" to type "System.Int32".')
    assert result.error.category == "WriteError"


def test_new_item_creates_keys_and_returns_a_registry_key(admin: DeviceHost, device: Device) -> None:
    """New-Item returns a RegistryKey object; without -Force the parent must exist and the key must not."""
    missing_parent = run(admin, "New-Item", Path=["HKLM:\\SOFTWARE\\A\\B"])
    assert missing_parent.error.message == "The registry key at the specified path does not exist."
    created = run(admin, "ni", Path=["HKLM:\\SOFTWARE\\A\\B"], Force=True)
    [key] = created.output
    assert key.type_names[0] == "Microsoft.Win32.RegistryKey"
    assert key["Name"] == "HKEY_LOCAL_MACHINE\\SOFTWARE\\A\\B"
    assert key["PSChildName"] == "B"
    assert key["Property"] == [] and key["SubKeyCount"] == 0
    assert device.registry.key_exists("HKLM\\SOFTWARE\\A\\B")
    again = run(admin, "New-Item", Path=["HKLM:\\SOFTWARE\\A"], Name="B")
    assert again.error.message == "A key at this path already exists."
    assert again.error.fully_qualified_error_id == "System.IO.IOException,Microsoft.PowerShell.Commands.NewItemCommand"


def test_new_item_force_on_existing_key_recreates_it_empty(admin: DeviceHost, device: Device) -> None:
    """The registry provider removes an existing key before New-Item -Force recreates it (values are lost)."""
    run(admin, "New-Item", Path=[PFW], Force=True)
    assert list(device.registry.values(policy.GPO_KEY)) == []


def test_get_item_and_get_child_item_on_keys(admin: DeviceHost, device: Device) -> None:
    """Get-Item shows Property names; Get-ChildItem lists subkeys, with wildcards too."""
    tenant = "8e2a1b4c-3f5d-4e6a-9b7c-1d2e3f4a5b6c"
    device.registry.set_value(policy.mdm_device_key(tenant), "UsePassportForWork", 1, "REG_DWORD")
    [key] = run(admin, "Get-Item", Path=[PFW]).output
    assert key["Property"] == ["Enabled", "RequireSecurityDevice", "UseCertificateForOnPremAuth"]
    assert key["ValueCount"] == 3
    children = run(admin, "gci", Path=["HKLM:\\SOFTWARE\\Microsoft\\Policies\\PassportForWork"]).output
    assert [c["PSChildName"] for c in children] == [tenant]
    matched = run(
        admin, "Get-ChildItem", Path=["HKLM:\\SOFTWARE\\Microsoft\\Policies\\PassportForWork\\*\\Device"]
    ).output
    assert [c["Name"] for c in matched] == [
        f"HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Policies\\PassportForWork\\{tenant}\\Device\\Policies"
    ]


def test_remove_item_property_and_remove_item(admin: DeviceHost, device: Device) -> None:
    """Remove-ItemProperty deletes values; Remove-Item needs -Recurse for a key with subkeys."""
    run(admin, "Remove-ItemProperty", Path=[PFW], Name=["UseCertificateForOnPremAuth"])
    assert device.registry.get_value(policy.GPO_KEY, "UseCertificateForOnPremAuth") is None
    missing = run(admin, "Remove-ItemProperty", Path=[PFW], Name=["UseCertificateForOnPremAuth"])
    assert missing.error.fully_qualified_error_id == (
        "System.Management.Automation.PSArgumentException,Microsoft.PowerShell.Commands.RemoveItemPropertyCommand"
    )
    refused = run(admin, "Remove-Item", Path=["HKLM:\\SOFTWARE\\Policies\\Microsoft"])
    assert refused.errors and device.registry.key_exists(policy.GPO_KEY)
    run(admin, "Remove-Item", Path=["HKLM:\\SOFTWARE\\Policies\\Microsoft"], Recurse=True)
    assert not device.registry.key_exists(policy.GPO_KEY)
    gone = run(admin, "Remove-Item", Path=["HKLM:\\SOFTWARE\\Policies\\Microsoft"])
    assert gone.error.fully_qualified_error_id == "PathNotFound,Microsoft.PowerShell.Commands.RemoveItemCommand"


def test_test_path_on_registry(admin: DeviceHost) -> None:
    """Test-Path is True for keys (containers), False for missing keys, unknown drives and bare hive names."""
    assert run(admin, "Test-Path", Path=[PFW]).output == [True]
    assert run(admin, "Test-Path", Path=[PFW], PathType="Container").output == [True]
    assert run(admin, "Test-Path", Path=[PFW], PathType="Leaf").output == [False]
    assert run(admin, "Test-Path", Path=["HKLM:\\SOFTWARE\\Nope"]).output == [False]
    assert run(admin, "Test-Path", Path=["HKU:\\S-1-5-18"]).output == [False]
    assert run(admin, "Test-Path", Path=["Registry::HKEY_USERS\\S-1-5-18"]).output == [True]
    assert run(admin, "Test-Path", Path=["HKLM\\SOFTWARE"]).output == [False]  # a relative file path


def test_test_path_rejects_empty_string(admin: DeviceHost) -> None:
    """An empty -Path is a parameter binding error, as in Windows PowerShell."""
    with pytest.raises(PowerShellError) as caught:
        run(admin, "Test-Path", Path=[""])
    assert caught.value.record.fully_qualified_error_id == (
        "ParameterArgumentValidationErrorEmptyStringNotAllowed,Microsoft.PowerShell.Commands.TestPathCommand"
    )


def test_standard_hive_keys_exist(admin: DeviceHost) -> None:
    """Every hive has its standard top-level keys (HKCU:\\Software, HKLM:\\SYSTEM) even with nothing stored."""
    assert run(admin, "Test-Path", Path=["HKCU:\\Software", "HKLM:\\SYSTEM", "HKCU:\\Nope"]).output == [
        True,
        True,
        False,
    ]
    roots = [k["PSChildName"] for k in run(admin, "Get-ChildItem", Path=["HKLM:\\"]).output]
    assert roots == ["BCD00000000", "HARDWARE", "SAM", "SECURITY", "SOFTWARE", "SYSTEM"]
