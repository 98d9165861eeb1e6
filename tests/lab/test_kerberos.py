"""The lab's Kerberos with unmodified clients: kinit, gssapi, ldap3 (GSSAPI), pypsrp and pywinrm (kerberos).

One lab with its KDCs runs for the module, on free loopback addresses and ports. Every test sets its own
``KRB5_CONFIG`` (the ``krb5.conf`` the lab wrote) and ``KRB5CCNAME`` (a ccache in its tmp folder) through
monkeypatch: MIT krb5 reads both when a call makes a new context, so in-process clients see them.
"""

from __future__ import annotations

import base64
import importlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ldap3
import pytest
import requests
import spnego
import winrm
import yaml
from ldap3.protocol.sasl.sasl import send_sasl_negotiation
from pypsrp.client import Client
from typer.testing import CliRunner

from migrator.cli import app
from migrator.inventory import load_inventory
from migrator.lab.directory.kdc import missing_tools
from migrator.lab.fleet import generate_fleet, parse_mix
from migrator.lab.fleetfile import save_fleet
from migrator.lab.model import Fleet
from migrator.lab.runtime import LabPorts, LabRuntime, read_lab_secrets
from tests.loopback import free_addresses

try:  # optional: the `kerberos` extra; without it (outside CI) the Kerberos tests skip
    gssapi: Any = importlib.import_module("gssapi")
    importlib.import_module("gssapi.raw")
except ImportError:
    gssapi = None

REPO = Path(__file__).resolve().parents[2]
IN_CI = bool(os.environ.get("CI") or os.environ.get("MIGRATOR_CI"))


def _why_not() -> str | None:
    missing = missing_tools()
    if missing:
        return f"MIT Kerberos is not installed ({', '.join(missing)}): bash .ci/system-packages installs it"
    if gssapi is None:
        return "python-gssapi is not installed: pip install -e '.[kerberos]'"
    return None


# Outside CI a machine without krb5 skips these; in CI they run, and fail loudly if krb5 is missing.
requires_kerberos = pytest.mark.skipif(not IN_CI and _why_not() is not None, reason=_why_not() or "")
pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _fleet() -> Fleet:
    fleet = generate_fleet(6, 5, parse_mix("key=50,cert=50,cloud=0,none=0"))
    for device, address in zip(fleet.devices, free_addresses(len(fleet.devices)), strict=True):
        device.address = address
    return fleet


@pytest.fixture(scope="module")
def kerberos_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LabRuntime, Path]]:
    if _why_not() is not None and not IN_CI:
        pytest.skip(_why_not() or "")
    fleet = _fleet()
    dc_addresses = dict(zip((d.dns_name for d in fleet.domains), free_addresses(len(fleet.domains)), strict=True))
    folder = tmp_path_factory.mktemp("kerberos") / "lab"
    runtime = LabRuntime(
        fleet,
        folder,
        speed=600.0,
        ports=LabPorts(http=0, https=0, ldap=0, ldaps=0),
        dc_addresses=dc_addresses,
        kerberos=True,
    )
    runtime.start()
    inventory = folder / "inventory.yaml"
    runtime.write_inventory(inventory)
    try:
        yield runtime, inventory
    finally:
        runtime.stop()


