"""The dashboard's pages in Debian's chromium over the report suite's store (two waves, realistic histories, a
hostile device): a device's timeline, search and filter, hostile names shown as text, an axe-core check of the
main pages, the audit status turning red when the log is cut behind the store's back; and, over HTTP, the
headers, the Host check and the refused actions (no token, a wrong token, a forged request)."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest

from migrator.engine.wavestore import APPROVE
from migrator.lab.server.certs import LabCA
from migrator.store import Store
from migrator.web import Dashboard, Listen, create_app, serving
from migrator.web.security import load_token
from tests.report.conftest import HOSTILE_DEVICE, OWNER, Clock, build_fleet
from tests.web.conftest import TOKEN, Served, dashboard_at, fetch, token_file

pytestmark = pytest.mark.timeout(120)

MAIN_PAGES = ("/", "/waves/pilot", "/attention", "/devices/PC-CERT-02", "/audit", "/diagram")


def _fleet(folder: Path) -> Path:
    state = folder / "state"
    clock = Clock()
    with Store.open(state, now=clock, synchronous="NORMAL") as store:
        build_fleet(store, clock)
        for device in store.list_devices():
            store.release(device.name, OWNER)
        store.record_audit_head()
    return state


@pytest.fixture(scope="module")
def fleet_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _fleet(tmp_path_factory.mktemp("web-fleet"))


@pytest.fixture(scope="module")
def served(fleet_state: Path) -> Iterator[Served]:
    with dashboard_at(fleet_state, token=True) as served:
        yield served


def test_device_page_shows_its_timeline_users_and_audit_entries(page: Any, served: Served) -> None:
    """PC-CERT-02's page lists its transitions and journal in order, its users with their states, and the audit
    entries that name it."""
    page.goto(served.at("/devices/PC-CERT-02"))
    assert page.get_by_role("heading", level=1).inner_text() == "Device PC-CERT-02"
    timeline = page.locator("table.timeline tbody tr")
    texts = timeline.all_inner_texts()
    assert any("pending → preflight" in t for t in texts)
    assert any("journal" in t for t in texts)
    assert any("users → migrated" in t for t in texts)
    users = page.locator("section[aria-labelledby=users] tbody tr").all_inner_texts()
    assert any("CONTOSO\\bob" in u and "migrated" in u for u in users)
    assert page.locator("section[aria-labelledby=audit] tbody tr").count() >= 5


def test_search_and_filter_a_waves_devices(page: Any, served: Served) -> None:
    """A part of the name (any case) and a filter narrow the wave's device list; the URL keeps them."""
    page.goto(served.at("/waves/pilot"))
    assert page.locator("table.devices tbody tr").count() == 4
    page.get_by_label("Device name contains").fill("fail")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"q=fail"))
    assert page.locator("table.devices tbody tr").all_inner_texts()[0].startswith("PC-FAIL-03")
    assert page.locator("table.devices tbody tr").count() == 1
    page.get_by_label("Device name contains").fill("")
    page.get_by_label("Show").select_option("attention")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"show=attention"))
    names = {row.split("\t")[0] for row in page.locator("table.devices tbody tr").all_inner_texts()}
    assert names == {"PC-FAIL-03", "PC-STALL-04"}


def test_hostile_names_are_shown_as_text(page: Any, served: Served) -> None:
    """A device named like a script tag, with a user named like an attribute injection, is text: no dialog opens
    and the heading shows the name as it is."""
    page.goto(served.at("/attention"))
    page.goto(served.at("/devices/" + quote(HOSTILE_DEVICE, safe="")))
    assert page.get_by_role("heading", level=1).inner_text() == f"Device {HOSTILE_DEVICE}"
    assert page.dialogs == []


