"""A device's registry: HKLM and the per-user hives under HKU, with real value types.

Keys are stored flat, by case-folded full path (``hklm\\software\\policies\\...``); each key keeps its display
spelling. Paths are normalised from every spelling scripts use: ``HKLM:\\...``, ``HKEY_LOCAL_MACHINE\\...``,
``Registry::HKEY_LOCAL_MACHINE\\...``, ``Microsoft.PowerShell.Core\\Registry::...``. ``HKCU`` is not a hive of
its own: it maps to ``HKU\\<SID>`` of whoever runs the script, as on Windows.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_serializer, field_validator

RegType = Literal["REG_SZ", "REG_EXPAND_SZ", "REG_DWORD", "REG_QWORD", "REG_MULTI_SZ", "REG_BINARY"]

# PowerShell's -PropertyType / -Type names (Microsoft.Win32.RegistryValueKind) ↔ REG_* types.
VALUE_KIND_TO_TYPE: dict[str, RegType] = {
    "string": "REG_SZ",
    "expandstring": "REG_EXPAND_SZ",
    "dword": "REG_DWORD",
    "qword": "REG_QWORD",
    "multistring": "REG_MULTI_SZ",
    "binary": "REG_BINARY",
}
TYPE_TO_VALUE_KIND: dict[RegType, str] = {
    "REG_SZ": "String",
    "REG_EXPAND_SZ": "ExpandString",
    "REG_DWORD": "DWord",
    "REG_QWORD": "QWord",
    "REG_MULTI_SZ": "MultiString",
    "REG_BINARY": "Binary",
}

_ROOTS = {
    "hklm": "HKLM",
    "hkey_local_machine": "HKLM",
    "hku": "HKU",
    "hkey_users": "HKU",
    "hkcu": "HKCU",
    "hkey_current_user": "HKCU",
    "hkcr": "HKCR",
    "hkey_classes_root": "HKCR",
}


class RegistryPathError(ValueError):
    """A path that names no registry hive the lab has."""


def _decode_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return base64.b64decode(value)
    if isinstance(value, list):
        return bytes(int(x) for x in value)
    raise ValueError("expected bytes or base64 text")


RegData = int | str | list[str] | bytes


class RegValue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str  # display spelling; "" is the key's (Default) value
    type: RegType
    data: RegData

    @field_validator("data", mode="before")
    @classmethod
    def _data_matches_type(cls, data: Any, info: ValidationInfo) -> Any:
        # The stored type decides how JSON data reads back: REG_BINARY travels as base64 text.
        reg_type = info.data.get("type")
        return _coerce(data, reg_type) if reg_type else data

    @field_serializer("data")
    def _data_as_json(self, data: RegData) -> int | str | list[str]:
        return base64.b64encode(data).decode("ascii") if isinstance(data, bytes) else data

    def coerced(self) -> RegData:
        """The data as PowerShell returns it for this type (DWORD as int, MULTI_SZ as list, ...)."""
        if self.type in ("REG_DWORD", "REG_QWORD"):
            # Stored unsigned; PowerShell hands DWORD back as Int32 and QWORD as Int64 (signed).
            bits = 32 if self.type == "REG_DWORD" else 64
            number = int(self.data) if not isinstance(self.data, bytes | list) else 0
            return number - 2**bits if number >= 2 ** (bits - 1) else number
        return self.data


class RegKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str  # display spelling, e.g. HKLM\SOFTWARE\Policies\Microsoft\PassportForWork
    values: dict[str, RegValue] = Field(default_factory=dict)  # by case-folded name


def normalize_path(path: str, current_user_sid: str | None = None) -> str:
    """Return the canonical display path (``HKLM\\A\\B``) of any PowerShell/Win32 spelling of a key.

    ``HKCU`` becomes ``HKU\\<current_user_sid>``; raises :class:`RegistryPathError` for a non-registry path or
    HKCU without a user."""
    p = path.strip().replace("/", "\\")
    for prefix in ("microsoft.powershell.core\\registry::", "registry::"):
        if p.casefold().startswith(prefix):
            p = p[len(prefix) :]
            break
    root, _, rest = p.partition("\\")
    root_key = root.rstrip(":").casefold()
    if root_key not in _ROOTS:
        raise RegistryPathError(f"Cannot find drive or hive for path '{path}'.")
    canonical_root = _ROOTS[root_key]
    parts = [segment for segment in rest.split("\\") if segment]
    if canonical_root == "HKCU":
        if not current_user_sid:
            raise RegistryPathError("HKCU has no hive for this logon session.")
        canonical_root, parts = "HKU", [current_user_sid, *parts]
    return "\\".join([canonical_root, *parts])


def _fold(path: str) -> str:
    return path.casefold()


class Registry(BaseModel):
    """The registry of one device: keys by case-folded canonical path."""

    model_config = ConfigDict(extra="forbid")

    keys: dict[str, RegKey] = Field(default_factory=dict)

    # ---- keys ----------------------------------------------------------------------------------------

    def key_exists(self, path: str) -> bool:
        return _fold(path) in self.keys or path.upper() in ("HKLM", "HKU")

    def get_key(self, path: str) -> RegKey | None:
        return self.keys.get(_fold(path))

    def create_key(self, path: str) -> RegKey:
        """Create the key and any missing parents (as New-Item -Force and RegCreateKeyEx do)."""
        parts = path.split("\\")
        key: RegKey | None = None
        for depth in range(2, len(parts) + 1):
            sub = "\\".join(parts[:depth])
            key = self.keys.get(_fold(sub))
            if key is None:
                key = RegKey(path=sub)
                self.keys[_fold(sub)] = key
        if key is None:  # a bare hive root
            raise RegistryPathError(f"Cannot create a registry hive root: '{path}'.")
        return key

    def delete_key(self, path: str, recurse: bool = False) -> bool:
        """Delete a key; with ``recurse`` its subkeys too. False when it did not exist."""
        folded = _fold(path)
        if folded not in self.keys:
            return False
        children = [k for k in self.keys if k.startswith(folded + "\\")]
        if children and not recurse:
            raise RegistryPathError(f"The key '{path}' has subkeys and Recurse was not specified.")
        for child in children:
            del self.keys[child]
        del self.keys[folded]
        return True

    def subkeys(self, path: str) -> list[str]:
        """Display paths of the immediate subkeys."""
        prefix = _fold(path) + "\\"
        depth = path.count("\\") + 1
        return sorted(
            (k.path for f, k in self.keys.items() if f.startswith(prefix) and k.path.count("\\") == depth),
            key=str.casefold,
        )

    # ---- values --------------------------------------------------------------------------------------

    def get_value(self, path: str, name: str) -> RegValue | None:
        key = self.get_key(path)
        return None if key is None else key.values.get(name.casefold())

    def read(self, path: str, name: str) -> RegData | None:
        value = self.get_value(path, name)
        return None if value is None else value.coerced()

    def set_value(self, path: str, name: str, data: RegData, type: RegType | None = None) -> RegValue:
        """Write a value, creating the key; an existing value keeps its type unless one is given."""
        key = self.get_key(path) or self.create_key(path)
        existing = key.values.get(name.casefold())
        reg_type: RegType = type or (existing.type if existing else _infer_type(data))
        value = RegValue(name=existing.name if existing else name, type=reg_type, data=_coerce(data, reg_type))
        key.values[name.casefold()] = value
        return value

    def delete_value(self, path: str, name: str) -> bool:
        key = self.get_key(path)
        if key is None:
            return False
        return key.values.pop(name.casefold(), None) is not None

    def values(self, path: str) -> Iterator[RegValue]:
        key = self.get_key(path)
        return iter(()) if key is None else iter(list(key.values.values()))


def _infer_type(data: RegData) -> RegType:
    if isinstance(data, bool | int):
        return "REG_DWORD"
    if isinstance(data, list):
        return "REG_MULTI_SZ"
    if isinstance(data, bytes):
        return "REG_BINARY"
    return "REG_SZ"


def _coerce(data: Any, reg_type: RegType) -> RegData:
    """Convert data to what the type stores, the way the registry provider converts -Value."""
    if reg_type in ("REG_DWORD", "REG_QWORD"):
        number = int(data, 0) if isinstance(data, str) else int(data)
        bits = 32 if reg_type == "REG_DWORD" else 64
        if not -(2 ** (bits - 1)) <= number < 2**bits:
            raise ValueError(f"Value {number} is out of range for {reg_type}.")
        return int(number & (2**bits - 1))
    if reg_type == "REG_MULTI_SZ":
        return [str(x) for x in data] if isinstance(data, list) else [str(data)]
    if reg_type == "REG_BINARY":
        return _decode_bytes(data) if not isinstance(data, int) else bytes([data & 0xFF])
    return str(data)
