"""The lab's PowerShell-subset interpreter (Windows PowerShell 5.1 semantics, tree-sitter-powershell grammar).

Public surface:

- :class:`PSRunspace` — ``shell.Runspace`` for one device and principal.
- :func:`run_script` — one script, its parameters and input, in a fresh runspace.
- :func:`format_default` — objects as Out-String / Out-Default print them.
- :func:`cmdlet`, :data:`REGISTRY`, :class:`GenericCmdlet` — the registry of the interpreter's own cmdlets.
- :func:`register_file_system`, :class:`HostFileSystem` — how a device lends System.IO its files.

Module map: ``parser`` (text -> ``ast``), ``interpreter`` (statements, expressions, error streams),
``session`` (a runspace's state: scopes, streams, sinks), ``commands`` (pipelines, command resolution,
natives), ``binder`` (parameters), ``members`` (properties, methods, static .NET members), ``dotnet_io``
(System.IO, hashing, BitConverter), ``intrinsics`` (``$ExecutionContext``, ``$MyInvocation``), ``operators``,
``values`` (conversions), ``formatting``, ``jsonconv``, ``cmdlets``, ``errors``, ``runspace``.
"""

from __future__ import annotations

from migrator.lab.ps.cmdlets import REGISTRY, GenericCmdlet, GenericCmdletSpec, cmdlet
from migrator.lab.ps.dotnet_io import HostFileSystem, register_file_system
from migrator.lab.ps.errors import NOT_SUPPORTED_EXCEPTION, NotSupportedByLab
from migrator.lab.ps.formatting import format_default
from migrator.lab.ps.runspace import PSRunspace, run_script

__all__ = [
    "NOT_SUPPORTED_EXCEPTION",
    "REGISTRY",
    "GenericCmdlet",
    "GenericCmdletSpec",
    "HostFileSystem",
    "NotSupportedByLab",
    "PSRunspace",
    "cmdlet",
    "format_default",
    "register_file_system",
    "run_script",
]
