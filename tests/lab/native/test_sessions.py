"""quser, msg, logoff and shutdown: the session tools the migration uses to find and prompt users."""

from __future__ import annotations

from datetime import timedelta

from tests.lab.native.conftest import Fleet, out_lines, sample_lines


def test_quser_layout_matches_the_console_sample(fleet: Fleet) -> None:
    """The header is verbatim and a row's columns land where the published console row's do."""
    lines = out_lines(fleet.run(fleet.hybrid, fleet.as_user(fleet.hybrid, fleet.alice), "quser"))
    sample = sample_lines("quser_query_user_variants.txt")
    assert lines[0] == sample[0]
    row, sample_row = lines[1], sample[1]
    assert row.startswith(">alice ") and sample_row.startswith(">wchesley ")
    for field in ("console", "Active", "none"):
        assert row.index(field) == sample_row.index(field), field
    assert row.index("11/2/2026") == sample_row.index("7/24/2024")
    assert row.endswith("11/2/2026 8:00 AM")
    assert row[43] == "2" and sample_row[43] == "1"  # the ID column is right-aligned to column 43


def test_quser_over_winrm_has_no_marker_and_shows_disconnected_sessions(fleet: Fleet) -> None:
    """The admin has no session ('>' nowhere); a disconnected session has an empty SESSIONNAME and idle time."""
    fleet.lab.sign_in(fleet.hybrid, fleet.bob, "rdp")
    bob_session = fleet.hybrid.session_of(fleet.bob)
    assert bob_session is not None
    bob_session.state = "Disc"
    fleet.clock.advance(3 * 3600 + 5 * 60)
    lines = out_lines(fleet.run(fleet.hybrid, fleet.admin(fleet.hybrid), "query", "user", "/server:PC-HYB"))
    assert all(not line.startswith(">") for line in lines)
    bob = next(line for line in lines if line.startswith(" bob"))
    sample_disc = next(line for line in sample_lines("quser_query_user_variants.txt") if "Disc" in line)
    assert bob.index("Disc") == sample_disc.index("Disc")
    assert bob[23:40].strip() == ""
    assert bob.split()[3] == "3:05"


def test_quser_rdp_session_name_and_idle_dot(fleet: Fleet) -> None:
    """An active RDP session shows rdp-tcp#N and '.' in IDLE TIME, aligned like the published RDP row."""
    fleet.lab.sign_in(fleet.hybrid, fleet.bob, "rdp")
    lines = out_lines(fleet.run(fleet.hybrid, fleet.as_user(fleet.hybrid, fleet.bob), "quser", "bob"))
    sample_rdp = sample_lines("quser_query_user_variants.txt")[3]
    assert lines[1].startswith(">bob") and "rdp-tcp#" in lines[1]
    assert lines[1].index(".") == sample_rdp.index(" . ") + 1


def test_quser_without_sessions(fleet: Fleet) -> None:
    """No sessions: stderr 'No User exists for *' and exit code 1."""
    fleet.lab.sign_out(fleet.domain_only, fleet.erin)
    result = fleet.run(fleet.domain_only, fleet.admin(fleet.domain_only), "quser")
    assert result.stdout == "" and out_lines(result, "stderr") == sample_lines("quser_query_user_variants.txt")[-1:]
    assert result.exit_code == 1


def test_msg_prompts_the_users_session(fleet: Fleet) -> None:
    """msg <user> shows the text in that user's session and counts the prompt."""
    text = "Please sign out and back in with your PIN."
    result = fleet.run(fleet.hybrid, fleet.admin(fleet.hybrid), "msg", "alice", "/TIME:300", text)
    assert result.exit_code == 0
    session = fleet.hybrid.session_of(fleet.alice)
    assert session is not None and session.messages == [text]
    assert fleet.alice.counters.prompts_received == 1


def test_msg_by_session_id_and_star(fleet: Fleet) -> None:
    """msg <id> and msg * reach the sessions they name."""
    session = fleet.hybrid.session_of(fleet.alice)
    assert session is not None
    fleet.run(fleet.hybrid, fleet.admin(fleet.hybrid), "msg", str(session.session_id), "one")
    fleet.run(fleet.hybrid, fleet.admin(fleet.hybrid), "msg", "*", "/W", "two", "words")
    assert session.messages == ["one", "two words"]


def test_msg_to_a_user_without_session_fails(fleet: Fleet) -> None:
    """A user with no session: msg's 'getting session names' error and exit code 1; nobody is prompted."""
    result = fleet.run(fleet.hybrid, fleet.admin(fleet.hybrid), "msg", "bob", "hello")
    assert result.exit_code == 1
    assert out_lines(result, "stderr") == ["Error 7022 getting session names"]
    assert fleet.bob.counters.prompts_received == 0


def test_logoff_ends_the_session(fleet: Fleet) -> None:
    """logoff <id> ends that session; an unknown id fails."""
    session = fleet.hybrid.session_of(fleet.alice)
    assert session is not None
    assert fleet.run(fleet.hybrid, fleet.admin(fleet.hybrid), "logoff", str(session.session_id)).exit_code == 0
    assert fleet.hybrid.session_of(fleet.alice) is None and fleet.alice.counters.sign_outs == 1
    missing = fleet.run(fleet.hybrid, fleet.admin(fleet.hybrid), "logoff", "99")
    assert missing.exit_code == 1 and "cannot be found" in missing.stderr


def test_shutdown_restart_after_delay_and_abort(fleet: Fleet) -> None:
    """shutdown /r /t 60 restarts a minute later (prints nothing); shutdown /a cancels a pending restart."""
    admin = fleet.admin(fleet.domain_only)
    first = fleet.run(fleet.domain_only, admin, "shutdown", "/r", "/t", "60", "/f", "/c", "Hello migration")
    assert (first.stdout, first.stderr, first.exit_code) == ("", "", 0)
    again = fleet.run(fleet.domain_only, admin, "shutdown", "/r", "/t", "60")
    assert again.exit_code == 1190
    assert fleet.run(fleet.domain_only, admin, "shutdown", "/a").exit_code == 0
    fleet.clock.advance(120)
    assert fleet.domain_only.counters.reboots == 0
    assert fleet.run(fleet.domain_only, admin, "shutdown", "/a").exit_code == 1116
    fleet.run(fleet.domain_only, admin, "shutdown", "/r", "/t", "30")
    fleet.clock.advance(31)
    assert fleet.domain_only.counters.reboots == 1 and not fleet.domain_only.sessions


def test_shutdown_default_timeout_is_thirty_seconds(fleet: Fleet) -> None:
    """shutdown /r without /t waits 30 seconds."""
    fleet.run(fleet.domain_only, fleet.admin(fleet.domain_only), "shutdown", "/r")
    fleet.clock.advance(29)
    assert fleet.domain_only.counters.reboots == 0
    fleet.clock.advance(timedelta(seconds=2).total_seconds())
    assert fleet.domain_only.counters.reboots == 1


def test_msg_verbose_names_the_session(fleet: Fleet) -> None:
    """/V reports each session the message went to, with the /TIME display time."""
    lines = out_lines(fleet.run(fleet.hybrid, fleet.admin(fleet.hybrid), "msg", "alice", "/TIME:120", "/V", "hi"))
    assert lines == ["Sending message to session console, display time 120", "Async message sent to session console"]