@pytest.fixture
def krb5_env(kerberos_lab: tuple[LabRuntime, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's KRB5_CONFIG (the lab's) and its own ccache; returns the ccache path."""
    _, inventory = kerberos_lab
    monkeypatch.setenv("KRB5_CONFIG", str(inventory.parent / "krb5.conf"))
    ccache = tmp_path / "ccache"
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{ccache}")
    return ccache


def _kinit(inventory: Path) -> None:
    secrets = read_lab_secrets(inventory)
    result = subprocess.run(
        ["kinit", secrets["MIGRATOR_PRINCIPAL"]],
        input=secrets["MIGRATOR_PASSWORD"] + "\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@requires_kerberos
def test_inventory_publishes_kdc_ports_krb5_conf_and_principal(kerberos_lab: tuple[LabRuntime, Path]) -> None:
    """`kdc_port` per domain, a krb5.conf beside the inventory, MIGRATOR_PRINCIPAL as user@REALM."""
    runtime, inventory = kerberos_lab
    data = yaml.safe_load(inventory.read_text())
    domains = data["lab"]["domains"]
    assert all(isinstance(d["kdc_port"], int) and d["kdc_port"] > 0 for d in domains)
    conf = (inventory.parent / "krb5.conf").read_text()
    for domain in domains:
        assert f"kdc = {domain['dc_address']}:{domain['kdc_port']}" in conf
        assert f".{domain['name']} = {domain['realm']}" in conf
    assert "dns_lookup_kdc = false" in conf and "rdns = false" in conf
    loaded = load_inventory(inventory)  # the product's reader takes the contract as written
    assert loaded.lab is not None and [d.kdc_port for d in loaded.lab.domains] == [d["kdc_port"] for d in domains]
    secrets = read_lab_secrets(inventory)
    assert secrets["MIGRATOR_PRINCIPAL"] == f"migrator-admin@{domains[0]['realm']}"
    assert runtime.kdc is not None and runtime.kdc.keytab.stat().st_mode & 0o077 == 0
    assert str(runtime.kdc.folder).startswith(str(inventory.parent))  # the state folder, never /etc


@requires_kerberos
def test_kinit_with_the_written_krb5_conf_and_a_cross_realm_ticket(
    kerberos_lab: tuple[LabRuntime, Path], krb5_env: Path
) -> None:
    """kinit gets a TGT with the lab password; kvno then gets a device's HTTP/ ticket in another realm."""
    runtime, inventory = kerberos_lab
    _kinit(inventory)
    assert krb5_env.exists()
    other = next(d for d in runtime.fleet.devices if d.domain and d.domain.upper() != runtime.kdc.realms[0].name)  # type: ignore[union-attr]
    result = subprocess.run(["kvno", "-S", "HTTP", other.fqdn], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    listing = subprocess.run(["klist"], capture_output=True, text=True, check=True).stdout
    assert f"HTTP/{other.fqdn.lower()}@{other.domain.upper()}" in listing  # type: ignore[union-attr]


@requires_kerberos
def test_gssapi_acquires_credentials_from_a_password(kerberos_lab: tuple[LabRuntime, Path], krb5_env: Path) -> None:
    """gssapi.raw.acquire_cred_with_password gets the admin's TGT from the password, without kinit."""
    _, inventory = kerberos_lab
    secrets = read_lab_secrets(inventory)
    name = gssapi.Name(secrets["MIGRATOR_PRINCIPAL"], gssapi.NameType.kerberos_principal)
    acquired = gssapi.raw.acquire_cred_with_password(name, secrets["MIGRATOR_PASSWORD"].encode(), usage="initiate")
    assert str(gssapi.Credentials(acquired.creds).name) == secrets["MIGRATOR_PRINCIPAL"]
    with pytest.raises(gssapi.exceptions.GSSError):
        gssapi.raw.acquire_cred_with_password(name, b"not the password", usage="initiate")


@requires_kerberos
def test_gssapi_reads_the_ccache_kinit_made(kerberos_lab: tuple[LabRuntime, Path], krb5_env: Path) -> None:
    """After kinit, default initiator credentials come from KRB5CCNAME."""
    _, inventory = kerberos_lab
    _kinit(inventory)
    assert str(gssapi.Credentials(usage="initiate").name) == read_lab_secrets(inventory)["MIGRATOR_PRINCIPAL"]


@requires_kerberos
def test_ldap3_gssapi_bind_on_every_dc(kerberos_lab: tuple[LabRuntime, Path], krb5_env: Path) -> None:
    """ldap3 SASL/KERBEROS binds to each domain's DC (ldap/<dc fqdn>, cross-realm) and searches."""
    runtime, inventory = kerberos_lab
    _kinit(inventory)
    for domain in runtime.domains_data():
        server = ldap3.Server(domain["dc_address"], port=domain["ldap_port"], get_info=ldap3.NONE)
        connection = ldap3.Connection(
            server,
            authentication=ldap3.SASL,
            sasl_mechanism=ldap3.KERBEROS,
            sasl_credentials=(domain["dc_hostname"],),
        )
        assert connection.bind(), connection.result
        netbios = runtime.directory.controller(domain["name"]).directory.domain.netbios
        assert connection.extend.standard.who_am_i() == f"u:{netbios}\\migrator-admin"
        assert connection.search(runtime.directory.controller(domain["name"]).directory.tree.base_dn, "(cn=krbtgt)")
        connection.unbind()


@requires_kerberos
def test_ldap3_gssapi_without_a_ticket_for_the_dc_fails(kerberos_lab: tuple[LabRuntime, Path], krb5_env: Path) -> None:
    """Naming an SPN the KDC does not know fails on the client, as against AD ('server not found')."""
    runtime, inventory = kerberos_lab
    _kinit(inventory)
    domain = runtime.domains_data()[0]
    server = ldap3.Server(domain["dc_address"], port=domain["ldap_port"], get_info=ldap3.NONE)
    connection = ldap3.Connection(
        server, authentication=ldap3.SASL, sasl_mechanism=ldap3.KERBEROS, sasl_credentials=("nodc.example",)
    )
    with pytest.raises(Exception, match=r"not found|Server"):
        connection.bind()


@requires_kerberos
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_pypsrp_kerberos(kerberos_lab: tuple[LabRuntime, Path], krb5_env: Path, scheme: str) -> None:
    """pypsrp auth="kerberos" with user and password, naming the device FQDN: HTTP (encrypted) and HTTPS."""
    runtime, inventory = kerberos_lab
    secrets = read_lab_secrets(inventory)
    for device in runtime.fleet.devices[:2]:
        client = Client(
            device.address,
            port=runtime.server.https_port if scheme == "https" else runtime.server.http_port,
            ssl=scheme == "https",
            auth="kerberos",
            username=secrets["MIGRATOR_PRINCIPAL"],
            password=secrets["MIGRATOR_PASSWORD"],
            negotiate_hostname_override=device.fqdn,
            cert_validation=str(inventory.parent / "lab-ca.pem"),
            no_proxy=True,
        )
        output, _streams, had_errors = client.execute_ps("$env:COMPUTERNAME")
        assert output.strip() == device.name and not had_errors


@requires_kerberos
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_pywinrm_kerberos(kerberos_lab: tuple[LabRuntime, Path], krb5_env: Path, scheme: str) -> None:
    """pywinrm transport="kerberos" from kinit's ccache: HTTP with message encryption, and HTTPS."""
    runtime, inventory = kerberos_lab
    _kinit(inventory)
    device = runtime.fleet.devices[0]
    port = runtime.server.https_port if scheme == "https" else runtime.server.http_port
    session = winrm.Session(
        f"{scheme}://{device.address}:{port}/wsman",
        auth=(None, None),
        transport="kerberos",
        kerberos_hostname_override=device.fqdn,
        message_encryption="always" if scheme == "http" else "auto",
        server_cert_validation="validate",
        ca_trust_path=str(inventory.parent / "lab-ca.pem"),
    )
    result = session.run_cmd("hostname")
    assert result.status_code == 0 and result.std_out.decode().strip() == device.name


@requires_kerberos
def test_ntlm_still_works_beside_kerberos(kerberos_lab: tuple[LabRuntime, Path]) -> None:
    """With the KDCs up, the same listener still answers NTLM (Negotiate) with the lab secrets."""
    runtime, inventory = kerberos_lab
    secrets = read_lab_secrets(inventory)
    device = runtime.fleet.devices[0]
    client = Client(
        device.address,
        port=runtime.server.http_port,
        ssl=False,
        auth="ntlm",
        username=secrets["MIGRATOR_USERNAME"],
        password=secrets["MIGRATOR_PASSWORD"],
        no_proxy=True,
    )
    assert client.execute_ps("$env:COMPUTERNAME")[0].strip() == device.name


def test_lab_up_kerberos_without_krb5_fails_saying_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`lab up --kerberos` where the KDC programs are not on PATH exits 2 naming the packages."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    fleet_path = save_fleet(generate_fleet(2, 1, parse_mix("key=100,cert=0,cloud=0,none=0")), tmp_path / "f.json")
    result = CliRunner().invoke(
        app, ["lab", "up", "--kerberos", "--fleet", str(fleet_path), "--inventory", str(tmp_path / "i.yaml")]
    )
    assert result.exit_code == 2
    assert "krb5kdc" in result.output and "apt-get install krb5-kdc" in result.output


def test_lab_up_without_krb5_says_ntlm_only_in_one_line(tmp_path: Path) -> None:
    """The real `lab up`, with no KDC programs on PATH, starts and says NTLM-only in one line."""
    fleet = generate_fleet(2, 1, parse_mix("key=100,cert=0,cloud=0,none=0"))
    for device, address in zip(fleet.devices, free_addresses(2), strict=True):
        device.address = address
    fleet_path = save_fleet(fleet, tmp_path / "fleet.json")
    inventory = tmp_path / "lab" / "inventory.yaml"
    ports = ["--http-port", "0", "--https-port", "0", "--ldap-port", "0", "--ldaps-port", "0"]
    command = [sys.executable, "-m", "migrator", "lab", "up", "--fleet", str(fleet_path), "--inventory", str(inventory)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "PATH": str(Path(sys.executable).parent), "COLUMNS": "400"}
    proc = subprocess.Popen([*command, *ports], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    assert proc.stdout is not None
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if "NTLM only" in line or "Kerberos:" in line:
                break
        text = "".join(seen)
        ntlm_lines = [line for line in seen if "NTLM only" in line]
        assert len(ntlm_lines) == 1, text
        assert "krb5kdc" in ntlm_lines[0] and "apt-get install krb5-kdc" in ntlm_lines[0]
        data = yaml.safe_load(inventory.read_text())
        assert all(d["kdc_port"] is None for d in data["lab"]["domains"])
        assert not (inventory.parent / "krb5.conf").exists()
        assert "MIGRATOR_PRINCIPAL" not in (inventory.parent / "lab-secrets.env").read_text()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    assert proc.returncode == 0


@requires_kerberos
def test_ldap_gss_spnego_bind(kerberos_lab: tuple[LabRuntime, Path], krb5_env: Path) -> None:
    """A GSS-SPNEGO SASL bind (as Windows' ADSI sends it: SPNEGO tokens, no layer negotiation) succeeds."""
    runtime, inventory = kerberos_lab
    _kinit(inventory)
    domain = runtime.domains_data()[0]
    server = ldap3.Server(domain["dc_address"], port=domain["ldap_port"], get_info=ldap3.NONE)
    connection = ldap3.Connection(server, authentication=ldap3.SASL, sasl_mechanism=ldap3.KERBEROS)
    connection.open()
    connection.sasl_mechanism = "GSS-SPNEGO"  # ldap3 has no GSS-SPNEGO of its own: its SASL framing carries it
    context = spnego.client(hostname=domain["dc_hostname"], service="ldap", protocol="negotiate")
    token = context.step()
    for _ in range(4):
        result = send_sasl_negotiation(connection, None, token)
        if result["result"] != 14:  # saslBindInProgress
            break
        token = context.step(result["saslCreds"])
    assert result["result"] == 0, result
    assert context.negotiated_protocol == "kerberos"
    assert connection.extend.standard.who_am_i() == "u:CORP\\migrator-admin"
    connection.unbind()


@requires_kerberos
def test_listeners_offer_kerberos_and_refuse_a_ticket_for_another_service(
    kerberos_lab: tuple[LabRuntime, Path], krb5_env: Path
) -> None:
    """The 401 offers Negotiate and Kerberos; a ticket for another device's SPN is refused with a 401."""
    runtime, inventory = kerberos_lab
    _kinit(inventory)
    device, other = runtime.fleet.devices[0], runtime.fleet.devices[1]
    url = f"http://{device.address}:{runtime.server.http_port}/wsman"
    offer = requests.post(url, data=b"", timeout=10)
    assert offer.status_code == 401
    assert {"Negotiate", "Kerberos"} <= {h.strip() for h in offer.headers["WWW-Authenticate"].split(",")}
    token = spnego.client(hostname=other.fqdn, service="HTTP", protocol="kerberos").step() or b""
    refused = requests.post(
        url, data=b"", headers={"Authorization": "Kerberos " + base64.b64encode(token).decode()}, timeout=10
    )
    assert refused.status_code == 401


@requires_kerberos
def test_the_kdcs_stop_with_the_lab(tmp_path: Path) -> None:
    """Stopping the lab stops every krb5kdc it started."""
    runtime = LabRuntime(_fleet(), tmp_path / "lab", ports=LabPorts(http=0, https=0, ldap=0, ldaps=0), kerberos=True)
    runtime.start()
    assert runtime.kdc is not None
    processes = [kdc.process for kdc in runtime.kdc.processes]
    assert processes and all(p.poll() is None for p in processes)
    runtime.stop()
    assert all(p.poll() is not None for p in processes)


@requires_kerberos
@pytest.mark.parametrize(("layer", "expected"), [(1, 0), (4, 7)])
def test_ldap_gssapi_security_layer_choice(
    kerberos_lab: tuple[LabRuntime, Path], krb5_env: Path, layer: int, expected: int
) -> None:
    """RFC 4752 by hand: the DC offers layers as AD does; "no layer" binds, confidentiality is not modelled (7)."""
    runtime, inventory = kerberos_lab
    _kinit(inventory)
    domain = runtime.domains_data()[0]
    server = ldap3.Server(domain["dc_address"], port=domain["ldap_port"], get_info=ldap3.NONE)
    connection = ldap3.Connection(server, authentication=ldap3.SASL, sasl_mechanism=ldap3.KERBEROS)
    connection.open()
    target = gssapi.Name(f"ldap@{domain['dc_hostname']}", gssapi.NameType.hostbased_service)
    context = gssapi.SecurityContext(name=target, mech=gssapi.MechType.kerberos, usage="initiate")
    result = send_sasl_negotiation(connection, None, context.step())
    while not context.complete:
        context.step(result["saslCreds"])
        result = send_sasl_negotiation(connection, None, b"")
    offer = context.unwrap(result["saslCreds"]).message
    assert offer[0] & 1 and len(offer) == 4  # "no security layer" is among the layers offered
    choice = context.wrap(bytes([layer, 0, 0, 0]), False).message
    assert send_sasl_negotiation(connection, None, choice)["result"] == expected
