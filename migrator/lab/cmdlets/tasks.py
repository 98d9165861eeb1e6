"""The ScheduledTasks module (CDXML over ``Root/Microsoft/Windows/TaskScheduler``) on the device's task list.

Objects are the module's CIM classes (MSFT_ScheduledTask, MSFT_TaskExecAction, MSFT_TaskLogonTrigger,
MSFT_TaskPrincipal2, MSFT_TaskSettings3, MSFT_TaskDynamicInfo); errors are the module's
(``CmdletizationQuery_NotFound_TaskName,Get-ScheduledTask``, CimException ``HRESULT 0x800700b7`` for an
existing task, ``HRESULT 0x80070534`` for an account Windows cannot map to a SID).

Running follows the Task Scheduler: Start-ScheduledTask hands the task to :meth:`Lab.start_task`, which starts
it about a second later on the lab clock; an Interactive task only runs in its user's existing session (no
session: nothing happens, LastTaskResult stays 0x41303). Once triggers fire on the clock; at-logon triggers run
at :meth:`Lab.sign_in`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

from migrator.lab.boundary import NotModelledByLab
from migrator.lab.cmdlets._base import (
    DeviceBinding,
    account_parts,
    as_list,
    as_str_list,
    binding,
    cim_object,
    error_record,
    flag,
    opt_str,
    prop,
    to_datetime,
)
from migrator.lab.cmdlets.paths import is_wildcard, wildcard_match
from migrator.lab.model import ScheduledTask, TaskAction, TaskTrigger
from migrator.lab.shell import (
    CmdletContext,
    CmdletSpec,
    ErrorCategory,
    ErrorRecord,
    Param,
    PowerShellError,
    PrincipalKind,
    PSObject,
)

NAMESPACE = "Root/Microsoft/Windows/TaskScheduler"
CIM_EXCEPTION = "Microsoft.Management.Infrastructure.CimException"
# SCHED_S_TASK_HAS_NOT_RUN / SCHED_S_TASK_TERMINATED (Task Scheduler error and success constants).
TASK_HAS_NOT_RUN = 0x41303
TASK_TERMINATED = 0x41306
# Get-ScheduledTaskInfo shows this LastRunTime for a task that never ran.
NEVER_RUN = datetime(1999, 11, 30, tzinfo=UTC)

LOGON_TYPES = ("None", "Password", "S4U", "Interactive", "Group", "ServiceAccount", "InteractiveOrPassword")
RUN_LEVELS = ("Limited", "Highest")
_SYSTEM_NAMES = ("system", "nt authority\\system", "s-1-5-18", "localsystem")
_SERVICE_NAMES = {
    "local service": "LOCAL SERVICE",
    "nt authority\\local service": "LOCAL SERVICE",
    "nt authority\\localservice": "LOCAL SERVICE",
    "s-1-5-19": "LOCAL SERVICE",
    "network service": "NETWORK SERVICE",
    "nt authority\\network service": "NETWORK SERVICE",
    "nt authority\\networkservice": "NETWORK SERVICE",
    "s-1-5-20": "NETWORK SERVICE",
}
_GROUPS = {
    "users": "BUILTIN\\Users",
    "builtin\\users": "BUILTIN\\Users",
    "s-1-5-32-545": "BUILTIN\\Users",
    "administrators": "BUILTIN\\Administrators",
    "builtin\\administrators": "BUILTIN\\Administrators",
    "s-1-5-32-544": "BUILTIN\\Administrators",
    "interactive": "NT AUTHORITY\\INTERACTIVE",
    "nt authority\\interactive": "NT AUTHORITY\\INTERACTIVE",
    "s-1-5-4": "NT AUTHORITY\\INTERACTIVE",
}


# ---- errors ----------------------------------------------------------------------------------------------


def _cim_error(command: str, message: str, hresult: int, category: ErrorCategory, target: Any = None) -> ErrorRecord:
    return error_record(
        command,
        message,
        f"HRESULT 0x{hresult:08x}",
        category,
        CIM_EXCEPTION,
        "PS_ScheduledTask" if target is None else target,
        qualifier=command,
    )


def _not_found(command: str, prop_name: str, value: str) -> ErrorRecord:
    # CDXML query miss (CmdletizationCoreResources.CimJob_NotFound_ComplexCase); note the two spaces.
    return error_record(
        command,
        f"No MSFT_ScheduledTask objects found with property '{prop_name}' equal to '{value}'.  "
        "Verify the value of the property and retry.",
        f"CmdletizationQuery_NotFound_{prop_name}",
        "ObjectNotFound",
        "Microsoft.PowerShell.Cmdletization.Cim.CimJobException",
        value,
        qualifier=command,
    )


def _file_not_found(command: str, name: str) -> ErrorRecord:
    return _cim_error(command, "The system cannot find the file specified.", 0x80070002, "ObjectNotFound", name)


def _enum_error(command: str, parameter: str, enum_type: str, value: str, names: tuple[str, ...]) -> PowerShellError:
    message = (
        f"Cannot process argument transformation on parameter '{parameter}'. Cannot convert value \"{value}\" to "
        f'type "Microsoft.PowerShell.Cmdletization.GeneratedTypes.ScheduledTask.{enum_type}". Error: "Unable to '
        f"match the identifier name {value} to a valid enumerator name. Specify one of the following enumerator "
        f'names and try again:\r\n{", ".join(names)}"'
    )
    return PowerShellError(
        error_record(
            command,
            message,
            "ParameterArgumentTransformationError",
            "InvalidData",
            "System.Management.Automation.ParameterBindingArgumentTransformationException",
            value,
            qualifier=command,
        )
    )


def _pick(value: str | None, names: tuple[str, ...], command: str, parameter: str, enum_type: str) -> str | None:
    if value is None:
        return None
    for name in names:
        if name.casefold() == value.casefold():
            return name
    raise _enum_error(command, parameter, enum_type, value, names)


# ---- CIM objects --------------------------------------------------------------------------------------------


def _duration(value: Any) -> str | None:
    """A TimeSpan as Task Scheduler stores it (ISO 8601 duration, ``PT72H``)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        value = timedelta(seconds=value)
    if not isinstance(value, timedelta):
        return str(value)
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "PT0S"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = "P" + (f"{days}D" if days else "")
    time = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + (f"{secs}S" if secs else "")
    return text + ("T" + time if time else "")


