"""End to end: a lab wave through the ``ad-group`` channel with background Group Policy refresh on.

A mixed fleet (key trust devices of CORP, certificate trust devices of EMEA whose GPO sets certificate trust)
is migrated by moving each batch's computers between the lab's GPO filter groups; the policy then survives
several background refreshes (a local registry write would not); rollback puts the memberships back.

``AUTHS`` lists the WinRM authentications the wave test runs with: NTLM, and Kerberos (``auth: kerberos`` with a
ticket from the password, the lab running its KDCs: :func:`_start`); the other tests, about what the channel reads
and refuses rather than how it authenticates, run on NTLM."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from migrator.cli import app
from migrator.engine.service import WaveRequest, plan_wave
from migrator.lab import policy as policy_mod
from migrator.lab.directory.build import CLOUD_TRUST_GROUP, HELLO_GPO_GROUP
from migrator.lab.fleet import generate_fleet, parse_mix
from migrator.lab.model import Device
from migrator.lab.runtime import LabPorts, LabRuntime
from migrator.lab.truth import fleet_truth
from migrator.machine.plan import GPO_OVERWRITES
from migrator.playbook import builtin_path
from migrator.remote.credentials import load_credentials
from migrator.store import Store
from tests.engine.labkit import cooperative
from tests.loopback import free_addresses

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

AUTHS = ["ntlm", "kerberos"]
EMEA = "emea.corp.contoso.com"
CORP = "corp.contoso.com"


def _plain(device: Device) -> bool:
    """A hybrid joined device of a domain with Entra Kerberos, a TPM, a supported build and no user-scope GPO
    policy (the channel moves computers; users filtered by a user GPO would need their own group move)."""
    return (
        device.domain in (CORP, EMEA)
        and device.join_type == "hybrid"
        and device.tpm.present
        and not any(device.registry.key_exists(policy_mod.gpo_user_key(u.sid)) for u in device.users)
        and bool(device.users)
    )


def _start(tmp_path: Path, auth: str) -> tuple[LabRuntime, Path]:
    fleet = cooperative(generate_fleet(60, 21, parse_mix("key=50,cert=40,cloud=5,none=5")))
    for device, address in zip(fleet.devices, free_addresses(len(fleet.devices)), strict=True):
        device.address = address
    dcs = dict(zip((d.dns_name for d in fleet.domains), free_addresses(len(fleet.domains)), strict=True))
    runtime = LabRuntime(
        fleet,
        tmp_path / "lab",
        speed=3600.0,
        ports=LabPorts(http=0, https=0, ldap=0, ldaps=0),
        dc_addresses=dcs,
        gpo_refresh=True,
        kerberos=auth == "kerberos",
    )
    runtime.start()
    inventory = tmp_path / "lab" / "inventory.yaml"
    runtime.write_inventory(inventory)
    if auth != "ntlm":
        data = yaml.safe_load(inventory.read_text())
        data["defaults"]["auth"] = auth
        inventory.write_text(yaml.safe_dump(data))
    return runtime, inventory


@pytest.fixture(params=AUTHS)
def lab(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[LabRuntime, Path]]:
    # The inventory's krb5_conf puts the lab's realms first in this process's KRB5_CONFIG: restored afterwards.
    monkeypatch.setenv("KRB5_CONFIG", os.environ.get("KRB5_CONFIG", "/etc/krb5.conf"))
    runtime, inventory = _start(tmp_path, str(request.param))
    try:
        yield runtime, inventory
    finally:
        runtime.stop()


def _playbook(folder: Path) -> Path:
    """The shipped ad-group playbook naming the lab's GPO filter groups, at a lab's pace."""
    data = yaml.safe_load(builtin_path("ad-group-to-cloud-kerberos").read_text(encoding="utf-8"))
    data["policy"] = {**data["policy"], "cloud_trust_group": CLOUD_TRUST_GROUP, "cert_trust_group": HELLO_GPO_GROUP}
    data["waits"] = {**data["waits"], "recheck_every": "15m"}
    path = folder / "ad-group.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _groups(runtime: LabRuntime, device: Device) -> set[str]:
    tree = runtime.directories[str(device.domain).casefold()].tree
    entry = tree.find_account(f"{device.name}$")
    assert entry is not None
    return {str(dn).split(",", 1)[0].removeprefix("CN=") for dn in entry.get("memberOf")}


def test_an_ad_group_wave_migrates_a_mixed_fleet_and_survives_refreshes(
    lab: tuple[LabRuntime, Path], tmp_path: Path
) -> None:
    """Key trust (CORP) and certificate trust (EMEA, GPO-managed) devices end migrated in batches of 3; each
    batch is one modify per group and domain; every device stays on cloud trust through three more background
    refreshes; rollback restores the memberships the computers had."""
    runtime, inventory = lab
    secrets = inventory.parent / "lab-secrets.env"
    truth = {d["name"]: d for d in fleet_truth(runtime.lab)["devices"]}
    devices = [d for d in runtime.fleet.devices if _plain(d)]
    key = [d.name for d in devices if d.domain == CORP and truth[d.name]["policy"]["effective"] == "key"][:3]
    cert = [d.name for d in devices if d.domain == EMEA and truth[d.name]["policy"]["effective"] == "cert"][:3]
    assert len(key) == 3 and len(cert) == 3, "the seeded fleet has both kinds"
    chosen = [runtime.lab.device(n) for n in key + cert]
    before = {d.name: _groups(runtime, d) for d in chosen}
    assert all(HELLO_GPO_GROUP in before[n] for n in cert)
    store = Store.open(tmp_path / "state")
    credentials = load_credentials(secrets)
    request = WaveRequest(
        inventory=inventory,
        playbook=str(_playbook(tmp_path)),
        wave="ad-group",
        devices=tuple(key + cert),
        batch_size=3,
        concurrency=4,
        change_ticket="CHG-7",
    )
    plan = plan_wave(store, request, credentials, runtime.clock)
    result = plan.runner.run()
    states = {d.name: d.state for d in store.list_devices("ad-group")}
    assert result.state == "completed", (result.reason, states)
    assert set(states.values()) == {"migrated"}, states
    for device in chosen:
        groups = _groups(runtime, device)
        assert CLOUD_TRUST_GROUP in groups and HELLO_GPO_GROUP not in groups, device.name
    changes = store.directory_changes("ad-group")
    assert {(c.batch, c.domain, c.status) for c in changes} == {(0, CORP, "done"), (1, EMEA, "done")}
    modifies = [m["modifies"] for c in changes for m in c.outcome["changes"]]  # type: ignore[index, union-attr]
    # One modify per group and domain that had work: CORP's computers were in no certificate trust group.
    assert sorted(modifies) == [0, 1, 1, 1]
    # Several background refreshes later (90-120 virtual minutes each), GPO still says cloud trust.
    refreshes = {d.name: d.counters.gpupdates for d in chosen}
    runtime.clock.sleep(6 * 3600)
    for device in chosen:
        assert device.counters.gpupdates >= refreshes[device.name] + 2, device.name
        shown = fleet_truth(runtime.lab)
        effective = next(d for d in shown["devices"] if d["name"] == device.name)["policy"]["effective"]
        assert effective == "cloud", device.name
    # Rollback: memberships as they were before the wave, journalled and audited.
    rolled = CliRunner().invoke(
        app,
        [
            "rollback",
            "--state",
            str(tmp_path / "state"),
            "--wave",
            "ad-group",
            "--inventory",
            str(inventory),
            "--secrets",
            str(secrets),
            "--playbook",
            str(_playbook(tmp_path)),
            "--json",
        ],
    )
    assert rolled.exit_code == 0, rolled.output
    assert json.loads(rolled.stdout)["memberships"]
    assert {d.name: _groups(runtime, d) for d in chosen} == before
    assert [c.purpose for c in store.directory_changes("ad-group")][-2:] == ["rollback", "rollback"]
    assert store.verify_audit().ok


@pytest.mark.parametrize("lab", ["ntlm"], indirect=True)
def test_the_local_channel_warns_where_a_gpo_manages_the_policy(lab: tuple[LabRuntime, Path], tmp_path: Path) -> None:
    """With the local channel, preflight reads the device's Resultant Set of Policy: an EMEA device whose Hello
    values a GPO sets is named in the transition's warning (audit and log) and in the wave's list that reports
    and the status screen show; a CORP device (policy from Intune, no Hello GPO) is not."""
    runtime, inventory = lab
    truth = {d["name"]: d for d in fleet_truth(runtime.lab)["devices"]}
    devices = [d for d in runtime.fleet.devices if _plain(d)]
    emea = [d.name for d in devices if d.domain == EMEA and truth[d.name]["policy"]["effective"] == "cert"][:2]
    corp = [d.name for d in devices if d.domain == CORP and truth[d.name]["policy"]["effective"] == "key"][:1]
    store = Store.open(tmp_path / "state")
    request = WaveRequest(
        inventory=inventory, playbook="to-cloud-kerberos", wave="local", devices=tuple(emea + corp), concurrency=3
    )
    credentials = load_credentials(inventory.parent / "lab-secrets.env")
    plan = plan_wave(store, request, credentials, runtime.clock, wait_for_waiting=False)
    plan.runner.run()
    assert sorted(store.get_wave("local").settings[GPO_OVERWRITES]) == sorted(emea)  # type: ignore[arg-type]
    warned = [a for a in store.audit_entries() if a.action == "preflight_done" and a.device in emea]
    assert len(warned) == 2
    for entry in warned:
        after = entry.after
        assert isinstance(after, dict) and "is managed by GPO 'Windows Hello for Business - certificate trust'" in str(
            after["warning"]
        )
        assert after["gpo_managed"] == {  # what RSoP said the GPO sets
            "Enabled": "Windows Hello for Business - certificate trust",
            "RequireSecurityDevice": "Windows Hello for Business - certificate trust",
            "UseCertificateForOnPremAuth": "Windows Hello for Business - certificate trust",
        }
    status = CliRunner().invoke(app, ["status", "--state", str(tmp_path / "state")])
    assert "GPO-MANAGED: wave local" in " ".join(status.output.split())


@pytest.mark.parametrize("lab", ["ntlm"], indirect=True)
def test_run_refuses_a_missing_group_before_the_wave_is_written(lab: tuple[LabRuntime, Path], tmp_path: Path) -> None:
    """`migrator run` with the shipped playbook (GG-WHfB-CloudTrust, which the lab's domains do not have): exit 2,
    the group and the domain named, no wave in the store and no group changed."""
    runtime, inventory = lab
    emea = [d for d in runtime.fleet.devices if _plain(d) and d.domain == EMEA][:2]
    before = {d.name: _groups(runtime, d) for d in emea}
    state = tmp_path / "state"
    result = CliRunner().invoke(
        app,
        [
            "run",
            "-i",
            str(inventory),
            "--playbook",
            "ad-group-to-cloud-kerberos",
            "--limit",
            ",".join(d.name for d in emea),
            "--state",
            str(state),
            "--secrets",
            str(inventory.parent / "lab-secrets.env"),
            "--yes",
        ],
    )
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert f"group 'GG-WHfB-CloudTrust' does not exist in the domain {EMEA}" in said
    with Store.open(state) as store:
        assert store.list_waves() == []
    assert {d.name: _groups(runtime, d) for d in emea} == before
