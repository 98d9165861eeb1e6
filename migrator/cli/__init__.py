"""The ``migrator`` command line (Typer + Rich). Thin: parse arguments, call services, render.

Theory of operation
-------------------
Each command module of this package defines its commands on a Typer app of its own, ``commands``, and imports
what its commands use at its top. :data:`COMMANDS` names every top-level command once, with the module that
defines it, in the order ``migrator --help`` lists them. The root group looks its commands up in a
:class:`LazyCommands` table, which imports a command's module the first time Click asks for that command: to run
it, to show its help, or to list it in ``migrator --help``. So a command pays only for its own module:
``migrator status`` reads the store and renders, and never loads the lab, the engine or the device clients
(``python bench/startup.py`` prints what each command loads).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

import typer
from typer.core import TyperGroup

# Top-level command -> the module of migrator.cli that defines it (in `migrator --help` order).
COMMANDS: Mapping[str, str] = {
    "run": "wave_commands",
    "resume": "wave_commands",
    "pause": "wave_commands",
    "approve": "wave_commands",
    "worker": "wave_commands",
    "plan": "wave_commands",
    "demo": "demo",
    "diagram": "machine_commands",
    "rollback": "machine_commands",
    "probe": "probe",
    "inventory": "inventory_commands",
    "status": "report_commands",
    "report": "report_commands",
    "lab": "lab_commands",
    "explain": "explain",
    "audit": "audit_commands",
    "serve": "serve_commands",
    "entra": "entra_commands",
}


class LazyCommands(MutableMapping[str, Any]):
    """A group's Click commands by name, each built from its module's Typer app when it is first looked up."""

    def __init__(self, modules: Mapping[str, str]) -> None:
        # name -> the module that defines the command, replaced by the command once it is built
        self._entries: dict[str, Any] = dict(modules)

    def __getitem__(self, name: str) -> Any:
        entry = self._entries[name]
        if isinstance(entry, str):
            module = importlib.import_module(f"{__name__}.{entry}")
            entry = self._entries[name] = typer.main.get_group(module.commands).commands[name]
        return entry

    def __setitem__(self, name: str, command: Any) -> None:
        self._entries[name] = command

    def __delitem__(self, name: str) -> None:
        del self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


class _Root(TyperGroup):
    """The ``migrator`` group: its commands are :data:`COMMANDS`, looked up lazily."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = LazyCommands(COMMANDS)


app = typer.Typer(
    name="migrator",
    cls=_Root,
    help="Move Windows Hello for Business devices from key or certificate trust to cloud Kerberos trust.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold credentials: never print them
)


@app.callback()
def _root() -> None:
    # Typer makes a group only of an app with a callback or commands of its own; the root's are in COMMANDS.
    pass


def main() -> None:
    app()
