"""The running lab's control endpoint: loopback-only HTTP+JSON, for ``lab inspect``, ``lab user`` and tests.

Every request carries ``Authorization: Bearer <token>``; the token is written to ``lab-secrets.env``
(``MIGRATOR_LAB_TOKEN``, mode 0600) beside the inventory, so only the account that started the lab can steer it.

=======================  ===========================================================================
``GET  /v1/devices``     the lab's truth (``?name=PC-0001&name=PC-0002``; all devices without names)
``POST /v1/users``       ``{"device", "user", "action": sign-in|sign-out|lock|unlock, "kind"?, "method"?}``
``POST /v1/dc``          ``{"device", "reachable": bool}``: line of sight to a domain controller
``POST /v1/power``       ``{"device", "action": offline|online|reboot, "duration"?}``
``POST /v1/groups``      ``{"domain", "group", "member", "action": add|remove}``: group membership in a
                         domain's directory, as an admin changes it (AD's refusals answer 409 with the code)
``GET  /v1/gpos``        ``?domain=D[&name=N]``: a domain's GPOs (links, security filtering, values)
``POST /v1/gpos``        ``{"domain", "name", "value": "K=V" | null, "remove": K | null, "user": bool}``: edit a GPO
=======================  ===========================================================================
"""

from __future__ import annotations

import asyncio
import hmac
import json
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import h11

from migrator.errors import InputError
from migrator.lab.directory.dit import DirectoryError
from migrator.lab.directory.grouppolicy import GroupPolicyEngine
from migrator.lab.directory.server import DirectoryServer
from migrator.lab.truth import fleet_truth
from migrator.lab.windows import Lab, LabError

Handler = Callable[[dict[str, Any]], Awaitable[Any]]
# A lab in several processes (migrator.lab.shards) answers these paths in the process that runs the device:
# the router gets (method, path, query, args) and returns (status, payload).
Router = Callable[[str, str, dict[str, list[str]], dict[str, Any]], Awaitable[tuple[int, Any]]]
DEVICE_PATHS = frozenset({"/v1/devices", "/v1/users", "/v1/dc", "/v1/power"})
MAX_BODY = 1 << 20


