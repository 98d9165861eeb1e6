"""The driver end to end against an in-process lab on a virtual clock (real pypsrp over loopback)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr
from typer.testing import CliRunner

from migrator.cli import app
from migrator.engine.device import rollback_device, visit
from migrator.errors import DeviceErrorRecord, ScriptFailed
from migrator.lab.model import Device, Fleet
from migrator.lab.truth import fleet_truth
from migrator.logs import configure_logging, forget_secrets
from migrator.playbook import Playbook, Waits
from migrator.remote.credentials import Credentials
from migrator.store import Store
from tests.engine.labkit import (
    FAST_RETRY,
    LabKit,
    cooperative,
    drive,
    make_fleet,
    open_store,
    playbook,
    running_lab,
    sign_everyone_in,
    visit_device,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def fast(name: str = "to-cloud-kerberos") -> Playbook:
    """A shipped playbook with days shortened: recheck every 6 h, give up after 3 days."""
    return playbook(name).model_copy(
        update={
            "waits": Waits(
                recheck_every=6 * 3600, user_deadline=3 * 86400, dc_deadline=3 * 86400, reprovision_deadline=3 * 86400
            )
        }
    )


def one_hybrid_device(mix: str, *, single_user: bool = False) -> tuple[Fleet, Device]:
    """A cooperative fleet cut down to its first hybrid device whose first user has a container."""
    fleet = cooperative(make_fleet(6, 4, mix))
    target = next(d for d in fleet.devices if d.join_type == "hybrid" and d.users and d.users[0].container)
    fleet.devices = [target]
    if single_user:
        target.users = target.users[:1]
    return fleet, target


@pytest.fixture
def mixed(tmp_path: Path) -> Iterator[tuple[LabKit, Path]]:
    fleet = cooperative(make_fleet(12, 11, "key=35,cert=35,cloud=10,none=20"))
    with running_lab(fleet, tmp_path / "lab") as kit:
        sign_everyone_in(kit)
        yield kit, tmp_path


def _truth(kit: LabKit) -> dict[str, dict[str, Any]]:
    return {d["name"]: d for d in fleet_truth(kit.lab)["devices"]}


def test_a_mixed_fleet_migrates(mixed: tuple[LabKit, Path]) -> None:
    """Key and cert devices end migrated, cloud ones already_cloud, the rest ineligible with reasons; cert users
    got new cloud containers (deleted exactly once), key users kept theirs."""
    kit, tmp = mixed
    before = _truth(kit)
    book = fast()
    names = [d.name for d in kit.fleet.devices]
    store = open_store(tmp / "state", kit, book, names)
    results = drive(kit, store, book, names)
    after = _truth(kit)
    seen = set()
    for name, result in results.items():
        device = store.get_device(name)
        seen.add(device.state)
        if device.path in ("key", "cert"):
            assert device.state == "migrated", (name, device.last_error, result.users)
        elif device.path == "cloud":
            assert device.state == "already_cloud"
        else:
            assert device.state == "ineligible" and device.last_error, name
        for user in after[name]["users"]:
            old = next(u for u in before[name]["users"] if u["sid"] == user["sid"])
            if device.path == "cert" and old["container"] is not None:
                assert user["container_deletions"] == 1
                assert user["container"]["trust"] == "cloud"
                assert user["container"]["key_id"].casefold() != old["container"]["key_id"].casefold()
            if device.path == "key":
                assert user["container_deletions"] == 0
                if old["container"] is not None:
                    assert user["container"]["trust"] == "cloud"
    assert {"migrated", "already_cloud", "ineligible"} <= seen
    assert store.verify_audit().ok
    audit = store.audit_entries()
    assert all(entry.actor == kit.credentials.username for entry in audit)
    assert {entry.change_ticket for entry in audit if entry.device} == {"CHG-0042"}


def test_devices_without_a_dc_wait_and_finish_when_it_returns(tmp_path: Path) -> None:
    """A hybrid cert device without line of sight parks in waiting_for_dc without deleting anything, then
    migrates once the lab brings the DC back."""
    fleet, target = one_hybrid_device("key=0,cert=100,cloud=0,none=0")
    target.dc_reachable = False
    book = fast()
    with running_lab(fleet, tmp_path / "lab") as kit:
        sign_everyone_in(kit)
        store = open_store(tmp_path / "state", kit, book, [target.name])
        states: list[str] = []

        def bring_dc_back(lab: LabKit, number: int) -> None:
            states.append(store.get_device(target.name).state)
            if number == 4:
                assert states[-1] == "waiting_for_dc"
                assert all(u.counters.container_deletions == 0 for u in target.users)
                lab.lab.set_dc_reachable(target, True)

        drive(kit, store, book, [target.name], between=bring_dc_back)
        assert store.get_device(target.name).state == "migrated"
        assert "waiting_for_dc" in states
        assert [u.counters.container_deletions for u in target.users if u.container] == [1] * len(
            [u for u in target.users if u.container]
        )


def test_users_who_never_sign_in_become_stalled(tmp_path: Path) -> None:
    """A user who is not signed in and never signs in: stalled after the deadline, container untouched."""
    fleet, target = one_hybrid_device("key=0,cert=100,cloud=0,none=0")
    for user in target.users:
        user.behaviour.compliance = "never"
    book = fast()
    with running_lab(fleet, tmp_path / "lab") as kit:
        store = open_store(tmp_path / "state", kit, book, [target.name])
        drive(kit, store, book, [target.name])
        device = store.get_device(target.name)
        assert device.state == "stalled" and "stalled" in (device.last_error or "")
        assert {u.state for u in store.list_users(target.name)} == {"stalled"}
        assert all(u.counters.container_deletions == 0 and u.container is not None for u in target.users)


def test_a_user_who_signed_in_off_the_network_is_reminded_once_a_dc_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Key trust user prompted while the DC answers, signs in again while it does not (cached key trust logon, no
    partial TGT): once the DC is back a day later they are asked again, sign in with the DC and end migrated."""
    fleet, target = one_hybrid_device("key=100,cert=0,cloud=0,none=0", single_user=True)
    user = target.users[0]
    book = fast("key-trust-to-cloud-kerberos")
    with running_lab(fleet, tmp_path / "lab") as kit:
        sign_everyone_in(kit)
        store = open_store(tmp_path / "state", kit, book, [target.name])
        deliver = kit.lab.prompt
        sign_ins = {"at_prompt": 0}

        def prompt_then_leave(device: Any, session_id: int | None, text: str) -> Any:
            shown = deliver(device, session_id, text)
            if user.counters.prompts_received == 1:
                sign_ins["at_prompt"] = user.counters.hello_sign_ins
                kit.lab.set_dc_reachable(target, False)  # the user goes home before signing out
            return shown

        monkeypatch.setattr(kit.lab, "prompt", prompt_then_leave)

        def network(lab: LabKit, _number: int) -> None:
            if not target.dc_reachable and user.counters.hello_sign_ins > sign_ins["at_prompt"] > 0:
                lab.lab.set_dc_reachable(target, True)  # back in the office, still signed in

        drive(kit, store, book, [target.name], between=network)
        assert store.get_device(target.name).state == "migrated"
        assert user.counters.prompts_received == 2 and user.counters.container_deletions == 0
        reminders = [e for e in store.audit_entries() if "remind" in e.action]
        assert len(reminders) == 1, [e.action for e in store.audit_entries()]


