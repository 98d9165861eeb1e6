"""Tests of the certutil -DeleteHelloContainer and gpupdate parsers on the published outputs."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from migrator.parse import parse_certutil_delete, parse_gpupdate
from tests.parse._samples import sample


def test_delete_hello_container_success() -> None:
    """Success: completed, and the user must sign out for it to finish."""
    result = parse_certutil_delete(sample("certutil_deletehellocontainer_success.txt"))
    assert result.verb == "DeleteHelloContainer"
    assert result.succeeded is True
    assert result.sign_out_required is True
    assert result.hresult is None and result.error_name is None


def test_delete_hello_container_nte_perm() -> None:
    """Failure: HRESULT 0x80090010, its signed form, NTE_PERM and the message line."""
    result = parse_certutil_delete(sample("certutil_deletehellocontainer_errors.txt"))
    assert result.succeeded is False
    assert result.hresult is not None
    assert result.hresult.hex == "0x80090010"
    assert result.hresult.signed == -2146893808
    assert result.error_name == "NTE_PERM"
    assert result.message == "Access denied."
    assert result.sign_out_required is False


def test_win32_style_failure() -> None:
    """certutil's ``(WIN32: n NAME)`` form keeps the printed name; the message comes from the table."""
    result = parse_certutil_delete(
        "CertUtil: -DeleteHelloContainer command FAILED: 0x80070002 (WIN32: 2 ERROR_FILE_NOT_FOUND)\n"
    )
    assert result.succeeded is False
    assert result.error_name == "ERROR_FILE_NOT_FOUND"
    assert result.message == "The system cannot find the file specified."


def test_help_text_is_not_an_outcome() -> None:
    """The ``certutil /?`` verb line says neither success nor failure."""
    result = parse_certutil_delete(sample("certutil_help_deletehellocontainer.txt"))
    assert result.succeeded is None
    assert result.verb is None
    assert len(result.unknown_lines) == 2


def test_gpupdate_success_variants() -> None:
    """English (with and without blank line) and German success lines all read as completed."""
    text = sample("gpupdate_force_success.txt")
    english, _, german = text.partition("# German-locale equivalents")
    for part in english.split("# variant"):
        result = parse_gpupdate(part)
        assert result.computer_policy_completed is True
        assert result.user_policy_completed is True
        assert result.succeeded
        assert result.errors == ()
    result = parse_gpupdate(german.split("\n", 1)[1])
    assert (result.computer_policy_completed, result.user_policy_completed) == (True, True)
    assert result.unknown_lines == ()


def test_gpupdate_computer_failure_with_errors() -> None:
    """A computer-policy failure collects the error paragraph; the user half still completed."""
    text = """Updating policy...

Computer policy could not be updated successfully. The following errors were encountered:

The processing of Group Policy failed. Windows could not authenticate to the Active Directory service on a \
domain controller. (LDAP Bind function call failed). Look in the details tab for error code and description.
User Policy update has completed successfully.

To diagnose the failure, review the event log or run GPRESULT /H GPReport.html from the command line to \
access information about Group Policy results.
"""
    result = parse_gpupdate(text)
    assert result.computer_policy_completed is False
    assert result.user_policy_completed is True
    assert not result.succeeded
    assert len(result.errors) == 1
    assert result.errors[0].startswith("The processing of Group Policy failed.")


def test_gpupdate_logoff_and_restart_prompts() -> None:
    """The logon / startup-only policy prompts are flagged."""
    text = """Updating policy...
Computer Policy update has completed successfully.
Certain Computer policies are enabled that can only run during startup.
OK to restart? (Y/N)
User Policy update has completed successfully.
Certain User policies are enabled that can only run during logon.
OK to log off? (Y/N)
"""
    result = parse_gpupdate(text)
    assert result.restart_required and result.logoff_required
    assert result.succeeded
    assert result.unknown_lines == ()


@settings(max_examples=100, deadline=None)
@given(st.text())
def test_never_raise(text: str) -> None:
    """Any text at all parses without an exception."""
    parse_certutil_delete(text)
    parse_gpupdate(text)
