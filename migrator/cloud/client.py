"""Microsoft Graph for migrator: msal for the app's tokens, httpx for the requests, tenacity for the retries.

Why msal + httpx and not the official msgraph-sdk: measured on this project's Python 3.11 (fresh venvs), the SDK
installs 472 MB (kiota, azure-identity, opentelemetry, aiohttp and their trees) and ``from msgraph import
GraphServiceClient`` takes about 2.5 s; msal + httpx install 52 MB and import in about 0.14 s. migrator uses a dozen
Graph calls; the SDK's generated models would add weight without removing code from this module.

Theory of operation
-------------------
* Tokens: :class:`msal.ConfidentialClientApplication` with the tenant's authority and the app's secret or
  certificate, ``acquire_token_for_client(["https://graph.microsoft.com/.default"])``; msal caches the token
  until it expires. msal is handed an :class:`httpx.Client` as its HTTP client, so the token requests verify TLS
  against the same CA bundle as Graph's (requests' environment CA variables cannot override it). An authority
  that is not Microsoft's public one is read without Microsoft's instance discovery.
* Requests: one :meth:`GraphClient.request` for every call; a 429 or 503/504 answer is retried after its
  ``Retry-After`` (seconds) or an exponential wait when it gives none, up to ``attempts`` (Graph throttling
  guidance). A request that may have reached Graph (the connection broke after sending) is retried only when it
  is a read.
* Collections: :meth:`GraphClient.pages` follows ``@odata.nextLink`` until the last page.
* Errors: msal's and httpx's exceptions and Graph's error answers are translated here, once, into
  :class:`~migrator.errors.CloudError` (what to do: retry, fix the credentials, grant a permission, ...). Messages
  carry Graph's error code and message, never a token or a secret.
* :attr:`GraphClient.requests` counts the Graph requests sent (tokens apart), for the report and the bench;
  :meth:`GraphClient.counting` counts those one thread sends while a block runs (the engine's visits share one
  client from many threads), so a device's own requests can be told from its neighbours'.
"""

from __future__ import annotations

import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import msal
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from migrator.cloud.settings import GraphSettings
from migrator.errors import (
    CloudAccessDenied,
    CloudConfigurationError,
    CloudCredentialsError,
    CloudError,
    CloudNotFound,
    CloudProtocolError,
    CloudUnavailable,
)

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
PUBLIC_HOSTS = frozenset({"login.microsoftonline.com", "login.microsoft.com", "login.windows.net"})
RETRY_STATUSES = frozenset({429, 503, 504})
READS = frozenset({"GET", "HEAD"})
MAX_IN_VALUES = 15  # Graph's limit on the values of an OData ``in`` filter

Sleep = Callable[[float], None]


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    initial_wait: float = 1.0
    max_wait: float = 60.0  # a Retry-After above this is still honoured: Graph says when to come back


@dataclass
class RequestCount:
    """The Graph requests one thread sent while a :meth:`GraphClient.counting` block ran (retries included)."""

    requests: int = 0


