"""What every step shares: its description (script, flags), the parameters it sends, and how it is run.

A step is a small frozen object: :meth:`Step.parameters` gives the values the script receives (as PSRP
parameters, never as text), :meth:`Step.read` turns the script's one JSON object into typed facts. Running it
goes through :func:`run_step`, which retries per :mod:`migrator.remote.retry`: a step that is not idempotent is
never sent again after the request may have reached the device (architecture rule 3).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar

from migrator.errors import ProtocolError, RemoteError
from migrator.remote.retry import RetryPolicy, call_with_retry
from migrator.remote.transport import Transport, run_scripts
from migrator.scripts import Script, load

R_co = TypeVar("R_co", covariant=True)
R = TypeVar("R")


@dataclass(frozen=True)
class StepInfo:
    """A step in the catalogue: the script it runs and what a caller may do with it."""

    name: str
    script: str
    idempotent: bool  # safe to send again after an ambiguous failure (and declared so by the script)
    point_of_no_return: bool  # its effect cannot be undone (a deleted Hello container)
    summary: str
    # After it runs, what the device's facts said may no longer hold (policy written, container deleted): the
    # machine reads them again before its next decision. A message on screen changes nothing the facts hold.
    changes_facts: bool = True

    def load_script(self) -> Script:
        return load(self.script)


class Step(Protocol[R_co]):
    """One question or action on a device."""

    info: ClassVar[StepInfo]

    def parameters(self) -> dict[str, Any]: ...

    def read(self, device: str, data: Mapping[str, Any]) -> R_co: ...


def run_step(
    transport: Transport,
    step: Step[R],
    *,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] | None = None,
    on_retry: Callable[[int, BaseException, float], None] | None = None,
) -> R:
    """Run a step's script on the device (retrying what is safe to retry) and read its answer."""
    script = step.info.load_script()
    parameters = step.parameters()
    # Both must agree: the script's header and the step's declaration (a test checks they do).
    idempotent = step.info.idempotent and script.idempotent
    result = call_with_retry(
        lambda: transport.run(script, parameters),
        idempotent=idempotent,
        policy=policy or RetryPolicy(),
        sleep=sleep,
        on_retry=on_retry,
    )
    return step.read(transport.device, result.data)


def run_steps(
    transport: Transport,
    steps: Sequence[Step[Any]],
    *,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] | None = None,
) -> list[Any]:
    """Run steps one after the other in one pipeline where the transport can
    (:func:`~migrator.remote.transport.run_scripts`) and read their answers: the first's failure raises as
    :func:`run_step`'s would, a later step's ends the list early. Retried only if every step is idempotent."""
    scripts = [step.info.load_script() for step in steps]
    items = [(script, step.parameters()) for script, step in zip(scripts, steps, strict=True)]
    idempotent = all(step.info.idempotent and script.idempotent for step, script in zip(steps, scripts, strict=True))
    results = call_with_retry(
        lambda: run_scripts(transport, items),
        idempotent=idempotent,
        policy=policy or RetryPolicy(),
        sleep=sleep,
    )
    answers = [steps[0].read(transport.device, results[0].data)]
    for step, result in zip(steps[1:], results[1:], strict=False):
        try:
            answers.append(step.read(transport.device, result.data))
        except RemoteError:  # a later read that answered badly: the first step's answer stands without it
            break
    return answers


# ---- reading helpers --------------------------------------------------------------------------------------


def as_list(value: Any) -> list[Any]:
    """A JSON value PowerShell may have unrolled (one item instead of an array, null instead of [])."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def opt_str(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if text.strip() else None


def opt_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def native_text(value: Any) -> tuple[str, int | None]:
    """``{"text", "exit_code"}`` as the scripts' Invoke-Native returns it."""
    data = as_dict(value)
    return str(data.get("text") or ""), opt_int(data.get("exit_code"))


def require(device: str, data: Mapping[str, Any], key: str, script: str) -> Any:
    if key not in data:
        raise ProtocolError(device, f"script {script} answered without {key!r}")
    return data[key]
