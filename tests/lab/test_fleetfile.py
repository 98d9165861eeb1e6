"""Tests of fleet files (migrator.lab.fleetfile): lossless round trips, atomic writes, located errors."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from migrator.lab.fleet import DEFAULT_MIX, Mix, generate_fleet
from migrator.lab.fleetfile import (
    FleetFileError,
    dumps_fleet,
    fleet_to_data,
    format_loc,
    load_fleet,
    save_fleet,
)
from migrator.lab.model import SCHEMA_VERSION, Fleet


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return generate_fleet(40, 5, Mix.parse(DEFAULT_MIX))


def _same(a: Fleet, b: Fleet) -> bool:
    # Field-by-field equality. ``a == b`` compares Device's private lock objects too (pydantic compares
    # __pydantic_private__), which are never equal between two instances.
    return a.model_dump() == b.model_dump()


def _json_text(fleet: Fleet) -> str:
    return dumps_fleet(fleet, "json").decode("utf-8")


def _line_of(text: str, needle: str, occurrence: int = 1) -> int:
    pos = -1
    for _ in range(occurrence):
        pos = text.index(needle, pos + 1)
    return text.count("\n", 0, pos) + 1


# ---- round trip ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["fleet.json", "fleet.yaml", "fleet.yml"])
def test_round_trip_is_lossless(tmp_path: Path, fleet: Fleet, name: str) -> None:
    """Saving and loading gives the same fleet, and saving that again gives the same bytes."""
    path = save_fleet(fleet, tmp_path / name)
    loaded = load_fleet(path)
    assert _same(loaded, fleet)
    again = save_fleet(loaded, tmp_path / ("again-" + name))
    assert again.read_bytes() == path.read_bytes()


def test_registry_round_trip_keeps_types_spellings_and_empty_keys(tmp_path: Path, fleet: Fleet) -> None:
    """Every registry type, odd key spellings and empty keys survive the compact registry form."""
    device = fleet.devices[0]
    edited = fleet.model_copy(
        update={"devices": [device.model_copy(update={"registry": device.registry.model_copy()})]}
    )
    reg = edited.devices[0].registry
    reg.keys = dict(reg.keys)
    reg.create_key("HKLM\\Software\\Lab\\Empty")  # "Software": other spelling than HKLM\SOFTWARE
    reg.set_value("HKLM\\SOFTWARE\\Lab\\Types", "Multi", ["a", "b"], "REG_MULTI_SZ")
    reg.set_value("HKLM\\SOFTWARE\\Lab\\Types", "Big", 2**40, "REG_QWORD")
    reg.set_value("HKLM\\SOFTWARE\\Lab\\Types", "Neg", -1, "REG_DWORD")
    reg.set_value("HKLM\\SOFTWARE\\Lab\\Types", "", "default", "REG_SZ")
    reg.set_value("HKLM\\SOFTWARE\\Lab\\Types", "Path", "%SystemRoot%\\x", "REG_EXPAND_SZ")
    reg.create_key("HKU\\S-1-5-21-1-2-3-1001\\Lonely")
    for suffix in ("json", "yaml"):
        loaded = load_fleet(save_fleet(edited, tmp_path / f"reg.{suffix}"))
        assert loaded.devices[0].registry.keys == reg.keys
        assert loaded.devices[0].registry.read("HKLM\\SOFTWARE\\Lab\\Types", "Neg") == -1


def test_registry_is_written_compactly(fleet: Fleet) -> None:
    """The file holds registry values as [type, data] under display key paths, without implied parents."""
    registry = fleet_to_data(fleet)["devices"][0]["registry"]
    current = registry["HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion"]
    assert current["UBR"] == ["REG_DWORD", fleet.devices[0].os.ubr]
    assert "HKLM\\SOFTWARE" not in registry


def test_save_is_atomic(tmp_path: Path, fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed save leaves the old file untouched and no temporary file behind."""
    path = tmp_path / "fleet.json"
    path.write_text("old content", encoding="utf-8")

    def refuse(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(FleetFileError, match="No space left on device") as caught:
        save_fleet(fleet, path)
    assert str(path) in str(caught.value)
    assert path.read_text(encoding="utf-8") == "old content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fleet.json"]


def test_save_creates_a_missing_directory(tmp_path: Path, fleet: Fleet) -> None:
    """A fleet file is saved into a directory that does not exist yet (state/lab/ in a fresh clone)."""
    saved = save_fleet(fleet, tmp_path / "state" / "lab" / "fleet.json")
    assert load_fleet(saved).model_dump() == fleet.model_dump()


def test_save_where_no_directory_can_be_fails_clearly(tmp_path: Path, fleet: Fleet) -> None:
    """Writing below a plain file names the file and the reason."""
    (tmp_path / "a-file").write_text("")
    with pytest.raises(FleetFileError, match="cannot write the fleet file"):
        save_fleet(fleet, tmp_path / "a-file" / "fleet.json")


def test_unknown_extension_is_refused(tmp_path: Path, fleet: Fleet) -> None:
    """Only .json, .yaml and .yml are fleet files."""
    with pytest.raises(FleetFileError, match=r"unknown fleet file extension '\.txt'"):
        save_fleet(fleet, tmp_path / "fleet.txt")
    with pytest.raises(FleetFileError, match="unknown fleet file extension"):
        load_fleet(tmp_path / "fleet")


# ---- errors ------------------------------------------------------------------------------------------------


def test_missing_file_is_reported(tmp_path: Path) -> None:
    """A file that does not exist gives a FleetFileError naming it."""
    with pytest.raises(FleetFileError, match="fleet not found") as caught:
        load_fleet(tmp_path / "none.yaml")
    assert caught.value.path == tmp_path / "none.yaml"


