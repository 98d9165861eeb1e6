"""Which failures are retried, and how (tenacity: exponential backoff with jitter, bounded attempts and time).

The rule (architecture rule 3): an error that says nothing reached the device is always safe to retry. An
error after the request left (:attr:`RemoteError.may_have_run`) is retried only for a step that declared itself
idempotent; anything else is resolved by re-reading the device, never by sending the action again.

Kerberos (:data:`migrator.remote.translate.KERBEROS_ERRORS`): only :class:`~migrator.errors.KdcUnreachable` is
retried: no KDC answered (a DC restarting, a dropped UDP datagram, a VPN coming up) and nothing reached the device,
so trying again later is safe and may work. The others are never retried, since another try meets the same
answer and a refused password counts towards the account's lockout: an unknown SPN (fix spn_hostname /
spn_service), clock skew (fix the clocks), an expired or missing ticket (kinit again), an unknown account or a
wrong password, and missing libraries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import tenacity

from migrator.errors import TransientError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # total tries, the first included
    initial_wait: float = 1.0  # seconds before the second try
    max_wait: float = 30.0
    jitter: float = 1.0
    total_seconds: float = 180.0  # give up once this much time went by


def should_retry(error: BaseException, idempotent: bool) -> bool:
    """True for transient errors (KdcUnreachable among them), unless the device may have acted and the operation
    is not idempotent."""
    if not isinstance(error, TransientError):
        return False
    return idempotent or not error.may_have_run


def call_with_retry(
    func: Callable[[], T],
    *,
    idempotent: bool,
    policy: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], None] | None = None,
    on_retry: Callable[[int, BaseException, float], None] | None = None,
) -> T:
    """Run ``func``, retrying per the rule above; the last error is raised as itself (not RetryError)."""

    def before_sleep(state: tenacity.RetryCallState) -> None:
        if on_retry is not None and state.outcome is not None:
            error = state.outcome.exception()
            wait = state.next_action.sleep if state.next_action else 0.0
            if error is not None:
                on_retry(state.attempt_number, error, wait)

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(policy.attempts) | tenacity.stop_after_delay(policy.total_seconds),
        wait=tenacity.wait_exponential_jitter(
            multiplier=policy.initial_wait, max=policy.max_wait, jitter=policy.jitter
        ),
        retry=tenacity.retry_if_exception(lambda e: should_retry(e, idempotent)),
        reraise=True,
        sleep=sleep or tenacity.nap.sleep,
        before_sleep=before_sleep,
    )
    return retrying(func)
