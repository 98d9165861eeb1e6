"""The dashboard's ASGI application (Starlette): routes, templates, live updates, actions, protections.

Theory of operation
-------------------
Every page is a Jinja2 template that extends ``base.html``; what changes lives in its ``live`` block, inside
``<main id="live">``. The page's script (``static/live.js``, served by the package like everything else) opens
``/events``, a server-sent event stream: the server reads the store's :func:`~migrator.web.views.fingerprint`
every ``poll`` seconds and sends ``change`` when it moved (and at least every ``refresh`` seconds, for what no
cheap read shows: an audit entry edited in place). The script then fetches the same URL with
``X-Live-Fragment: 1``, gets the ``live`` block alone, and puts it in place: no reload, the search field keeps its
text and focus, and a form being filled in is not replaced until it loses focus. Without script the page still
works (``<noscript>`` refreshes it every 30 s).

The store is opened read-only for the pages; the actions (approve, pause) open it for writing on first use and
call the wave engine's own operator functions (:class:`migrator.engine.wavestore.StoreWaves`), exactly what
``migrator approve`` and ``migrator pause`` call, with the operator's name and reason. Who may do what, and the
headers every response carries: :mod:`migrator.web.security`.

Handlers that read the store are plain functions: Starlette runs them in its thread pool, so a slow read never
holds the event loop (and the event streams) up.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from jinja2 import Environment, PackageLoader, Template, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from migrator.engine.wavestore import StoreWaves
from migrator.errors import InputError
from migrator.logs import get_logger
from migrator.machine.table import DEVICE_STATE_TABLE, USER_STATE_TABLE
from migrator.report.model import compact
from migrator.store import (
    AuditReport,
    NotFound,
    Store,
    StoreBusy,
    StoreError,
    StoreUnavailable,
    UnknownDevice,
    UnknownWave,
    utc_now,
)
from migrator.web import views
from migrator.web.security import (
    CSRF_COOKIE,
    HSTS,
    SAFE_HEADERS,
    SESSION_COOKIE,
    OperatorToken,
    Sessions,
    cross_site,
    new_secret,
    same_value,
)

FRAGMENT_HEADER = "x-live-fragment"
MAX_FORM_BYTES = 16 * 1024
MAX_OPERATOR = 100
MAX_REASON = 500
WRONG_TOKEN_PAUSE = 0.5  # seconds a wrong token costs: guessing a 16-character token stays hopeless
STATIC = Path(__file__).parent / "static"
NOTICES = {
    "approved": "The next batch gate is approved and recorded in the audit log; `migrator resume` continues the wave.",
    "paused": "The wave is paused and the pause recorded in the audit log; `migrator resume` continues it.",
}

log = get_logger("web")


@dataclass
class Dashboard:
    """What the app serves and how (built by ``migrator serve`` or a test)."""

    reader: Store  # opened read-only
    open_writer: Callable[[], Store] | None = None  # for the actions; None: the dashboard is read-only
    token: OperatorToken | None = None
    log_dir: Path | None = None  # the JSON log, whose audit heads the audit page checks too
    require_login: bool = False  # every page needs a session opened with the token (non-loopback)
    tls: bool = False
    allowed_hosts: tuple[str, ...] = ()  # Host headers accepted (empty: any; the login protects the pages)
    poll: float = 2.0  # seconds between two reads of the store's fingerprint, per open page
    refresh: float = 30.0  # a page is refreshed at least this often
    # Verifying the chain reads and hashes every entry (about a second for 10,000 devices' history): the audit
    # page reuses its last verification while the store's fingerprint has not moved, for at most ``refresh`` s.
    cache_audit: bool = True
    now: Callable[[], datetime] = utc_now
    sessions: Sessions = field(default_factory=Sessions)
    # Set when the server stops: event streams never end by themselves, so each ends when it sees this.
    stopping: threading.Event = field(default_factory=threading.Event)
    _writer: Store | None = None
    _writer_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def actions(self) -> bool:
        return self.token is not None and self.open_writer is not None

    def writer(self) -> Store:
        """The store opened for writing, on the first action (two actions at once open it once)."""
        with self._writer_lock:
            if self._writer is None:
                assert self.open_writer is not None
                self._writer = self.open_writer()
            return self._writer

    def close(self) -> None:
        with self._writer_lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("migrator.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["iso"] = views.iso_or_dash
    env.filters["state_class"] = views.state_class
    env.filters["urlpart"] = lambda text: quote(str(text), safe="")
    env.filters["compact"] = compact
    env.filters["percent"] = lambda value: f"{value:.1f}%".replace(".0%", "%")
    return env


_ENV = _environment()
# What each state means (the table's words), shown as a tooltip wherever a state is.
_ENV.globals["meanings"] = {s.name: s.meaning for s in (*DEVICE_STATE_TABLE, *USER_STATE_TABLE)}
_ENV.globals["categories"] = views.CATEGORIES


class Pages:
    """The route handlers, bound to one :class:`Dashboard`."""

    def __init__(self, dashboard: Dashboard) -> None:
        self.d = dashboard
        self._audit: tuple[tuple[object, ...], float, AuditReport] | None = None
        self._audit_lock = threading.Lock()

    # ---- rendering -------------------------------------------------------------------------------------

    def render(self, request: Request, name: str, status: int = 200, **values: Any) -> Response:
        """The page, or only its ``live`` block when the page's script asks for it; a CSRF cookie if none."""
        csrf = request.cookies.get(CSRF_COOKIE) or new_secret()
        context = {
            "request_path": request.url.path,
            "csrf": csrf,
            "actions": self.d.actions,
            "logged_in": self.d.require_login and self.d.sessions.valid(request.cookies.get(SESSION_COOKIE)),
            "store": self.d.reader.where,
            "taken_at": self.d.now(),
            **values,
        }
        template: Template = _ENV.get_template(name)
        if request.headers.get(FRAGMENT_HEADER) == "1" and "live" in template.blocks:
            body = "".join(template.blocks["live"](template.new_context(context)))
        else:
            body = template.render(context)
        response = HTMLResponse(body, status_code=status, headers={"vary": "X-Live-Fragment"})
        if CSRF_COOKIE not in request.cookies:
            response.set_cookie(CSRF_COOKIE, csrf, httponly=True, samesite="strict", secure=self.d.tls, path="/")
        return response

    def failure(self, request: Request, status: int, title: str, message: str) -> Response:
        return self.render(request, "error.html", status, title=title, message=message)

    def guarded(self, request: Request, name: str, read: Callable[[], Mapping[str, Any]]) -> Response:
        """Read the store for a page; an unknown wave or device is a 404, a busy or unreachable store a 503."""
        try:
            values = read()
        except (UnknownWave, UnknownDevice, NotFound) as error:
            return self.failure(request, 404, "Not found", str(error))
        except (StoreBusy, StoreUnavailable) as error:
            return self.failure(request, 503, "The store cannot be read just now", f"{error} ({error.action})")
        except StoreError as error:
            return self.failure(request, 500, "The store cannot be read", f"{error} ({error.action})")
        return self.render(request, name, **values)

    # ---- pages -----------------------------------------------------------------------------------------

    def waves(self, request: Request) -> Response:
        notice = NOTICES.get(request.query_params.get("done", ""))
        return self.guarded(
            request, "waves.html", lambda: {"cards": views.waves_page(self.d.reader, self.d.now()), "notice": notice}
        )

    def wave(self, request: Request) -> Response:
        name = request.path_params["wave"]
        params = request.query_params
        try:
            offset = int(params.get("offset", "0"))
        except ValueError:
            offset = 0
        notice = NOTICES.get(params.get("done", ""))

        def read() -> Mapping[str, Any]:
            page = views.wave_page(
                self.d.reader, name, params.get("q", ""), params.get("show", ""), offset, self.d.now()
            )
            return {"page": page, "card": page.card, "notice": notice, "page_size": views.PAGE_SIZE}

        return self.guarded(request, "wave.html", read)

    def attention(self, request: Request) -> Response:
        return self.guarded(
            request, "attention.html", lambda: {"devices": views.attention_page(self.d.reader, self.d.now())}
        )

    def device(self, request: Request) -> Response:
        name = request.path_params["device"]
        return self.guarded(request, "device.html", lambda: {"page": views.device_page(self.d.reader, name)})

    def audit(self, request: Request) -> Response:
        return self.guarded(request, "audit.html", lambda: {"audit": self._verified()})

    def _verified(self) -> AuditReport:
        """The audit page's verification: the last one while nothing moved (see ``Dashboard.cache_audit``)."""
        if not self.d.cache_audit:
            return views.audit_page(self.d.reader, self.d.log_dir)
        with self._audit_lock:  # one verification at a time; the others wait for it and reuse it
            marker = views.fingerprint(self.d.reader)
            cached = self._audit
            if cached is not None and cached[0] == marker and time.monotonic() - cached[1] < self.d.refresh:
                return cached[2]
            report = views.audit_page(self.d.reader, self.d.log_dir)
            self._audit = (marker, time.monotonic(), report)
            return report

    def diagram(self, request: Request) -> Response:
        return self.guarded(
            request,
            "diagram.html",
            lambda: {"page": views.diagram_page(), "device_states": DEVICE_STATE_TABLE},
        )

    # ---- live updates ----------------------------------------------------------------------------------

    async def events(self, request: Request) -> Response:
        """``change`` whenever the store's fingerprint moves (and every ``refresh`` seconds); a comment every
        15 s keeps proxies from closing an idle stream."""

        async def stream() -> AsyncIterator[str]:
            yield "retry: 3000\n\n"
            last: tuple[object, ...] | None = None
            sent = quiet = time.monotonic()
            number = 0
            while not self.d.stopping.is_set() and not await request.is_disconnected():
                try:
                    current: tuple[object, ...] = await run_in_threadpool(views.fingerprint, self.d.reader)
                except StoreError as error:
                    current = ("unreadable", str(error))
                now = time.monotonic()
                if last is not None and (current != last or now - sent >= self.d.refresh):
                    number += 1
                    yield f"event: change\nid: {number}\ndata: {number}\n\n"
                    sent = quiet = now
                elif now - quiet >= 15.0:
                    yield ": still here\n\n"
                    quiet = now
                last = current
                await self._pause()

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    async def _pause(self) -> None:
        """Sleep ``poll`` seconds, in short steps so a stopping server is seen at once."""
        waited = 0.0
        while waited < self.d.poll and not self.d.stopping.is_set():
            step = min(0.2, self.d.poll - waited)
            await asyncio.sleep(step)
            waited += step

    # ---- actions ---------------------------------------------------------------------------------------

    async def approve(self, request: Request) -> Response:
        return await self._act(request, "approve")

    async def pause(self, request: Request) -> Response:
        return await self._act(request, "pause")

    async def _form(self, request: Request) -> dict[str, str] | None:
        """The urlencoded form of a POST (None if it is not one, or too large)."""
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
            return None
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                return None
        try:
            fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
        except (UnicodeDecodeError, ValueError):
            return None
        return {key: values[0] for key, values in fields.items()}

    def _forged(self, request: Request, form: Mapping[str, str]) -> str | None:
        """Why this POST must be refused as a cross-site request, or None."""
        own = f"{request.url.scheme}://{request.url.netloc}"
        why = cross_site({k.lower(): v for k, v in request.headers.items()}, own)
        if why is not None:
            return why
        if not same_value(request.cookies.get(CSRF_COOKIE), form.get("csrf")):
            return "the form's CSRF token does not match its cookie (reload the page and try again)"
        return None

    async def _act(self, request: Request, kind: str) -> Response:
        client = request.client.host if request.client else "?"
        form = await self._form(request)
        if form is None:
            return self.failure(request, 400, "Refused", "expected a form (application/x-www-form-urlencoded)")
        wave = form.get("wave", "")
        forged = self._forged(request, form)
        if forged is not None:
            log.warning("action refused", action=kind, wave=wave, client=client, why="csrf")
            return self.failure(request, 403, "Refused", f"This request does not come from this dashboard: {forged}.")
        if not self.d.actions or self.d.token is None:
            return self.failure(
                request, 403, "Refused", "This dashboard is read-only: start it with --operator-token-file to act."
            )
        if not self.d.token.matches(form.get("operator_token", "")):
            log.warning("action refused", action=kind, wave=wave, client=client, why="wrong operator token")
            await asyncio.sleep(WRONG_TOKEN_PAUSE)
            return self.failure(request, 403, "Refused", "The operator token is wrong; nothing was changed.")
        operator = " ".join(form.get("operator", "").split())
        reason = " ".join(form.get("reason", "").split())
        problem = _check_words(operator, "your name", MAX_OPERATOR) or _check_words(reason, "a reason", MAX_REASON)
        if problem:
            return self.failure(request, 400, "Refused", problem)

        def act() -> None:
            operator_waves = StoreWaves(self.d.writer(), f"{operator} (dashboard)")
            if kind == "approve":
                operator_waves.approve(wave, reason)
            else:
                operator_waves.pause(wave, reason)

        try:
            await run_in_threadpool(act)
        except InputError as error:
            return self.failure(request, 400, "Refused", str(error))
        except StoreError as error:
            return self.failure(request, 503, "The store could not record it", f"{error} ({error.action})")
        done = "approved" if kind == "approve" else "paused"
        log.info(f"wave {done} from the dashboard", wave=wave, operator=operator, reason=reason, client=client)
        return RedirectResponse(f"/waves/{quote(wave, safe='')}?done={done}", status_code=303)

    # ---- login (non-loopback) ----------------------------------------------------------------------------

    def login_form(self, request: Request) -> Response:
        return self.render(request, "login.html", next=_local(request.query_params.get("next", "/")))

    async def login(self, request: Request) -> Response:
        form = await self._form(request)
        if form is None:
            return self.failure(request, 400, "Refused", "expected a form (application/x-www-form-urlencoded)")
        forged = self._forged(request, form)
        if forged is not None:
            return self.failure(request, 403, "Refused", f"This request does not come from this dashboard: {forged}.")
        client = request.client.host if request.client else "?"
        if self.d.token is None or not self.d.token.matches(form.get("operator_token", "")):
            log.warning("login refused", client=client, why="wrong operator token")
            await asyncio.sleep(WRONG_TOKEN_PAUSE)
            return self.render(request, "login.html", 403, next=_local(form.get("next", "/")), wrong=True)
        log.info("login", client=client)
        response = RedirectResponse(_local(form.get("next", "/")), status_code=303)
        response.set_cookie(
            SESSION_COOKIE, self.d.sessions.open(), httponly=True, samesite="strict", secure=self.d.tls, path="/"
        )
        return response

    async def logout(self, request: Request) -> Response:
        form = await self._form(request)
        if form is None or self._forged(request, form) is not None:
            return self.failure(request, 403, "Refused", "This request does not come from this dashboard.")
        self.d.sessions.close(request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response


def _check_words(value: str, what: str, limit: int) -> str | None:
    if not value:
        return f"Give {what}: it is recorded in the audit log with the action."
    if len(value) > limit:
        return f"{what.capitalize()} is longer than {limit} characters."
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return f"{what.capitalize()} holds control characters."
    return None


def _local(target: str) -> str:
    """A redirect target on this site only (an open redirect would lend the dashboard's name to phishing)."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


class Protect:
    """ASGI middleware: the safe headers on every response, the login on every page (when asked), and one
    structured log record per request (method, path, status, milliseconds; never a query string or a form)."""

    PUBLIC = ("/login", "/static/")

    def __init__(self, app: ASGIApp, dashboard: Dashboard) -> None:
        self.app = app
        self.d = dashboard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path: str = scope["path"]
        status = 0

        async def send_safe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                for name, value in SAFE_HEADERS:
                    headers[name] = value
                if self.d.tls:
                    headers[HSTS[0]] = HSTS[1]
                if not path.startswith("/static/"):
                    headers["cache-control"] = "no-store"
            await send(message)

        try:
            if self.d.require_login and not path.startswith(self.PUBLIC):
                request = Request(scope)
                if not self.d.sessions.valid(request.cookies.get(SESSION_COOKIE)):
                    target = f"/login?next={quote(path, safe='/')}"
                    response: Response = (
                        RedirectResponse(target, status_code=303)
                        if scope["method"] in ("GET", "HEAD")
                        else Response("log in first", status_code=401)
                    )
                    await response(scope, receive, send_safe)
                    return
            await self.app(scope, receive, send_safe)
        finally:
            if path != "/events":  # one record per page view; the event stream would log once per visit
                log.info(
                    "request",
                    method=scope["method"],
                    path=path,
                    status=status,
                    ms=round(1000 * (time.perf_counter() - started), 1),
                )


def create_app(dashboard: Dashboard) -> Starlette:
    pages = Pages(dashboard)
    routes = [
        Route("/", pages.waves, name="waves"),
        Route("/waves/{wave:path}", pages.wave, name="wave"),
        Route("/attention", pages.attention, name="attention"),
        Route("/devices/{device:path}", pages.device, name="device"),
        Route("/audit", pages.audit, name="audit"),
        Route("/diagram", pages.diagram, name="diagram"),
        Route("/events", pages.events, name="events"),
        Route("/actions/approve", pages.approve, methods=["POST"]),
        Route("/actions/pause", pages.pause, methods=["POST"]),
        Route("/login", pages.login_form, methods=["GET"]),
        Route("/login", pages.login, methods=["POST"]),
        Route("/logout", pages.logout, methods=["POST"]),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    # Protect is outermost: a response of the host check carries the safe headers too.
    middleware = [Middleware(Protect, dashboard=dashboard)]
    if dashboard.allowed_hosts:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=list(dashboard.allowed_hosts)))

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        dashboard.close()

    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.dashboard = dashboard
    return app
