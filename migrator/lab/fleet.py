"""A seeded, realistic fleet of simulated Windows devices for the lab (``migrator lab fleet``).

Theory of operation
-------------------
:func:`generate_fleet` draws every choice from one ``random.Random(seed)`` in a fixed order, so the same
``(devices, seed, mix, start)`` gives a byte-identical fleet file. It works in three passes:

1. **plan devices**: the Hello trust model of each device comes from the :class:`Mix` by exact largest-remainder
   counts, shuffled over the device numbers; every other spread below is an exact quota (largest remainder,
   then a seeded shuffle), not a coin flip, so even a 200-device fleet holds every special case;
2. **plan users**: one user per device, 2-4 on shared devices; user traits are quotas over all users;
3. **build**: OS, TPM, registry (policy where Windows keeps it), users, Hello containers, certificates and
   signed-in sessions consistent with what :class:`migrator.lab.windows.Lab` would have produced.

Proportions (of the devices of a trust model, unless said otherwise)
-------------------------------------------------------------------
- Join type: key 80 % hybrid / 20 % Entra joined; cert 90 % / 10 %; cloud 75 % / 25 %; ``none`` 30 % hybrid
  (not targeted by any Hello policy yet), 10 % Entra joined (enrolled, no Hello policy), 35 % domain joined only,
  25 % workgroup (both ineligible: no Entra join, no PRT, no provisioning).
- Domains and how the policy arrives (``Domain.gpo_passport_policy`` is what each domain's GPO writes, and the
  lab's ``gpupdate`` re-applies it, so a device's GPO values always equal its domain's):

  ===========================  =====================  ===============  =========================================
  domain                        Entra Kerberos object  GPO              devices
  ===========================  =====================  ===============  =========================================
  CORP  corp.contoso.com        yes                    none (Intune)    key (70 % of key hybrid), cert (20 % of
                                                                        cert hybrid), cloud hybrid, ``none``
  EMEA  emea.corp.contoso.com   yes                    cert trust       cert (80 % of cert hybrid)
  FABRIKAM  fabrikam.local      **no**                 key trust        key (30 % of key hybrid): a minority
  ===========================  =====================  ===============  =========================================

  Entra joined devices get Hello from Intune (PassportForWork CSP); their users come from CORP (75 %) or EMEA
  (25 %; all cert-trust Entra joined users are EMEA's). 15 % of the GPO-managed devices are also Intune-enrolled
  with the Intune cloud-trust policy assigned: Group Policy wins, the MDM values are ignored (windows-facts
  §9.2). 25 % of EMEA's cert-trust devices also carry the certificate policy in each user's GPO hive (§9.1).
  ``RequireSecurityDevice=1`` on every GPO and on 85 % of Intune policies.
- OS (all devices): 8 % old builds below the cloud Kerberos trust minimum (19042 20H2, 19043 21H1, 19044.1288
  before KB5010415, 22000.4xx before KB5010414; never on cloud-trust devices), 3 % on a 21H1/21H2 build with the
  dsregcmd OnPremTgt/CloudTgt display bug (UBR 2130-2485), the rest supported: 19044.≥1566 10 %, 19045 35 %,
  22621 15 %, 22631 25 %, 26100 15 %. 88 % Enterprise, 12 % Pro.
- TPM 2.0 everywhere except 3 % of the non-cloud devices (no TPM: with RequireSecurityDevice=1 nobody on them
  could provision Hello).
- Shared devices: 8 % of the joined devices, with 2-4 users; otherwise one user.
- Line of sight: 12 % of the domain-joined (hybrid or domain-only) devices are VPN-only, 40 % of those start
  without a DC.
- Users (all users): behaviour 75 % ``prompt`` (delay 2 min to 4 h, log-uniform), 12 % ``slow`` (1-8 h),
  5 % ``never``, 8 % ``away`` (back 2-14 days after the start, not signed in); 6 % prefer RDP; 2 % privileged
  (msDS-NeverRevealGroup: no partial TGT); 2 % without a PRT; 12 % of those who could have provisioned Hello
  have no container yet. 25 % of Windows 11 cert-trust containers (10 % of key-trust ones) hold passkeys.
- Sessions at the start: 85 % of primary users and 35 % of the other users of shared devices are signed in
  (never the away users; half the secondary sessions disconnected; RDP for users who prefer it); 30 % of
  console sessions are locked.
- Inventory groups: ``trust-<model>``, ``site-<site>``, ``pilot`` (5 % of the devices, picked among the
  eligible-looking ones), ``vpn``, ``shared``, ``old-build``, ``no-tpm``; ``notes`` say why a device is special.

Addresses run from ``127.20.0.1`` upward (the device number carried into the third and second octets), so
60,000 devices fit in 127.0.0.0/8 and 127.0.0.1 is never used.
"""

from __future__ import annotations

import gc
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar, get_args

from migrator.lab import policy
from migrator.lab.model import (
    AdminAccount,
    Certificate,
    Compliance,
    Device,
    Domain,
    Fleet,
    HelloContainer,
    JoinType,
    OsInfo,
    Session,
    SessionKind,
    Tenant,
    Tpm,
    TrustType,
    User,
    UserBehaviour,
)
from migrator.lab.registry import Registry, RegType
from migrator.lab.windows import LOGON_UI_KEY, NGC_PROVIDER_KEY, last_logged_on_values, new_guid

TrustModel = Literal["key", "cert", "cloud", "none"]
TRUST_MODELS: tuple[TrustModel, ...] = get_args(TrustModel)
DEFAULT_MIX = "key=50,cert=40,cloud=5,none=5"
DEFAULT_START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
MAX_DEVICES = 60_000
# 127.20.0.1 is device 1; devices are numbered consecutively from there (the value carries into the higher
# octets), which keeps 127.0.0.1 and the addresses other tests use (127.0.0.x) free.
_ADDRESS_BASE = (127 << 24) | (20 << 16)

CURRENT_VERSION_KEY = "HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion"
PROFILE_LIST_KEY = CURRENT_VERSION_KEY + "\\ProfileList"
JOIN_INFO_KEY = "HKLM\\SYSTEM\\CurrentControlSet\\Control\\CloudDomainJoin\\JoinInfo"
TENANT_INFO_KEY = "HKLM\\SYSTEM\\CurrentControlSet\\Control\\CloudDomainJoin\\TenantInfo"
NETLOGON_PARAMETERS_KEY = "HKLM\\SYSTEM\\CurrentControlSet\\Services\\Netlogon\\Parameters"
ENROLLMENTS_KEY = "HKLM\\SOFTWARE\\Microsoft\\Enrollments"
VOLATILE_ENVIRONMENT = "Volatile Environment"


