"""Effective Hello policy: GPO over MDM, user over computer, certificate trust over cloud trust."""

from __future__ import annotations

from migrator.lab import policy
from migrator.lab.registry import Registry

TENANT = "8e2a1b4c-3f5d-4e6a-9b7c-1d2e3f4a5b6c"
SID = "S-1-5-21-1-2-3-1101"


def _gpo(reg: Registry, **values: int) -> None:
    for name, value in values.items():
        reg.set_value(policy.GPO_KEY, name, value, "REG_DWORD")


def _mdm(reg: Registry, **values: int) -> None:
    for name, value in values.items():
        reg.set_value(policy.mdm_device_key(TENANT), name, value, "REG_DWORD")


def test_no_policy_is_none() -> None:
    """Without any WHfB policy Hello is not enabled."""
    view = policy.evaluate(Registry(), TENANT)
    assert view.effective == "none" and view.source == "none"


def test_enabled_alone_is_key_trust() -> None:
    """Hello enabled with neither trust policy defaults to key trust."""
    reg = Registry()
    _gpo(reg, Enabled=1)
    assert policy.evaluate(reg, TENANT).effective == "key"


def test_certificate_trust_wins_over_cloud_trust() -> None:
    """UseCertificateForOnPremAuth takes precedence over UseCloudTrustForOnPremAuth."""
    reg = Registry()
    _gpo(reg, Enabled=1, UseCertificateForOnPremAuth=1, UseCloudTrustForOnPremAuth=1)
    view = policy.evaluate(reg, TENANT)
    assert view.effective == "cert"
    assert any("wins" in note for note in view.notes)


def test_gpo_wins_over_mdm() -> None:
    """When Group Policy configures Hello, MDM values are ignored."""
    reg = Registry()
    _gpo(reg, Enabled=1)
    _mdm(reg, UsePassportForWork=1, UseCloudTrustForOnPremAuth=1)
    view = policy.evaluate(reg, TENANT)
    assert view.source == "gpo" and view.effective == "key"


def test_mdm_applies_without_gpo() -> None:
    """MDM PassportForWork values apply when no GPO configures Hello."""
    reg = Registry()
    _mdm(reg, UsePassportForWork=1, UseCloudTrustForOnPremAuth=1)
    view = policy.evaluate(reg, TENANT)
    assert view.source == "mdm" and view.effective == "cloud"
    assert policy.evaluate(reg, None).effective == "none"  # not MDM enrolled: the tenant key is not read


def test_user_scope_cert_policy_overrides_computer() -> None:
    """A user-scope GPO value overrides the computer value for that user only."""
    reg = Registry()
    _gpo(reg, Enabled=1, UseCloudTrustForOnPremAuth=1)
    reg.set_value(policy.gpo_user_key(SID), "UseCertificateForOnPremAuth", 1, "REG_DWORD")
    assert policy.evaluate(reg, TENANT, SID).effective == "cert"
    assert policy.evaluate(reg, TENANT).effective == "cloud"


def test_cloud_trust_is_computer_only() -> None:
    """UseCloudTrustForOnPremAuth in the user hive is not read."""
    reg = Registry()
    _gpo(reg, Enabled=1)
    reg.set_value(policy.gpo_user_key(SID), "UseCloudTrustForOnPremAuth", 1, "REG_DWORD")
    assert policy.evaluate(reg, TENANT, SID).effective == "key"


def test_cert_policy_in_ignored_mdm_is_still_reported() -> None:
    """A certificate-trust value anywhere is visible to the point-of-no-return guard, even where ignored."""
    reg = Registry()
    _gpo(reg, Enabled=1, UseCloudTrustForOnPremAuth=1)
    _mdm(reg, UsePassportForWork=1, UseCertificateForOnPremAuth=1)
    view = policy.evaluate(reg, TENANT)
    assert view.effective == "cloud" and view.cert_trust_any_source
