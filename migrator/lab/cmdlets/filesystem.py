"""The device's file system as the FileSystem provider sees it: ``device.files`` plus the standard folders.

Only files scripts create (task output, scripts) are stored, in :attr:`Device.files` by case-folded path.
Folders exist when Windows ships them (``C:\\Windows\\Temp``, ``C:\\ProgramData``, each profile and its
``AppData\\Local\\Temp``), when a script created them (a directory entry), or when a stored file lies below them.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from migrator.lab.cmdlets._base import SYSTEM_PROFILE, user_profile
from migrator.lab.model import Device, VFile

if TYPE_CHECKING:
    from migrator.lab.windows import Lab

_PROFILE_SUBDIRS = (
    "Desktop",
    "Documents",
    "Downloads",
    "AppData",
    "AppData\\Local",
    "AppData\\Local\\Temp",
    "AppData\\LocalLow",
    "AppData\\Roaming",
)
_SYSTEM_DIRS = (
    "C:\\",
    "C:\\Windows",
    "C:\\Windows\\System32",
    "C:\\Windows\\System32\\config",
    "C:\\Windows\\System32\\drivers",
    "C:\\Windows\\System32\\drivers\\etc",
    "C:\\Windows\\System32\\WindowsPowerShell",
    "C:\\Windows\\System32\\WindowsPowerShell\\v1.0",
    "C:\\Windows\\SysWOW64",
    "C:\\Windows\\Temp",
    "C:\\Windows\\Tasks",
    "C:\\ProgramData",
    "C:\\ProgramData\\Microsoft",
    "C:\\Program Files",
    "C:\\Program Files\\WindowsPowerShell",
    "C:\\Program Files\\WindowsPowerShell\\Modules",
    "C:\\Program Files (x86)",
    "C:\\Users",
    "C:\\Users\\Public",
    "C:\\Users\\Default",
)


def _fold(path: str) -> str:
    return path.rstrip("\\").casefold() if len(path) > 3 else path.casefold()


def parent_of(path: str) -> str:
    head, _, _ = path.rstrip("\\").rpartition("\\")
    return head + "\\" if len(head) == 2 else head


class DeviceFiles:
    """File-system view of one device (call under ``device.lock``)."""

    def __init__(self, lab: Lab, device: Device) -> None:
        self.lab = lab
        self.device = device

    # ---- folders -----------------------------------------------------------------------------------

    def builtin_dirs(self) -> dict[str, str]:
        """Folders Windows ships, by case-folded path → display spelling."""
        dirs = list(_SYSTEM_DIRS)
        profiles = [user_profile(user) for user in self.device.users]
        profiles.append(f"C:\\Users\\{self.lab.fleet.admin.username}")
        for profile in profiles:
            dirs.append(profile)
            dirs.extend(f"{profile}\\{sub}" for sub in _PROFILE_SUBDIRS)
        dirs.append(SYSTEM_PROFILE)
        dirs.extend(f"{SYSTEM_PROFILE}\\{sub}" for sub in _PROFILE_SUBDIRS)
        return {_fold(d): d for d in dirs}

    def is_builtin_dir(self, path: str) -> bool:
        return _fold(path) in self.builtin_dirs()

    def is_dir(self, path: str) -> bool:
        folded = _fold(path)
        if folded in self.builtin_dirs():
            return True
        entry = self.device.files.get(folded)
        if entry is not None:
            return entry.is_directory
        prefix = folded.rstrip("\\") + "\\"
        return any(key.startswith(prefix) for key in self.device.files)

    def is_file(self, path: str) -> bool:
        entry = self.device.files.get(_fold(path))
        return entry is not None and not entry.is_directory

    def exists(self, path: str) -> bool:
        return self.is_file(path) or self.is_dir(path)

    def get(self, path: str) -> VFile | None:
        return self.device.files.get(_fold(path))

    def children(self, path: str) -> list[tuple[str, bool]]:
        """Immediate children of a folder as (display path, is_directory), folders first then by name."""
        prefix = _fold(path).rstrip("\\") + "\\"
        found: dict[str, tuple[str, bool]] = {}
        candidates = list(self.builtin_dirs().values())
        candidates += [f.path for f in self.device.files.values()]
        for display in candidates:
            folded = _fold(display)
            if not folded.startswith(prefix) or folded == prefix.rstrip("\\"):
                continue
            rest = display[len(prefix) :]
            first, sep, _ = rest.partition("\\")
            if not first:
                continue
            child = display[: len(prefix)] + first
            child_folded = _fold(child)
            is_dir = bool(sep) or self.is_dir(child)
            found.setdefault(child_folded, (path.rstrip("\\") + "\\" + first, is_dir))
        return sorted(found.values(), key=lambda item: (not item[1], item[0].casefold()))

    def mkdir(self, path: str, now: datetime) -> None:
        """Create a folder and its missing parents."""
        current = path
        chain: list[str] = []
        while not self.is_dir(current):
            chain.append(current)
            parent = parent_of(current)
            if parent == current or not parent:
                break
            current = parent
        for folder in reversed(chain):
            self.device.files[_fold(folder)] = VFile(path=folder, is_directory=True, modified=now)

    # ---- files -------------------------------------------------------------------------------------

    def read(self, path: str) -> str:
        """A file as text (a file stored as bytes reads as Windows PowerShell 5.1 decodes it)."""
        entry = self.device.files[_fold(path)]
        return entry.content

    def read_bytes(self, path: str) -> bytes:
        return self.device.files[_fold(path)].raw()

    def write_bytes(self, path: str, data: bytes, now: datetime) -> None:
        """Create or replace a file with exact bytes (System.IO writes, pypsrp's copy)."""
        folded = _fold(path)
        entry = self.device.files.get(folded)
        if entry is None or entry.is_directory:
            entry = VFile(path=path, modified=now)
            self.device.files[folded] = entry
        entry.set_bytes(data)
        entry.modified = now

    def move(self, source: str, destination: str) -> None:
        """Rename a file: its bytes or text and its timestamp move unchanged, under the destination's spelling."""
        entry = self.device.files.pop(_fold(source))
        moved = entry.model_copy(update={"path": destination})
        self.device.files[_fold(destination)] = moved

    def write(self, path: str, text: str, now: datetime, append: bool = False) -> None:
        folded = _fold(path)
        entry = self.device.files.get(folded)
        if entry is not None and append:
            entry.content += text
            entry.modified = now
            return
        display = entry.path if entry is not None else path
        self.device.files[folded] = VFile(path=display, content=text, modified=now)

    def remove(self, path: str) -> None:
        """Remove a file or a folder with everything below it."""
        folded = _fold(path)
        prefix = folded.rstrip("\\") + "\\"
        for key in [k for k in self.device.files if k == folded or k.startswith(prefix)]:
            del self.device.files[key]