class MixError(ValueError):
    """A ``--mix`` text that is not ``key=N,cert=N,cloud=N,none=N`` with non-negative integers summing to 100."""


@dataclass(frozen=True)
class Mix:
    """Percentages of devices on each Hello trust model (``none`` = no Hello policy or not eligible)."""

    key: int = 0
    cert: int = 0
    cloud: int = 0
    none: int = 0

    def __post_init__(self) -> None:
        for name in TRUST_MODELS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise MixError(f"mix: {name}={value!r} must be a non-negative integer")
        total = sum(self.as_dict().values())
        if total != 100:
            raise MixError(f"mix: percentages must sum to 100, got {total} ({self})")

    @classmethod
    def parse(cls, text: str) -> Mix:
        """Parse ``key=50,cert=40,cloud=5,none=5``; omitted models count 0. Errors name the bad part."""
        values: dict[str, int] = {}
        parts = [part.strip() for part in text.split(",")]
        if not text.strip():
            raise MixError("mix: empty; expected e.g. " + DEFAULT_MIX)
        for part in parts:
            name, sep, number = part.partition("=")
            name, number = name.strip().lower(), number.strip()
            if not sep or not name:
                raise MixError(f"mix: {part!r} is not name=percent (e.g. {DEFAULT_MIX})")
            if name not in TRUST_MODELS:
                raise MixError(f"mix: unknown trust model {name!r} in {part!r}; known: {', '.join(TRUST_MODELS)}")
            if name in values:
                raise MixError(f"mix: {name!r} given twice")
            if not number.isdigit():  # isdigit rejects signs, decimals and blanks
                raise MixError(f"mix: {part!r}: the percentage must be a non-negative integer")
            values[name] = int(number)
        return cls(**values)

    def as_dict(self) -> dict[TrustModel, int]:
        return {"key": self.key, "cert": self.cert, "cloud": self.cloud, "none": self.none}

    def counts(self, devices: int) -> dict[TrustModel, int]:
        """Exact device counts per model by largest-remainder rounding (ties: key, cert, cloud, none)."""
        return _largest_remainder(devices, {name: float(p) for name, p in self.as_dict().items()})

    def __str__(self) -> str:
        return ",".join(f"{name}={value}" for name, value in self.as_dict().items())


def parse_mix(text: str) -> Mix:
    return Mix.parse(text)


def device_address(index: int) -> str:
    """The loopback address of device ``index`` (0-based): 127.20.0.1, 127.20.0.2, ... 127.20.3.232, ..."""
    if not 0 <= index < MAX_DEVICES:
        raise ValueError(f"device index {index} outside 0..{MAX_DEVICES - 1}")
    value = _ADDRESS_BASE + 1 + index
    return ".".join(str((value >> shift) & 0xFF) for shift in (24, 16, 8, 0))


def device_name(index: int) -> str:
    """The NetBIOS name of device ``index`` (0-based): PC-0001, PC-0002, ..."""
    return f"PC-{index + 1:04d}"


# ---- quotas ---------------------------------------------------------------------------------------------

K = TypeVar("K")


def _largest_remainder(total: int, weights: dict[K, float]) -> dict[K, int]:
    """Split ``total`` in proportion to ``weights`` exactly (Hamilton method; ties in dict order)."""
    weight_sum = sum(weights.values())
    if total <= 0 or weight_sum <= 0:
        return dict.fromkeys(weights, 0)
    exact = {k: total * w / weight_sum for k, w in weights.items()}
    counts = {k: math.floor(v) for k, v in exact.items()}
    short = total - sum(counts.values())
    order = sorted(weights, key=lambda k: (-(exact[k] - counts[k]), list(weights).index(k)))
    for k in order[:short]:
        counts[k] += 1
    return counts


def _apportion(rng: random.Random, items: list[int], weights: dict[K, float]) -> dict[int, K]:
    """Give each item a label, exact counts by largest remainder, shuffled over the items."""
    counts = _largest_remainder(len(items), weights)
    labels = [label for label, count in counts.items() for _ in range(count)]
    rng.shuffle(labels)
    return dict(zip(items, labels, strict=True))


def _quota(rng: random.Random, items: list[int], fraction: float, population: int | None = None) -> set[int]:
    """Pick ``fraction`` of ``population`` (default: of the items) among the items; at least one when the
    population has 20 or more members, so special cases exist in every fleet worth testing against."""
    if not items:
        return set()
    size = len(items) if population is None else population
    wanted = round(size * fraction)
    if wanted == 0 and size >= 20:
        wanted = 1
    return set(rng.sample(items, min(wanted, len(items))))


# ---- the estate -----------------------------------------------------------------------------------------

_FIRST_NAMES = (
    "Adele Alex Allan Ben Carla Chloe Daniel Diego Elena Emma Farid Fatima Gabriel Grace Hana Hugo Ines Isaac "
    "Jade Jonas Karim Laura Leo Lina Lucas Lynne Malik Maria Megan Miriam Nestor Nina Omar Patti Pradeep Quentin "
    "Rosa Samir Sara Sofia Tomas Ulla Victor Wanda Xavier Yasmin Yuki Zoe"
)
_LAST_NAMES = (
    "Vance Wilber Deyoung Gordon Bauer Martin Garcia Petrov Rossi Dubois Nowak Schmidt Keller Moreau Lambert "
    "Costa Silva Haddad Novak Berg Larsen Meyer Fischer Weber Richter Klein Wolf Roux Fontaine Girard Ortiz "
    "Romero Navarro Ruiz Jansen Visser Smit Olsen Nielsen Lindqvist Kowalski Horvat Popescu Ivanova Tanaka "
    "Suzuki Okafor Mensah"
)
_FIRST = tuple(_FIRST_NAMES.split())
_LAST = tuple(_LAST_NAMES.split())


@dataclass(frozen=True)
class _DomainSpec:
    netbios: str
    dns_name: str
    forest: str
    upn_suffix: str
    entra_kerberos: bool
    gpo: dict[str, int] | None
    dc_site: str
    sites: tuple[str, ...]


