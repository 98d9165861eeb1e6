"""The dashboard's test fixtures: a dashboard served on a free loopback port over a store, and Debian's chromium
driven by Playwright (never a downloaded browser: ``executable_path``).

One browser per test module (``browser``), a fresh context per test (``page``): starting chromium is the slow
part. Outside CI a machine without /usr/bin/chromium skips the browser tests, saying why; under
``MIGRATOR_CI=1`` (``.ci/run``, which installs Debian's chromium) they must run.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from migrator.store import Store
from migrator.web import Dashboard, Listen, create_app, serving
from migrator.web.security import load_token

CHROMIUM = Path("/usr/bin/chromium")
IN_CI = os.environ.get("MIGRATOR_CI") == "1"
TOKEN = "operator-token-for-tests-0123456789"
POLL = 0.1  # seconds between the event stream's looks at the store


@dataclass
class Served:
    url: str
    dashboard: Dashboard

    def at(self, path: str) -> str:
        return self.url.rstrip("/") + path


def token_file(folder: Path, value: str = TOKEN) -> Path:
    path = folder / "operator-token"
    path.write_text(value + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


@contextmanager
def dashboard_at(state: Path, *, token: bool = False, log_dir: Path | None = None) -> Iterator[Served]:
    """The dashboard of the store in ``state`` on 127.0.0.1 and a free port; actions on with ``token``."""
    reader = Store.open(state, read_only=True)
    dashboard = Dashboard(
        reader=reader,
        open_writer=(lambda: Store.open(state, create=False)) if token else None,
        token=load_token(token_file(state.parent)) if token else None,
        log_dir=log_dir,
        allowed_hosts=("127.0.0.1", "localhost"),
        poll=POLL,
    )
    try:
        with serving(create_app(dashboard), Listen("127.0.0.1", 0)) as url:
            yield Served(url, dashboard)
    finally:
        reader.close()


def fetch(url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, str, Any]:
    """GET (or POST ``data``) with urllib: status, body, headers; an HTTP error status is returned, not raised."""
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode(), response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), error.headers


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        if IN_CI:
            pytest.fail(f"{CHROMIUM} is missing: .ci/system-packages installs Debian's chromium for these tests")
        pytest.skip(f"no Debian chromium at {CHROMIUM} (apt-get install chromium); the browser tests need it")
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - only when a browser test runs

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(15_000)
    opened = context.new_page()
    dialogs: list[str] = []
    opened.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    opened.dialogs = dialogs  # a hostile name that ran as script would open one
    yield opened
    context.close()
