"""`auth: kerberos` and `auth: negotiate` end to end: the product's PSRP (pypsrp) and WinRM (pywinrm) transports, its
directory client (ldap3 GSSAPI) and its CLI against a lab whose MIT KDCs run (one per realm, cross-realm trust).

Every test has its own ``KRB5CCNAME`` (a file in its tmp folder that a password-based run must never create: the
product keeps its tickets in a private MEMORY: cache) and a ``KRB5_CONFIG`` restored after it (the product puts an
inventory's ``krb5_conf`` first in it). Failures are provoked for real: an SPN the KDC does not have, a krb5.conf
naming a closed port, a ticket `kinit -l 2s` let expire, a ccache whose recorded KDC time offset (MIT's
``kdc_timesync``) puts this machine an hour ahead of the KDC, so the KDC answers KRB_AP_ERR_SKEW.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from migrator.cli import app
from migrator.directory.client import DirectoryClient
from migrator.directory.reader import read_entra_kerberos
from migrator.directory.settings import resolve_target
from migrator.errors import (
    AuthenticationFailed,
    ClockSkew,
    DirectoryUnreachable,
    KdcUnreachable,
    KerberosUnavailable,
    RemoteError,
    TicketExpired,
    UnknownServicePrincipal,
)
from migrator.inventory import Inventory, load_inventory
from migrator.lab.runtime import LabRuntime, read_lab_secrets
from migrator.lab.server.faults import FaultKind, FaultPlan, parse_fault_profile
from migrator.remote import kerberos, open_transport
from migrator.remote.credentials import Credentials, load_credentials
from migrator.remote.retry import should_retry
from migrator.remote.translate import translate
from migrator.scripts import load
from migrator.store import Store
from tests.lab.test_kerberos import kerberos_lab, requires_kerberos

__all__ = ["kerberos_lab"]  # the module-scoped lab with its KDCs (tests/lab/test_kerberos.py)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180), requires_kerberos]

Lab = tuple[LabRuntime, Path]
FACTS = load("collect_facts")


@pytest.fixture
def env(kerberos_lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's ccache path (KRB5CCNAME) and a KRB5_CONFIG restored afterwards; returns the ccache path."""
    ccache = tmp_path / "ccache"
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{ccache}")
    monkeypatch.setenv("KRB5_CONFIG", "/etc/krb5.conf")  # the inventory's krb5_conf is what names the realms
    return ccache


def _inventory(lab: Lab, folder: Path, defaults: dict[str, Any], devices: dict[str, dict[str, Any]] | None = None):  # type: ignore[no-untyped-def]
    """The lab's inventory with ``defaults`` changed (``{"auth": "kerberos"}`` is the one-line change)."""
    _, written = lab
    data = yaml.safe_load(written.read_text())
    data["defaults"].update(defaults)
    for entry in data["devices"]:
        entry.update((devices or {}).get(entry["name"], {}))
    data["defaults"]["ca_bundle"] = str(written.parent / "lab-ca.pem")
    if isinstance(data["defaults"].get("krb5_conf"), str):
        data["defaults"]["krb5_conf"] = str(written.parent / data["defaults"]["krb5_conf"])
    path = folder / "inventory.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_inventory(path)


def _password(lab: Lab) -> Credentials:
    return load_credentials(lab[1].parent / "lab-secrets.env", environ={}, interactive=False)


def _kinit(lab: Lab, *, lifetime: str | None = None) -> Credentials:
    """kinit into this test's KRB5CCNAME, then the credentials as the CLI finds them: none given, the ccache's."""
    secrets = read_lab_secrets(lab[1])
    result = subprocess.run(
        ["kinit", *(["-l", lifetime] if lifetime else []), secrets["MIGRATOR_PRINCIPAL"]],
        input=secrets["MIGRATOR_PASSWORD"] + "\n",
        capture_output=True,
        text=True,
        check=False,
        env={"KRB5_CONFIG": str(lab[1].parent / "krb5.conf"), **_krb5_env()},
    )
    assert result.returncode == 0, result.stderr
    credentials = load_credentials(None, environ={}, interactive=False)
    assert credentials.from_ccache and credentials.principal == secrets["MIGRATOR_PRINCIPAL"]
    return credentials