def test_main_pages_pass_axe_core(page: Any, served: Served) -> None:
    """axe-core (vendored in the package's static files, served like every asset) finds no WCAG 2.x A/AA
    violation on the main pages."""
    for path in MAIN_PAGES:
        page.goto(served.at(path))
        page.add_script_tag(url="/static/vendor/axe-core/axe.min.js")
        violations = page.evaluate(
            """async () => (await axe.run(document, {runOnly: {type: 'tag',
                values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})).violations
                .map(v => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', ')}`)"""
        )
        assert violations == [], f"{path}: {violations}"


def test_responses_carry_the_safe_headers(served: Served) -> None:
    """CSP without unsafe-inline, no framing, nosniff, no referrer to other sites, no-store on pages, the CSRF
    cookie HttpOnly and SameSite=Strict."""
    status, _, headers = fetch(served.at("/"))
    assert status == 200
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    assert headers["cache-control"] == "no-store"
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")


def test_a_foreign_host_name_is_refused(served: Served) -> None:
    """A DNS name rebound to 127.0.0.1 by another site's page is not answered (the Host header must be ours)."""
    status, _, _ = fetch(served.at("/"), headers={"Host": "attacker.example"})
    assert status == 400


def _csrf(served: Served) -> tuple[str, str]:
    """A CSRF cookie and the form field that goes with it, as a browser gets them from a page."""
    _, body, headers = fetch(served.at("/waves/pilot"))
    cookie = headers["set-cookie"].split(";")[0]
    field = re.search(r'name="csrf" value="([^"]+)"', body)
    assert field is not None
    return cookie, field.group(1)


def _post_approve(served: Served, form: dict[str, str], cookie: str, **headers: str) -> tuple[int, str]:
    status, body, _ = fetch(
        served.at("/actions/approve"),
        data=urlencode(form).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie, **headers},
    )
    return status, body


def _approvals(state: Path) -> list[Any]:
    with Store.open(state, read_only=True) as store:
        return store.audit_entries(action=APPROVE)


def test_approving_needs_the_token_and_a_request_from_the_dashboard(served: Served, fleet_state: Path) -> None:
    """A wrong token, a CSRF field that does not match its cookie, and another site's Origin are each refused
    (403) and change nothing; the right token with the operator's name and reason is recorded with who and why."""
    cookie, csrf = _csrf(served)
    before = len(_approvals(fleet_state))
    form = {"csrf": csrf, "wave": "pilot", "operator": "Alice Admin", "reason": "CAB-7 ok", "operator_token": TOKEN}
    origin = served.url.rstrip("/")
    assert _post_approve(served, {**form, "operator_token": "wrong-token-0123456789"}, cookie, Origin=origin)[0] == 403
    assert _post_approve(served, {**form, "csrf": "forged"}, cookie, Origin=origin)[0] == 403
    assert _post_approve(served, form, cookie, Origin="https://evil.example")[0] == 403
    assert _post_approve(served, form, "migrator_csrf=other", Origin=origin)[0] == 403
    assert len(_approvals(fleet_state)) == before
    status, _ = _post_approve(served, form, cookie, Origin=origin)
    assert status == 200  # urllib followed the 303 to the wave's page
    recorded = _approvals(fleet_state)[-1]
    assert recorded.actor == "Alice Admin (dashboard)"
    assert isinstance(recorded.after, dict) and recorded.after["reason"] == "CAB-7 ok"


def test_a_read_only_dashboard_refuses_actions(fleet_state: Path) -> None:
    """Without --operator-token-file no action is offered, and a POST is refused."""
    with dashboard_at(fleet_state) as served:
        _, body, _ = fetch(served.at("/waves/pilot"))
        assert "/actions/approve" not in body
        _, _, headers = fetch(served.at("/"))
        cookie = headers["set-cookie"].split(";")[0]  # the double-submit value: the cookie's own
        form = {
            "csrf": cookie.split("=", 1)[1],
            "wave": "pilot",
            "operator": "x",
            "reason": "y",
            "operator_token": TOKEN,
        }
        status, text = _post_approve(served, form, cookie, Origin=served.url.rstrip("/"))
    assert status == 403 and "read-only" in text


