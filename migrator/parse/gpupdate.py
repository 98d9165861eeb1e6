"""Parse ``gpupdate /force`` output.

English builds print "Computer Policy update has completed successfully." / "User Policy update has completed
successfully.", or "Computer policy could not be updated successfully. The following errors were
encountered:" followed by the error paragraphs, and may ask to log off / restart for policies that only
apply at logon / startup. German builds print "Die Aktualisierung der Computerrichtlinie wurde erfolgreich
abgeschlossen." (and "Benutzerrichtlinie" for the user part); other localisations are matched by the same
policy nouns, and a line naming the policy without the success wording is read as a failure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from migrator.parse._text import split_lines

__all__ = ["GpupdateResult", "parse_gpupdate"]


@dataclass(frozen=True, slots=True)
class GpupdateResult:
    """Which halves of the policy refresh completed, and the errors printed."""

    computer_policy_completed: bool | None  # None when the capture says nothing about it
    user_policy_completed: bool | None
    errors: tuple[str, ...]
    logoff_required: bool  # "Certain User policies are enabled that can only run during logon."
    restart_required: bool  # "Certain Computer policies are enabled that can only run during startup."
    unknown_lines: tuple[str, ...]

    @property
    def succeeded(self) -> bool:
        """True when no half failed and at least one completed (``/target:`` runs only one half)."""
        halves = (self.computer_policy_completed, self.user_policy_completed)
        return False not in halves and True in halves


_DONE = re.compile(r"^(?P<which>Computer|User) Policy update has completed successfully", re.IGNORECASE)
_FAILED = re.compile(r"^(?P<which>Computer|User) policy could not be updated successfully", re.IGNORECASE)
_DONE_DE = re.compile(r"(?P<which>Computer|Benutzer)richtlinie wurde erfolgreich", re.IGNORECASE)
_NOUN_DE = re.compile(r"(?P<which>Computer|Benutzer)richtlinie", re.IGNORECASE)
_LOGOFF = re.compile(r"^Certain User policies are enabled that can only run during logon", re.IGNORECASE)
_RESTART = re.compile(r"^Certain Computer policies are enabled that can only run during startup", re.IGNORECASE)
_IGNORED = re.compile(
    r"^(?:Updating policy\.*|Richtlinie wird aktualisiert\.*|OK to (?:log off|restart)\?.*"
    r"|To diagnose the failure, review the event log.*)$",
    re.IGNORECASE,
)


def parse_gpupdate(text: str) -> GpupdateResult:
    """Parse ``gpupdate [/force] [/target:...]`` output; never raises."""
    results: dict[str, bool] = {}
    errors: list[str] = []
    logoff = restart = False
    unknown: list[str] = []
    collecting = False  # inside the error paragraphs after a "could not be updated" line
    for raw in split_lines(text):
        line = raw.strip()
        if not line:
            continue
        if match := _DONE.match(line) or _DONE_DE.search(line):
            which = match.group("which").casefold()
            results["user" if which in {"user", "benutzer"} else "computer"] = True
            collecting = False
        elif match := _FAILED.match(line) or _NOUN_DE.search(line):
            which = match.group("which").casefold()
            results["user" if which in {"user", "benutzer"} else "computer"] = False
            collecting = True
        elif _LOGOFF.match(line):
            logoff, collecting = True, False
        elif _RESTART.match(line):
            restart, collecting = True, False
        elif _IGNORED.match(line):
            collecting = False
        elif collecting:
            errors.append(line)
        else:
            unknown.append(line)
    return GpupdateResult(
        computer_policy_completed=results.get("computer"),
        user_policy_completed=results.get("user"),
        errors=tuple(errors),
        logoff_required=logoff,
        restart_required=restart,
        unknown_lines=tuple(unknown),
    )