_GPO_KEY_TRUST = {policy.GPO_ENABLED: 1, policy.REQUIRE_SECURITY_DEVICE: 1}
_GPO_CERT_TRUST = {policy.GPO_ENABLED: 1, policy.CERT_TRUST: 1, policy.REQUIRE_SECURITY_DEVICE: 1}
_DOMAINS = (
    _DomainSpec("CORP", "corp.contoso.com", "corp.contoso.com", "contoso.com", True, None, "HQ", ("HQ", "Paris")),
    _DomainSpec(
        "EMEA",
        "emea.corp.contoso.com",
        "corp.contoso.com",
        "contoso.com",
        True,
        _GPO_CERT_TRUST,
        "Lyon",
        ("Lyon", "Munich"),
    ),
    _DomainSpec(
        "FABRIKAM", "fabrikam.local", "fabrikam.local", "fabrikam.com", False, _GPO_KEY_TRUST, "Madrid", ("Madrid",)
    ),
)
_SPEC = {spec.netbios: spec for spec in _DOMAINS}

Channel = Literal["gpo", "mdm", "none"]


@dataclass(frozen=True)
class _Build:
    build: int
    display_version: str
    ubrs: tuple[int, ...]


# Real UBRs of the cumulative updates (Windows release health pages); the display version as the registry says.
_OLD_BUILDS = (
    _Build(19042, "20H2", (1706, 2006, 2364, 2965)),  # Windows 10 20H2: cloud Kerberos trust unsupported
    _Build(19043, "21H1", (1645, 1889, 2006)),  # Windows 10 21H1: unsupported
    _Build(19044, "21H2", (1288, 1415, 1466)),  # Windows 10 21H2 before KB5010415 (19044.1566)
    _Build(22000, "21H2", (434, 469, 493)),  # Windows 11 21H2 before KB5010414 (22000.527)
)
# Windows 10 21H1/21H2 between KB5018410 (Oct 2022) and the 2023-01 C update: dsregcmd misreports the TGTs.
_DISPLAY_BUG_BUILDS = (_Build(19044, "21H2", (2130, 2251, 2311, 2364)), _Build(19043, "21H1", (2130, 2251, 2364)))
_SUPPORTED_BUILDS: dict[str, tuple[_Build, float]] = {
    "19044": (_Build(19044, "21H2", (1566, 1889, 2604, 3086, 3693, 4291, 5011)), 0.10),
    "19045": (_Build(19045, "22H2", (2965, 3570, 4291, 4780, 5011, 5737, 6093, 6456)), 0.35),
    "22621": (_Build(22621, "22H2", (2861, 3880, 4602, 5335)), 0.15),
    "22631": (_Build(22631, "23H2", (3007, 3880, 4602, 5335, 6060)), 0.25),
    "26100": (_Build(26100, "24H2", (2033, 2605, 3194, 3915, 4652)), 0.15),
}
_HARDWARE = (
    ("Dell Inc.", "Latitude 7440", "IFX", "7.85.4555.0"),
    ("Dell Inc.", "Latitude 5420", "NTC", "7.2.3.1"),
    ("HP", "HP EliteBook 840 G9", "STM", "73.64.17568.6"),
    ("LENOVO", "21HD004PFR", "INTC", "600.18.0.0"),
    ("Microsoft Corporation", "Surface Laptop 5", "NTC", "7.2.3.1"),
    ("Microsoft Corporation", "Virtual Machine", "MSFT", "8224.3.4.3"),
)


@dataclass
class _DevicePlan:
    index: int
    trust: TrustModel
    join: JoinType
    domain: str | None = None  # NetBIOS of the AD domain the device is joined to
    channel: Channel = "none"  # where the Hello policy comes from
    user_domain: str = "CORP"  # NetBIOS of its users' domain
    build: _Build | None = None
    ubr: int = 0
    build_kind: Literal["old", "display-bug", "supported"] = "supported"
    tpm: bool = True
    shared: bool = False
    vpn_only: bool = False
    dc_reachable: bool = True
    mdm_enrolled: bool = False
    gpo_mdm_conflict: bool = False
    cert_user_hive: bool = False
    require_security_device: bool = True
    users: list[_UserPlan] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class _UserPlan:
    device: _DevicePlan
    primary: bool
    privileged: bool = False
    has_prt: bool = True
    no_container_yet: bool = False
    compliance: Compliance = "prompt"
    prefers_rdp: bool = False
    passkeys: bool = False


class _RegistryBuilder:
    """Collects a device registry as ``Registry.set_value``/``create_key`` would lay it out (parents created,
    keys and values by case-folded name) and validates it in one call: one bulk validation costs less than a
    model per value, and a fleet holds hundreds of thousands of values."""

    def __init__(self) -> None:
        self.keys: dict[str, dict[str, Any]] = {}

    def set_value(self, path: str, name: str, data: int | str, reg_type: RegType) -> None:
        key = self.keys.get(path.casefold())
        if key is None:
            parts = path.split("\\")
            for depth in range(2, len(parts) + 1):
                sub = "\\".join(parts[:depth])
                key = self.keys.setdefault(sub.casefold(), {"path": sub, "values": {}})
        assert key is not None
        key["values"][name.casefold()] = {"name": name, "type": reg_type, "data": data}

    def build(self) -> Registry:
        return Registry.model_validate({"keys": self.keys})


