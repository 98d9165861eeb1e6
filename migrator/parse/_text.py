"""Shared helpers for the native-output parsers: decoding saved captures, line clean-up, YES/NO values.

dsregcmd prints English field names even on a localised build (see the Italian-locale capture in the
reference outputs); gpupdate and quser translate their text on some builds. Captures reach us through many
hands: PowerShell redirection (UTF-16LE with a BOM in Windows PowerShell 5.1), copy and paste from a console
(wrapped lines), forum posts (leading spaces lost), tickets with notes added. The helpers here absorb those
differences once.
"""

from __future__ import annotations

import re

__all__ = [
    "decode_output",
    "is_annotation",
    "split_lines",
    "yes_no",
    "yes_no_tested",
]

# A note that whoever saved the capture added ("# source: ...", "## variant 2"). No tool we parse prints a
# line starting with "# " or "##"; klist's ticket lines start with "#0>", which this does not match.
_ANNOTATION = re.compile(r"^\s*(?:#\s|##|#$)")


def decode_output(data: bytes) -> str:
    """Decode a saved capture: UTF-8 (with or without BOM), UTF-16 (BOM or not), else Windows-1252.

    ``dsregcmd /status > out.txt`` in Windows PowerShell 5.1 writes UTF-16LE with a BOM; ``cmd.exe`` writes
    the OEM code page, read here as Windows-1252 (the labels we parse are ASCII, so only non-ASCII characters
    in values can differ); PowerShell 7 writes UTF-8. Decoding never fails: unknown bytes become U+FFFD, so a
    damaged file yields "nothing recognised" rather than an exception.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    # UTF-16LE without a BOM: ASCII text has a NUL in every odd byte.
    if len(data) >= 4 and data[1::2].count(0) > len(data) // 4:
        return data.decode("utf-16-le", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def is_annotation(line: str) -> bool:
    """True for a note added by whoever saved the capture (``# ...`` / ``## ...``), never tool output."""
    return bool(_ANNOTATION.match(line))


def split_lines(text: str) -> list[str]:
    """Lines of ``text`` without line ends, annotations, trailing blanks or non-breaking spaces."""
    lines: list[str] = []
    for raw in text.replace("\u00a0", " ").replace("\ufeff", "").splitlines():
        if is_annotation(raw):
            continue
        lines.append(raw.rstrip())
    return lines


def yes_no(value: str | None) -> bool | None:
    """``YES``/``NO`` (any case) to a bool; anything else (absent, ``ERROR``, a URL, ...) to None.

    A trailing parenthesised detail is ignored: ``LogonCertTemplateReady : YES ( StateReady )`` is True.
    """
    if value is None:
        return None
    head = value.strip().split("(", 1)[0].strip().upper()
    if head in {"YES", "NO"}:
        return head == "YES"
    return None


def yes_no_tested(value: str | None) -> bool | None:
    """Event-log style ``Yes``/``No``/``Not Tested`` to True/False/None."""
    if value is None:
        return None
    folded = value.strip().casefold()
    if folded == "yes":
        return True
    if folded == "no":
        return False
    return None
