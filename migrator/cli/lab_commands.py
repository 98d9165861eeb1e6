"""``migrator lab ...`` commands."""

from __future__ import annotations

from migrator.cli import lab_app


@lab_app.callback()
def _lab() -> None:
    """The simulated fleet: generate, run and inspect lab devices."""
