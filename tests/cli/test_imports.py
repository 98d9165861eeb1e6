"""What each command imports: the lab only for `lab` and `demo`, the device clients only for commands that reach
devices. Structural, not timed: each command runs in a fresh interpreter and the test reads its sys.modules."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from migrator import cli
from migrator.store import Store

ROOT = Path(__file__).resolve().parents[2]
LAB = ("migrator.lab", "psrpcore", "h11")
DEVICE_CLIENTS = ("pypsrp", "winrm", "requests")

# Run the command line in this interpreter, then print the names in sys.modules as the last line of stderr.
CHILD = """
import json, sys
from migrator.cli import main
sys.argv = ["migrator", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
sys.stderr.write("\\n" + json.dumps(sorted(sys.modules)) + "\\n")
"""


def modules_of(*args: str) -> set[str]:
    """The modules loaded by `migrator ARGS` in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *args], capture_output=True, text=True, cwd=ROOT, timeout=120, check=False
    )
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def loaded(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in packages))


# One command of each module but the lab's (wave_commands: also run, resume, plan, approve; machine_commands: also
# rollback; report_commands: also report); probe and rollback reach devices, but load their clients only then.
@pytest.mark.parametrize("command", ["status", "audit verify", "diagram", "explain dsregcmd", "pause", "probe"])
def test_a_command_loads_neither_the_lab_nor_the_device_clients(command: str) -> None:
    """`--help` loads no lab module, no psrpcore/h11 and no pypsrp/pywinrm: the adapters load when a device is
    reached."""
    assert loaded(modules_of(*command.split(), "--help"), LAB + DEVICE_CLIENTS) == []


def test_status_and_audit_verify_on_a_store_load_no_lab(tmp_path: Path) -> None:
    """Running `status --json` and `audit verify` on a real store loads no lab module and no device client."""
    Store.open(tmp_path).close()
    for args in (["status", "--state", str(tmp_path), "--json"], ["audit", "verify", "--state", str(tmp_path)]):
        assert loaded(modules_of(*args), LAB + DEVICE_CLIENTS) == [], args


def test_the_lab_commands_load_the_lab() -> None:
    """`lab` does load the lab: the checks above would see it."""
    assert loaded(modules_of("lab", "--help"), LAB) != []


def test_the_command_table_names_every_command_of_every_module_once() -> None:
    """Each module's Typer app defines exactly the top-level commands the root's table assigns to it."""
    defined: dict[str, str] = {}
    for module_name in sorted(set(cli.COMMANDS.values())):
        module = importlib.import_module(f"migrator.cli.{module_name}")
        for name in typer.main.get_group(module.commands).commands:
            assert name not in defined, f"{name} defined by {defined[name]} and {module_name}"
            defined[name] = module_name
    assert defined == dict(cli.COMMANDS)


def test_status_reads_the_machines_table_without_loading_its_runner() -> None:
    """Reports read the state categories from the machine's table; that must not load the runner, the steps
    and the transports behind them (migrator.machine re-exports nothing for this reason)."""
    modules = modules_of("status", "--help")
    assert "migrator.machine.table" in modules
    assert loaded(modules, ("migrator.machine.core", "migrator.steps", "migrator.remote.psrp")) == []
