"""Tests of the seeded fleet generator (migrator.lab.fleet)."""

from __future__ import annotations

import ipaddress
from collections import Counter
from datetime import UTC, datetime

import pytest

from migrator.lab import policy
from migrator.lab.clock import VirtualClock
from migrator.lab.fleet import (
    CURRENT_VERSION_KEY,
    DEFAULT_MIX,
    JOIN_INFO_KEY,
    MAX_DEVICES,
    NETLOGON_PARAMETERS_KEY,
    PROFILE_LIST_KEY,
    Mix,
    MixError,
    device_address,
    effective_trust,
    generate_fleet,
    looks_eligible,
    summarize,
)
from migrator.lab.fleetfile import dumps_fleet
from migrator.lab.model import Fleet
from migrator.lab.runtime import new_lab

MIX = Mix.parse(DEFAULT_MIX)


@pytest.fixture(scope="module")
def fleet200() -> Fleet:
    return generate_fleet(200, 7, MIX)


def _trust_group(device_groups: list[str]) -> str:
    return next(g.removeprefix("trust-") for g in device_groups if g.startswith("trust-"))


# ---- Mix -------------------------------------------------------------------------------------------------


def test_mix_parses_the_documented_form() -> None:
    """The default mix text parses to its four percentages and prints back the same."""
    mix = Mix.parse(" key=50, cert=40,cloud=5 ,none=5")
    assert (mix.key, mix.cert, mix.cloud, mix.none) == (50, 40, 5, 5)
    assert str(mix) == DEFAULT_MIX


def test_mix_omitted_models_count_zero() -> None:
    """A model left out of the mix gets no devices."""
    assert Mix.parse("cert=100").as_dict() == {"key": 0, "cert": 100, "cloud": 0, "none": 0}


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("keys=50,cert=50", "'keys'"),
        ("key=50,cert=-10,cloud=60", "cert=-10"),
        ("key=50.5,cert=49.5", "key=50.5"),
        ("key=50,cert=40", "sum to 100, got 90"),
        ("key=50,key=50", "'key' given twice"),
        ("key50", "'key50'"),
        ("", "empty"),
        ("key=abc,cert=100", "key=abc"),
    ],
)
def test_mix_errors_name_the_bad_part(text: str, names: str) -> None:
    """Each malformed mix is refused with a message quoting the offending part."""
    with pytest.raises(MixError, match=None) as caught:
        Mix.parse(text)
    assert names in str(caught.value)


def test_mix_counts_use_largest_remainder() -> None:
    """Counts are exact: floors first, then the largest fractional parts get the leftover devices."""
    assert MIX.counts(7) == {"key": 4, "cert": 3, "cloud": 0, "none": 0}
    assert MIX.counts(1000) == {"key": 500, "cert": 400, "cloud": 50, "none": 50}
    assert Mix(key=34, cert=33, cloud=33).counts(10) == {"key": 4, "cert": 3, "cloud": 3, "none": 0}
    assert sum(Mix(key=1, cert=1, cloud=1, none=97).counts(3).values()) == 3


@pytest.mark.parametrize("devices", [7, 23, 200])
def test_fleet_trust_counts_match_the_mix(devices: int) -> None:
    """The devices of each trust model (by inventory group and by registry policy) number exactly the mix counts."""
    mix = Mix(key=45, cert=35, cloud=12, none=8)
    fleet = generate_fleet(devices, 3, mix)
    by_group = Counter(_trust_group(d.groups) for d in fleet.devices)
    by_policy = Counter(effective_trust(fleet, d) for d in fleet.devices)
    expected = {k: v for k, v in mix.counts(devices).items() if v}
    assert dict(by_group) == expected
    assert dict(by_policy) == expected


# ---- determinism -----------------------------------------------------------------------------------------


def test_same_seed_gives_identical_json() -> None:
    """Two generations with the same arguments serialise to the same bytes."""
    assert dumps_fleet(generate_fleet(120, 11, MIX), "json") == dumps_fleet(generate_fleet(120, 11, MIX), "json")


