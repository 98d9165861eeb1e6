"""Playbooks: the shipped ones load; bad ones fail with file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrator.playbook import builtin_names, load_playbook, parse_duration
from migrator.yamlsource import InputFileError


def test_shipped_playbooks_load() -> None:
    """The shipped playbooks validate; the default is the path-per-device one."""
    assert builtin_names() == [
        "ad-group-to-cloud-kerberos",
        "cert-trust-to-cloud-kerberos",
        "intune-group-to-cloud-kerberos",
        "key-trust-to-cloud-kerberos",
        "to-cloud-kerberos",
    ]
    intune = load_playbook("intune-group-to-cloud-kerberos").policy
    assert (intune.channel, intune.by_refresh, intune.by_group) == ("intune-group", True, True)
    groups = load_playbook("ad-group-to-cloud-kerberos").policy
    assert (groups.channel, groups.cloud_trust_group, groups.cert_trust_group, groups.by_refresh) == (
        "ad-group",
        "GG-WHfB-CloudTrust",
        "GG-WHfB-CertTrust",
        True,
    )
    assert load_playbook().path == "auto"
    cert = load_playbook("cert-trust-to-cloud-kerberos")
    assert cert.has("delete_container") and cert.waits.user_deadline == 7 * 86400
    assert not load_playbook("key-trust-to-cloud-kerberos").reset_key_trust_containers


@pytest.mark.parametrize(
    ("value", "seconds"), [(90, 90.0), ("90s", 90.0), ("15m", 900.0), ("2h", 7200.0), ("7d", 604800.0)]
)
def test_durations(value: object, seconds: float) -> None:
    """Durations accept seconds and suffixed text."""
    assert parse_duration(value) == seconds


BASE = "name: p\npath: key\nsteps: [preflight, snapshot_policy, enable_cloud_trust, confirm_policy, verify_cloud]\n"
AD_GROUP = "name: p\npath: auto\nsteps: [preflight, refresh_policy, confirm_policy, verify_cloud]\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: p\npath: key\nsteps: [preflight\n", "invalid YAML"),
        (BASE.replace("verify_cloud", "reboot_everything"), "unknown step 'reboot_everything'"),
        (BASE.replace("snapshot_policy, enable_cloud_trust", "enable_cloud_trust, snapshot_policy"), "order"),
        ("name: p\npath: cert\nsteps: [preflight, delete_container]\n", "requires 'confirm_policy'"),
        (BASE + "waits: {user_deadline: soon}\n", "line 4, column 9: waits.user_deadline"),
        (BASE + "colour: red\n", "line 4, column 1: colour: unknown field"),
        (BASE.replace("path: key", "path: sideways"), "line 2, column 1: path"),
        (BASE + "waits: {recheck_every: 0}\n", "line 4, column 9: waits.recheck_every: Input should be greater than 0"),
        (BASE + "waits:\n  user_deadline: 400d\n", "line 5, column 3: waits.user_deadline: Input should be less than"),
        # The ad-group channel needs its cloud trust group, a valid group name, refresh_policy and no registry step.
        (AD_GROUP + "policy: {channel: ad-group}\n", "needs cloud_trust_group"),
        (AD_GROUP + "policy: {channel: local, cloud_trust_group: G}\n", "only apply to the ad-group and intune"),
        # intune-group names Entra groups by object id.
        (AD_GROUP + "policy: {channel: intune-group}\n", "object id of the Entra group"),
        (AD_GROUP + "policy: {channel: intune-group, cloud_trust_group: Hello}\n", "not an Entra group object id"),
        (AD_GROUP + "policy: {channel: ad-group, cloud_trust_group: 'a/b'}\n", "policy.cloud_trust_group"),
        (AD_GROUP + "policy: {channel: ad-group, cloud_trust_group: G, cert_trust_group: g}\n", "the same group"),
        (
            AD_GROUP.replace("refresh_policy, ", "") + "policy: {channel: ad-group, cloud_trust_group: G}\n",
            "needs 'refresh_policy'",
        ),
        (
            "name: p\npath: key\nsteps: [preflight, snapshot_policy, enable_cloud_trust, refresh_policy, "
            "confirm_policy]\npolicy: {channel: ad-group, cloud_trust_group: G}\n",
            "leave out 'disable_cert_trust' and 'enable_cloud_trust'",
        ),
    ],
)
def test_bad_playbooks_name_what_and_where(tmp_path: Path, text: str, expected: str) -> None:
    """Broken YAML, unknown or misordered steps, missing safety steps, bad values: clear errors."""
    path = tmp_path / "playbook.yaml"
    path.write_text(text)
    with pytest.raises(InputFileError) as info:
        load_playbook(path)
    assert str(path) in str(info.value) and expected in str(info.value)


def test_unknown_builtin_name() -> None:
    """A playbook name that is neither a file nor shipped lists the shipped ones."""
    with pytest.raises(InputFileError, match="shipped ones"):
        load_playbook("no-such-playbook")


def test_ad_group_names_a_group_by_sam_or_dn(tmp_path: Path) -> None:
    """A group is a sAMAccountName or a DN; the certificate trust group is optional (key trust only waves)."""
    path = tmp_path / "playbook.yaml"
    dn = "CN=WHfB Cloud,OU=Groups,DC=corp,DC=contoso,DC=com"
    path.write_text(AD_GROUP + f"policy: {{channel: ad-group, cloud_trust_group: '{dn}'}}\n")
    policy = load_playbook(path).policy
    assert policy.cloud_trust_group == dn and policy.cert_trust_group is None
