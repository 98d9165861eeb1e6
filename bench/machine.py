"""The store as the driver uses it: run ``.venv/bin/python bench/machine.py [--devices N] [--dir DIR]``.

Each device walks the certificate trust path through the real machine (:class:`DeviceMachine`) and the real
funnel (:class:`StoreFunnel`: ``store.transition`` / ``user_transition`` with context and audit entry in one
transaction), with ``store.intent`` before and ``store.outcome`` after every side effect, facts saved on every
read and the policy snapshot saved first-wins — exactly the driver's writes, with the device's answers made up
in memory instead of read over WinRM. Prints transitions persisted per second (SQLite, synchronous FULL and
NORMAL), the writes per device, and the store's size per 1,000 devices. Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from migrator.engine.device import StoreFunnel, journal_json, rebuild
from migrator.facts import (
    DcFacts,
    DeleteOutcome,
    DeviceFacts,
    HelloState,
    OsFacts,
    PathSettings,
    PolicyChange,
    PolicyRefresh,
    PolicyValue,
    PromptResult,
    SessionFacts,
    TpmFacts,
    UserFacts,
    evaluate_policy,
)
from migrator.machine.commands import Done, RunStep, StepSucceeded, Wait
from migrator.playbook import load_playbook
from migrator.store import Store, content_hash

SID = "S-1-5-21-1004336348-1177238915-682003330-1104"
SETTINGS = PathSettings(entra_kerberos={"corp.contoso.com": True})


def _facts(name: str, cloud: bool, signed_in: bool = True) -> DeviceFacts:
    values = {"Enabled": 1, "RequireSecurityDevice": 1}
    values |= {"UseCloudTrustForOnPremAuth": 1} if cloud else {"UseCertificateForOnPremAuth": 1}
    return DeviceFacts(
        name=name,
        computer_name=name,
        join_type="hybrid",
        azure_ad_joined=True,
        domain_joined=True,
        domain="corp.contoso.com",
        os=OsFacts(caption="Microsoft Windows 11 Enterprise", build=22631, ubr=4602, display_version="23H2"),
        tpm=TpmFacts(present=True, ready=True),
        policy=evaluate_policy(values, {}, [], user_sids=[SID]),
        users=(
            UserFacts(
                sid=SID,
                name="CORP\\alice",
                profile_path="C:\\Users\\alice",
                signed_in=signed_in,
                session=SessionFacts(id=2, kind="console", state="Active", name="console") if signed_in else None,
                has_hello=True,
                policy="cloud" if cloud else "cert",
            ),
        ),
        dc=DcFacts(domain="corp.contoso.com", checked=True, reachable=True, dc="\\\\DC01.corp.contoso.com"),
    )


class FakeDevice:
    """Answers the machine's commands for one device as a cooperative Windows device would."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.cloud = False
        self.deleted = False
        self.visits = 0

    def answer(self, command: RunStep) -> Any:
        purpose = command.purpose
        if purpose == "facts":
            return _facts(self.name, self.cloud)
        if purpose == "snapshot":
            return tuple(
                PolicyValue(path=path, name=name, existed=name != "UseCloudTrustForOnPremAuth", type="DWord", data=1)
                for path, name in ((entry["path"], entry["name"]) for entry in command.step.parameters()["Entries"])
            )
        if purpose == "set_policy":
            self.cloud = True
            values = command.step.parameters()["Values"]
            return tuple(
                PolicyChange(previous=value, current=value, changed=True)
                for value in (
                    PolicyValue(path=v["path"], name=v["name"], existed=True, type="DWord", data=1) for v in values
                )
            )
        if purpose == "refresh":
            return PolicyRefresh(succeeded=True)
        if purpose in ("identify", "verify"):
            reprovisioned = purpose == "verify" and self.visits > 1
            return HelloState(
                status="completed",
                user=SID,
                ngc_set=True,
                ngc_key_id="{2A9E8F4C-1111-4222-8333-444455556666}"
                if reprovisioned
                else "{1B2C3D4E-1111-4222-8333-444455556666}",
                on_prem_tgt=reprovisioned,
                cloud_primary_tgt=reprovisioned,
                cleaned_up=True,
            )
        if purpose == "delete":
            self.deleted = True
            return DeleteOutcome(status="completed", user=SID, deleted=True, certutil_succeeded=True, cleaned_up=True)
        if purpose == "prompt":
            return PromptResult(session_id=2, seconds=600, delivered=True, exit_code=0)
        raise RuntimeError(f"no made-up answer for {purpose}")


