"""cmd.exe: the WinRS ``cmd`` shell and scheduled-task actions run command lines through it.

What is simulated (``cmd /?``, "Command shell overview" / redirection docs on learn.microsoft.com):

1. ``%VAR%`` expansion of the whole line first (case-insensitive; unknown names stay as typed; ``%ERRORLEVEL%``
   and ``%CD%`` are dynamic);
2. splitting on ``&``, ``&&``, ``||`` and ``|`` outside double quotes, ``^`` escaping the next character;
3. per command, redirections ``>``, ``>>``, ``n>``, ``n>&m``, ``< file`` and ``nul``, opened before the
   command runs (a missing folder stops the command: "The system cannot find the path specified.");
4. built-ins ``echo``, ``type``, ``exit [/b] [n]``, ``rem``, ``cd``, ``ver``, ``set``, ``dir``
   (:mod:`.builtins`) and ``cmd [/s] [/q] [/d] /c|/k ...`` with its rule for the quotes around the command;
5. everything else by program name (``dsregcmd``, ``C:\\Windows\\System32\\certutil.exe``, ``powershell``...)
   with arguments split as ``CommandLineToArgvW`` does; a Windows program or built-in the lab does not model
   is refused as "not modelled by the lab" (:mod:`migrator.lab.boundary`), and only a name Windows lacks too
   prints the "is not recognized" text and sets 9009.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from migrator.lab import boundary, windows_names
from migrator.lab.cmdlets.filesystem import DeviceFiles, parent_of
from migrator.lab.model import VFile
from migrator.lab.native import _dispatch, builtins
from migrator.lab.native._common import (
    NativeContext,
    environment,
    lookup_env,
    resolve_path,
    text,
    working_directory,
)
from migrator.lab.shell import NativeResult

NOT_RECOGNIZED = "'{}' is not recognized as an internal or external command,\noperable program or batch file."
NOT_RECOGNIZED_EXIT = 9009
_VARIABLE = re.compile(r"%([^%\s]+)%")
_NUL = {"nul", "nul:", "\\\\.\\nul"}
_CMD_SPECIAL = set("&<>()@^|")
_BLANKS = re.compile("[ \t]+")


# ---- CommandLineToArgvW --------------------------------------------------------------------------------


def command_line_to_argv(line: str) -> list[str]:
    """Split arguments as ``CommandLineToArgvW``/the MSVC runtime do (after the program name).

    Whitespace separates arguments outside quotes; ``2n`` backslashes before a quote give ``n`` backslashes
    and the quote toggles quoting; ``2n+1`` give ``n`` and a literal quote; inside quotes ``""`` is a literal
    quote; other backslashes are literal."""
    if '"' not in line and "\\" not in line:
        # Nothing to interpret (an -EncodedCommand line is kilobytes of base64): split on the blanks alone.
        return [arg for arg in _BLANKS.split(line) if arg]
    args: list[str] = []
    current: list[str] = []
    in_quotes = False
    have_arg = False
    index = 0
    length = len(line)
    while index < length:
        char = line[index]
        if char in " \t" and not in_quotes:
            if have_arg:
                args.append("".join(current))
                current, have_arg = [], False
            index += 1
            continue
        have_arg = True
        if char == "\\":
            run = 0
            while index < length and line[index] == "\\":
                run += 1
                index += 1
            if index < length and line[index] == '"':
                current.append("\\" * (run // 2))
                if run % 2:
                    current.append('"')
                    index += 1
            else:
                current.append("\\" * run)
            continue
        if char == '"':
            if in_quotes and index + 1 < length and line[index + 1] == '"':
                current.append('"')
                index += 2
                continue
            in_quotes = not in_quotes
            index += 1
            continue
        current.append(char)
        index += 1
    if have_arg:
        args.append("".join(current))
    return args


def quote_argument(arg: str) -> str:
    """The inverse of :func:`command_line_to_argv` for one argument (for rebuilding a command line)."""
    if arg and not any(c in arg for c in ' \t"'):
        return arg
    out = ['"']
    backslashes = 0
    for char in arg:
        if char == "\\":
            backslashes += 1
            continue
        if char == '"':
            out.append("\\" * (backslashes * 2 + 1) + '"')
        else:
            out.append("\\" * backslashes + char)
        backslashes = 0
    out.append("\\" * (backslashes * 2) + '"')
    return "".join(out)


# ---- parsing a line ----------------------------------------------------------------------------------


@dataclass
class Redirection:
    fd: int  # 0 stdin, 1 stdout, 2 stderr
    target: str  # a path, or "&1"/"&2" for a duplicate
    append: bool = False


@dataclass
class Pipeline:
    operator: str  # how it joins the previous pipeline: "", "&", "&&", "||"
    commands: list[str] = field(default_factory=list)


def expand_variables(line: str, env: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        value = lookup_env(env, match.group(1))
        return match.group(0) if value is None else value

    return _VARIABLE.sub(replace, line)


def split_pipelines(line: str) -> list[Pipeline]:
    """Split on ``&``, ``&&``, ``||`` and ``|`` outside quotes; carets stay for the later stages."""
    if "&" not in line and "|" not in line:
        return [Pipeline("", [line])]
    pipelines = [Pipeline("")]
    buffer: list[str] = []
    in_quotes = False
    index = 0
    while index < len(line):
        char = line[index]
        if char == '"':
            in_quotes = not in_quotes
        elif not in_quotes and char == "^" and index + 1 < len(line):
            buffer.append(line[index : index + 2])
            index += 2
            continue
        elif not in_quotes and char == "&" and not (buffer and buffer[-1].endswith((">", "<"))):
            pipelines[-1].commands.append("".join(buffer))
            buffer = []
            operator = "&&" if line[index + 1 : index + 2] == "&" else "&"
            pipelines.append(Pipeline(operator))
            index += len(operator)
            continue
        elif not in_quotes and char == "|":
            pipelines[-1].commands.append("".join(buffer))
            buffer = []
            if line[index + 1 : index + 2] == "|":
                pipelines.append(Pipeline("||"))
                index += 2
            else:
                index += 1
            continue
        buffer.append(char)
        index += 1
    pipelines[-1].commands.append("".join(buffer))
    return pipelines


def split_redirections(command: str) -> tuple[str, list[Redirection]]:
    """Take ``>``/``>>``/``n>``/``n>&m``/``<`` out of a command; the rest keeps its spacing (echo shows it)."""
    if "<" not in command and ">" not in command:
        return command, []
    out: list[str] = []
    redirections: list[Redirection] = []
    in_quotes = False
    index = 0
    length = len(command)
    while index < length:
        char = command[index]
        if char == '"':
            in_quotes = not in_quotes
        elif not in_quotes and char == "^" and index + 1 < length:
            out.append(command[index : index + 2])
            index += 2
            continue
        elif not in_quotes and char in "<>":
            fd = 0 if char == "<" else 1
            if char == ">" and out and out[-1].isdigit() and (len(out) == 1 or out[-2] in " \t"):
                fd = int(out.pop())
            index += 1
            append = False
            if char == ">" and index < length and command[index] == ">":
                append = True
                index += 1
            while index < length and command[index] in " \t":
                index += 1
            if index + 1 < length and command[index] == "&" and command[index + 1].isdigit():
                redirections.append(Redirection(fd, "&" + command[index + 1], append))
                index += 2
                continue
            target: list[str] = []
            quoted = False
            while index < length:
                c = command[index]
                if c == '"':
                    quoted = not quoted
                elif not quoted and (c in " \t<>|&"):
                    break
                else:
                    target.append(c)
                index += 1
            redirections.append(Redirection(fd, "".join(target), append))
            continue
        out.append(char)
        index += 1
    return "".join(out), redirections


def remove_carets(value: str) -> str:
    """``^x`` → ``x`` outside double quotes (cmd's escape character)."""
    if "^" not in value:
        return value
    out: list[str] = []
    in_quotes = False
    index = 0
    while index < len(value):
        char = value[index]
        if char == '"':
            in_quotes = not in_quotes
        elif char == "^" and not in_quotes and index + 1 < len(value):
            out.append(value[index + 1])
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


def split_program(command: str) -> tuple[str, str]:
    """(program as typed without quotes, the raw rest of the line)."""
    stripped = command.lstrip(" \t@")
    if stripped.startswith('"'):
        end = stripped.find('"', 1)
        end = len(stripped) if end < 0 else end
        return stripped[1:end], stripped[end + 1 :]
    match = re.match(r"[^\s\"]+", stripped)
    if match is None:
        return "", ""
    return match.group(0), stripped[match.end() :]


# ---- running a line ----------------------------------------------------------------------------------


@dataclass
class _Run:
    """The state of one cmd.exe process: its output so far and ERRORLEVEL."""

    ctx: NativeContext
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    errorlevel: int = 0
    exited: bool = False
    env: dict[str, str] = field(default_factory=dict)  # this cmd.exe's environment block (``set`` changes it)


def run_line(ctx: NativeContext, line: str) -> NativeResult:
    """Run one command line as ``cmd /c`` does; returns what reached the console and the exit code."""
    state = _Run(ctx)
    _execute(state, line)
    return NativeResult("".join(state.stdout), "".join(state.stderr), state.errorlevel)


def _execute(state: _Run, line: str) -> None:
    if not state.env:
        state.env = environment(state.ctx.lab, state.ctx.device, state.ctx.principal)
    env = dict(state.env)
    env["ERRORLEVEL"] = str(state.errorlevel)
    env["CD"] = working_directory(state.ctx.lab, state.ctx.device, state.ctx.principal)
    expanded = expand_variables(line, env)
    for pipeline in split_pipelines(expanded):
        if state.exited:
            return
        if pipeline.operator == "&&" and state.errorlevel != 0:
            continue
        if pipeline.operator == "||" and state.errorlevel == 0:
            continue
        # The process's own stdin goes to the first command that runs; later ones get none (it is consumed).
        piped, state.ctx = state.ctx.stdin, replace(state.ctx, stdin=None)
        for position, command in enumerate(pipeline.commands):
            last = position == len(pipeline.commands) - 1
            result = _run_command(state, command, piped, capture=not last)
            piped = result
            if state.exited:
                return


def _run_command(state: _Run, command: str, stdin: str | None, capture: bool) -> str | None:
    """Run one simple command; with ``capture`` its stdout is returned for the next command of a pipe."""
    ctx = state.ctx
    body, redirections = split_redirections(command)
    destinations: dict[int, tuple[str, str | None]] = {1: ("console", None), 2: ("console", None)}
    if capture:
        destinations[1] = ("pipe", None)
    for redirection in redirections:
        if redirection.target.startswith("&"):
            source = int(redirection.target[1:])
            destinations[redirection.fd] = destinations.get(source, ("console", None))
            continue
        if redirection.fd == 0:
            path = resolve_path(ctx, redirection.target)
            with ctx.device.lock:
                entry = ctx.device.files.get(path.casefold())
            if entry is None or entry.is_directory:
                state.stderr.append(text(["The system cannot find the file specified."]))
                state.errorlevel = 1
                return None
            stdin = entry.content
            continue
        if redirection.target.casefold() in _NUL:
            destinations[redirection.fd] = ("nul", None)
            continue
        path = resolve_path(ctx, redirection.target)
        error = _open_for_writing(ctx, path, redirection.append)
        if error is not None:
            state.stderr.append(text([error]))
            state.errorlevel = 1
            return None
        destinations[redirection.fd] = ("file", path)
    result = _dispatch_command(state, remove_carets(body) if body.strip() else body, stdin)
    if result is None:
        return None
    piped: list[str] = []
    for fd, content in ((1, result.stdout), (2, result.stderr)):
        kind, destination = destinations[fd]
        if not content or kind == "nul":
            continue
        if kind == "console":
            (state.stdout if fd == 1 else state.stderr).append(content)
        elif kind == "pipe":
            piped.append(content)
        elif destination is not None:
            _append_file(ctx, destination, content)
    state.errorlevel = result.exit_code
    return "".join(piped) if capture else None


def _open_for_writing(ctx: NativeContext, path: str, append: bool) -> str | None:
    """Open (create or truncate) a redirection target as cmd does before running; an error text or None."""
    with ctx.device.lock:
        # The file-system view (which folders exist) is the FileSystem provider's, shared with the cmdlets.
        files = DeviceFiles(ctx.lab, ctx.device)
        if files.is_dir(path):
            return "Access is denied."
        if not files.is_dir(parent_of(path)):
            return "The system cannot find the path specified."
        key = path.casefold()
        entry = ctx.device.files.get(key)
        if entry is None:
            ctx.device.files[key] = VFile(path=path, content="", modified=ctx.now())
        elif not append:
            entry.content = ""
            entry.modified = ctx.now()
    return None


def _append_file(ctx: NativeContext, path: str, content: str) -> None:
    with ctx.device.lock:
        entry = ctx.device.files.get(path.casefold())
        if entry is None:
            entry = ctx.device.files[path.casefold()] = VFile(path=path)
        # Files written through cmd keep the CRLF line ends the program wrote.
        entry.content += content.replace("\r\n", "\n").replace("\n", "\r\n")
        entry.modified = ctx.now()


def _dispatch_command(state: _Run, body: str, stdin: str | None) -> NativeResult | None:
    ctx = state.ctx
    program, rest = split_program(body)
    if not program:
        return None
    name = program.casefold()
    # "echo." / "echo:" print their remainder (or an empty line): cmd splits the built-in name there.
    if name.startswith("echo") and name[4:5] in (".", ":", "(", "/"):
        return NativeResult(stdout=text([program[5:] + rest]))
    if name == "echo":
        message = rest[1:] if rest[:1] in (" ", "\t") else rest
        if not message.strip():
            return NativeResult(stdout=text(["ECHO is on."]))
        return NativeResult(stdout=text([message]))
    if name == "rem":
        return NativeResult(exit_code=state.errorlevel)
    if name in ("cd", "chdir") and not rest.strip():
        return NativeResult(stdout=text([working_directory(ctx.lab, ctx.device, ctx.principal)]))
    if name == "type":
        return _type(ctx, command_line_to_argv(rest))
    if name == "ver":
        return builtins.ver(ctx, rest)
    if name == "set":
        if not state.env:
            state.env = environment(ctx.lab, ctx.device, ctx.principal)
        return builtins.set_command(ctx, rest, state.env)
    if name == "dir":
        return builtins.dir_command(ctx, command_line_to_argv(rest))
    if name == "exit":
        return _exit(state, command_line_to_argv(rest))
    resolved = _dispatch.resolve(program)
    if resolved is None:
        return not_found(program)
    if resolved == "cmd":
        return run_cmd_arguments(NativeContext(ctx.lab, ctx.device, ctx.principal, stdin), rest)
    return _dispatch.dispatch(
        NativeContext(ctx.lab, ctx.device, ctx.principal, stdin), resolved, command_line_to_argv(rest)
    )


def not_found(program: str) -> NativeResult:
    """A program the lab has no handler for: refused as not modelled when Windows has it (a System32 tool or a
    cmd built-in, :mod:`migrator.lab.windows_names`), "not recognized" (9009) only when Windows lacks it too."""
    if windows_names.is_cmd_builtin(program) or windows_names.is_windows_executable(program):
        return NativeResult(stderr=text([boundary.native_refusal(program)]), exit_code=boundary.EXIT_CODE)
    return NativeResult(stderr=text([NOT_RECOGNIZED.format(program)]), exit_code=NOT_RECOGNIZED_EXIT)


def _type(ctx: NativeContext, paths: list[str]) -> NativeResult:
    if not paths:
        return NativeResult(stderr=text(["The syntax of the command is incorrect."]), exit_code=1)
    out: list[str] = []
    errors: list[str] = []
    for raw in paths:
        path = resolve_path(ctx, raw)
        with ctx.device.lock:
            entry = ctx.device.files.get(path.casefold())
            content = None if entry is None or entry.is_directory else entry.content
        if content is None:
            errors.append(text(["The system cannot find the file specified."]))
            continue
        if len(paths) > 1:
            errors.append(text(["", raw, "", ""]))  # type names each file on stderr when given several
        out.append(content)
    return NativeResult("".join(out), "".join(errors), 1 if errors and not out else 0)


def _exit(state: _Run, args: list[str]) -> NativeResult:
    words = [a for a in args if a.casefold() != "/b"]
    code = state.errorlevel
    if words:
        try:
            code = int(words[0])
        except ValueError:
            code = 0
    state.exited = True
    return NativeResult(exit_code=code)


def run_cmd_arguments(ctx: NativeContext, rest: str) -> NativeResult:
    """``cmd [/s] [/q] [/d] [/u|/a] [/e:on] [/v:on] /c|/k string``: run ``string`` in a new cmd.exe."""
    remaining = rest.lstrip()
    strip_quotes_always = False
    while remaining[:1] == "/":
        match = re.match(r"/(\S+)", remaining)
        if match is None:
            break
        switch = match.group(1).casefold()
        remaining = remaining[match.end() :].lstrip()
        if switch in ("c", "k"):
            return run_line(ctx, _strip_command_quotes(remaining, strip_quotes_always))
        if switch == "s":
            strip_quotes_always = True
        if switch == "?":
            return NativeResult(stdout=text(["Starts a new instance of the Windows command interpreter", ""]))
    if remaining:
        return run_line(ctx, remaining)  # no /c: cmd would stay interactive; the lab runs the text once
    # An interactive cmd.exe prints its banner and waits for input; the lab's reads nothing more.
    banner = [builtins.version_line(ctx), "(c) Microsoft Corporation. All rights reserved.", ""]
    return NativeResult(stdout=text(banner))


def _strip_command_quotes(command: str, always: bool) -> str:
    """cmd /c's quote rule (``cmd /?``): keep the quotes only for exactly two quotes around an executable
    name with whitespace in it and no special characters; otherwise drop the first and the last quote."""
    if not command.startswith('"'):
        return command
    last = command.rfind('"')
    inner = command[1:last]
    if (
        not always
        and command.count('"') == 2
        and not (_CMD_SPECIAL & set(inner))
        and any(c in inner for c in " \t")
        and _dispatch.resolve(inner) is not None
    ):
        return command
    return command[1:last] + command[last + 1 :] if last > 0 else command[1:]