def _boundary(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds")


def action_object(action: TaskAction) -> PSObject:
    return cim_object(
        NAMESPACE,
        ("MSFT_TaskExecAction", "MSFT_TaskAction"),
        [
            ("Id", None),
            ("Arguments", action.arguments or None),
            ("Execute", action.execute),
            ("WorkingDirectory", action.working_directory or None),
        ],
    )


def _repetition() -> PSObject:
    return cim_object(
        NAMESPACE,
        ("MSFT_TaskRepetitionPattern",),
        [("Duration", None), ("Interval", None), ("StopAtDurationEnd", False)],
    )


def trigger_object(trigger: TaskTrigger) -> PSObject:
    common: list[tuple[str, Any]] = [
        ("Enabled", True),
        ("EndBoundary", None),
        ("ExecutionTimeLimit", None),
        ("Id", None),
        ("Repetition", _repetition()),
        ("StartBoundary", _boundary(trigger.start)),
    ]
    if trigger.kind == "AtLogOn":
        return cim_object(
            NAMESPACE,
            ("MSFT_TaskLogonTrigger", "MSFT_TaskTrigger"),
            [*common, ("Delay", None), ("UserId", trigger.user_id)],
        )
    if trigger.kind == "AtStartup":
        return cim_object(NAMESPACE, ("MSFT_TaskBootTrigger", "MSFT_TaskTrigger"), [*common, ("Delay", None)])
    return cim_object(NAMESPACE, ("MSFT_TaskTimeTrigger", "MSFT_TaskTrigger"), [*common, ("RandomDelay", None)])


def principal_object(
    user_id: str | None, logon_type: str, run_level: str, group_id: str | None = None, principal_id: str = "Author"
) -> PSObject:
    return cim_object(
        NAMESPACE,
        ("MSFT_TaskPrincipal2", "MSFT_TaskPrincipal"),
        [
            ("DisplayName", None),
            ("GroupId", group_id),
            ("Id", principal_id),
            ("LogonType", logon_type),
            ("RunLevel", run_level),
            ("UserId", user_id),
            ("ProcessTokenSidType", "Default"),
            ("RequiredPrivilege", None),
        ],
    )


def settings_object(args: Mapping[str, Any] | None = None, delete_expired: bool = False) -> PSObject:
    """MSFT_TaskSettings3 with New-ScheduledTaskSettingsSet's defaults, overridden by its switches."""
    a = args or {}
    return cim_object(
        NAMESPACE,
        ("MSFT_TaskSettings3", "MSFT_TaskSettings2", "MSFT_TaskSettings"),
        [
            ("AllowDemandStart", not flag(a, "DisallowDemandStart")),
            ("AllowHardTerminate", not flag(a, "DisallowHardTerminate")),
            ("Compatibility", opt_str(a, "Compatibility") or "Win8"),
            (
                "DeleteExpiredTaskAfter",
                _duration(a.get("DeleteExpiredTaskAfter")) or ("PT0S" if delete_expired else None),
            ),
            ("DisallowStartIfOnBatteries", not flag(a, "AllowStartIfOnBatteries")),
            ("Enabled", not flag(a, "Disable")),
            ("ExecutionTimeLimit", _duration(a.get("ExecutionTimeLimit")) or "PT72H"),
            ("Hidden", flag(a, "Hidden")),
            ("IdleSettings", None),
            ("MultipleInstances", opt_str(a, "MultipleInstances") or "IgnoreNew"),
            ("NetworkSettings", None),
            ("Priority", int(a.get("Priority", 7))),
            ("RestartCount", int(a.get("RestartCount", 0))),
            ("RestartInterval", _duration(a.get("RestartInterval"))),
            ("RunOnlyIfIdle", flag(a, "RunOnlyIfIdle")),
            ("RunOnlyIfNetworkAvailable", flag(a, "RunOnlyIfNetworkAvailable")),
            ("StartWhenAvailable", flag(a, "StartWhenAvailable")),
            ("StopIfGoingOnBatteries", not flag(a, "DontStopIfGoingOnBatteries")),
            ("WakeToRun", flag(a, "WakeToRun")),
            ("DisallowStartOnRemoteAppSession", flag(a, "DisallowStartOnRemoteAppSession")),
            ("UseUnifiedSchedulingEngine", True),
            ("MaintenanceSettings", None),
            ("volatile", False),
        ],
    )


def task_object(task: ScheduledTask, settings: PSObject | None = None) -> PSObject:
    group = task.user_id if task.user_id in _GROUPS.values() else None
    return cim_object(
        NAMESPACE,
        ("MSFT_ScheduledTask",),
        [
            ("Actions", [action_object(a) for a in task.actions]),
            ("Author", task.author or None),
            ("Date", _boundary(task.registered)),
            ("Description", task.description or None),
            ("Documentation", None),
            (
                "Principal",
                principal_object(None if group else task.user_id, task.logon_type, task.run_level, group),
            ),
            ("SecurityDescriptor", None),
            ("Settings", settings or settings_object(delete_expired=task.delete_expired_after_run)),
            ("Source", None),
            ("State", task.state),
            ("TaskName", task.name),
            ("TaskPath", task.path),
            ("Triggers", [trigger_object(t) for t in task.triggers]),
            ("URI", task.path + task.name),
            ("Version", None),
        ],
    )


def _next_run(b: DeviceBinding, task: ScheduledTask) -> datetime | None:
    if task.state == "Disabled":
        return None
    now = b.lab.clock.now()
    upcoming = [t.start for t in task.triggers if t.kind == "Once" and t.start is not None and t.start > now]
    return min(upcoming) if upcoming else None


def info_object(b: DeviceBinding, task: ScheduledTask) -> PSObject:
    return cim_object(
        NAMESPACE,
        ("MSFT_TaskDynamicInfo",),
        [
            ("LastRunTime", task.last_run_time or NEVER_RUN),
            ("LastTaskResult", task.last_task_result),
            ("NextRunTime", _next_run(b, task)),
            ("NumberOfMissedRuns", task.number_of_missed_runs),
            ("TaskName", task.name),
            ("TaskPath", task.path),
        ],
    )


# ---- lookups ----------------------------------------------------------------------------------------------


def is_builtin_task_folder(path: str | None) -> bool:
    """``\\Microsoft\\...``: where Windows keeps its own tasks, none of which the lab models."""
    return path is not None and normalize_task_path(path).casefold().startswith("\\microsoft\\")


def normalize_task_path(path: str | None) -> str:
    """``Migrator`` → ``\\Migrator\\``: Task Scheduler folders always start and end with a backslash."""
    if not path:
        return "\\"
    text = path.replace("/", "\\")
    if not text.startswith("\\"):
        text = "\\" + text
    if not text.endswith("\\") and not is_wildcard(text[-1]):
        text += "\\"
    return text


def _find(b: DeviceBinding, name: str | None, path: str | None) -> list[ScheduledTask]:
    found = []
    for task in b.device.tasks:
        if name is not None and not (
            wildcard_match(name, task.name) if is_wildcard(name) else name.casefold() == task.name.casefold()
        ):
            continue
        if path is not None:
            wanted = normalize_task_path(path)
            if not (
                wildcard_match(wanted, task.path) if is_wildcard(wanted) else wanted.casefold() == task.path.casefold()
            ):
                continue
        found.append(task)
    return sorted(found, key=lambda t: (t.path.casefold(), t.name.casefold()))


def _targets(ctx: CmdletContext, b: DeviceBinding, args: Mapping[str, Any], missing: str) -> Iterator[ScheduledTask]:
    """Tasks named by -InputObject or -TaskName/-TaskPath; ``missing`` picks the not-found error style."""
    command = ctx.command_name
    if args.get("InputObject") is not None:
        for obj in as_list(args["InputObject"]):
            name, path = prop(obj, "TaskName"), prop(obj, "TaskPath")
            tasks = _find(b, str(name), str(path) if path else None) if name else []
            if not tasks:
                ctx.write_error(_file_not_found(command, str(name)))
            yield from tasks
        return
    path = opt_str(args, "TaskPath")
    names = as_str_list(args.get("TaskName")) or [None]  # type: ignore[list-item]
    if names == [None] and path is None:
        # Windows lists its ~150 built-in tasks too; the lab holds only the ones scripts registered.
        raise NotModelledByLab(f"{command} of every task (Windows' own tasks)", module="lab/cmdlets/tasks")
    for name in cast(list[str | None], names):
        tasks = _find(b, name, path)
        if not tasks and is_builtin_task_folder(path):
            raise NotModelledByLab(f"The built-in task folder {path}", module="lab/cmdlets/tasks")
        if not tasks and (name is None or not is_wildcard(name)):
            if missing == "query":
                ctx.write_error(
                    _not_found(command, "TaskName", name)
                    if name is not None
                    else _not_found(command, "TaskPath", path or "")
                )
            else:
                ctx.write_error(_file_not_found(command, name or ""))
        yield from tasks


# ---- account resolution ----------------------------------------------------------------------------------------


def resolve_account(b: DeviceBinding, account: str) -> str | None:
    """The account a task principal names, as stored (None: Windows cannot map it to a SID)."""
    folded = account.strip().casefold()
    if folded in _SYSTEM_NAMES:
        return "SYSTEM"
    if folded in _SERVICE_NAMES:
        return _SERVICE_NAMES[folded]
    if folded in _GROUPS:
        return _GROUPS[folded]
    user = b.device.user(account.strip())
    if user is not None:
        return user.qualified_name
    admin = b.lab.fleet.admin
    if folded in (admin.qualified_name.casefold(), admin.username.casefold(), b.principal.sid.casefold()) and (
        b.principal.kind is PrincipalKind.ADMIN
    ):
        return admin.qualified_name
    if folded == admin.qualified_name.casefold():
        return admin.qualified_name
    return None


def _unmapped(command: str) -> ErrorRecord:
    return _cim_error(
        command, "No mapping between account names and security IDs was done.", 0x80070534, "NotSpecified"
    )


# ---- builders ------------------------------------------------------------------------------------------------------


def _new_action(ctx: CmdletContext, args: dict[str, Any]) -> Iterator[Any]:
    action = TaskAction(
        execute=str(args["Execute"]),
        arguments=opt_str(args, "Argument") or "",
        working_directory=opt_str(args, "WorkingDirectory") or "",
    )
    yield action_object(action)


def _new_trigger(ctx: CmdletContext, args: dict[str, Any]) -> Iterator[Any]:
    command = ctx.command_name
    at = to_datetime(args.get("At"))
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=UTC)  # lab devices keep their clocks in UTC
    if flag(args, "AtLogOn"):
        user = opt_str(args, "User")
        yield trigger_object(TaskTrigger(kind="AtLogOn", user_id=user))
    elif flag(args, "AtStartup"):
        yield trigger_object(TaskTrigger(kind="AtStartup"))
    elif flag(args, "Once"):
        if at is None:
            raise PowerShellError(
                error_record(
                    command,
                    "Cannot validate argument on parameter 'At'. The argument is null or empty.",
                    "ParameterArgumentValidationError",
                    "InvalidData",
                    "System.Management.Automation.ParameterBindingValidationException",
                    qualifier=command,
                )
            )
        yield trigger_object(TaskTrigger(kind="Once", start=at))
    else:
        raise PowerShellError(
            error_record(
                command,
                "Parameter set cannot be resolved using the specified named parameters.",
                "AmbiguousParameterSet",
                "InvalidArgument",
                "System.Management.Automation.ParameterBindingException",
                qualifier=command,
            )
        )


