"""A runspace's state, and the small values every part of the interpreter hands around.

:class:`Session` is one runspace's state (global scope, ``$Error``, ``$env:`` overrides, the stop flag);
:class:`Scope` holds variables and functions (dynamic scoping: a function's scope is a child of its caller's);
:class:`Streams` says where the non-output streams go right now; a :class:`Sink` is anything output is
appended to (:data:`DISCARD` drops it); :data:`VOID` is a void method's result; :func:`normalise_action`
reads an ActionPreference. The evaluator (``interpreter.py``) and the pipeline (``commands.py``) both use
them, and so do the binder, the members and the generic cmdlets: here, below all of them, none of those has
to import the evaluator.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

from migrator.lab.ps import ast
from migrator.lab.ps.errors import runtime_error
from migrator.lab.ps.values import PSList, PSVersion, to_str
from migrator.lab.shell import Hashtable, Host, PSObject


class Sink(Protocol):
    def append(self, item: Any, /) -> None: ...


class _Discard:
    def append(self, item: Any, /) -> None:
        return None


DISCARD = _Discard()


class _Void:
    """A void method's result (``$list.Clear()``): writes nothing to the pipeline."""

    def __repr__(self) -> str:
        return "VOID"


VOID = _Void()

ACTION_PREFERENCES = ("Continue", "SilentlyContinue", "Stop", "Ignore", "Inquire", "Suspend")


def normalise_action(value: Any, parameter: str = "ErrorAction") -> str:
    text = to_str(value).strip()
    for name in ACTION_PREFERENCES:
        if name.casefold() == text.casefold():
            if name in ("Suspend",):
                raise runtime_error(
                    f"The value {name} is not supported for an ActionPreference variable.",
                    "InvalidArgument",
                    "InvalidArgument",
                )
            return name
    raise runtime_error(
        f"Cannot bind parameter '{parameter}'. Cannot convert value \"{text}\" to type "
        '"System.Management.Automation.ActionPreference". Error: "Unable to match the identifier name '
        f"{text} to a valid enumerator name. Specify one of the following enumerator names and try again:\r\n"
        'SilentlyContinue, Stop, Continue, Inquire, Ignore, Suspend"',
        f"CannotConvertArgumentNoMessage,{parameter}",
        "InvalidArgument",
        "System.Management.Automation.ParameterBindingException",
    )


# ---- scopes ----------------------------------------------------------------------------------------------


class Scope:
    __slots__ = ("constraints", "functions", "parent", "vars")

    def __init__(self, parent: Scope | None) -> None:
        self.vars: dict[str, Any] = {}
        self.functions: dict[str, FunctionInfo] = {}
        self.constraints: dict[str, ast.TypeName] | None = None
        self.parent = parent


@dataclasses.dataclass(frozen=True)
class FunctionInfo:
    name: str
    block: ast.ScriptBlockAst
    filter: bool = False


class Streams:
    """Where the non-output streams go right now (redirections swap these)."""

    __slots__ = ("debug", "errors", "information", "verbose", "warnings")

    def __init__(self, errors: Sink, warnings: Sink, verbose: Sink, information: Sink, debug: Sink) -> None:
        self.errors = errors
        self.warnings = warnings
        self.verbose = verbose
        self.information = information
        self.debug = debug


class Session:
    """One runspace's state."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.global_scope = Scope(None)
        self.error_list = PSList([], "System.Collections.ArrayList")
        self.env_overrides: dict[str, tuple[str, str | None]] = {}
        self.stopping = False
        self.last_success = True
        self.error_count = 0
        self.native_failed = False
        g = self.global_scope.vars
        g["erroractionpreference"] = "Continue"
        g["warningpreference"] = "Continue"
        g["verbosepreference"] = "SilentlyContinue"
        g["debugpreference"] = "SilentlyContinue"
        g["informationpreference"] = "SilentlyContinue"
        g["progresspreference"] = "Continue"
        g["confirmpreference"] = "High"
        g["whatifpreference"] = False
        g["error"] = self.error_list
        g["psversiontable"] = _ps_version_table()
        g["psculture"] = "en-US"
        g["psuiculture"] = "en-US"
        g["psscriptroot"] = ""
        g["pscommandpath"] = ""
        g["host"] = PSObject(
            [("Name", "ServerRemoteHost"), ("Version", PSVersion(1, 0, 0, 0)), ("CurrentCulture", "en-US")],
            ["System.Management.Automation.Internal.Host.InternalHost", "System.Object"],
            to_string="System.Management.Automation.Internal.Host.InternalHost",
        )
        home = self.env_get("USERPROFILE")
        if home is not None:
            g["home"] = home

    # $env: is the host's environment plus this runspace's assignments (case-insensitive names).
    def env_get(self, name: str) -> str | None:
        folded = name.casefold()
        if folded in self.env_overrides:
            return self.env_overrides[folded][1]
        for key, value in self.host.environment().items():
            if key.casefold() == folded:
                return value
        return None

    def env_set(self, name: str, value: str | None) -> None:
        self.env_overrides[name.casefold()] = (name, value)

    def env_items(self) -> list[tuple[str, str]]:
        merged: dict[str, tuple[str, str | None]] = {
            key.casefold(): (key, value) for key, value in self.host.environment().items()
        }
        merged.update(self.env_overrides)
        return sorted(((k, v) for k, v in merged.values() if v is not None), key=lambda kv: kv[0].casefold())


def _ps_version_table() -> Hashtable:
    # $PSVersionTable of Windows PowerShell 5.1 on Windows 10/11 22H2 (build 19041-family servicing).
    return Hashtable(
        [
            ("PSVersion", PSVersion(5, 1, 19041, 4648)),
            ("PSEdition", "Desktop"),
            (
                "PSCompatibleVersions",
                [
                    PSVersion(1, 0),
                    PSVersion(2, 0),
                    PSVersion(3, 0),
                    PSVersion(4, 0),
                    PSVersion(5, 0),
                    PSVersion(5, 1, 19041, 4648),
                ],
            ),
            ("BuildVersion", PSVersion(10, 0, 19041, 4648)),
            ("CLRVersion", PSVersion(4, 0, 30319, 42000)),
            ("WSManStackVersion", PSVersion(3, 0)),
            ("PSRemotingProtocolVersion", PSVersion(2, 3)),
            ("SerializationVersion", PSVersion(1, 1, 0, 1)),
        ]
    )