class _Generator:
    """One run of the generator: all state of the draw (the rng, counters of RIDs and names)."""

    def __init__(self, devices: int, seed: int, mix: Mix, start: datetime) -> None:
        self.count = devices
        self.seed = seed
        self.mix = mix
        self.start = start
        self.rng = random.Random(seed)
        self.tenant = Tenant(tenant_id=new_guid(self.rng), name="Contoso", default_domain="contoso.onmicrosoft.com")
        self.domains = [self._domain(spec) for spec in _DOMAINS]
        self._domain_by_netbios = {d.netbios: d for d in self.domains}
        self._next_rid = {spec.netbios: 1104 for spec in _DOMAINS}
        self._sam_uses: Counter[str] = Counter()
        self.admin = AdminAccount()

    # ---- estate -------------------------------------------------------------------------------------

    def _sid_base(self) -> str:
        return "S-1-5-21-" + "-".join(str(self.rng.randrange(10**8, 2**32)) for _ in range(3))

    def _domain(self, spec: _DomainSpec) -> Domain:
        return Domain(
            dns_name=spec.dns_name,
            netbios=spec.netbios,
            sid=self._sid_base(),
            guid=new_guid(self.rng),
            forest=spec.forest,
            entra_kerberos=spec.entra_kerberos,
            dc_name=f"DC01.{spec.dns_name}",
            dc_address=f"10.{10 + _DOMAINS.index(spec)}.0.10",
            dc_site=spec.dc_site,
            gpo_passport_policy=dict(spec.gpo) if spec.gpo is not None else None,
        )

    # ---- pass 1: devices ------------------------------------------------------------------------------

    def plan_devices(self) -> list[_DevicePlan]:
        rng = self.rng
        trusts: list[TrustModel] = [t for t, n in self.mix.counts(self.count).items() for _ in range(n)]
        rng.shuffle(trusts)
        plans = [_DevicePlan(index=i, trust=t, join="hybrid") for i, t in enumerate(trusts)]
        joins: dict[TrustModel, dict[JoinType, float]] = {
            "key": {"hybrid": 0.80, "entra": 0.20},
            "cert": {"hybrid": 0.90, "entra": 0.10},
            "cloud": {"hybrid": 0.75, "entra": 0.25},
            "none": {"hybrid": 0.30, "entra": 0.10, "domain": 0.35, "workgroup": 0.25},
        }
        for trust in TRUST_MODELS:
            members = [p.index for p in plans if p.trust == trust]
            for index, join in _apportion(rng, members, joins[trust]).items():
                plans[index].join = join
        self._plan_channels(plans)
        self._plan_os(plans)
        self._plan_devices_specials(plans)
        return plans

    def _plan_channels(self, plans: list[_DevicePlan]) -> None:
        rng = self.rng
        key_hybrid = [p.index for p in plans if p.trust == "key" and p.join == "hybrid"]
        for index, where in _apportion(rng, key_hybrid, {"FABRIKAM": 0.30, "CORP": 0.70}).items():
            plans[index].domain = where
        cert_hybrid = [p.index for p in plans if p.trust == "cert" and p.join == "hybrid"]
        for index, where in _apportion(rng, cert_hybrid, {"EMEA": 0.80, "CORP": 0.20}).items():
            plans[index].domain = where
        entra = [p.index for p in plans if p.join == "entra" and p.trust != "cert"]
        entra_users = _apportion(rng, entra, {"CORP": 0.75, "EMEA": 0.25})
        for p in plans:
            if p.join in ("hybrid", "domain") and p.domain is None:
                p.domain = "CORP"  # cloud trust and no-policy devices: CORP has no Hello GPO
            if p.domain is not None:
                p.user_domain = p.domain
                spec = _SPEC[p.domain]
                p.channel = "gpo" if spec.gpo is not None else ("mdm" if p.trust != "none" else "none")
            elif p.join == "entra":
                p.user_domain = "EMEA" if p.trust == "cert" else entra_users[p.index]
                p.channel = "mdm" if p.trust != "none" else "none"
            else:
                p.user_domain = ""  # workgroup: local accounts
            p.mdm_enrolled = p.channel == "mdm" or p.join == "entra"
            if p.domain == "FABRIKAM":
                p.notes.append("domain FABRIKAM has no Entra Kerberos server object: cannot move to cloud trust")
            if p.join == "domain":
                p.notes.append("domain joined only (not Entra hybrid joined): Hello cannot provision")
            elif p.join == "workgroup":
                p.notes.append("workgroup device with a local account: not joined, out of scope")
            elif p.trust == "none":
                p.notes.append("no Windows Hello for Business policy targets this device yet")
            elif p.channel == "mdm":
                p.notes.append(f"{p.trust} trust policy delivered by Intune (PassportForWork CSP)")
        gpo_devices = [p.index for p in plans if p.channel == "gpo"]
        for index in sorted(_quota(rng, gpo_devices, 0.15)):
            plan = plans[index]
            plan.gpo_mdm_conflict = plan.mdm_enrolled = True
            plan.notes.append(
                "Group Policy and Intune both configure Hello: the Intune cloud trust policy is ignored (GPO wins)"
            )
        emea_cert = [p.index for p in plans if p.domain == "EMEA" and p.trust == "cert"]
        for index in sorted(_quota(rng, emea_cert, 0.25)):
            plans[index].cert_user_hive = True
            plans[index].notes.append("certificate trust policy also set in the users' Group Policy hive")
        co_managed = [p.index for p in plans if p.channel == "gpo" and not p.mdm_enrolled]
        co_managed += [p.index for p in plans if p.join == "hybrid" and p.channel == "none"]
        for index in _quota(rng, co_managed, 0.25):
            plans[index].mdm_enrolled = True  # co-managed: enrolled in Intune, no Hello settings from it
        mdm = [p.index for p in plans if p.channel == "mdm"]
        for index in _quota(rng, mdm, 0.15):
            plans[index].require_security_device = False

    def _plan_os(self, plans: list[_DevicePlan]) -> None:
        rng = self.rng
        everyone = [p.index for p in plans]
        not_cloud = [p.index for p in plans if p.trust != "cloud"]
        old = _quota(rng, not_cloud, 0.08, population=len(everyone))
        rest = [i for i in everyone if i not in old]
        bug = _quota(rng, rest, 0.03, population=len(everyone))
        supported = [i for i in rest if i not in bug]
        families = _apportion(rng, supported, {name: weight for name, (_, weight) in _SUPPORTED_BUILDS.items()})
        for plan in plans:
            if plan.index in old:
                plan.build_kind, plan.build = "old", rng.choice(_OLD_BUILDS)
            elif plan.index in bug:
                plan.build_kind, plan.build = "display-bug", rng.choice(_DISPLAY_BUG_BUILDS)
            else:
                plan.build = _SUPPORTED_BUILDS[families[plan.index]][0]
            plan.ubr = rng.choice(plan.build.ubrs)
            if plan.build_kind == "old":
                plan.notes.append(
                    f"old build {plan.build.build}.{plan.ubr} (version {plan.build.display_version}): below the "
                    "cloud Kerberos trust minimum, it would keep provisioning key trust"
                )
            elif plan.build_kind == "display-bug":
                plan.notes.append(
                    f"build {plan.build.build}.{plan.ubr}: dsregcmd shows OnPremTgt/CloudTgt wrongly (KB5018410 "
                    "bug, fixed by the 2023-01 C update); cross-check with klist cloud_debug"
                )

    def _plan_devices_specials(self, plans: list[_DevicePlan]) -> None:
        rng = self.rng
        not_cloud = [p.index for p in plans if p.trust != "cloud"]
        for index in _quota(rng, not_cloud, 0.03, population=len(plans)):
            plans[index].tpm = False
            plans[index].notes.append("no TPM: RequireSecurityDevice=1 blocks Hello provisioning")
        joined = [p.index for p in plans if p.join != "workgroup"]
        for index in _quota(rng, joined, 0.08):
            plans[index].shared = True
        on_domain = [p.index for p in plans if p.join in ("hybrid", "domain")]
        vpn = _quota(rng, on_domain, 0.12)
        offline = _quota(rng, sorted(vpn), 0.40)
        for index in sorted(vpn):
            plan = plans[index]
            plan.vpn_only = True
            plan.dc_reachable = index not in offline
            plan.notes.append(
                "VPN-only: line of sight to a domain controller only while the VPN is up"
                + ("" if plan.dc_reachable else " (down at the start)")
            )

    # ---- pass 2: users --------------------------------------------------------------------------------

    def plan_users(self, plans: list[_DevicePlan]) -> list[_UserPlan]:
        rng = self.rng
        users: list[_UserPlan] = []
        for plan in plans:
            count = rng.randint(2, 4) if plan.shared else 1
            plan.users = [_UserPlan(plan, primary=n == 0) for n in range(count)]
            users.extend(plan.users)
            if plan.shared:
                plan.notes.append(f"shared device: {count} users")
        numbered = list(range(len(users)))
        domain_users = [i for i in numbered if users[i].device.join != "workgroup"]
        for i in _quota(rng, domain_users, 0.02):
            users[i].privileged = True
        for i in _quota(rng, domain_users, 0.02):
            users[i].has_prt = False
        behaviours: dict[Compliance, float] = {"prompt": 0.75, "slow": 0.12, "never": 0.05, "away": 0.08}
        for i, compliance in _apportion(rng, numbered, behaviours).items():
            users[i].compliance = compliance
        for i in _quota(rng, numbered, 0.06):
            users[i].prefers_rdp = True
        for user in users:
            if user.device.join == "workgroup":
                user.has_prt = False  # a local account has no Entra identity
        capable = [i for i in numbered if self._could_provision(users[i])]
        for i in _quota(rng, capable, 0.12):
            users[i].no_container_yet = True
        win11_cert = [i for i in capable if users[i].device.trust == "cert" and self._win11(users[i].device)]
        for i in _quota(rng, win11_cert, 0.25):
            users[i].passkeys = True
        win11_key = [i for i in capable if users[i].device.trust == "key" and self._win11(users[i].device)]
        for i in _quota(rng, win11_key, 0.10):
            users[i].passkeys = True
        return users

    @staticmethod
    def _win11(plan: _DevicePlan) -> bool:
        return plan.build is not None and plan.build.build >= 22000

    def _could_provision(self, user: _UserPlan) -> bool:
        """Would Windows have provisioned Hello for this user under the device's policy (Lab rules)?"""
        plan = user.device
        if plan.trust == "none" or plan.join not in ("hybrid", "entra") or not user.has_prt:
            return False
        if not plan.tpm and plan.require_security_device:
            return False
        if plan.trust == "cloud" and plan.join == "hybrid":
            # Hybrid cloud trust provisioning needs the partial TGT: refused for privileged accounts.
            domain = self._domain_by_netbios[plan.user_domain]
            return domain.entra_kerberos and not user.privileged
        return True

    # ---- pass 3: build --------------------------------------------------------------------------------

    def build(self) -> Fleet:
        plans = self.plan_devices()
        self.plan_users(plans)
        devices = [self._device(plan) for plan in plans]
        fleet = Fleet(
            seed=self.seed,
            created=self.start,
            clock=self.start,
            tenant=self.tenant,
            domains=self.domains,
            admin=self.admin,
            devices=devices,
        )
        self._pick_pilot(fleet)
        return fleet

    def _pick_pilot(self, fleet: Fleet) -> None:
        eligible = [i for i, d in enumerate(fleet.devices) if looks_eligible(fleet, d) and not d.vpn_only]
        for index in sorted(_quota(self.rng, eligible, 0.05, population=len(fleet.devices))):
            device = fleet.devices[index]
            device.groups.insert(1, "pilot")
            device.notes.append("pilot wave candidate")

    def _os(self, plan: _DevicePlan) -> OsInfo:
        assert plan.build is not None
        build = plan.build
        enterprise = self.rng.random() < 0.88
        edition = "Enterprise" if enterprise else "Pro"
        windows = "Windows 11" if build.build >= 22000 else "Windows 10"
        return OsInfo(
            # The registry ProductName still says "Windows 10" on Windows 11 (a known Windows quirk).
            product_name=f"Windows 10 {edition}",
            caption=f"Microsoft {windows} {edition}",
            edition_id="Enterprise" if enterprise else "Professional",
            display_version=build.display_version,
            build=build.build,
            ubr=plan.ubr,
            install_date=self.start - timedelta(days=self.rng.randint(60, 1400), seconds=self.rng.randrange(86400)),
            last_boot=self.start - timedelta(seconds=self.rng.randrange(1800, 20 * 86400)),
        )

    def _thumbprint(self) -> str:
        return f"{self.rng.getrandbits(160):040X}"

    def _device(self, plan: _DevicePlan) -> Device:
        rng = self.rng
        name = device_name(plan.index)
        domain = self._domain_by_netbios[plan.domain] if plan.domain else None
        manufacturer, model, tpm_maker, tpm_version = rng.choice(_HARDWARE)
        tpm = (
            Tpm(manufacturer=tpm_maker, manufacturer_version=tpm_version)
            if plan.tpm
            else Tpm(present=False, ready=False, spec_version="", manufacturer="", manufacturer_version="")
        )
        joined = plan.join in ("hybrid", "entra")
        device = Device(
            name=name,
            address=device_address(plan.index),
            join_type=plan.join,
            domain=domain.dns_name if domain else None,
            os=self._os(plan),
            tpm=tpm,
            device_id=new_guid(rng) if joined else None,
            device_cert_thumbprint=self._thumbprint() if joined else None,
            manufacturer=manufacturer,
            model=model,
            dc_reachable=plan.dc_reachable,
            vpn_only=plan.vpn_only,
            mdm_enrolled=plan.mdm_enrolled,
            local_admins=[],
            notes=list(plan.notes),
        )
        admins = [f"{domain.netbios}\\Domain Admins"] if domain else []
        device.local_admins = [*admins, self.admin.qualified_name]
        machine_sid = self._sid_base() if plan.join == "workgroup" else ""
        device.users = [self._user(device, plan, up, machine_sid) for up in plan.users]
        self._sessions(device, plan)
        self._registry(device, plan)
        device.groups = self._groups(device, plan)
        return device

    def _groups(self, device: Device, plan: _DevicePlan) -> list[str]:
        groups = [f"trust-{plan.trust}"]
        if plan.vpn_only:
            groups.append("site-remote")
        elif plan.join == "workgroup":
            groups.append("site-branch")
        else:
            groups.append("site-" + self.rng.choice(_SPEC[plan.user_domain].sites).lower())
        if plan.vpn_only:
            groups.append("vpn")
        if plan.shared:
            groups.append("shared")
        if plan.build_kind == "old":
            groups.append("old-build")
        if not plan.tpm:
            groups.append("no-tpm")
        return groups

    # ---- users --------------------------------------------------------------------------------------

    def _person(self) -> tuple[str, str, str]:
        first, last = self.rng.choice(_FIRST), self.rng.choice(_LAST)
        base = (first[0] + last).lower()
        self._sam_uses[base] += 1
        uses = self._sam_uses[base]
        sam = base if uses == 1 else f"{base}{uses}"
        return sam, f"{first} {last}", first

    def _user(self, device: Device, plan: _DevicePlan, up: _UserPlan, machine_sid: str) -> User:
        rng = self.rng
        sam, display, _ = self._person()
        if plan.join == "workgroup":
            domain_name, upn = device.name, f"{sam}@{device.name.lower()}"
            sid = f"{machine_sid}-{1000 + len(device.users) + 1}"
        else:
            spec = _SPEC[plan.user_domain]
            domain = self._domain_by_netbios[plan.user_domain]
            rid = self._next_rid[spec.netbios]
            self._next_rid[spec.netbios] = rid + rng.randint(1, 3)
            domain_name, upn, sid = spec.netbios, f"{sam}@{spec.upn_suffix}", f"{domain.sid}-{rid}"
        behaviour = UserBehaviour(compliance=up.compliance, prefers_rdp=up.prefers_rdp)
        if up.compliance == "prompt":
            behaviour.delay_seconds = round(math.exp(rng.uniform(math.log(120), math.log(4 * 3600))), 1)
        elif up.compliance == "slow":
            behaviour.delay_seconds = round(rng.uniform(3600, 8 * 3600), 1)
        elif up.compliance == "away":
            behaviour.delay_seconds = round(rng.uniform(300, 1800), 1)
            behaviour.away_until = self.start + timedelta(days=rng.randint(2, 14), seconds=rng.randrange(8 * 3600))
        user = User(
            sam=sam,
            domain=domain_name,
            upn=upn,
            sid=sid,
            display_name=display,
            has_prt=up.has_prt,
            privileged=up.privileged,
            behaviour=behaviour,
            profile_path=f"C:\\Users\\{sam}",
            last_sign_in=self.start - timedelta(seconds=rng.randrange(3600, 10 * 86400)),
        )
        if up.privileged:
            device.notes.append(f"{user.qualified_name} is privileged: no partial TGT from Entra Kerberos")
        if not up.has_prt and plan.join != "workgroup":
            device.notes.append(f"{user.qualified_name} gets no Entra PRT: Hello cannot provision for them")
        if up.compliance == "never":
            device.notes.append(f"{user.qualified_name} never reacts to sign-out prompts")
        elif up.compliance == "away":
            assert behaviour.away_until is not None
            device.notes.append(f"{user.qualified_name} is away until {behaviour.away_until:%Y-%m-%d}")
        if self._could_provision(up):
            if up.no_container_yet:
                device.notes.append(f"{user.qualified_name} has no Hello container yet")
            else:
                self._container(device, plan, user, up)
        return user

    def _container(self, device: Device, plan: _DevicePlan, user: User, up: _UserPlan) -> None:
        rng = self.rng
        assert plan.trust != "none"
        trust: TrustType = plan.trust
        created = self.start - timedelta(days=rng.randint(20, 900), seconds=rng.randrange(86400))
        container = HelloContainer(
            trust=trust,
            key_id="{" + new_guid(rng) + "}",
            created=created,
            has_passkeys=up.passkeys,
            used_with_dc=plan.join == "hybrid",
        )
        user.container = container
        user.counters.provisionings = 1
        if trust == "cert":
            # The certificate is renewed yearly, keeping the container key (cert trust enrols with that key).
            not_before = max(created, self.start - timedelta(days=rng.randint(1, 330)))
            user.certificates.append(
                Certificate(
                    thumbprint=self._thumbprint(),
                    subject=f"CN={user.display_name}",
                    issuer=f"CN={user.domain}-CA",
                    template="WHFBAuthentication",
                    not_before=not_before,
                    not_after=not_before + timedelta(days=365),
                    hello_key_id=container.key_id,
                )
            )
        if up.passkeys:
            device.notes.append(f"{user.qualified_name}'s container also holds passkeys (lost on deletion)")

    def _sessions(self, device: Device, plan: _DevicePlan) -> None:
        rng = self.rng
        for user, up in zip(device.users, plan.users, strict=True):
            if up.compliance == "away":
                continue
            if rng.random() >= (0.85 if up.primary else 0.35):
                continue
            kind: SessionKind = "rdp" if up.prefers_rdp else "console"
            logon = self.start - timedelta(seconds=rng.randrange(600, 3 * 86400))
            session = Session(
                user_sid=user.sid,
                session_id=device.next_session_id,
                kind=kind,
                state="Disc" if not up.primary and rng.random() < 0.5 else "Active",
                locked=kind == "console" and rng.random() < 0.30,
                logon_time=logon,
                logon_id=f"0x{rng.randrange(0x100000, 0xFFFFFF):x}",
            )
            device.next_session_id += 1
            self._tickets(device, user, session)
            session.prt = device.azure_ad_joined and user.has_prt
            session.prt_update_time = logon if session.prt else None
            user.last_sign_in = logon
            user.counters.sign_ins = 1
            if session.logon_method == "hello":
                user.counters.hello_sign_ins = 1
            device.sessions.append(session)

    def _tickets(self, device: Device, user: User, session: Session) -> None:
        """The Kerberos material a sign-in leaves, by the rules of ``Lab._hello_logon`` (primer, windows-facts
        §4-5): Hello at the console when the user has a container; cloud trust gives the partial TGT (and the
        cloud TGT), which a reachable DC exchanges for a full TGT; otherwise a DC gives a TGT directly."""
        dc = device.dc_reachable and (device.domain_joined or device.join_type == "entra")
        container = user.container
        domain = self._domain_by_netbios.get(user.domain)
        if container is None or session.kind != "console":
            session.logon_method = "password"
            session.on_prem_tgt = dc and device.domain_joined
            return
        session.logon_method = "hello"
        cloud_capable = (
            container.trust == "cloud"
            and device.os.supports_cloud_trust
            and domain is not None
            and domain.entra_kerberos
            and not user.privileged
            and user.has_prt
        )
        if cloud_capable:
            session.partial_tgt = session.cloud_tgt = True
            session.on_prem_tgt = dc and device.join_type == "hybrid"
        else:
            session.on_prem_tgt = dc and device.domain_joined

    # ---- registry -----------------------------------------------------------------------------------

    def _registry(self, device: Device, plan: _DevicePlan) -> None:
        reg = _RegistryBuilder()
        os_info = device.os
        cv = CURRENT_VERSION_KEY
        reg.set_value(cv, "ProductName", os_info.product_name, "REG_SZ")
        reg.set_value(cv, "EditionID", os_info.edition_id, "REG_SZ")
        reg.set_value(cv, "DisplayVersion", os_info.display_version, "REG_SZ")
        reg.set_value(cv, "ReleaseId", "2009", "REG_SZ")  # frozen at 2009 since Windows 10 20H2
        reg.set_value(cv, "CurrentBuild", str(os_info.build), "REG_SZ")
        reg.set_value(cv, "CurrentBuildNumber", str(os_info.build), "REG_SZ")
        reg.set_value(cv, "UBR", os_info.ubr, "REG_DWORD")
        reg.set_value(cv, "CurrentVersion", "6.3", "REG_SZ")
        reg.set_value(cv, "CurrentMajorVersionNumber", 10, "REG_DWORD")
        reg.set_value(cv, "CurrentMinorVersionNumber", 0, "REG_DWORD")
        reg.set_value(cv, "InstallationType", "Client", "REG_SZ")
        if os_info.install_date is not None:
            reg.set_value(cv, "InstallDate", int(os_info.install_date.timestamp()), "REG_DWORD")
        for sid, path in (
            ("S-1-5-18", "%systemroot%\\system32\\config\\systemprofile"),
            ("S-1-5-19", "%systemroot%\\ServiceProfiles\\LocalService"),
            ("S-1-5-20", "%systemroot%\\ServiceProfiles\\NetworkService"),
        ):
            reg.set_value(f"{PROFILE_LIST_KEY}\\{sid}", "ProfileImagePath", path, "REG_EXPAND_SZ")
        for user in device.users:
            reg.set_value(f"{PROFILE_LIST_KEY}\\{user.sid}", "ProfileImagePath", user.profile_path, "REG_EXPAND_SZ")
            if user.container is not None:  # what windows.sync_ngc_registry maintains from then on
                reg.set_value(f"{NGC_PROVIDER_KEY}\\{user.sid}", "LogonCredsAvailable", 1, "REG_DWORD")
        tenant = self.tenant
        if device.azure_ad_joined and device.device_cert_thumbprint:
            join_key = f"{JOIN_INFO_KEY}\\{device.device_cert_thumbprint}"
            reg.set_value(join_key, "TenantId", tenant.tenant_id, "REG_SZ")
            # Entra joined: the user who joined the device; hybrid joined devices join as the computer.
            email = device.users[0].upn if device.join_type == "entra" and device.users else ""
            reg.set_value(join_key, "UserEmail", email, "REG_SZ")
            reg.set_value(f"{TENANT_INFO_KEY}\\{tenant.tenant_id}", "DisplayName", tenant.name, "REG_SZ")
        if device.domain_joined and plan.domain:
            site = _SPEC[plan.domain].dc_site
            reg.set_value(NETLOGON_PARAMETERS_KEY, "DynamicSiteName", site, "REG_SZ")
        if device.mdm_enrolled:
            enrollment = f"{ENROLLMENTS_KEY}\\{new_guid(self.rng).upper()}"
            reg.set_value(enrollment, "ProviderID", "MS DM Server", "REG_SZ")
            reg.set_value(enrollment, "UPN", device.users[0].upn if device.users else "", "REG_SZ")
            reg.set_value(enrollment, "AADTenantID", tenant.tenant_id, "REG_SZ")
        self._policy(device, plan, reg)
        for session in device.sessions:
            person = device.user(session.user_sid)
            assert person is not None
            self._volatile_environment(device, person, session, reg)
        signed_in_before = [u for u in device.users if u.last_sign_in is not None]
        if signed_in_before:
            last = max(signed_in_before, key=lambda u: u.last_sign_in or self.start)
            for name, value in last_logged_on_values(last).items():
                reg.set_value(LOGON_UI_KEY, name, value, "REG_SZ")
        device.registry = reg.build()

    def _policy(self, device: Device, plan: _DevicePlan, reg: _RegistryBuilder) -> None:
        tenant_id = self.tenant.tenant_id
        if plan.channel == "gpo" and plan.domain:
            gpo = _SPEC[plan.domain].gpo
            assert gpo is not None
            for name, value in gpo.items():
                reg.set_value(policy.GPO_KEY, name, value, "REG_DWORD")
            if plan.cert_user_hive:
                for user in device.users:
                    reg.set_value(policy.gpo_user_key(user.sid), policy.GPO_ENABLED, 1, "REG_DWORD")
                    reg.set_value(policy.gpo_user_key(user.sid), policy.CERT_TRUST, 1, "REG_DWORD")
            if plan.gpo_mdm_conflict:
                mdm_key = policy.mdm_device_key(tenant_id)
                reg.set_value(mdm_key, policy.MDM_ENABLED, 1, "REG_DWORD")
                reg.set_value(mdm_key, policy.REQUIRE_SECURITY_DEVICE, 1, "REG_DWORD")
                reg.set_value(mdm_key, policy.CLOUD_TRUST, 1, "REG_DWORD")
        elif plan.channel == "mdm":
            mdm_key = policy.mdm_device_key(tenant_id)
            reg.set_value(mdm_key, policy.MDM_ENABLED, 1, "REG_DWORD")
            if plan.require_security_device:
                reg.set_value(mdm_key, policy.REQUIRE_SECURITY_DEVICE, 1, "REG_DWORD")
            if plan.trust == "cert":
                reg.set_value(mdm_key, policy.CERT_TRUST, 1, "REG_DWORD")
            elif plan.trust == "cloud":
                reg.set_value(mdm_key, policy.CLOUD_TRUST, 1, "REG_DWORD")

    def _volatile_environment(self, device: Device, user: User, session: Session, reg: _RegistryBuilder) -> None:
        key = f"HKU\\{user.sid}\\{VOLATILE_ENVIRONMENT}"
        domain = self._domain_by_netbios.get(user.domain)
        logon_server = f"\\\\{domain.dc_name.split('.')[0]}" if domain and device.dc_reachable else f"\\\\{device.name}"
        values = {
            "LOGONSERVER": logon_server,
            "USERDOMAIN": user.domain,
            "USERNAME": user.sam,
            "USERPROFILE": user.profile_path,
            "HOMEDRIVE": "C:",
            "HOMEPATH": user.profile_path[2:],
            "APPDATA": user.profile_path + "\\AppData\\Roaming",
            "LOCALAPPDATA": user.profile_path + "\\AppData\\Local",
        }
        if domain is not None:
            values["USERDNSDOMAIN"] = domain.dns_name.upper()
        for name, value in values.items():
            reg.set_value(key, name, value, "REG_SZ")
        session_name = "Console" if session.kind == "console" else f"RDP-Tcp#{session.session_id - 1}"
        reg.set_value(f"{key}\\{session.session_id}", "SESSIONNAME", session_name, "REG_SZ")
        if session.kind == "rdp":
            reg.set_value(f"{key}\\{session.session_id}", "CLIENTNAME", f"LT-{user.sam[:8].upper()}", "REG_SZ")


