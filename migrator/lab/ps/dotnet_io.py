"""System.IO files and streams, hash algorithms and BitConverter: the .NET surface of file transfer scripts.

pypsrp's ``Client.copy`` and ``Client.fetch`` run ``copy.ps1`` / ``fetch.ps1``, which move bytes through
``[System.IO.File]::Create``, FileStream ``Write``/``Read``, ``FileInfo.OpenRead()``, SHA1 ``TransformBlock`` and
``[BitConverter]::ToString``. This module models those .NET Framework 4.x members (messages and exception types
from the .NET reference source) over the host's file system, reached through :class:`HostFileSystem`.

Theory of operation
-------------------
The interpreter knows no file system of its own. A device side registers a factory with
:func:`register_file_system`; :func:`file_system_of` asks each factory for the file system behind a host and
raises NotSupportedByLab when there is none (a host without files cannot pretend to have them). Paths handed to
the host are absolute and normalised (``C:\\a\\..\\b`` -> ``C:\\b``); a relative path would resolve against the
process's current directory, which the lab does not model, so it is refused.

A FileStream writes through: each ``Write`` stores the file's whole content, so what a script wrote is on the
device at once, as with an unbuffered Win32 handle. Byte buffers that .NET fills in place (``Read``,
``TransformBlock``'s output) must be mutable: ``New-Object byte[] n`` gives a ``bytearray``. A .NET method that
throws reaches the script as PowerShell wraps it: ``Exception calling "Create" with "1" argument(s): "..."``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, Protocol

from migrator.lab.ps.errors import NotSupportedByLab, make_record, method_invocation_error
from migrator.lab.ps.session import VOID
from migrator.lab.ps.values import EnumValue, to_int, to_str
from migrator.lab.shell import Host, PowerShellError

if TYPE_CHECKING:
    from migrator.lab.ps.interpreter import Interpreter

FileKind = Literal["file", "directory"]


class HostFileSystem(Protocol):
    """The host's files as System.IO sees them: absolute, normalised Windows paths; case-insensitive."""

    def kind(self, path: str) -> FileKind | None:
        """What is at ``path``: a file, a directory, or nothing."""

    def read_bytes(self, path: str) -> bytes:
        """The bytes of an existing file."""

    def write_bytes(self, path: str, data: bytes) -> None:
        """Create or replace a file whose folder exists."""

    def delete(self, path: str) -> None:
        """Remove an existing file."""

    def move(self, source: str, destination: str) -> None:
        """Rename an existing file to a free path whose folder exists (content and timestamps move along)."""

    def provider_path(self, path: str) -> str:
        """``SessionState.Path.GetUnresolvedProviderPathFromPSPath``: a PowerShell path (drive, provider-qualified,
        relative to the current location) as the provider's own path; raises PowerShellError for a bad drive."""


FileSystemFactory = Callable[[Host], HostFileSystem | None]
_FACTORIES: list[FileSystemFactory] = []


def register_file_system(factory: FileSystemFactory) -> None:
    """Let a device side serve System.IO for the hosts it knows (registering twice is harmless)."""
    if factory not in _FACTORIES:
        _FACTORIES.append(factory)


def file_system_of(host: Host, construct: str) -> HostFileSystem:
    for factory in _FACTORIES:
        files = factory(host)
        if files is not None:
            return files
    raise NotSupportedByLab(f"{construct} (this host has no file system)")


# ---- .NET exceptions as PowerShell shows them ------------------------------------------------------------


def _null_argument(method: str, argc: int, parameter: str) -> PowerShellError:
    return method_invocation_error(
        method, argc, f"Value cannot be null.\r\nParameter name: {parameter}", "System.ArgumentNullException"
    )


def no_overload(method: str, argc: int) -> PowerShellError:
    return PowerShellError(
        make_record(
            f'Cannot find an overload for "{method}" and the argument count: "{argc}".',
            "MethodCountCouldNotFindBest",
            "NotSpecified",
            "System.Management.Automation.MethodException",
        )
    )


def _getter_error(property_name: str, inner: str, inner_type: str) -> PowerShellError:
    # A property getter that throws: GetValueInvocationException, "Exception getting "X": "..."".
    return PowerShellError(
        make_record(
            f'Exception getting "{property_name}": "{inner}"',
            inner_type.rsplit(".", 1)[-1],
            "NotSpecified",
            "System.Management.Automation.GetValueInvocationException",
        )
    )


