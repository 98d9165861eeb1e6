"""The chaos suite's summary line at the end of the session (how many schedules, how long, which seeds broke an
invariant): printed with the terminal summary, where output capture does not swallow it."""

from __future__ import annotations

import pytest

SUMMARIES = pytest.StashKey[list[str]]()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    for line in config.stash.get(SUMMARIES, []):
        terminalreporter.write_line(line)