def test_different_seed_gives_a_different_fleet() -> None:
    """Another seed changes the fleet."""
    assert dumps_fleet(generate_fleet(120, 11, MIX), "json") != dumps_fleet(generate_fleet(120, 12, MIX), "json")


def test_start_defaults_to_a_fixed_time_and_can_be_given() -> None:
    """Without ``start`` the fleet begins at a fixed virtual time, never the wall clock."""
    assert generate_fleet(5, 1, MIX).created == datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    start = datetime(2027, 3, 1, 9, 30, tzinfo=UTC)
    fleet = generate_fleet(5, 1, MIX, start=start)
    assert fleet.created == fleet.clock == start


@pytest.mark.parametrize("devices", [0, -1, MAX_DEVICES + 1])
def test_device_count_is_bounded(devices: int) -> None:
    """Device counts outside 1..60,000 are refused."""
    with pytest.raises(ValueError, match="devices must be between"):
        generate_fleet(devices, 1, MIX)


def test_naive_start_is_refused() -> None:
    """A start time without a timezone is ambiguous and refused."""
    with pytest.raises(ValueError, match="timezone"):
        generate_fleet(5, 1, MIX, start=datetime(2026, 1, 1))


# ---- addresses and identities ------------------------------------------------------------------------------


def test_addresses_run_from_127_20_0_1() -> None:
    """Device 1 is 127.20.0.1, device 1,000 is 127.20.3.232, and 60,000 devices stay unique inside 127/8."""
    assert device_address(0) == "127.20.0.1"
    assert device_address(999) == "127.20.3.232"
    every = {device_address(i) for i in range(MAX_DEVICES)}
    assert len(every) == MAX_DEVICES
    assert "127.0.0.1" not in every
    assert all(ipaddress.ip_address(a) in ipaddress.ip_network("127.0.0.0/8") for a in every)
    with pytest.raises(ValueError, match="outside"):
        device_address(MAX_DEVICES)


def test_names_addresses_sids_and_key_ids_are_unique(fleet200: Fleet) -> None:
    """No two devices share a name or address; no two users a SID; no two containers a key id."""
    devices = fleet200.devices
    assert [d.name for d in devices[:3]] == ["PC-0001", "PC-0002", "PC-0003"]
    assert len({d.name for d in devices}) == len(devices)
    assert len({d.address for d in devices}) == len(devices)
    users = [u for d in devices for u in d.users]
    assert len({u.sid for u in users}) == len(users)
    assert len({(u.domain, u.sam) for u in users}) == len(users)
    keys = [u.container.key_id for u in users if u.container]
    assert len(set(keys)) == len(keys)
    thumbprints = [c.thumbprint for u in users for c in u.certificates]
    thumbprints += [d.device_cert_thumbprint for d in devices if d.device_cert_thumbprint]
    assert len(set(thumbprints)) == len(thumbprints)
    assert all(d.address != "127.0.0.1" and d.address.startswith("127.") for d in devices)


def test_local_admins_include_the_fleet_admin(fleet200: Fleet) -> None:
    """The orchestrator's account may connect to every device."""
    assert all(fleet200.admin.qualified_name in d.local_admins for d in fleet200.devices)


# ---- invariants of trust, containers and policy ------------------------------------------------------------


def test_registry_policy_matches_the_trust_model_for_every_user(fleet200: Fleet) -> None:
    """``policy.evaluate`` on each device's registry gives its trust model, for every user on it."""
    for device in fleet200.devices:
        trust = _trust_group(device.groups)
        tenant = fleet200.tenant.tenant_id if device.mdm_enrolled else None
        for user in device.users:
            assert policy.evaluate(device.registry, tenant, user.sid).effective == trust, device.name
        if trust == "none":
            assert not device.registry.key_exists(policy.GPO_KEY)


