"""Get-WinEvent over the device's event records (the User Device Registration admin log and friends).

Records come newest first, as Get-WinEvent reads logs by default. A query that matches nothing writes the real
non-terminating error ("No events were found that match the specified selection criteria.",
``NoMatchingEventsFound``), so ``-ErrorAction SilentlyContinue`` yields an empty result; an unknown log name
is ``NoMatchingLogsFound``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from migrator.lab.cmdlets._base import (
    DeviceBinding,
    as_list,
    as_str_list,
    binding,
    error_record,
    flag,
    to_datetime,
)
from migrator.lab.cmdlets.paths import wildcard_match
from migrator.lab.model import EventRecord
from migrator.lab.shell import CmdletContext, CmdletSpec, Hashtable, Param, PowerShellError, PSObject
from migrator.lab.windows import UDR_LOG, UDR_PROVIDER

EVENT_TYPES = (
    "System.Diagnostics.Eventing.Reader.EventLogRecord",
    "System.Diagnostics.Eventing.Reader.EventRecord",
    "System.Object",
)
# Logs every Windows 10/11 client has; only the User Device Registration log holds records in the lab.
KNOWN_LOGS = (
    "Application",
    "System",
    "Security",
    "Setup",
    "Windows PowerShell",
    UDR_LOG,
    "Microsoft-Windows-User Device Registration/Debug",
    "Microsoft-Windows-HelloForBusiness/Operational",
    "Microsoft-Windows-AAD/Operational",
    "Microsoft-Windows-AAD/Analytic",
    "Microsoft-Windows-Kerberos/Operational",
    "Microsoft-Windows-TaskScheduler/Operational",
    "Microsoft-Windows-GroupPolicy/Operational",
    "Microsoft-Windows-PowerShell/Operational",
    "Microsoft-Windows-DeviceManagement-Enterprise-Diagnostics-Provider/Admin",
)
KNOWN_PROVIDERS = {UDR_PROVIDER.casefold(): UDR_LOG}
_LEVELS = {"Critical": 1, "Error": 2, "Warning": 3, "Information": 4, "Verbose": 5}
_PROVIDER_GUID = "{23b8d46b-67dd-40a3-b636-d43e50552c6d}"
_XPATH_ID = re.compile(r"EventID\s*=\s*(\d+)", re.IGNORECASE)


def event_object(b: DeviceBinding, record: EventRecord) -> PSObject:
    level = _LEVELS.get(record.level, 4)
    return PSObject(
        [
            ("Message", record.message),
            ("Id", record.event_id),
            ("Version", 0),
            ("Qualifiers", None),
            ("Level", level),
            ("Task", 0),
            ("Opcode", 0),
            ("Keywords", -9223372036854775808),
            ("RecordId", record.record_id),
            ("ProviderName", record.provider),
            ("ProviderId", _PROVIDER_GUID),
            ("LogName", record.log_name),
            ("ProcessId", 1044),
            ("ThreadId", 5200),
            ("MachineName", b.device.fqdn),
            ("UserId", record.user_sid),
            ("TimeCreated", record.time_created),
            ("ActivityId", None),
            ("RelatedActivityId", None),
            ("ContainerLog", record.log_name),
            ("MatchedQueryIds", []),
            ("LevelDisplayName", record.level),
            ("OpcodeDisplayName", "Info"),
            ("TaskDisplayName", None),
            ("KeywordsDisplayNames", []),
        ],
        EVENT_TYPES,
        to_string="System.Diagnostics.Eventing.Reader.EventLogRecord",
    )


def _log_name(name: str) -> str | None:
    for log in KNOWN_LOGS:
        if log.casefold() == name.casefold():
            return log
    return None


class _Query:
    """One -LogName / -FilterHashtable selection."""

    def __init__(self, logs: list[str], ids: set[int] | None, filters: Mapping[str, Any] | None = None) -> None:
        self.logs = logs
        self.ids = ids
        self.filters = filters or {}

    def matches(self, record: EventRecord) -> bool:
        if not any(record.log_name.casefold() == log.casefold() for log in self.logs):
            return False
        if self.ids is not None and record.event_id not in self.ids:
            return False
        f = {k.casefold(): v for k, v in self.filters.items()}
        if "providername" in f and not any(wildcard_match(str(p), record.provider) for p in as_list(f["providername"])):
            return False
        if "level" in f and _LEVELS.get(record.level, 4) not in {int(x) for x in as_list(f["level"])}:
            return False
        start = to_datetime(f.get("starttime"))
        if start is not None and record.time_created < _aware(start):
            return False
        end = to_datetime(f.get("endtime"))
        if end is not None and record.time_created > _aware(end):
            return False
        if "userid" in f:
            wanted = {str(u).casefold() for u in as_list(f["userid"])}
            if (record.user_sid or "").casefold() not in wanted:
                return False
        return True


def _aware(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def _no_logs(command: str, name: str) -> PowerShellError:
    return PowerShellError(
        error_record(
            command,
            f'There is not an event log on the localhost computer that matches "{name}".',
            "NoMatchingLogsFound",
            "ObjectNotFound",
            "System.Exception",
            name,
        )
    )


def _queries(ctx: CmdletContext, args: Mapping[str, Any]) -> list[_Query]:
    command = ctx.command_name
    queries: list[_Query] = []
    xpath_ids: set[int] | None = None
    if args.get("FilterXPath"):
        xpath_ids = {int(m) for m in _XPATH_ID.findall(str(args["FilterXPath"]))} or None
    for table in as_list(args.get("FilterHashtable")):
        if not isinstance(table, Hashtable | dict):
            continue
        folded = {str(k).casefold(): v for k, v in table.items()}
        logs: list[str] = []
        for name in as_str_list(folded.get("logname")):
            log = _log_name(name)
            if log is None:
                raise _no_logs(command, name)
            logs.append(log)
        for provider in as_str_list(folded.get("providername")):
            if provider.casefold() in KNOWN_PROVIDERS:
                logs.append(KNOWN_PROVIDERS[provider.casefold()])
        ids = {int(i) for i in as_list(folded.get("id"))} or None
        queries.append(_Query(logs, ids, table))
    for name in as_str_list(args.get("LogName")):
        if "*" in name:
            logs = [log for log in KNOWN_LOGS if wildcard_match(name, log)]
        else:
            log = _log_name(name)
            if log is None:
                raise _no_logs(command, name)
            logs = [log]
        queries.append(_Query(logs, xpath_ids))
    for provider in as_str_list(args.get("ProviderName")):
        log = KNOWN_PROVIDERS.get(provider.casefold())
        if log is None:
            raise PowerShellError(
                error_record(
                    command,
                    f'There is not an event provider on the localhost computer that matches "{provider}".',
                    "NoMatchingProvidersFound",
                    "ObjectNotFound",
                    "System.Exception",
                    provider,
                )
            )
        queries.append(_Query([log], xpath_ids, {"ProviderName": provider}))
    return queries


def _get_win_event(ctx: CmdletContext, args: dict[str, Any]) -> Iterator[Any]:
    b = binding(ctx)
    queries = _queries(ctx, args)
    if not queries:
        return
    records = [r for r in b.device.events if any(q.matches(r) for q in queries)]
    records.sort(key=lambda r: (r.time_created, r.record_id), reverse=not flag(args, "Oldest"))
    max_events = args.get("MaxEvents")
    if max_events is not None:
        records = records[: int(max_events)]
    if not records:
        ctx.write_error(
            error_record(
                ctx.command_name,
                "No events were found that match the specified selection criteria.",
                "NoMatchingEventsFound",
                "ObjectNotFound",
                "System.Exception",
            )
        )
        return
    for record in records:
        yield event_object(b, record)


SPECS: tuple[CmdletSpec, ...] = (
    CmdletSpec(
        "Get-WinEvent",
        (
            Param("LogName", "string[]", position=0),
            Param("FilterHashtable", "object[]"),
            Param("ProviderName", "string[]"),
            Param("MaxEvents", "int"),
            Param("FilterXPath", "string"),
            Param("Oldest", "switch"),
            Param("ComputerName", "string", aliases=("Cn",)),
            Param("Force", "switch"),
        ),
        _get_win_event,
    ),
)