_ILLEGAL_PATH_CHARS = re.compile(r'[<>|"\x00-\x1f*?]')


def full_path(method: str, argc: int, value: Any, parameter: str = "path", empty: str = "") -> str:
    """Path.GetFullPath for an absolute path (``C:\\x\\..\\y`` -> ``C:\\y``, ``/`` -> ``\\``)."""
    if value is None:
        raise _null_argument(method, argc, parameter)
    text = to_str(value)
    if text.strip() == "":
        message = empty or "The path is not of a legal form."
        raise method_invocation_error(method, argc, message, "System.ArgumentException")
    if _ILLEGAL_PATH_CHARS.search(text):
        raise method_invocation_error(method, argc, "Illegal characters in path.", "System.ArgumentException")
    if ":" in text[2:]:
        raise method_invocation_error(
            method, argc, "The given path's format is not supported.", "System.NotSupportedException"
        )
    normalised = text.replace("/", "\\")
    if normalised.startswith("\\\\"):
        raise NotSupportedByLab(f"a UNC path in {method}()")
    match = re.match(r"^([A-Za-z]):\\(.*)$", normalised, re.DOTALL)
    if match is None:
        raise NotSupportedByLab(
            f"the relative path '{text}' in {method}() (.NET resolves it against the process's current directory)"
        )
    parts: list[str] = []
    for part in match.group(2).split("\\"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        trimmed = part.rstrip(" .")  # Win32 drops trailing dots and spaces of each segment
        if trimmed:
            parts.append(trimmed)
    return f"{match.group(1)}:\\" + "\\".join(parts)


def parent_folder(path: str) -> str:
    head = path.rsplit("\\", 1)[0]
    return head + "\\" if len(head) == 2 else head


def _part_not_found(method: str, argc: int, path: str) -> PowerShellError:
    return method_invocation_error(
        method, argc, f"Could not find a part of the path '{path}'.", "System.IO.DirectoryNotFoundException"
    )


def _file_not_found(method: str, argc: int, path: str) -> PowerShellError:
    return method_invocation_error(method, argc, f"Could not find file '{path}'.", "System.IO.FileNotFoundException")


def _access_denied(method: str, argc: int, path: str) -> PowerShellError:
    return method_invocation_error(
        method, argc, f"Access to the path '{path}' is denied.", "System.UnauthorizedAccessException"
    )


# ---- byte[] arguments ------------------------------------------------------------------------------------


def input_bytes(method: str, argc: int, value: Any, parameter: str) -> bytes | bytearray:
    """A byte[] argument that .NET only reads (an object[] of numbers converts, as PowerShell's binder does)."""
    if value is None:
        raise _null_argument(method, argc, parameter)
    if isinstance(value, bytes | bytearray):
        return value
    if isinstance(value, list | tuple):
        return bytes(to_int(item, "System.Byte", 0, 255) for item in value)
    raise method_invocation_error(
        method,
        argc,
        f'Cannot convert argument "{parameter}", with value: "{to_str(value)}", for "{method}" to type '
        '"System.Byte[]".',
        "System.Management.Automation.PSInvalidCastException",
    )


def output_buffer(method: str, argc: int, value: Any, parameter: str) -> bytearray:
    """A byte[] argument that .NET fills in place: only a mutable buffer shows the script what was written."""
    if value is None:
        raise _null_argument(method, argc, parameter)
    if isinstance(value, bytearray):
        return value
    # PowerShell would convert anything else to a temporary byte[] and fill that copy; the lab's byte strings
    # from [Convert]::FromBase64String and friends are immutable. Either way the lab cannot show the effect.
    raise NotSupportedByLab(f"{method}() into a {type(value).__name__} (use New-Object byte[] n as the buffer)")


def _check_range(
    method: str,
    argc: int,
    buffer: bytes | bytearray,
    offset: Any,
    count: Any,
    names: tuple[str, str] = ("offset", "count"),
) -> tuple[int, int]:
    start, size = to_int(offset), to_int(count)
    for name, number in zip(names, (start, size), strict=True):
        if number < 0:
            raise method_invocation_error(
                method,
                argc,
                f"Non-negative number required.\r\nParameter name: {name}",
                "System.ArgumentOutOfRangeException",
            )
    if len(buffer) - start < size:
        raise method_invocation_error(
            method,
            argc,
            "Offset and length were out of bounds for the array or count is greater than the number of elements "
            "from index to the end of the source collection.",
            "System.ArgumentException",
        )
    return start, size


# ---- FileStream ------------------------------------------------------------------------------------------


class FileStream:
    """System.IO.FileStream over one host file (File.Create: read/write; OpenRead: read only)."""

    ps_type_names = ("System.IO.FileStream", "System.IO.Stream", "System.MarshalByRefObject", "System.Object")

    def __init__(self, files: HostFileSystem, path: str, data: bytes, writable: bool) -> None:
        self._files = files
        self.path = path
        self._data = bytearray(data)
        self._position = 0
        self._writable = writable
        self.closed = False

    def ps_to_string(self) -> str:
        return "System.IO.FileStream"

    def read_all(self) -> bytes:
        return bytes(self._data)

    def _check_open(self, method: str, argc: int) -> None:
        if self.closed:
            raise method_invocation_error(
                method, argc, "Cannot access a closed file.", "System.ObjectDisposedException"
            )

    def ps_get_member(self, name: str) -> Any:
        folded = name.casefold()
        if folded in ("canread", "canseek"):
            return not self.closed
        if folded == "canwrite":
            return self._writable and not self.closed
        if folded == "name":
            return self.path
        if folded in ("length", "position"):
            if self.closed:
                raise _getter_error(name, "Cannot access a closed file.", "System.ObjectDisposedException")
            return len(self._data) if folded == "length" else self._position
        if folded == "isasync":
            return False
        raise NotSupportedByLab(f"FileStream.{name}")

    def ps_call_method(self, name: str, args: list[Any]) -> Any:
        folded = name.casefold()
        argc = len(args)
        if folded in ("close", "dispose") and not args:
            self.closed = True
            return VOID
        if folded == "flush" and argc in (0, 1):
            self._check_open(name, argc)
            return VOID
        if folded == "write" and argc == 3:
            buffer = input_bytes(name, argc, args[0], "array")
            start, size = _check_range(name, argc, buffer, args[1], args[2])
            self._check_open(name, argc)
            if not self._writable:
                raise method_invocation_error(
                    name, argc, "Stream does not support writing.", "System.NotSupportedException"
                )
            end = self._position + size
            if self._position > len(self._data):
                self._data.extend(b"\x00" * (self._position - len(self._data)))
            self._data[self._position : end] = buffer[start : start + size]
            self._position = end
            self._files.write_bytes(self.path, bytes(self._data))
            return VOID
        if folded == "read" and argc == 3:
            target = output_buffer(name, argc, args[0], "array")
            start, size = _check_range(name, argc, target, args[1], args[2])
            self._check_open(name, argc)
            chunk = self._data[self._position : self._position + size]
            target[start : start + len(chunk)] = chunk
            self._position += len(chunk)
            return len(chunk)
        if folded == "tostring" and not args:
            return self.ps_to_string()
        raise NotSupportedByLab(f"FileStream.{name}() with {argc} argument(s)")


def _open_read(files: HostFileSystem, method: str, argc: int, path: str) -> FileStream:
    kind = files.kind(path)
    if kind == "directory":
        raise _access_denied(method, argc, path)
    if kind is None:
        if files.kind(parent_folder(path)) != "directory":
            raise _part_not_found(method, argc, path)
        raise _file_not_found(method, argc, path)
    return FileStream(files, path, files.read_bytes(path), writable=False)


def _create(files: HostFileSystem, method: str, argc: int, path: str) -> FileStream:
    if files.kind(path) == "directory":
        raise _access_denied(method, argc, path)
    if files.kind(parent_folder(path)) != "directory":
        raise _part_not_found(method, argc, path)
    files.write_bytes(path, b"")  # FileMode.Create truncates an existing file or creates an empty one
    return FileStream(files, path, b"", writable=True)


# ---- FileInfo --------------------------------------------------------------------------------------------


class FileInfo:
    """System.IO.FileInfo: a path, and the file's state read on first use and kept until ``Refresh()``."""

    ps_type_names = ("System.IO.FileInfo", "System.IO.FileSystemInfo", "System.MarshalByRefObject", "System.Object")

    def __init__(self, files: HostFileSystem, original: str, path: str) -> None:
        self._files = files
        self.original = original
        self.path = path
        self._state: tuple[FileKind | None, int] | None = None

    def ps_to_string(self) -> str:
        return self.original  # FileInfo.ToString() gives the path as it was passed in

    def _loaded(self) -> tuple[FileKind | None, int]:
        if self._state is None:
            kind = self._files.kind(self.path)
            size = len(self._files.read_bytes(self.path)) if kind == "file" else 0
            self._state = (kind, size)
        return self._state

    def ps_get_member(self, name: str) -> Any:
        folded = name.casefold()
        leaf = self.path.rsplit("\\", 1)[-1]
        if folded == "fullname":
            return self.path
        if folded == "name":
            return leaf
        if folded == "directoryname":
            return parent_folder(self.path)
        if folded == "extension":
            return leaf[leaf.rfind(".") :] if "." in leaf else ""
        if folded == "basename":  # PowerShell's ETS script property on FileInfo
            return leaf[: leaf.rfind(".")] if "." in leaf else leaf
        if folded == "exists":
            return self._loaded()[0] == "file"
        if folded == "length":
            kind, size = self._loaded()
            if kind != "file":
                raise _getter_error(name, f"Could not find file '{self.path}'.", "System.IO.FileNotFoundException")
            return size
        raise NotSupportedByLab(f"FileInfo.{name}")

    def ps_call_method(self, name: str, args: list[Any]) -> Any:
        folded = name.casefold()
        argc = len(args)
        if folded == "openread" and not args:
            return _open_read(self._files, name, argc, self.path)
        if folded == "refresh" and not args:
            self._state = None
            self._loaded()
            return VOID
        if folded == "delete" and not args:
            _delete(self._files, name, argc, self.path)
            return VOID
        if folded == "tostring" and not args:
            return self.original
        raise NotSupportedByLab(f"FileInfo.{name}() with {argc} argument(s)")


def new_file_info(interp: Interpreter, args: list[Any]) -> FileInfo:
    """``New-Object System.IO.FileInfo $path`` / ``[System.IO.FileInfo]::new($path)``."""
    if len(args) != 1:
        raise no_overload("new", len(args))
    path = full_path(".ctor", 1, args[0], "fileName")
    return FileInfo(file_system_of(interp.host, "[System.IO.FileInfo]"), to_str(args[0]), path)


# ---- [System.IO.File] ------------------------------------------------------------------------------------


def _delete(files: HostFileSystem, method: str, argc: int, path: str) -> None:
    kind = files.kind(path)
    if kind == "directory":
        raise _access_denied(method, argc, path)
    if kind is None:
        if files.kind(parent_folder(path)) != "directory":
            raise _part_not_found(method, argc, path)
        return  # deleting a file that does not exist is not an error
    files.delete(path)


def _move(files: HostFileSystem, method: str, args: list[Any]) -> None:
    for value, parameter in ((args[0], "sourceFileName"), (args[1], "destFileName")):
        if value is None:
            raise _null_argument(method, 2, parameter)
        if to_str(value) == "":
            raise method_invocation_error(
                method, 2, f"Empty file name is not legal.\r\nParameter name: {parameter}", "System.ArgumentException"
            )
    source = full_path(method, 2, args[0], "sourceFileName")
    destination = full_path(method, 2, args[1], "destFileName")
    if files.kind(source) != "file":
        raise _file_not_found(method, 2, source)
    # MoveFile's own Win32 errors carry no path (File.InternalMove calls __Error.WinIOError() without one).
    if files.kind(destination) is not None:
        raise method_invocation_error(
            method, 2, "Cannot create a file when that file already exists.", "System.IO.IOException"
        )
    if files.kind(parent_folder(destination)) != "directory":
        raise method_invocation_error(
            method, 2, "Could not find a part of the path.", "System.IO.DirectoryNotFoundException"
        )
    files.move(source, destination)


def static_file(interp: Interpreter, folded: str, name: str, args: list[Any]) -> Any:
    """``[System.IO.File]::X(...)``; unknown members return NOT_FOUND."""
    argc = len(args)
    construct = f"[System.IO.File]::{name}()"
    if folded == "exists" and argc == 1:
        try:
            path = full_path(name, 1, args[0])
        except PowerShellError:
            return False  # File.Exists answers false for null, empty and malformed paths
        return file_system_of(interp.host, construct).kind(path) == "file"
    if folded == "create" and argc in (1, 2):
        path = full_path(name, argc, args[0], empty="Empty path name is not legal.\r\nParameter name: path")
        return _create(file_system_of(interp.host, construct), name, argc, path)
    if folded == "openread" and argc == 1:
        path = full_path(name, argc, args[0], empty="Empty path name is not legal.\r\nParameter name: path")
        return _open_read(file_system_of(interp.host, construct), name, argc, path)
    if folded == "delete" and argc == 1:
        _delete(file_system_of(interp.host, construct), name, argc, full_path(name, argc, args[0]))
        return VOID
    if folded == "move" and argc == 2:
        _move(file_system_of(interp.host, construct), name, args)
        return VOID
    if folded == "readallbytes" and argc == 1:
        path = full_path(name, argc, args[0], empty="Empty path name is not legal.\r\nParameter name: path")
        stream = _open_read(file_system_of(interp.host, construct), name, argc, path)
        return bytearray(stream.read_all())
    if folded == "writeallbytes" and argc == 2:
        path = full_path(name, argc, args[0], empty="Empty path name is not legal.\r\nParameter name: path")
        data = input_bytes(name, argc, args[1], "bytes")
        files = file_system_of(interp.host, construct)
        _create(files, name, argc, path)
        files.write_bytes(path, bytes(data))
        return VOID
    return NOT_FOUND


NOT_FOUND: Any = object()


# ---- [System.IO.Path]::GetTempFileName() -----------------------------------------------------------------


def get_temp_file_name(interp: Interpreter, args: list[Any]) -> str:
    """Win32 GetTempFileName(TEMP, "tmp", 0): a new empty ``tmpXXXX.tmp`` (hex of a 16-bit counter seeded from
    the clock, skipping names in use) in the principal's temp folder (GetTempPath: TMP, then TEMP)."""
    name = "GetTempFileName"
    if args:
        raise no_overload(name, len(args))
    files = file_system_of(interp.host, "[System.IO.Path]::GetTempFileName()")
    folder = interp.session.env_get("TMP") or interp.session.env_get("TEMP") or "C:\\Windows\\TEMP"
    folder = full_path(name, 0, folder)
    if files.kind(folder) != "directory":
        raise method_invocation_error(name, 0, "The directory name is invalid.\r\n", "System.IO.IOException")
    seed = int(interp.host.clock.now().timestamp() * 1000) & 0xFFFF
    for step in range(0xFFFF):
        unique = (seed + step) % 0xFFFF + 1  # never 0: uUnique 0 asks Windows to pick
        path = f"{folder}\\tmp{unique:X}.tmp"
        if files.kind(path) is None:
            files.write_bytes(path, b"")
            return path
    raise method_invocation_error(name, 0, "The file exists.\r\n", "System.IO.IOException")


# ---- hash algorithms -------------------------------------------------------------------------------------

# Type -> (hashlib name, the class ``Create()`` returns on .NET Framework 4.x). ``[SHA1CryptoServiceProvider]::
# Create()`` is the static SHA1.Create() it inherits, hence the default SHA1 implementation.
HASH_TYPES: dict[str, tuple[str, str]] = {
    "System.Security.Cryptography.HashAlgorithm": ("sha1", "System.Security.Cryptography.SHA1CryptoServiceProvider"),
    "System.Security.Cryptography.SHA1": ("sha1", "System.Security.Cryptography.SHA1CryptoServiceProvider"),
    "System.Security.Cryptography.SHA1CryptoServiceProvider": (
        "sha1",
        "System.Security.Cryptography.SHA1CryptoServiceProvider",
    ),
    "System.Security.Cryptography.SHA1Managed": ("sha1", "System.Security.Cryptography.SHA1Managed"),
    "System.Security.Cryptography.SHA256": ("sha256", "System.Security.Cryptography.SHA256Managed"),
    "System.Security.Cryptography.SHA256Managed": ("sha256", "System.Security.Cryptography.SHA256Managed"),
    "System.Security.Cryptography.SHA256CryptoServiceProvider": (
        "sha256",
        "System.Security.Cryptography.SHA256CryptoServiceProvider",
    ),
    "System.Security.Cryptography.MD5": ("md5", "System.Security.Cryptography.MD5CryptoServiceProvider"),
    "System.Security.Cryptography.MD5CryptoServiceProvider": (
        "md5",
        "System.Security.Cryptography.MD5CryptoServiceProvider",
    ),
}
# Classes that cannot be instantiated with new() (abstract bases).
_ABSTRACT_HASHES = frozenset(
    {
        "System.Security.Cryptography.HashAlgorithm",
        "System.Security.Cryptography.SHA1",
        "System.Security.Cryptography.SHA256",
        "System.Security.Cryptography.MD5",
    }
)


class HashAlgorithm:
    """A .NET HashAlgorithm: TransformBlock/TransformFinalBlock (then Hash), or ComputeHash in one go."""

    def __init__(self, algorithm: str, type_name: str) -> None:
        self.algorithm = algorithm
        self.type_name = type_name
        self._state = hashlib.new(algorithm)
        self._hash: bytes | None = None
        self.disposed = False

    @property
    def ps_type_names(self) -> tuple[str, ...]:
        family = {"sha1": "SHA1", "sha256": "SHA256", "md5": "MD5"}[self.algorithm]
        return (
            self.type_name,
            f"System.Security.Cryptography.{family}",
            "System.Security.Cryptography.HashAlgorithm",
            "System.Object",
        )

    def ps_to_string(self) -> str:
        return self.type_name

    def _check_open(self, method: str, argc: int) -> None:
        if self.disposed:  # HashAlgorithm throws ObjectDisposedException(null): no object name
            raise method_invocation_error(
                method, argc, "Cannot access a disposed object.", "System.ObjectDisposedException"
            )

    def _finish(self, data: bytes | bytearray) -> None:
        self._state.update(data)
        self._hash = self._state.digest()
        self._state = hashlib.new(self.algorithm)  # the algorithm starts over for the next message

    def ps_get_member(self, name: str) -> Any:
        folded = name.casefold()
        if folded == "hash":
            if self.disposed:
                raise _getter_error(name, "Cannot access a disposed object.", "System.ObjectDisposedException")
            if self._hash is None:
                raise _getter_error(
                    name,
                    "Hash must be finalized before the hash value is retrieved.",
                    "System.Security.Cryptography.CryptographicUnexpectedOperationException",
                )
            return bytearray(self._hash)  # a new array each time, as .NET returns a clone
        if folded == "hashsize":
            return self._state.digest_size * 8
        if folded in ("inputblocksize", "outputblocksize"):
            return 1
        if folded in ("canreusetransform", "cantransformmultipleblocks"):
            return True
        raise NotSupportedByLab(f"{self.type_name}.{name}")

    def ps_call_method(self, name: str, args: list[Any]) -> Any:
        folded = name.casefold()
        argc = len(args)
        names = ("inputOffset", "inputCount")
        if folded == "transformblock" and argc == 5:
            data = input_bytes(name, argc, args[0], "inputBuffer")
            start, size = _check_range(name, argc, data, args[1], args[2], names)
            self._check_open(name, argc)
            self._state.update(data[start : start + size])
            output, at = args[3], to_int(args[4])
            # .NET copies the input to the output buffer unless they are the same array at the same offset.
            if output is not None and not (output is args[0] and at == start):
                target = output_buffer(name, argc, output, "outputBuffer")
                _check_range(name, argc, target, at, size, ("outputOffset", "inputCount"))
                target[at : at + size] = data[start : start + size]
            return size
        if folded == "transformfinalblock" and argc == 3:
            data = input_bytes(name, argc, args[0], "inputBuffer")
            start, size = _check_range(name, argc, data, args[1], args[2], names)
            self._check_open(name, argc)
            self._finish(data[start : start + size])
            return bytearray(data[start : start + size])
        if folded == "computehash" and argc in (1, 3):
            data = input_bytes(name, argc, args[0], "buffer")
            start, size = (0, len(data)) if argc == 1 else _check_range(name, argc, data, args[1], args[2])
            self._check_open(name, argc)
            self._finish(data[start : start + size])
            assert self._hash is not None
            return bytearray(self._hash)
        if folded == "initialize" and not args:
            self._state = hashlib.new(self.algorithm)
            return VOID
        if folded in ("dispose", "clear") and not args:
            self.disposed = True
            self._hash = None
            return VOID
        if folded == "tostring" and not args:
            return self.type_name
        raise NotSupportedByLab(f"{self.type_name}.{name}() with {argc} argument(s)")


def static_hash(type_name: str) -> Callable[[Interpreter, str, str, list[Any]], Any]:
    algorithm, created = HASH_TYPES[type_name]

    def handler(interp: Interpreter, folded: str, name: str, args: list[Any]) -> Any:
        if folded == "create" and not args:
            return HashAlgorithm(algorithm, created)
        if folded == "create":
            raise NotSupportedByLab(f"[{type_name}]::Create(algorithm name)")
        return NOT_FOUND

    return handler


def new_hash(type_name: str, args: list[Any]) -> HashAlgorithm:
    """``[System.Security.Cryptography.SHA1CryptoServiceProvider]::new()`` / ``New-Object ...``."""
    if type_name in _ABSTRACT_HASHES:
        # An abstract class has no constructor for PowerShell to find.
        raise PowerShellError(
            make_record(
                f"Method invocation failed because [{type_name}] does not contain a method named 'new'.",
                "MethodNotFound",
                "InvalidOperation",
            )
        )
    if args:
        raise no_overload("new", len(args))
    return HashAlgorithm(HASH_TYPES[type_name][0], type_name)


# ---- [System.BitConverter] -------------------------------------------------------------------------------


def static_bitconverter(interp: Interpreter, folded: str, name: str, args: list[Any]) -> Any:
    """``[BitConverter]::ToString(bytes[, startIndex[, length]])``: "0A-FF" (validation as in BitConverter.cs)."""
    argc = len(args)
    if folded == "tostring" and argc in (1, 2, 3):
        data = input_bytes(name, argc, args[0], "value")
        start = to_int(args[1]) if argc >= 2 else 0
        if start < 0 or (start >= len(data) and start > 0):
            raise method_invocation_error(
                name,
                argc,
                "StartIndex cannot be less than zero.\r\nParameter name: startIndex",
                "System.ArgumentOutOfRangeException",
            )
        size = to_int(args[2]) if argc == 3 else len(data) - start
        if size < 0:
            raise method_invocation_error(
                name, argc, "Value must be positive.\r\nParameter name: length", "System.ArgumentOutOfRangeException"
            )
        if start > len(data) - size:
            raise method_invocation_error(
                name,
                argc,
                "Destination array is not long enough to copy all the items in the collection. Check array index "
                "and length.",
                "System.ArgumentException",
            )
        return "-".join(f"{byte:02X}" for byte in data[start : start + size])
    return NOT_FOUND


# ---- System.Reflection on lab objects --------------------------------------------------------------------

# Types whose non-public members the lab knows do not exist: the remoting host of a lab runspace is not
# PowerShell's ServerRemoteHost and has no ExternalHost/_transportManager to reach by reflection.
_NO_NON_PUBLIC_MEMBERS = frozenset({"System.Management.Automation.Internal.Host.InternalHost"})
_NON_PUBLIC, _PUBLIC = 32, 16


def reflect_member(type_name: str, method: str, args: list[Any]) -> Any:
    """``$type.GetProperty(name, flags)`` / ``GetField`` / ``GetMethod``: $null for a non-public member of a type
    the lab knows has none; every other reflection question is outside the lab."""
    if len(args) == 2 and isinstance(args[1], EnumValue) and args[1].type_name == "System.Reflection.BindingFlags":
        flags = args[1].value
        if type_name in _NO_NON_PUBLIC_MEMBERS and flags & _NON_PUBLIC and not flags & _PUBLIC:
            return None
    raise NotSupportedByLab(f"reflection: [{type_name}].{method}()")
