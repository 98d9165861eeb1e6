"""What the machine raises: a trigger that is illegal in the current state, or a row whose guards refused.

Both leave the machine exactly as it was (psrpcore's ``InvalidState(action, current, expected)`` pattern)."""

from __future__ import annotations

from collections.abc import Sequence

from migrator.errors import MigratorError


class InvalidTransition(MigratorError):
    """``action`` is not a legal trigger from ``current``; ``expected`` lists the triggers that are."""

    action = "report it: the orchestrator asked the machine for an illegal move"

    def __init__(self, trigger: str, current: str, expected: Sequence[str], subject: str = "device") -> None:
        self.trigger = trigger
        self.current = current
        self.expected = tuple(expected)
        self.subject = subject
        super().__init__(
            f"{subject}: {trigger!r} is not legal in state {current!r}"
            f" (legal: {', '.join(self.expected) if self.expected else 'none'})"
        )


class GuardRefused(InvalidTransition):
    """A row for ``trigger`` exists from ``current`` but its guards do not hold now; ``failed`` names them."""

    def __init__(
        self, trigger: str, current: str, expected: Sequence[str], failed: Sequence[str], subject: str = "device"
    ) -> None:
        super().__init__(trigger, current, expected, subject)
        self.failed = tuple(failed)
        self.args = (
            f"{subject}: {trigger!r} refused in state {current!r}: guard(s) {', '.join(self.failed)} do not hold",
        )
