"""System.IO on a device: the lab interpreter's :class:`~migrator.lab.ps.dotnet_io.HostFileSystem` over
``device.files``, so ``[System.IO.File]``, FileStream and FileInfo (pypsrp's copy.ps1 and fetch.ps1) read and
write the same files the FileSystem provider cmdlets see.

Every call takes the device's lock for itself (the interpreter calls these outside device cmdlets).
"""

from __future__ import annotations

from typing import cast

from migrator.lab.cmdlets._base import DeviceBinding
from migrator.lab.cmdlets.filesystem import DeviceFiles
from migrator.lab.cmdlets.items import current_location
from migrator.lab.cmdlets.paths import PathResolutionError, resolve
from migrator.lab.ps.dotnet_io import FileKind, HostFileSystem
from migrator.lab.ps.errors import NotSupportedByLab
from migrator.lab.shell import Host, PowerShellError


class DeviceFileSystem:
    """``HostFileSystem`` of one device, for one principal (whose current location relative paths start from)."""

    def __init__(self, host: DeviceBinding) -> None:
        self._host = host
        self._files = DeviceFiles(host.lab, host.device)

    def kind(self, path: str) -> FileKind | None:
        with self._host.device.lock:
            if self._files.is_file(path):
                return "file"
            if self._files.is_dir(path):
                return "directory"
            return None

    def read_bytes(self, path: str) -> bytes:
        with self._host.device.lock:
            return self._files.read_bytes(path)

    def write_bytes(self, path: str, data: bytes) -> None:
        with self._host.device.lock:
            self._files.write_bytes(path, data, self._host.lab.clock.now())

    def delete(self, path: str) -> None:
        with self._host.device.lock:
            self._files.remove(path)

    def move(self, source: str, destination: str) -> None:
        with self._host.device.lock:
            self._files.move(source, destination)

    def provider_path(self, path: str) -> str:
        """What ``GetUnresolvedProviderPathFromPSPath`` gives: the provider's path, existing or not."""
        try:
            item = resolve("", path, current_location(self._host))
        except PathResolutionError as exc:
            raise PowerShellError(exc.record) from None
        if item.provider == "Environment":
            raise NotSupportedByLab(f"GetUnresolvedProviderPathFromPSPath('{path}') on the Environment provider")
        return item.display


def device_file_system(host: Host) -> HostFileSystem | None:
    """The factory the interpreter asks: a device host has files, any other host has none."""
    if hasattr(host, "device") and hasattr(host, "lab"):
        return DeviceFileSystem(cast(DeviceBinding, host))
    return None