def _new_principal(ctx: CmdletContext, args: dict[str, Any]) -> Iterator[Any]:
    command = ctx.command_name
    logon = _pick(opt_str(args, "LogonType"), LOGON_TYPES, command, "LogonType", "LogonTypeEnum")
    level = _pick(opt_str(args, "RunLevel"), RUN_LEVELS, command, "RunLevel", "RunLevelEnum") or "Limited"
    group = opt_str(args, "GroupId")
    user = opt_str(args, "UserId")
    yield principal_object(user, logon or ("Group" if group else "None"), level, group, opt_str(args, "Id") or "Author")


def _new_settings(ctx: CmdletContext, args: dict[str, Any]) -> Iterator[Any]:
    yield settings_object(args)


def _new_task(ctx: CmdletContext, args: dict[str, Any]) -> Iterator[Any]:
    yield cim_object(
        NAMESPACE,
        ("MSFT_ScheduledTask",),
        [
            ("Actions", as_list(args.get("Action"))),
            ("Author", None),
            ("Date", None),
            ("Description", opt_str(args, "Description")),
            ("Documentation", None),
            ("Principal", args.get("Principal")),
            ("SecurityDescriptor", None),
            ("Settings", args.get("Settings") or settings_object()),
            ("Source", None),
            ("State", None),
            ("TaskName", None),
            ("TaskPath", None),
            ("Triggers", as_list(args.get("Trigger"))),
            ("URI", None),
            ("Version", None),
        ],
    )


