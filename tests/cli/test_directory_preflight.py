"""`migrator probe` and `migrator run` read each domain's directory once, before any device: Entra Kerberos
from the directory (no --entra-kerberos needed), privileged users parked at preflight with the group named."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from migrator.cli import app
from migrator.directory.knowledge import DirectoryKnowledge, read_directory
from migrator.engine import service
from migrator.lab.fleet import generate_fleet, parse_mix
from migrator.lab.model import Fleet
from migrator.lab.runtime import LabPorts, LabRuntime
from migrator.lab.truth import fleet_truth
from migrator.store import Store
from tests.loopback import free_addresses

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

EXPECTED_PATH = {"cert": "cert", "cloud": "cloud", "key": "key", "none": "key"}
TIER0 = "Tier0 Operators"


def _fleet(count: int) -> Fleet:
    fleet = generate_fleet(count, 21, parse_mix("key=40,cert=30,cloud=10,none=20"))
    for device, address in zip(fleet.devices, free_addresses(count), strict=True):
        device.address = address
    return fleet


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LabRuntime, Path]]:
    """A lab of 24 devices in three domains (fabrikam.local has no Entra Kerberos), DCs on free addresses."""
    fleet = _fleet(24)
    assert {d.entra_kerberos for d in fleet.domains} == {True, False}
    # A Domain Admin with a Hello container on a corp device (the directory puts a privileged user there).
    admin = next(u for d in fleet.devices for u in d.users if u.domain == "CORP" and u.container is not None)
    admin.privileged = True
    work = tmp_path_factory.mktemp("lab")
    dc_addresses = dict(zip((d.dns_name for d in fleet.domains), free_addresses(len(fleet.domains)), strict=True))
    runtime = LabRuntime(
        fleet, work, speed=600.0, ports=LabPorts(http=0, https=0, ldap=0, ldaps=0), dc_addresses=dc_addresses
    )
    runtime.start()
    inventory = work / "inventory.yaml"
    runtime.write_inventory(inventory)
    try:
        yield runtime, inventory
    finally:
        runtime.stop()


def test_probe_names_every_path_as_the_lab_truth_without_entra_kerberos(running: tuple[LabRuntime, Path]) -> None:
    """No --entra-kerberos: each device's path is what the lab's truth says, fabrikam's devices ineligible for
    want of the Entra Kerberos object, which the directory told."""
    runtime, inventory = running
    secrets = inventory.parent / "lab-secrets.env"
    result = CliRunner().invoke(app, ["probe", "-i", str(inventory), "--json", "--secrets", str(secrets)])
    assert result.exit_code == 0, result.output
    assert "WARNING" not in result.stderr
    outcomes = {d["name"]: d for d in json.loads(result.stdout)["devices"]}
    truth = {d["name"]: d for d in fleet_truth(runtime.lab)["devices"]}
    assert set(outcomes) == set(truth)
    missing_entra = 0
    for name, expected in truth.items():
        outcome = outcomes[name]
        reasons = outcome["reasons"]
        assert not any("not confirmed" in r for r in reasons), (name, reasons)
        blocked = (
            expected["join_type"] not in ("hybrid", "entra")
            or not expected["supports_cloud_trust"]
            or not expected["entra_kerberos"]
        )
        if blocked:
            assert outcome["path"] == "ineligible", (name, reasons)
        elif expected["tpm"]:  # without a usable TPM the path depends on RequireSecurityDevice (as test_probe)
            assert outcome["path"] == EXPECTED_PATH[expected["policy"]["effective"]], (name, reasons)
        if expected["join_type"] in ("hybrid", "entra") and not expected["entra_kerberos"]:
            missing_entra += 1
            assert any("no Microsoft Entra Kerberos server object" in r for r in reasons), (name, reasons)
    assert missing_entra, "the fleet has devices in the domain without Entra Kerberos"
    directory = json.loads(result.stdout)["directory"]
    assert directory["domains"]["fabrikam.local"]["entra_kerberos"] is False
    assert "CORP\\Tier0 Operators" not in directory["domains"]["corp.contoso.com"]["never_reveal_groups"]
    assert "Tier0 Operators" in directory["domains"]["corp.contoso.com"]["never_reveal_groups"]
    assert directory["failures"] == {} and directory["requests"] == 21
    said = " ".join(result.stderr.split())
    assert "corp.contoso.com: Entra Kerberos yes" in said and "fabrikam.local: no Entra Kerberos object" in said
    # Privileged users with a container are named in their device's reasons, before any device step acts.
    named = 0
    for device in runtime.fleet.devices:
        for user in device.users:
            domain = next((d for d in runtime.fleet.domains if d.netbios == user.domain), None)
            if user.privileged and user.container is not None and domain is not None and domain.entra_kerberos:
                reasons = outcomes[device.name]["reasons"]
                assert any("msDS-NeverRevealGroup" in r and user.sam in r for r in reasons), (device.name, reasons)
                named += 1
    assert named
    # The admin's word still wins over the directory.
    override = CliRunner().invoke(
        app,
        ["probe", "-i", str(inventory), "--json", "--secrets", str(secrets), "--entra-kerberos", "fabrikam.local=yes"],
    )
    paths = {d["name"]: d["reasons"] for d in json.loads(override.stdout)["devices"]}
    assert not any("server object in domain fabrikam" in r for reasons in paths.values() for r in reasons)


def test_probe_warns_and_keeps_the_old_behaviour_when_the_directory_is_unreachable(
    running: tuple[LabRuntime, Path], tmp_path: Path
) -> None:
    """A DC nobody listens on: a warning naming the domain and the error, and the path decided as before."""
    runtime, inventory = running
    data = yaml.safe_load(inventory.read_text())
    (nobody,) = free_addresses(1)
    for domain in data["lab"]["domains"]:
        domain["dc_address"] = nobody
    broken = inventory.parent / "broken-inventory.yaml"
    broken.write_text(yaml.safe_dump(data, sort_keys=False))
    device = next(d for d in runtime.fleet.devices if d.join_type == "hybrid" and d.domain == "fabrikam.local")
    secrets = inventory.parent / "lab-secrets.env"
    result = CliRunner().invoke(
        app, ["probe", "-i", str(broken), "--limit", device.name, "--json", "--secrets", str(secrets)]
    )
    assert result.exit_code == 0, result.output
    assert "WARNING: directory of fabrikam.local" in result.stderr and "DirectoryUnreachable" in result.stderr
    (outcome,) = json.loads(result.stdout)["devices"]
    assert any("not confirmed" in r for r in outcome["reasons"]), outcome["reasons"]


def test_a_user_an_admin_adds_to_a_never_reveal_group_is_parked_at_preflight(
    running: tuple[LabRuntime, Path], tmp_path: Path
) -> None:
    """`lab group corp.contoso.com add "Tier0 Operators" USER`, then `migrator run` (no --entra-kerberos): the user
    goes from pending straight to stalled at the device's preflight, the group named, its container kept and
    nothing run in its session; the device's other work goes on."""
    runtime, inventory = running
    truth = {d["name"]: d for d in fleet_truth(runtime.lab)["devices"]}

    def candidate(name: str) -> bool:
        t = truth[name]
        return (
            t["join_type"] == "hybrid"
            and t["entra_kerberos"]
            and t["supports_cloud_trust"]
            and bool(t["tpm"])
            and t["policy"]["effective"] in ("key", "cert")
        )

    device = next(
        d
        for d in runtime.fleet.devices
        if candidate(d.name) and any(u.container and u.domain == "CORP" and not u.privileged for u in d.users)
    )
    user = next(u for u in device.users if u.container and u.domain == "CORP" and not u.privileged)
    runner = CliRunner()
    added = runner.invoke(
        app, ["lab", "group", "corp.contoso.com", "add", TIER0, user.sam, "--inventory", str(inventory)]
    )
    assert added.exit_code == 0, added.output
    state = tmp_path / "state"
    secrets = inventory.parent / "lab-secrets.env"
    try:
        result = runner.invoke(
            app,
            [
                *("run", "-i", str(inventory), "--limit", device.name, "--yes", "--no-wait"),
                *("--state", str(state), "--secrets", str(secrets), "--change-ticket", "CHG-1"),
            ],
        )
    finally:
        runner.invoke(app, ["lab", "group", "CORP", "remove", TIER0, user.sam, "--inventory", str(inventory)])
    assert result.exit_code in (0, 1), result.output
    store = Store.open(state)
    try:
        rows = {u.sid: u for u in store.list_users(device.name)}
        parked = rows[user.sid]
        assert parked.state == "stalled", (parked.state, parked.last_error)
        assert parked.last_error is not None and f"CORP\\{TIER0}" in parked.last_error
        moves = [
            (t.from_state, t.to_state, t.event)
            for t in store.export_wave_transitions("wave-1")
            if t.device == device.name and t.user == parked.name
        ]
        assert moves == [("pending", "stalled", "account_refused")], moves
    finally:
        store.close()
    lab_user = next(u for u in runtime.lab.device(device.name).users if u.sid == user.sid)
    assert lab_user.container is not None
    assert lab_user.counters.tasks_run == 0


