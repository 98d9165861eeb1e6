"""Effective Hello policy precedence and the migration path decision."""

from __future__ import annotations

import pytest

from migrator.errors import ProtocolError
from migrator.facts import (
    DcFacts,
    DeviceFacts,
    OsFacts,
    PathSettings,
    TpmFacts,
    UserFacts,
    evaluate_policy,
    path,
    supports_cloud_trust,
)
from migrator.steps import PolicyWrite, PromptUser, RefreshPolicy, RestorePolicy, SetPolicy, SnapshotPolicy
from migrator.steps.set_policy import read_value

T = "11111111-2222-3333-4444-555555555555"
SID = "S-1-5-21-1-2-3-1001"


def test_build_support_thresholds() -> None:
    """19044.1566, 19045.*, 22000.527 and 22621+ support cloud Kerberos trust; older builds do not."""
    assert supports_cloud_trust(19044, 1566) and not supports_cloud_trust(19044, 1565)
    assert supports_cloud_trust(19045, 0) and supports_cloud_trust(22000, 527)
    assert not supports_cloud_trust(22000, 526) and not supports_cloud_trust(19043, 9999)
    assert supports_cloud_trust(22621, 1) and supports_cloud_trust(26100, 0)
    assert supports_cloud_trust(None, None) is None and supports_cloud_trust(19044, None) is None


def test_gpo_wins_over_mdm() -> None:
    """When Group Policy configures Hello, MDM cloud trust is ignored."""
    facts = evaluate_policy(
        {"Enabled": 1}, {}, [(T, "Device", {"UsePassportForWork": 1, "UseCloudTrustForOnPremAuth": 1})]
    )
    assert facts.source == "gpo" and facts.effective == "key" and facts.notes


def test_cert_wins_over_cloud_and_is_seen_anywhere() -> None:
    """UseCertificateForOnPremAuth beats cloud trust; a cert value in an ignored source is still flagged."""
    both = evaluate_policy({"Enabled": 1, "UseCertificateForOnPremAuth": 1, "UseCloudTrustForOnPremAuth": 1}, {}, [])
    assert both.effective == "cert"
    ignored = evaluate_policy(
        {"Enabled": 1}, {}, [(T, "Device", {"UsePassportForWork": 1, "UseCertificateForOnPremAuth": 1})]
    )
    assert ignored.effective == "key" and ignored.cert_trust_any_source


def test_user_policy_overrides_computer_except_cloud_trust() -> None:
    """A user-scope cert value makes that user cert; a user-scope cloud value is not read."""
    facts = evaluate_policy(
        {"Enabled": 1, "UseCloudTrustForOnPremAuth": 1},
        {SID: {"UseCertificateForOnPremAuth": 1}, "S-1-5-21-9": {"UseCloudTrustForOnPremAuth": 0}},
        [],
        user_sids=[SID, "S-1-5-21-9"],
    )
    assert facts.effective == "cloud"
    assert facts.user_effective == {SID: "cert", "S-1-5-21-9": "cloud"}


def test_mdm_of_another_tenant_is_not_read() -> None:
    """With the device's tenant known, a stale tenant key does not count."""
    facts = evaluate_policy({}, {}, [("other", "Device", {"UsePassportForWork": 1})], tenant_id=T)
    assert facts.effective == "none" and facts.source == "none"


def _device(**updates: object) -> DeviceFacts:
    base = DeviceFacts(
        name="PC-1",
        join_type="hybrid",
        azure_ad_joined=True,
        domain_joined=True,
        domain="corp.contoso.com",
        os=OsFacts(build=19045, ubr=5011),
        tpm=TpmFacts(present=True, ready=True),
        policy=evaluate_policy({"Enabled": 1, "RequireSecurityDevice": 1}, {}, []),
        users=(UserFacts(sid=SID, name="CORP\\alice", signed_in=True, has_hello=True, policy="key"),),
        dc=DcFacts(domain="corp.contoso.com", checked=True, reachable=True),
    )
    return base.model_copy(update=updates)


def test_path_key_with_entra_kerberos_confirmed() -> None:
    """A healthy key trust device with Entra Kerberos confirmed: key, no reasons."""
    decision = path(_device(), PathSettings(entra_kerberos={"CORP.CONTOSO.COM": True}))
    assert decision.path == "key" and decision.reasons == ()


def test_path_unknown_entra_kerberos_is_a_warning() -> None:
    """Without a per-domain setting the device stays eligible, with a warning."""
    decision = path(_device())
    assert decision.path == "key" and "not confirmed" in decision.reasons[0]


def test_path_ineligible_reasons() -> None:
    """No Entra Kerberos, no TPM with RequireSecurityDevice, or an old build make a device ineligible."""
    settings = PathSettings(entra_kerberos={"corp.contoso.com": False})
    assert path(_device(), settings).path == "ineligible"
    no_tpm = path(_device(tpm=TpmFacts(present=False, ready=False)))
    assert no_tpm.path == "ineligible" and "TPM" in no_tpm.reasons[0]
    old = path(_device(os=OsFacts(build=19044, ubr=1288)))
    assert old.path == "ineligible" and "19044.1288" in old.reasons[0]


def test_path_no_dc_is_a_warning_for_hybrid() -> None:
    """A hybrid device without DC line of sight is eligible but warned about the first sign-in."""
    decision = path(_device(dc=DcFacts(domain="corp.contoso.com", checked=True, reachable=False)))
    assert decision.path == "key" and any("domain controller" in r for r in decision.reasons)


def test_action_step_parameters_and_reading() -> None:
    """Policy and session steps send values only and read their answers."""
    writes = (PolicyWrite("HKLM:\\X", "Enabled", remove=True), PolicyWrite("HKLM:\\X", "Enabled", 1))
    assert SetPolicy(writes[:1]).parameters() == {
        "Values": [{"path": "HKLM:\\X", "name": "Enabled", "type": "DWord", "remove": True}]
    }
    assert [PolicyWrite.from_record(r) for r in SetPolicy(writes).parameters()["Values"]] == list(writes)
    (change,) = SetPolicy(writes[1:]).read(
        "PC",
        {
            "changes": {
                "previous": {"path": "HKLM:\\X", "name": "Enabled", "existed": False},
                "current": {"path": "HKLM:\\X", "name": "Enabled", "existed": True, "type": "DWord", "data": 1},
                "changed": True,
            }
        },
    )
    assert change.changed and change.current.data == 1 and not change.previous.existed
    with pytest.raises(ProtocolError):
        SetPolicy(writes).read("PC", {"changes": []})
    records = SnapshotPolicy((("HKLM:\\X", "Enabled"),)).read(
        "PC", {"records": {"path": "HKLM:\\X", "name": "Enabled", "existed": False}}
    )
    assert records == (read_value({"path": "HKLM:\\X", "name": "Enabled", "existed": False}),)
    assert RestorePolicy(records).parameters()["Records"][0]["existed"] is False
    prompt = PromptUser(3, "text").read("PC", {"session_id": 3, "seconds": 300, "exit_code": 0, "text": ""})
    assert prompt.delivered
    refresh = RefreshPolicy().read(
        "PC", {"text": "Updating policy...\r\n\r\nComputer Policy update has completed successfully.", "exit_code": 0}
    )
    assert refresh.succeeded and refresh.computer_policy_completed
