"""cmd.exe's internal commands beyond echo/type/exit/rem/cd: ``ver``, ``set`` and ``dir``.

Layouts (``help ver``, ``help set``, ``help dir`` in cmd.exe; learn.microsoft.com windows-commands ver / set / dir;
samples in ``tests/lab/outputs/cmd_*.txt``), Windows 10/11 en-US:

- ``ver``: a blank line, then ``Microsoft Windows [Version 10.0.<build>.<ubr>]``;
- ``set``: every variable as ``NAME=value``, sorted case-insensitively; ``set P`` only those starting with ``P``
  (none: "Environment variable P not defined", ERRORLEVEL 1); ``set NAME=value`` / ``set NAME=`` change this
  cmd.exe's environment (later commands on the line see it; ``%NAME%`` was expanded when the line was read);
- ``dir [path]`` and ``dir /b``: the volume header, the folder's entries (``<DIR>`` or the size, dates as
  ``MM/dd/yyyy  hh:mm AM``), the summary lines. The free space and the volume serial number are the lab's own
  fixed figures (the lab models no disk).

``set /a``, ``set /p`` and the other ``dir`` switches are refused as not modelled.
"""

from __future__ import annotations

from datetime import datetime

from migrator.lab import boundary
from migrator.lab.cmdlets.filesystem import DeviceFiles
from migrator.lab.native._common import NativeContext, resolve_path, text, working_directory
from migrator.lab.shell import NativeResult

# The lab's one volume: a fixed serial number and free space (not modelled: no disk usage is tracked).
VOLUME_SERIAL = "4C41-4221"
FREE_BYTES = 107_374_182_400


def refuse(what: str) -> NativeResult:
    return NativeResult(
        stderr=text([boundary.native_refusal(what, "lab/native/builtins")]), exit_code=boundary.EXIT_CODE
    )


def version_line(ctx: NativeContext) -> str:
    os = ctx.device.os
    return f"Microsoft Windows [Version {os.version}.{os.build}.{os.ubr}]"


def ver(ctx: NativeContext, rest: str) -> NativeResult:
    if rest.strip():
        return NativeResult(stderr=text(["The syntax of the command is incorrect."]), exit_code=1)
    return NativeResult(stdout=text(["", version_line(ctx)]))


def set_command(ctx: NativeContext, rest: str, env: dict[str, str]) -> NativeResult:
    """``set`` on ``env`` (this cmd.exe's environment block, changed in place)."""
    argument = rest.strip()
    if argument[:2].casefold() in ("/a", "/p"):
        return refuse(f"set {argument[:2]}")
    if argument.startswith('"') and argument.endswith('"') and "=" in argument:
        argument = argument[1:-1]
    name, equals, value = argument.partition("=")
    if equals:
        if not name:
            return NativeResult(stderr=text(["The syntax of the command is incorrect."]), exit_code=1)
        for key in [k for k in env if k.casefold() == name.casefold()]:
            del env[key]
        if value:
            env[name] = value
        return NativeResult()
    shown = sorted(env.items(), key=lambda item: item[0].casefold())
    if argument:
        shown = [(k, v) for k, v in shown if k.casefold().startswith(argument.casefold())]
        if not shown:
            return NativeResult(stderr=text([f"Environment variable {argument} not defined"]), exit_code=1)
    return NativeResult(stdout=text([f"{k}={v}" for k, v in shown]))


def _stamp(moment: datetime) -> str:
    hour = moment.hour % 12 or 12
    suffix = "AM" if moment.hour < 12 else "PM"
    return f"{moment.month:02d}/{moment.day:02d}/{moment.year}  {hour:02d}:{moment.minute:02d} {suffix}"


def dir_command(ctx: NativeContext, args: list[str]) -> NativeResult:
    switches = [a.casefold() for a in args if a.startswith("/")]
    paths = [a for a in args if not a.startswith("/")]
    if any(s != "/b" for s in switches) or len(paths) > 1 or any(c in "".join(paths) for c in "*?"):
        return refuse("dir " + " ".join(args))
    bare = "/b" in switches
    folder = resolve_path(ctx, paths[0]) if paths else working_directory(ctx.lab, ctx.device, ctx.principal)
    with ctx.device.lock:
        files = DeviceFiles(ctx.lab, ctx.device)
        if files.is_file(folder):
            entries = [(folder, False)]
            folder = folder.rsplit("\\", 1)[0]
        elif files.is_dir(folder):
            entries = files.children(folder)
        else:
            parent = folder.rsplit("\\", 1)[0] or folder
            header = [*_volume_header(), "", f" Directory of {parent}", ""]
            return NativeResult(stdout=text(header), stderr=text(["File Not Found"]), exit_code=1)
        now = ctx.now()
        rows: list[tuple[str, bool, int, datetime]] = []
        for display, is_dir in entries:
            entry = files.get(display)
            size = 0 if entry is None or is_dir else entry.size
            modified = entry.modified if entry is not None and entry.modified is not None else now
            rows.append((display.rsplit("\\", 1)[-1], is_dir, size, modified))
    if bare:
        return NativeResult(stdout=text([name for name, *_ in rows]))
    lines = [*_volume_header(), "", f" Directory of {folder}", ""]
    if len(folder) > 3:  # a folder below the root lists . and .. first
        lines += [f"{_stamp(now)}    <DIR>          .", f"{_stamp(now)}    <DIR>          .."]
    for name, is_dir, size, modified in rows:
        lines.append(
            f"{_stamp(modified)}    <DIR>          {name}" if is_dir else f"{_stamp(modified)} {size:>17,} {name}"
        )
    file_count = sum(1 for _, is_dir, *_ in rows if not is_dir)
    dir_count = sum(1 for _, is_dir, *_ in rows if is_dir) + (2 if len(folder) > 3 else 0)
    total = sum(size for _, is_dir, size, _ in rows if not is_dir)
    lines.append(f"{file_count:>16} File(s) {total:>14,} bytes")
    lines.append(f"{dir_count:>16} Dir(s)  {FREE_BYTES:>14,} bytes free")
    return NativeResult(stdout=text(lines))


def _volume_header() -> list[str]:
    return [" Volume in drive C has no label.", f" Volume Serial Number is {VOLUME_SERIAL}"]
