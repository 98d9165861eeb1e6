"""Inventory loading: the lab's YAML format, CSV, selection, and errors that name file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrator.inventory import load_inventory
from migrator.yamlsource import InputFileError

GOOD = """\
defaults: {transport: psrp, scheme: https, port: 5986, auth: ntlm, ca_bundle: lab-ca.pem}
devices:
  - {name: PC-0001, address: 127.20.0.1, domain: corp.contoso.com, groups: [pilot]}
  - {name: PC-0002, address: 127.20.0.2, domain: corp.contoso.com, groups: [wave1], transport: winrm}
  - name: PC-0003
    address: pc-0003.corp.contoso.com
    scheme: http
lab: {control: "http://127.0.0.1:18080"}
"""


def _write(tmp_path: Path, text: str, name: str = "inventory.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_loads_the_lab_format_and_resolves_connections(tmp_path: Path) -> None:
    """Defaults apply, devices override, relative CA bundle resolves beside the inventory, ports follow scheme."""
    inv = load_inventory(_write(tmp_path, GOOD))
    assert [d.name for d in inv.devices] == ["PC-0001", "PC-0002", "PC-0003"]
    first = inv.connection(inv.devices[0])
    assert first.transport == "psrp" and first.port == 5986 and first.ca_bundle == (tmp_path / "lab-ca.pem").resolve()
    assert first.cert_validation is True
    assert inv.connection(inv.devices[1]).transport == "winrm"
    third = inv.connection(inv.devices[2])
    assert third.scheme == "http" and third.port == 5986  # explicit default port wins over the scheme's
    assert inv.lab is not None and inv.lab.control.endswith(":18080")


def test_select_by_group_and_name(tmp_path: Path) -> None:
    """--limit accepts groups and names, comma-separated, case-insensitively; unknown terms are errors."""
    inv = load_inventory(_write(tmp_path, GOOD))
    assert [d.name for d in inv.select("pilot,pc-0003")] == ["PC-0001", "PC-0003"]
    with pytest.raises(InputFileError, match="unknown group or device 'nope'"):
        inv.select("nope")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("devices:\n  - {name: PC-1, address: 127.0.0.1\n", "line"),
        (
            "devices:\n  - {name: PC-1, address: 127.0.0.1, colour: red}\n",
            "line 2, column 38: devices[0].colour: unknown field",
        ),
        ("devices:\n  - {name: PC-1, address: '999.1.1.1'}\n", "devices[0].address"),
        ("devices:\n  - {name: 'PC 1; rm', address: 127.0.0.1}\n", "devices[0].name"),
        (
            "devices:\n  - {name: PC-1, address: 127.0.0.1}\n  - {name: pc-1, address: 127.0.0.2}\n",
            "line 3, column 6: devices[1].name: duplicate device name 'pc-1' (first at line 2, devices[0])",
        ),
        ("devices:\n  - {name: PC-1, address: 127.0.0.1, port: 0}\n", "devices[0].port"),
        ("devices:\n  - {name: PC-1, address: 127.0.0.1, scheme: http, auth: basic}\n", "Basic authentication"),
        ("lab: {control: 'http://10.0.0.1:80'}\ndevices: []\n", "loopback"),
    ],
)
def test_bad_inventories_name_what_and_where(tmp_path: Path, text: str, expected: str) -> None:
    """Broken YAML, unknown fields, bad addresses, hostile names, duplicates, Basic over HTTP: clear errors."""
    path = _write(tmp_path, text)
    with pytest.raises(InputFileError) as info:
        load_inventory(path)
    message = str(info.value)
    assert str(path) in message and expected in message


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    """A missing inventory names the file."""
    with pytest.raises(InputFileError, match="inventory not found"):
        load_inventory(tmp_path / "absent.yaml")


def test_csv_inventory_with_line_numbers(tmp_path: Path) -> None:
    """CSV inventories load, groups split on ';', and errors name the CSV line."""
    good = _write(tmp_path, "name,address,groups\nPC-1,127.20.0.1,pilot;east\nPC-2,127.20.0.2,\n", "inv.csv")
    inv = load_inventory(good)
    assert inv.groups() == {"pilot": ["PC-1"], "east": ["PC-1"]}
    bad = _write(tmp_path, "name,address\nPC-1,127.20.0.1\nPC-2,not..valid\n", "bad.csv")
    with pytest.raises(InputFileError, match=r"line 3: address"):
        load_inventory(bad)


def test_a_device_may_carry_a_site_in_yaml_and_csv(tmp_path: Path) -> None:
    """`site:` (YAML) and a `site` column (CSV) are read; a device without one has none."""
    yaml_inv = load_inventory(
        _write(
            tmp_path,
            "devices:\n  - {name: PC-1, address: 127.0.0.1, site: paris}\n  - {name: PC-2, address: 127.0.0.2}\n",
        )
    )
    assert [d.site for d in yaml_inv.devices] == ["paris", None]
    csv_inv = load_inventory(_write(tmp_path, "name,address,site\nPC-1,127.0.0.1,lyon-2\nPC-2,127.0.0.2,\n", "inv.csv"))
    assert [d.site for d in csv_inv.devices] == ["lyon-2", None]


def test_a_bad_site_names_file_line_and_field(tmp_path: Path) -> None:
    """A site that is not a plain name is refused with where it is (YAML: line and field; CSV: line and column)."""
    with pytest.raises(InputFileError) as info:
        load_inventory(_write(tmp_path, "devices:\n  - {name: PC-1, address: 127.0.0.1, site: 'paris nord'}\n"))
    assert "line 2" in str(info.value) and "devices[0].site" in str(info.value) and "site name" in str(info.value)
    with pytest.raises(InputFileError, match=r"line 2: site"):
        load_inventory(_write(tmp_path, "name,address,site\nPC-1,127.0.0.1,-bad\n", "bad.csv"))