class _Retry(Exception):
    """A request worth sending again after ``wait`` seconds (None: the policy's backoff)."""

    def __init__(self, error: CloudError, wait: float | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.wait = wait


class _MsalHttp:
    """msal's HTTP client contract (``msal.oauth2cli.http.HttpClient``: ``get`` and ``post`` answering a response
    with ``status_code``, ``text``, ``headers``, ``raise_for_status``) over an :class:`httpx.Client`. msal hands
    the client assertion as bytes, which requests encodes and httpx would write as ``b'...'``: decoded here."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def post(
        self,
        url: str,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str | bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        form = {k: v.decode() if isinstance(v, bytes) else v for k, v in (data or {}).items()}
        return self.client.post(
            url, params=params, data=form, headers=headers, timeout=kwargs.get("timeout", httpx.USE_CLIENT_DEFAULT)
        )

    def get(
        self, url: str, params: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        return self.client.get(
            url, params=params, headers=headers, timeout=kwargs.get("timeout", httpx.USE_CLIENT_DEFAULT)
        )

    def close(self) -> None:
        self.client.close()


class GraphClient:
    """A Graph v1.0 client for one tenant and app (thread-safe: the engine's workers share it)."""

    def __init__(
        self,
        settings: GraphSettings,
        *,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Sleep | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.settings = settings
        self.tenant = settings.tenant_id
        self.retry = retry
        self._sleep: Sleep = sleep if sleep is not None else time.sleep
        verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=str(settings.ca_bundle)) if settings.ca_bundle is not None else True
        )
        self.http = httpx.Client(verify=verify, timeout=timeout, headers={"Accept": "application/json"})
        self._token_http = httpx.Client(verify=verify, timeout=timeout)
        self._app: msal.ConfidentialClientApplication | None = None
        self._lock = threading.Lock()
        self.requests = 0
        self._counters = threading.local()  # this thread's open RequestCounts (counting() blocks nest)
        self.retries: list[float] = []  # the waits before each retry (Retry-After honoured), for tests and the bench

    def close(self) -> None:
        self.http.close()
        self._token_http.close()

    def __enter__(self) -> GraphClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def counting(self) -> Iterator[RequestCount]:
        """Count the requests this thread sends inside the block (other threads' requests are not counted; an
        outer block counts what an inner one does too)."""
        count = RequestCount()
        stack: list[RequestCount] = getattr(self._counters, "stack", None) or []
        self._counters.stack = [*stack, count]
        try:
            yield count
        finally:
            self._counters.stack = stack

    # ---- tokens -------------------------------------------------------------------------------------------

    def _credential(self) -> str | dict[str, str]:
        if self.settings.secret is not None:
            return self.settings.secret.get_secret_value()
        assert self.settings.certificate is not None
        try:
            pem = self.settings.certificate.read_bytes()
            cert = x509.load_pem_x509_certificate(pem)
            key = serialization.load_pem_private_key(pem, password=None)
        except (OSError, ValueError) as err:
            raise CloudConfigurationError(
                self.tenant,
                f"certificate {self.settings.certificate}: not a PEM file with a certificate and its "
                f"private key ({type(err).__name__})",
            ) from None
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        # With the public certificate msal signs PS256 and names the certificate by its SHA-256 thumbprint
        # (x5t#S256), as Entra ID recommends; the SHA-1 x5t is for AD FS only (msal 1.35 release notes).
        return {"private_key": key_pem, "public_certificate": cert.public_bytes(serialization.Encoding.PEM).decode()}

    def _msal(self) -> msal.ConfidentialClientApplication:
        with self._lock:
            if self._app is None:
                host = urlsplit(self.settings.authority).netloc
                # A private authority (a sovereign or lab one) is not in Microsoft's instance discovery: msal then
                # reads its OpenID configuration directly (instance_discovery=False, msal's documented switch).
                # A custom discovery URL is not enough: msal still asks login.microsoftonline.com for aliases.
                discovery = host in PUBLIC_HOSTS
                try:
                    self._app = msal.ConfidentialClientApplication(
                        self.settings.client_id,
                        client_credential=self._credential(),
                        authority=self.settings.authority,
                        http_client=_MsalHttp(self._token_http),
                        instance_discovery=discovery,
                    )
                except ValueError as err:  # msal: authority discovery failed (unknown tenant, bad URL)
                    raise CloudConfigurationError(self.tenant, f"authority {self.settings.authority}: {err}") from None
                except httpx.HTTPError as err:
                    raise _transport_error(self.tenant, err, "reading the authority's configuration") from None
            return self._app

    def token(self) -> str:
        app = self._msal()
        try:
            result = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
        except httpx.HTTPError as err:
            raise _transport_error(self.tenant, err, "asking for a token") from None
        if "access_token" in result:
            return str(result["access_token"])
        error = str(result.get("error", "error"))
        description = str(result.get("error_description", "")).split("\r\n")[0]
        if error in ("invalid_client", "unauthorized_client"):
            raise CloudCredentialsError(
                self.tenant, f"the token endpoint refused app {self.settings.client_id}: {error}: {description}"
            )
        raise CloudConfigurationError(
            self.tenant, f"no token for app {self.settings.client_id}: {error}: {description}"
        )

    # ---- requests -----------------------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return path if path.startswith("https://") else f"{self.settings.graph_url}/{path.lstrip('/')}"

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
    ) -> httpx.Response:
        """Send one Graph request (retried as the module docstring says); a 2xx answer, or a CloudError."""

        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            backoff = min(self.retry.max_wait, self.retry.initial_wait * 2 ** (state.attempt_number - 1))
            chosen = error.wait if isinstance(error, _Retry) and error.wait is not None else backoff
            self.retries.append(chosen)
            return chosen

        retrying = Retrying(
            stop=stop_after_attempt(self.retry.attempts),
            wait=wait,
            retry=retry_if_exception_type(_Retry),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._send(method, path, params, json)
        except _Retry as exhausted:
            raise exhausted.error from None
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    def _send(self, method: str, path: str, params: Mapping[str, str] | None, body: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token()}"}
        url = self.url(path)
        with self._lock:
            self.requests += 1
        for count in getattr(self._counters, "stack", ()):  # this thread's own list: no lock needed
            count.requests += 1
        try:
            response = self.http.request(method, url, params=params, json=body, headers=headers)
        except httpx.HTTPError as err:
            translated = _transport_error(self.tenant, err, f"{method} {_short(url)}")
            sent = not isinstance(err, httpx.ConnectError | httpx.ConnectTimeout)
            if method in READS or not sent:
                raise _Retry(translated, None) from None
            raise translated from None
        if response.is_success:
            return response
        error = _graph_error(self.tenant, method, url, response)
        if response.status_code in RETRY_STATUSES:
            raise _Retry(error, _retry_after(response))
        raise error

    def get(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        return _json(self.tenant, self.request("GET", path, params=params))

    def pages(self, path: str, params: Mapping[str, str] | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a collection, page after page (``@odata.nextLink``)."""
        page = self.get(path, params)
        while True:
            yield from page.get("value", [])
            next_link = page.get("@odata.nextLink")
            if not next_link:
                return
            page = self.get(str(next_link))

    # ---- the calls migrator makes -------------------------------------------------------------------------

    def user_by_sid(self, sid: str) -> dict[str, Any] | None:
        """The Entra user of a Windows account's SID: a cloud-only account's SID (S-1-12-1-...) encodes its object
        id; a synced account is found by ``onPremisesSecurityIdentifier`` (None: no such user)."""
        object_id = object_id_of_cloud_sid(sid)
        if object_id is not None:
            try:
                return self.get(f"users/{object_id}")
            except CloudNotFound:
                return None
        found = list(self.pages("users", {"$filter": f"onPremisesSecurityIdentifier eq '{_odata_string(sid)}'"}))
        return found[0] if found else None

    def hello_methods(self, user: str, *, expand_device: bool = False, top: int | None = None) -> list[dict[str, Any]]:
        """The user's Windows Hello for Business methods (``user``: object id or UPN)."""
        params: dict[str, str] = {}
        if expand_device:
            params["$expand"] = "device"
        if top is not None:
            params["$top"] = str(top)
        return list(self.pages(f"users/{quote(user)}/authentication/windowsHelloForBusinessMethods", params))

    def delete_hello_method(self, user: str, method_id: str) -> None:
        self.request("DELETE", f"users/{quote(user)}/authentication/windowsHelloForBusinessMethods/{quote(method_id)}")

    def entra_device(self, device_id: str) -> dict[str, Any] | None:
        """The Entra device object whose ``deviceId`` is ``device_id`` (None: there is none)."""
        found = list(self.pages("devices", {"$filter": f"deviceId eq '{_odata_string(device_id)}'"}))
        return found[0] if found else None

    def entra_devices_by_names(self, display_names: Sequence[str]) -> list[dict[str, Any]]:
        """The Entra device objects whose ``displayName`` is one of ``display_names`` (1 to 15, the ``in`` limit):
        how a device not yet probed (no deviceId known) is found."""
        if not 1 <= len(display_names) <= MAX_IN_VALUES:
            raise ValueError(f"entra_devices_by_names takes 1 to {MAX_IN_VALUES} names, not {len(display_names)}")
        values = ", ".join(f"'{_odata_string(d)}'" for d in display_names)
        return list(self.pages("devices", {"$filter": f"displayName in ({values})"}))

    def entra_devices_named(self, display_name: str) -> list[dict[str, Any]]:
        """The Entra device objects whose ``displayName`` is ``display_name`` (a stale duplicate makes two)."""
        return list(self.pages("devices", {"$filter": f"displayName eq '{_odata_string(display_name)}'"}))

    def managed_device(self, azure_ad_device_id: str) -> dict[str, Any] | None:
        found = list(
            self.pages(
                "deviceManagement/managedDevices",
                {"$filter": f"azureADDeviceId eq '{_odata_string(azure_ad_device_id)}'"},
            )
        )
        return found[0] if found else None

    def sync_device(self, managed_device_id: str) -> None:
        self.request("POST", f"deviceManagement/managedDevices/{quote(managed_device_id)}/syncDevice")

    def group_members(self, group_id: str) -> list[dict[str, Any]]:
        return list(self.pages(f"groups/{quote(group_id)}/members"))

    def add_group_member(self, group_id: str, object_id: str) -> None:
        reference = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{object_id}"}
        self.request("POST", f"groups/{quote(group_id)}/members/$ref", json=reference)

    def remove_group_member(self, group_id: str, object_id: str) -> None:
        self.request("DELETE", f"groups/{quote(group_id)}/members/{quote(object_id)}/$ref")

    def configuration_policies(self) -> list[dict[str, Any]]:
        return list(self.pages("deviceManagement/configurationPolicies"))

    def policy_assignments(self, policy_id: str) -> list[dict[str, Any]]:
        return list(self.pages(f"deviceManagement/configurationPolicies/{quote(policy_id)}/assignments"))

    def enrollment_configurations(self) -> list[dict[str, Any]]:
        """Every enrollment configuration of the tenant (each ``@odata.type`` a subtype: limit, platform
        restrictions, Windows Hello for Business, ...): a handful, listed whole and picked by type."""
        return list(self.pages("deviceManagement/deviceEnrollmentConfigurations"))

    def entra_devices(self, device_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The Entra device objects whose ``deviceId`` is one of ``device_ids`` (1 to 15: Graph's limit on the
        ``in`` operator); absent ids have no object."""
        if not 1 <= len(device_ids) <= MAX_IN_VALUES:
            raise ValueError(f"entra_devices takes 1 to {MAX_IN_VALUES} device ids, not {len(device_ids)}")
        values = ", ".join(f"'{_odata_string(d)}'" for d in device_ids)
        return list(self.pages("devices", {"$filter": f"deviceId in ({values})"}))


# ---- translation, once --------------------------------------------------------------------------------------


def object_id_of_cloud_sid(sid: str) -> str | None:
    """The object id a cloud-only account's SID encodes (S-1-12-1-a-b-c-d: its 16 bytes as four little-endian
    32-bit numbers); None for any other SID."""
    parts = sid.split("-")
    if parts[:4] != ["S", "1", "12", "1"] or len(parts) != 8:
        return None
    try:
        raw = b"".join(int(p).to_bytes(4, "little") for p in parts[4:])
    except (ValueError, OverflowError):
        return None
    return str(uuid.UUID(bytes_le=raw))


def _short(url: str) -> str:
    return urlsplit(url).path


def _odata_string(value: str) -> str:
    return value.replace("'", "''")  # OData string literal: a quote is doubled


def _retry_after(response: httpx.Response) -> float | None:
    text = response.headers.get("Retry-After")
    try:
        return max(0.0, float(text)) if text is not None else None
    except ValueError:
        return None  # an HTTP date: Graph sends seconds; fall back to the backoff


def _transport_error(tenant: str, err: httpx.HTTPError, doing: str) -> CloudError:
    text = str(err) or type(err).__name__
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return CloudConfigurationError(
            tenant, f"{doing}: the server's TLS certificate is not trusted ({text}); set entra: ca_bundle"
        )
    return CloudUnavailable(tenant, f"{doing}: {type(err).__name__}: {text}")


def _graph_error(tenant: str, method: str, url: str, response: httpx.Response) -> CloudError:
    code, message = "", response.reason_phrase
    try:
        error = response.json().get("error", {})
        code, message = str(error.get("code", "")), str(error.get("message", message))
    except (ValueError, AttributeError):
        pass
    what = f"{method} {_short(url)}: {response.status_code} {code}: {message}".replace(" : ", ": ")
    status = response.status_code
    if status == 401:
        return CloudCredentialsError(tenant, what)
    if status == 403:
        return CloudAccessDenied(tenant, what)
    if status == 404:
        return CloudNotFound(tenant, what)
    if status in RETRY_STATUSES or (status >= 500 and code != "NotModelledByLab"):
        return CloudUnavailable(tenant, what)
    return CloudProtocolError(tenant, what)


def _json(tenant: str, response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        raise CloudProtocolError(tenant, f"{_short(str(response.url))}: the answer is not JSON") from None
    if not isinstance(data, dict):
        raise CloudProtocolError(tenant, f"{_short(str(response.url))}: the answer is not a JSON object")
    return data