# ---- Register-ScheduledTask ------------------------------------------------------------------------------------------


def _is_class(obj: Any, cls: str) -> bool:
    return isinstance(obj, PSObject) and any(name.endswith("#" + cls) for name in obj.type_names)


def _parse_trigger(obj: Any) -> TaskTrigger:
    start = to_datetime(prop(obj, "StartBoundary"))
    if start is not None and start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    if _is_class(obj, "MSFT_TaskLogonTrigger"):
        user = prop(obj, "UserId")
        return TaskTrigger(kind="AtLogOn", user_id=str(user) if user else None)
    if _is_class(obj, "MSFT_TaskBootTrigger"):
        return TaskTrigger(kind="AtStartup")
    return TaskTrigger(kind="Once", start=start)


def _register(ctx: CmdletContext, args: dict[str, Any]) -> Iterator[Any]:
    b = binding(ctx)
    command = ctx.command_name
    source = args.get("InputObject")
    actions_in = as_list(args.get("Action")) or as_list(prop(source, "Actions"))
    triggers_in = as_list(args.get("Trigger")) or as_list(prop(source, "Triggers"))
    principal_in = args.get("Principal") or prop(source, "Principal")
    settings_in = args.get("Settings") or prop(source, "Settings")
    description = opt_str(args, "Description") or prop(source, "Description") or ""
    name = str(args["TaskName"])
    path = normalize_task_path(opt_str(args, "TaskPath"))
    if not actions_in:
        raise PowerShellError(
            error_record(
                command,
                "The task XML is missing a required element or attribute.\r\n(1,2)::ERROR: missing Actions element",
                "HRESULT 0x80041319",
                "NotSpecified",
                CIM_EXCEPTION,
                "PS_ScheduledTask",
                qualifier=command,
            )
        )
    caller_domain, caller_name = account_parts(b.lab, b.device, b.principal)
    # Who the task runs as: -Principal, else -User, else the caller (Register-ScheduledTask's default).
    if principal_in is not None:
        user_text = prop(principal_in, "UserId") or prop(principal_in, "GroupId")
        logon = str(prop(principal_in, "LogonType") or "None")
        level = str(prop(principal_in, "RunLevel") or "Limited")
    elif opt_str(args, "User"):
        user_text = opt_str(args, "User")
        logon = "ServiceAccount" if resolve_account(b, str(user_text)) == "SYSTEM" else "Interactive"
        level = _pick(opt_str(args, "RunLevel"), RUN_LEVELS, command, "RunLevel", "RunLevelEnum") or "Limited"
    else:
        user_text = f"{caller_domain}\\{caller_name}"
        logon = "Interactive"
        level = _pick(opt_str(args, "RunLevel"), RUN_LEVELS, command, "RunLevel", "RunLevelEnum") or "Limited"
    user_id = resolve_account(b, str(user_text)) if user_text else None
    if user_id is None:
        raise PowerShellError(_unmapped(command))
    triggers = [_parse_trigger(t) for t in triggers_in]
    for trigger in triggers:
        if trigger.user_id is not None:
            mapped = resolve_account(b, trigger.user_id)
            if mapped is None:
                raise PowerShellError(_unmapped(command))
            trigger.user_id = mapped
    # A standard user may register tasks for themselves only, and never elevated (E_ACCESSDENIED).
    if b.principal.kind is PrincipalKind.USER:
        own = b.device.user(b.principal.sid)
        if own is None or user_id.casefold() != own.qualified_name.casefold() or level == "Highest":
            raise PowerShellError(_cim_error(command, "Access is denied.", 0x80070005, "PermissionDenied"))
    existing = _find(b, name, path)
    if existing and not flag(args, "Force"):
        raise PowerShellError(
            _cim_error(command, "Cannot create a file when that file already exists.", 0x800700B7, "ResourceExists")
        )
    for old in existing:
        b.device.tasks.remove(old)
    stored_logon = (
        logon
        if logon in ("Interactive", "ServiceAccount", "Password", "S4U", "InteractiveOrPassword")
        else ("ServiceAccount" if user_id == "SYSTEM" else "Interactive")
    )
    enabled = prop(settings_in, "Enabled", True) is not False
    task = ScheduledTask(
        name=name,
        path=path,
        user_id=user_id,
        logon_type=cast(
            Literal["Interactive", "ServiceAccount", "Password", "S4U", "InteractiveOrPassword"], stored_logon
        ),
        run_level="Highest" if level.casefold() == "highest" else "Limited",
        actions=[
            TaskAction(
                execute=str(prop(a, "Execute") or ""),
                arguments=str(prop(a, "Arguments") or ""),
                working_directory=str(prop(a, "WorkingDirectory") or ""),
            )
            for a in actions_in
        ],
        triggers=triggers,
        state="Ready" if enabled else "Disabled",
        author=f"{caller_domain}\\{caller_name}",
        description=str(description),
        registered=b.lab.clock.now(),
        delete_expired_after_run=prop(settings_in, "DeleteExpiredTaskAfter") is not None,
    )
    b.device.tasks.append(task)
    _schedule_time_triggers(b, task)
    yield task_object(task, settings_in if isinstance(settings_in, PSObject) else None)


