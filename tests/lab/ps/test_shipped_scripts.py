"""The migration's own PowerShell scripts parse in the lab interpreter without unsupported constructs."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrator.lab.ps.parser import parse_script

SCRIPTS = sorted((Path(__file__).parents[3] / "migrator" / "scripts").glob("*.ps1"))


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_shipped_script_parses(path: Path) -> None:
    """Each shipped .ps1 is inside the lab's subset (parse errors or NotSupportedByLab would raise here)."""
    block = parse_script(path.read_text(encoding="utf-8-sig"))
    assert block.end is not None or block.process is not None
