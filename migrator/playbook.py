"""Playbooks: which documented migration a wave performs, and with which settings.

A playbook is YAML validated by pydantic; errors name file, line and field. Three ship in ``playbooks/``:
``cert-trust-to-cloud-kerberos.yaml``, ``key-trust-to-cloud-kerberos.yaml`` and ``to-cloud-kerberos.yaml``
(the default: each device goes down the path its probe found).

The ``steps`` list names steps of the catalogue below, in the documented order (MS docs "Windows Hello for
Business cloud Kerberos trust": key trust → enable cloud trust, sign out and in; certificate trust → disable the
certificate trust policy, enable cloud trust, delete the container in the user's context, sign out and in,
re-provision). The machine is built from the listed steps; safety steps cannot be left out where a later step
depends on them (no ``delete_container`` without ``confirm_policy`` before it).
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from migrator.yamlsource import INPUT_LIMIT, InputFileError, Problem, clip, load_yaml, validate

# The step vocabulary of playbooks, in the only order they may run.
STEP_ORDER: tuple[str, ...] = (
    "preflight",  # read-only facts: join type, build, TPM, policy, users, sessions, containers, DC
    "snapshot_policy",  # record the policy values about to change (rollback restores them)
    "disable_cert_trust",  # cert path: UseCertificateForOnPremAuth off in every source
    "enable_cloud_trust",  # Enabled=1, UseCloudTrustForOnPremAuth=1 (local channel)
    "refresh_policy",  # external channel: gpupdate /force, then wait until the device reports it effective
    "confirm_policy",  # effective policy is cloud trust and no cert-trust policy from any source
    "check_dc",  # per user on hybrid devices: line of sight to a DC (nltest)
    "delete_container",  # per user, in the user's own context: the POINT OF NO RETURN
    "prompt_sign_out",  # per user: message asking to sign out and back in
    "wait_for_sign_in",  # per user: next sign-in (with DC line of sight on hybrid devices)
    "wait_for_reprovision",  # per user: a new container exists (cert path, reset key path)
    "verify_cloud",  # per user: cloud trust container, cloud TGT in the user's session
)
STEP_NAMES = frozenset(STEP_ORDER)
POINT_OF_NO_RETURN = frozenset({"delete_container"})
# A step that needs another before it (safety): the machine refuses a playbook that lacks it.
REQUIRES: dict[str, tuple[str, ...]] = {
    "delete_container": ("preflight", "confirm_policy"),
    "confirm_policy": ("preflight",),
    "snapshot_policy": ("preflight",),
    "disable_cert_trust": ("snapshot_policy",),
    "enable_cloud_trust": ("snapshot_policy",),
    "wait_for_reprovision": ("delete_container",),
    "verify_cloud": ("preflight",),
}

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$", re.IGNORECASE)
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


def parse_duration(value: Any) -> float:
    """``90``, ``"90s"``, ``"15m"``, ``"2h"``, ``"7d"`` → seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or text like '15m', '2h', '7d'")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    match = _DURATION.match(str(value)) if len(str(value)) < 100 else None
    if not match:
        raise ValueError(f"{clip(value, 60)!r} is not a duration (use seconds or text like '15m', '2h', '7d')")
    unit = match.group(2).lower() if match.group(2) else None
    return float(match.group(1)) * _UNIT[unit]


