"""A small hand-built fleet for the native commands: one domain with Entra Kerberos, three kinds of device."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from migrator.lab import native, policy
from migrator.lab.clock import VirtualClock
from migrator.lab.model import Device, User
from migrator.lab.runtime import new_lab
from migrator.lab.shell import NativeResult, Principal
from migrator.lab.windows import Lab
from tests.lab.conftest import T0, make_device, make_domain, make_fleet, make_user

# The published real outputs (copies of reference/outputs/ kept with the parser tests).
SAMPLES = Path(__file__).resolve().parents[2] / "parse" / "samples"


def sample_lines(name: str) -> list[str]:
    """A sample file's lines without its annotations (``# source: ...``, ``## variant ...``)."""
    path = SAMPLES / name
    if not path.exists():
        pytest.skip(f"sample {name} not available")
    return [line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith(("# ", "## "))]


def out_lines(result: NativeResult, stream: str = "stdout") -> list[str]:
    """A native result's stream as lines (CRLF is what the command wrote)."""
    value = result.stdout if stream == "stdout" else result.stderr
    assert "\n" not in value.replace("\r\n", ""), "console output must use CRLF line ends"
    return value.split("\r\n")[:-1] if value else []


@dataclass
class Fleet:
    """The lab plus handles on its devices and users."""

    lab: Lab
    clock: VirtualClock
    hybrid: Device  # Entra hybrid joined, Windows 11 23H2, cloud Kerberos trust policy
    entra: Device  # Entra joined, Windows 11 23H2, cloud Kerberos trust policy
    domain_only: Device  # domain joined only, Windows 10 22H2, no Hello policy
    alice: User  # hybrid: key trust container
    bob: User  # hybrid: certificate trust container
    dave: User  # entra: key trust container
    erin: User  # domain_only: no container

    def run(self, device: Device, principal: Principal, command: str, *args: str) -> NativeResult:
        return native.run_native(self.lab, device, principal, command, list(args))

    def as_user(self, device: Device, user: User) -> Principal:
        return self.lab.user_principal(device, user)

    def admin(self, device: Device) -> Principal:
        return self.lab.admin_principal(device)


def _cloud_trust(device: Device) -> None:
    device.registry.delete_value(policy.GPO_KEY, "UseCertificateForOnPremAuth")
    device.registry.set_value(policy.GPO_KEY, "UseCloudTrustForOnPremAuth", 1, "REG_DWORD")


@pytest.fixture
def fleet() -> Fleet:
    """Hybrid + Entra joined + domain-only devices, everyone signed in at the console."""
    alice = make_user("alice", 1101, "key")
    bob = make_user("bob", 1102, "cert")
    hybrid = make_device("PC-HYB", "hybrid", "key", users=[alice, bob], build=22631, ubr=4317)
    _cloud_trust(hybrid)
    dave = make_user("dave", 1104, "key")
    entra = make_device("PC-AAD", "entra", "key", users=[dave], build=22631, ubr=4317)
    entra.device_id = "126cafbf-18e6-47a8-ad06-d5affe132b36"
    _cloud_trust(entra)
    erin = make_user("erin", 1105, None)
    domain_only = make_device("PC-DOM", "domain", "none", users=[erin])
    clock = VirtualClock(T0)
    lab = new_lab(make_fleet([hybrid, entra, domain_only], [make_domain(entra_kerberos=True)]), clock)
    lab.sign_in(hybrid, alice)
    lab.sign_in(entra, dave)
    lab.sign_in(domain_only, erin)
    return Fleet(lab, clock, hybrid, entra, domain_only, alice, bob, dave, erin)
