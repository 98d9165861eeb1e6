"""The migration's own PowerShell scripts parse in the lab interpreter without unsupported constructs."""

from __future__ import annotations

import pytest

from migrator.lab.ps.parser import parse_script
from migrator.scripts import available, load


@pytest.mark.parametrize("name", available())
def test_shipped_script_parses(name: str) -> None:
    """Each shipped script, with its libraries spliced in, is inside the lab's subset."""
    block = parse_script(load(name).text)
    assert block.end is not None or block.process is not None
