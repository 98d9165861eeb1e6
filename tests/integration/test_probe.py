"""migrator probe against the lab through both transports: facts match the lab's truth."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from migrator.cli import app
from migrator.cli.probe import probe_devices
from migrator.facts import PathSettings
from migrator.lab.truth import fleet_truth
from migrator.remote import open_transport
from migrator.steps import CollectFacts, run_step
from tests.integration.conftest import FAST_RETRY, LabHandle

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

EXPECTED_PATH = {"cert": "cert", "cloud": "cloud", "key": "key", "none": "key"}


def _settings(lab: LabHandle) -> PathSettings:
    known: dict[str, bool] = {}
    for domain in lab.runtime.fleet.domains:
        known[domain.dns_name] = known[domain.netbios] = domain.entra_kerberos
    return PathSettings(entra_kerberos=known)


@pytest.mark.parametrize("transport", ["psrp", "winrm"])
def test_facts_and_paths_match_the_lab_truth(lab: LabHandle, transport: str) -> None:
    """Every device of a mixed fleet: join, build, policy, users, sessions, Hello and DC as the lab says."""

    def factory(entry, connection, credentials):  # type: ignore[no-untyped-def]
        return open_transport(entry, connection.model_copy(update={"transport": transport}), credentials)

    outcomes = probe_devices(
        lab.inventory,
        lab.inventory.devices,
        lab.credentials,
        _settings(lab),
        concurrency=8,
        retry=FAST_RETRY,
        transport_factory=factory,
    )
    truth = {d["name"]: d for d in fleet_truth(lab.runtime.lab)["devices"]}
    assert [o.error for o in outcomes] == [None] * len(outcomes)
    for outcome in outcomes:
        facts, expected = outcome.facts, truth[outcome.name]
        assert facts is not None
        assert facts.join_type == expected["join_type"], outcome.name
        assert facts.os.full_build == expected["os_build"]
        assert facts.supports_cloud_trust == expected["supports_cloud_trust"]
        assert facts.tpm.usable == expected["tpm"]
        assert facts.policy.effective == expected["policy"]["effective"]
        assert facts.policy.source == expected["policy"]["source"]
        assert facts.policy.gpo_relevant() == expected["policy"]["gpo"]
        assert facts.cert_trust_any_source == expected["policy"]["cert_trust_any_source"]
        if facts.dc.checked:
            assert facts.dc.reachable == expected["dc_reachable"], outcome.name
        users = {u["sid"]: u for u in expected["users"]}
        assert {u.sid for u in facts.users} == set(users)
        for user in facts.users:
            assert user.signed_in == users[user.sid]["signed_in"]
            assert user.has_hello == (users[user.sid]["container"] is not None)
            assert user.policy == users[user.sid]["policy"]
        blocked = (
            expected["join_type"] not in ("hybrid", "entra")
            or not expected["supports_cloud_trust"]
            or not expected["entra_kerberos"]
        )
        if blocked:
            assert outcome.path == "ineligible", (outcome.name, outcome.reasons)
        elif expected["tpm"]:
            assert outcome.path == EXPECTED_PATH[expected["policy"]["effective"]], (outcome.name, outcome.reasons)
    kinds = {(t["join_type"], t["policy"]["effective"]) for t in truth.values()}
    assert {j for j, _ in kinds} == {"hybrid", "entra", "domain", "workgroup"}
    assert {e for _, e in kinds} == {"key", "cert", "cloud", "none"}
    assert any(o.path == "ineligible" and any("Entra Kerberos" in r for r in o.reasons) for o in outcomes)


@pytest.mark.parametrize("transport", ["psrp", "winrm"])
def test_http_with_message_encryption(lab: LabHandle, transport: str) -> None:
    """Over plain HTTP, NTLM seals every message (MS-WSMV 2.2.9.1) and the facts still come back."""
    name = lab.runtime.fleet.devices[0].name
    connection = lab.connection(name, transport=transport, scheme="http", port=lab.http_port)
    transport_ = open_transport(lab.entry(name), connection, lab.credentials)
    try:
        facts = run_step(transport_, CollectFacts(), policy=FAST_RETRY)
    finally:
        transport_.close()
    assert facts.computer_name == name.upper() and facts.join_type != "unknown"


def test_probe_command_json_and_unreachable_device(faults: LabHandle) -> None:
    """--json lists each device with path, reasons and facts; an offline device has its error class, exit 1."""
    lab = faults
    names = [d.name for d in lab.runtime.fleet.devices[:3]]
    lab.runtime.server.faults.add(kind="offline", devices=[names[2]])
    secrets = lab.inventory.path.parent / "lab-secrets.env"
    result = CliRunner().invoke(
        app,
        [
            "probe",
            "-i",
            str(lab.inventory.path),
            "--limit",
            ",".join(names),
            "--json",
            "--secrets",
            str(secrets),
            "--entra-kerberos",
            "corp.contoso.com=yes",
        ],
    )
    assert result.exit_code == 1, result.output
    payload = json.loads(result.stdout)
    devices = {d["name"]: d for d in payload["devices"]}
    assert list(devices) == names
    for name in names[:2]:
        assert devices[name]["error"] is None and devices[name]["facts"]["name"] == name
        assert devices[name]["path"] in ("key", "cert", "cloud", "ineligible")
    offline = devices[names[2]]
    assert offline["error"]["class"] == "DeviceUnreachable" and offline["facts"] is None
    assert offline["path"] == "ineligible" and "Traceback" not in result.output


def test_probe_command_bad_input_is_exit_2(lab: LabHandle) -> None:
    """An unknown --limit name is bad input: exit code 2 and a message naming it."""
    secrets = lab.inventory.path.parent / "lab-secrets.env"
    result = CliRunner().invoke(
        app, ["probe", "-i", str(lab.inventory.path), "--limit", "NO-SUCH-PC", "--secrets", str(secrets)]
    )
    assert result.exit_code == 2 and "NO-SUCH-PC" in result.output