Duration = Annotated[float, BeforeValidator(parse_duration)]
YEAR = 365 * 86400.0
# A wait or deadline: more than nothing (a recheck every 0 s would spin) and at most a year (a typo such as
# '7000d' is refused rather than parking devices for decades).
Wait = Annotated[float, BeforeValidator(parse_duration), Field(gt=0, le=YEAR)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# An AD group as a playbook names it: its sAMAccountName (pre-Windows 2000 name, at most 256 characters and none
# of " / \ [ ] : ; | = , + * ? < > @, [MS-ADTS] 3.1.1.5.2.6), looked up in each device's own domain; or its
# distinguished name (CN=...,DC=...), which names one domain's group (devices of other domains are refused).
_GROUP_SAM = re.compile(r'^[^"/\\\[\]:;|=,+*?<>@]{1,256}$')
_GROUP_DN = re.compile(r"^\s*CN=.+,\s*DC=[^,]+(,\s*DC=[^,]+)*\s*$", re.IGNORECASE)


def check_group_name(value: Any) -> str:
    """A group's sAMAccountName or DN (see :data:`_GROUP_SAM`); surrounding spaces dropped."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("a group is named by its sAMAccountName (GG-WHfB-CloudTrust) or its DN (CN=...,DC=...)")
    text = value.strip()
    if is_group_dn(text) or _GROUP_SAM.match(text):
        return text
    raise ValueError(
        f"{clip(text, 80)!r} is neither a group's sAMAccountName (no \" / \\ [ ] : ; | = , + * ? < > @) nor a DN "
        "(CN=...,DC=...)"
    )


_OBJECT_ID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def is_group_dn(name: str) -> bool:
    return bool(_GROUP_DN.match(name))


GroupName = Annotated[str, BeforeValidator(check_group_name)]


class PolicySettings(_Strict):
    # local: the orchestrator writes the policy registry values itself (HKLM\SOFTWARE\Policies\...);
    # external: GPO/Intune deploys them; the orchestrator forces a refresh and waits until they are effective;
    # ad-group: the wave moves each batch's computer accounts between the GPO filter groups (into
    # cloud_trust_group, out of cert_trust_group) before its devices' refresh_policy step, then as external;
    # intune-group: the same with the batch's Entra device objects and the groups the Intune Windows Hello for
    # Business profiles are assigned to, then syncDevice (migrator.cloud.groups).
    channel: Literal["local", "external", "ad-group", "intune-group"] = "local"
    require_security_device: bool = True
    refresh_deadline: Wait = 3600.0  # external and ad-group channels: how long to wait for the policy to arrive
    # ad-group: the security filter of the GPO that sets cloud Kerberos trust (required), and of the GPO that sets
    # certificate trust (optional: a wave of key trust devices has none to leave). intune-group: the Entra groups
    # (by object id: a displayName need not be unique in Entra ID) the cloud trust and the certificate trust
    # profiles are assigned to.
    cloud_trust_group: GroupName | None = None
    cert_trust_group: GroupName | None = None

    @model_validator(mode="after")
    def _groups_go_with_ad_group(self) -> PolicySettings:
        if self.channel == "ad-group" and self.cloud_trust_group is None:
            raise ValueError(
                "the ad-group channel needs cloud_trust_group: the group the cloud trust GPO is filtered to"
            )
        if self.channel == "intune-group":
            if self.cloud_trust_group is None:
                raise ValueError(
                    "the intune-group channel needs cloud_trust_group: the object id of the Entra group the cloud "
                    "trust profile is assigned to"
                )
            for field_name in ("cloud_trust_group", "cert_trust_group"):
                value = getattr(self, field_name)
                if value is not None and not _OBJECT_ID.match(value):
                    raise ValueError(
                        f"{field_name}: {clip(value, 80)!r} is not an Entra group object id (a GUID such as "
                        "0b6e5c52-3a7d-4c1e-9f2a-7d4b2c1e8a90; Entra ID > Groups > the group > Object ID)"
                    )
        if not self.by_group and (self.cloud_trust_group or self.cert_trust_group):
            raise ValueError(
                "cloud_trust_group and cert_trust_group only apply to the ad-group and intune-group channels"
            )
        if (
            self.cert_trust_group is not None
            and self.cloud_trust_group is not None
            and self.cert_trust_group.casefold() == self.cloud_trust_group.casefold()
        ):
            raise ValueError("cloud_trust_group and cert_trust_group name the same group")
        return self

    @property
    def by_refresh(self) -> bool:
        """Whether the policy arrives through a refresh (GPO/Intune), not from the orchestrator's registry writes."""
        return self.channel in ("external", "ad-group", "intune-group")

    @property
    def by_group(self) -> bool:
        """Whether the wave moves each batch between the groups the policies are assigned to."""
        return self.channel in ("ad-group", "intune-group")


class Waits(_Strict):
    recheck_every: Wait = 3600.0  # how often a waiting device is looked at again
    user_deadline: Wait = 7 * 86400.0  # a user who never signs in/out within this → stalled
    dc_deadline: Wait = 7 * 86400.0  # no DC line of sight within this → stalled
    reprovision_deadline: Wait = 7 * 86400.0  # no new container within this → stalled
    # A device that does not answer (refused, timed out, rebooting) is tried again at each recheck; past this
    # since the first failure it is parked as `unreachable` (not failed) until `migrator resume`.
    unreachable_deadline: Wait = 3 * 86400.0


class Prompt(_Strict):
    text: str = (
        "IT is updating Windows Hello for Business on this PC. Please save your work, sign out and sign back in. "
        "You may be asked to set up your PIN again."
    )
    seconds: int = Field(default=600, ge=0, le=86400)  # how long the message stays on screen (msg /TIME)
    # A user who signed in again with Hello but got no cloud TGT (typically: signed in off the corporate network,
    # so no DC answered the first sign-in) is asked again, at most `reminders` times, `remind_after` apart, and
    # only while the device has line of sight to a DC.
    reminders: int = Field(default=2, ge=0, le=10)
    remind_after: Wait = 86400.0


class Retries(_Strict):
    attempts: int = Field(default=4, ge=1, le=20)
    initial_wait: Duration = 2.0
    max_wait: Duration = 60.0
    total: Duration = 600.0


class EntraSettings(_Strict):
    # After a user is verified on cloud Kerberos trust, delete from Entra ID the Hello key of the container
    # migrator deleted on that device (the NgcKeyId recorded at preflight), through Microsoft Graph. Off by
    # default: it needs the app permission UserAuthenticationMethod.ReadWrite.All (migrator.cloud).
    remove_stale_hello_keys: bool = False


class Playbook(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    description: str = ""
    path: Literal["key", "cert", "auto"]  # auto: each device takes the path its preflight found
    steps: list[str]
    policy: PolicySettings = PolicySettings()
    tenant_id: str | None = Field(default=None, pattern=r"^[0-9a-fA-F-]{36}$")
    users: Literal["with_container", "signed_in"] = "with_container"
    reset_key_trust_containers: bool = False  # key path: opt into the guarded delete + re-provisioning too
    # Domains known to have the Entra Kerberos server object (Set-AzureADKerberosServer); None = not asserted,
    # the probe's evidence decides and an unknown domain is a warning.
    entra_kerberos_domains: list[str] | None = None
    waits: Waits = Waits()
    prompt: Prompt = Prompt()
    retries: Retries = Retries()
    entra: EntraSettings = EntraSettings()

    @model_validator(mode="after")
    def _steps_are_known_ordered_and_safe(self) -> Playbook:
        unknown = [s for s in self.steps if s not in STEP_NAMES]
        if unknown:
            raise ValueError(f"unknown step {clip(unknown[0])!r}; the catalogue is: {', '.join(STEP_ORDER)}")
        if len(set(self.steps)) != len(self.steps):
            raise ValueError("a step is listed twice")
        positions = [STEP_ORDER.index(s) for s in self.steps]
        if positions != sorted(positions):
            raise ValueError(f"steps must follow the documented order: {', '.join(STEP_ORDER)}")
        listed = set(self.steps)
        for step in self.steps:
            missing = [r for r in REQUIRES.get(step, ()) if r not in listed]
            if missing:
                raise ValueError(f"step {step!r} requires {', '.join(repr(m) for m in missing)} before it")
        if self.path == "cert" and "delete_container" not in listed:
            raise ValueError("the certificate trust path has no direct route: it needs 'delete_container'")
        if self.path == "cert" and "disable_cert_trust" not in listed and self.policy.channel == "local":
            raise ValueError("the certificate trust path needs 'disable_cert_trust' with the local policy channel")
        if self.policy.by_refresh and "refresh_policy" not in listed:
            raise ValueError(f"the {self.policy.channel} policy channel needs 'refresh_policy' to wait for GPO/Intune")
        if self.policy.by_group and listed & {"disable_cert_trust", "enable_cloud_trust"}:
            raise ValueError(
                f"the {self.policy.channel} policy channel writes no registry value: leave out 'disable_cert_trust' "
                "and 'enable_cloud_trust' (the GPOs or Intune profiles assigned to the groups deliver them)"
            )
        return self

    def has(self, step: str) -> bool:
        return step in self.steps


BUILTIN_DIR = "playbooks"
DEFAULT_PLAYBOOK = "to-cloud-kerberos"


def builtin_names() -> list[str]:
    folder = resources.files("migrator").joinpath(BUILTIN_DIR)
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def builtin_path(name: str) -> Path:
    """The shipped playbook of that name (``migrator/playbooks/<name>.yaml``)."""
    folder = resources.files("migrator").joinpath(BUILTIN_DIR)
    candidate = folder.joinpath(f"{name}.yaml")
    if not candidate.is_file():
        raise InputFileError(
            [Problem(name, None, "--playbook", f"no such playbook; shipped ones: {', '.join(builtin_names())}")]
        )
    return Path(str(candidate))


def load_playbook(ref: str | Path | None = None) -> Playbook:
    """A playbook file, or a shipped playbook by name (the default when ``ref`` is None)."""
    if ref is None:
        path = builtin_path(DEFAULT_PLAYBOOK)
    else:
        path = Path(ref)
        if not path.exists() and not path.suffix and "/" not in str(ref):
            path = builtin_path(str(ref))
    doc = load_yaml(path, "playbook", INPUT_LIMIT)
    if not isinstance(doc.data, dict):
        raise InputFileError([Problem(str(path), 1, "", "a playbook is a mapping (name, path, steps, ...)")])
    return validate(doc, Playbook, root=("steps",))  # the model's own checks are about its steps
