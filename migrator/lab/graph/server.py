"""The lab tenant's HTTPS endpoint: the Microsoft identity platform's token and discovery paths and Microsoft
Graph v1.0, as a Starlette app on uvicorn, on its own loopback address with a certificate from the lab CA.

One origin serves both hosts of the real service: ``https://<address>:<port>/<tenant>`` is the authority
(``login.microsoftonline.com/<tenant>``) and ``https://<address>:<port>/v1.0`` is Graph
(``graph.microsoft.com/v1.0``).

Graph's behaviour as documented ("Microsoft Graph error responses and resource types", "Paging Microsoft Graph
data", "Microsoft Graph throttling guidance"):

* errors are ``{"error": {"code", "message", "innerError": {"date", "request-id", "client-request-id"}}}``;
* collections come in pages of ``$top`` (default 100, at most 999) with ``@odata.nextLink`` to the next one;
* throttling answers 429 with ``Retry-After`` (seconds): here when a ``throttle`` fault rule of the lab's fault
  plan fires (stage ``graph``; its ``actions`` name Graph operations such as ``windowsHelloForBusinessMethods`` or
  ``syncDevice``; ``delay`` is the Retry-After in seconds).

What the lab does not model (another path, a query option other than ``$top``, ``$expand=device`` and the
``$filter`` equality tests listed) is answered 501 with the lab's ``NotModelledByLab`` code in Graph's error shape.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import socket
import threading
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from migrator.lab.boundary import ERROR_ID, not_modelled_message
from migrator.lab.graph.tenant import GraphTenant, Profile, TenantError, object_id_of_cloud_sid
from migrator.lab.graph.tokens import AccessDenied, AppRegistration, TokenRefused, TokenService
from migrator.lab.model import Device, EntraHelloMethod, User
from migrator.lab.server.certs import LabCA
from migrator.lab.server.faults import FaultKind, FaultPlan

DEFAULT_ADDRESS = "127.18.0.1"  # clear of the DCs (127.19.x), the fleet (127.20.x) and the tests (127.100+)
DEFAULT_PAGE = 100
MAX_PAGE = 999
GRAPH_PUBLIC = "https://graph.microsoft.com/v1.0"

Handler = Callable[[Request], Awaitable[Response]]


class NotModelled(Exception):
    """A request the lab tenant does not model."""


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def graph_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": _iso(datetime.now(UTC)),
                "request-id": str(uuid.uuid4()),
                "client-request-id": str(uuid.uuid4()),
            },
        }
    }
    return JSONResponse(body, status_code=status, headers=headers)


class GraphService:
    """The routes, over a :class:`GraphTenant` and a :class:`TokenService`."""

    def __init__(self, tenant: GraphTenant, tokens: TokenService, faults: FaultPlan) -> None:
        self.tenant = tenant
        self.tokens = tokens
        self.faults = faults
        self.base_url = ""
        self.requests: dict[str, int] = {}  # Graph requests served by "METHOD operation" (tokens apart): tests, bench

    # ---- identity platform ----------------------------------------------------------------------------

    async def instance_discovery(self, request: Request) -> Response:
        tid = self.tenant.tenant_id
        return JSONResponse(
            {
                "tenant_discovery_endpoint": f"{self.base_url}/{tid}/v2.0/.well-known/openid-configuration",
                "api-version": "1.1",
                "metadata": [],
            }
        )

    async def openid_configuration(self, request: Request) -> Response:
        tenant = request.path_params["tenant"]
        if tenant.casefold() not in (self.tenant.tenant_id, self.tenant.fleet.tenant.default_domain.casefold()):
            return JSONResponse(
                {"error": "invalid_tenant", "error_description": f"AADSTS90002: Tenant '{tenant}' not found."},
                status_code=400,
            )
        tid = self.tenant.tenant_id
        root = f"{self.base_url}/{tid}"
        return JSONResponse(
            {
                "token_endpoint": f"{root}/oauth2/v2.0/token",
                "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
                "jwks_uri": f"{root}/discovery/v2.0/keys",
                "issuer": f"{self.base_url}/{tid}/v2.0",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "tenant_region_scope": "EU",
                "cloud_instance_name": "microsoftonline.com",
            }
        )

    async def keys(self, request: Request) -> Response:
        return JSONResponse({"keys": [self.tokens.public_jwk()]})

    async def token(self, request: Request) -> Response:
        # application/x-www-form-urlencoded (RFC 6749 §4.4.2), read as such (no multipart: tokens never are).
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
        try:
            return JSONResponse(self.tokens.client_credentials(form))
        except TokenRefused as err:
            return JSONResponse(
                {
                    "error": err.error,
                    "error_description": err.description,
                    "error_codes": [],
                    "timestamp": _iso(datetime.now(UTC)),
                    "trace_id": str(uuid.uuid4()),
                    "correlation_id": str(uuid.uuid4()),
                },
                status_code=err.status,
            )

    # ---- Graph plumbing -------------------------------------------------------------------------------

    def graph(
        self, operation: str, *roles: str, allowed_query: Sequence[str] = ()
    ) -> Callable[[Callable[[Request], Response]], Handler]:
        """Wrap a Graph handler: the token and its roles, the throttle faults, the query options modelled, the
        error shape."""

        def wrap(handler: Callable[[Request], Response]) -> Handler:
            async def endpoint(request: Request) -> Response:
                counted = f"{request.method} {operation}"
                self.requests[counted] = self.requests.get(counted, 0) + 1
                try:
                    caller = self.tokens.caller(request.headers.get("authorization"))
                    self.tokens.require(caller, *roles)
                    for rule in self.faults.decide("graph", "graph", operation):
                        if rule.kind is FaultKind.THROTTLE:
                            retry_after = str(max(0, math.ceil(self.faults.delay_for(rule, "graph"))))
                            return graph_error(
                                429,
                                "TooManyRequests",
                                rule.message or "Too many requests.",
                                {"Retry-After": retry_after},
                            )
                    unknown = [k for k in request.query_params if k not in allowed_query]
                    if unknown:
                        raise NotModelled(f"query option {unknown[0]} on {operation}")
                    return handler(request)
                except AccessDenied as err:
                    headers = (
                        {"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'} if err.status == 401 else None
                    )
                    return graph_error(err.status, err.code, err.message, headers)
                except TenantError as err:
                    return graph_error(err.status, err.code, err.message)
                except NotModelled as err:
                    return not_modelled(str(err))

            return endpoint

        return wrap

    def page(self, request: Request, items: list[dict[str, Any]], context: str) -> Response:
        """One page of a collection, with ``@odata.nextLink`` when more follow ($top, $skiptoken)."""
        top_text = request.query_params.get("$top")
        try:
            top = int(top_text) if top_text is not None else DEFAULT_PAGE
        except ValueError:
            return graph_error(400, "BadRequest", f"Invalid value '{top_text}' for query option $top.")
        if not 1 <= top <= MAX_PAGE:
            return graph_error(400, "BadRequest", f"Invalid page size specified: '{top}'. Must be between 1 and 999.")
        skip = 0
        token = request.query_params.get("$skiptoken")
        if token is not None:
            try:
                skip = int(json.loads(base64.urlsafe_b64decode(token.encode()))["skip"])
            except (ValueError, KeyError, TypeError):
                return graph_error(400, "BadRequest", "Invalid $skiptoken.")
        body: dict[str, Any] = {
            "@odata.context": f"{GRAPH_PUBLIC}/$metadata#{context}",
            "value": items[skip : skip + top],
        }
        if skip + top < len(items):
            query = {k: v for k, v in request.query_params.items() if k != "$skiptoken"}
            query["$top"] = str(top)
            query["$skiptoken"] = base64.urlsafe_b64encode(json.dumps({"skip": skip + top}).encode()).decode()
            body["@odata.nextLink"] = f"{self.base_url}{request.url.path}?{urlencode(query)}"
        return JSONResponse(body)

    # ---- resources ------------------------------------------------------------------------------------

    def method_json(self, method: EntraHelloMethod, expand: bool) -> dict[str, Any]:
        item: dict[str, Any] = {
            "@odata.type": "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod",
            "id": method.id,
            "displayName": method.device_name,
            "createdDateTime": _iso(method.created),
            "keyStrength": method.key_strength,
        }
        if expand:
            device = self.tenant.device_named(method.device_name)
            item["device"] = self.device_json(device) if device is not None else None
        return item

    def user_json(self, user: User) -> dict[str, Any]:
        return {
            "id": self.tenant.user_id(user),
            "userPrincipalName": user.upn,
            "displayName": user.display_name,
            "onPremisesSecurityIdentifier": None if object_id_of_cloud_sid(user.sid) else user.sid,
        }

    def device_json(self, device: Device) -> dict[str, Any]:
        return {
            "@odata.type": "#microsoft.graph.device",
            "id": self.tenant.device_object_id(device),
            "deviceId": device.device_id,
            "displayName": device.name,
            "accountEnabled": self.tenant.device_enabled(device),
            "operatingSystem": "Windows",
            "operatingSystemVersion": f"10.0.{device.os.build}.{device.os.ubr}",
            "trustType": "ServerAd" if device.join_type == "hybrid" else "AzureAd",
            "isManaged": device.mdm_enrolled,
        }

    def managed_json(self, device: Device) -> dict[str, Any]:
        synced = (self.tenant.state.last_mdm_sync or {}).get(device.name)
        return {
            "id": self.tenant.managed_device_id(device),
            "deviceName": device.name,
            "azureADDeviceId": device.device_id,
            "operatingSystem": "Windows",
            "osVersion": f"10.0.{device.os.build}.{device.os.ubr}",
            "managementAgent": "mdm",
            "lastSyncDateTime": _iso(synced) if synced else "0001-01-01T00:00:00Z",
            "managedDeviceOwnerType": "company",
        }

    def profile_json(self, profile: Profile) -> dict[str, Any]:
        return {
            "id": self.tenant.profile_id(profile),
            "name": profile.name,
            "description": profile.description,
            "platforms": "windows10",
            "technologies": "mdm",
            "settingCount": len(profile.settings),
            "isAssigned": True,
        }

    def assignment_json(self, profile: Profile) -> dict[str, Any]:
        group_id = self.tenant.group_id(profile.group)
        return {
            "id": f"{self.tenant.profile_id(profile)}_{group_id}",
            "source": "direct",
            "target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": group_id},
        }

    def enrollment_configurations(self) -> list[dict[str, Any]]:
        """The tenant's default enrollment configurations (priority 0, "All users and all devices"): the device
        limit and Windows Hello for Business, as Graph lists them (``deviceEnrollmentConfiguration`` subtypes)."""
        tid = self.tenant.tenant_id
        hello = self.tenant.enrollment_hello()
        return [
            {
                "@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration",
                "id": f"{tid}_DefaultLimit",
                "displayName": "All users and all devices",
                "description": "This is the default Device Limit Restriction applied with the lowest priority to all "
                "users regardless of group membership.",
                "priority": 0,
                "version": 1,
                "limit": 5,
            },
            {
                "@odata.type": "#microsoft.graph.deviceEnrollmentWindowsHelloForBusinessConfiguration",
                "id": f"{tid}_DefaultWindowsHelloForBusiness",
                "displayName": "All users and all devices",
                "description": "This is the default Windows Hello for Business configuration applied with the lowest "
                "priority to all users regardless of group membership.",
                "priority": 0,
                "version": 1,
                "state": hello.state,
                "securityDeviceRequired": hello.security_device_required,
                "pinMinimumLength": hello.pin_minimum_length,
                "pinMaximumLength": hello.pin_maximum_length,
                "pinUppercaseCharactersUsage": hello.pin_uppercase,
                "pinLowercaseCharactersUsage": hello.pin_lowercase,
                "pinSpecialCharactersUsage": hello.pin_special,
                "pinExpirationInDays": hello.pin_expiration_days,
                "pinPreviousBlockCount": hello.pin_previous_block_count,
                "unlockWithBiometricsEnabled": hello.unlock_with_biometrics,
                "remotePassportEnabled": hello.remote_passport,
                "enhancedBiometricsState": "notConfigured",
            },
        ]

    def routes(self) -> list[Route]:
        read_methods = ("UserAuthenticationMethod.Read.All", "UserAuthenticationMethod.ReadWrite.All")
        write_methods = ("UserAuthenticationMethod.ReadWrite.All",)
        read_members = ("GroupMember.Read.All", "Group.Read.All", "GroupMember.ReadWrite.All", "Group.ReadWrite.All")
        write_members = ("GroupMember.ReadWrite.All", "Group.ReadWrite.All")
        read_devices = ("Device.Read.All", "Directory.Read.All")
        read_managed = ("DeviceManagementManagedDevices.Read.All", "DeviceManagementManagedDevices.ReadWrite.All")
        sync = ("DeviceManagementManagedDevices.PrivilegedOperations.All",)
        read_config = ("DeviceManagementConfiguration.Read.All", "DeviceManagementConfiguration.ReadWrite.All")
        hello = "/v1.0/users/{user}/authentication/windowsHelloForBusinessMethods"
        tenant = self.tenant

        @self.graph("windowsHelloForBusinessMethods", *read_methods, allowed_query=("$top", "$skiptoken", "$expand"))
        def list_methods(request: Request) -> Response:
            user = tenant.find_user(request.path_params["user"])
            expand = _expand_device(request)
            items = [self.method_json(m, expand) for m in tenant.hello_methods(user)]
            return self.page(
                request,
                items,
                f"users('{tenant.user_id(user)}')/authentication/windowsHelloForBusinessMethods",
            )

        @self.graph("windowsHelloForBusinessMethods", *read_methods, allowed_query=("$expand",))
        def get_method(request: Request) -> Response:
            user = tenant.find_user(request.path_params["user"])
            method = tenant.hello_method(user, request.path_params["method"])
            return JSONResponse(self.method_json(method, _expand_device(request)))

        @self.graph("windowsHelloForBusinessMethods", *write_methods)
        def delete_method(request: Request) -> Response:
            user = tenant.find_user(request.path_params["user"])
            tenant.delete_hello_method(user, request.path_params["method"])
            return Response(status_code=204)

        @self.graph("users", "User.Read.All", "Directory.Read.All", allowed_query=("$filter", "$top", "$skiptoken"))
        def list_users(request: Request) -> Response:
            expression = request.query_params.get("$filter")
            if expression is None:
                raise NotModelled("GET /v1.0/users without $filter")
            field, value = _equality(expression, ("onPremisesSecurityIdentifier", "userPrincipalName"))
            return self.page(request, [self.user_json(u) for u in tenant.users_where(field, value)], "users")

        @self.graph("users", "User.Read.All", "Directory.Read.All")
        def get_user(request: Request) -> Response:
            return JSONResponse(self.user_json(tenant.find_user(request.path_params["user"])))

        @self.graph("members", *read_members, allowed_query=("$top", "$skiptoken"))
        def list_members(request: Request) -> Response:
            group = tenant.find_group(request.path_params["group"])
            return self.page(request, [self.device_json(d) for d in tenant.members(group)], "directoryObjects")

        add_member_handler = self.graph("members", *write_members)(self._add_member_sync)

        async def add_member(request: Request) -> Response:
            request.state.body = await request.body()
            return await add_member_handler(request)

        @self.graph("members", *write_members)
        def remove_member(request: Request) -> Response:
            group = tenant.find_group(request.path_params["group"])
            tenant.remove_member(group, request.path_params["member"])
            return Response(status_code=204)

        @self.graph("devices", *read_devices, allowed_query=("$top", "$skiptoken", "$filter"))
        def list_devices(request: Request) -> Response:
            devices = _filtered(
                request, tenant.entra_devices(), {"deviceId": lambda d: d.device_id, "displayName": lambda d: d.name}
            )
            return self.page(request, [self.device_json(d) for d in devices], "devices")

        @self.graph("devices", *read_devices)
        def get_device(request: Request) -> Response:
            return JSONResponse(self.device_json(tenant.find_entra_device(request.path_params["id"])))

        @self.graph("managedDevices", *read_managed, allowed_query=("$top", "$skiptoken", "$filter"))
        def list_managed(request: Request) -> Response:
            devices = _filtered(
                request,
                tenant.managed_devices(),
                {"azureADDeviceId": lambda d: d.device_id, "deviceName": lambda d: d.name},
            )
            return self.page(request, [self.managed_json(d) for d in devices], "deviceManagement/managedDevices")

        @self.graph("managedDevices", *read_managed)
        def get_managed(request: Request) -> Response:
            return JSONResponse(self.managed_json(tenant.find_managed_device(request.path_params["id"])))

        @self.graph("syncDevice", *sync)
        def sync_device(request: Request) -> Response:
            tenant.check_in(tenant.find_managed_device(request.path_params["id"]))
            return Response(status_code=204)

        @self.graph("configurationPolicies", *read_config, allowed_query=("$top", "$skiptoken"))
        def list_profiles(request: Request) -> Response:
            items = [self.profile_json(p) for p in tenant.profiles()]
            return self.page(request, items, "deviceManagement/configurationPolicies")

        @self.graph("configurationPolicies", *read_config)
        def get_profile(request: Request) -> Response:
            return JSONResponse(self.profile_json(tenant.find_profile(request.path_params["id"])))

        @self.graph("configurationPolicies", *read_config, allowed_query=("$top", "$skiptoken"))
        def list_assignments(request: Request) -> Response:
            profile = tenant.find_profile(request.path_params["id"])
            return self.page(
                request,
                [self.assignment_json(profile)],
                f"deviceManagement/configurationPolicies('{self.tenant.profile_id(profile)}')/assignments",
            )

        read_enrollment = ("DeviceManagementServiceConfig.Read.All", "DeviceManagementServiceConfig.ReadWrite.All")

        @self.graph("deviceEnrollmentConfigurations", *read_enrollment, allowed_query=("$top", "$skiptoken"))
        def list_enrollment(request: Request) -> Response:
            return self.page(
                request, self.enrollment_configurations(), "deviceManagement/deviceEnrollmentConfigurations"
            )

        @self.graph("deviceEnrollmentConfigurations", *read_enrollment)
        def get_enrollment(request: Request) -> Response:
            wanted = request.path_params["id"].casefold()
            for item in self.enrollment_configurations():
                if str(item["id"]).casefold() == wanted:
                    return JSONResponse(item)
            return graph_error(
                404, "ResourceNotFound", f"The enrollment configuration '{request.path_params['id']}' was not found."
            )

        managed = "/v1.0/deviceManagement/managedDevices"
        enrollment = "/v1.0/deviceManagement/deviceEnrollmentConfigurations"
        policies = "/v1.0/deviceManagement/configurationPolicies"
        return [
            Route("/common/discovery/instance", self.instance_discovery, methods=["GET"]),
            Route("/{tenant}/v2.0/.well-known/openid-configuration", self.openid_configuration, methods=["GET"]),
            Route("/{tenant}/discovery/v2.0/keys", self.keys, methods=["GET"]),
            Route("/{tenant}/oauth2/v2.0/token", self.token, methods=["POST"]),
            Route("/v1.0/users", list_users, methods=["GET"]),
            Route("/v1.0/users/{user}", get_user, methods=["GET"]),
            Route(hello, list_methods, methods=["GET"]),
            Route(hello + "/{method}", get_method, methods=["GET"]),
            Route(hello + "/{method}", delete_method, methods=["DELETE"]),
            Route("/v1.0/groups/{group}/members", list_members, methods=["GET"]),
            Route("/v1.0/groups/{group}/members/$ref", add_member, methods=["POST"]),
            Route("/v1.0/groups/{group}/members/{member}/$ref", remove_member, methods=["DELETE"]),
            Route("/v1.0/devices", list_devices, methods=["GET"]),
            Route("/v1.0/devices/{id}", get_device, methods=["GET"]),
            Route(managed, list_managed, methods=["GET"]),
            Route(managed + "/{id}", get_managed, methods=["GET"]),
            Route(managed + "/{id}/syncDevice", sync_device, methods=["POST"]),
            Route(enrollment, list_enrollment, methods=["GET"]),
            Route(enrollment + "/{id}", get_enrollment, methods=["GET"]),
            Route(policies, list_profiles, methods=["GET"]),
            Route(policies + "/{id}", get_profile, methods=["GET"]),
            Route(policies + "/{id}/assignments", list_assignments, methods=["GET"]),
            Route("/{path:path}", self.refuse, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
        ]

    def _add_member_sync(self, request: Request) -> Response:
        group = self.tenant.find_group(request.path_params["group"])
        try:
            body = json.loads(request.state.body or b"{}")
            reference = str(body["@odata.id"])
        except (ValueError, KeyError, TypeError):
            return graph_error(
                400,
                "Request_BadRequest",
                'The request body must be {"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/{id}"}.',
            )
        prefix, _, object_id = reference.rpartition("/")
        if not prefix.endswith("/directoryObjects") or not object_id:
            return graph_error(400, "Request_BadRequest", f"Invalid object identifier '{reference}'.")
        self.tenant.add_member(group, object_id)
        return Response(status_code=204)

    async def refuse(self, request: Request) -> Response:
        return not_modelled(f"{request.method} {request.url.path}")


def not_modelled(subject: str) -> JSONResponse:
    return graph_error(501, ERROR_ID, not_modelled_message(subject, "lab/graph"))


def _expand_device(request: Request) -> bool:
    expand = request.query_params.get("$expand")
    if expand not in (None, "device"):
        raise NotModelled(f"$expand={expand}")
    return expand == "device"


def _filtered(
    request: Request, devices: list[Device], fields: dict[str, Callable[[Device], str | None]]
) -> list[Device]:
    """``$filter=<field> eq '<value>'`` or ``<field> in ('<v1>', ...)`` (at most 15 values, Graph's limit on ``in``)
    on one of ``fields``: the filter forms the product uses."""
    expression = request.query_params.get("$filter")
    if expression is None:
        return devices
    name, op, _ = [*expression.split(" ", 2), "", ""][:3]
    if op == "in":
        name, values = _membership(expression, tuple(fields))
        wanted_set = {v.casefold() for v in values}
        return [d for d in devices if (fields[name](d) or "").casefold() in wanted_set]
    name, value = _equality(expression, tuple(fields))
    wanted = value.casefold()
    return [d for d in devices if (fields[name](d) or "").casefold() == wanted]


MAX_IN_VALUES = 15


def _membership(expression: str, fields: Sequence[str]) -> tuple[str, list[str]]:
    """``<field> in ('<v1>', '<v2>', ...)``: the values (a quote in a literal doubled), 1 to 15 of them."""
    name, _, rest = [*expression.split(" ", 2), "", ""][:3]
    rest = rest.strip()
    if name not in fields or not (rest.startswith("(") and rest.endswith(")")):
        raise NotModelled(f"$filter={expression}")
    values: list[str] = []
    for part in rest[1:-1].split(","):
        literal = part.strip()
        if len(literal) < 2 or not (literal.startswith("'") and literal.endswith("'")):
            raise NotModelled(f"$filter={expression}")
        values.append(literal[1:-1].replace("''", "'"))
    if not 1 <= len(values) <= MAX_IN_VALUES:
        raise TenantError(400, "Request_BadRequest", f"The 'in' operator takes 1 to {MAX_IN_VALUES} values.")
    return name, values


def _equality(expression: str, fields: Sequence[str]) -> tuple[str, str]:
    """``<field> eq '<value>'`` (OData: a quote in the literal is doubled) on one of ``fields``."""
    name, op, value = [*expression.split(" ", 2), "", ""][:3]
    if op != "eq" or name not in fields or len(value) < 2 or not (value.startswith("'") and value.endswith("'")):
        raise NotModelled(f"$filter={expression}")
    return name, value[1:-1].replace("''", "'")


class GraphServer:
    """The tenant's endpoint on ``address`` (port 0: a free one), served by uvicorn on a thread of its own."""

    def __init__(
        self,
        tenant: GraphTenant,
        ca: LabCA,
        *,
        address: str = DEFAULT_ADDRESS,
        port: int = 0,
        faults: FaultPlan | None = None,
        hostname: str = "graph.lab",
    ) -> None:
        self.tenant = tenant
        self.tokens = TokenService(tenant.tenant_id)
        self.service = GraphService(tenant, self.tokens, faults or FaultPlan())
        self.address = address
        self.port = port
        self.certificate = ca.issue(hostname, address)
        self.ca_bundle: Path = ca.bundle_path
        self.app_registration: AppRegistration = self.tokens.register_app("migrator")
        self.client_secret = self.tokens.add_secret(self.app_registration)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Graph's root as the product uses it (``https://graph.microsoft.com/v1.0``)."""
        return f"https://{self.address}:{self.port}/v1.0"

    @property
    def authority(self) -> str:
        return f"https://{self.address}:{self.port}/{self.tenant.tenant_id}"

    @property
    def client_id(self) -> str:
        return self.app_registration.client_id

    def start(self) -> None:
        """Listen (raises OSError when the address or port is taken) and serve on a daemon thread."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit it (Linux): without it TLS writes the response in two segments, the second
        # held by Nagle until the client's delayed ACK, and every request took 40 ms more (measured: 45 -> 3 ms).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind((self.address, self.port))
        except OSError:
            sock.close()
            raise
        self.port = int(sock.getsockname()[1])
        base = f"https://{self.address}:{self.port}"
        self.service.base_url = base
        self.tokens.token_endpoint = f"{base}/{self.tenant.tenant_id}/oauth2/v2.0/token"
        config = uvicorn.Config(
            Starlette(routes=self.service.routes()),
            ssl_certfile=str(self.certificate.cert_path),
            ssl_keyfile=str(self.certificate.key_path),
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        server = uvicorn.Server(config)
        self._server = server
        started = threading.Event()

        def run() -> None:
            async def serve() -> None:
                task = asyncio.create_task(server.serve(sockets=[sock]))
                while not server.started and not task.done():
                    await asyncio.sleep(0.01)
                started.set()
                await task

            asyncio.run(serve())
            started.set()

        self._thread = threading.Thread(target=run, name="lab-graph", daemon=True)
        self._thread.start()
        started.wait(timeout=30)
        if not server.started:  # uvicorn gave up (it logs why): say so rather than serve nothing
            self.stop()
            raise OSError(f"the lab tenant did not start listening on {self.address}:{self.port}")
        self.tenant.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self._server = None