def _schedule_time_triggers(b: DeviceBinding, task: ScheduledTask) -> None:
    """Once triggers start the task at their time (a missed start does not run: StartWhenAvailable aside)."""
    lab, device_name, uri = b.lab, b.device.name, task.path + task.name
    registered = task.registered
    for trigger in task.triggers:
        if trigger.kind != "Once" or trigger.start is None or trigger.start <= lab.clock.now():
            continue

        def fire() -> None:
            device = lab.fleet.device(device_name)
            if device is None:
                return
            with device.lock:
                current = next((t for t in device.tasks if (t.path + t.name).casefold() == uri.casefold()), None)
                # Re-registered or disabled since: this trigger belongs to a task that no longer exists.
                if current is None or current.registered != registered or current.state == "Disabled":
                    return
            if not lab.run_task(device, current):
                with device.lock:
                    current.number_of_missed_runs += 1

        lab.clock.call_at(trigger.start, fire)


# ---- the rest of the module ----------------------------------------------------------------------------------------


def _get_tasks(ctx: CmdletContext, args: dict[str, Any]) -> Iterator[Any]:
    b = binding(ctx)
    for task in _targets(ctx, b, args, "query"):
        yield task_object(task)


def _get_info(ctx: CmdletContext, args: dict[str, Any]) -> Iterator[Any]:
    b = binding(ctx)
    for task in _targets(ctx, b, args, "file"):
        yield info_object(b, task)


