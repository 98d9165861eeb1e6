"""Engine objects scripts reach through automatic variables: ``$ExecutionContext`` and ``$MyInvocation``.

Only the members the lab models answer; any other member raises NotSupportedByLab rather than ``$null``, so a
script never runs on a guessed value (about_Automatic_Variables; System.Management.Automation.EngineIntrinsics,
SessionState, PathIntrinsics and InvocationInfo).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from migrator.lab.ps.ast import TypeName
from migrator.lab.ps.dotnet_io import file_system_of
from migrator.lab.ps.errors import NotSupportedByLab, method_invocation_error
from migrator.lab.ps.values import PSList, to_str
from migrator.lab.shell import Hashtable, PowerShellError, PSObject

if TYPE_CHECKING:
    from migrator.lab.ps.interpreter import Interpreter


class PathIntrinsics:
    """``$ExecutionContext.SessionState.Path``."""

    ps_type_names = ("System.Management.Automation.PathIntrinsics", "System.Object")

    def __init__(self, interp: Interpreter) -> None:
        self._interp = interp

    def ps_to_string(self) -> str:
        return "System.Management.Automation.PathIntrinsics"

    def ps_get_member(self, name: str) -> Any:
        raise NotSupportedByLab(f"$ExecutionContext.SessionState.Path.{name}")

    def ps_call_method(self, name: str, args: list[Any]) -> Any:
        folded = name.casefold()
        if folded == "getunresolvedproviderpathfrompspath" and len(args) == 1:
            if args[0] is None:
                raise method_invocation_error(
                    name, 1, "Value cannot be null.\r\nParameter name: path", "System.ArgumentNullException"
                )
            files = file_system_of(self._interp.host, f"$ExecutionContext.SessionState.Path.{name}()")
            try:
                return files.provider_path(to_str(args[0]))
            except PowerShellError as error:
                record = error.record
                raise method_invocation_error(name, 1, record.message, record.exception_type) from None
        raise NotSupportedByLab(f"$ExecutionContext.SessionState.Path.{name}()")


class SessionStateView:
    """``$ExecutionContext.SessionState``."""

    ps_type_names = ("System.Management.Automation.SessionState", "System.Object")

    def __init__(self, interp: Interpreter) -> None:
        self._path = PathIntrinsics(interp)

    def ps_to_string(self) -> str:
        return "System.Management.Automation.SessionState"

    def ps_get_member(self, name: str) -> Any:
        if name.casefold() == "path":
            return self._path
        raise NotSupportedByLab(f"$ExecutionContext.SessionState.{name}")

    def ps_call_method(self, name: str, args: list[Any]) -> Any:
        raise NotSupportedByLab(f"$ExecutionContext.SessionState.{name}()")


class EngineIntrinsics:
    """``$ExecutionContext``."""

    ps_type_names = ("System.Management.Automation.EngineIntrinsics", "System.Object")

    def __init__(self, interp: Interpreter) -> None:
        self._session_state = SessionStateView(interp)

    def ps_to_string(self) -> str:
        return "System.Management.Automation.EngineIntrinsics"

    def ps_get_member(self, name: str) -> Any:
        if name.casefold() == "sessionstate":
            return self._session_state
        raise NotSupportedByLab(f"$ExecutionContext.{name}")

    def ps_call_method(self, name: str, args: list[Any]) -> Any:
        raise NotSupportedByLab(f"$ExecutionContext.{name}()")


class InvocationInfo:
    """``$MyInvocation`` of a script, function or script block.

    ``UnboundArguments`` are the arguments no parameter took: every argument of a script without a param block
    (pypsrp's copy.ps1 and fetch.ps1 read their destination and flag from it)."""

    ps_type_names = ("System.Management.Automation.InvocationInfo", "System.Object")

    def __init__(self, command_name: str, bound: Hashtable, unbound: list[Any]) -> None:
        self.command_name = command_name  # "" for the script itself, "<ScriptBlock>"-like names for blocks
        self.bound = bound
        self.unbound = PSList(unbound, "System.Collections.Generic.List[System.Object]", TypeName("System.Object"))

    def ps_to_string(self) -> str:
        return "System.Management.Automation.InvocationInfo"

    @property
    def _named(self) -> bool:
        return bool(self.command_name) and not self.command_name.startswith("<")

    def ps_get_member(self, name: str) -> Any:
        folded = name.casefold()
        if folded == "unboundarguments":
            return self.unbound
        if folded == "boundparameters":
            return self.bound
        if folded == "invocationname":
            return self.command_name if self._named else ""
        if folded == "mycommand" and self._named:
            return PSObject(
                [("Name", self.command_name), ("CommandType", "Function")],
                ["System.Management.Automation.FunctionInfo", "System.Object"],
                to_string=self.command_name,
            )
        if folded in ("pscommandpath", "psscriptroot", "scriptname"):
            return ""  # a script sent over PSRP (add_script) comes from no file
        raise NotSupportedByLab(f"$MyInvocation.{name}")

    def ps_call_method(self, name: str, args: list[Any]) -> Any:
        raise NotSupportedByLab(f"$MyInvocation.{name}()")
