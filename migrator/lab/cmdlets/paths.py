"""PowerShell provider paths: which provider a path names and how its parts look to scripts.

Windows PowerShell 5.1 resolves a path through a *drive* (``HKLM:\\...``, ``HKCU:\\...``, ``C:\\...``,
``Env:``) or a *provider-qualified* form (``Registry::HKEY_USERS\\S-1-5-18\\...``,
``Microsoft.PowerShell.Core\\FileSystem::C:\\...``). The default registry drives are only HKLM and HKCU:
``HKU:`` fails with DriveNotFound unless a script creates it with New-PSDrive, while ``Registry::HKEY_USERS``
always works (about_Registry_Provider). A path without a drive is relative to the current location (a
file-system folder): ``HKLM\\SOFTWARE`` is therefore a *file* path, as on Windows.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Literal

from migrator.lab.boundary import NotModelledByLab
from migrator.lab.cmdlets._base import error_record
from migrator.lab.registry import normalize_path
from migrator.lab.shell import ErrorRecord

Provider = Literal["Registry", "FileSystem", "Environment"]

REGISTRY_PROVIDER = "Microsoft.PowerShell.Core\\Registry"
FILESYSTEM_PROVIDER = "Microsoft.PowerShell.Core\\FileSystem"
ENVIRONMENT_PROVIDER = "Microsoft.PowerShell.Core\\Environment"

HIVE_LONG_NAMES = {
    "HKLM": "HKEY_LOCAL_MACHINE",
    "HKCU": "HKEY_CURRENT_USER",
    "HKU": "HKEY_USERS",
    "HKCR": "HKEY_CLASSES_ROOT",
    "HKCC": "HKEY_CURRENT_CONFIG",
}
# Hive names the registry provider accepts in provider-qualified paths (long and short spellings).
_HIVES = {
    **{short.casefold(): short for short in HIVE_LONG_NAMES},
    **{v.casefold(): k for k, v in HIVE_LONG_NAMES.items()},
}
_REGISTRY_DRIVES = {"hklm": "HKLM", "hkcu": "HKCU"}
_PROVIDER_NAMES: dict[str, Provider] = {
    "registry": "Registry",
    "microsoft.powershell.core\\registry": "Registry",
    "filesystem": "FileSystem",
    "microsoft.powershell.core\\filesystem": "FileSystem",
    "environment": "Environment",
    "microsoft.powershell.core\\environment": "Environment",
}
# Drives every PowerShell session has whose items live in the interpreter, not on the device.
_SESSION_DRIVES = ("variable", "function", "alias", "cert", "wsman")
_DRIVE_RE = re.compile(r"^([A-Za-z][A-Za-z0-9_]*):(.*)$", re.DOTALL)
_WILDCARD_RE = re.compile(r"[*?\[]")


class PathResolutionError(Exception):
    """A path that names no drive or provider: carries the ErrorRecord PowerShell writes for it."""

    def __init__(self, record: ErrorRecord) -> None:
        super().__init__(record.message)
        self.record = record


@dataclass(frozen=True)
class ItemPath:
    """A resolved provider path: provider, root (hive short name / drive letter), segments, drive used."""

    provider: Provider
    root: str  # HKLM/HKCU/HKU/HKCR/HKCC for the registry, "C" for the file system, "" for Env:
    parts: tuple[str, ...]
    drive: str | None  # the PSDrive the path went through (None for provider-qualified paths)
    typed: str  # what the script wrote (error messages quote it)

    # ---- shape -------------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        if self.parts:
            return self.parts[-1]
        return HIVE_LONG_NAMES.get(self.root, self.root) if self.provider == "Registry" else f"{self.root}:\\"

    @property
    def parent(self) -> ItemPath | None:
        if not self.parts:
            return None
        return ItemPath(self.provider, self.root, self.parts[:-1], self.drive, self.typed)

    def child(self, name: str) -> ItemPath:
        return ItemPath(self.provider, self.root, (*self.parts, name), self.drive, self.typed)

    @property
    def has_wildcard(self) -> bool:
        return any(_WILDCARD_RE.search(part) for part in self.parts)

    # ---- spellings ---------------------------------------------------------------------------------

    @property
    def display(self) -> str:
        """Registry: ``HKEY_LOCAL_MACHINE\\SOFTWARE\\X`` (RegistryKey.Name); files: ``C:\\X\\y.txt``."""
        if self.provider == "Registry":
            return "\\".join([HIVE_LONG_NAMES[self.root], *self.parts])
        if self.provider == "FileSystem":
            return f"{self.root}:\\" + "\\".join(self.parts)
        return "\\".join(self.parts)

    @property
    def drive_form(self) -> str:
        """The path through its drive (``HKLM:\\SOFTWARE\\X``), or the display form without a drive."""
        if self.provider == "Registry" and self.drive:
            return f"{self.drive}:\\" + "\\".join(self.parts)
        if self.provider == "Environment":
            return "Env:\\" + "\\".join(self.parts)
        return self.display

    @property
    def ps_path(self) -> str:
        provider = {"Registry": REGISTRY_PROVIDER, "FileSystem": FILESYSTEM_PROVIDER}.get(
            self.provider, ENVIRONMENT_PROVIDER
        )
        return f"{provider}::{self.display}"

    @property
    def ps_parent_path(self) -> str:
        parent = self.parent
        if parent is None:
            return ""
        return parent.ps_path

    @property
    def ps_provider(self) -> str:
        return {"Registry": REGISTRY_PROVIDER, "FileSystem": FILESYSTEM_PROVIDER}.get(
            self.provider, ENVIRONMENT_PROVIDER
        )

    def registry_key(self, user_sid: str) -> str:
        """The canonical key path the device registry stores (HKCU → ``HKU\\<sid>``)."""
        return normalize_path("\\".join([self.root, *self.parts]), user_sid)

    def ps_properties(self) -> list[tuple[str, object]]:
        """PSPath, PSParentPath, PSChildName, PSDrive, PSProvider as the provider adds them to items."""
        props: list[tuple[str, object]] = [
            ("PSPath", self.ps_path),
            ("PSParentPath", self.ps_parent_path),
            ("PSChildName", self.name),
        ]
        drive = self.drive or (self.root if self.provider == "FileSystem" else None)
        if drive:
            props.append(("PSDrive", drive))
        props.append(("PSProvider", self.ps_provider))
        return props


def _split(rest: str) -> tuple[str, ...]:
    return tuple(part for part in rest.replace("/", "\\").split("\\") if part and part != ".")


def _collapse(parts: tuple[str, ...]) -> tuple[str, ...]:
    out: list[str] = []
    for part in parts:
        if part == "..":
            if out:
                out.pop()
        else:
            out.append(part)
    return tuple(out)


def drive_not_found(command: str, drive: str) -> PathResolutionError:
    return PathResolutionError(
        error_record(
            command,
            f"Cannot find drive. A drive with the name '{drive}' does not exist.",
            "DriveNotFound",
            "ObjectNotFound",
            "System.Management.Automation.DriveNotFoundException",
            drive,
        )
    )


def path_not_found_record(command: str, typed: str) -> ErrorRecord:
    """``Cannot find path 'X' because it does not exist.`` (ItemNotFoundException, PathNotFound)."""
    return error_record(
        command,
        f"Cannot find path '{typed}' because it does not exist.",
        "PathNotFound",
        "ObjectNotFound",
        "System.Management.Automation.ItemNotFoundException",
        typed,
    )


def resolve(command: str, path: str, current_location: str) -> ItemPath:
    """Resolve a script's path against the providers; raises :class:`PathResolutionError` like PowerShell."""
    typed = path
    text = path.strip()
    provider_name, sep, rest = text.partition("::")
    if sep:
        provider = _PROVIDER_NAMES.get(provider_name.casefold())
        if provider is None:
            raise PathResolutionError(
                error_record(
                    command,
                    f"Cannot find a provider with the name '{provider_name}'.",
                    "ProviderNotFound",
                    "ObjectNotFound",
                    "System.Management.Automation.ProviderNotFoundException",
                    typed,
                )
            )
        return _provider_qualified(command, provider, rest, typed)
    match = _DRIVE_RE.match(text)
    if match is None:
        return _relative(text, current_location, typed)
    drive, rest = match.group(1), match.group(2)
    folded = drive.casefold()
    if folded in _REGISTRY_DRIVES:
        root = _REGISTRY_DRIVES[folded]
        return ItemPath("Registry", root, _collapse(_split(rest)), root, typed)
    if folded == "env":
        return ItemPath("Environment", "", _split(rest), "Env", typed)
    if len(drive) == 1:
        if folded != "c":  # the lab's devices have one volume
            raise drive_not_found(command, drive.upper())
        base = () if rest.startswith(("\\", "/")) else _split(current_location.partition(":")[2])
        return ItemPath("FileSystem", "C", _collapse((*base, *_split(rest))), "C", typed)
    if folded in _SESSION_DRIVES:
        # Real drives of every session (variable:, function:, alias:, Cert:, WSMan:) this command cannot serve.
        raise NotModelledByLab(f"{command} on the {drive}: drive", module="lab/cmdlets")
    raise drive_not_found(command, drive)