def _start(ctx: CmdletContext, args: dict[str, Any]) -> Iterator[Any]:
    b = binding(ctx)
    for task in _targets(ctx, b, args, "file"):
        if task.state == "Disabled":
            ctx.write_error(
                _cim_error(ctx.command_name, "The task is disabled.", 0x80041326, "NotSpecified", task.name)
            )
            continue
        if task.state in ("Running", "Queued"):
            continue  # MultipleInstances IgnoreNew: a running task is not started again
        b.lab.start_task(b.device, task)
    return
    yield


def _stop(ctx: CmdletContext, args: dict[str, Any]) -> Iterator[Any]:
    b = binding(ctx)
    for task in _targets(ctx, b, args, "file"):
        if task.state in ("Running", "Queued"):
            task.state = "Ready"
            task.last_task_result = TASK_TERMINATED
    return
    yield


def _set_enabled(ctx: CmdletContext, args: dict[str, Any], enabled: bool) -> Iterator[Any]:
    b = binding(ctx)
    for task in _targets(ctx, b, args, "file"):
        if enabled and task.state == "Disabled":
            task.state = "Ready"
        elif not enabled:
            task.state = "Disabled"
        yield task_object(task)


def _enable(ctx: CmdletContext, args: dict[str, Any]) -> Iterator[Any]:
    return _set_enabled(ctx, args, True)


