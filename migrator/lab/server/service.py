"""WS-Man actions of one device: WinRS ``cmd`` shells and PowerShell (PSRP) runspace pools.

Each request arrives already authenticated as a :class:`~migrator.lab.shell.Principal`. The device keeps a
table of shells (``ShellId`` → :class:`CmdShell` or :class:`PsrpShell`); actions map to handlers:

=========  ============================  =====================================================
action     cmd shell ([MS-WSMV] 3.1.4)    PowerShell plugin ([MS-PSRP] 3.1.5.3 over WS-Man)
=========  ============================  =====================================================
Create     new shell                      new runspace pool fed with ``creationXml``
Command    start a command line           new pipeline fed with the CREATE_PIPELINE fragment(s)
Send       stdin (accepted, not used)     more PSRP fragments (pool or pipeline)
Receive    stdout/stderr + exit code      queued PSRP fragments, split to fit MaxEnvelopeSize
Signal     terminate / ctrl_c             ``powershell/signal/crtl_c`` stops, terminate closes
Delete     close the shell                close the runspace pool and its runspace
Get        shell properties / WinRM config
=========  ============================  =====================================================

A Receive with nothing to return waits for output up to the request's OperationTimeout and then answers
``w:TimedOut`` exactly as Windows does (pywinrm and pypsrp retry on it). Executions run in worker threads
(``asyncio.to_thread``) so the single event loop keeps serving the fleet; the psrpcore state machines are
only touched on the loop thread.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import codecs
import contextlib
import logging
import uuid
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from psrpcore import ServerHostRequestor, ServerPipeline, ServerRunspacePool
from psrpcore._payload import PSRPMessage, PSRPPayload, StreamType, create_message
from psrpcore.types import (
    CommandMetadataCount,
    DebugRecord,
    PSInvocationState,
    PSNoteProperty,
    PSObject,
    PSRPMessageType,
    RunspacePoolState,
    VerboseRecord,
    WarningRecord,
)

from migrator.lab import shell
from migrator.lab.server import convert, soap
from migrator.lab.server.faults import FaultKind, FaultPlan, LabClock
from migrator.lab.server.soap import NS, WSManFault, WSManRequest

log = logging.getLogger(__name__)

CMD_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
PS_URI_PREFIX = "http://schemas.microsoft.com/powershell/"
PS_CONFIGURATIONS = frozenset(
    {"microsoft.powershell", "microsoft.powershell32", "microsoft.windows.serverManagerWorkflows"}
)
CONFIG_URI = "http://schemas.microsoft.com/wbem/wsman/1/config"
STATE_DONE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"
STATE_RUNNING = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Running"
SIGNAL_TERMINATE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/terminate"
SIGNAL_CTRL_C = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/ctrl_c"
SIGNAL_CTRL_BREAK = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/ctrl_break"
# PowerShell's own client sends the misspelt "crtl_c" ([MS-PSRP] 3.1.5.3.6 / 3.2.5.3.6); pypsrp sends "ctrl_c".
PS_SIGNAL_STOP = frozenset({"powershell/signal/crtl_c", "powershell/signal/ctrl_c"})

# Bytes of a Receive envelope that are not stream data (headers, CommandState, per-stream tags), measured on
# Windows responses and rounded up; the rest of MaxEnvelopeSize carries base64 stream data.
_ENVELOPE_OVERHEAD = 2048
_PER_STREAM_OVERHEAD = 160


def _stream_budget(max_envelope_size: int) -> int:
    """Raw bytes of stream data that fit in one Receive response (base64 grows data by 4/3)."""
    return max(64, (max_envelope_size - _ENVELOPE_OVERHEAD) * 3 // 4)


class _NullOutput(PSObject):
    """Marks a ``$null`` written to the output stream."""


NULL_OUTPUT = _NullOutput()


class LabRunspacePool(ServerRunspacePool):
    """psrpcore's server pool, except that ``$null`` output goes out as ``<Nil />``.

    psrpcore sends an empty PIPELINE_OUTPUT body for ``None``; Windows PowerShell serialises ``$null`` as
    ``<Nil />`` ([MS-PSRP] 2.2.5.1.20), and pypsrp cannot parse the empty form.
    """

    def prepare_message(
        self,
        message: PSObject | None,
        message_type: PSRPMessageType | None = None,
        pipeline_id: uuid.UUID | None = None,
        stream_type: StreamType = StreamType.default,
    ) -> None:
        if message is not NULL_OUTPUT:
            super().prepare_message(message, message_type, pipeline_id, stream_type)
            return
        data = create_message(False, PSRPMessageType.PipelineOutput, b"<Nil />", self.runspace_pool_id, pipeline_id)
        self._send_buffer.append(
            PSRPMessage(
                PSRPMessageType.PipelineOutput,
                bytearray(data),
                self.runspace_pool_id,
                pipeline_id,
                self._fragment_counter,
                stream_type,
            )
        )

    # PowerShell binds message properties case-insensitively; pypsrp sends SET_MAX/MIN_RUNSPACES with "CI" where
    # [MS-PSRP] 2.2.2.6 writes "ci", and psrpcore only looks up "ci".
    def _process_SetMaxRunspaces(self, event: Any) -> None:
        _alias_ci(event)
        super()._process_SetMaxRunspaces(event)

    def _process_SetMinRunspaces(self, event: Any) -> None:
        _alias_ci(event)
        super()._process_SetMinRunspaces(event)


_INFORMATIONAL: dict[PSRPMessageType, Any] = {
    PSRPMessageType.WarningRecord: WarningRecord,
    PSRPMessageType.VerboseRecord: VerboseRecord,
    PSRPMessageType.DebugRecord: DebugRecord,
}


def _alias_ci(event: Any) -> None:
    message = event._ps_object
    names = {p.name: p for p in message.PSObject.extended_properties + message.PSObject.adapted_properties}
    if "ci" not in names:
        for name, prop in names.items():
            if name.lower() == "ci":
                message.PSObject.extended_properties.append(PSNoteProperty("ci", value=prop.get_value(message)))
                break


class _Changed:
    """A level-triggered notification: waiters wake on the next :meth:`notify`."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            return False
        return True


