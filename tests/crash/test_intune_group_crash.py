"""The intune-group channel killed at each of its journal points (SIGKILL, ``MIGRATOR_CRASH_AT``), then restarted
against the lab tenant: an intent left without outcome is resolved by re-reading the groups' members, never by
sending the change blindly again, and the batch ends with every device where it belongs, synced, and every
journal entry settled."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from migrator.engine.channels import MIGRATE, IntuneGroupChannel
from migrator.engine.device import CRASH_ENV
from migrator.inventory import load_inventory
from migrator.lab.runtime import LabRuntime
from migrator.playbook import PolicySettings
from migrator.remote.credentials import load_credentials
from migrator.store import Store, content_hash
from tests.engine.test_intune_group_wave import CERT_GROUP, CLOUD_GROUP, _groups, _managed, lab  # noqa: F401
from tests.forkserver import forkserver_context

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

_context = forkserver_context("migrator.engine.channels", "tests.crash.test_intune_group_crash")


def child_main(store_dir: str, inventory: str, names: list[str], policy: str, crash_at: int | None) -> None:
    """The orchestrator's side: start batch 0 of wave ``w`` (killed at journal point ``crash_at``)."""
    if crash_at is not None:
        os.environ[CRASH_ENV] = str(crash_at)
    secrets = Path(inventory).parent / "lab-secrets.env"
    items = load_inventory(inventory)
    store = Store.open(store_dir)
    channel = IntuneGroupChannel(
        PolicySettings.model_validate_json(policy),
        items,
        load_credentials(secrets),
        store=store,
        wave="w",
        secrets_file=secrets,
    )
    try:
        channel.start_batch(0, names)
    finally:
        channel.close()
        store.close()


def _run(store_dir: Path, inventory: Path, names: list[str], policy: PolicySettings, crash_at: int | None) -> int:
    process = _context.Process(  # type: ignore[attr-defined]
        target=child_main, args=(str(store_dir), str(inventory), names, policy.model_dump_json(), crash_at)
    )
    process.start()
    process.join(60)
    return int(process.exitcode) if process.exitcode is not None else -999


# Journal points of one batch: the tenant's intent (1), its outcome (2).
@pytest.mark.parametrize("crash_at", [1, 2])
def test_a_kill_at_each_journal_point_resumes_by_rereading(
    lab: tuple[LabRuntime, Path],  # noqa: F811 - the wave tests' lab fixture
    tmp_path: Path,
    crash_at: int,
) -> None:
    """Killed right after a journal commit, restarted: the batch completes; an intent the kill left in doubt is
    resolved from the members as read (applied to none: the kill came before the first request) and the rest is
    sent in a new attempt; every device is in the cloud trust profile's group, out of the certificate one."""
    runtime, inventory = lab
    names = [d.name for d in runtime.fleet.devices if _managed(d) and CERT_GROUP in _groups(runtime, d.name)][:3]
    assert len(names) == 3
    policy = PolicySettings(
        channel="intune-group",
        cloud_trust_group=runtime.tenant.group_id(CLOUD_GROUP),
        cert_trust_group=runtime.tenant.group_id(CERT_GROUP),
    )
    with Store.open(tmp_path) as store:
        store.create_wave("w", playbook_name="intune-group", playbook_hash=content_hash("x"))
        store.enroll("w", names)
        for name in names:  # preflight found each on a path the playbook takes: held before its policy step
            store.transition(name, "pending", "policy", "preflight_done")
    assert _run(tmp_path, inventory, names, policy, crash_at) == -signal.SIGKILL
    synced = len(runtime.tenant.syncs)
    assert _run(tmp_path, inventory, names, policy, None) == 0
    for name in names:
        groups = _groups(runtime, name)
        assert CLOUD_GROUP in groups and CERT_GROUP not in groups, (crash_at, name)
    with Store.open(tmp_path) as store:
        entries = store.directory_changes("w")
        assert store.verify_audit().ok
    assert all(e.purpose == MIGRATE and not e.in_doubt for e in entries)
    statuses = [(e.status, e.outcome.get("applied")) for e in entries]  # type: ignore[union-attr]
    if crash_at == 1:
        assert statuses == [("resolved", "none"), ("done", None)], statuses
        assert {n for n, _at in runtime.tenant.syncs[synced:]} >= set(names)  # synced by the run that finished
    else:
        assert statuses == [("done", None)], statuses  # the restart finds the batch moved: nothing sent
