"""Tests of parse_quser on the published quser / query user variants."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from migrator.parse import parse_quser
from migrator.parse.quser import parse_idle_minutes
from tests.parse._samples import sample, variants

PARTS = variants("quser_query_user_variants.txt")


def test_console_session_with_marker() -> None:
    """Variant 1: one console session, marked as the caller's."""
    result = parse_quser(PARTS["variant 1 (console, local)"])
    (session,) = result.sessions
    assert session.username == "wchesley"
    assert session.session_name == "console"
    assert session.session_id == 1
    assert session.state == "Active" and session.is_active
    assert session.idle_time == "none" and session.idle_minutes == 0
    assert session.logon_time == "7/24/2024 7:36 AM"
    assert session.current is True
    assert result.current_session == session


def test_rdp_session() -> None:
    """Variant 2: an RDP session with idle ``.``."""
    (session,) = parse_quser(PARTS["variant 2 (RDP)"]).sessions
    assert (session.username, session.session_name, session.session_id) == ("administrator", "rdp-tcp#2", 1)
    assert session.idle_time == "." and session.idle_minutes == 0
    assert session.logon_time == "3/25/2021 9:27 AM"
    assert session.current is True


def test_remote_powershell_has_no_marker() -> None:
    """Variant 3: run over remote PowerShell, no session is the caller's."""
    result = parse_quser(PARTS["variant 3 (run from remote PowerShell session - no '>' marker)"])
    (session,) = result.sessions
    assert session.username == "xitizbasnet"
    assert session.logon_time == "8/21/2025 9:15 AM"
    assert session.current is False
    assert result.current_session is None


def test_mixed_sessions_with_disconnected_one() -> None:
    """Variant 4: console, RDP and a disconnected session whose SESSIONNAME is empty."""
    result = parse_quser(PARTS['variant 4 (mixed: console + rdp + disconnected; idle "days+hh:mm")'])
    console, rdp, disc = result.sessions
    assert (console.username, console.current) == ("janedoe", True)
    assert (rdp.username, rdp.session_name, rdp.session_id, rdp.logon_time) == (
        "administrator",
        "rdp-tcp#1",
        2,
        "4/12/2022 11:26 AM",
    )
    assert disc.username == "john.smith"
    assert disc.session_name is None
    assert disc.session_id == 3
    assert disc.state == "Disc" and disc.is_disconnected and not disc.is_active
    assert disc.idle_time == "11+04:12"
    assert disc.idle_minutes == (11 * 24 + 4) * 60 + 12
    assert disc.logon_time == "2022-03-31 5:09 PM"
    assert result.active_sessions == (console, rdp)


def test_server_listing_with_shifted_columns() -> None:
    """Variant 5: a copy whose rows do not line up with the header falls back to the tokeniser."""
    result = parse_quser(PARTS["variant 5 (quser /server:X - disconnected + rdp)"])
    disc, rdp = result.sessions
    assert (disc.username, disc.session_name, disc.session_id, disc.state) == ("USER1", None, 2, "Disc")
    assert disc.idle_minutes == 19
    assert disc.logon_time == "11/23/2021 11:44 AM"
    assert (rdp.username, rdp.session_name, rdp.session_id, rdp.state) == ("USER1", "rdp-tcp#3", 3, "Active")
    assert rdp.logon_time == "11/23/2021 1:09 PM"
    assert result.unknown_lines == ()


def test_no_users_message() -> None:
    """``No User exists for *`` is an empty listing, not an error."""
    result = parse_quser(PARTS['known "no users" message (quser exits 1 and writes to stderr):'])
    assert result.sessions == ()
    assert result.no_users is True
    assert result.error is None


def test_rpc_error_variant() -> None:
    """``Error 0x000006BA enumerating sessionnames`` is RPC_S_SERVER_UNAVAILABLE (1722)."""
    result = parse_quser("Error 0x000006BA enumerating sessionnames\n")
    assert result.sessions == ()
    assert result.error is not None
    assert result.error.code is not None
    assert result.error.code.value == 1722
    assert result.error.code.name == "RPC_S_SERVER_UNAVAILABLE"


def test_whole_sample_file() -> None:
    """The full variants file yields all nine sessions in order."""
    result = parse_quser(sample("quser_query_user_variants.txt"))
    assert [s.username for s in result.sessions] == [
        "wchesley",
        "administrator",
        "xitizbasnet",
        "janedoe",
        "administrator",
        "john.smith",
        "USER1",
        "USER1",
    ]
    assert result.no_users is True


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("none", 0), (".", 0), ("19", 19), ("1:05", 65), ("11+04:12", 16092), ("?", None)],
)
def test_idle_formats(text: str, minutes: int | None) -> None:
    """Every idle-time form quser prints converts to minutes."""
    assert parse_idle_minutes(text) == minutes


@settings(max_examples=150, deadline=None)
@given(st.text())
def test_never_raises(text: str) -> None:
    """Any text at all parses without an exception, with or without a header before it."""
    parse_quser(text)
    parse_quser(" USERNAME              SESSIONNAME        ID  STATE   IDLE TIME  LOGON TIME\n" + text)
