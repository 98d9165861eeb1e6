"""The local sample copies match the shared reference outputs."""

from __future__ import annotations

import pytest

from tests.parse._samples import LOCAL_SAMPLES, SHARED_OUTPUTS, local_sample_names


@pytest.mark.parametrize("name", local_sample_names())
def test_local_copy_keeps_its_source_line(name: str) -> None:
    """Every local copy starts with the line naming where it was published."""
    first = (LOCAL_SAMPLES / name).read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# source:")


@pytest.mark.parametrize("name", local_sample_names())
def test_local_copy_matches_shared_reference(name: str) -> None:
    """A local copy is byte-identical to the shared reference when the shared folder is present."""
    shared = SHARED_OUTPUTS / name
    if not shared.is_file():
        pytest.skip("shared reference folder not present")
    assert (LOCAL_SAMPLES / name).read_bytes() == shared.read_bytes()
