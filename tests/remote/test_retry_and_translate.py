"""Retry rule and error translation: what is retried, what never is, and what each foreign error becomes."""

from __future__ import annotations

import pytest
import requests
from pydantic import SecretStr
from pypsrp import exceptions as psrp_exc
from winrm import exceptions as winrm_exc

from migrator.errors import (
    AccessDenied,
    AuthenticationFailed,
    ConfigurationError,
    ConnectionLost,
    DeviceBusy,
    DeviceUnreachable,
    ScriptFailed,
)
from migrator.remote.credentials import Credentials
from migrator.remote.retry import RetryPolicy, call_with_retry, should_retry
from migrator.remote.translate import translate

FAST = RetryPolicy(attempts=4, initial_wait=0.01, max_wait=0.01, jitter=0, total_seconds=60)


def test_unsent_failures_are_retried_even_for_non_idempotent_steps() -> None:
    """Nothing reached the device: retrying cannot repeat an action."""
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise DeviceUnreachable("PC-1", "connection refused")
        return "ok"

    assert call_with_retry(flaky, idempotent=False, policy=FAST, sleep=lambda _s: None) == "ok"
    assert len(calls) == 3


def test_ambiguous_failures_are_not_repeated_for_non_idempotent_steps() -> None:
    """A lost answer after sending is never retried blindly for an action that is not idempotent."""
    calls: list[int] = []

    def lost() -> None:
        calls.append(1)
        raise ConnectionLost("PC-1", "reset")

    with pytest.raises(ConnectionLost):
        call_with_retry(lost, idempotent=False, policy=FAST, sleep=lambda _s: None)
    assert len(calls) == 1
    assert should_retry(ConnectionLost("PC-1", "reset"), idempotent=True)


def test_credentials_and_script_errors_are_never_retried() -> None:
    """Authentication failures and script failures stop at once."""
    assert not should_retry(AuthenticationFailed("PC-1", "401"), idempotent=True)
    assert not should_retry(ScriptFailed("PC-1", "collect_facts", []), idempotent=True)


def test_retry_gives_up_after_the_attempt_budget() -> None:
    """Transient errors stop after the bounded number of attempts and the last error is raised as itself."""
    calls: list[int] = []
    waits: list[float] = []

    def down() -> None:
        calls.append(1)
        raise DeviceBusy("PC-1", "quota")

    with pytest.raises(DeviceBusy):
        call_with_retry(down, idempotent=True, policy=FAST, sleep=waits.append)
    assert len(calls) == 4 and len(waits) == 3


def test_translation_of_foreign_errors() -> None:
    """Each foreign exception maps to the class that says what the caller can do."""
    refused = requests.exceptions.ConnectionError(ConnectionRefusedError(111, "Connection refused"))
    assert isinstance(translate("PC-1", refused, sent=False), DeviceUnreachable)
    assert isinstance(translate("PC-1", requests.exceptions.ReadTimeout(), sent=True), ConnectionLost)
    assert isinstance(translate("PC-1", requests.exceptions.SSLError("bad cert"), sent=False), ConfigurationError)
    assert isinstance(translate("PC-1", psrp_exc.AuthenticationError("no"), sent=False), AuthenticationFailed)
    assert isinstance(translate("PC-1", winrm_exc.InvalidCredentialsError("no"), sent=False), AuthenticationFailed)
    assert isinstance(translate("PC-1", psrp_exc.WinRMTransportError("http", 401, ""), sent=True), AuthenticationFailed)
    quota = psrp_exc.WSManFaultError(0x803381A6, "PC-1", "quota exceeded", None, None, None)
    assert isinstance(translate("PC-1", quota, sent=True), DeviceBusy)
    denied = psrp_exc.WSManFaultError(5, "PC-1", "Access is denied.", None, None, None)
    assert isinstance(translate("PC-1", denied, sent=True), AccessDenied)
    reset = requests.exceptions.ConnectionError(ConnectionResetError(104, "reset"))
    lost = translate("PC-1", reset, sent=True)
    assert isinstance(lost, ConnectionLost) and lost.may_have_run


def test_credentials_never_show_the_password() -> None:
    """repr/str of credentials hide the password."""
    creds = Credentials("LAB\\admin", SecretStr("hunter2-secret"))
    assert "hunter2" not in repr(creds) and "hunter2" not in str(creds)
