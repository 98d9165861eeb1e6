"""What must hold after any chaos schedule, once the faults are cleared and ``resume`` ran to the end.

Each check reads an :class:`~tests.chaos.harness.Outcome` (the store, ``status``'s view, the lab's truth, the
probe) and returns violations; an empty list is a pass. The numbers are issue 14's:

0. the orchestrator never raises on its own, and the run ends (no hang);
1. every device is final, or waiting/parked with a non-empty reason that ``status`` shows;
2. a wave is ``completed`` only when every device of it is final or ``stalled``;
3. ``resume`` picks up every device that is not final (nor ``stalled``): the probe (one more resume) visits it;
4. at most one container deletion per user (the lab counts them);
5. final states agree with the lab's truth: a user on cloud trust in the lab (container trust ``cloud``, or a
   cloud TGT in their session) since before we marked them ``stalled`` or ``failed`` was not; a device (or user)
   reported ``migrated`` has every tracked user on cloud trust in the lab;
6. ``audit verify`` passes;

and two more, from the rules issue 14 sets for the machine and the engine:

7. a transient fault (refused, dropped, rebooting, busy, HTTP 500, timed out) never fails a device, and a
   credentials failure (401) fails the device without failing its users;
8. after a SIGKILL, the killed orchestrator's leases do not keep a device from the restarted one for more than
   :data:`~tests.chaos.harness.LEASE_GRACE` (virtual) seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from migrator.errors import (
    AccessDenied,
    AuthenticationFailed,
    ConnectionLost,
    CredentialsError,
    DeviceBusy,
    DeviceUnreachable,
    TransientError,
)
from tests.chaos.harness import Outcome
from tests.chaos.states import DEVICE_FINAL, DEVICE_PARKED, DEVICE_WAITING, STALLED


@dataclass(frozen=True)
class Violation:
    invariant: int
    subject: str  # a device, wave or user
    message: str

    def __str__(self) -> str:
        return f"[{self.invariant}] {self.subject}: {self.message}"


def _lab_users(truth: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["name"], u["sid"]): u for d in truth.get("devices", []) for u in d["users"]}


def _on_cloud(user: dict[str, Any]) -> bool:
    container = user.get("container")
    session = user.get("session")
    return bool((container and container["trust"] == "cloud") or (session and session["cloud_tgt"]))


def check_runs(outcome: Outcome) -> list[Violation]:
    found = [Violation(0, "orchestrator", "raised: " + crash.strip().splitlines()[-1]) for crash in outcome.crashes]
    if outcome.hung:
        found.append(Violation(0, "run", outcome.hung))
    return found


def check_visible(outcome: Outcome) -> list[Violation]:
    assert outcome.status is not None
    found = []
    for device in outcome.status.devices:
        state = device.device.state
        if state in DEVICE_FINAL:
            continue
        if state not in DEVICE_WAITING and state not in DEVICE_PARKED:
            found.append(Violation(1, device.name, f"left in {state!r}: neither final, waiting nor parked"))
        elif device.attention is None or not device.reason.strip():
            found.append(
                Violation(1, device.name, f"{state} but status shows no reason (attention {device.attention})")
            )
    return found


def check_completed_waves(outcome: Outcome) -> list[Violation]:
    found = []
    for wave in outcome.waves:
        if wave.state != "completed":
            continue
        for device in outcome.devices:
            if device.wave == wave.name and device.state not in DEVICE_FINAL and device.state != STALLED:
                found.append(Violation(2, wave.name, f"completed while {device.name} is {device.state}"))
    return found


def check_resume_picks_up(outcome: Outcome) -> list[Violation]:
    found = []
    visited = outcome.probe_visited or set()
    waves = {w.name: w.state for w in outcome.waves}
    for device in outcome.devices:
        if device.state in DEVICE_FINAL or device.state == STALLED:
            continue
        if device.name not in visited:
            where = f"wave {device.wave} is {waves.get(device.wave, '?')}"
            found.append(Violation(3, device.name, f"{device.state}, but resume does not pick it up ({where})"))
    return found


def check_deletions(outcome: Outcome) -> list[Violation]:
    found = []
    for truth in (outcome.truth, outcome.truth_after_probe):
        for (device, _sid), user in _lab_users(truth).items():
            if user["container_deletions"] > 1:
                subject = f"{device}/{user['name']}"
                message = f"its Hello container was deleted {user['container_deletions']} times"
                if not any(v.subject == subject for v in found):
                    found.append(Violation(4, subject, message))
    return found


def _entered(outcome: Outcome, device: str, user: str, state: str) -> datetime | None:
    """When the user last moved into ``state`` (the store's transitions, virtual time)."""
    moves = [t.at for t in outcome.transitions.get(device, []) if t.user == user and t.to_state == state]
    return max(moves) if moves else None


def check_truth(outcome: Outcome) -> list[Violation]:
    found = []
    lab = _lab_users(outcome.truth)
    rows = {d.name: d for d in outcome.devices}
    for device, users in outcome.users.items():
        for row in users:
            subject = f"{device}/{row.name}"
            person = lab.get((device, row.sid or ""))
            if person is None:
                continue
            if row.state in ("stalled", "failed"):
                since = outcome.cloud_since.get((device, row.sid or ""))
                entered = _entered(outcome, device, row.name, row.state)
                if since is not None and entered is not None and since <= entered:
                    found.append(
                        Violation(
                            5,
                            subject,
                            f"reported {row.state} at {outcome.offset(entered)} ({row.last_error or 'no reason'}), "
                            f"but on cloud trust in the lab since {outcome.offset(since)}",
                        )
                    )
            if (row.state == "migrated" or rows[device].state == "migrated") and not _on_cloud(person):
                container = person["container"]["trust"] if person["container"] else "none"
                found.append(
                    Violation(
                        5,
                        subject,
                        f"reported migrated (device {rows[device].state}, user {row.state}) but the lab has "
                        f"container {container} and no cloud TGT",
                    )
                )
    return found


TRANSIENT = tuple(cls.__name__ for cls in (TransientError, DeviceUnreachable, ConnectionLost, DeviceBusy))
CREDENTIALS = tuple(cls.__name__ for cls in (CredentialsError, AuthenticationFailed, AccessDenied))


def check_failures(outcome: Outcome) -> list[Violation]:
    found = []
    for device in outcome.devices:
        if device.state != "failed":
            continue
        moves = [t for t in outcome.transitions.get(device.name, []) if t.user is None and t.to_state == "failed"]
        error = device.last_error or ""
        if (moves and moves[-1].event == "unreachable_too_long") or any(name in error for name in TRANSIENT):
            found.append(Violation(7, device.name, f"failed by a transient fault: {error or moves[-1].event}"))
    for device, rows in outcome.users.items():
        for row in rows:
            error = row.last_error or ""
            if row.state != "failed":
                continue
            if any(name in error for name in CREDENTIALS + TRANSIENT):
                found.append(Violation(7, f"{device}/{row.name}", f"user failed by a device-wide fault: {error}"))
    return found


def check_leases(outcome: Outcome) -> list[Violation]:
    return [Violation(8, device, message) for device, message in outcome.lease_holds]


def check_audit(outcome: Outcome) -> list[Violation]:
    assert outcome.audit is not None
    if outcome.audit.ok:
        return []
    return [Violation(6, "audit", f"audit verify fails: {outcome.audit}")]


def check_all(outcome: Outcome) -> list[Violation]:
    if outcome.status is None:  # the run never got as far as reading the store
        return check_runs(outcome) or [Violation(0, "run", "no end state was read")]
    return [
        *check_runs(outcome),
        *check_visible(outcome),
        *check_completed_waves(outcome),
        *check_resume_picks_up(outcome),
        *check_deletions(outcome),
        *check_truth(outcome),
        *check_audit(outcome),
        *check_failures(outcome),
        *check_leases(outcome),
    ]
