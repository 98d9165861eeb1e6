"""Parse ``nltest /dsgetdc:<domain>`` (DC locator) output.

Success prints ``Name: value`` lines (``DC: \\\\dc01.contoso.com``, ``Address: \\\\10.0.0.4``, ``Dom Guid``,
``Dom Name``, ``Forest Name``, ``Dc Site Name``, ``Our Site Name``, ``Flags: PDC GC ... KDC WRITABLE ...``)
and ``The command completed successfully``. Failure prints one line,
``Getting DC name failed: Status = 1355 0x54b ERROR_NO_SUCH_DOMAIN`` (Win32 status in decimal, hex and
symbolic form; older captures may drop the name). The same ``Status =`` shape is used by ``/dsgetsite``
(``Getting DC Site failed: Status = 1919 0x77f``), which is recognised too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from migrator.parse._text import split_lines
from migrator.parse.codes import StatusCode, describe_code

__all__ = ["NltestDsGetDc", "NltestFailure", "parse_nltest_dsgetdc"]


@dataclass(frozen=True, slots=True)
class NltestFailure:
    """``Getting <what> failed: Status = <decimal> 0x<hex> [<NAME>]``."""

    operation: str  # "DC name", "DC Site", ...
    status: StatusCode  # name filled from the Win32 table when the capture lost it


@dataclass(frozen=True, slots=True)
class NltestDsGetDc:
    """The DC the locator returned, or why it returned none."""

    dc: str | None  # without the leading "\\"
    address: str | None  # without the leading "\\"
    dom_guid: str | None
    dom_name: str | None
    forest_name: str | None
    dc_site_name: str | None
    our_site_name: str | None
    flags: tuple[str, ...]
    completed_successfully: bool
    failures: tuple[NltestFailure, ...]
    unknown_fields: Mapping[str, str]
    unknown_lines: tuple[str, ...]

    @property
    def succeeded(self) -> bool:
        """True when a DC was located: a ``DC:`` line and no failure."""
        return self.dc is not None and not self.failures

    @property
    def failure(self) -> NltestFailure | None:
        """The first failure reported, if any."""
        return self.failures[0] if self.failures else None

    @property
    def is_empty(self) -> bool:
        """True when nothing nltest prints was found."""
        return not (self.dc or self.failures or self.completed_successfully or self.flags or self.dom_name)


_KNOWN = {
    "dc": "dc",
    "address": "address",
    "dom guid": "dom_guid",
    "dom name": "dom_name",
    "forest name": "forest_name",
    "dc site name": "dc_site_name",
    "our site name": "our_site_name",
}
# The colon must be followed by a blank or the line end: "PS C:\> nltest ..." is a prompt, not a field.
_FIELD = re.compile(r"^(?P<key>[A-Za-z][A-Za-z ]*?)\s*:(?:\s+(?P<value>.*))?$")
_FAILURE = re.compile(
    r"^Getting (?P<op>.+?) failed:\s*Status\s*=\s*(?P<dec>-?\d+)(?:\s+(?P<hex>0x[0-9a-fA-F]+))?"
    r"(?:\s+(?P<name>[A-Z][A-Z0-9_]+))?",
    re.IGNORECASE,
)
_COMPLETED = re.compile(r"^The command completed successfully\.?$", re.IGNORECASE)


def parse_nltest_dsgetdc(text: str) -> NltestDsGetDc:
    """Parse ``nltest /dsgetdc:<domain>`` output; never raises."""
    values: dict[str, str] = {}
    flags: tuple[str, ...] = ()
    completed = False
    failures: list[NltestFailure] = []
    unknown_fields: dict[str, str] = {}
    unknown_lines: list[str] = []
    for raw in split_lines(text):
        line = raw.strip()
        if not line:
            continue
        if match := _FAILURE.match(line):
            code = describe_code(int(match.group("dec")), win32=True)
            if match.group("name") and code.name is None:
                code = StatusCode(code.value, match.group("name"), None)
            failures.append(NltestFailure(operation=match.group("op"), status=code))
        elif _COMPLETED.match(line):
            completed = True
        elif match := _FIELD.match(line):
            key, value = match.group("key").strip(), (match.group("value") or "").strip()
            folded = key.casefold()
            if folded == "flags":
                flags = tuple(value.split())
            elif folded in _KNOWN:
                # DC and Address are printed as UNC-style "\\name"; the backslashes are decoration.
                values[_KNOWN[folded]] = value.lstrip("\\") if folded in {"dc", "address"} else value
            else:
                unknown_fields[key] = value
        else:
            unknown_lines.append(line)
    return NltestDsGetDc(
        dc=values.get("dc") or None,
        address=values.get("address") or None,
        dom_guid=values.get("dom_guid") or None,
        dom_name=values.get("dom_name") or None,
        forest_name=values.get("forest_name") or None,
        dc_site_name=values.get("dc_site_name") or None,
        our_site_name=values.get("our_site_name") or None,
        flags=flags,
        completed_successfully=completed,
        failures=tuple(failures),
        unknown_fields=unknown_fields,
        unknown_lines=tuple(unknown_lines),
    )
