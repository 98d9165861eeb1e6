"""The state diagram in reports: mermaid text, and an inline SVG drawn by a small layered layout.

Where the diagram comes from
----------------------------
The transition table of :mod:`migrator.machine` is the source of truth (architecture rule 2): the report draws
what :func:`migrator.machine.diagram.render` generates from it (the wave's playbook's rows when the wave ran a
shipped playbook unchanged, every row otherwise), the device machine and the user machine as two graphs.

The SVG layout (Sugiyama-style, small): break cycles by reversing DFS back edges, put each state on the layer
of its longest path from a start, order each layer by the barycentre of its neighbours for a few sweeps, then
draw top to bottom. Back edges bend to the right. No script, no external asset: a change manager's browser
shows it from a file.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

from migrator.machine.diagram import render
from migrator.playbook import Playbook
from migrator.report.states import FINAL_STATES, state_sort_key

START = "[*]"  # mermaid's pseudo-state for the start (as a source) and the end (as a target)
END = "[*]end"  # the end pseudo-state, kept apart from the start so the layout is not a cycle


@dataclass(frozen=True)
class Edge:
    source: str
    dest: str
    label: str = ""


@dataclass(frozen=True)
class Graph:
    """One state machine of a diagram (the device's, or the per-user sub-machine)."""

    title: str
    edges: tuple[Edge, ...]

    def as_json(self) -> dict[str, object]:
        return {"title": self.title, "edges": [{"from": e.source, "to": e.dest, "label": e.label} for e in self.edges]}


@dataclass(frozen=True)
class Diagram:
    """The machine's state diagram: its mermaid text and its graphs (for the SVGs)."""

    mermaid: str
    graphs: tuple[Graph, ...]
    playbook: str | None = None  # the playbook whose rows are drawn (None: every row of the table)

    @property
    def edges(self) -> tuple[Edge, ...]:
        """Every edge of every graph."""
        return tuple(edge for graph in self.graphs for edge in graph.edges)

    def as_json(self) -> dict[str, object]:
        return {
            "source": "machine",
            "playbook": self.playbook,
            "mermaid": self.mermaid,
            "graphs": [graph.as_json() for graph in self.graphs],
        }


def parse_mermaid_graphs(text: str) -> list[Graph]:
    """The graphs of the machine's mermaid text (one ``stateDiagram-v2`` per machine), each titled by the ``%%``
    comment before it."""
    graphs: list[tuple[str, list[str]]] = []
    title = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("%%"):
            title = line.lstrip("%").strip()
        elif line.startswith("stateDiagram"):
            graphs.append((title or f"diagram {len(graphs) + 1}", []))
            title = ""
        elif graphs:
            graphs[-1][1].append(line)
    return [Graph(name, tuple(parse_mermaid_edges("\n".join(lines)))) for name, lines in graphs]


def parse_mermaid_edges(text: str) -> list[Edge]:
    """The edges of a mermaid ``stateDiagram`` (``a --> b : label``; ``[*]`` as a target is the end)."""
    edges: list[Edge] = []
    for raw in text.splitlines():
        match = _STATE_EDGE.match(raw.strip())
        if match is None:
            continue
        source, dest = match.group("source"), match.group("dest")
        if dest == START:
            dest = END  # in stateDiagram syntax, [*] as a target is the end state
        edges.append(Edge(source, dest, (match.group("label") or "").strip()))
    return edges


_NODE = r"(?:\[\*\]|[A-Za-z0-9_.:-]+)"
_STATE_EDGE = re.compile(rf"^(?P<source>{_NODE})\s*-->\s*(?P<dest>{_NODE})\s*(?::\s*(?P<label>.*))?$")


def build_diagram(playbook: Playbook | None = None) -> Diagram:
    """The machine's diagram, for ``playbook``'s rows when given (every row otherwise)."""
    text = render("mermaid", playbook)
    graphs = tuple(g for g in parse_mermaid_graphs(text) if g.edges)
    return Diagram(text, graphs, playbook.name if playbook is not None else None)


def _states(edges: Sequence[Edge]) -> list[str]:
    found: list[str] = []
    for edge in edges:
        for state in (edge.source, edge.dest):
            if state not in found:
                found.append(state)
    return found


# ---------------------------------------------------------------------------------------------- layout

_CHAR_WIDTH = 7.2  # px per character of the 12px monospace font
_NODE_HEIGHT = 28.0
_NODE_PAD = 20.0
_LAYER_GAP = 64.0
_NODE_GAP = 28.0
_MARGIN = 20.0
_PSEUDO_RADIUS = 8.0
_SWEEPS = 4


@dataclass(frozen=True)
class Box:
    name: str
    x: float  # centre
    y: float  # centre
    width: float
    height: float


def layout(edges: Sequence[Edge]) -> tuple[dict[str, Box], set[int], float, float]:
    """Place the states of ``edges``: boxes by name, the indices of back edges, and the drawing's size."""
    states = _states(edges)
    if not states:
        return {}, set(), 0.0, 0.0
    successors: dict[str, list[str]] = {s: [] for s in states}
    for edge in edges:
        if edge.source != edge.dest:
            successors[edge.source].append(edge.dest)
    back = _back_edges(states, edges, successors)
    forward = [e for i, e in enumerate(edges) if i not in back and e.source != e.dest]
    layer = _longest_path_layers(states, forward)
    layers: dict[int, list[str]] = {}
    for state in states:  # first-appearance order seeds the ordering
        layers.setdefault(layer[state], []).append(state)
    _order_layers(layers, forward)
    widths = {s: _node_width(s) for s in states}
    row_widths = {n: sum(widths[s] for s in row) + _NODE_GAP * (len(row) - 1) for n, row in layers.items()}
    total_width = max(row_widths.values()) + 2 * _MARGIN + 120.0  # room on the right for back edges
    boxes: dict[str, Box] = {}
    for number, row in layers.items():
        x = _MARGIN + (total_width - 120.0 - 2 * _MARGIN - row_widths[number]) / 2
        y = _MARGIN + number * (_NODE_HEIGHT + _LAYER_GAP) + _NODE_HEIGHT / 2
        for state in row:
            height = 2 * _PSEUDO_RADIUS if state in (START, END) else _NODE_HEIGHT
            boxes[state] = Box(state, x + widths[state] / 2, y, widths[state], height)
            x += widths[state] + _NODE_GAP
    total_height = 2 * _MARGIN + (max(layers) + 1) * (_NODE_HEIGHT + _LAYER_GAP) - _LAYER_GAP
    return boxes, back, total_width, total_height


def _node_width(state: str) -> float:
    return 2 * _PSEUDO_RADIUS if state in (START, END) else len(state) * _CHAR_WIDTH + _NODE_PAD


def _back_edges(states: list[str], edges: Sequence[Edge], successors: dict[str, list[str]]) -> set[int]:
    """Indices of edges that close a cycle in a DFS from the starts (reversed for layering, drawn bent)."""
    entered = {e.dest for e in edges if e.source != e.dest}
    roots = sorted((s for s in states if s not in entered), key=lambda s: (s != START, state_sort_key(s)))
    roots += [s for s in states if s not in roots]
    colour: dict[str, int] = {}  # 1 on the DFS stack, 2 done
    back_pairs: set[tuple[str, str]] = set()
    for root in roots:
        if root in colour:
            continue
        colour[root] = 1
        stack: list[tuple[str, int]] = [(root, 0)]
        while stack:  # iterative DFS: a long chain of states must not hit the recursion limit
            node, index = stack[-1]
            if index < len(successors[node]):
                stack[-1] = (node, index + 1)
                nxt = successors[node][index]
                if colour.get(nxt) == 1:
                    back_pairs.add((node, nxt))
                elif nxt not in colour:
                    colour[nxt] = 1
                    stack.append((nxt, 0))
            else:
                colour[node] = 2
                stack.pop()
    return {i for i, e in enumerate(edges) if (e.source, e.dest) in back_pairs}


def _longest_path_layers(states: list[str], forward: Sequence[Edge]) -> dict[str, int]:
    layer = dict.fromkeys(states, 0)
    incoming = {s: 0 for s in states}
    for edge in forward:
        incoming[edge.dest] += 1
    ready = [s for s in states if incoming[s] == 0]
    while ready:  # Kahn's topological order; forward edges form a DAG once back edges are out
        node = ready.pop(0)
        for edge in forward:
            if edge.source == node:
                layer[edge.dest] = max(layer[edge.dest], layer[node] + 1)
                incoming[edge.dest] -= 1
                if incoming[edge.dest] == 0:
                    ready.append(edge.dest)
    if END in layer:  # the end sits below everything
        layer[END] = max(layer.values()) if len(layer) == 1 else max(v for k, v in layer.items() if k != END) + 1
    return layer


def _order_layers(layers: dict[int, list[str]], forward: Sequence[Edge]) -> None:
    """Barycentre sweeps: each state moves towards the mean position of its neighbours in the next layer up
    (downward sweep) or down (upward sweep), which removes most crossings on graphs this small."""
    numbers = sorted(layers)
    for sweep in range(_SWEEPS):
        downward = sweep % 2 == 0
        for number in numbers[1:] if downward else list(reversed(numbers))[1:]:
            neighbour_layer = number - 1 if downward else number + 1
            if neighbour_layer not in layers:
                continue
            position = {s: i for i, s in enumerate(layers[neighbour_layer])}
            row = layers[number]

            def barycentre(
                state: str, row: list[str] = row, position: dict[str, int] = position, downward: bool = downward
            ) -> float:
                if downward:
                    linked = [position[e.source] for e in forward if e.dest == state and e.source in position]
                else:
                    linked = [position[e.dest] for e in forward if e.source == state and e.dest in position]
                return sum(linked) / len(linked) if linked else float(row.index(state))

            layers[number] = sorted(row, key=barycentre)


def svg(edges: Sequence[Edge], *, title: str = "state diagram") -> str:
    """An inline SVG of the graph (every text escaped); empty when there are no edges."""
    if not edges:
        return ""
    edges = _merge_parallel(edges)
    boxes, back, width, height = layout(edges)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="diagram" role="img" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}">',
        f"<title>{_esc(title)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>',
    ]
    for index, edge in enumerate(edges):
        out.append(_edge_path(boxes[edge.source], boxes[edge.dest], index in back, edge.label))
    for box in boxes.values():
        out.append(_node(box))
    out.append("</svg>")
    return "\n".join(out)