def _provider_qualified(command: str, provider: Provider, rest: str, typed: str) -> ItemPath:
    parts = _collapse(_split(rest))
    if provider == "Registry":
        if not parts or parts[0].casefold() not in _HIVES:
            raise PathResolutionError(path_not_found_record(command, typed))
        return ItemPath("Registry", _HIVES[parts[0].casefold()], parts[1:], None, typed)
    if provider == "Environment":
        return ItemPath("Environment", "", parts, None, typed)
    match = _DRIVE_RE.match(rest.strip())
    if match is None or match.group(1).casefold() != "c":
        raise PathResolutionError(path_not_found_record(command, typed))
    return ItemPath("FileSystem", "C", _collapse(_split(match.group(2))), None, typed)


def _relative(text: str, current_location: str, typed: str) -> ItemPath:
    if text.startswith(("\\", "/")):  # rooted on the current drive
        return ItemPath("FileSystem", "C", _collapse(_split(text)), "C", typed)
    base = _split(current_location.partition(":")[2])
    return ItemPath("FileSystem", "C", _collapse((*base, *_split(text))), "C", typed)


def wildcard_match(pattern: str, name: str) -> bool:
    """PowerShell wildcard matching (``*``, ``?``, ``[a-z]``), case-insensitive."""
    return fnmatch.fnmatchcase(name.casefold(), pattern.casefold())


def is_wildcard(text: str) -> bool:
    return bool(_WILDCARD_RE.search(text))
