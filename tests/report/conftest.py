"""A store with two waves and realistic device histories, written through the store API as the engine would.

pilot (CHG0042, running):
  PC-KEY-01   key path, migrated; alice migrated after signing out and in
  PC-CERT-02  cert path, migrated; bob's and carol's containers deleted (bob's held passkeys, carol's unknown)
  PC-FAIL-03  cert path, failed at confirm_policy (cert-trust policy from GPO)
  PC-STALL-04 key path, stalled: dave never signed in
wave-2 (CHG0043, halted):
  PC-WAIT-05  key path, waiting_for_dc
  PC-RB-06    cert path, rolled back after erin's container was deleted (no passkeys)
  HOSTILE     a device named <script>alert(1)</script> with a hostile user and a formula-looking error
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from migrator.store import AuditEntry, PolicyValue, Store, content_hash

START = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)
PFW = r"HKLM\SOFTWARE\Policies\Microsoft\PassportForWork"
HOSTILE_DEVICE = "<script>alert(1)</script>"
HOSTILE_USER = '"><img src=x onerror=alert(2)>'
HOSTILE_ERROR = '=HYPERLINK("http://evil.example/","click")'
CERT_STATES = (
    "preflight",
    "snapshot_policy",
    "disable_cert_trust",
    "enable_cloud_trust",
    "confirm_policy",
    "delete_containers",
    "waiting_for_user",
    "verify_cloud",
    "migrated",
)
KEY_STATES = ("preflight", "snapshot_policy", "enable_cloud_trust", "confirm_policy", "waiting_for_user")


class Clock:
    """A UTC clock that moves 1 s per reading and on request, so timelines have distinct, ordered times."""

    def __init__(self, start: datetime = START) -> None:
        self.current = start

    def __call__(self) -> datetime:
        self.current += timedelta(seconds=1)
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


@dataclass
class Fleet:
    state_dir: Path
    store: Store
    clock: Clock


def walk(store: Store, device: str, states: tuple[str, ...], *, start: str = "pending", path: str | None = None) -> str:
    """Move a device through ``states`` in order, with a succeeded step attempt per state (as the engine does)."""
    current = start
    for index, state in enumerate(states):
        if state in ("preflight", "snapshot_policy", "enable_cloud_trust", "confirm_policy", "verify_cloud"):
            step = store.start_step(device, state, 1)
            store.finish_step(step.id, "succeeded")
        store.transition(device, current, state, f"{state}_started", path=path if index == 0 else None)
        current = state
    return current


def delete_container(store: Store, device: str, user: str, outcome: dict[str, object]) -> None:
    """Journal and record the guarded container delete of one user (intent, step attempt, outcome)."""
    entry = store.intent(
        device,
        "delete_container",
        1,
        {"user": user, "expected_key_id": "k-" + user[-3:]},
        key=f"{device}/{user}/delete_container/1",
        user=user,
    )
    step = store.start_step(device, "delete_container", 1, user=user)
    store.outcome(entry.id, outcome, ok=True)
    store.finish_step(step.id, "succeeded")


def build_fleet(store: Store, clock: Clock) -> None:
    playbook = "name: to-cloud-kerberos\npath: auto\nsteps: [preflight]\n"
    store.create_wave(
        "pilot",
        playbook_name="to-cloud-kerberos",
        playbook_hash=content_hash(playbook),
        change_ticket="CHG0042",
        settings={"batch_size": 5, "max_fail_percent": 20},
        state="running",
        audit=AuditEntry(actor="admin@contoso", action="wave.create", after={"wave": "pilot"}),
    )
    store.create_wave(
        "wave-2",
        playbook_name="cert-trust-to-cloud-kerberos",
        playbook_hash=content_hash("cert"),
        change_ticket="CHG0043",
        state="halted",
    )
    store.append_audit(
        AuditEntry(
            actor="change.manager@contoso",
            action="wave.approve",
            change_ticket="CHG0042",
            after={"wave": "pilot", "batch": 2},
        )
    )
    store.enroll("pilot", ["PC-KEY-01", "PC-CERT-02", "PC-FAIL-03", "PC-STALL-04"])
    store.enroll("wave-2", ["PC-WAIT-05", "PC-RB-06", HOSTILE_DEVICE])

    # PC-KEY-01: key trust, one user, migrated.
    store.add_user("PC-KEY-01", r"CONTOSO\alice", sid="S-1-5-21-1-1001", container_trust="key", key_id="k-ali")
    walk(store, "PC-KEY-01", KEY_STATES, path="key")
    store.user_transition("PC-KEY-01", r"CONTOSO\alice", "pending", "waiting_for_sign_in", "prompted")
    clock.advance(hours=2)
    store.user_transition("PC-KEY-01", r"CONTOSO\alice", "waiting_for_sign_in", "migrated", "verified")
    walk(store, "PC-KEY-01", ("verify_cloud", "migrated"), start="waiting_for_user")

    # PC-CERT-02: certificate trust, two users whose containers were deleted.
    for name, sid in ((r"CONTOSO\bob", "S-1-5-21-1-1002"), (r"CONTOSO\carol", "S-1-5-21-1-1003")):
        store.add_user("PC-CERT-02", name, sid=sid, container_trust="cert", key_id="k-" + name[-3:])
    store.snapshot_policy(
        "PC-CERT-02",
        [
            PolicyValue(PFW, "UseCertificateForOnPremAuth", True, "DWord", 1),
            PolicyValue(PFW, "UseCloudTrustForOnPremAuth", False),
        ],
    )
    walk(store, "PC-CERT-02", CERT_STATES[:6], path="cert")
    delete_container(
        store, "PC-CERT-02", r"CONTOSO\bob", {"deleted": True, "has_passkeys": True, "sign_out_required": True}
    )
    store.user_transition("PC-CERT-02", r"CONTOSO\bob", "pending", "container_deleted", "deleted")
    delete_container(store, "PC-CERT-02", r"CONTOSO\carol", {"deleted": True, "sign_out_required": True})
    for name in (r"CONTOSO\bob", r"CONTOSO\carol"):
        user_from = "container_deleted" if name.endswith("bob") else "pending"
        store.user_transition("PC-CERT-02", name, user_from, "migrated", "verified")
    clock.advance(hours=5)
    walk(store, "PC-CERT-02", CERT_STATES[6:], start="delete_containers")

    # PC-FAIL-03: the guard refused: certificate trust policy still delivered by GPO.
    store.add_user("PC-FAIL-03", r"CONTOSO\frank", sid="S-1-5-21-1-1006", container_trust="cert", key_id="k-ank")
    walk(store, "PC-FAIL-03", CERT_STATES[:4], path="cert")
    step = store.start_step("PC-FAIL-03", "confirm_policy", 1)
    store.finish_step(step.id, "failed", error="UseCertificateForOnPremAuth=1 is still set by Group Policy")
    store.transition(
        "PC-FAIL-03",
        "enable_cloud_trust",
        "failed",
        "guard_refused",
        last_error="confirm_policy: certificate trust policy from GPO wins over cloud trust",
    )

    # PC-STALL-04: key trust, the user never signed in before the deadline.
    store.add_user("PC-STALL-04", r"CONTOSO\dave", sid="S-1-5-21-1-1004", container_trust="key", key_id="k-ave")
    walk(store, "PC-STALL-04", KEY_STATES, path="key")
    store.user_transition("PC-STALL-04", r"CONTOSO\dave", "pending", "waiting_for_sign_in", "prompted")
    clock.advance(days=7)
    store.user_transition(
        "PC-STALL-04",
        r"CONTOSO\dave",
        "waiting_for_sign_in",
        "stalled",
        "deadline",
        last_error="no sign-in within 7 days",
    )
    store.transition(
        "PC-STALL-04", "waiting_for_user", "stalled", "deadline", last_error="dave did not sign in within 7 days"
    )

    # PC-WAIT-05: hybrid, no line of sight to a DC.
    store.add_user("PC-WAIT-05", r"CONTOSO\gina", sid="S-1-5-21-1-1007", container_trust="key", key_id="k-ina")
    walk(
        store,
        "PC-WAIT-05",
        ("preflight", "snapshot_policy", "enable_cloud_trust", "confirm_policy", "waiting_for_dc"),
        path="key",
    )

    # PC-RB-06: cert path, erin's container deleted, then the halted wave was rolled back.
    store.add_user("PC-RB-06", r"CONTOSO\erin", sid="S-1-5-21-1-1005", container_trust="cert", key_id="k-rin")
    store.snapshot_policy(
        "PC-RB-06",
        [
            PolicyValue(PFW, "UseCertificateForOnPremAuth", True, "DWord", 1),
            PolicyValue(PFW, "UseCloudTrustForOnPremAuth", False),
        ],
    )
    walk(store, "PC-RB-06", CERT_STATES[:6], path="cert")
    delete_container(store, "PC-RB-06", r"CONTOSO\erin", {"deleted": True, "sign_out_required": True})
    store.append_audit(
        AuditEntry(
            actor="migrator",
            action="container.deleted",
            device="PC-RB-06",
            after={"user": r"CONTOSO\erin", "has_passkeys": False},
        )
    )
    store.transition("PC-RB-06", "delete_containers", "rolling_back", "rollback")
    entry = store.intent("PC-RB-06", "restore_policy", 1, {"records": 2}, key="PC-RB-06/restore_policy/1")
    step = store.start_step("PC-RB-06", "restore_policy", 1)
    store.outcome(
        entry.id,
        {
            "restored": [
                {
                    "path": "HKLM:\\SOFTWARE\\Policies\\Microsoft\\PassportForWork",
                    "name": "UseCertificateForOnPremAuth",
                    "action": "set",
                },
                {"path": PFW, "name": "UseCloudTrustForOnPremAuth", "action": "removed"},
            ]
        },
        ok=True,
    )
    store.finish_step(step.id, "succeeded")
    store.transition("PC-RB-06", "rolling_back", "rolled_back", "restored")

    # The hostile device: names and errors that would be markup, script or a spreadsheet formula.
    store.add_user(HOSTILE_DEVICE, HOSTILE_USER, sid="S-1-5-21-1-666", container_trust="key", key_id="<b>k</b>")
    store.transition(HOSTILE_DEVICE, "pending", "preflight", "<i>start</i>", path="key")
    store.transition(HOSTILE_DEVICE, "preflight", "failed", "probe_failed", last_error=HOSTILE_ERROR)
    store.save_facts(HOSTILE_DEVICE, {"name": HOSTILE_DEVICE, "note": "</pre><script>alert(3)</script>"})


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fleet(tmp_path: Path, clock: Clock) -> Iterator[Fleet]:
    state_dir = tmp_path / "state"
    store = Store.open(state_dir, now=clock, synchronous="NORMAL")
    build_fleet(store, clock)
    yield Fleet(state_dir, store, clock)
    store.close()


@pytest.fixture
def empty_store(tmp_path: Path, clock: Clock) -> Iterator[Fleet]:
    state_dir = tmp_path / "empty"
    store = Store.open(state_dir, now=clock, synchronous="NORMAL")
    yield Fleet(state_dir, store, clock)
    store.close()