def _krb5_env() -> dict[str, str]:
    return {name: os.environ[name] for name in ("KRB5CCNAME", "PATH") if name in os.environ}


def _run(inventory: Inventory, name: str, credentials: Credentials, **overrides: Any) -> dict[str, Any]:
    entry = inventory.device(name)
    assert entry is not None
    transport = open_transport(entry, inventory.connection(entry).model_copy(update=overrides), credentials)
    try:
        return transport.run(FACTS).data
    finally:
        transport.close()


def _fails(inventory: Inventory, name: str, credentials: Credentials, **overrides: Any) -> RemoteError:
    with pytest.raises(RemoteError) as caught:
        _run(inventory, name, credentials, **overrides)
    return caught.value


def _services(cache: str) -> set[str]:
    """The service tickets a ccache holds (``HTTP/pc-0001.corp.contoso.com@CORP.CONTOSO.COM``)."""
    krb5 = kerberos.optional_module("krb5")
    context = krb5.init_context()
    return {
        cred.server.name.decode()
        for cred in krb5.cc_resolve(context, cache.encode())
        if cred.server.name and not cred.server.name.startswith((b"krbtgt/", b"krb5_ccache_conf_data"))
    }


def _http(lab: Lab) -> dict[str, Any]:
    return {"scheme": "http", "port": lab[0].server.http_port}


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("source", ["password", "ccache"])
@pytest.mark.parametrize("transport", ["psrp", "winrm"])
def test_kerberos_through_both_transports(
    kerberos_lab: Lab, env: Path, tmp_path: Path, transport: str, source: str, scheme: str
) -> None:
    """auth: kerberos, unmodified pypsrp/pywinrm, HTTP (Kerberos message encryption) and HTTPS, with a ticket from
    the password (a private MEMORY cache: the user's ccache is never created) or from kinit's ccache."""
    runtime, _ = kerberos_lab
    inventory = _inventory(kerberos_lab, tmp_path, {"auth": "kerberos", "transport": transport})
    credentials = _password(kerberos_lab) if source == "password" else _kinit(kerberos_lab)
    device = runtime.fleet.devices[1]  # in the second realm: the ticket is a cross-realm one
    overrides = _http(kerberos_lab) if scheme == "http" else {}
    assert _run(inventory, device.name, credentials, **overrides)["computer_name"] == device.name
    spn = f"HTTP/{device.fqdn.lower()}@{(device.domain or '').upper()}"
    if source == "password":
        assert not env.exists()  # the user's default ccache was neither read nor written
        cache = kerberos.tickets_for(credentials).ccache()
        assert cache.startswith("MEMORY:migrator-") and spn in _services(cache)
    else:
        assert spn in _services(f"FILE:{env}")  # the user's own cache got the service ticket, as kinit's would


@pytest.mark.parametrize("transport", ["psrp", "winrm"])
def test_negotiate_uses_kerberos_and_falls_back_to_ntlm_without_a_name(
    kerberos_lab: Lab, env: Path, tmp_path: Path, transport: str
) -> None:
    """auth: negotiate picks Kerberos for a device named by its FQDN, and NTLM for one known only by its IP
    address (no SPN to ask for), as Windows' Negotiate does."""
    runtime, _ = kerberos_lab
    named, bare = runtime.fleet.devices[2], runtime.fleet.devices[3]
    inventory = _inventory(
        kerberos_lab, tmp_path, {"auth": "negotiate", "transport": transport}, {bare.name: {"fqdn": None}}
    )
    credentials = _password(kerberos_lab)
    assert _run(inventory, named.name, credentials)["computer_name"] == named.name
    assert _run(inventory, bare.name, credentials)["computer_name"] == bare.name
    services = _services(kerberos.tickets_for(credentials).ccache())
    assert f"HTTP/{named.fqdn.lower()}@{(named.domain or '').upper()}" in services
    assert not any(bare.fqdn.lower() in s for s in services)


