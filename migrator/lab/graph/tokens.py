"""The lab tenant's token service: OAuth 2.0 client credentials, with a secret or a certificate, and the checks
Graph makes of the access tokens it is handed.

* Client credentials (RFC 6749 §4.4; Microsoft identity platform "client credentials flow"): ``grant_type=
  client_credentials``, ``scope=https://graph.microsoft.com/.default``, and either ``client_secret`` or a
  ``client_assertion`` of type ``urn:ietf:params:oauth:client-assertion-type:jwt-bearer`` (RFC 7523): a JWT the
  app signs with its certificate's key, its header naming the certificate by ``x5t`` (SHA-1) or ``x5t#S256``
  (SHA-256), its claims ``aud`` (the token endpoint), ``iss`` = ``sub`` = the client id, ``exp``, ``nbf``, ``jti``
  (Microsoft identity platform "certificate credentials").
* Access tokens are JWTs the tenant signs (RS256): ``aud`` https://graph.microsoft.com, ``iss``
  ``https://sts.windows.net/<tenant>/``, ``tid``, ``appid``, ``roles`` (the application permissions granted),
  ``exp`` one hour after issue. Token lifetimes run on wall-clock time, as msal caches tokens by it.

Refusals carry the AADSTS codes Entra ID answers with, so a message a person has seen on real Entra ID reads the
same here.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa

GRAPH_RESOURCE = "https://graph.microsoft.com"
GRAPH_DEFAULT_SCOPE = f"{GRAPH_RESOURCE}/.default"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_LIFETIME = 3600
CLOCK_SKEW = 300  # Entra ID allows five minutes of skew on an assertion's times

# The application permissions the lab's app is granted (admin consent given), by what the product does.
DEFAULT_ROLES = (
    "User.Read.All",  # find a user by the on-premises SID the device reports
    "UserAuthenticationMethod.ReadWrite.All",  # list and delete Hello methods
    "GroupMember.ReadWrite.All",  # add/remove devices in the profiles' groups
    "Device.Read.All",  # Entra device objects
    "DeviceManagementManagedDevices.Read.All",
    "DeviceManagementManagedDevices.PrivilegedOperations.All",  # syncDevice
    "DeviceManagementConfiguration.Read.All",  # configuration policies and their assignments
    "DeviceManagementServiceConfig.Read.All",  # enrollment configurations (Windows Hello for Business at enrollment)
)


class TokenRefused(Exception):
    """The token endpoint's error answer: ``error``, the AADSTS description, the HTTP status."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