@pytest.mark.parametrize("mix", ["key=100,cert=0,cloud=0,none=0", "key=0,cert=100,cloud=0,none=0"])
def test_a_privileged_user_is_parked_at_once_and_keeps_their_container(tmp_path: Path, mix: str) -> None:
    """A Domain Admin gets no partial TGT from Entra Kerberos: on the key path the verify sees their token's
    groups, on the cert path the identify step does, before the point of no return. Either way the user is
    stalled at once (not at the deadline) naming the group, and their container is never deleted."""
    fleet, target = one_hybrid_device(mix, single_user=True)
    target.users[0].privileged = True
    book = fast()
    with running_lab(fleet, tmp_path / "lab") as kit:
        sign_everyone_in(kit)
        started = kit.now()
        store = open_store(tmp_path / "state", kit, book, [target.name])
        drive(kit, store, book, [target.name])
        device = store.get_device(target.name)
        assert device.state == "stalled", device.state
        [user] = store.list_users(target.name)
        assert user.state == "stalled" and "Domain Admins" in (user.last_error or ""), user.last_error
        assert "Domain Admins" in (device.last_error or "")
        assert kit.now() - started < timedelta(seconds=book.waits.user_deadline)
        assert target.users[0].counters.container_deletions == 0 and target.users[0].container is not None