def generate_fleet(devices: int, seed: int, mix: Mix, *, start: datetime | None = None) -> Fleet:
    """A realistic fleet of ``devices`` simulated devices; the same arguments give the same fleet, byte for byte.

    ``start`` is the virtual time the fleet begins at (default :data:`DEFAULT_START`, never the wall clock)."""
    if isinstance(devices, bool) or not 1 <= devices <= MAX_DEVICES:
        raise ValueError(f"devices must be between 1 and {MAX_DEVICES}, got {devices}")
    when = start if start is not None else DEFAULT_START
    if when.tzinfo is None:
        raise ValueError("start must be timezone-aware (UTC)")
    # The build allocates millions of small acyclic objects; the cyclic collector would rescan them over and
    # over (quadratic in fleet size), so it pauses for the build.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _Generator(devices, seed, mix, when.astimezone(UTC)).build()
    finally:
        if collecting:
            gc.enable()


# ---- reading a fleet back: what the generator meant -----------------------------------------------------


def effective_trust(fleet: Fleet, device: Device, user: User | None = None) -> policy.Effective:
    """The Hello trust model the device's registry gives ``user`` (default: its first user), as Windows
    evaluates it (:func:`migrator.lab.policy.evaluate`)."""
    tenant_id = fleet.tenant.tenant_id if device.mdm_enrolled else None
    who = user or (device.users[0] if device.users else None)
    return policy.evaluate(device.registry, tenant_id, who.sid if who else None).effective