class AccessDenied(Exception):
    """An access token Graph does not accept (401) or whose roles do not allow the call (403)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass
class AppRegistration:
    """An app registration with a service principal in the tenant, its credentials and consented roles."""

    client_id: str
    display_name: str
    secrets: list[str] = field(default_factory=list)
    certificates: list[x509.Certificate] = field(default_factory=list)
    roles: frozenset[str] = frozenset(DEFAULT_ROLES)

    def certificate_by_thumbprint(self, header: dict[str, Any]) -> x509.Certificate | None:
        # RFC 7515 §4.1.7-8: base64url of the DER's SHA-1 / SHA-256 (msal keeps the padding; compared without it).
        sha256 = str(header.get("x5t#S256", "")).rstrip("=")
        sha1 = str(header.get("x5t", "")).rstrip("=")
        for cert in self.certificates:
            if sha256 and sha256 == b64url(cert.fingerprint(hashes.SHA256())):
                return cert
            if sha1 and sha1 == b64url(cert.fingerprint(hashes.SHA1())):  # noqa: S303 - the x5t header is SHA-1
                return cert
        return None


@dataclass(frozen=True)
class Caller:
    """Who a valid access token names."""

    app_id: str
    roles: frozenset[str]


class TokenService:
    """Issues and checks the tenant's tokens; ``token_endpoint`` is filled in once the server knows its URL."""

    def __init__(self, tenant_id: str) -> None:
        self.tenant_id = tenant_id
        self.issuer = f"https://sts.windows.net/{tenant_id}/"
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.key_id = b64url(hashlib.sha256(str(self._key.public_key().public_numbers().n).encode()).digest()[:16])
        self.apps: dict[str, AppRegistration] = {}
        self.token_endpoint = ""
        self.issued = 0

    def register_app(
        self, display_name: str, *, roles: frozenset[str] | None = None, client_id: str | None = None
    ) -> AppRegistration:
        app = AppRegistration(client_id or str(uuid.uuid4()), display_name)
        if roles is not None:
            app.roles = roles
        self.apps[app.client_id] = app
        return app

    @staticmethod
    def add_secret(app: AppRegistration) -> str:
        secret = secrets.token_urlsafe(30)
        app.secrets.append(secret)
        return secret

    def public_jwk(self) -> dict[str, Any]:
        numbers = self._key.public_key().public_numbers()

        def as_b64(value: int) -> str:
            return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))

        return {"kty": "RSA", "use": "sig", "kid": self.key_id, "n": as_b64(numbers.n), "e": as_b64(numbers.e)}

    # ---- the token endpoint ---------------------------------------------------------------------------

    def client_credentials(self, form: dict[str, str]) -> dict[str, Any]:
        """Answer a token request (the form's fields) or raise :class:`TokenRefused`."""
        if form.get("grant_type") != "client_credentials":
            raise TokenRefused(
                400,
                "unsupported_grant_type",
                f"AADSTS70003: The app requested an unsupported grant type "
                f"'{form.get('grant_type', '')}'. The lab tenant serves client_credentials only.",
            )
        client_id = form.get("client_id", "")
        app = self.apps.get(client_id)
        if app is None:
            raise TokenRefused(
                400,
                "unauthorized_client",
                f"AADSTS700016: Application with identifier '{client_id}' was not "
                f"found in the directory '{self.tenant_id}'.",
            )
        scopes = form.get("scope", "").split()
        if scopes != [GRAPH_DEFAULT_SCOPE]:
            raise TokenRefused(
                400,
                "invalid_scope",
                f"AADSTS1002012: The provided value for scope {' '.join(scopes)} is not "
                f"valid. Client credential flows must have a scope value with /.default suffixed to the resource "
                f"identifier (application ID URI); the lab tenant serves {GRAPH_DEFAULT_SCOPE}.",
            )
        if "client_secret" in form:
            if not any(secrets.compare_digest(form["client_secret"], s) for s in app.secrets):
                raise TokenRefused(
                    401,
                    "invalid_client",
                    f"AADSTS7000215: Invalid client secret provided. Ensure the secret "
                    f"being sent in the request is the client secret value, not the client secret ID, for a secret "
                    f"added to app '{client_id}'.",
                )
        elif form.get("client_assertion_type") == ASSERTION_TYPE and "client_assertion" in form:
            self._check_assertion(app, form["client_assertion"])
        else:
            raise TokenRefused(
                401,
                "invalid_client",
                "AADSTS7000218: The request body must contain the following parameter: "
                "'client_assertion' or 'client_secret'.",
            )
        now = int(time.time())
        claims = {
            "aud": GRAPH_RESOURCE,
            "iss": self.issuer,
            "iat": now,
            "nbf": now,
            "exp": now + TOKEN_LIFETIME,
            "tid": self.tenant_id,
            "appid": app.client_id,
            "app_displayname": app.display_name,
            "idtyp": "app",
            "oid": str(uuid.uuid5(uuid.NAMESPACE_OID, app.client_id)),
            "roles": sorted(app.roles),
            "ver": "1.0",
        }
        token = jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.key_id, "typ": "JWT"})
        self.issued += 1
        return {
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME,
            "ext_expires_in": TOKEN_LIFETIME,
            "access_token": token,
        }

    def _check_assertion(self, app: AppRegistration, assertion: str) -> None:
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError as err:
            raise TokenRefused(
                401, "invalid_client", f"AADSTS50027: JWT token is invalid or malformed ({err})."
            ) from None
        cert = app.certificate_by_thumbprint(header)
        if cert is None:
            raise TokenRefused(
                401,
                "invalid_client",
                f"AADSTS700027: The certificate with identifier used to sign the client "
                f"assertion is not registered on application '{app.client_id}'.",
            )
        try:
            claims = jwt.decode(
                assertion,
                cert.public_key(),  # type: ignore[arg-type]
                algorithms=["RS256", "PS256"],
                audience=self.token_endpoint,
                issuer=app.client_id,
                leeway=CLOCK_SKEW,
                options={"require": ["aud", "iss", "sub", "exp"]},  # nbf and jti are optional (RFC 7523 §3)
            )
        except jwt.ExpiredSignatureError:
            raise TokenRefused(
                401, "invalid_client", "AADSTS700024: Client assertion is not within its valid time range."
            ) from None
        except jwt.InvalidAudienceError:
            raise TokenRefused(
                401,
                "invalid_client",
                f"AADSTS700021: Client assertion audience claim does not match the token "
                f"endpoint {self.token_endpoint}.",
            ) from None
        except jwt.InvalidSignatureError:
            raise TokenRefused(
                401, "invalid_client", "AADSTS700027: Client assertion failed signature validation."
            ) from None
        except jwt.PyJWTError as err:
            raise TokenRefused(401, "invalid_client", f"AADSTS50027: Invalid client assertion: {err}.") from None
        if claims.get("sub") != app.client_id:
            raise TokenRefused(
                401, "invalid_client", "AADSTS700023: Client assertion 'sub' must be the application's client id."
            )

    # ---- Graph's check of a bearer token -----------------------------------------------------------------

    def caller(self, authorization: str | None) -> Caller:
        """The app an ``Authorization: Bearer`` header names, or :class:`AccessDenied` (401)."""
        if not authorization or not authorization.startswith("Bearer "):
            raise AccessDenied(401, "InvalidAuthenticationToken", "Access token is empty.")
        token = authorization.removeprefix("Bearer ").strip()
        try:
            claims = jwt.decode(
                token,
                self._key.public_key(),
                algorithms=["RS256"],
                audience=GRAPH_RESOURCE,
                issuer=self.issuer,
                options={"require": ["aud", "iss", "exp", "appid"]},
            )
        except jwt.ExpiredSignatureError:
            raise AccessDenied(
                401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired."
            ) from None
        except jwt.InvalidAudienceError:
            raise AccessDenied(
                401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience."
            ) from None
        except jwt.PyJWTError:
            raise AccessDenied(401, "InvalidAuthenticationToken", "Access token validation failure.") from None
        if claims.get("tid") != self.tenant_id:
            raise AccessDenied(401, "InvalidAuthenticationToken", "Access token validation failure. Wrong tenant.")
        return Caller(str(claims["appid"]), frozenset(claims.get("roles") or ()))

    @staticmethod
    def require(caller: Caller, *any_of: str) -> None:
        """403 unless the token holds one of the roles (Graph: any one of the listed permissions suffices)."""
        if not caller.roles.intersection(any_of):
            raise AccessDenied(
                403,
                "Authorization_RequestDenied",
                f"Insufficient privileges to complete the operation. The application needs one of these "
                f"application permissions: {', '.join(any_of)}.",
            )