@pytest.mark.parametrize("transport", ["psrp", "winrm"])
def test_spn_service_and_hostname_come_from_the_inventory(
    kerberos_lab: Lab, env: Path, tmp_path: Path, transport: str
) -> None:
    """spn_hostname names the device for its SPN (an alias the KDC has); spn_service: host is accepted as Windows
    accepts it (HTTP maps to host); an SPN the KDC lacks is UnknownServicePrincipal, naming it, never retried."""
    runtime, _ = kerberos_lab
    device = runtime.fleet.devices[0]
    inventory = _inventory(
        kerberos_lab,
        tmp_path,
        {"auth": "kerberos", "transport": transport},
        {device.name: {"fqdn": None, "spn_hostname": device.fqdn}},
    )
    credentials = _password(kerberos_lab)
    assert _run(inventory, device.name, credentials)["computer_name"] == device.name
    assert _run(inventory, device.name, credentials, spn_service="host")["computer_name"] == device.name
    for overrides, spn in (
        ({"spn_hostname": "nohost.corp.contoso.com"}, "HTTP/nohost.corp.contoso.com"),
        ({"spn_service": "WSMAN"}, f"WSMAN/{device.fqdn.lower()}"),
    ):
        error = _fails(inventory, device.name, credentials, **overrides)
        assert isinstance(error, UnknownServicePrincipal), error
        assert spn in str(error) and "spn_hostname" in str(error)
        assert not should_retry(error, idempotent=True)
        assert read_lab_secrets(kerberos_lab[1])["MIGRATOR_PASSWORD"] not in str(error)


@pytest.mark.parametrize("transport", ["psrp", "winrm"])
def test_negotiate_falls_back_to_ntlm_when_the_kdc_has_no_such_spn(
    kerberos_lab: Lab, env: Path, tmp_path: Path, transport: str
) -> None:
    """auth: negotiate with an SPN the KDC lacks goes on with NTLM and the password (SPNEGO's fallback); with a
    ccache only (no password) it cannot, and says which SPN is missing."""
    runtime, _ = kerberos_lab
    device = runtime.fleet.devices[0]
    inventory = _inventory(
        kerberos_lab,
        tmp_path,
        {"auth": "negotiate", "transport": transport},
        {device.name: {"spn_hostname": "nohost.corp.contoso.com"}},
    )
    assert _run(inventory, device.name, _password(kerberos_lab))["computer_name"] == device.name
    error = _fails(inventory, device.name, _kinit(kerberos_lab))
    assert isinstance(error, UnknownServicePrincipal), error
    assert "HTTP/nohost.corp.contoso.com@CORP.CONTOSO.COM not found in Kerberos database" in str(error)


def _closed_port_conf(lab: Lab, folder: Path) -> Path:
    """The lab's krb5.conf with every KDC moved to a port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    text = (lab[1].parent / "krb5.conf").read_text()
    lines = [f"    kdc = 127.0.0.1:{port}" if line.strip().startswith("kdc =") else line for line in text.splitlines()]
    path = folder / "closed-krb5.conf"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("transport", ["psrp", "winrm"])
def test_kdc_unreachable_is_retried_and_negotiate_falls_back_to_ntlm(
    kerberos_lab: Lab, env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, transport: str
) -> None:
    """A krb5.conf naming a closed port: auth kerberos fails with KdcUnreachable (safe to retry, the device was
    not reached), with a password and with kinit's ccache (the service ticket needs the KDC); negotiate uses NTLM."""
    runtime, _ = kerberos_lab
    device = runtime.fleet.devices[0]
    ccache_credentials = _kinit(kerberos_lab)  # while the KDC can still be reached
    monkeypatch.setenv("KRB5_CONFIG", str(_closed_port_conf(kerberos_lab, tmp_path)))
    inventory = _inventory(kerberos_lab, tmp_path, {"auth": "kerberos", "transport": transport, "krb5_conf": None})
    for credentials in (_password(kerberos_lab), ccache_credentials):
        error = _fails(inventory, device.name, credentials)
        assert isinstance(error, KdcUnreachable), error
        assert "port 88" in str(error) and not error.may_have_run
        assert should_retry(error, idempotent=False)
    negotiate = _inventory(kerberos_lab, tmp_path, {"auth": "negotiate", "transport": transport, "krb5_conf": None})
    assert _run(negotiate, device.name, _password(kerberos_lab))["computer_name"] == device.name