def test_a_pause_or_halt_stops_a_running_visit_before_its_next_step(tmp_path: Path) -> None:
    """The wave says stop while a device is mid-visit: the step under way finishes (its journal entry is settled),
    no further step is sent, the device keeps its state, and a later visit finishes the migration."""
    fleet, target = one_hybrid_device("key=0,cert=100,cloud=0,none=0")
    book = fast()
    with running_lab(fleet, tmp_path / "lab") as kit:
        sign_everyone_in(kit)
        store = open_store(tmp_path / "state", kit, book, [target.name])
        asked = {"n": 0}

        def stop_after_two(_wave_state: str | None) -> bool:  # preflight's read, then the policy write (not the delete)
            asked["n"] += 1
            return asked["n"] > 2

        stopped = visit_device(kit, store, book, target.name, should_stop=stop_after_two)
        assert stopped.steps_run == 2 and stopped.next_due is not None
        assert stopped.state not in ("migrated", "failed", "stalled", "pending"), stopped.state
        assert all(e.status != "intent" for e in store.journal_entries(target.name))
        assert all(u.counters.container_deletions == 0 for u in target.users)
        drive(kit, store, book, [target.name])
        assert store.get_device(target.name).state == "migrated"


def test_a_wave_paused_between_two_steps_stops_the_visit_before_the_next(tmp_path: Path) -> None:
    """The wave's state a visit asks before each step comes with the lease check of that step, read after the last
    step's answer: a pause recorded while a step runs stops the visit before the following one (no further step is
    sent), and the device keeps its state."""
    fleet, target = one_hybrid_device("key=0,cert=100,cloud=0,none=0")
    book = fast()
    with running_lab(fleet, tmp_path / "lab") as kit:
        sign_everyone_in(kit)
        store = open_store(tmp_path / "state", kit, book, [target.name])
        seen: list[str | None] = []
        steps: list[str] = []

        def pause_during_the_second(device: str, command: Any) -> str | None:
            steps.append(command.name)
            if len(steps) == 2:  # asked right before the second step leaves: the pause lands while it runs
                store.set_wave_state(store.get_device(device).wave, "paused")
            return None

        def paused(wave_state: str | None) -> bool:
            seen.append(wave_state)
            return wave_state == "paused"

        stopped = visit_device(kit, store, book, target.name, should_stop=paused, hold=pause_during_the_second)
        assert stopped.steps_run == 2 and stopped.next_due is not None, stopped
        assert seen == ["planned", "planned", "paused"]
        assert all(e.status != "intent" for e in store.journal_entries(target.name))
        assert stopped.state == store.get_device(target.name).state


def test_a_user_who_only_signs_in_over_rdp_stalls_saying_so(tmp_path: Path) -> None:
    """After the guarded delete, a user who signs back in only over Remote Desktop never re-provisions (Hello is
    not set up in a remote session): stalled with that reason, not a generic "did not set up Hello"."""
    fleet, target = one_hybrid_device("key=0,cert=100,cloud=0,none=0", single_user=True)
    target.users[0].behaviour.prefers_rdp = True
    book = fast("cert-trust-to-cloud-kerberos")
    with running_lab(fleet, tmp_path / "lab") as kit:
        sign_everyone_in(kit)
        store = open_store(tmp_path / "state", kit, book, [target.name])
        drive(kit, store, book, [target.name])
        assert store.get_device(target.name).state == "stalled"
        [user] = store.list_users(target.name)
        assert user.state == "stalled" and "Remote Desktop" in (user.last_error or ""), user.last_error