def test_containers_match_the_trust_model(fleet200: Fleet) -> None:
    """Cert-trust users with a container hold a cert container and its certificate; others hold their model's."""
    for device in fleet200.devices:
        trust = _trust_group(device.groups)
        for user in device.users:
            if user.container is None:
                assert not user.certificates
                continue
            assert trust != "none"
            assert user.container.trust == trust
            assert user.has_prt
            if trust == "cert":
                assert [c.hello_key_id for c in user.certificates] == [user.container.key_id]
                assert user.certificates[0].template == "WHFBAuthentication"
            else:
                assert not user.certificates
            if user.container.has_passkeys:
                assert device.os.build >= 22000  # passkeys in the Hello container are a Windows 11 feature


def test_gpo_devices_equal_their_domain_gpo(fleet200: Fleet) -> None:
    """A lab gpupdate on every device changes no effective trust (device GPO values are the domain's)."""
    lab = new_lab(generate_fleet(200, 7, MIX), VirtualClock())  # a fresh copy: Device holds a lock, no deepcopy
    for device in lab.fleet.devices:
        before = [effective_trust(lab.fleet, device, u) for u in device.users]
        assert lab.gpupdate(device) is device.dc_reachable or not device.domain_joined
        domain = lab.fleet.domain(device.domain)
        if domain is not None and domain.gpo_passport_policy is not None and device.dc_reachable:
            values = {v.name: v.data for v in device.registry.values(policy.GPO_KEY)}
            assert values == domain.gpo_passport_policy
        assert [effective_trust(lab.fleet, device, u) for u in device.users] == before


def test_sessions_are_consistent_with_lab_sign_in_rules(fleet200: Fleet) -> None:
    """Hello logon exactly when a console user has a container; TGTs follow DC line of sight and cloud trust."""
    for device in fleet200.devices:
        ids = [s.session_id for s in device.sessions]
        assert len(set(ids)) == len(ids) and all(i < device.next_session_id for i in ids)
        for session in device.sessions:
            user = device.user(session.user_sid)
            assert user is not None and user.behaviour.compliance != "away"
            hello = user.container is not None and session.kind == "console"
            assert session.logon_method == ("hello" if hello else "password")
            dc = device.dc_reachable and device.domain_joined
            cloud = hello and user.container is not None and user.container.trust == "cloud"
            assert session.partial_tgt is cloud and session.cloud_tgt is cloud
            assert session.on_prem_tgt is (dc and (device.join_type == "hybrid" or not cloud))
            assert session.prt is (device.azure_ad_joined and user.has_prt)
            assert session.logon_time < fleet200.created


def test_base_registry_is_where_windows_keeps_it(fleet200: Fleet) -> None:
    """OS version, profiles, join info, Netlogon site and signed-in users' volatile environment are present."""
    for device in fleet200.devices:
        reg = device.registry
        assert reg.read(CURRENT_VERSION_KEY, "UBR") == device.os.ubr
        assert reg.get_value(CURRENT_VERSION_KEY, "UBR").type == "REG_DWORD"  # type: ignore[union-attr]
        assert reg.read(CURRENT_VERSION_KEY, "CurrentBuildNumber") == str(device.os.build)
        assert reg.read(CURRENT_VERSION_KEY, "InstallationType") == "Client"
        for name in ("ProductName", "EditionID", "DisplayVersion", "CurrentBuild", "ReleaseId"):
            assert reg.read(CURRENT_VERSION_KEY, name)
        for user in device.users:
            assert reg.read(f"{PROFILE_LIST_KEY}\\{user.sid}", "ProfileImagePath") == user.profile_path
        join_keys = reg.subkeys(JOIN_INFO_KEY)
        if device.azure_ad_joined:
            assert join_keys == [f"{JOIN_INFO_KEY}\\{device.device_cert_thumbprint}"]
            assert reg.read(join_keys[0], "TenantId") == fleet200.tenant.tenant_id
        else:
            assert join_keys == []
        assert bool(reg.read(NETLOGON_PARAMETERS_KEY, "DynamicSiteName")) is device.domain_joined
        signed_in = {s.user_sid for s in device.sessions}
        for user in device.users:
            volatile = f"HKU\\{user.sid}\\Volatile Environment"
            assert reg.key_exists(volatile) is (user.sid in signed_in)
            if user.sid in signed_in:
                assert reg.read(volatile, "USERNAME") == user.sam