@pytest.mark.parametrize("transport", ["psrp", "winrm"])
def test_an_expired_ticket_says_kinit_again(kerberos_lab: Lab, env: Path, tmp_path: Path, transport: str) -> None:
    """kinit -l 2s, then the ticket expires: TicketExpired saying to run kinit, not retried."""
    runtime, _ = kerberos_lab
    credentials = _kinit(kerberos_lab, lifetime="2s")
    time.sleep(4.0)  # past the 2 s, and past the second kdc_timesync may round the clock by
    inventory = _inventory(kerberos_lab, tmp_path, {"auth": "kerberos", "transport": transport})
    error = _fails(inventory, runtime.fleet.devices[0].name, credentials)
    assert isinstance(error, TicketExpired), error
    assert "kinit" in str(error) and not should_retry(error, idempotent=True)


def test_the_librarys_own_expired_ticket_error_is_translated(
    kerberos_lab: Lab, env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The GSSAPI error MIT raises for an expired TGT (KRB_AP_ERR_TKT_EXPIRED, minor code), as the clients see it,
    becomes TicketExpired (the transports check first; this is the translation behind that check)."""
    runtime, written = kerberos_lab
    monkeypatch.setenv("KRB5_CONFIG", str(written.parent / "krb5.conf"))
    _kinit(kerberos_lab, lifetime="2s")
    time.sleep(4.0)  # past the 2 s, and past the second kdc_timesync may round the clock by
    gssapi = kerberos.optional_module("gssapi")
    name = gssapi.Name(f"HTTP@{runtime.fleet.devices[0].fqdn}", gssapi.NameType.hostbased_service)
    with pytest.raises(gssapi.exceptions.GSSError) as caught:
        gssapi.SecurityContext(name=name, usage="initiate").step()
    assert isinstance(translate("PC", caught.value, sent=False), TicketExpired)


def _skew_ccache(path: Path, seconds: int) -> None:
    """Record a KDC time offset in a FILE ccache (v4 header tag 1, DeltaTime: what MIT's kdc_timesync stores): the
    library then dates its requests ``seconds`` away from the KDC's clock."""
    data = bytearray(path.read_bytes())
    assert data[:2] == b"\x05\x04" and data[4:8] == b"\x00\x01\x00\x08", "a v4 ccache with a DeltaTime tag"
    data[8:12] = struct.pack(">i", seconds)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("transport", ["psrp", "winrm"])
def test_clock_skew_is_named_as_such(kerberos_lab: Lab, env: Path, tmp_path: Path, transport: str) -> None:
    """This machine an hour ahead of the KDC: the KDC refuses the TGS request with KRB_AP_ERR_SKEW, which is
    ClockSkew saying to synchronise the clocks, never retried."""
    runtime, _ = kerberos_lab
    credentials = _kinit(kerberos_lab)
    _skew_ccache(env, 3600)
    inventory = _inventory(kerberos_lab, tmp_path, {"auth": "kerberos", "transport": transport})
    error = _fails(inventory, runtime.fleet.devices[0].name, credentials)
    assert isinstance(error, ClockSkew), error
    assert "synchronise" in str(error) and not should_retry(error, idempotent=True)


@pytest.mark.parametrize("transport", ["psrp", "winrm"])
def test_a_wrong_password_and_missing_libraries(
    kerberos_lab: Lab, env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, transport: str
) -> None:
    """The KDC refuses a wrong password: AuthenticationFailed, the password nowhere in the message. Without
    python-gssapi/krb5, KerberosUnavailable names the extra to install."""
    runtime, _ = kerberos_lab
    inventory = _inventory(kerberos_lab, tmp_path, {"auth": "kerberos", "transport": transport})
    good = _password(kerberos_lab)
    wrong = Credentials(good.username, type(good.password)("not-the-lab-password"), good.principal)
    error = _fails(inventory, runtime.fleet.devices[0].name, wrong)
    assert isinstance(error, AuthenticationFailed), error
    assert "not-the-lab-password" not in str(error) and "MIGRATOR_PASSWORD" in str(error)
    monkeypatch.setattr(kerberos, "missing_libraries", lambda **_: ["gssapi", "krb5"])
    error = _fails(inventory, runtime.fleet.devices[0].name, good)
    assert isinstance(error, KerberosUnavailable) and "migrator[kerberos]" in str(error)


def test_clock_skew_fault_in_a_profile() -> None:
    """`clock_skew` is a fault profile's kind like the others, with the device's offset in seconds."""
    profile = parse_fault_profile("faults:\n  - {kind: clock_skew, devices: [PC-0005], skew: -900}\n")
    plan = FaultPlan(profile)
    (rule,) = plan.decide("kerberos", "PC-0005")
    assert rule.kind is FaultKind.CLOCK_SKEW and rule.skew == -900
    assert plan.decide("kerberos", "PC-0001") == [] and plan.decide("auth", "PC-0005") == []


def test_inventory_refuses_kerberos_without_a_host_name(kerberos_lab: Lab, env: Path, tmp_path: Path) -> None:
    """auth: kerberos for a device known only by an IP address is refused at load, naming the field."""
    runtime, _ = kerberos_lab
    device = runtime.fleet.devices[0]
    with pytest.raises(Exception, match=r"devices\[0\]\.auth.*set fqdn or spn_hostname"):
        _inventory(kerberos_lab, tmp_path, {"auth": "kerberos"}, {device.name: {"fqdn": None}})


@pytest.mark.parametrize("source", ["password", "ccache"])
def test_directory_binds_with_kerberos(kerberos_lab: Lab, env: Path, tmp_path: Path, source: str) -> None:
    """ldap3 SASL GSSAPI against every lab DC (cross-realm), ticket from the password or kinit's ccache; the
    krbtgt_AzureAD key version is read (a constructed attribute, returned when asked for by name)."""
    runtime, _ = kerberos_lab
    inventory = _inventory(kerberos_lab, tmp_path, {"auth": "kerberos"})
    credentials = _password(kerberos_lab) if source == "password" else _kinit(kerberos_lab)
    data = yaml.safe_load(Path(inventory.path).read_text())
    data["directory"] = {"auth": "kerberos"}
    Path(inventory.path).write_text(yaml.safe_dump(data))
    inventory = load_inventory(inventory.path)
    versions = {}
    for domain in runtime.domains_data():
        with DirectoryClient(resolve_target(inventory, domain["name"]), credentials) as client:
            facts = read_entra_kerberos(client)
        versions[domain["name"]] = facts.key_version if facts.exists else "absent"
    assert all(v is not None for v in versions.values()), versions
    assert any(isinstance(v, int) and v >= 1 for v in versions.values()), versions
    if source == "password":
        assert not env.exists()


def test_directory_kdc_unreachable(
    kerberos_lab: Lab, env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The directory's Kerberos bind with no KDC answering: DirectoryUnreachable (read again later)."""
    runtime, _ = kerberos_lab
    monkeypatch.setenv("KRB5_CONFIG", str(_closed_port_conf(kerberos_lab, tmp_path)))
    inventory = _inventory(kerberos_lab, tmp_path, {"krb5_conf": None})
    data = yaml.safe_load(Path(inventory.path).read_text())
    data["directory"] = {"auth": "kerberos"}
    Path(inventory.path).write_text(yaml.safe_dump(data))
    target = resolve_target(load_inventory(inventory.path), runtime.domains_data()[0]["name"])
    with pytest.raises(DirectoryUnreachable, match="KDC"):
        DirectoryClient(target, _password(kerberos_lab)).open()


def test_probe_and_a_wave_through_the_cli(kerberos_lab: Lab, env: Path, tmp_path: Path) -> None:
    """`migrator probe` and `migrator run` with `defaults: {auth: kerberos}` and the directory read with Kerberos,
    its own credentials (credentials: directory) coming from the --secrets file only."""
    runtime, written = kerberos_lab
    inventory = _inventory(kerberos_lab, tmp_path, {"auth": "kerberos"})
    data = yaml.safe_load(Path(inventory.path).read_text())
    data["directory"] = {"auth": "kerberos", "credentials": "directory"}
    Path(inventory.path).write_text(yaml.safe_dump(data))
    lab_secrets = read_lab_secrets(written)
    secrets = tmp_path / "secrets.env"
    secrets.write_text(
        (written.parent / "lab-secrets.env").read_text()
        + f"MIGRATOR_DIRECTORY_USERNAME={lab_secrets['MIGRATOR_USERNAME']}\n"
        + f"MIGRATOR_DIRECTORY_PASSWORD={lab_secrets['MIGRATOR_PASSWORD']}\n"
    )
    runner = CliRunner()
    probe = runner.invoke(app, ["probe", "-i", str(inventory.path), "--json", "--secrets", str(secrets)], env={})
    assert probe.exit_code == 0, probe.output
    report = json.loads(probe.stdout)
    assert {d["name"] for d in report["devices"]} == {d.name for d in runtime.fleet.devices}
    assert not any("Kerberos:" in " ".join(d.get("reasons", [])) for d in report["devices"])  # no auth failure
    assert report["directory"]["failures"] == {}, report["directory"]
    device = runtime.fleet.devices[0]
    state = tmp_path / "state"
    wave = runner.invoke(
        app,
        [
            *("run", "-i", str(inventory.path), "--limit", device.name, "--yes", "--no-wait"),
            *("--state", str(state), "--secrets", str(secrets), "--change-ticket", "CHG-KRB"),
        ],
        env={},
    )
    assert wave.exit_code == 0, wave.output
    assert "WARNING" not in wave.output  # the directory was read (its credentials from --secrets only)
    store = Store.open(state)
    try:
        (row,) = store.list_devices()
    finally:
        store.close()
    assert row.name == device.name and row.state not in ("pending", "error", "unreachable"), (row.state, row.last_error)
    resumed = runner.invoke(app, ["resume", "--state", str(state), "--secrets", str(secrets), "--no-wait"], env={})
    assert resumed.exit_code == 0, resumed.output
    assert "WARNING" not in resumed.output  # resume reads the directory's credentials from --secrets too
    for output in (wave.output, resumed.output, probe.output):
        assert lab_secrets["MIGRATOR_PASSWORD"] not in output
    assert not env.exists()


@pytest.mark.parametrize(("transport", "auth"), [("psrp", "kerberos"), ("psrp", "negotiate"), ("winrm", "kerberos")])
def test_a_device_whose_clock_is_off(kerberos_lab: Lab, env: Path, tmp_path: Path, transport: str, auth: str) -> None:
    """The lab's clock_skew fault: the device's clock an hour ahead, its listener refuses the AP-REQ with a
    KRB-ERROR KRB_AP_ERR_SKEW token as Windows does (in a SPNEGO reject for Negotiate). pypsrp hands it to GSS-API,
    which reads the code: ClockSkew. pywinrm's requests-kerberos steps a new context with it, which MIT rejects as
    an invalid token, and then reports the 401: the reason is lost in the client, AuthenticationFailed."""
    runtime, _ = kerberos_lab
    device = runtime.fleet.devices[4]
    runtime.server.faults.add(kind="clock_skew", devices=[device.name], skew=3600.0)
    try:
        inventory = _inventory(kerberos_lab, tmp_path, {"auth": auth, "transport": transport})
        error = _fails(inventory, device.name, _password(kerberos_lab))
    finally:
        runtime.server.faults.clear()
    assert isinstance(error, ClockSkew if transport == "psrp" else AuthenticationFailed), error
    assert not should_retry(error, idempotent=True)


def test_probe_with_kinits_ticket_and_no_password(kerberos_lab: Lab, env: Path, tmp_path: Path) -> None:
    """`kinit` then `migrator probe` with no --secrets and no MIGRATOR_PASSWORD: the ccache signs in to every
    device and every DC (directory auth: kerberos); the ccache holds their service tickets afterwards."""
    runtime, _ = kerberos_lab
    inventory = _inventory(kerberos_lab, tmp_path, {"auth": "kerberos"})
    data = yaml.safe_load(Path(inventory.path).read_text())
    data["directory"] = {"auth": "kerberos"}
    Path(inventory.path).write_text(yaml.safe_dump(data))
    _kinit(kerberos_lab)
    result = CliRunner().invoke(app, ["probe", "-i", str(inventory.path), "--json"], env={"MIGRATOR_PASSWORD": ""})
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["directory"]["failures"] == {}, report["directory"]
    assert not any("Kerberos:" in " ".join(d.get("reasons", [])) for d in report["devices"])
    services = _services(f"FILE:{env}")
    assert all(f"HTTP/{d.fqdn.lower()}@{(d.domain or '').upper()}" in services for d in runtime.fleet.devices)
    assert any(s.startswith("ldap/") for s in services)