class ControlServer:
    """Serves the control API for one :class:`Lab` on 127.0.0.1 (asyncio + h11)."""

    def __init__(
        self,
        lab: Lab,
        token: str,
        power: Callable[[str, str, float | None], Awaitable[None]],
        directory: DirectoryServer | None = None,
        group_policy: GroupPolicyEngine | None = None,
    ) -> None:
        self.lab = lab
        self.directory = directory
        self.group_policy = group_policy
        self._token = token.encode()
        self._power = power
        self._server: asyncio.Server | None = None
        self.port = 0
        self.router: Router | None = None  # set by a lab in several processes: device paths go to their shard

    async def start(self, port: int = 0) -> int:
        self._server = await asyncio.start_server(self._serve, host="127.0.0.1", port=port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await reader.read(65536)
                    conn.receive_data(data)
                    if not data:
                        return
                    continue
                if not isinstance(event, h11.Request):
                    return
                body = b""
                while True:
                    part = conn.next_event()
                    if part is h11.NEED_DATA:
                        conn.receive_data(await reader.read(65536))
                        continue
                    if isinstance(part, h11.Data):
                        body += part.data
                        if len(body) > MAX_BODY:
                            return
                        continue
                    break
                status, payload = await self._dispatch(event, body)
                data = json.dumps(payload).encode()
                writer.write(
                    conn.send(
                        h11.Response(
                            status_code=status,
                            headers=[("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
                        )
                    )
                    or b""
                )
                writer.write(conn.send(h11.Data(data=data)) or b"")
                writer.write(conn.send(h11.EndOfMessage()) or b"")
                await writer.drain()
                if conn.our_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
        except (h11.RemoteProtocolError, ConnectionError):
            return
        finally:
            writer.close()

    def _authorised(self, request: h11.Request) -> bool:
        for name, value in request.headers:
            if name.lower() == b"authorization" and value.startswith(b"Bearer "):
                return hmac.compare_digest(value[7:], self._token)
        return False

    async def _dispatch(self, request: h11.Request, body: bytes) -> tuple[int, Any]:
        if not self._authorised(request):
            return 401, {"error": "missing or wrong bearer token (see MIGRATOR_LAB_TOKEN in lab-secrets.env)"}
        target = urlsplit(request.target.decode("ascii", "replace"))
        method = request.method.decode()
        try:
            args: dict[str, Any] = json.loads(body) if body else {}
            if not isinstance(args, dict):
                raise ValueError("the body must be a JSON object")
        except ValueError as err:
            return 400, {"error": str(err)}
        query = parse_qs(target.query)
        if self.router is not None and target.path in DEVICE_PATHS:
            return await self.router(method, target.path, query, args)
        return await self.handle(method, target.path, query, args)

    async def handle(
        self, method: str, path: str, query: dict[str, list[str]], args: dict[str, Any]
    ) -> tuple[int, Any]:
        """Answer one authorised request: (status, JSON payload)."""
        try:
            if method == "GET" and path == "/v1/devices":
                names = query.get("name", [])
                return 200, await asyncio.to_thread(fleet_truth, self.lab, names)
            if method == "POST" and path == "/v1/users":
                return 200, await asyncio.to_thread(self._user, args)
            if method == "POST" and path == "/v1/dc":
                device = self.lab.device(str(args["device"]))
                self.lab.set_dc_reachable(device, bool(args["reachable"]))
                return 200, {"device": device.name, "dc_reachable": device.dc_reachable}
            if method == "POST" and path == "/v1/power":
                device = self.lab.device(str(args["device"]))
                action = str(args["action"])
                if action not in ("offline", "online", "reboot"):
                    raise ValueError(f"unknown power action {action!r}")
                duration = args.get("duration")
                await self._power(device.name, action, float(duration) if duration is not None else None)
                return 200, {"device": device.name, "action": action}
            if method == "POST" and path == "/v1/groups":
                return 200, await asyncio.to_thread(self._group, args)
            if method == "GET" and path == "/v1/gpos":
                return 200, self._gpos(query.get("domain", [""])[0], query.get("name", [None])[0])
            if method == "POST" and path == "/v1/gpos":
                return 200, self._gpo_edit(args)
        except DirectoryError as err:
            return 409, {"error": err.message, "ldap_result": err.code}
        except KeyError as err:
            return 400, {"error": str(err.args[0]) if err.args else str(err)}
        except (LabError, ValueError, TypeError) as err:
            return 400, {"error": str(err)}
        return 404, {"error": f"no such endpoint: {method} {path}"}

    def _group(self, args: dict[str, Any]) -> dict[str, Any]:
        if self.directory is None:
            raise ValueError("this lab has no directory")
        action = str(args["action"])
        if action not in ("add", "remove"):
            raise ValueError(f"unknown group action {action!r} (add, remove)")
        tree = self.directory.controller(str(args["domain"])).directory.tree
        with tree.lock:
            group = tree.find_account(str(args["group"]))
            if group is None or not group.is_a("group"):
                raise ValueError(f"no group {args['group']!r} in {tree.dns_name}")
            member = tree.find_account(str(args["member"]))
            if member is None:
                raise ValueError(f"no user, computer or group {args['member']!r} in {tree.dns_name}")
            if action == "add":
                tree.add_member(group, member.dn)
            else:
                tree.remove_member(group, member.dn)
            return {
                "domain": tree.dns_name,
                "group": group.dn,
                "member": member.dn,
                "action": action,
                "members": len(group.get("member")),
            }

    def _engine(self) -> GroupPolicyEngine:
        if self.group_policy is None:
            raise ValueError("this lab has no directory")
        return self.group_policy

    def _gpos(self, domain: str, name: str | None) -> Any:
        engine = self._engine()
        if name:
            return engine.describe(domain, engine.find(domain, name))
        key = engine.domain_key(domain)
        return {"domain": key, "gpos": [engine.describe(key, gpo) for gpo in engine.policies.get(key, [])]}

    def _gpo_edit(self, args: dict[str, Any]) -> Any:
        engine = self._engine()
        domain, name, user = str(args["domain"]), str(args["name"]), bool(args.get("user", False))
        if args.get("value") is not None:
            key, sep, raw = str(args["value"]).partition("=")
            if not sep or not key.strip():
                raise ValueError("--value is NAME=DWORD, e.g. UseCloudTrustForOnPremAuth=1")
            gpo = engine.set_value(domain, name, key.strip(), int(raw, 0), user=user)
        elif args.get("remove") is not None:
            gpo = engine.set_value(domain, name, str(args["remove"]), None, user=user)
        else:
            raise ValueError("give a value to set (K=V) or one to remove")
        return engine.describe(domain, gpo)

    def _user(self, args: dict[str, Any]) -> dict[str, Any]:
        device = self.lab.device(str(args["device"]))
        user = self.lab.user(device, str(args["user"]))
        action = str(args["action"])
        if action == "sign-in":
            kind = args.get("kind", "console")
            method = args.get("method")
            if kind not in ("console", "rdp") or method not in (None, "password", "hello"):
                raise ValueError("kind is console|rdp and method is password|hello")
            outcome = self.lab.sign_in(device, user, kind, method)
            return {
                "device": device.name,
                "user": user.qualified_name,
                "action": action,
                "method": outcome.method,
                "hello_failed": outcome.hello_failed,
                "reason": outcome.hello_failure_reason,
                "provisioned": outcome.provisioned,
                "provisioning_event": outcome.provisioning_event,
                "session": outcome.session.session_id,
            }
        done = {
            "sign-out": self.lab.sign_out,
            "lock": self.lab.lock,
            "unlock": self.lab.unlock,
        }.get(action)
        if done is None:
            raise ValueError(f"unknown user action {action!r} (sign-in, sign-out, lock, unlock)")
        return {"device": device.name, "user": user.qualified_name, "action": action, "done": done(device, user)}


class ControlClient:
    """Talks to a running lab's control endpoint (stdlib HTTP; loopback only)."""

    def __init__(self, url: str, token: str, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self.timeout = timeout

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - the URL is validated as loopback http(s)
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self._token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return json.loads(response.read())
        except urllib.error.HTTPError as err:
            try:
                detail = json.loads(err.read()).get("error", "")
            except (ValueError, AttributeError):
                detail = ""
            raise InputError(f"lab control endpoint {self.url}: HTTP {err.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise InputError(
                f"lab control endpoint {self.url} is not answering ({reason}): is `lab up` running?"
            ) from None

    def devices(self, names: list[str] | None = None) -> Any:
        query = urlencode([("name", n) for n in (names or [])])
        return self._call("GET", "/v1/devices" + (f"?{query}" if query else ""))

    def user(self, device: str, user: str, action: str, **extra: Any) -> Any:
        return self._call("POST", "/v1/users", {"device": device, "user": user, "action": action, **extra})

    def dc(self, device: str, reachable: bool) -> Any:
        return self._call("POST", "/v1/dc", {"device": device, "reachable": reachable})

    def group(self, domain: str, action: str, group: str, member: str) -> Any:
        return self._call("POST", "/v1/groups", {"domain": domain, "action": action, "group": group, "member": member})

    def gpos(self, domain: str, name: str | None = None) -> Any:
        query = urlencode([("domain", domain)] + ([("name", name)] if name else []))
        return self._call("GET", f"/v1/gpos?{query}")

    def gpo_edit(self, domain: str, name: str, *, value: str | None, remove: str | None, user: bool) -> Any:
        body = {"domain": domain, "name": name, "value": value, "remove": remove, "user": user}
        return self._call("POST", "/v1/gpos", body)

    def power(self, device: str, action: str, duration: float | None = None) -> Any:
        return self._call("POST", "/v1/power", {"device": device, "action": action, "duration": duration})