def test_audit_status_turns_red_when_the_log_is_cut(page: Any, tmp_path: Path) -> None:
    """The audit page says intact; someone deletes the last audit entry with sqlite3; the open page turns red
    (TAMPERED) by itself, without a reload."""
    state = _fleet(tmp_path)
    with dashboard_at(state, log_dir=state / "logs") as served:
        page.goto(served.at("/audit"))
        assert page.locator("[data-audit]").get_attribute("data-audit") == "intact"
        page.wait_for_selector("body[data-live=open]")
        page.evaluate("window.notReloaded = true")
        db = sqlite3.connect(state / "migrator.db")
        db.execute("DROP TRIGGER IF EXISTS audit_no_delete")
        db.execute("DELETE FROM audit WHERE id = (SELECT MAX(id) FROM audit)")
        db.commit()
        db.close()
        page.wait_for_selector("[data-audit=tampered]")
        assert page.evaluate("window.notReloaded") is True
        assert "TAMPERED" in page.locator(".verdict").inner_text()
        assert page.locator(".verdict").evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(253, 226, 225)"


def test_beyond_loopback_every_page_needs_the_token_over_tls(page: Any, fleet_state: Path, tmp_path: Path) -> None:
    """The dashboard as it runs on a non-loopback address (TLS, a login for every page), served here on loopback:
    a page sends the browser to the login; a wrong token is refused; the token opens the pages; logging out
    closes them again."""
    certificate = LabCA(tmp_path / "ca").issue("localhost", "127.0.0.1")
    reader = Store.open(fleet_state, read_only=True)
    dashboard = Dashboard(reader=reader, token=load_token(token_file(tmp_path)), require_login=True, tls=True, poll=0.1)
    listen = Listen("127.0.0.1", 0, certificate.cert_path, certificate.key_path)
    context = page.context.browser.new_context(ignore_https_errors=True)
    browser_page = context.new_page()
    try:
        with serving(create_app(dashboard), listen) as url:
            assert url.startswith("https://")
            browser_page.goto(url + "attention")
            assert browser_page.url.startswith(url + "login?next=/attention")
            browser_page.get_by_label("Operator token").fill("wrong-token-0123456789")
            browser_page.get_by_role("button", name="Log in").click()
            assert "The operator token is wrong" in browser_page.locator("#live").inner_text()
            browser_page.get_by_label("Operator token").fill(TOKEN)
            browser_page.get_by_role("button", name="Log in").click()
            browser_page.wait_for_url(url + "attention")
            assert browser_page.get_by_role("heading", level=1).inner_text() == "Needs attention"
            browser_page.get_by_role("button", name="Log out").click()
            browser_page.wait_for_url(url + "login")
            browser_page.goto(url)
            assert "/login" in browser_page.url
    finally:
        context.close()
        reader.close()


def test_pausing_from_the_dashboard_is_the_operators_pause(served: Served, fleet_state: Path) -> None:
    """Pause with the token: the wave is paused through the wave engine, audited with who and why; a halted wave
    cannot be paused (the engine's own refusal, shown as bad input)."""
    cookie, csrf = _csrf(served)
    origin = served.url.rstrip("/")
    form = {"csrf": csrf, "operator": "Ada", "reason": "site B helpdesk", "operator_token": TOKEN}
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie, "Origin": origin}
    status, _, _ = fetch(
        served.at("/actions/pause"), data=urlencode({**form, "wave": "pilot"}).encode(), headers=headers
    )
    assert status == 200
    with Store.open(fleet_state, read_only=True) as store:
        assert store.get_wave("pilot").state == "paused"
        entry = store.audit_entries(action="wave.paused")[-1]
    assert entry.actor == "Ada (dashboard)"
    assert isinstance(entry.after, dict) and entry.after["reason"] == "paused by an operator: site B helpdesk"
    status, body, _ = fetch(
        served.at("/actions/pause"), data=urlencode({**form, "wave": "wave-2"}).encode(), headers=headers
    )
    assert status == 400 and "nothing to pause" in body