def looks_eligible(fleet: Fleet, device: Device) -> bool:
    """Could the device move to cloud Kerberos trust as it stands: Entra (hybrid) joined, on key or cert trust,
    a build that supports cloud trust, a TPM, and the Entra Kerberos object in every relevant AD domain."""
    if not device.azure_ad_joined or not device.os.supports_cloud_trust or not device.tpm.present:
        return False
    if any(effective_trust(fleet, device, user) not in ("key", "cert") for user in device.users) or not device.users:
        return False
    domains: list[Domain | None] = [fleet.domain(device.domain)] if device.join_type == "hybrid" else []
    for user in device.users:
        domains.append(next((d for d in fleet.domains if d.netbios.casefold() == user.domain.casefold()), None))
    return all(d is not None and d.entra_kerberos for d in domains)


@dataclass(frozen=True)
class FleetSummary:
    """Counts that describe a fleet (``lab fleet`` prints them)."""

    devices: int
    users: int
    join_types: dict[str, int]
    trust: dict[str, int]  # effective policy of the first user, from the registry
    eligible_looking: int
    special: dict[str, int]

    def as_dict(self) -> dict[str, object]:
        return {
            "devices": self.devices,
            "users": self.users,
            "join_types": dict(self.join_types),
            "trust": dict(self.trust),
            "eligible_looking": self.eligible_looking,
            "special": dict(self.special),
        }


