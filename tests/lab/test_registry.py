"""Registry model: path spellings, HKCU mapping, value types, key operations."""

from __future__ import annotations

import pytest

from migrator.lab.registry import Registry, RegistryPathError, normalize_path


@pytest.mark.parametrize(
    "spelling",
    [
        "HKLM:\\SOFTWARE\\Policies\\Microsoft\\PassportForWork",
        "hklm:/software/policies/microsoft/passportforwork",
        "HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\PassportForWork",
        "Registry::HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\PassportForWork",
        "Microsoft.PowerShell.Core\\Registry::HKLM\\SOFTWARE\\Policies\\Microsoft\\PassportForWork\\",
    ],
)
def test_every_spelling_normalises_to_one_path(spelling: str) -> None:
    """All the ways scripts name a key reach the same canonical key (case aside)."""
    assert normalize_path(spelling).casefold() == "hklm\\software\\policies\\microsoft\\passportforwork"


def test_hkcu_maps_to_the_callers_hive() -> None:
    """HKCU is HKU\\<SID> of whoever runs the script, as on Windows."""
    assert normalize_path("HKCU:\\Software\\X", "S-1-5-21-1-2-3-1001") == "HKU\\S-1-5-21-1-2-3-1001\\Software\\X"
    with pytest.raises(RegistryPathError):
        normalize_path("HKCU:\\Software\\X")


def test_non_registry_path_is_refused() -> None:
    """A file-system path is not a registry path."""
    with pytest.raises(RegistryPathError):
        normalize_path("C:\\Windows")


def test_value_types_round_trip_as_powershell_returns_them() -> None:
    """DWORD comes back signed, MULTI_SZ as a list, BINARY as bytes; types survive JSON."""
    reg = Registry()
    reg.set_value("HKLM\\A", "d", 0xFFFFFFFF, "REG_DWORD")
    reg.set_value("HKLM\\A", "q", 5, "REG_QWORD")
    reg.set_value("HKLM\\A", "m", ["x", "y"], "REG_MULTI_SZ")
    reg.set_value("HKLM\\A", "b", b"\x00\x01", "REG_BINARY")
    reg.set_value("HKLM\\A", "s", "text")
    assert reg.read("HKLM\\A", "D") == -1
    assert reg.read("hklm\\a", "m") == ["x", "y"]
    assert reg.read("HKLM\\A", "b") == b"\x00\x01"
    assert reg.get_value("HKLM\\A", "s").type == "REG_SZ"  # type: ignore[union-attr]
    again = Registry.model_validate_json(reg.model_dump_json())
    assert again == reg


def test_existing_value_keeps_its_type_and_out_of_range_fails() -> None:
    """Set-ItemProperty keeps the stored type; a DWORD cannot hold 2**32."""
    reg = Registry()
    reg.set_value("HKLM\\A", "v", 1, "REG_DWORD")
    reg.set_value("HKLM\\A", "v", "0")
    assert reg.get_value("HKLM\\A", "v").type == "REG_DWORD"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="out of range"):
        reg.set_value("HKLM\\A", "v", 2**32)


def test_keys_create_parents_and_delete_needs_recurse() -> None:
    """Creating a deep key creates its parents; deleting a parent needs Recurse."""
    reg = Registry()
    reg.create_key("HKLM\\SOFTWARE\\A\\B\\C")
    assert reg.key_exists("HKLM\\SOFTWARE\\A")
    assert reg.subkeys("HKLM\\SOFTWARE\\A") == ["HKLM\\SOFTWARE\\A\\B"]
    with pytest.raises(RegistryPathError):
        reg.delete_key("HKLM\\SOFTWARE\\A")
    assert reg.delete_key("HKLM\\SOFTWARE\\A", recurse=True)
    assert not reg.key_exists("HKLM\\SOFTWARE\\A\\B\\C")
    assert not reg.delete_key("HKLM\\SOFTWARE\\A")
