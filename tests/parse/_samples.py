"""Access to the real published outputs the parsers are tested on.

The reference copy lives in ``../shared/reference/outputs/`` next to the repository (CI has it); a copy of
each sample used here is kept in ``tests/parse/samples/`` so the tests also run from a bare clone.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_OUTPUTS = REPO_ROOT / ".." / "shared" / "reference" / "outputs"
LOCAL_SAMPLES = Path(__file__).resolve().parent / "samples"


def sample_path(name: str) -> Path:
    """The shared reference file when present, else the local copy."""
    shared = SHARED_OUTPUTS / name
    return shared if shared.is_file() else LOCAL_SAMPLES / name


def sample(name: str) -> str:
    """The text of one sample, source line included (the parsers skip ``# ...`` annotations)."""
    return sample_path(name).read_text(encoding="utf-8")


def variants(name: str) -> dict[str, str]:
    """A sample holding several captures under ``## heading`` lines, split into heading -> text."""
    parts: dict[str, str] = {}
    heading: str | None = None
    lines: list[str] = []
    for line in sample(name).splitlines():
        if line.startswith("## "):
            if heading is not None:
                parts[heading] = "\n".join(lines)
            heading, lines = line[3:].strip(), []
        elif heading is not None:
            lines.append(line)
    if heading is not None:
        parts[heading] = "\n".join(lines)
    return parts


def local_sample_names() -> list[str]:
    """Names of the samples copied into ``tests/parse/samples``."""
    return sorted(path.name for path in LOCAL_SAMPLES.glob("*.txt"))