def test_a_wave_reads_the_directory_once_not_per_device(
    running: tuple[LabRuntime, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`migrator run` over 8 devices in batches of 2: one directory read for the wave, its requests a function of
    the domains (bind, object search, unbind; key version and one in-chain search per msDS-NeverRevealGroup
    group where the object exists), not of the devices or batches."""
    runtime, inventory = running
    reads: list[DirectoryKnowledge] = []

    def counting(*args: object, **kwargs: object) -> DirectoryKnowledge:
        knowledge = read_directory(*args, **kwargs)  # type: ignore[arg-type]
        reads.append(knowledge)
        return knowledge

    monkeypatch.setattr(service, "read_directory", counting)
    names = [d.name for d in runtime.fleet.devices[:8]]
    secrets = inventory.parent / "lab-secrets.env"
    result = CliRunner().invoke(
        app,
        [
            *("run", "-i", str(inventory), "--limit", ",".join(names), "--yes", "--no-wait", "--batch-size", "2"),
            *("--state", str(tmp_path / "state"), "--secrets", str(secrets), "--change-ticket", "CHG-2"),
        ],
    )
    assert result.exit_code in (0, 1), result.output
    assert len(reads) == 1
    domains = runtime.fleet.domains
    with_object = sum(d.entra_kerberos for d in domains)
    ntlm_bind, search, unbind, never_reveal_groups = 3, 1, 1, 2
    assert reads[0].requests == len(domains) * (ntlm_bind + search + unbind) + with_object * (1 + never_reveal_groups)


def test_plan_reads_the_directory_too(running: tuple[LabRuntime, Path]) -> None:
    """`migrator plan` without --entra-kerberos: a hybrid fabrikam device is ineligible for want of the object."""
    runtime, inventory = running
    device = next(d for d in runtime.fleet.devices if d.join_type == "hybrid" and d.domain == "fabrikam.local")
    secrets = inventory.parent / "lab-secrets.env"
    result = CliRunner().invoke(
        app, ["plan", "-i", str(inventory), "--limit", device.name, "--json", "--secrets", str(secrets)]
    )
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)["devices"]
    assert row["path"] == "ineligible" and row["steps"] == []
    assert any("no Microsoft Entra Kerberos server object in domain fabrikam" in r for r in row["reasons"])


def test_resume_reads_the_directory_again_once(
    running: tuple[LabRuntime, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wave picked up by `migrator resume` reads the directory once more (an admin may have changed a group
    since), once for the wave, not per device."""
    runtime, inventory = running
    reads: list[DirectoryKnowledge] = []

    def counting(*args: object, **kwargs: object) -> DirectoryKnowledge:
        knowledge = read_directory(*args, **kwargs)  # type: ignore[arg-type]
        reads.append(knowledge)
        return knowledge

    monkeypatch.setattr(service, "read_directory", counting)
    names = [d.name for d in runtime.fleet.devices[8:12]]
    secrets = inventory.parent / "lab-secrets.env"
    state = tmp_path / "state"
    common = ("--state", str(state), "--secrets", str(secrets))
    first = CliRunner().invoke(
        app,
        [
            "run",
            "-i",
            str(inventory),
            "--limit",
            ",".join(names),
            "--yes",
            "--no-wait",
            "--change-ticket",
            "C3",
            *common,
        ],
    )
    assert first.exit_code in (0, 1), first.output
    again = CliRunner().invoke(app, ["resume", "--no-wait", *common])
    assert again.exit_code in (0, 1), again.output
    assert len(reads) == 2 and reads[0].requests == reads[1].requests == 21
