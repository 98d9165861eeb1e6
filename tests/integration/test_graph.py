"""Real msal + httpx (migrator.cloud) against the lab tenant: credentials, paging, throttling, errors, Intune."""

from __future__ import annotations

import datetime
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from pydantic import SecretStr

from migrator.cloud.client import GraphClient, RetryPolicy
from migrator.cloud.settings import GraphSettings, graph_settings
from migrator.errors import CloudAccessDenied, CloudCredentialsError, CloudNotFound, CloudProtocolError
from migrator.inventory import load_inventory
from migrator.lab import policy
from migrator.lab.boundary import PHRASE
from migrator.lab.fleet import generate_fleet, parse_mix
from migrator.lab.graph import PROFILES
from migrator.lab.graph import tokens as tokens_module
from migrator.lab.runtime import LabPorts, LabRuntime
from tests.loopback import free_addresses

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabRuntime]:
    fleet = generate_fleet(12, 5, parse_mix("key=30,cert=50,cloud=10,none=10"))
    addresses = free_addresses(13)
    for device, address in zip(fleet.devices, addresses, strict=False):
        device.address = address
    work = tmp_path_factory.mktemp("graph-lab")
    runtime = LabRuntime(
        fleet, work, ports=LabPorts(http=0, https=None, ldap=0, ldaps=None), graph_address=addresses[-1]
    )
    runtime.start()
    runtime.write_inventory(work / "inventory.yaml")
    yield runtime
    runtime.stop()


@pytest.fixture
def settings(lab: LabRuntime) -> GraphSettings:
    inventory = load_inventory(lab.work_dir / "inventory.yaml")
    found = graph_settings(inventory, lab.work_dir / "lab-secrets.env", environ={})
    assert found is not None
    return found


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _client(settings: GraphSettings, sleeps: Sleeps | None = None) -> GraphClient:
    return GraphClient(
        settings, sleep=sleeps if sleeps is not None else Sleeps(), retry=RetryPolicy(attempts=4, initial_wait=0.01)
    )


def _hybrid_user(lab: LabRuntime) -> str:
    return next(u.upn for d in lab.fleet.devices if d.azure_ad_joined for u in d.users if u.container is not None)


def test_lab_up_contract_and_secret_credential(lab: LabRuntime, settings: GraphSettings) -> None:
    """lab up's inventory and secrets file are enough for unmodified msal to get a token and read Hello methods."""
    assert settings.graph_url == lab.graph.url and settings.tenant_id == lab.tenant.tenant_id
    assert settings.secret is not None and settings.secret.get_secret_value() not in repr(settings)
    with _client(settings) as client:
        methods = client.hello_methods(_hybrid_user(lab), expand_device=True)
    assert methods and methods[0]["device"]["displayName"] == methods[0]["displayName"]
    assert lab.graph.tokens.issued >= 1