@dataclass
class CmdCommand:
    command_id: str
    command_line: str
    stdin: bytearray = field(default_factory=bytearray)
    result: shell.NativeResult | None = None
    stdout: bytes = b""
    stderr: bytes = b""
    done_sent: bool = False
    task: asyncio.Task[None] | None = None


@dataclass
class CmdShell:
    shell_id: str
    owner: shell.Principal
    client_ip: str
    codepage: int = 437
    input_streams: str = "stdin"
    output_streams: str = "stdout stderr"
    commands: dict[str, CmdCommand] = field(default_factory=dict)
    changed: _Changed = field(default_factory=_Changed)
    resource_uri: str = CMD_URI

    def encoding(self) -> str:
        # WINRS_CODEPAGE: 65001 is UTF-8, anything else an OEM/ANSI code page Python knows as cpNNN.
        if self.codepage == 65001:
            return "utf-8"
        name = f"cp{self.codepage}"
        try:
            codecs.lookup(name)
        except LookupError:
            return "cp437"
        return name


@dataclass
class PipelineRun:
    pipeline: ServerPipeline
    input: list[Any] = field(default_factory=list)
    created: bool = False
    started: bool = False
    finished: bool = False
    stop_requested: bool = False
    closed: bool = False
    done_sent: bool = False
    task: asyncio.Task[None] | None = None


@dataclass
class PsrpShell:
    shell_id: str
    owner: shell.Principal
    client_ip: str
    resource_uri: str
    pool: LabRunspacePool
    runspace: shell.Runspace | None = None
    pipelines: dict[uuid.UUID, PipelineRun] = field(default_factory=dict)
    queues: dict[uuid.UUID | None, deque[bytes]] = field(default_factory=dict)
    changed: _Changed = field(default_factory=_Changed)
    exec_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    closed: bool = False


Shell = CmdShell | PsrpShell


def _b64decode(text: str | None) -> bytes:
    try:
        return base64.b64decode((text or "").strip(), validate=True)
    except binascii.Error:
        raise soap.bad_request("The WS-Management service cannot process the request: invalid base64 data.") from None