def test_no_container_is_deleted_where_a_required_tpm_is_not_known_usable(tmp_path: Path) -> None:
    """The playbook requires a hardware security device. A cert device without a TPM is parked as ineligible before
    anything changes; one whose TPM cannot be read (the provider fails even for an administrator) has its policy
    changed but its users' containers kept: the point of no return refuses, naming security_device_ok."""
    fleet = cooperative(make_fleet(8, 4, "key=0,cert=100,cloud=0,none=0"))
    targets = [d for d in fleet.devices if d.users and d.users[0].container is not None][:2]
    fleet.devices = targets
    no_tpm, unreadable = targets
    no_tpm.tpm.present = no_tpm.tpm.ready = False
    unreadable.tpm.provider_error = "The TPM provider could not be loaded."
    book = fast("cert-trust-to-cloud-kerberos")
    assert book.policy.require_security_device
    names = [d.name for d in targets]
    with running_lab(fleet, tmp_path / "lab") as kit:
        sign_everyone_in(kit)
        store = open_store(tmp_path / "state", kit, book, names)
        drive(kit, store, book, names)
        parked = store.get_device(no_tpm.name)
        assert parked.state == "ineligible" and "no usable TPM" in (parked.last_error or "")
        assert not store.policy_snapshot(no_tpm.name)
        refused = store.get_device(unreadable.name)
        assert refused.state == "failed", refused.state
        users = store.list_users(unreadable.name)
        assert users and all("security_device_ok" in (u.last_error or "") for u in users if u.state == "failed")
        for device in targets:
            assert all(u.counters.container_deletions == 0 and u.container is not None for u in device.users)


def test_rollback_after_a_failed_wave_restores_every_snapshot_value(mixed: tuple[LabKit, Path]) -> None:
    """A wave stopped midway (as a halted wave leaves it) is rolled back: every policy value is back as it was;
    a second rollback restores nothing new; deleted containers are named as what cannot be restored."""
    kit, tmp = mixed
    before = _truth(kit)
    book = fast()
    names = [d.name for d in kit.fleet.devices]
    store = open_store(tmp / "state", kit, book, names)
    drive(kit, store, book, names, rounds=3, halt=True)  # the wave halts after three rounds
    changed = [n for n in names if store.policy_snapshot(n)]
    assert changed
    results = {}
    for name in names:
        results[name] = rollback_device(
            name,
            store=store,
            playbook=book,
            entry=kit.entry(name),
            connection=kit.connection(),
            credentials=kit.credentials,
            clock=kit.now,
            retry=FAST_RETRY,
        )
    after = _truth(kit)
    for name in names:
        assert results[name].error is None and store.get_device(name).state == "rolled_back"
        assert after[name]["policy"]["gpo"] == before[name]["policy"]["gpo"], name
        assert after[name]["policy"]["mdm"] == before[name]["policy"]["mdm"], name
    deleted = [n for n in names for u in after[n]["users"] if u["container_deletions"]]
    for name in deleted:
        assert results[name].cannot_restore and "re-provisions" in results[name].cannot_restore[0]
    again = rollback_device(
        changed[0],
        store=store,
        playbook=book,
        entry=kit.entry(changed[0]),
        connection=kit.connection(),
        credentials=kit.credentials,
        clock=kit.now,
    )
    assert again.nothing_new and again.restored == []


