"""The PowerShell scripts run on devices (package data, never templated).

Each ``<name>.ps1`` has a ``param()`` block, does one coherent thing and writes exactly one JSON object to the
output stream. Its header declares whether it is safe to run again after an ambiguous failure::

    # migrator: idempotent=true

Values reach a script only as parameters (PSRP ``add_parameters``; on WinRM a fixed wrapper decodes them from
base64 JSON), never by formatting them into the text.

Code several scripts share lives once in ``lib/<name>.ps1`` and is spliced in, as fixed text, where a script has
the line ``# migrator: include <name>`` (after its ``param()`` block: PowerShell wants ``param`` first). Remote
scripts are sent whole, so there is no module to import on the device.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

_META = re.compile(r"^#\s*migrator:\s*(?P<key>[a-z_]+)\s*=\s*(?P<value>\S+)\s*$", re.MULTILINE)
_INCLUDE = re.compile(r"^#\s*migrator:\s*include\s+(?P<name>[a-z][a-z0-9_]*)\s*\n", re.MULTILINE)


@dataclass(frozen=True)
class Script:
    name: str
    text: str  # as sent to devices: compacted (see compact)
    idempotent: bool
    source: str = ""  # as written, comments and all (includes expanded)

    def __repr__(self) -> str:
        return f"Script({self.name!r}, idempotent={self.idempotent})"


class UnknownScript(LookupError):
    pass


def available() -> list[str]:
    return sorted(p.name[:-4] for p in resources.files(__name__).iterdir() if p.name.endswith(".ps1"))


@cache
def load(name: str) -> Script:
    """Load ``<name>.ps1``; its metadata header must say whether it is idempotent."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise UnknownScript(f"not a script name: {name!r}")
    resource = resources.files(__name__).joinpath(f"{name}.ps1")
    if not resource.is_file():
        raise UnknownScript(f"no script named {name!r} (have: {', '.join(available())})")
    raw = resource.read_text(encoding="utf-8")
    text = _INCLUDE.sub(_library, raw)
    # Sent: libraries compacted too (even one spliced into a here-string, to be written out as a script).
    sent = compact(_INCLUDE.sub(lambda m: compact(_library(m)), raw))
    meta = {m["key"]: m["value"] for m in _META.finditer(text)}
    if meta.get("idempotent") not in ("true", "false"):
        raise UnknownScript(f"script {name!r} does not declare '# migrator: idempotent=true|false'")
    return Script(name=name, text=sent, idempotent=meta["idempotent"] == "true", source=text)


_HERE_OPEN = re.compile(r"@['\"]\s*$")
_HERE_CLOSE = re.compile(r"^['\"]@")


def compact(text: str) -> str:
    """The script as sent: without its comment lines and blank lines (outside here-strings, which are data).

    Every pipeline carries the whole script text (MS-PSRP 2.2.2.10 CREATE_PIPELINE), serialised and, on HTTP,
    sealed per message: the comments that explain a script to its readers are most of its bytes and cost CPU on
    both ends of every call. ``#requires`` lines stay; a ``#`` after code on a line stays (it may be in a string)."""
    out: list[str] = []
    in_here = False
    for line in text.splitlines():
        stripped = line.strip()
        if in_here:
            out.append(line)
            in_here = not _HERE_CLOSE.match(line)
            continue
        if not stripped or (stripped.startswith("#") and not stripped.lower().startswith("#requires")):
            continue
        out.append(line)
        in_here = bool(_HERE_OPEN.search(line))
    return "\n".join(out) + "\n"


def _library(match: re.Match[str], depth: int = 0) -> str:
    """The text of ``lib/<name>.ps1``, its own include lines expanded (a library may use another)."""
    name = match["name"]
    if depth > 8:
        raise UnknownScript(f"script library {name!r} includes itself")
    resource = resources.files(__name__).joinpath("lib", f"{name}.ps1")
    if not resource.is_file():
        raise UnknownScript(f"included script library {name!r} does not exist")
    text = _INCLUDE.sub(lambda inner: _library(inner, depth + 1), resource.read_text(encoding="utf-8"))
    return text if text.endswith("\n") else text + "\n"