def test_broken_yaml_names_the_line(tmp_path: Path, fleet: Fleet) -> None:
    """A YAML syntax error reports the line it is on."""
    lines = dumps_fleet(fleet, "yaml").decode().splitlines()
    target = next(i for i, line in enumerate(lines) if line.startswith("  model:"))
    lines[target] = "  model: [unclosed"
    path = tmp_path / "broken.yaml"
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(FleetFileError, match="invalid YAML") as caught:
        load_fleet(path)
    assert caught.value.line is not None and target + 1 <= caught.value.line <= target + 2
    assert str(caught.value).startswith(f"{path}:{caught.value.line}: ")


def test_broken_json_names_the_line(tmp_path: Path, fleet: Fleet) -> None:
    """A JSON syntax error reports its line."""
    text = _json_text(fleet)
    line = _line_of(text, '"model"')
    path = tmp_path / "broken.json"
    path.write_text(text.replace('"model":', '"model"', 1), encoding="utf-8")
    with pytest.raises(FleetFileError, match="invalid JSON") as caught:
        load_fleet(path)
    assert caught.value.line == line


def test_unknown_field_in_json_names_its_path_and_line(tmp_path: Path, fleet: Fleet) -> None:
    """An unknown device field is reported as devices[3].colour at the line it is written on."""
    data = json.loads(_json_text(fleet))
    data["devices"][3] = {"colour": "red", **data["devices"][3]}
    text = json.dumps(data, indent=2)
    path = tmp_path / "extra.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FleetFileError) as caught:
        load_fleet(path)
    assert caught.value.field == "devices[3].colour"
    assert caught.value.reason.startswith("unknown field")
    assert caught.value.line == _line_of(text, '"colour"')


def test_unknown_field_in_yaml_names_its_path_and_line(tmp_path: Path, fleet: Fleet) -> None:
    """The same in YAML: field path and line of the offending key."""
    text = dumps_fleet(fleet, "yaml").decode()
    name = fleet.devices[2].name
    text = text.replace(f"- name: {name}\n", f"- name: {name}\n  colour: red\n", 1)
    path = tmp_path / "extra.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FleetFileError) as caught:
        load_fleet(path)
    assert caught.value.field == "devices[2].colour"
    assert caught.value.line == _line_of(text, "colour: red")


def test_bad_value_names_the_field(tmp_path: Path, fleet: Fleet) -> None:
    """A wrongly typed value is reported with its path, line and what was found."""
    data = json.loads(_json_text(fleet))
    data["devices"][5]["os"]["build"] = "nineteen"
    text = json.dumps(data, indent=1)
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FleetFileError) as caught:
        load_fleet(path)
    assert caught.value.field == "devices[5].os.build"
    assert "'nineteen'" in caught.value.reason
    assert caught.value.line == _line_of(text, '"nineteen"')


def test_missing_field_points_at_its_parent(tmp_path: Path, fleet: Fleet) -> None:
    """A missing required field names its path and the line of the object that lacks it."""
    data: dict[str, Any] = json.loads(_json_text(fleet))
    del data["devices"][1]["join_type"]
    text = json.dumps(data, indent=1)
    path = tmp_path / "missing.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FleetFileError, match="Field required") as caught:
        load_fleet(path)
    assert caught.value.field == "devices[1].join_type"
    assert caught.value.line == _line_of(text, '"name": "PC-0002"') - 1


def test_bad_registry_value_names_key_and_value(tmp_path: Path, fleet: Fleet) -> None:
    """A registry value of an unknown type is reported at its key path and value name."""
    data = fleet_to_data(fleet)
    data["devices"][0]["registry"]["HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion"]["UBR"] = ["REG_WORD", 1]
    path = tmp_path / "reg.yaml"
    text = yaml.safe_dump(data, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FleetFileError, match="unknown registry type 'REG_WORD'") as caught:
        load_fleet(path)
    assert (
        caught.value.field == 'devices[0].registry["HKLM\\\\SOFTWARE\\\\Microsoft\\\\Windows NT\\\\CurrentVersion"].UBR'
    )
    assert caught.value.line == _line_of(text, "- REG_WORD") - 1


def test_dword_out_of_range_is_refused(tmp_path: Path, fleet: Fleet) -> None:
    """DWORD data must fit 32 unsigned bits, as the registry stores it."""
    data = fleet_to_data(fleet)
    data["devices"][0]["registry"]["HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion"]["UBR"] = [
        "REG_DWORD",
        2**32,
    ]
    path = tmp_path / "reg.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(FleetFileError, match="does not fit REG_DWORD"):
        load_fleet(path)


@pytest.mark.parametrize("suffix", ["json", "yaml"])
def test_newer_schema_is_refused(tmp_path: Path, fleet: Fleet, suffix: str) -> None:
    """A file from a newer migrator is refused with a message saying so, even if its content changed shape."""
    data = fleet_to_data(fleet)
    data["schema_version"] = SCHEMA_VERSION + 1
    data["devices"][0]["hologram"] = True  # a newer field: the version message must win over "unknown field"
    path = tmp_path / f"new.{suffix}"
    path.write_text(json.dumps(data) if suffix == "json" else yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(FleetFileError, match="newer migrator") as caught:
        load_fleet(path)
    assert caught.value.field == "schema_version"


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    """A list or scalar at the top of the file is not a fleet."""
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(FleetFileError, match="expected a mapping at the top, got a list"):
        load_fleet(path)


def test_format_loc() -> None:
    """Locations read like Python access paths, odd keys quoted in brackets."""
    assert format_loc(("devices", 3, "os", "build")) == "devices[3].os.build"
    assert format_loc(("devices", 0, "registry", "HKLM\\X")) == 'devices[0].registry["HKLM\\\\X"]'
    assert format_loc(()) == ""
