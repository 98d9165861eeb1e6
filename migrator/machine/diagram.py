"""The state diagram, drawn from the table (mermaid ``stateDiagram-v2`` or graphviz ``dot``).

Only rows a playbook has are drawn when one is given; edges name the trigger and the guards
(``[policy_is_cloud, !external_channel]``); the point of no return is marked."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from migrator.machine.table import (
    DEVICE_FINAL,
    DEVICE_INITIAL,
    DEVICE_STATES,
    USER_FINAL,
    USER_INITIAL,
    USER_STATES,
    Row,
    device_rows,
    resolved_dest,
    user_rows,
)
from migrator.playbook import Playbook

Format = Literal["mermaid", "dot"]
# Rows many states share (a device that does not answer, a failure, a bug, a retry, a rollback): drawn once as a
# note, not as dozens of edges; a row of theirs from one state only is drawn as an edge.
_GENERIC = frozenset({"deferred", "step_failed", "unreachable", "reached", "internal_error", "begin_rollback", "retry"})


def _generic(row: Row) -> bool:
    return row.trigger in _GENERIC and (len(row.source) > 1 or row.trigger == "reached" or row.dest == "=")


def _label(row: Row) -> str:
    guards = [*row.conditions, *(f"!{g}" for g in row.unless)]
    label = row.trigger + (f" [{', '.join(guards)}]" if guards else "")
    return label + (" ⚠ point of no return" if row.point_of_no_return else "")


def _edges(rows: Sequence[Row]) -> list[tuple[str, str, str]]:
    edges: list[tuple[str, str, str]] = []
    for row in rows:
        if _generic(row):
            continue
        for source in row.source:
            edge = (source, resolved_dest(row, source), _label(row))
            if edge not in edges:
                edges.append(edge)
    return edges


def _mermaid(title: str, initial: str, states: Sequence[str], finals: Sequence[str], rows: Sequence[Row]) -> str:
    lines = [f"%% {title}", "stateDiagram-v2", f"    [*] --> {initial}"]
    used = {s for e in _edges(rows) for s in e[:2]} | {initial}
    for source, dest, label in _edges(rows):
        lines.append(f"    {source} --> {dest} : {label}")
    for state in finals:
        if state in used:
            lines.append(f"    {state} --> [*]")
    generic = sorted({r.trigger for r in rows if _generic(r)})
    if generic:
        lines.append(f"    note right of {initial} : from many states also {', '.join(generic)}")
    del states
    return "\n".join(lines)


def _dot(title: str, initial: str, states: Sequence[str], finals: Sequence[str], rows: Sequence[Row]) -> str:
    name = title.replace(" ", "_")
    lines = [f'digraph "{name}" {{', "    rankdir=LR;", "    node [shape=box, style=rounded];"]
    lines.append(f'    "__start" [shape=point]; "__start" -> "{initial}";')
    for state in finals:
        lines.append(f'    "{state}" [peripheries=2];')
    for source, dest, label in _edges(rows):
        escaped = label.replace('"', '\\"')
        lines.append(f'    "{source}" -> "{dest}" [label="{escaped}"];')
    lines.append("}")
    del states
    return "\n".join(lines)


def render(fmt: Format = "mermaid", playbook: Playbook | None = None) -> str:
    """Both machines (device, then user) in one text."""
    draw = _mermaid if fmt == "mermaid" else _dot
    scope = f" ({playbook.name})" if playbook is not None else ""
    device = draw(f"device machine{scope}", DEVICE_INITIAL, DEVICE_STATES, DEVICE_FINAL, device_rows(playbook))
    user = draw(f"user machine{scope}", USER_INITIAL, USER_STATES, USER_FINAL, user_rows(playbook))
    return f"{device}\n\n{user}\n"
