"""``migrator serve``: the change managers' live dashboard.

Pages (:mod:`.views` reads the store for each): the waves (state, change ticket, progress per state, failure
budget used, canary, next approval gate, change windows), one wave's devices (search and filter), the devices that
need attention (failed, stalled, waiting: reason and since when), one device (timeline, journal, audit entries,
users), the audit chain's status and anchor, and the state diagram drawn from the machine's table. They update
live over server-sent events, with the package's own script and stylesheet (no CDN).

:mod:`.app` is the Starlette application, :mod:`.security` who may see and do what (read-only on loopback;
actions with the operator token, audited with who and why; TLS and a token for every page elsewhere; CSRF and
safe headers), :mod:`.server` the uvicorn side.
"""

from __future__ import annotations

from migrator.web.app import Dashboard, create_app
from migrator.web.server import Listen, check_listen, serve_forever, serving

__all__ = ["Dashboard", "Listen", "check_listen", "create_app", "serve_forever", "serving"]
