"""The state diagram: the machine's mermaid read into graphs, and the layout that draws them."""

from __future__ import annotations

from itertools import pairwise

from migrator.machine.diagram import render
from migrator.playbook import load_playbook
from migrator.report.diagram import (
    END,
    START,
    Edge,
    build_diagram,
    layout,
    parse_mermaid_edges,
    parse_mermaid_graphs,
    svg,
)


def test_hostile_state_names_are_escaped_in_the_svg() -> None:
    """A state name or label that would be markup reaches the SVG as text."""
    picture = svg([Edge("pending", "<b>x</b>", 'a"; <click>')])
    assert "<b>" not in picture and "<click>" not in picture and "&lt;b&gt;x&lt;/b&gt;" in picture


def test_state_diagram_edges_parse() -> None:
    """stateDiagram edges (a --> b : label) are read; [*] as a source is the start, as a target the end; notes
    are not edges."""
    state_text = (
        "stateDiagram-v2\n  [*] --> pending\n  pending --> preflight : start\n  migrated --> [*]\n  note left of x\n"
    )
    assert parse_mermaid_edges(state_text) == [
        Edge(START, "pending"),
        Edge("pending", "preflight", "start"),
        Edge("migrated", END),
    ]


def test_a_text_with_two_machines_gives_two_titled_graphs() -> None:
    """The machine draws the device and the user machine in one text: each becomes its own titled graph."""
    text = (
        "%% device machine\nstateDiagram-v2\n    [*] --> pending\n    pending --> migrated : all_migrated\n\n"
        "%% user machine\nstateDiagram-v2\n    [*] --> pending\n    pending --> deleting : delete [guards]\n"
        "    note right of pending : generic\n"
    )
    graphs = parse_mermaid_graphs(text)
    assert [g.title for g in graphs] == ["device machine", "user machine"]
    assert graphs[1].edges == (Edge(START, "pending"), Edge("pending", "deleting", "delete [guards]"))


def test_the_diagram_is_the_machines_every_row_of_it_without_a_playbook() -> None:
    """build_diagram draws what migrator.machine.diagram.render generates from the table: both machines, every
    edge of its mermaid text."""
    diagram = build_diagram()
    assert diagram.mermaid == render("mermaid") and diagram.playbook is None
    assert [g.title for g in diagram.graphs] == ["device machine", "user machine"]
    assert Edge("rolling_back", "rolled_back", "restored") in diagram.edges
    assert diagram.as_json()["source"] == "machine"


def test_with_a_playbook_only_its_rows_are_drawn() -> None:
    """For a wave's playbook the diagram has that playbook's rows only (key trust deletes no container)."""
    playbook = load_playbook("key-trust-to-cloud-kerberos")
    diagram = build_diagram(playbook)
    assert diagram.mermaid == render("mermaid", playbook) and diagram.playbook == playbook.name
    assert len(diagram.edges) < len(build_diagram().edges)
    assert diagram.as_json()["playbook"] == playbook.name


def test_layout_breaks_cycles_and_keeps_layers_apart() -> None:
    """Forward edges go down a layer or more, a retry loop is a back edge, and boxes of one layer never overlap."""
    edges = [
        Edge(START, "pending"),
        Edge("pending", "preflight"),
        Edge("preflight", "confirm_policy"),
        Edge("confirm_policy", "waiting_for_dc"),
        Edge("waiting_for_dc", "confirm_policy", "dc back"),  # the retry loop
        Edge("confirm_policy", "migrated"),
        Edge("preflight", "failed"),
        Edge("waiting_for_dc", "waiting_for_dc", "recheck"),  # a self loop
        Edge("migrated", END),
    ]
    boxes, back, width, height = layout(edges)
    assert set(boxes) == {START, "pending", "preflight", "confirm_policy", "waiting_for_dc", "migrated", "failed", END}
    assert back == {4}
    for index, edge in enumerate(edges):
        if index not in back and edge.source != edge.dest:
            assert boxes[edge.dest].y > boxes[edge.source].y, edge
    assert boxes[END].y == max(b.y for b in boxes.values())
    rows: dict[float, list[tuple[float, float]]] = {}
    for box in boxes.values():
        rows.setdefault(box.y, []).append((box.x - box.width / 2, box.x + box.width / 2))
        assert box.x - box.width / 2 >= 0 and box.x + box.width / 2 <= width and box.y <= height
    for spans in rows.values():
        for (_, right), (left, _) in pairwise(sorted(spans)):
            assert right <= left
    picture = svg(edges)
    assert picture.count("<path class=") == len(edges) and picture.count('class="edge back"') == 2


def test_layout_of_nothing_is_empty() -> None:
    """No edges: no boxes, and no SVG at all."""
    assert layout([]) == ({}, set(), 0.0, 0.0)
    assert svg([]) == ""


def test_parallel_rows_share_one_arrow() -> None:
    """Two rows between the same states (different triggers) are drawn as one arrow with both labels."""
    picture = svg([Edge("a", "b", "x"), Edge("a", "b", "y")])
    assert picture.count("<path class=") == 1 and "a → b: x; y" in picture