def test_a_password_never_reaches_the_logs_the_store_or_an_error(tmp_path: Path) -> None:
    """A wrong password (authentication fails) and a device error that echoes the real password: neither
    appears in the JSON log, the store file or the recorded errors."""
    fleet = cooperative(make_fleet(2, 5, "key=0,cert=100,cloud=0,none=0"))
    book = fast()
    logs = tmp_path / "logs"
    try:
        with running_lab(fleet, tmp_path / "lab") as kit:
            sign_everyone_in(kit)
            configure_logging(logs, secrets=[kit.password])
            names = [d.name for d in fleet.devices]
            store = open_store(tmp_path / "state", kit, book, names)
            wrong = "Wr0ng-Pa55word-never-logged"
            configure_logging(logs, secrets=[kit.password, wrong])
            bad = Credentials(kit.credentials.username, SecretStr(wrong))
            result = visit(
                names[0],
                store=store,
                playbook=book,
                entry=kit.entry(names[0]),
                connection=kit.connection(),
                credentials=bad,
                clock=kit.now,
                retry=FAST_RETRY,
            )
            assert result.state == "failed" and "AuthenticationFailed" in (result.last_error or "")

            class Echoing:
                """A transport whose device answers with an error record quoting the password."""

                device = names[1]
                requests_sent = 0

                def run(self, script: Any, parameters: Any = None) -> Any:
                    raise ScriptFailed(names[1], script.name, [DeviceErrorRecord(f"logon failed for {kit.password}")])

                def close(self) -> None: ...

            result = visit(
                names[1],
                store=store,
                playbook=book,
                entry=kit.entry(names[1]),
                connection=kit.connection(),
                credentials=kit.credentials,
                transport_factory=lambda *_: Echoing(),
                clock=kit.now,
                retry=FAST_RETRY,
            )
            assert result.state == "failed" and result.last_error and "**********" in result.last_error
            store.close()
            stored = b"".join(p.read_bytes() for p in (tmp_path / "state").iterdir() if p.is_file())
            logged = (logs / "migrator.jsonl").read_text()
            for secret in (kit.password, wrong):
                assert secret.encode() not in stored
                assert secret not in logged
                assert secret not in (result.last_error or "")
            assert all(json.loads(line) for line in logged.splitlines())
    finally:
        configure_logging(None)
        forget_secrets()


def test_a_second_driver_cannot_act_while_the_lease_is_held(mixed: tuple[LabKit, Path]) -> None:
    """Another worker's lease makes visit return busy and do nothing; the store refuses a fenced write."""
    kit, tmp = mixed
    book = fast()
    name = kit.fleet.devices[0].name
    store = open_store(tmp / "state", kit, book, [name])
    assert store.acquire(name, "someone-else", 600)
    result = visit_device(kit, store, book, name)
    assert result.busy and store.get_device(name).state == "pending"
    assert isinstance(store, Store)


def test_rollback_command_restores_a_wave_and_says_when_nothing_is_new(mixed: tuple[LabKit, Path]) -> None:
    """migrator rollback --wave restores through the same journal, lists what cannot come back, and a second
    run restores nothing new (exit 0 both times)."""
    kit, tmp = mixed
    book = fast()
    names = [d.name for d in kit.fleet.devices][:4]
    store = open_store(tmp / "state", kit, book, names)
    drive(kit, store, book, names, rounds=2, halt=True)
    store.close()
    inventory = tmp / "inventory.yaml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "defaults": {"transport": "psrp", "scheme": "http", "port": kit.http_port, "auth": "ntlm"},
                "devices": [{"name": d.name, "address": d.address} for d in kit.fleet.devices],
            }
        )
    )
    secrets = tmp / "secrets.env"
    secrets.write_text(f"MIGRATOR_USERNAME={kit.credentials.username}\nMIGRATOR_PASSWORD={kit.password}\n")
    args = ["rollback", "--state", str(tmp / "state"), "--wave", "wave-1", "--inventory", str(inventory)]
    args += ["--secrets", str(secrets), "--playbook", "to-cloud-kerberos"]
    runner = CliRunner()
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "restored" in first.output
    second = runner.invoke(app, args)
    assert second.exit_code == 0 and second.output.count("nothing new restored") == len(names)
    assert kit.password not in first.output + second.output
    configure_logging(None)
    forget_secrets()
