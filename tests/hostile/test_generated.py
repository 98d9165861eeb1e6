"""Generated hostile inputs (hypothesis, derandomized: the same examples on every run, so CI is reproducible).

Token soups of YAML syntax, inventory words and hostile characters, and CSV files of arbitrary cells, go through
the loaders: each is accepted or refused with :class:`InputFileError` naming the file and a line inside it, never
another exception. Valid generated inventories load back exactly, and one bad value among them is reported at
its own field and line.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migrator.inventory import load_inventory
from migrator.lab.server import FaultProfileError, parse_fault_profile
from migrator.playbook import load_playbook
from migrator.yamlsource import InputFileError

SETTINGS = settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

TOKENS = [
    "devices", "defaults", "groups", "lab", "name", "address", "port", "transport", "scheme", "auth", "steps",
    "path", "waits", "recheck_every", "faults", "kind", "seed", ":", ": ", " ", "  ", "\n", "\n  ", "\n    ",
    "- ", "[", "]", "{", "}", ", ", "&a ", "*a", "&b ", "*b", "'", '"', "!!str ", "!!int ", "!!python/name:os ",
    "? ", "<<: ", "---\n", "...\n", "\t", "# c", "yes", "no", "0x1F", "0o17", "~", "null", "1e400", ".nan",
    "PC-1", "pc-1", "127.0.0.1", "::1", "300.1.1.1", "5986", "-1", "99999999999999999999", "psrp", "ssh",
    "[red]evil[/red]", "\ufeff", "\x00", "\x1b[31m", "é", "\u2028", "\\", "|\n", ">-\n", "2024-01-01",
]  # fmt: skip


def soup() -> st.SearchStrategy[str]:
    return st.lists(st.one_of(st.sampled_from(TOKENS), st.text(max_size=4)), max_size=60).map("".join)


def _check_refusal(err: InputFileError, path: Path, text: str) -> None:
    lines = text.count("\n") + text.count("\r") + 2
    assert err.problems, "an error with no problem"
    for problem in err.problems:
        assert problem.file == str(path)
        assert problem.line is None or 1 <= problem.line <= lines, (problem, lines)
        assert problem.message


@SETTINGS
@given(text=soup())
def test_generated_yaml_inventories_are_loaded_or_refused_clearly(tmp_path: Path, text: str) -> None:
    """Any YAML-ish text as an inventory: an Inventory, or InputFileError naming the file and a line in it."""
    path = tmp_path / "inventory.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        load_inventory(path)
    except InputFileError as err:
        _check_refusal(err, path, text)


@SETTINGS
@given(text=soup())
def test_generated_yaml_playbooks_are_loaded_or_refused_clearly(tmp_path: Path, text: str) -> None:
    """Any YAML-ish text as a playbook: a Playbook, or InputFileError naming the file and a line in it."""
    path = tmp_path / "playbook.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        load_playbook(path)
    except InputFileError as err:
        _check_refusal(err, path, text)


@SETTINGS
@given(text=soup())
def test_generated_fault_profiles_are_loaded_or_refused_clearly(text: str) -> None:
    """Any YAML-ish text as a fault profile: a profile, or FaultProfileError naming the source."""
    try:
        parse_fault_profile(text, "gen/faults.yaml")
    except FaultProfileError as err:
        assert "gen/faults.yaml" in str(err)


CELL = st.one_of(
    st.sampled_from(["PC-1", "pc-1", "127.0.0.1", "pilot;east", "5986", "psrp", "[red]x[/red]", "", " ", '"', ",,"]),
    st.text(max_size=12),
)


@SETTINGS
@given(
    header=st.lists(st.sampled_from(["name", "address", "groups", "port", "transport", "colour", ""]), max_size=5),
    rows=st.lists(st.lists(CELL, max_size=6), max_size=8),
    raw_tail=st.sampled_from(["", '"', '\n"open', "\x00", "a\rb"]),
)
def test_generated_csv_inventories_are_loaded_or_refused_clearly(
    tmp_path: Path, header: list[str], rows: list[list[str]], raw_tail: str
) -> None:
    """Any CSV (quoted by csv.writer, plus a raw tail that may break the quoting): loaded, with one device per
    row, or refused naming the file and a line in it."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    text = out.getvalue() + raw_tail
    path = tmp_path / "inventory.csv"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        inventory = load_inventory(path)
    except InputFileError as err:
        _check_refusal(err, path, text)
    else:
        assert len(inventory.devices) <= len(rows) + 1


NAMES = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,20}\Z")
DEVICE = st.fixed_dictionaries(
    {"name": NAMES, "address": st.ip_addresses(v=4).map(str)},
    optional={"port": st.integers(1, 65535), "groups": st.lists(NAMES, max_size=3), "transport": st.just("winrm")},
)
BAD_VALUES = {"port": [0, "https", True, 70000], "address": ["300.1.1.1", "a..b", ""], "transport": ["ssh", 5]}


@SETTINGS
@given(
    devices=st.lists(DEVICE, min_size=1, max_size=12, unique_by=lambda d: d["name"].casefold()),
    flow=st.booleans(),
    data=st.data(),
)
def test_generated_inventories_load_exactly_and_one_bad_value_is_found_where_it_is(
    tmp_path: Path, devices: list[dict[str, object]], flow: bool, data: st.DataObject
) -> None:
    """A generated valid inventory loads with its devices in order; with one value made bad, the error names that
    device's field and the line the field is written on."""
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump({"devices": devices}, default_flow_style=flow, width=4096), encoding="utf-8")
    inventory = load_inventory(path)
    assert [d.name for d in inventory.devices] == [d["name"] for d in devices]
    index = data.draw(st.integers(0, len(devices) - 1), label="device")
    field = data.draw(st.sampled_from(sorted(BAD_VALUES)), label="field")
    bad = [dict(d) for d in devices]
    bad[index][field] = data.draw(st.sampled_from(BAD_VALUES[field]), label="value")
    text = yaml.safe_dump({"devices": bad}, default_flow_style=flow, width=4096)
    path.write_text(text, encoding="utf-8")
    try:
        load_inventory(path)
    except InputFileError as err:
        problem = err.problems[0]
        assert problem.field == f"devices[{index}].{field}", str(err)
        assert problem.line is not None and problem.column is not None
        written = text.splitlines()[problem.line - 1]
        assert written[problem.column - 1 :].startswith(field), (written, problem)
    else:
        raise AssertionError(f"devices[{index}].{field} = {bad[index][field]!r} was accepted")
