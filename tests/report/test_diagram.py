"""The state diagram: the machine's mermaid when available, the store's transitions otherwise, and the layout."""

from __future__ import annotations

import importlib
import sys
import types
from datetime import UTC, datetime
from itertools import pairwise

import pytest

from migrator.report.diagram import (
    END,
    START,
    Edge,
    build_diagram,
    edges_from_transitions,
    layout,
    machine_mermaid,
    mermaid_from_edges,
    parse_mermaid_edges,
    svg,
)
from migrator.store import TransitionRow

AT = datetime(2025, 1, 1, tzinfo=UTC)


def _row(i: int, source: str, dest: str, event: str, subject: str = "device") -> TransitionRow:
    return TransitionRow(i, "PC", subject, None, source, dest, event, AT, "w", 0)  # type: ignore[arg-type]


def _fake_machine(monkeypatch: pytest.MonkeyPatch, **functions: object) -> None:
    module = types.ModuleType("migrator.machine.diagram")
    for name, value in functions.items():
        setattr(module, name, value)
    monkeypatch.setitem(sys.modules, "migrator.machine.diagram", module)


def test_store_edges_are_distinct_pairs_labelled_with_their_events() -> None:
    """Repeated transitions give one edge whose label lists each event once; user transitions are left out."""
    rows = [
        _row(1, "pending", "preflight", "start"),
        _row(2, "pending", "preflight", "start"),
        _row(3, "pending", "preflight", "resume"),
        _row(4, "preflight", "failed", "probe_failed"),
        _row(5, "pending", "waiting_for_sign_in", "prompted", subject="user"),
    ]
    assert edges_from_transitions(rows) == [
        Edge("pending", "preflight", "start, resume"),
        Edge("preflight", "failed", "probe_failed"),
    ]


def test_store_mermaid_starts_at_unentered_states_and_ends_final_ones() -> None:
    """The generated stateDiagram points [*] at states nothing enters and final states at [*]."""
    text = mermaid_from_edges([Edge("pending", "preflight", "start"), Edge("preflight", "migrated", "ok")])
    assert text.splitlines() == [
        "stateDiagram-v2",
        "    [*] --> pending",
        "    pending --> preflight : start",
        "    preflight --> migrated : ok",
        "    migrated --> [*]",
    ]


def test_hostile_state_names_get_safe_mermaid_ids_and_escaped_svg() -> None:
    """A state name that is not an identifier is declared with a safe id; the SVG escapes it."""
    edges = [Edge("pending", "<b>x</b>", 'a"; click')]
    text = mermaid_from_edges(edges)
    assert 'state "_b_x__b_" as s1' in text and "pending --> s1 : a__ click" in text
    picture = svg(edges)
    assert "<b>" not in picture and "&lt;b&gt;x&lt;/b&gt;" in picture


def test_mermaid_of_both_syntaxes_parses() -> None:
    """stateDiagram (a --> b : label, [*]) and flowchart (a[A] -->|label| b, a -- label --> b) edges are read."""
    state_text = (
        "stateDiagram-v2\n  [*] --> pending\n  pending --> preflight : start\n  migrated --> [*]\n  note left of x\n"
    )
    assert parse_mermaid_edges(state_text) == [
        Edge(START, "pending"),
        Edge("pending", "preflight", "start"),
        Edge("migrated", END),
    ]
    flow_text = "flowchart TD\n  pending[Pending] -->|start| preflight(Preflight)\n  preflight -- fail --> failed;\n"
    assert parse_mermaid_edges(flow_text) == [
        Edge("pending", "preflight", "start"),
        Edge("preflight", "failed", "fail"),
    ]


def test_machine_diagram_is_preferred_when_the_module_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine module with a mermaid() generator is the diagram's source."""
    _fake_machine(monkeypatch, mermaid=lambda: "stateDiagram-v2\n  [*] --> pending\n  pending --> migrated : go\n")
    diagram = build_diagram([_row(1, "x", "y", "e")])
    assert diagram.source == "machine" and diagram.note == ""
    assert diagram.edges == (Edge(START, "pending"), Edge("pending", "migrated", "go"))