class DeviceService:
    """The WS-Man endpoint of one device (both listeners share it)."""

    def __init__(
        self,
        name: str,
        computer_name: str,
        executor: shell.Executor,
        *,
        faults: FaultPlan,
        clock: LabClock,
        on_exec: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.computer_name = computer_name
        self.executor = executor
        self.faults = faults
        self.clock = clock
        self.shells: dict[str, Shell] = {}
        self._on_exec = on_exec

    # ---- entry point ------------------------------------------------------------------------------------

    async def handle(self, request: WSManRequest, principal: shell.Principal, client_ip: str) -> bytes:
        """Run one WS-Man request; failures raise :class:`WSManFault` for the HTTP layer to render."""
        action = request.action_name
        for rule in self.faults.decide("action", self.name, action):
            if rule.kind is FaultKind.TIMEOUT:
                raise soap.operation_timed_out()
            if rule.kind is FaultKind.BUSY:
                raise soap.quota_max_operations()
            if rule.kind is FaultKind.HTTP_500:
                raise soap.internal_error(
                    rule.code if rule.code is not None else soap.E_FAIL,
                    rule.message or "The WS-Management service cannot process the request. An internal error occurred.",
                )
        handler = {
            "Create": self._create,
            "Command": self._command,
            "Send": self._send,
            "Receive": self._receive,
            "Signal": self._signal,
            "Delete": self._delete,
            "Get": self._get,
        }.get(action)
        if handler is None or not request.action.startswith(
            (
                "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/",
                "http://schemas.xmlsoap.org/ws/2004/09/transfer/",
            )
        ):
            raise soap.action_not_supported(request.action)
        return await handler(request, principal, client_ip)

    async def reset(self) -> None:
        """Drop every shell and runspace (a reboot): running work is abandoned, runspaces closed."""
        shells, self.shells = list(self.shells.values()), {}
        for item in shells:
            await self._close_shell(item)

    # ---- helpers ----------------------------------------------------------------------------------------

    def _is_powershell(self, resource_uri: str) -> bool:
        return resource_uri.lower().startswith(PS_URI_PREFIX.lower())

    def _check_resource(self, resource_uri: str) -> None:
        if resource_uri.lower() == CMD_URI.lower():
            return
        if self._is_powershell(resource_uri):
            configuration = resource_uri[len(PS_URI_PREFIX) :].lower()
            if configuration in {c.lower() for c in PS_CONFIGURATIONS}:
                return
        raise soap.destination_unreachable(resource_uri)

    def _shell(self, request: WSManRequest, principal: shell.Principal) -> Shell:
        shell_id = request.selectors.get("ShellId", "")
        found = self.shells.get(shell_id.upper())
        # Windows hides other users' shells: they are "not found" for anyone but their owner.
        if found is None or found.owner.name != principal.name:
            raise soap.shell_not_found(shell_id)
        return found

    async def _exec_delay(self) -> None:
        for rule in self.faults.decide("exec", self.name):
            await self.clock.sleep(self.faults.delay_for(rule, self.name))

    def _shell_element(self, item: Shell, principal: shell.Principal) -> ET.Element:
        node = soap.element("rsp", "Shell")
        soap.sub(node, "rsp", "ShellId", item.shell_id)
        if isinstance(item, PsrpShell):
            soap.sub(node, "rsp", "Name", "Runspace1")
        soap.sub(node, "rsp", "ResourceUri", item.resource_uri)
        soap.sub(node, "rsp", "Owner", principal.name)
        soap.sub(node, "rsp", "ClientIP", item.client_ip)
        soap.sub(node, "rsp", "IdleTimeOut", "PT7200.000S")
        soap.sub(node, "rsp", "InputStreams", "stdin pr" if isinstance(item, PsrpShell) else item.input_streams)
        soap.sub(node, "rsp", "OutputStreams", "stdout" if isinstance(item, PsrpShell) else item.output_streams)
        soap.sub(node, "rsp", "ShellRunTime", "P0DT0H0M0S")
        soap.sub(node, "rsp", "ShellInactivity", "P0DT0H0M0S")
        return node

    def _resource_created(self, request: WSManRequest, item: Shell) -> ET.Element:
        created = soap.element("x", "ResourceCreated")
        soap.sub(created, "a", "Address", request.to or soap.ANONYMOUS)
        params = soap.sub(created, "a", "ReferenceParameters")
        soap.sub(params, "w", "ResourceURI", item.resource_uri)
        selectors = soap.sub(params, "w", "SelectorSet")
        soap.sub(selectors, "w", "Selector", item.shell_id, Name="ShellId")
        return created

    # ---- Create -----------------------------------------------------------------------------------------

    async def _create(self, request: WSManRequest, principal: shell.Principal, client_ip: str) -> bytes:
        self._check_resource(request.resource_uri)
        body = request.body
        if body is None or body.tag != soap.qname("rsp", "Shell"):
            raise soap.bad_request("The WS-Management service cannot process the request: rsp:Shell is missing.")
        requested_id = body.get("ShellId")
        shell_id = (requested_id or str(uuid.uuid4())).upper()
        if shell_id in self.shells:
            raise WSManFault(
                "w:AlreadyExists", 0x80338022, f"The shell {shell_id} already exists.", soap_code="s:Sender"
            )
        item: Shell
        if self._is_powershell(request.resource_uri):
            item = await self._create_pool(request, body, shell_id, principal, client_ip)
        else:
            codepage = request.options.get("WINRS_CODEPAGE", "437")
            item = CmdShell(
                shell_id=shell_id,
                owner=principal,
                client_ip=client_ip,
                codepage=int(codepage) if codepage.isdigit() else 437,
                input_streams=(body.findtext("rsp:InputStreams", "stdin", NS) or "stdin").strip(),
                output_streams=(body.findtext("rsp:OutputStreams", "stdout stderr", NS) or "stdout stderr").strip(),
                resource_uri=CMD_URI,
            )
        self.shells[shell_id] = item
        return soap.build_response(request, self._resource_created(request, item), self._shell_element(item, principal))

    async def _create_pool(
        self, request: WSManRequest, body: ET.Element, shell_id: str, principal: shell.Principal, client_ip: str
    ) -> PsrpShell:
        creation = body.find("pwsh:creationXml", NS)
        if creation is None:
            raise soap.bad_request("The WS-Management service cannot process the request: creationXml is missing.")
        pool = LabRunspacePool()
        item = PsrpShell(
            shell_id=shell_id, owner=principal, client_ip=client_ip, resource_uri=request.resource_uri, pool=pool
        )
        await self._exec_delay()
        try:
            item.runspace = await asyncio.to_thread(self.executor.open_runspace, self.name, principal)
        except Exception as err:
            log.exception("open_runspace failed on %s", self.name)
            raise soap.internal_error(soap.E_FAIL, f"The runspace could not be opened: {type(err).__name__}.") from None
        self._feed(item, None, _b64decode(creation.text))
        if pool.state not in (RunspacePoolState.Opened, RunspacePoolState.Opening):
            raise soap.bad_request("The creationXml did not contain SESSION_CAPABILITY and INIT_RUNSPACEPOOL.")
        return item

    # ---- Command ----------------------------------------------------------------------------------------

    async def _command(self, request: WSManRequest, principal: shell.Principal, client_ip: str) -> bytes:
        item = self._shell(request, principal)
        body = request.body
        if body is None or body.tag != soap.qname("rsp", "CommandLine"):
            raise soap.bad_request("The WS-Management service cannot process the request: rsp:CommandLine is missing.")
        command_id = (body.get("CommandId") or str(uuid.uuid4())).upper()
        arguments = [a.text or "" for a in body.findall("rsp:Arguments", NS)]
        if isinstance(item, PsrpShell):
            pipeline_id = uuid.UUID(command_id)
            run = PipelineRun(ServerPipeline(item.pool, pipeline_id))
            item.pipelines[pipeline_id] = run
            item.queues.setdefault(pipeline_id, deque())
            data = b"".join(_b64decode(a) for a in arguments)
            self._feed(item, pipeline_id, data)
        else:
            executable = (body.findtext("rsp:Command", "", NS) or "").strip()
            command_line = " ".join([executable, *arguments]).strip()
            command = CmdCommand(command_id, command_line)
            item.commands[command_id] = command
            # WinRS starts the process at once and feeds it whatever Send delivers; the lab runs a command to
            # completion in one call, so it starts when its stdin is complete (Send End="true") or at the first
            # Receive, whichever comes first (Ansible's WinRM plugin sends its exec wrapper on stdin this way).
        response = soap.element("rsp", "CommandResponse")
        soap.sub(response, "rsp", "CommandId", command_id)
        return soap.build_response(request, response)

    def _start_cmd(self, item: CmdShell, command: CmdCommand, principal: shell.Principal) -> None:
        if command.task is None:
            command.task = asyncio.create_task(self._run_cmd(item, command, principal))

    async def _run_cmd(self, item: CmdShell, command: CmdCommand, principal: shell.Principal) -> None:
        stdin = bytes(command.stdin).decode(item.encoding(), errors="replace") if command.stdin else None
        try:
            await self._exec_delay()
            if self._on_exec:
                self._on_exec()
            result = await asyncio.to_thread(
                self.executor.run_command_line, self.name, principal, command.command_line, stdin
            )
        except Exception as err:
            log.exception("run_command_line failed on %s", self.name)
            result = shell.NativeResult(
                stderr=f"The lab device failed to run the command: {type(err).__name__}\r\n", exit_code=1
            )
        encoding = item.encoding()
        command.stdout = result.stdout.encode(encoding, errors="replace")
        command.stderr = result.stderr.encode(encoding, errors="replace")
        command.result = result
        item.changed.notify()

    # ---- Send -------------------------------------------------------------------------------------------

    async def _send(self, request: WSManRequest, principal: shell.Principal, client_ip: str) -> bytes:
        item = self._shell(request, principal)
        body = request.body
        if body is None or body.tag != soap.qname("rsp", "Send"):
            raise soap.bad_request("The WS-Management service cannot process the request: rsp:Send is missing.")
        for stream in body.findall("rsp:Stream", NS):
            data = _b64decode(stream.text)
            command_id = stream.get("CommandId")
            if isinstance(item, PsrpShell):
                pipeline_id = uuid.UUID(command_id) if command_id else None
                if pipeline_id is not None and pipeline_id not in item.pipelines:
                    raise soap.bad_request(f"The command {command_id} does not exist in this shell.")
                self._feed(item, pipeline_id, data)
            else:
                command = item.commands.get((command_id or "").upper())
                if command is None:
                    raise soap.bad_request(f"The command {command_id} does not exist in this shell.")
                if command.task is None:
                    command.stdin.extend(data)
                    if stream.get("End", "").lower() == "true":
                        self._start_cmd(item, command, principal)
        return soap.build_response(request, soap.element("rsp", "SendResponse"))

    # ---- Receive ----------------------------------------------------------------------------------------

    async def _receive(self, request: WSManRequest, principal: shell.Principal, client_ip: str) -> bytes:
        item = self._shell(request, principal)
        body = request.body
        desired = body.find("rsp:DesiredStream", NS) if body is not None else None
        command_id = desired.get("CommandId") if desired is not None else None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + request.operation_timeout
        while True:
            if isinstance(item, PsrpShell):
                response = self._receive_psrp(item, command_id, request.max_envelope_size)
            else:
                pending = item.commands.get((command_id or "").upper())
                if pending is not None:
                    self._start_cmd(item, pending, principal)
                response = self._receive_cmd(item, command_id, request.max_envelope_size)
            if response is not None:
                return soap.build_response(request, response)
            remaining = deadline - loop.time()
            if remaining <= 0 or not await item.changed.wait(remaining):
                raise soap.operation_timed_out()
            if self.shells.get(item.shell_id) is not item:
                raise soap.shell_not_found(item.shell_id)

    def _receive_cmd(self, item: CmdShell, command_id: str | None, max_envelope: int) -> ET.Element | None:
        command = item.commands.get((command_id or "").upper())
        if command is None:
            raise soap.bad_request(f"The command {command_id} does not exist in this shell.")
        if command.result is None or command.done_sent:
            return None
        budget = _stream_budget(max_envelope) - 4 * _PER_STREAM_OVERHEAD
        response = soap.element("rsp", "ReceiveResponse")
        for name in ("stdout", "stderr"):
            data = getattr(command, name)
            take, rest = data[:budget], data[len(data[:budget]) :]
            budget -= len(take)
            setattr(command, name, rest)
            if take:
                soap.sub(
                    response, "rsp", "Stream", base64.b64encode(take).decode(), Name=name, CommandId=command.command_id
                )
        if command.stdout or command.stderr:
            soap.sub(response, "rsp", "CommandState", CommandId=command.command_id, State=STATE_RUNNING)
            return response
        for name in ("stdout", "stderr"):
            soap.sub(response, "rsp", "Stream", Name=name, CommandId=command.command_id, End="true")
        state = soap.sub(response, "rsp", "CommandState", CommandId=command.command_id, State=STATE_DONE)
        soap.sub(state, "rsp", "ExitCode", str(command.result.exit_code))
        command.done_sent = True
        return response

    def _drain(self, item: PsrpShell, fragment_size: int) -> None:
        while True:
            payload = item.pool.data_to_send(fragment_size)
            if payload is None:
                return
            if payload.pipeline_id is not None:
                run = item.pipelines.get(payload.pipeline_id)
                if run is None or run.closed:
                    continue
            item.queues.setdefault(payload.pipeline_id, deque()).append(payload.data)

    def _receive_psrp(self, item: PsrpShell, command_id: str | None, max_envelope: int) -> ET.Element | None:
        pipeline_id = uuid.UUID(command_id) if command_id else None
        run = item.pipelines.get(pipeline_id) if pipeline_id else None
        if pipeline_id is not None and run is None:
            raise soap.bad_request(f"The command {command_id} does not exist in this shell.")
        budget = _stream_budget(max_envelope)
        self._drain(item, max(22, budget - _PER_STREAM_OVERHEAD))
        queue = item.queues.setdefault(pipeline_id, deque())
        finished = run is not None and run.finished and not run.done_sent
        if not queue and not finished:
            return None
        response = soap.element("rsp", "ReceiveResponse")
        used = 0
        attrs = {"CommandId": command_id.upper()} if command_id else {}
        # Always send at least one chunk, then as many more as fit in this envelope.
        while queue and (used == 0 or used + len(queue[0]) + _PER_STREAM_OVERHEAD <= budget):
            chunk = queue.popleft()
            used += len(chunk) + _PER_STREAM_OVERHEAD
            soap.sub(response, "rsp", "Stream", base64.b64encode(chunk).decode(), Name="stdout", **attrs)
        if run is not None and command_id:
            done = run.finished and not queue
            state = soap.sub(
                response,
                "rsp",
                "CommandState",
                CommandId=command_id.upper(),
                State=STATE_DONE if done else STATE_RUNNING,
            )
            if done:
                soap.sub(state, "rsp", "ExitCode", "0")
                run.done_sent = True
        return response

    # ---- Signal -----------------------------------------------------------------------------------------

    async def _signal(self, request: WSManRequest, principal: shell.Principal, client_ip: str) -> bytes:
        item = self._shell(request, principal)
        body = request.body
        if body is None or body.tag != soap.qname("rsp", "Signal"):
            raise soap.bad_request("The WS-Management service cannot process the request: rsp:Signal is missing.")
        command_id = (body.get("CommandId") or "").upper()
        code = (body.findtext("rsp:Code", "", NS) or "").strip().lower()
        if isinstance(item, PsrpShell):
            pipeline_id = uuid.UUID(command_id) if command_id else None
            run = item.pipelines.get(pipeline_id) if pipeline_id else None
            if run is not None:
                if code in PS_SIGNAL_STOP:
                    await self._stop_pipeline(item, run)
                elif code == SIGNAL_TERMINATE:
                    await self._close_pipeline(item, run)
        else:
            command = item.commands.get(command_id)
            if command is not None and code in (SIGNAL_TERMINATE, SIGNAL_CTRL_C, SIGNAL_CTRL_BREAK):
                if command.task is not None and not command.task.done():
                    command.task.cancel()
                item.commands.pop(command_id, None)
        response = soap.element("rsp", "SignalResponse")
        return soap.build_response(request, response)

    # ---- Delete / Get -----------------------------------------------------------------------------------

    async def _delete(self, request: WSManRequest, principal: shell.Principal, client_ip: str) -> bytes:
        item = self._shell(request, principal)
        self.shells.pop(item.shell_id, None)
        await self._close_shell(item)
        return soap.build_response(request)

    async def _close_shell(self, item: Shell) -> None:
        item.changed.notify()
        if isinstance(item, CmdShell):
            for command in item.commands.values():
                if command.task is not None and not command.task.done():
                    command.task.cancel()
            return
        item.closed = True
        for run in list(item.pipelines.values()):
            run.closed = True
            if run.task is not None and not run.task.done() and item.runspace is not None:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(item.runspace.stop)
        if item.runspace is not None:
            try:
                await asyncio.to_thread(item.runspace.close)
            except Exception:
                log.exception("closing a runspace failed on %s", self.name)

    async def _get(self, request: WSManRequest, principal: shell.Principal, client_ip: str) -> bytes:
        if request.resource_uri.lower().startswith(CONFIG_URI.lower()):
            config = ET.Element("{http://schemas.microsoft.com/wbem/wsman/1/config}Config")
            for name, value in (("MaxEnvelopeSizekb", "500"), ("MaxTimeoutms", "60000"), ("MaxBatchItems", "32000")):
                ET.SubElement(config, "{http://schemas.microsoft.com/wbem/wsman/1/config}" + name).text = value
            return soap.build_response(request, config)
        item = self._shell(request, principal)
        return soap.build_response(request, self._shell_element(item, principal))

    # ---- PSRP -------------------------------------------------------------------------------------------

    def _feed(self, item: PsrpShell, pipeline_id: uuid.UUID | None, data: bytes) -> None:
        """Give PSRP fragments to the pool and act on every complete message."""
        pool = item.pool
        try:
            pool.receive_data(PSRPPayload(data, StreamType.default, pipeline_id))
            while True:
                event = pool.next_event()
                if event is None:
                    break
                self._on_event(item, event)
        except WSManFault:
            raise
        except Exception as err:
            log.warning("bad PSRP data on %s: %s", self.name, type(err).__name__, exc_info=True)
            raise soap.bad_request(
                f"The PowerShell remoting data could not be processed: {type(err).__name__}."
            ) from None
        item.changed.notify()

    def _on_event(self, item: PsrpShell, event: Any) -> None:
        name = type(event).__name__
        pool = item.pool
        if name in ("SetMaxRunspacesEvent", "SetMinRunspacesEvent", "ResetRunspaceStateEvent"):
            pool.runspace_availability_response(event.ci, True)
        elif name == "GetAvailableRunspacesEvent":
            busy = sum(1 for run in item.pipelines.values() if run.started and not run.finished)
            pool.runspace_availability_response(event.ci, max(0, max(pool.max_runspaces, 1) - busy))
        elif name == "CreatePipelineEvent":
            run = item.pipelines[event.pipeline_id]
            run.created = True
            if run.pipeline.metadata is not None and run.pipeline.metadata.no_input:
                self._start(item, run)
        elif name == "GetCommandMetadataEvent":
            run = item.pipelines[event.pipeline_id]
            run.created = run.started = True
            run.pipeline.start()
            # Command discovery is not modelled: answer "no commands", as for an unknown name.
            run.pipeline.write_output(CommandMetadataCount(Count=0))
            run.pipeline.complete()
            run.finished = True
        elif name == "PipelineInputEvent":
            item.pipelines[event.pipeline_id].input.append(convert.to_lab(event.data))
        elif name == "EndOfPipelineInputEvent":
            run = item.pipelines[event.pipeline_id]
            if run.created:
                self._start(item, run)

    def _start(self, item: PsrpShell, run: PipelineRun) -> None:
        if run.started:
            return
        run.started = True
        run.task = asyncio.create_task(self._run_pipeline(item, run))

    async def _run_pipeline(self, item: PsrpShell, run: PipelineRun) -> None:
        pipeline = run.pipeline
        metadata = pipeline.metadata
        statements: list[list[shell.Command]] = [[]]
        for cmd in metadata.commands if metadata is not None else []:
            statements[-1].append(
                shell.Command(
                    text=str(cmd.command_text),
                    is_script=bool(cmd.is_script),
                    parameters=tuple((name, convert.to_lab(value)) for name, value in cmd.parameters),
                    use_local_scope=cmd.use_local_scope,
                )
            )
            if cmd.end_of_statement:
                statements.append([])
        statements = [s for s in statements if s]
        async with item.exec_lock:
            if run.closed or item.closed:
                return
            pipeline.start()
            item.changed.notify()
            result: shell.InvocationResult
            try:
                await self._exec_delay()
                if self._on_exec:
                    self._on_exec()
                if run.stop_requested:
                    result = shell.InvocationResult()
                else:
                    assert item.runspace is not None  # opened in _create_pool
                    result = await asyncio.to_thread(_invoke_statements, item.runspace, statements, run.input)
            except Exception as err:
                log.exception("pipeline failed on %s", self.name)
                record = shell.ErrorRecord(
                    message=f"The lab device failed to run the pipeline: {type(err).__name__}",
                    fully_qualified_error_id="LabDeviceFailure",
                    exception_type="System.Management.Automation.RuntimeException",
                )
                result = shell.InvocationResult(errors=[], had_errors=True, terminating_error=record)
        if run.closed or item.closed:
            return
        self._write_result(run, result, item.owner.name)
        run.finished = True
        item.changed.notify()

    def _write_result(self, run: PipelineRun, result: shell.InvocationResult, user: str = "") -> None:
        pipeline = run.pipeline
        if pipeline.state != PSInvocationState.Running:
            return
        for value in result.output:
            pipeline.write_output(NULL_OUTPUT if value is None else convert.to_clixml(value))
        for record in result.errors:
            if record is result.terminating_error:
                continue  # it travels once, as the PIPELINE_STATE reason (pypsrp adds it to streams.error)
            ps_record = convert.error_record(record)
            pipeline.write_error(
                ps_record.Exception,
                ps_record.CategoryInfo,
                ps_record.TargetObject,
                ps_record.FullyQualifiedErrorId,
                invocation_info=ps_record.InvocationInfo,
                script_stack_trace=ps_record.ScriptStackTrace,
            )
        # Windows serialises informational records with their message as <ToString> too, which is what
        # pypsrp's str(record) shows (e.g. Client.copy re-raises warnings with it); psrpcore omits it.
        for records, kind in (
            (result.warnings, PSRPMessageType.WarningRecord),
            (result.verbose, PSRPMessageType.VerboseRecord),
            (result.debug, PSRPMessageType.DebugRecord),
        ):
            for message in records:
                record = _INFORMATIONAL[kind](Message=message, InvocationInfo=None, PipelineIterationInfo=None)
                record.serialize_extended_info = False
                record.PSObject.to_string = message
                pipeline.prepare_message(record, message_type=kind)
        for data in result.information:
            with contextlib.suppress(Exception):  # needs protocol 2.3 (PowerShell 5.1 clients); pypsrp is 2.3
                if isinstance(data, shell.InformationRecord):
                    pipeline.write_information(
                        convert.to_clixml(data.message_data),
                        source=data.source,
                        time_generated=data.time_generated,
                        tags=list(data.tags),
                        computer=self.computer_name,
                        user=user,
                    )
                else:
                    pipeline.write_information(convert.to_clixml(data), source="", computer=self.computer_name, user="")
        if result.exit_code is not None and _has_client_host(pipeline):
            # `exit N` (and $Host.SetShouldExit(N)) in a remote runspace reaches the client's host as the
            # SetShouldExit host call ([MS-PSRP] 2.2.3.17, method identifier 6): how Ansible's psrp plugin reads
            # a script's rc.
            with contextlib.suppress(Exception):
                ServerHostRequestor(pipeline).set_should_exit(result.exit_code)
        if run.stop_requested:
            pipeline.stop()
        elif result.terminating_error is not None:
            # psrpcore has no public "fail": _change_state is its single state funnel and emits PIPELINE_STATE
            # with ExceptionAsErrorRecord ([MS-PSRP] 2.2.2.21).
            pipeline._change_state(PSInvocationState.Failed, convert.error_record(result.terminating_error))
        else:
            pipeline.complete()

    async def _stop_pipeline(self, item: PsrpShell, run: PipelineRun) -> None:
        if run.finished:
            return
        run.stop_requested = True
        if run.started and item.runspace is not None:
            await asyncio.to_thread(item.runspace.stop)
        elif not run.started:
            run.started = True
            run.pipeline.start()
            run.pipeline.stop()
            run.finished = True
            item.changed.notify()

    async def _close_pipeline(self, item: PsrpShell, run: PipelineRun) -> None:
        if run.started and not run.finished:
            await self._stop_pipeline(item, run)
        run.closed = True
        item.pipelines.pop(run.pipeline.pipeline_id, None)
        item.queues.pop(run.pipeline.pipeline_id, None)
        item.pool.pipeline_table.pop(run.pipeline.pipeline_id, None)


def _has_client_host(pipeline: ServerPipeline) -> bool:
    """Whether the client passed a host (HostInfo with IsHostNull false): only then are host calls sent."""
    host = getattr(pipeline, "host", None)
    if host is None or getattr(host, "UseRunspaceHost", False):
        host = pipeline.runspace_pool.host
    return host is not None and not getattr(host, "IsHostNull", True)


def _invoke_statements(
    runspace: shell.Runspace, statements: list[list[shell.Command]], input_values: list[Any]
) -> shell.InvocationResult:
    """Run statements in order (``add_statement``), input feeding the first; merge their streams."""
    merged = shell.InvocationResult()
    for index, commands in enumerate(statements):
        result = runspace.invoke(commands, input_values if index == 0 and input_values else None)
        merged.output.extend(result.output)
        merged.errors.extend(result.errors)
        merged.warnings.extend(result.warnings)
        merged.verbose.extend(result.verbose)
        merged.debug.extend(result.debug)
        merged.information.extend(result.information)
        merged.had_errors = merged.had_errors or result.had_errors
        if result.terminating_error is not None:
            merged.terminating_error = result.terminating_error
            break
        if result.exit_code is not None:  # `exit` ends the whole pipeline, later statements included
            merged.exit_code = result.exit_code
            break
    return merged