def test_certificate_credential(lab: LabRuntime, settings: GraphSettings, tmp_path: Path) -> None:
    """msal's signed client assertion (PS256, x5t#S256) is accepted for a certificate registered on the app."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "migrator graph app")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    pem = tmp_path / "app.pem"
    pem.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    cert_settings = GraphSettings(**{**settings.__dict__, "secret": None, "certificate": pem})
    with _client(cert_settings) as client, pytest.raises(CloudCredentialsError, match="AADSTS700027"):
        client.token()  # not registered yet
    lab.graph.app_registration.certificates.append(cert)
    with _client(cert_settings) as client:
        assert client.configuration_policies()


def test_wrong_secret_is_a_credentials_error(settings: GraphSettings) -> None:
    """A wrong client secret: a clear error naming the app, never the secret."""
    wrong = GraphSettings(**{**settings.__dict__, "secret": SecretStr("not-the-secret")})
    with _client(wrong) as client, pytest.raises(CloudCredentialsError) as caught:
        client.hello_methods(settings.tenant_id)
    assert "AADSTS7000215" in str(caught.value) and "not-the-secret" not in str(caught.value)


def test_missing_permission_is_403(lab: LabRuntime, settings: GraphSettings) -> None:
    """An app without UserAuthenticationMethod.ReadWrite.All may read methods but not delete them."""
    app = lab.graph.tokens.register_app("read-only", roles=frozenset({"UserAuthenticationMethod.Read.All"}))
    secret = lab.graph.tokens.add_secret(app)
    reader = GraphSettings(**{**settings.__dict__, "client_id": app.client_id, "secret": SecretStr(secret)})
    upn = _hybrid_user(lab)
    with _client(reader) as client:
        method = client.hello_methods(upn)[0]
        with pytest.raises(CloudAccessDenied, match=r"UserAuthenticationMethod\.ReadWrite\.All"):
            client.delete_hello_method(upn, method["id"])
        with pytest.raises(CloudAccessDenied):
            client.configuration_policies()


def test_paging_follows_next_links(lab: LabRuntime, settings: GraphSettings) -> None:
    """$top=2 gives pages of two; every Entra device object is read once, through @odata.nextLink."""
    with _client(settings) as client:
        devices = list(client.pages("devices", {"$top": "2"}))
        assert client.requests == (len(devices) + 1) // 2
    assert sorted(d["displayName"] for d in devices) == sorted(d.name for d in lab.tenant.entra_devices())


def test_throttling_honours_retry_after(lab: LabRuntime, settings: GraphSettings) -> None:
    """Two 429s with Retry-After: 7 are waited out (7 s each, on the injected sleep), then the answer comes."""
    rule = lab.server.faults.add(kind="throttle", actions=["windowsHelloForBusinessMethods"], count=2, delay=7)
    sleeps = Sleeps()
    try:
        with _client(settings, sleeps) as client:
            assert client.hello_methods(_hybrid_user(lab))
            assert client.requests == 3
    finally:
        lab.server.faults._rules.remove(rule)
    assert sleeps == [7.0, 7.0]


def test_not_modelled_and_not_found(lab: LabRuntime, settings: GraphSettings) -> None:
    """What the lab does not model says so; an unknown managed device is a CloudNotFound."""
    with _client(settings) as client:
        with pytest.raises(CloudProtocolError, match=PHRASE):
            client.get("users")
        with pytest.raises(CloudNotFound):
            client.sync_device("00000000-0000-4000-8000-000000000000")


def test_sync_device_applies_the_group_profile(lab: LabRuntime, settings: GraphSettings) -> None:
    """Moving an enrolled device from the certificate trust group to the cloud group and syncing gives cloud."""
    device = next(d for d in lab.fleet.devices if d.mdm_enrolled and d.device_id and lab.lab.policy(d).source == "mdm")
    groups = {p.trust: lab.tenant.group_id(p.group) for p in PROFILES}
    with _client(settings) as client:
        entra = client.entra_device(device.device_id or "")
        managed = client.managed_device(device.device_id or "")
        assert entra is not None and managed is not None
        for group in groups.values():
            if any(m["id"] == entra["id"] for m in client.group_members(group)):
                client.remove_group_member(group, entra["id"])
        client.add_group_member(groups["cloud"], entra["id"])
        client.sync_device(managed["id"])
        policies = client.configuration_policies()
        assignments = client.policy_assignments(policies[0]["id"])
    assert assignments[0]["target"]["groupId"] == groups["cloud"]
    view = lab.lab.policy(device)
    assert view.mdm.get(policy.CLOUD_TRUST) == 1 and not view.mdm.get(policy.CERT_TRUST)


def test_a_deleted_device_is_gone_from_graph(lab: LabRuntime, settings: GraphSettings) -> None:
    """An admin deleted the device's Entra object: the filter finds nothing, a read by id is a CloudNotFound, and
    its Hello keys come back without a device."""
    device = next(d for d in lab.tenant.entra_devices() if any(u.container for u in d.users))
    object_id = lab.tenant.device_object_id(device)
    upn = next(u.upn for u in device.users if u.container)
    lab.tenant.delete_device(device.name)
    try:
        with _client(settings) as client:
            assert client.entra_device(device.device_id or "") is None
            with pytest.raises(CloudNotFound, match=object_id):
                client.get(f"devices/{object_id}")
            mine = [m for m in client.hello_methods(upn, expand_device=True) if m["displayName"] == device.name]
        assert mine and all(m["device"] is None for m in mine)
    finally:
        lab.tenant.state.deleted_devices.remove(device.name)


def test_tokens_are_checked_for_presence_expiry_and_audience(lab: LabRuntime, monkeypatch: pytest.MonkeyPatch) -> None:
    """No token, an expired one, one for another audience: 401 InvalidAuthenticationToken in Graph's shape."""
    service = lab.graph.tokens
    form = {
        "grant_type": "client_credentials",
        "client_id": lab.graph.client_id,
        "client_secret": lab.graph.client_secret,
        "scope": "https://graph.microsoft.com/.default",
    }
    real_time = tokens_module.time.time
    monkeypatch.setattr(tokens_module.time, "time", lambda: real_time() - 7200)
    expired = service.client_credentials(form)["access_token"]
    monkeypatch.undo()
    claims = jwt.decode(service.client_credentials(form)["access_token"], options={"verify_signature": False})
    other = jwt.encode({**claims, "aud": "https://management.azure.com"}, service._key, algorithm="RS256")
    url = f"{lab.graph.url}/deviceManagement/configurationPolicies"
    with httpx.Client(verify=ssl.create_default_context(cafile=str(lab.graph.ca_bundle))) as raw:
        answers = {
            "none": raw.get(url),
            "expired": raw.get(url, headers={"Authorization": f"Bearer {expired}"}),
            "audience": raw.get(url, headers={"Authorization": f"Bearer {other}"}),
        }
    for name, answer in answers.items():
        assert answer.status_code == 401, name
        error = answer.json()["error"]
        assert error["code"] == "InvalidAuthenticationToken" and "request-id" in error["innerError"], name
    assert "expired" in answers["expired"].json()["error"]["message"]
    assert "audience" in answers["audience"].json()["error"]["message"]