def summarize(fleet: Fleet) -> FleetSummary:
    """Count join types, effective trust, eligible-looking devices and the special cases of a fleet."""
    joins: Counter[str] = Counter({j: 0 for j in get_args(JoinType)})
    trusts: Counter[str] = Counter({t: 0 for t in TRUST_MODELS})
    special: Counter[str] = Counter()
    users = eligible = 0
    no_ek = {d.dns_name.casefold() for d in fleet.domains if not d.entra_kerberos}
    no_ek_netbios = {d.netbios.casefold() for d in fleet.domains if not d.entra_kerberos}
    for device in fleet.devices:
        joins[device.join_type] += 1
        trusts[effective_trust(fleet, device)] += 1
        eligible += looks_eligible(fleet, device)
        users += len(device.users)
        tenant_id = fleet.tenant.tenant_id if device.mdm_enrolled else None
        views = [policy.evaluate(device.registry, tenant_id, u.sid) for u in device.users[:1]]
        flags = {
            "old build (no cloud trust support)": not device.os.supports_cloud_trust,
            "dsregcmd display-bug build": device.os.has_dsregcmd_display_bug,
            "no TPM": not device.tpm.present,
            "VPN-only": device.vpn_only,
            "no DC line of sight now": device.domain_joined and not device.dc_reachable,
            "shared (2+ users)": len(device.users) > 1,
            "GPO and MDM both configure Hello": any(v.source == "gpo" and v.mdm for v in views),
            "cert policy in a user GPO hive": any(
                device.registry.key_exists(policy.gpo_user_key(u.sid)) for u in device.users
            ),
            "domain without Entra Kerberos": (device.domain or "").casefold() in no_ek
            or any(u.domain.casefold() in no_ek_netbios for u in device.users),
            "pilot group": "pilot" in device.groups,
        }
        special.update(name for name, hit in flags.items() if hit)
        for user in device.users:
            user_flags = {
                "privileged users": user.privileged,
                "users without PRT": not user.has_prt and device.azure_ad_joined,
                "users without container": user.container is None,
                "containers with passkeys": user.container is not None and user.container.has_passkeys,
                "users away": user.behaviour.compliance == "away",
                "users never complying": user.behaviour.compliance == "never",
                "users preferring RDP": user.behaviour.prefers_rdp,
                "users signed in": device.session_of(user) is not None,
            }
            special.update(name for name, hit in user_flags.items() if hit)
    return FleetSummary(
        devices=len(fleet.devices),
        users=users,
        join_types=dict(joins),
        trust=dict(trusts),
        eligible_looking=eligible,
        special=dict(sorted(special.items())),
    )