def _disable(ctx: CmdletContext, args: dict[str, Any]) -> Iterator[Any]:
    return _set_enabled(ctx, args, False)


def _unregister(ctx: CmdletContext, args: dict[str, Any]) -> Iterator[Any]:
    b = binding(ctx)
    if flag(args, "WhatIf"):
        return
    for task in list(_targets(ctx, b, args, "query")):
        if task in b.device.tasks:
            b.device.tasks.remove(task)
        if flag(args, "PassThru"):
            yield task_object(task)


# ---- specs --------------------------------------------------------------------------------------------------------

_TASK_NAME = Param("TaskName", "string[]", position=0, from_pipeline_by_property_name=True)
_TASK_PATH = Param("TaskPath", "string", position=1, from_pipeline_by_property_name=True)
_INPUT = Param("InputObject", "any", from_pipeline=True)
_CONFIRM = (Param("WhatIf", "switch"), Param("Confirm", "switch"))
_CIM = (Param("CimSession", "any", aliases=("Session",)), Param("ThrottleLimit", "int"), Param("AsJob", "switch"))

SPECS: tuple[CmdletSpec, ...] = (
    CmdletSpec(
        "New-ScheduledTaskAction",
        (
            Param("Execute", "string", mandatory=True, position=0),
            Param("Argument", "string", position=1),
            Param("WorkingDirectory", "string", position=2),
            Param("Id", "string"),
            *_CIM,
        ),
        _new_action,
    ),
    CmdletSpec(
        "New-ScheduledTaskTrigger",
        (
            Param("AtLogOn", "switch"),
            Param("AtStartup", "switch"),
            Param("Once", "switch"),
            Param("At", "datetime"),
            Param("User", "string"),
            Param("RandomDelay", "any"),
            Param("RepetitionInterval", "any"),
            Param("RepetitionDuration", "any"),
            *_CIM,
        ),
        _new_trigger,
    ),
    CmdletSpec(
        "New-ScheduledTaskPrincipal",
        (
            Param("UserId", "string", position=0),
            Param("GroupId", "string"),
            Param("LogonType", "string"),
            Param("RunLevel", "string"),
            Param("Id", "string"),
            Param("ProcessTokenSidType", "string"),
            Param("RequiredPrivilege", "string[]"),
            *_CIM,
        ),
        _new_principal,
    ),
    CmdletSpec(
        "New-ScheduledTaskSettingsSet",
        (
            *(
                Param(name, "switch")
                for name in (
                    "AllowStartIfOnBatteries",
                    "DontStopIfGoingOnBatteries",
                    "StartWhenAvailable",
                    "Hidden",
                    "Disable",
                    "DisallowDemandStart",
                    "DisallowHardTerminate",
                    "RunOnlyIfIdle",
                    "RunOnlyIfNetworkAvailable",
                    "WakeToRun",
                    "DontStopOnIdleEnd",
                    "DisallowStartOnRemoteAppSession",
                    "MaintenanceExclusive",
                    "RestartOnIdle",
                )
            ),
            Param("ExecutionTimeLimit", "any"),
            Param("DeleteExpiredTaskAfter", "any"),
            Param("MultipleInstances", "string"),
            Param("Priority", "int"),
            Param("RestartCount", "int"),
            Param("RestartInterval", "any"),
            Param("Compatibility", "string"),
            Param("IdleDuration", "any"),
            Param("IdleWaitTimeout", "any"),
            *_CIM,
        ),
        _new_settings,
    ),
    CmdletSpec(
        "New-ScheduledTask",
        (
            Param("Action", "object[]", position=0),
            Param("Trigger", "object[]", position=1),
            Param("Settings", "any", position=2),
            Param("Principal", "any", position=3),
            Param("Description", "string", position=4),
            *_CIM,
        ),
        _new_task,
    ),
    CmdletSpec(
        "Register-ScheduledTask",
        (
            Param("TaskName", "string", mandatory=True, position=0),
            Param("TaskPath", "string", position=1),
            Param("Action", "object[]", position=2),
            Param("Trigger", "object[]", position=3),
            Param("Settings", "any", position=4),
            Param("Principal", "any"),
            Param("User", "string"),
            Param("Password", "string"),
            Param("RunLevel", "string"),
            Param("Description", "string"),
            Param("InputObject", "any", from_pipeline=True),
            Param("Force", "switch"),
            *_CIM,
        ),
        _register,
    ),
    CmdletSpec("Get-ScheduledTask", (_TASK_NAME, _TASK_PATH, *_CIM), _get_tasks),
    CmdletSpec("Get-ScheduledTaskInfo", (_TASK_NAME, _TASK_PATH, _INPUT, *_CIM), _get_info),
    CmdletSpec("Start-ScheduledTask", (_TASK_NAME, _TASK_PATH, _INPUT, *_CIM), _start),
    CmdletSpec("Stop-ScheduledTask", (_TASK_NAME, _TASK_PATH, _INPUT, *_CIM), _stop),
    CmdletSpec("Enable-ScheduledTask", (_TASK_NAME, _TASK_PATH, _INPUT, *_CIM), _enable),
    CmdletSpec("Disable-ScheduledTask", (_TASK_NAME, _TASK_PATH, _INPUT, *_CIM), _disable),
    CmdletSpec(
        "Unregister-ScheduledTask",
        (_TASK_NAME, _TASK_PATH, _INPUT, Param("PassThru", "switch"), *_CONFIRM, *_CIM),
        _unregister,
    ),
)