def _merge_parallel(edges: Sequence[Edge]) -> list[Edge]:
    """One arrow per (from, to) pair: rows that differ only in trigger or guards share it, labels joined."""
    labels: dict[tuple[str, str], list[str]] = {}
    for edge in edges:
        seen = labels.setdefault((edge.source, edge.dest), [])
        if edge.label and edge.label not in seen:
            seen.append(edge.label)
    return [Edge(source, dest, "; ".join(names)) for (source, dest), names in labels.items()]


def _edge_path(a: Box, b: Box, is_back: bool, label: str) -> str:
    tip = f"<title>{_esc(f'{_shown(a.name)} → {_shown(b.name)}' + (f': {label}' if label else ''))}</title>"
    if a.name == b.name:  # a self loop: a small arc on the right of the box
        x, y = a.x + a.width / 2, a.y
        d = f"M{x:.1f},{y - 6:.1f} C{x + 30:.1f},{y - 22:.1f} {x + 30:.1f},{y + 22:.1f} {x:.1f},{y + 6:.1f}"
        return f'<path class="edge back" d="{d}" marker-end="url(#arrow)">{tip}</path>'
    if is_back or b.y <= a.y:  # goes up: leave and arrive on the right side, bending out
        x1, y1 = a.x + a.width / 2, a.y
        x2, y2 = b.x + b.width / 2, b.y
        bend = max(x1, x2) + 40 + abs(y1 - y2) * 0.15
        d = f"M{x1:.1f},{y1:.1f} C{bend:.1f},{y1:.1f} {bend:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
        return f'<path class="edge back" d="{d}" marker-end="url(#arrow)">{tip}</path>'
    x1, y1 = a.x, a.y + a.height / 2
    x2, y2 = b.x, b.y - b.height / 2
    middle = (y1 + y2) / 2
    d = f"M{x1:.1f},{y1:.1f} C{x1:.1f},{middle:.1f} {x2:.1f},{middle:.1f} {x2:.1f},{y2:.1f}"
    return f'<path class="edge" d="{d}" marker-end="url(#arrow)">{tip}</path>'


def _node(box: Box) -> str:
    if box.name == START:
        centre = f'cx="{box.x:.1f}" cy="{box.y:.1f}"'
        return f'<circle class="pseudo" {centre} r="{_PSEUDO_RADIUS}"><title>start</title></circle>'
    if box.name == END:
        centre = f'cx="{box.x:.1f}" cy="{box.y:.1f}"'
        return (
            f'<circle class="pseudo-ring" {centre} r="{_PSEUDO_RADIUS}"/>'
            f'<circle class="pseudo" {centre} r="{_PSEUDO_RADIUS - 3}"><title>end</title></circle>'
        )
    css = "node final" if box.name in FINAL_STATES else "node"
    left, top = box.x - box.width / 2, box.y - box.height / 2
    return (
        f'<g class="{css}"><rect x="{left:.1f}" y="{top:.1f}" width="{box.width:.1f}" height="{box.height:.1f}" '
        f'rx="6"/><text x="{box.x:.1f}" y="{box.y + 4:.1f}" text-anchor="middle">{_esc(box.name)}</text></g>'
    )


def _shown(name: str) -> str:
    return {START: "start", END: "end"}.get(name, name)


def _esc(text: str) -> str:
    return html.escape(text, quote=True)
