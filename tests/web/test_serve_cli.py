"""`migrator serve` as a command: what it refuses before listening (exit 2, naming the option), and a real
server in a child process that prints its URL, answers, logs each request as JSON (never the token) and stops
with Ctrl-C (exit 0)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from migrator.cli import app
from migrator.errors import ExitCode
from migrator.store import Store
from tests.web.conftest import TOKEN, fetch, token_file

runner = CliRunner()
pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    folder = tmp_path / "state"
    Store.open(folder).close()
    return folder


def _serve(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["serve", *args])
    return result.exit_code, result.output


def test_beyond_loopback_it_needs_tls_and_a_token(state: Path) -> None:
    """--host 0.0.0.0 without TLS and a token is refused before anything listens, naming both."""
    code, output = _serve("--state", str(state), "--host", "0.0.0.0", "--port", "0")
    assert code == ExitCode.INPUT
    assert "--tls-cert and --tls-key" in output and "--operator-token-file" in output


def test_token_files_that_will_not_do(state: Path, tmp_path: Path) -> None:
    """A missing, short, or world-readable token file is refused with the file named."""
    code, output = _serve("--state", str(state), "--operator-token-file", str(tmp_path / "absent"))
    assert code == ExitCode.INPUT and "cannot read it" in output
    short = token_file(tmp_path, "short")
    code, output = _serve("--state", str(state), "--operator-token-file", str(short))
    assert code == ExitCode.INPUT and "at least 16 characters" in output
    loose = token_file(tmp_path)
    loose.chmod(0o644)
    code, output = _serve("--state", str(state), "--operator-token-file", str(loose))
    assert code == ExitCode.INPUT and "chmod 600" in output


def test_tls_options_go_together_and_no_store_is_no_dashboard(state: Path, tmp_path: Path) -> None:
    code, output = _serve("--state", str(state), "--tls-cert", str(tmp_path / "c.pem"))
    assert code == ExitCode.INPUT and "go together" in output
    code, output = _serve("--state", str(tmp_path / "nowhere"), "--port", "0")
    assert code == ExitCode.INPUT and "no store" in output


def test_a_file_that_is_not_a_store_is_refused_and_left_alone(tmp_path: Path) -> None:
    """serve opens the store as `status` does (read-only, never creating one): not a store, exit 2, untouched."""
    state = tmp_path / "state"
    state.mkdir()
    (state / "migrator.db").write_bytes(b"not a database")
    code, output = _serve("--state", str(state), "--port", "0")
    assert code == ExitCode.INPUT and "not an SQLite database" in output
    assert (state / "migrator.db").read_bytes() == b"not a database"
    assert sorted(p.name for p in state.iterdir()) == ["migrator.db"]


def test_serve_prints_its_url_logs_requests_and_stops_on_ctrl_c(state: Path, tmp_path: Path) -> None:
    """The child prints the URL it listens on (port 0: a free one); the page answers; the JSON log holds the
    start and the request, never the token; SIGINT stops it with exit 0."""
    token = token_file(tmp_path)
    command = [sys.executable, "-m", "migrator", "serve", "--state", str(state), "--port", "0"]
    child = subprocess.Popen(
        [*command, "--operator-token-file", str(token)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        found = re.match(r"dashboard: (http://127\.0\.0\.1:\d+/)", line)
        assert found, line
        status, body, _ = fetch(found.group(1))
        assert status == 200 and "No wave yet" in body
    finally:
        child.send_signal(signal.SIGINT)
        output = child.communicate(timeout=20)[0]
    assert child.returncode == ExitCode.OK, output
    log = (state / "logs" / "migrator.jsonl").read_text(encoding="utf-8")
    records = [json.loads(line) for line in log.splitlines()]
    assert any(r["event"] == "dashboard started" and r["actions"] is True for r in records)
    assert any(r["event"] == "request" and r["path"] == "/" and r["status"] == 200 for r in records)
    assert TOKEN not in log
