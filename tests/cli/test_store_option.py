"""``--store URL`` and ``MIGRATOR_STORE`` on every command that reads or writes the store: which store is used
(option, then environment, then ``--state``), the commands on a PostgreSQL store, and a URL's password never
shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from migrator.cli import app
from migrator.cli.storeopt import STORE_ENV, choose_store, shown
from migrator.errors import ExitCode
from migrator.store import AuditEntry, Store, content_hash
from tests.cli.test_store_access import READ_ONLY, _writers
from tests.loopback import closed_port

ENV = {"MIGRATOR_USERNAME": "LAB\\migrator-admin", "MIGRATOR_PASSWORD": "not-used-here", STORE_ENV: ""}
runner = CliRunner()


def _build(location: str, wave: str) -> None:
    with Store.open(location) as store:
        store.create_wave(wave, playbook_name="p", playbook_hash=content_hash("x"), audit=AuditEntry("me", "create"))
        store.enroll(wave, ["PC-1"])


def _waves(args: list[str], env: dict[str, str] | None = None) -> list[str]:
    result = runner.invoke(app, ["status", "--json", *args], env={**ENV, **(env or {})})
    assert result.exit_code == ExitCode.OK, result.output
    return [wave["name"] for wave in json.loads(result.stdout)["waves"]]


def test_the_option_wins_over_the_environment_which_wins_over_state(tmp_path: Path) -> None:
    """--store, else MIGRATOR_STORE, else --state: each names a different store here, and status shows which."""
    by_option, by_env, by_state = (str(tmp_path / name) for name in ("option", "env", "state"))
    for location, wave in ((by_option, "from-option"), (by_env, "from-env"), (by_state, "from-state")):
        _build(location, wave)
    assert _waves(["--state", by_state]) == ["from-state"]
    assert _waves(["--state", by_state], {STORE_ENV: by_env}) == ["from-env"]
    assert _waves(["--state", by_state, "--store", by_option], {STORE_ENV: by_env}) == ["from-option"]
    assert choose_store(None, "state").via == "--state"


def test_every_store_command_takes_store(tmp_path: Path) -> None:
    """Each command that reads or writes the store finds it through --store (and through MIGRATOR_STORE) while its
    --state folder holds none: none says "no store"."""
    location = str(tmp_path / "elsewhere")
    _build(location, "w1")
    empty_state = str(tmp_path / "logs-only")
    commands = {**READ_ONLY, **_writers(tmp_path)}
    for name, args in commands.items():
        for extra, env in ((["--store", location], {}), ([], {STORE_ENV: location})):
            result = runner.invoke(app, [*args, "--state", empty_state, *extra], env={**ENV, **env})
            assert "no store" not in result.output and "no migrator store" not in result.output, (name, result.output)
        command = args[:2] if args[0] in ("audit", "entra") else args[:1]  # command groups: their subcommand
        assert "--store" in runner.invoke(app, [*command, "--help"], env=ENV).output, name
    assert not (Path(empty_state) / "migrator.db").exists()


@pytest.mark.parametrize(
    "args",
    [["status"], ["report", "--format", "json"], ["audit", "verify"], ["pause", "--wave", "w1"], ["resume"]],
    ids=lambda a: a[0],
)
def test_a_password_in_the_store_url_is_never_shown(tmp_path: Path, args: list[str]) -> None:
    """An unreachable PostgreSQL store, given with a password by option or environment: exit 2, the URL shown
    with the password masked, the password nowhere."""
    with closed_port() as port:
        url = f"postgresql://admin:s3cr3t-pw@127.0.0.1:{port}/migrator"
        for extra, env in ((["--store", url], {}), ([], {STORE_ENV: url})):
            result = runner.invoke(app, [*args, "--state", str(tmp_path), *extra], env={**ENV, **env})
            assert result.exit_code == ExitCode.INPUT, result.output
            assert "s3cr3t-pw" not in result.output and "admin:***@" in result.output, result.output
            assert result.exception is None or isinstance(result.exception, SystemExit)
    assert shown("postgresql://u:pw@h:notaport/x") == "postgresql://..."


def test_the_commands_work_on_a_postgresql_store(postgres_url: str, tmp_path: Path) -> None:
    """On a PostgreSQL store: commands that must find a store refuse an empty schema (nothing created), then
    status, pause, report and audit verify/anchor work on a store, with the log in --state."""
    state = str(tmp_path / "state")
    # The test server trusts any password: one in the URL reaches the server, and must be in no message.
    with_password = make_url(postgres_url).set(password="s3cr3t-pw").render_as_string(hide_password=False)
    for args in (["status"], ["pause", "--wave", "w1"], ["resume"], ["audit", "verify"]):
        result = runner.invoke(app, [*args, "--store", with_password, "--state", state], env=ENV)
        assert result.exit_code == ExitCode.INPUT and "no migrator store" in result.output, (args, result.output)
        assert "s3cr3t-pw" not in result.output and ":***@" in result.output, result.output
    with pytest.raises(Exception, match="no migrator store"):
        Store.open(postgres_url, read_only=True)  # the refusals created nothing
    _build(postgres_url, "w1")
    env = {**ENV, STORE_ENV: postgres_url}
    assert _waves(["--state", state], {STORE_ENV: postgres_url}) == ["w1"]
    result = runner.invoke(app, ["pause", "--wave", "w1", "--state", state], env=env)
    assert result.exit_code == ExitCode.OK, result.output
    result = runner.invoke(app, ["report", "--format", "json", "--state", state], env=env)
    assert result.exit_code == ExitCode.OK and json.loads(result.stdout)["waves"][0]["state"] == "paused"
    anchor = runner.invoke(app, ["audit", "anchor", "--state", state], env=env)
    assert anchor.exit_code == ExitCode.OK, anchor.output
    line = anchor.stdout.strip().splitlines()[-1]
    assert line.startswith("audit-head:")
    assert (Path(state) / "logs" / "migrator.jsonl").is_file()  # the anchor went to the log in --state
    verified = runner.invoke(app, ["audit", "verify", "--state", state, "--anchor", line], env=env)
    assert verified.exit_code == ExitCode.OK, verified.output


def test_run_plans_and_records_its_wave_in_a_postgresql_store(postgres_url: str, tmp_path: Path) -> None:
    """`migrator run --store URL` creates the store there, plans and records its wave (its device does not answer:
    nothing is reached), logs in --state, and ends with the audit head, which verifies; the URL's password (the
    test server takes any) is in no output and no log record."""
    inventory = tmp_path / "inventory.yaml"
    state = str(tmp_path / "state")
    with_password = make_url(postgres_url).set(password="s3cr3t-pw").render_as_string(hide_password=False)
    args = ["--store", with_password, "--state", state]
    with closed_port() as port:  # refused at once: nothing waits on a connect timeout
        inventory.write_text(f"devices:\n  - {{name: PC-1, address: 127.0.0.1, port: {port}}}\n")
        run = ["run", "-i", str(inventory), "--wave", "pg-wave", "--yes", "--no-wait", *args]
        result = runner.invoke(app, run, env=ENV)
    assert "audit head" in result.output, result.output
    assert not (Path(state) / "migrator.db").exists() and (Path(state) / "logs" / "migrator.jsonl").is_file()
    assert _waves(args) == ["pg-wave"]
    verified = runner.invoke(app, ["audit", "verify", *args], env=ENV)
    assert verified.exit_code == ExitCode.OK, verified.output
    logged = (Path(state) / "logs" / "migrator.jsonl").read_text(encoding="utf-8")
    assert "s3cr3t-pw" not in result.output + verified.output + logged