def test_a_generator_needing_arguments_or_failing_falls_back_to_the_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """A generator that needs arguments is skipped; one that raises is reported in the note; the store's
    transitions are drawn instead."""

    def needs_a_playbook(playbook: object) -> str:
        return "unused"

    def broken() -> str:
        raise RuntimeError("table not loaded")

    _fake_machine(monkeypatch, mermaid=needs_a_playbook, to_mermaid=broken)
    diagram = build_diagram([_row(1, "pending", "preflight", "start")])
    assert diagram.source == "store"
    assert "RuntimeError: table not loaded" in diagram.note
    assert diagram.edges == (Edge("pending", "preflight", "start"),)


def test_without_a_machine_module_the_note_says_so() -> None:
    """With the machine package absent (hidden by the autouse fixture), the note says it is not available."""
    text, why = machine_mermaid()
    assert text is None and "not available" in why


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


def test_the_real_machine_diagram_parses_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """When migrator.machine provides a diagram, the report reads edges from it (skipped until it exists)."""
    monkeypatch.delitem(sys.modules, "migrator.machine", raising=False)
    monkeypatch.delitem(sys.modules, "migrator.machine.diagram", raising=False)
    try:
        importlib.import_module("migrator.machine")
    except ImportError:
        pytest.skip("migrator.machine is not installed in this tree yet")
    text, why = machine_mermaid()
    if text is None:
        pytest.skip(f"the machine offers no argument-free mermaid generator yet: {why}")
    diagram = build_diagram([])
    assert diagram.source == "machine" and len(diagram.edges) > 3


def test_a_text_with_two_machines_gives_two_titled_graphs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine draws the device and the user machine in one text: each becomes its own titled graph."""
    text = (
        "%% device machine\nstateDiagram-v2\n    [*] --> pending\n    pending --> migrated : all_migrated\n\n"
        "%% user machine\nstateDiagram-v2\n    [*] --> pending\n    pending --> deleting : delete [guards]\n"
        "    note right of pending : generic\n"
    )
    _fake_machine(monkeypatch, render=lambda fmt="mermaid", playbook=None: text)
    diagram = build_diagram([])
    assert [g.title for g in diagram.graphs] == ["device machine", "user machine"]
    assert diagram.graphs[1].edges == (Edge(START, "pending"), Edge("pending", "deleting", "delete [guards]"))


def test_the_playbook_is_handed_to_the_machine_when_it_takes_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """build_diagram passes the wave's playbook to a generator that accepts one."""
    seen: list[object] = []

    def render(fmt: str = "mermaid", playbook: object = None) -> str:
        seen.append(playbook)
        return "stateDiagram-v2\n  a --> b\n"

    _fake_machine(monkeypatch, render=render)
    marker = object()
    assert build_diagram([], playbook=marker).source == "machine"
    assert seen == [marker]


def test_store_fallback_draws_the_user_machine_too() -> None:
    """Recorded user transitions give a second graph, titled as the user machine."""
    diagram = build_diagram(
        [_row(1, "pending", "preflight", "start"), _row(2, "pending", "deleting", "delete", subject="user")]
    )
    assert [g.title for g in diagram.graphs] == [
        "device machine (recorded transitions)",
        "user machine (recorded transitions)",
    ]
    assert "%% user machine (recorded transitions)\nstateDiagram-v2" in diagram.mermaid


def test_parallel_rows_share_one_arrow() -> None:
    """Two rows between the same states (different triggers) are drawn as one arrow with both labels."""
    picture = svg([Edge("a", "b", "x"), Edge("a", "b", "y")])
    assert picture.count("<path class=") == 1 and "a → b: x; y" in picture
