"""The ad-group channel killed at each of its journal points (SIGKILL, ``MIGRATOR_CRASH_AT``), then restarted:
an intent left without outcome is resolved by re-reading the groups, never by sending the modify blindly again,
and the batch ends with every computer where it belongs and every journal entry settled."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from migrator.directory.knowledge import read_directory
from migrator.engine.channels import MIGRATE, AdGroupChannel
from migrator.engine.device import CRASH_ENV
from migrator.inventory import load_inventory
from migrator.lab.directory.build import CLOUD_TRUST_GROUP, HELLO_GPO_GROUP
from migrator.playbook import PolicySettings
from migrator.remote.credentials import Credentials
from migrator.store import Store, content_hash
from tests.directory.conftest import CREDENTIALS, write_inventory
from tests.forkserver import forkserver_context
from tests.lab.directory.conftest import RunningDirectory, seeded_directory

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

_context = forkserver_context("migrator.engine.channels", "tests.crash.test_ad_group_crash")
CORP, EMEA = "corp.contoso.com", "emea.corp.contoso.com"
POLICY = PolicySettings(channel="ad-group", cloud_trust_group=CLOUD_TRUST_GROUP, cert_trust_group=HELLO_GPO_GROUP)


def child_main(store_dir: str, inventory: str, names: list[str], password: str, crash_at: int | None) -> None:
    """The orchestrator's side: start batch 0 of wave ``w`` (killed at journal point ``crash_at``)."""
    if crash_at is not None:
        os.environ[CRASH_ENV] = str(crash_at)
    credentials = Credentials(CREDENTIALS.username, SecretStr(password))
    items = load_inventory(inventory)
    store = Store.open(store_dir)
    knowledge = read_directory(items, credentials)
    channel = AdGroupChannel(POLICY, items, credentials, store=store, wave="w", knowledge=knowledge)
    channel.start_batch(0, names)
    store.close()


@pytest.fixture(scope="module")
def dcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDirectory]:
    with seeded_directory(tmp_path_factory.mktemp("dc")) as running:
        yield running


def _groups_of(dcs: RunningDirectory, domain: str, device: str) -> set[str]:
    entry = dcs.directory(domain).tree.find_account(f"{device}$")
    assert entry is not None
    return {str(dn).split(",", 1)[0].removeprefix("CN=") for dn in entry.get("memberOf")}


def _run(store_dir: Path, inventory: Path, names: list[str], crash_at: int | None) -> int | None:
    password = CREDENTIALS.password.get_secret_value()
    process = _context.Process(  # type: ignore[attr-defined]
        target=child_main, args=(str(store_dir), str(inventory), names, password, crash_at)
    )
    process.start()
    process.join(60)
    return int(process.exitcode) if process.exitcode is not None else None


# Journal points of a two-domain batch: CORP intent (1), CORP outcome (2), EMEA intent (3), EMEA outcome (4).
@pytest.mark.parametrize("crash_at", [1, 2, 3, 4])
def test_a_kill_at_each_journal_point_resumes_by_rereading(
    dcs: RunningDirectory, tmp_path: Path, crash_at: int
) -> None:
    """Killed right after a journal commit, restarted: the batch completes; an intent the kill left in doubt is
    resolved from the groups as read (applied to none of its computers: the kill came before the modify) and the
    rest is sent in a new attempt; every computer is in the cloud trust group and out of the certificate one."""
    corp = [d.name for d in dcs.fleet.devices if d.domain == CORP][crash_at * 3 : crash_at * 3 + 3]
    emea = [d.name for d in dcs.fleet.devices if d.domain == EMEA][crash_at * 3 : crash_at * 3 + 3]
    names = corp + emea
    inventory = write_inventory(dcs, tmp_path).path
    with Store.open(tmp_path) as store:
        store.create_wave("w", playbook_name="ad-group", playbook_hash=content_hash("x"))
        store.enroll("w", names)
        for name in names:  # preflight found each on a path the playbook takes: held before its policy step
            store.transition(name, "pending", "policy", "preflight_done")
    assert _run(tmp_path, inventory, names, crash_at) == -signal.SIGKILL
    assert _run(tmp_path, inventory, names, None) == 0
    for domain, members in ((CORP, corp), (EMEA, emea)):
        for name in members:
            groups = _groups_of(dcs, domain, name)
            assert CLOUD_TRUST_GROUP in groups and HELLO_GPO_GROUP not in groups, (crash_at, name)
    with Store.open(tmp_path) as store:
        entries = store.directory_changes("w")
        assert store.verify_audit().ok
    assert all(e.purpose == MIGRATE and not e.in_doubt for e in entries)
    by_domain = {d: [(e.status, e.outcome.get("applied")) for e in entries if e.domain == d] for d in (CORP, EMEA)}  # type: ignore[union-attr]
    in_doubt_domain = {1: CORP, 3: EMEA}.get(crash_at)
    for domain, statuses in by_domain.items():
        if domain == in_doubt_domain:
            assert statuses == [("resolved", "none"), ("done", None)], (crash_at, domain, statuses)
        else:
            assert statuses == [("done", None)], (crash_at, domain, statuses)
