"""set_policy / snapshot_policy / restore_policy in the lab: previous values returned, restore is exact."""

from __future__ import annotations

from migrator.lab import policy
from migrator.lab.windows import Lab
from tests.scripts.conftest import run_on

GPO = "HKLM:\\SOFTWARE\\Policies\\Microsoft\\PassportForWork"


def one(record: dict[str, object]) -> dict[str, object]:
    """set_policy's parameters for one value (the script takes the plan as a list)."""
    return {"Values": [record]}


def test_set_returns_previous_value_and_is_idempotent(lab: Lab) -> None:
    """Setting a new value reports it did not exist; setting it again changes nothing."""
    device = lab.fleet.devices[0]
    device.registry.delete_value(policy.GPO_KEY, policy.CLOUD_TRUST)
    params = one({"path": GPO, "name": policy.CLOUD_TRUST, "value": 1, "type": "DWord"})
    first = run_on(lab, device, "set_policy", params)
    assert first.data is not None
    change = first.data["changes"][0]
    assert change["previous"]["existed"] is False and change["changed"] is True
    assert change["current"] == {
        "path": GPO,
        "name": policy.CLOUD_TRUST,
        "existed": True,
        "type": "DWord",
        "data": 1,
    }
    assert device.registry.get_value(policy.GPO_KEY, policy.CLOUD_TRUST).data == 1  # type: ignore[union-attr]
    again = run_on(lab, device, "set_policy", params)
    assert again.data is not None and again.data["changes"][0]["changed"] is False


def test_remove_then_restore_brings_the_value_back(lab: Lab) -> None:
    """Removing a value returns it; restore_policy with that record writes it back with its type."""
    device = lab.fleet.devices[0]
    device.registry.set_value(policy.GPO_KEY, policy.CERT_TRUST, 1, "REG_DWORD")
    removed = run_on(lab, device, "set_policy", one({"path": GPO, "name": policy.CERT_TRUST, "remove": True}))
    assert removed.data is not None and removed.data["changes"][0]["previous"]["existed"] is True
    assert device.registry.get_value(policy.GPO_KEY, policy.CERT_TRUST) is None
    restored = run_on(lab, device, "restore_policy", {"Records": [removed.data["changes"][0]["previous"]]})
    assert restored.data is not None and restored.data["restored"][0]["action"] == "set"
    value = device.registry.get_value(policy.GPO_KEY, policy.CERT_TRUST)
    assert value is not None and value.data == 1 and value.type == "REG_DWORD"


def test_snapshot_and_restore_remove_values_that_did_not_exist(lab: Lab) -> None:
    """A snapshot of an absent value restores to absent; restoring twice is a no-op."""
    device = lab.fleet.devices[1]
    device.registry.delete_value(policy.GPO_KEY, policy.CLOUD_TRUST)
    snap = run_on(lab, device, "snapshot_policy", {"Entries": [{"path": GPO, "name": policy.CLOUD_TRUST}]})
    assert snap.data is not None and snap.data["records"][0]["existed"] is False
    run_on(lab, device, "set_policy", one({"path": GPO, "name": policy.CLOUD_TRUST, "value": 1}))
    restored = run_on(lab, device, "restore_policy", {"Records": snap.data["records"]})
    assert restored.data is not None and restored.data["restored"][0]["action"] == "removed"
    assert device.registry.get_value(policy.GPO_KEY, policy.CLOUD_TRUST) is None
    twice = run_on(lab, device, "restore_policy", {"Records": snap.data["records"]})
    assert twice.data is not None and twice.data["restored"][0]["action"] == "unchanged"


def test_keys_outside_the_hello_policy_keys_are_refused(lab: Lab) -> None:
    """set_policy writes nothing outside the PassportForWork policy keys."""
    device = lab.fleet.devices[0]
    target = "HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run"
    run = run_on(
        lab, device, "set_policy", one({"path": target, "name": "evil", "value": "calc.exe", "type": "String"})
    )
    assert run.result.terminating_error is not None and run.data is None
    assert device.registry.get_value("HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run", "evil") is None
    sneaky = run_on(lab, device, "set_policy", one({"path": GPO + "\\..\\..\\Run", "name": "evil", "value": 1}))
    assert sneaky.result.terminating_error is not None


def test_the_whole_plan_in_one_call_and_a_refused_value_writes_nothing(lab: Lab) -> None:
    """Several values in one call, in order, each with its previous value; one refused location refuses the list
    before anything is written."""
    device = lab.fleet.devices[0]
    device.registry.set_value(policy.GPO_KEY, policy.CERT_TRUST, 1, "REG_DWORD")
    device.registry.delete_value(policy.GPO_KEY, policy.CLOUD_TRUST)
    plan = [
        {"path": GPO, "name": policy.CERT_TRUST, "remove": True},
        {"path": GPO, "name": policy.CLOUD_TRUST, "value": 1},
    ]
    run = run_on(lab, device, "set_policy", {"Values": plan})
    assert run.data is not None, run.result.terminating_error
    changes = run.data["changes"]
    assert [c["current"]["name"] for c in changes] == [policy.CERT_TRUST, policy.CLOUD_TRUST]
    assert [c["previous"]["existed"] for c in changes] == [True, False] and all(c["changed"] for c in changes)
    assert device.registry.get_value(policy.GPO_KEY, policy.CERT_TRUST) is None
    device.registry.set_value(policy.GPO_KEY, policy.CERT_TRUST, 1, "REG_DWORD")
    bad = [plan[0], {"path": "HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run", "name": "evil", "value": 1}]
    refused = run_on(lab, device, "set_policy", {"Values": bad})
    assert refused.result.terminating_error is not None
    assert device.registry.get_value(policy.GPO_KEY, policy.CERT_TRUST) is not None  # the first value too


def test_a_snapshot_with_a_scoped_name_reads_it_in_every_existing_user_and_mdm_scope(lab: Lab) -> None:
    """ScopedName: the value in the Group Policy key of every profile and every MDM scope that exists, besides the
    entries asked for: what a policy plan may write, before the plan is known."""
    device = lab.fleet.devices[0]
    tenant = "11111111-2222-3333-4444-555555555555"
    mdm = f"HKLM\\SOFTWARE\\Microsoft\\Policies\\PassportForWork\\{tenant}\\Device\\Policies"
    device.registry.set_value(mdm, policy.CERT_TRUST, 1, "REG_DWORD")
    run = run_on(
        lab,
        device,
        "snapshot_policy",
        {"Entries": [{"path": GPO, "name": policy.CLOUD_TRUST}], "ScopedName": "UseCertificateForOnPremAuth"},
    )
    assert run.data is not None, run.result.terminating_error
    records = run.data["records"]
    assert records[0]["path"] == GPO and records[0]["name"] == policy.CLOUD_TRUST
    found = {(r["path"].casefold(), r["name"]): r for r in records[1:]}
    key = ("hklm:\\software\\microsoft\\policies\\passportforwork\\" + tenant + "\\device\\policies", policy.CERT_TRUST)
    assert key in found and found[key]["existed"] is True and found[key]["data"] == 1
    assert all(r["name"] == policy.CERT_TRUST for r in records[1:])