class TimedFunnel(StoreFunnel):
    """The driver's funnel, timing its own transactions (the state change, its context and its audit entry)."""

    seconds = 0.0
    count = 0

    def change(self, change: Any) -> None:
        started = time.perf_counter()
        super().change(change)
        TimedFunnel.seconds += time.perf_counter() - started
        TimedFunnel.count += 1


def migrate(store: Store, name: str, clock: list[datetime]) -> int:
    """One device, visit after visit, through the driver's write path; returns the transitions persisted."""
    playbook = load_playbook("cert-trust-to-cloud-kerberos")
    device = FakeDevice(name)
    funnel = TimedFunnel(store, name, owner="bench", actor="CORP\\migrator-admin", row=store.get_device(name))
    journal = 0
    while True:
        device.visits += 1
        store.acquire(name, "bench", 600)
        machine = rebuild(store.visit_record(name), playbook, funnel, path_settings=SETTINGS)
        machine.begin_visit(clock[0])
        while True:
            command = machine.advance(clock[0])
            if isinstance(command, Done):
                store.release(name, "bench")
                return len(store.export_device_timeline(name).transitions)
            if isinstance(command, Wait):
                clock[0] = command.until
                break
            entry = None
            if command.side_effect:
                journal += 1
                entry = store.intent(
                    name, command.name, 1, command.payload(), key=f"{name}/{journal}", user=command.user, owner="bench"
                )
            result = device.answer(command)
            if command.purpose == "facts":
                store.save_facts(name, result.model_dump(mode="json"))
            if entry is not None:
                store.outcome(entry.id, {"ok": True, "result": journal_json(result)}, True)
            machine.handle(StepSucceeded(command, result, clock[0], entry.id if entry else None))
        store.release(name, "bench")


def run(directory: Path, devices: int, synchronous: Literal["NORMAL", "FULL"]) -> tuple[float, int, int, float]:
    TimedFunnel.seconds, TimedFunnel.count = 0.0, 0
    clock = [datetime(2026, 11, 2, 8, 0, tzinfo=UTC)]
    store = Store.open(directory / synchronous, now=lambda: clock[0], synchronous=synchronous)
    store.create_wave("bench", playbook_name="cert", playbook_hash=content_hash("bench"), change_ticket="CHG-1")
    names = [f"PC-{i:05d}" for i in range(devices)]
    store.enroll("bench", names)
    started = time.perf_counter()
    moved = 0
    for name in names:
        clock[0] = datetime(2026, 11, 2, 8, 0, tzinfo=UTC) + timedelta(seconds=1)
        moved += migrate(store, name, clock)
    seconds = time.perf_counter() - started
    states = store.counts("bench")
    audit = len(store.audit_entries())
    store.close()
    size = sum(p.stat().st_size for p in (directory / synchronous).iterdir())
    assert states == {"migrated": devices}, states
    return moved / seconds, moved, audit, size * 1000 / devices


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.dir or Path(tmp)
        modes: tuple[Literal["NORMAL", "FULL"], ...] = ("FULL", "NORMAL")
        for synchronous in modes:
            rate, moved, audit, per_thousand = run(directory, args.devices, synchronous)
            print(
                f"SQLite synchronous={synchronous}: {rate:,.0f} transitions persisted/s as the driver writes them "
                f"({moved / args.devices:.0f} transitions, {audit / args.devices:.0f} audit entries per device, "
                f"with intents, outcomes and facts); store size {per_thousand / 1e6:.1f} MB per 1,000 devices"
            )
            print(
                f"  the funnel alone (state + context + audit entry, one transaction): "
                f"{TimedFunnel.count / TimedFunnel.seconds:,.0f} transitions/s"
            )


if __name__ == "__main__":
    main()
