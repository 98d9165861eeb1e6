"""Reading collect_facts JSON (captured from the lab) into DeviceFacts, and PowerShell's JSON quirks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from migrator.errors import ProtocolError
from migrator.facts import path
from migrator.lab.truth import device_truth
from migrator.steps import CollectFacts
from migrator.steps.collect_facts import read_facts
from tests.scripts.conftest import make_lab, run_on

DATA = Path(__file__).parent / "data"


def _load(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"collect_facts_{name}.json").read_text())  # type: ignore[no-any-return]


def test_hybrid_cert_device() -> None:
    """A hybrid joined device under certificate trust GPO: cert path, its user signed in with Hello."""
    facts = CollectFacts().read("PC-0002", _load("hybrid_cert"))
    assert facts.join_type == "hybrid" and facts.domain == "emea.corp.contoso.com"
    assert facts.os.full_build == "19045.6456" and facts.supports_cloud_trust is True
    assert facts.policy.source == "gpo" and facts.policy.effective == "cert"
    assert facts.tpm.usable is True and facts.dc.reachable is True and facts.dc.keylist is True
    [user] = facts.users
    assert user.name == "EMEA\\lnowak" and user.signed_in and user.has_hello
    assert user.session is not None and user.session.kind == "console" and user.session.state == "Active"
    assert facts.caller == "lab\\migrator-admin" and facts.problems == ()
    assert path(facts).path == "cert"


def test_entra_joined_old_build_is_ineligible() -> None:
    """An Entra joined device on 19042 cannot run cloud Kerberos trust; no nltest for it."""
    facts = read_facts("PC-0005", _load("entra"))
    assert facts.join_type == "entra" and facts.domain is None and not facts.dc.checked
    assert facts.supports_cloud_trust is False
    decision = path(facts)
    assert decision.path == "ineligible" and any("19042.2965" in r for r in decision.reasons)
    assert facts.entra_kerberos.domains == ("CORP",)


def test_domain_joined_only_is_ineligible() -> None:
    """A device that is only AD joined has no Entra join: ineligible, with the join type in the reason."""
    facts = read_facts("PC-0036", _load("not_joined"))
    assert facts.join_type == "domain"
    decision = path(facts)
    assert decision.path == "ineligible" and "join type domain" in decision.reasons[0]


def test_cloud_device_is_already_done() -> None:
    """A device whose effective policy is cloud Kerberos trust takes the (empty) cloud path."""
    facts = read_facts("PC-0004", _load("hybrid_cloud"))
    assert facts.policy.effective == "cloud" and facts.policy.source == "mdm"
    assert path(facts).path == "cloud"


def test_unrolled_arrays_and_missing_parts_are_tolerated() -> None:
    """PowerShell may unroll a one-item array or give null: the reader accepts both; problems are kept."""
    data = _load("hybrid_cert")
    data["profiles"] = data["profiles"][0]
    data["ngc_sids"] = data["ngc_sids"][0]
    data["events"] = None
    data["tpm"] = {"present": None, "ready": None, "error": "Access denied."}
    data["problems"] = {"where": "Win32_UserProfile", "message": "RPC server unavailable"}
    facts = read_facts("PC-0002", data)
    assert len(facts.users) == 1 and facts.users[0].has_hello
    assert facts.tpm.usable is None and facts.problems == ("Win32_UserProfile: RPC server unavailable",)
    assert any("TPM state unknown" in r for r in path(facts).reasons)


def test_the_connecting_admin_is_not_a_device_user() -> None:
    """The admin's own profile (the caller's SID) is left out of the users."""
    data = _load("hybrid_cert")
    admin_sid = data["caller"]["sid"]
    data["profiles"].append({"sid": admin_sid, "profile_path": "C:\\Users\\migrator-admin", "sessions": []})
    assert [u.sid for u in read_facts("PC-0002", data).users] == [p["sid"] for p in data["profiles"][:-1]]


def test_users_who_are_not_signed_in_keep_their_domain() -> None:
    """A user without a Volatile Environment (not signed in) is named DOMAIN\\user: from LogonUI when they signed
    in last, else from another account of the same domain SID (a profile folder 'name.DOMAIN' is the name)."""
    data = _load("hybrid_cert")
    emea = "S-1-5-21-2376503845-224576495-3709267711"
    data["profiles"] += [
        {"sid": f"{emea}-1200", "profile_path": "C:\\Users\\fhaddad", "sessions": []},
        {"sid": f"{emea}-1201", "profile_path": "C:\\Users\\jdoe.EMEA", "sessions": []},
        {"sid": "S-1-5-21-1-2-3-1300", "profile_path": "C:\\Users\\mchen", "sessions": []},
        {"sid": "S-1-5-21-9-9-9-1400", "profile_path": "C:\\Users\\someone", "sessions": []},
    ]
    data["last_logged_on"] = {"sam_user": "FABRIKAM\\mchen", "sid": "S-1-5-21-1-2-3-1300"}
    names = {u.sid: u.name for u in read_facts("PC-0002", data).users}
    assert names[f"{emea}-1104"] == "EMEA\\lnowak"  # signed in: its Volatile Environment
    assert names[f"{emea}-1200"] == "EMEA\\fhaddad"  # same domain SID as lnowak
    assert names[f"{emea}-1201"] == "EMEA\\jdoe"  # the folder's '.EMEA' is Windows' clash suffix
    assert names["S-1-5-21-1-2-3-1300"] == "FABRIKAM\\mchen"  # LogonUI: signed in last
    assert names["S-1-5-21-9-9-9-1400"] == "someone"  # no evidence of its domain: the folder, as before


def test_unknown_schema_is_a_protocol_error() -> None:
    """JSON that is not collect_facts' answer is refused, naming the device."""
    with pytest.raises(ProtocolError, match="PC-9"):
        read_facts("PC-9", {"hello": 1})


def test_facts_match_the_lab_truth_for_a_generated_fleet() -> None:
    """In-process, for every device of a mixed fleet: join, build, policy, TPM, users and sessions match."""
    lab = make_lab(30, 11)
    for device in lab.fleet.devices:
        run = run_on(lab, device, "collect_facts")
        assert run.data is not None
        facts = read_facts(device.name, run.data)
        truth = device_truth(lab, device)
        assert facts.join_type == truth["join_type"]
        assert facts.os.full_build == truth["os_build"]
        assert facts.supports_cloud_trust == truth["supports_cloud_trust"]
        assert facts.tpm.usable == truth["tpm"]
        assert facts.policy.effective == truth["policy"]["effective"]
        assert facts.policy.source == truth["policy"]["source"]
        assert facts.policy.gpo_relevant() == truth["policy"]["gpo"]
        assert facts.cert_trust_any_source == truth["policy"]["cert_trust_any_source"]
        by_sid = {u["sid"]: u for u in truth["users"]}
        assert {u.sid for u in facts.users} == set(by_sid)
        for user in facts.users:
            expected = by_sid[user.sid]
            assert user.name == expected["name"]  # DOMAIN\\user, signed in or not
            assert user.signed_in == expected["signed_in"]
            assert user.has_hello == (expected["container"] is not None)
            assert user.policy == expected["policy"]
            if expected["session"] is not None:
                assert user.session is not None and user.session.id == expected["session"]["id"]
                assert user.session.state == expected["session"]["state"]
        if facts.dc.checked:
            assert facts.dc.reachable == truth["dc_reachable"]