def test_cloud_trust_devices_can_use_cloud_trust(fleet200: Fleet) -> None:
    """Already-migrated devices run a supported build with a TPM in a domain that has Entra Kerberos."""
    for device in fleet200.devices:
        if _trust_group(device.groups) != "cloud":
            continue
        assert device.os.supports_cloud_trust and device.tpm.present
        for user in device.users:
            assert (d := next(x for x in fleet200.domains if x.netbios == user.domain)).entra_kerberos, d


def test_special_cases_are_present_in_a_200_device_fleet(fleet200: Fleet) -> None:
    """Every pitfall the migration must handle appears at least once in 200 devices."""
    summary = summarize(fleet200)
    expected = {
        "old build (no cloud trust support)",
        "dsregcmd display-bug build",
        "no TPM",
        "VPN-only",
        "no DC line of sight now",
        "shared (2+ users)",
        "GPO and MDM both configure Hello",
        "cert policy in a user GPO hive",
        "domain without Entra Kerberos",
        "pilot group",
        "privileged users",
        "users without PRT",
        "users without container",
        "containers with passkeys",
        "users away",
        "users never complying",
        "users preferring RDP",
        "users signed in",
    }
    assert {name for name, count in summary.special.items() if count} >= expected
    assert all(summary.join_types[j] > 0 for j in ("hybrid", "entra", "domain", "workgroup"))
    assert summary.join_types["hybrid"] > summary.devices / 2
    no_ek = [d for d in fleet200.domains if not d.entra_kerberos]
    assert len(no_ek) == 1 and 2 <= len(fleet200.domains) <= 3
    on_no_ek = sum(d.domain == no_ek[0].dns_name for d in fleet200.devices)
    assert 0 < on_no_ek < len(fleet200.devices) / 4
    assert any(d.os.build == 19044 and d.os.ubr < 1566 for d in fleet200.devices)
    users = [u for d in fleet200.devices for u in d.users]
    assert max(len(d.users) for d in fleet200.devices) <= 4
    assert all(
        u.behaviour.away_until and u.behaviour.away_until > fleet200.created
        for u in users
        if u.behaviour.compliance == "away"
    )
    assert Counter(u.behaviour.compliance for u in users).most_common(1)[0][0] == "prompt"
    assert any(s.kind == "rdp" for d in fleet200.devices for s in d.sessions)
    assert all(d.notes for d in fleet200.devices if "old-build" in d.groups or d.vpn_only or not d.tpm.present)


def test_old_builds_are_never_cloud_trust_and_pilots_look_eligible(fleet200: Fleet) -> None:
    """Unsupported builds only carry key/cert/none devices; pilot devices all look eligible."""
    for device in fleet200.devices:
        if "old-build" in device.groups:
            assert not device.os.supports_cloud_trust
            assert _trust_group(device.groups) != "cloud"
        if "pilot" in device.groups:
            assert looks_eligible(fleet200, device)
    pilots = sum("pilot" in d.groups for d in fleet200.devices)
    assert pilots == 10  # 5 % of 200


@pytest.mark.parametrize("trust", ["key", "cert", "cloud"])
def test_a_user_without_container_provisions_the_devices_trust(trust: str) -> None:
    """Signing in through the Lab, a user without a container provisions the trust model the generator meant."""
    fleet = generate_fleet(200, 7, MIX)
    lab = new_lab(fleet, VirtualClock(fleet.clock))
    candidates = [
        (device, user)
        for device in fleet.devices
        if _trust_group(device.groups) == trust
        and device.tpm.present
        and device.dc_reachable
        and device.os.supports_cloud_trust
        for user in device.users
        if user.container is None and user.has_prt and not user.privileged
    ]
    assert candidates, f"no {trust} user without a container"
    device, user = candidates[0]
    lab.sign_out(device, user)
    outcome = lab.sign_in(device, user, "console")
    assert outcome.provisioned == trust
