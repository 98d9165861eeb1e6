"""WS-Man requests on the wire for a one-user certificate trust migration (issue 16 item 4): counts, not times.

Every HTTP request pypsrp sends is counted at requests' adapter, over HTTPS (the WS-Man action is read from the
envelope in clear), with one runspace pool kept across the device's visits as the wave keeps it. WinRM may answer
a Receive before the command's output is ready (the client then asks again): those extra Receives are how the
server answers, not what the migrator asks, and are counted apart."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from migrator.inventory import Connection
from migrator.remote import open_transport
from migrator.remote.pool import TransportPool
from tests.engine.labkit import cooperative, drive, make_fleet, open_store, playbook, running_lab, sign_everyone_in

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

_ACTION = re.compile(rb"<(?:\w+:)?Action[^>]*>\s*[^<]*/([A-Za-z]+)\s*</(?:\w+:)?Action>")
GOAL = 15


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Every request sent, by WS-Man action (``auth leg`` for one answered 401)."""
    counts: Counter[str] = Counter()
    send = requests.adapters.HTTPAdapter.send

    def counting(adapter: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        response = send(adapter, request, *args, **kwargs)
        if response.status_code == 401:
            counts["auth leg"] += 1
        else:
            body = request.body if isinstance(request.body, bytes) else (request.body or "").encode()
            found = _ACTION.search(body)
            counts[found.group(1).decode() if found else "unreadable"] += 1
        return response

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", counting)
    yield counts


def test_a_one_user_certificate_trust_device_migrates_in_at_most_fifteen_requests(
    tmp_path: Path, wire: Counter[str]
) -> None:
    """Pool open (two NTLM legs, Create, Receive), one Command and Receive per pipeline, the pool's Delete: at most
    15 requests for the whole migration, waiting excluded, WinRM's early answers aside; the journal still holds
    an intent and an outcome for every side effect."""
    fleet = cooperative(make_fleet(6, 4, "key=0,cert=100,cloud=0,none=0"))
    target = next(d for d in fleet.devices if d.join_type == "hybrid" and d.users and d.users[0].container)
    target.users = target.users[:1]
    fleet.devices = [target]
    book = playbook("cert-trust-to-cloud-kerberos")
    with running_lab(fleet, tmp_path / "lab") as kit:
        sign_everyone_in(kit)
        assert kit.server.https_port
        connection = Connection(
            transport="psrp",
            scheme="https",
            port=kit.server.https_port,
            auth="ntlm",
            ca_bundle=kit.server.ca_bundle_path,
            read_timeout=60,
        )
        pool = TransportPool(open_transport, max_idle=3600.0, max_open=4)
        kit.connection = lambda: connection  # type: ignore[method-assign]
        store = open_store(tmp_path / "state", kit, book, [target.name])
        try:
            drive(kit, store, book, [target.name], transport_factory=pool.lease)
        finally:
            pool.close()
        assert store.get_device(target.name).state == "migrated"
        journal = store.journal_entries(target.name)
        assert journal and all(entry.status != "intent" for entry in journal)
        assert [e.step for e in journal if e.user is None] == ["set_policy"]  # the whole plan, one entry

    extra_receives = wire["Receive"] - wire["Command"] - wire["Create"]
    assert extra_receives >= 0, wire
    assert wire["auth leg"] == 2, wire
    assert wire["Create"] == 1 and wire["Delete"] == 1, wire
    assert wire["unreadable"] == 0, wire
    print(f"requests on the wire: {dict(wire)}; extra Receives: {extra_receives}")
    assert sum(wire.values()) - extra_receives <= GOAL, wire
