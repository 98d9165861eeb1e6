"""What workers do not carry out yet is refused, not run into a plausible wrong end: a playbook with a batch-level
group channel (``ad-group``, ``intune-group``) or the Entra ID cleanup, on a store whose waves workers work
(PostgreSQL), exits 2 before any wave is written; the same playbooks stay accepted on SQLite (their own tests)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from migrator.cli import app
from migrator.engine.workers import check_worker_support
from migrator.errors import ExitCode, InputError
from migrator.playbook import builtin_path, load_playbook
from migrator.store import Store

INVENTORY = {
    "defaults": {"transport": "psrp", "scheme": "https", "port": 5986, "auth": "ntlm"},
    "devices": [{"name": "PC-0001", "address": "127.0.0.1", "domain": "corp.contoso.com"}],
}


@pytest.mark.parametrize("shipped", ["ad-group-to-cloud-kerberos", "intune-group-to-cloud-kerberos"])
def test_run_on_a_shared_store_refuses_a_group_channel_before_writing(
    shipped: str, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump(INVENTORY), encoding="utf-8")
    monkeypatch.setenv("MIGRATOR_USERNAME", "CORP\\admin")
    monkeypatch.setenv("MIGRATOR_PASSWORD", "not-used")
    result = CliRunner().invoke(
        app,
        [
            "run",
            "-i",
            str(inventory),
            "--playbook",
            shipped,
            "--store",
            postgres_url,
            "--yes",
            "--state",
            str(tmp_path),
        ],
    )
    assert result.exit_code == ExitCode.INPUT, result.output
    assert "not carried out by workers yet" in result.output
    with Store.open(postgres_url) as store:
        assert store.list_waves() == []


def test_the_entra_cleanup_is_refused_for_workers(tmp_path: Path) -> None:
    data = yaml.safe_load(builtin_path("to-cloud-kerberos").read_text(encoding="utf-8"))
    data["entra"] = {"remove_stale_hello_keys": True}
    path = tmp_path / "playbook.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    with pytest.raises(InputError, match="remove_stale_hello_keys is not carried out by workers"):
        check_worker_support(load_playbook(path))
    check_worker_support(load_playbook(builtin_path("to-cloud-kerberos")))  # the local channel: workers run it
