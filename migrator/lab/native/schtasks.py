"""``schtasks /query``: the device's scheduled tasks as schtasks.exe lists them.

Modelled: ``schtasks /query [/tn <path\\name>] [/fo list|table] [/v]`` (``schtasks /query /?``;
learn.microsoft.com windows-commands/schtasks-query; sample ``tests/lab/outputs/schtasks_query_v_list.txt``).
The verbose list prints each task's fields as ``Label:`` padded to one column (38 characters); times are en-US
(``M/d/yyyy h:mm:ss AM``), a task that never ran shows ``11/30/1999 12:00:00 AM`` and result 267011.
The tasks are the ones Register-ScheduledTask created (the same list Get-ScheduledTask reads); the lab holds
no other tasks, so a query without ``/tn`` is refused as not modelled rather than shown short. ``/create``,
``/run``, ``/end``, ``/delete``, ``/change``, ``/fo csv`` and ``/xml`` are refused as not modelled too.
"""

from __future__ import annotations

from datetime import datetime

from migrator.lab import boundary
from migrator.lab.model import ScheduledTask
from migrator.lab.native._common import NativeContext, text
from migrator.lab.shell import NativeResult

NEVER = "11/30/1999 12:00:00 AM"
_WIDTH = 38  # "Stop Task If Runs X Hours and X Mins: " is the longest label


def _refuse(args: list[str]) -> NativeResult:
    message = boundary.native_refusal("schtasks " + " ".join(args), "lab/native/schtasks")
    return NativeResult(stderr=text([message]), exit_code=boundary.EXIT_CODE)


def _time(moment: datetime | None) -> str:
    if moment is None:
        return NEVER
    hour = moment.hour % 12 or 12
    suffix = "AM" if moment.hour < 12 else "PM"
    return f"{moment.month}/{moment.day}/{moment.year} {hour}:{moment.minute:02d}:{moment.second:02d} {suffix}"


def run(ctx: NativeContext, args: list[str]) -> NativeResult:
    words = [a.casefold() for a in args]
    if not words or words[0] != "/query":
        return _refuse(args)
    name: str | None = None
    layout = "table"
    verbose = False
    index = 1
    while index < len(words):
        word = words[index]
        if word == "/tn" and index + 1 < len(args):
            name, index = args[index + 1], index + 2
            continue
        if word == "/fo" and index + 1 < len(args) and words[index + 1] in ("list", "table"):
            layout, index = words[index + 1], index + 2
            continue
        if word == "/v":
            verbose, index = True, index + 1
            continue
        return _refuse(args)
    if name is None:
        return _refuse(args)
    folder, _, leaf = name.replace("/", "\\").rpartition("\\")
    folder = (folder if folder.startswith("\\") else "\\" + folder).rstrip("\\") + "\\"
    with ctx.device.lock:
        found = [
            t.model_copy()
            for t in ctx.device.tasks
            if t.name.casefold() == leaf.casefold() and t.path.casefold() == folder.casefold()
        ]
    if not found and folder.casefold().startswith("\\microsoft\\"):
        return _refuse(args)  # Windows' own tasks live there; the lab models none of them
    if not found:
        return NativeResult(
            stderr=text(["ERROR: The system cannot find the file specified."]),
            exit_code=1,
        )
    task = found[0]
    if layout == "list":
        return NativeResult(stdout=text(_list(ctx, task, verbose)))
    if verbose:
        return _refuse(args)  # the verbose table is one very wide line per task; not modelled
    return NativeResult(stdout=text(_table(task)))


def _status(task: ScheduledTask) -> str:
    return {"Ready": "Ready", "Running": "Running", "Queued": "Queued", "Disabled": "Disabled"}[task.state]


def _table(task: ScheduledTask) -> list[str]:
    lines = ["", f"Folder: {task.path.rstrip(chr(92)) or chr(92)}"]
    lines.append(f"{'TaskName':<40} {'Next Run Time':<22} {'Status':<15}")
    lines.append(f"{'=' * 40} {'=' * 22} {'=' * 15}")
    lines.append(f"{task.name:<40} {'N/A':<22} {_status(task):<15}")
    return lines


def _list(ctx: NativeContext, task: ScheduledTask, verbose: bool) -> list[str]:
    def field(label: str, value: str) -> str:
        return f"{label + ':':<{_WIDTH}}{value}"

    interactive = task.logon_type in ("Interactive", "InteractiveOrPassword")
    system = task.user_id.upper() in ("SYSTEM", "NT AUTHORITY\\SYSTEM", "S-1-5-18")
    logon_mode = "Interactive/Background" if system or not interactive else "Interactive only"
    actions = " ".join(f"{a.execute} {a.arguments}".strip() for a in task.actions) or "N/A"
    at_logon = any(t.kind == "AtLogOn" for t in task.triggers)
    lines = ["", f"Folder: {task.path.rstrip(chr(92)) or chr(92)}"]
    lines.append(field("HostName", ctx.device.name))
    lines.append(field("TaskName", task.path + task.name))
    lines.append(field("Next Run Time", "N/A"))
    lines.append(field("Status", _status(task)))
    if not verbose:
        return lines
    run_as = "SYSTEM" if system else task.user_id
    lines += [
        field("Logon Mode", logon_mode),
        field("Last Run Time", _time(task.last_run_time)),
        field("Last Result", str(task.last_task_result)),
        field("Author", task.author or "N/A"),
        field("Task To Run", actions),
        field("Start In", "N/A"),
        field("Comment", task.description or "N/A"),
        field("Scheduled Task State", "Disabled" if task.state == "Disabled" else "Enabled"),
        field("Idle Time", "Disabled"),
        field("Power Management", "Stop On Battery Mode, No Start On Batteries"),
        field("Run As User", run_as),
        field("Delete Task If Not Rescheduled", "Enabled" if task.delete_expired_after_run else "Disabled"),
        field("Stop Task If Runs X Hours and X Mins", "72:00:00"),
        field("Schedule", "Scheduling data is not available in this format."),
        field("Schedule Type", "At logon time" if at_logon else "On demand only"),
        field("Start Time", "N/A"),
        field("Start Date", "N/A"),
        field("End Date", "N/A"),
        field("Days", "N/A"),
        field("Months", "N/A"),
        field("Repeat: Every", "N/A"),
        field("Repeat: Until: Time", "N/A"),
        field("Repeat: Until: Duration", "N/A"),
        field("Repeat: Stop If Still Running", "N/A"),
    ]
    return lines
