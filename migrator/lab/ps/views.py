"""Default table views of the object types the lab's cmdlets emit, as Windows PowerShell 5.1's format files
declare them (``$PSHOME\\*.format.ps1xml``: DotNetTypes, FileSystem, Registry, Certificate; CimCmdlets for
Win32_OperatingSystem). Out-String / Out-Default use a type's view when its first matching type name has one;
other objects keep the generic layout of :func:`migrator.lab.ps.formatting.format_default`.

A view is data: columns (header, how to read the cell, declared width or None for "as wide as the data",
alignment) and an optional group-by line (``    Directory: C:\\x``) printed whenever the group changes.
A cell longer than its declared width is cut to ``width - 3`` characters and ``...`` (Windows PowerShell 5.1;
PowerShell 7 uses one ellipsis character). Cells may span several lines (the registry's Property column).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from migrator.lab.shell import PSObject

Cell = Callable[[PSObject], Any]


@dataclass(frozen=True)
class Column:
    header: str
    cell: Cell
    width: int | None = None
    align: Literal["left", "right"] = "left"


@dataclass(frozen=True)
class TableView:
    columns: tuple[Column, ...]
    group: Callable[[PSObject], str] | None = None  # the group-by line for an object
    blank_after_group: int = 1


def _prop(name: str) -> Cell:
    return lambda obj: obj.get(name)


def _strip_provider(path: Any) -> str:
    text = "" if path is None else str(path)
    return text.split("::", 1)[1] if "::" in text else text


def _short_date(value: Any) -> str:
    if not isinstance(value, datetime):
        return "" if value is None else str(value)
    hour = value.hour % 12 or 12
    suffix = "AM" if value.hour < 12 else "PM"
    # FileSystem.format.ps1xml: [String]::Format("{0,10}  {1,8}", date.ToString("d"), date.ToString("t"))
    return f"{f'{value.month}/{value.day}/{value.year}':>10}  {f'{hour}:{value.minute:02d} {suffix}':>8}"


def _registry_values(obj: PSObject) -> str:
    values = obj.view_data or []
    if not values:
        return ""
    width = max(len(name) for name, _ in values)
    return "\n".join(f"{name.ljust(width)} : {value}" for name, value in values)


def _file_length(obj: PSObject) -> Any:
    return None if obj.get("PSIsContainer") else obj.get("Length")


def _cim_class(name: str) -> str:
    return f"Microsoft.Management.Infrastructure.CimInstance#root/cimv2/{name}"


VIEWS: dict[str, TableView] = {
    "System.ServiceProcess.ServiceController": TableView(
        (
            Column("Status", _prop("Status"), 8),
            Column("Name", _prop("Name"), 18),
            Column("DisplayName", _prop("DisplayName"), 38),
        )
    ),
    "System.Security.Cryptography.X509Certificates.X509Certificate2": TableView(
        (Column("Thumbprint", _prop("Thumbprint"), 41), Column("Subject", _prop("Subject"))),
        group=lambda obj: f"   PSParentPath: {obj.get('PSParentPath')}",
    ),
    "System.IO.DirectoryInfo": TableView(
        (
            Column("Mode", _prop("Mode"), 7),
            Column("LastWriteTime", lambda obj: _short_date(obj.get("LastWriteTime")), 25, "right"),
            Column("Length", _file_length, 14, "right"),
            Column("Name", _prop("Name")),
        ),
        group=lambda obj: f"    Directory: {_strip_provider(obj.get('PSParentPath'))}",
        blank_after_group=2,
    ),
    "Microsoft.Win32.RegistryKey": TableView(
        (Column("Name", _prop("PSChildName"), 30), Column("Property", _registry_values)),
        group=lambda obj: f"    Hive: {_strip_provider(obj.get('PSParentPath'))}",
        blank_after_group=2,
    ),
    _cim_class("Win32_OperatingSystem"): TableView(
        (
            Column("SystemDirectory", _prop("SystemDirectory")),
            Column("Organization", _prop("Organization")),
            Column("BuildNumber", _prop("BuildNumber")),
            Column("RegisteredUser", _prop("RegisteredUser")),
            Column("SerialNumber", _prop("SerialNumber")),
            Column("Version", _prop("Version")),
        )
    ),
}
VIEWS["System.IO.FileInfo"] = VIEWS["System.IO.DirectoryInfo"]


def view_for(obj: Any) -> TableView | None:
    if not isinstance(obj, PSObject):
        return None
    for name in obj.type_names:
        view = VIEWS.get(name)
        if view is not None:
            return view
    return None


def render(objects: list[PSObject], view: TableView, cell_text: Callable[[Any], str]) -> list[str]:
    """Lines of one run of objects sharing a view (a group line whenever the group changes)."""
    lines: list[str] = []
    index = 0
    while index < len(objects):
        group = view.group(objects[index]) if view.group else None
        run = [objects[index]]
        index += 1
        while index < len(objects) and (view.group(objects[index]) if view.group else None) == group:
            run.append(objects[index])
            index += 1
        lines.append("")
        if group is not None:
            lines += [group] + [""] * view.blank_after_group
        lines += _table(run, view, cell_text)
        lines.append("")
    return lines


def _table(objects: list[PSObject], view: TableView, cell_text: Callable[[Any], str]) -> list[str]:
    cells = [[cell_text(column.cell(obj)).split("\n") for column in view.columns] for obj in objects]
    widths: list[int] = []
    for position, column in enumerate(view.columns):
        if column.width is not None:
            widths.append(column.width)
        else:
            data = [len(line) for row in cells for line in row[position]]
            widths.append(max([len(column.header), *data]))
    last = len(view.columns) - 1

    def fit(text: str, position: int) -> str:
        width = widths[position]
        if len(text) > width:
            text = text[: max(width - 3, 0)] + "..."
        if view.columns[position].align == "right":
            return text.rjust(width)
        return text if position == last else text.ljust(width)

    def line(values: list[str]) -> str:
        return " ".join(fit(value, position) for position, value in enumerate(values)).rstrip()

    out = [line([c.header for c in view.columns]), line(["-" * len(c.header) for c in view.columns])]
    for row in cells:
        height = max(len(parts) for parts in row)
        for depth in range(height):
            out.append(line([parts[depth] if depth < len(parts) else "" for parts in row]))
    return out


# ---- Format-List / Format-Table ----------------------------------------------------------------------------


def _names(obj: Any, wanted: list[str] | None) -> list[str]:
    if not isinstance(obj, PSObject):
        return []
    names = list(obj.properties.keys())
    if wanted is None:
        view = view_for(obj)
        if view is not None and any("CimInstance" in t for t in obj.type_names):
            # A CIM class's default display property set is what its table view shows.
            return [c.header for c in view.columns if c.header in obj.properties]
        return names
    out: list[str] = []
    for pattern in wanted:
        if pattern == "*":
            out.extend(n for n in names if n not in out)
        else:
            out.extend(n for n in names if n.casefold() == pattern.casefold() and n not in out)
    return out


def format_list(objects: list[Any], wanted: list[str] | None, cell_text: Callable[[Any], str]) -> list[str]:
    """Format-List: per object ``Name : value`` with the names padded to the longest, a blank line around each."""
    lines: list[str] = [""]
    for obj in objects:
        if not isinstance(obj, PSObject):
            lines += [cell_text(obj), ""]
            continue
        names = _names(obj, wanted)
        width = max((len(n) for n in names), default=0)
        for name in names:
            text = cell_text(obj.get(name)).split("\n")
            lines.append(f"{name.ljust(width)} : {text[0]}".rstrip())
            lines += [" " * (width + 3) + more for more in text[1:]]
        lines.append("")
    lines.append("")
    return lines


def format_table(
    objects: list[Any], wanted: list[str] | None, cell_text: Callable[[Any], str], hide_headers: bool = False
) -> list[str]:
    """Format-Table: the type's view without -Property; else the named properties, as wide as their data."""
    psobjects = [o for o in objects if isinstance(o, PSObject)]
    if not psobjects:
        return [cell_text(o) for o in objects]
    view = view_for(psobjects[0]) if wanted is None else None
    if view is None:
        names = _names(psobjects[0], wanted) if wanted is not None else list(psobjects[0].properties.keys())[:10]
        view = TableView(tuple(Column(name, _prop(name), None, _alignment(psobjects, name)) for name in names))
        lines = ["", *_table(psobjects, view, cell_text), ""]
    else:
        lines = render(psobjects, view, cell_text)
    if hide_headers:
        lines = [line for index, line in enumerate(lines) if index not in _header_rows(lines)]
    return [*lines, ""]


def _alignment(objects: list[PSObject], name: str) -> Literal["left", "right"]:
    """Numbers are right-aligned in a table (header included), everything else left."""
    values = [obj.get(name) for obj in objects]
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values if v is not None)
    return "right" if numeric and any(v is not None for v in values) else "left"


def _header_rows(lines: list[str]) -> set[int]:
    rows: set[int] = set()
    for index, line in enumerate(lines):
        if line and set(line.replace(" ", "")) == {"-"} and index > 0:
            rows |= {index - 1, index}
    return rows
