"""Fixtures for lab tests: a small fleet built by hand, so each test states the situation it needs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from migrator.lab import policy
from migrator.lab.clock import VirtualClock
from migrator.lab.model import Device, Domain, Fleet, HelloContainer, OsInfo, Tenant, User
from migrator.lab.runtime import new_lab
from migrator.lab.windows import Lab

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
TENANT = "8e2a1b4c-3f5d-4e6a-9b7c-1d2e3f4a5b6c"


def make_domain(dns: str = "corp.contoso.com", netbios: str = "CORP", entra_kerberos: bool = True) -> Domain:
    return Domain(
        dns_name=dns,
        netbios=netbios,
        sid="S-1-5-21-1004336348-1177238915-682003330",
        guid="5a9c1e2f-0b3d-4c6e-8f7a-9b0c1d2e3f40",
        forest=dns,
        entra_kerberos=entra_kerberos,
        dc_name=f"DC01.{dns}",
        dc_address="10.0.0.10",
    )


def make_user(sam: str, rid: int, trust: str | None = None, domain: str = "CORP") -> User:
    container = None
    if trust is not None:
        container = HelloContainer(trust=trust, key_id="{" + f"{rid:08d}-aaaa-4bbb-8ccc-000000000000" + "}", created=T0)  # type: ignore[arg-type]
    return User(
        sam=sam,
        domain=domain,
        upn=f"{sam}@contoso.com",
        sid=f"S-1-5-21-1004336348-1177238915-682003330-{rid}",
        display_name=sam.title(),
        container=container,
    )


def make_device(
    name: str = "PC-0001",
    join_type: str = "hybrid",
    trust: str = "cert",
    users: list[User] | None = None,
    build: int = 19045,
    ubr: int = 5011,
) -> Device:
    device = Device(
        name=name,
        address="127.20.0.1",
        join_type=join_type,  # type: ignore[arg-type]
        domain="corp.contoso.com" if join_type in ("hybrid", "domain") else None,
        os=OsInfo(
            product_name="Windows 10 Enterprise",
            caption="Microsoft Windows 10 Enterprise",
            edition_id="Enterprise",
            display_version="22H2",
            build=build,
            ubr=ubr,
        ),
        users=users if users is not None else [make_user("alice", 1101, trust if trust != "none" else None)],
        local_admins=["LAB\\migrator-admin"],
    )
    reg = device.registry
    if trust != "none":
        reg.set_value(policy.GPO_KEY, "Enabled", 1, "REG_DWORD")
        reg.set_value(policy.GPO_KEY, "RequireSecurityDevice", 1, "REG_DWORD")
    if trust == "cert":
        reg.set_value(policy.GPO_KEY, "UseCertificateForOnPremAuth", 1, "REG_DWORD")
    if trust == "cloud":
        reg.set_value(policy.GPO_KEY, "UseCloudTrustForOnPremAuth", 1, "REG_DWORD")
    return device


def make_fleet(devices: list[Device], domains: list[Domain] | None = None) -> Fleet:
    return Fleet(
        seed=7,
        created=T0,
        clock=T0,
        tenant=Tenant(tenant_id=TENANT, name="Contoso", default_domain="contoso.onmicrosoft.com"),
        domains=domains if domains is not None else [make_domain()],
        devices=devices,
    )


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(T0)


@pytest.fixture
def lab_of(clock: VirtualClock) -> Callable[..., Lab]:
    """Build a Lab around devices (and optional domains) on the test's virtual clock."""

    def build(*devices: Device, domains: list[Domain] | None = None) -> Lab:
        return new_lab(make_fleet(list(devices), domains), clock)

    return build
