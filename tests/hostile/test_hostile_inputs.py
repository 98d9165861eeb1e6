"""Hostile inputs: every bad inventory, playbook, fault profile or fleet file is refused fast and clearly.

Each case of :data:`CASES` is one file given to the command that reads it (``migrator run`` for inventories and
playbooks, ``migrator lab up`` for fault profiles and fleet files) and must end with exit 2, a message naming the
file and the line (and the field or the limit), no traceback, and the store (and the file) byte-identical.
Cases marked ``isolated`` (sizes, bombs, nesting, and everything ``lab up`` reads, which would start a lab if
accepted) run in a forked child under RLIMIT_AS 512 MB with a timeout as a hang guard; the others run in-process
through Typer's CliRunner. Print the table with ``python -m tests.hostile.test_hostile_inputs``.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from typer.testing import CliRunner

from migrator.cli import app
from migrator.lab.fleet import generate_fleet, parse_mix
from migrator.lab.fleetfile import dumps_fleet
from migrator.store import Store
from tests.forkserver import forkserver_context
from tests.hostile.child import run_cli

ENV = {"MIGRATOR_USERNAME": "LAB\\migrator-admin", "MIGRATOR_PASSWORD": "not-used-here"}
MEMORY_LIMIT = 512 * 1024 * 1024
HANG_GUARD = 60.0  # seconds; a hang guard, not a speed assertion (bench/inputs.py prints the times)
MiB = 1024 * 1024
MARKUP = "[red]evil[/red]"

INVENTORY = "devices:\n  - {name: PC-1, address: 127.0.0.1, groups: [pilot]}\n"
PLAYBOOK = "name: p\npath: key\nsteps: [preflight, snapshot_policy, enable_cloud_trust, confirm_policy, verify_cloud]\n"
FAULTS = "seed: 1\nfaults:\n  - kind: latency\n    delay: 0.01\n"
CSV_HEAD = "name,address,groups\n"

Content = bytes | Callable[[Path], None]

# target -> (file name, where-pattern: how its messages name file and line)
TARGETS = {
    "inventory": ("inventory.yaml", r"inventory\.yaml, line \d+"),
    "csv": ("inventory.csv", r"inventory\.csv, line \d+"),
    "playbook": ("playbook.yaml", r"playbook\.yaml, line \d+"),
    "faults": ("faults.yaml", r"faults\.yaml:\d+"),
    "fleet": ("fleet.yaml", r"fleet\.yaml:\d+"),
    "fleet_json": ("fleet.json", r"fleet\.json"),
}
LAB_TARGETS = ("faults", "fleet", "fleet_json")


@dataclass(frozen=True)
class Case:
    kind: str
    target: str
    name: str
    content: Content
    expect: tuple[str, ...] = ()  # regexes the output must match (besides the file and line)
    literal: str | None = None  # a user value that must appear verbatim (not read as Rich markup)
    isolated: bool = False
    where: bool = True  # the message names a line (False for whole-file refusals: size, encoding)

    @property
    def id(self) -> str:
        return f"{self.kind.replace(' ', '_')}-{self.target}-{self.name}"


@cache
def fleet_yaml() -> str:
    return dumps_fleet(generate_fleet(1, 1, parse_mix("key=100")), "yaml").decode()


def _text(value: str) -> bytes:
    return value.encode("utf-8")


def _sparse(size: int) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        with path.open("wb") as handle:
            handle.truncate(size)

    return make


def _big_string(prefix: str, size: int, suffix: str = "\n") -> Callable[[Path], None]:
    def make(path: Path) -> None:
        with path.open("w", encoding="utf-8") as handle:
            handle.write(prefix)
            chunk = "a" * MiB
            for _ in range(size // MiB):
                handle.write(chunk)
            handle.write(suffix)

    return make


def _fleet(edit: Callable[[str], str]) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        path.write_text(edit(fleet_yaml()), encoding="utf-8")

    return make


def _fleet_bytes(edit: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        path.write_bytes(edit(fleet_yaml().encode("utf-8")))

    return make


def _deep(open_: str, close: str, depth: int = 400) -> str:
    return open_ * depth + close * depth


def _bomb(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        refs = ",".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + "\n"


def _many_aliases(count: int = 150) -> str:
    return "x: &x 1\nl: [" + ", ".join(["*x"] * count) + "]\n"


def _block_deep(depth: int = 40) -> str:
    return "".join(f"{'  ' * i}k{i}:\n" for i in range(depth)) + f"{'  ' * depth}v\n"


def _cases() -> list[Case]:
    cases: list[Case] = []
    add = cases.append
    yaml_targets = ("inventory", "playbook", "faults", "fleet")

    # ---- deep nesting: refused at depth 32, before any recursion ---------------------------------------------
    for target in yaml_targets:
        for name, text in (
            ("brackets-400", _deep("[", "]")),
            ("braces-400", _deep("{a: ", "}")),
            ("block-40", _block_deep()),
            ("brackets-1M", _deep("[", "]", 1_000_000)),
        ):
            body = f"devices: {text}" if target == "inventory" and name.startswith("braces") else text
            # libyaml itself stops flow nesting at 1,000 levels, before our limit is asked
            deep = r"nested more than 32 levels|exceeded maximum nesting depth"
            add(Case("deep nesting", target, name, _text(body), (deep,), isolated=True))
    add(Case("deep nesting", "fleet_json", "brackets-400", _text(_deep("[", "]")), (r"fleet\.json",), isolated=True))
    add(
        Case(
            "deep nesting",
            "fleet_json",
            "brackets-100k",
            _text(_deep("[", "]", 100_000)),
            ("nested too deeply",),
            isolated=True,
        )
    )

    # ---- alias bombs and alias abuse -------------------------------------------------------------------------
    for target in yaml_targets:
        add(Case("alias bomb", target, "laughs-9", _text(_bomb()), (r"aliases expand to more than",), isolated=True))
        add(
            Case(
                "alias bomb", target, "aliases-150", _text(_many_aliases()), (r"more than 100 aliases",), isolated=True
            )
        )
        add(
            Case(
                "alias bomb", target, "self-alias", _text("a: &a [1, *a]\n"), (r"refers to a node that",), isolated=True
            )
        )
        add(Case("alias bomb", target, "undefined", _text("a: *nope\n"), (r"nope",), isolated=True))
    add(
        Case(
            "alias bomb",
            "inventory",
            "deep-through-alias",
            _text("a: &a " + _deep("[", "]", 20) + "\nb: " + _deep("[", "]", 15)[:15] + "*a" + "]" * 15 + "\n"),
            (r"nested more than 32 levels deep \(through an alias\)",),
            isolated=True,
        )
    )

    # ---- huge files: refused at once from stat (sparse files: nothing is read) ------------------------------
    for target, size in (
        ("inventory", 11 * MiB),
        ("csv", 11 * MiB),
        ("playbook", 11 * MiB),
        ("faults", 11 * MiB),
        ("fleet", 129 * MiB),
        ("fleet_json", 129 * MiB),
    ):
        add(
            Case(
                "huge file",
                target,
                f"sparse-{size // MiB}MiB",
                _sparse(size),
                (r"over the \d+\.\d MiB limit",),
                None,
                True,
                False,
            )
        )
    add(
        Case(
            "huge file",
            "inventory",
            "sparse-10GiB",
            _sparse(10 * 1024 * MiB),
            (r"over the 10\.0 MiB limit",),
            None,
            True,
            False,
        )
    )

    # ---- 50 MB single string (over the limit) and 9 MiB strings (within it) --------------------------------------
    add(
        Case(
            "50 MB string",
            "inventory",
            "name-50MB",
            _big_string("devices:\n  - name: ", 50 * MiB),
            ("limit",),
            None,
            True,
            False,
        )
    )
    add(
        Case(
            "50 MB string",
            "playbook",
            "description-50MB",
            _big_string("name: p\ndescription: ", 50 * MiB),
            ("limit",),
            None,
            True,
            False,
        )
    )
    add(
        Case(
            "50 MB string",
            "faults",
            "message-50MB",
            _big_string("faults:\n  - kind: busy\n    message: ", 50 * MiB),
            ("limit",),
            None,
            True,
            False,
        )
    )
    add(
        Case(
            "50 MB string",
            "csv",
            "field-50MB",
            _big_string(CSV_HEAD + "PC-1,", 50 * MiB),
            ("limit",),
            None,
            True,
            False,
        )
    )
    add(
        Case(
            "50 MB string",
            "fleet",
            "seed-50MB",
            _big_string("schema_version: 1\nseed: ", 50 * MiB),
            (r"seed",),
            isolated=True,
        )
    )
    add(
        Case(
            "9 MiB string",
            "inventory",
            "name-9MiB",
            _big_string("devices:\n  - address: 127.0.0.1\n    name: ", 9 * MiB),
            (r"devices\[0\]\.name: not a valid computer name",),
            isolated=True,
        )
    )
    add(
        Case(
            "9 MiB string",
            "inventory",
            "address-9MiB",
            _big_string("devices:\n  - name: PC-1\n    address: ", 9 * MiB),
            (r"devices\[0\]\.address: .*characters\)' is neither",),
            isolated=True,
        )
    )
    add(
        Case(
            "9 MiB string",
            "playbook",
            "name-9MiB",
            _big_string("path: key\nsteps: [preflight]\nname: ", 9 * MiB),
            (r"name: String should",),
            isolated=True,
        )
    )
    add(
        Case(
            "9 MiB string",
            "faults",
            "kind-9MiB",
            _big_string("faults:\n  - kind: ", 9 * MiB),
            (r"faults\.0\.kind",),
            isolated=True,
        )
    )
    add(
        Case(
            "9 MiB string",
            "csv",
            "field-9MiB",
            _big_string(CSV_HEAD + "PC-1,127.0.0.1,", 9 * MiB),
            (r"line 2: a field is over the 65,536 character limit",),
            isolated=True,
        )
    )
    add(
        Case(
            "9 MiB string",
            "inventory",
            "key-9MiB",
            _big_string("devices: []\n", 9 * MiB, ": 1\n"),
            (r"invalid YAML",),
            isolated=True,
        )
    )

    # ---- wide inputs within the size limit: millions of values, or of errors -----------------------------------
    wide = (10 * MiB - 64) // 2
    add(
        Case(
            "wide",
            "inventory",
            "5M-values",
            _text("devices: [" + "1," * wide + "1]\n"),
            (r"more than 1,000,000 values",),
            isolated=True,
        )
    )
    add(
        Case(
            "wide",
            "playbook",
            "5M-steps",
            _text("name: p\npath: key\nsteps: [" + "1," * wide + "1]\n"),
            (r"more than 1,000,000 values",),
            isolated=True,
        )
    )
    add(
        Case(
            "wide",
            "inventory",
            "150k-bad-devices",
            _text("devices: [" + "{a: 1}, " * 150_000 + "]\n"),
            (r"devices\[0\]\.name: field required", r"[\d,]+ problems in all"),
            isolated=True,
        )
    )
    add(
        Case(
            "wide",
            "inventory",
            "100k-bad-addresses",
            _text("devices:\n" + "".join(f"  - {{name: PC-{i}, address: bad..{i}}}\n" for i in range(100_000))),
            (r"line 2, column 18: devices\[0\]\.address", r"100,000 problems in all"),
            isolated=True,
        )
    )
    add(
        Case(
            "wide",
            "csv",
            "300k-rows",
            _text(CSV_HEAD + "a,b,\n" * 300_000),
            (r"more than 200,000 rows",),
            isolated=True,
        )
    )
    add(
        Case(
            "wide",
            "faults",
            "200k-bad-rules",
            _text("faults: [" + "{kind: x}, " * 200_000 + "]\n"),
            (r"faults\.0\.kind", r"200,000 problems in all"),
            isolated=True,
        )
    )

    # ---- duplicate keys and duplicate device names (both lines) ----------------------------------------------
    dup = r"duplicate key '(\w+)' \(first at line \d+\)"
    add(Case("duplicate", "inventory", "key-devices", _text(INVENTORY + INVENTORY), (dup,)))
    add(
        Case(
            "duplicate",
            "inventory",
            "key-in-device",
            _text("devices:\n  - name: PC-1\n    address: 127.0.0.1\n    name: PC-2\n"),
            (dup,),
        )
    )
    add(
        Case(
            "duplicate", "inventory", "key-defaults", _text("defaults: {port: 5986, port: 5985}\n" + INVENTORY), (dup,)
        )
    )
    add(
        Case(
            "duplicate",
            "inventory",
            "device-name",
            _text(INVENTORY + "  - {name: PC-1, address: 127.0.0.2}\n"),
            (r"line 3, column \d+: devices\[1\]\.name: duplicate device name 'PC-1' \(first at line 2",),
        )
    )
    add(
        Case(
            "duplicate",
            "inventory",
            "device-name-case",
            _text(INVENTORY + "  - {name: pc-1, address: 127.0.0.2}\n"),
            (r"duplicate device name 'pc-1'",),
        )
    )
    add(
        Case(
            "duplicate",
            "inventory",
            "device-name-far",
            _text(
                INVENTORY
                + "".join(f"  - {{name: PC-{i}, address: 127.0.0.{i}}}\n" for i in range(2, 50))
                + "  - {name: PC-7, address: 127.0.1.1}\n"
            ),
            (r"line 51, .*duplicate device name 'PC-7' \(first at line 8",),
        )
    )
    add(
        Case(
            "duplicate",
            "csv",
            "device-name",
            _text(CSV_HEAD + "PC-1,127.0.0.1,\nPC-1,127.0.0.2,\n"),
            (r"line 3: name: duplicate device name 'PC-1' \(first at line 2",),
        )
    )
    add(
        Case(
            "duplicate",
            "csv",
            "column",
            _text("name,address,name\nPC-1,127.0.0.1,PC-2\n"),
            (r"column 'name' given twice",),
        )
    )
    add(Case("duplicate", "playbook", "key-name", _text(PLAYBOOK + "name: q\n"), (dup,)))
    add(
        Case(
            "duplicate",
            "playbook",
            "key-waits",
            _text(PLAYBOOK + "waits:\n  recheck_every: 1h\n  recheck_every: 2h\n"),
            (dup,),
        )
    )
    add(Case("duplicate", "faults", "key-seed", _text(FAULTS + "seed: 2\n"), (dup,), isolated=True))
    add(
        Case(
            "duplicate",
            "faults",
            "key-in-rule",
            _text("faults:\n  - kind: drop\n    kind: busy\n"),
            (dup,),
            isolated=True,
        )
    )
    add(Case("duplicate", "fleet", "key-schema", _fleet(lambda t: t + "schema_version: 1\n"), (dup,), isolated=True))
    add(
        Case(
            "duplicate",
            "fleet_json",
            "key-seed",
            b'{"schema_version": 1,\n "seed": 1,\n "seed": 2}\n',
            (r"fleet\.json:3: invalid JSON: duplicate key 'seed' \(first at line 2\)",),
            isolated=True,
        )
    )
    add(
        Case(
            "duplicate",
            "fleet",
            "key-seed",
            _fleet(lambda t: t.replace("seed: 1\n", "seed: 1\nseed: 2\n", 1)),
            (dup,),
            isolated=True,
        )
    )

    # ---- Rich markup in every field: refused, the value shown literally where the message quotes it ------------
    def inv(device: str, extra: str = "") -> bytes:
        return _text(extra + "devices:\n  - " + device + "\n")

    m = MARKUP
    q = f"'{m}'"
    add(Case("markup", "inventory", "name", inv(f"{{name: {q}, address: 127.0.0.1}}"), (r"devices\[0\]\.name",)))
    add(Case("markup", "inventory", "address", inv(f"{{name: PC-1, address: {q}}}"), (r"devices\[0\]\.address",), m))
    add(
        Case(
            "markup",
            "inventory",
            "group",
            inv(f"{{name: PC-1, address: 127.0.0.1, groups: [{q}]}}"),
            (r"devices\[0\]\.groups",),
            m,
        )
    )
    add(
        Case(
            "markup",
            "inventory",
            "groups-text",
            inv(f"{{name: PC-1, address: 127.0.0.1, groups: {q}}}"),
            (r"devices\[0\]\.groups",),
            m,
        )
    )
    add(
        Case(
            "markup",
            "inventory",
            "transport",
            inv(f"{{name: PC-1, address: 127.0.0.1, transport: {q}}}"),
            (r"devices\[0\]\.transport: Input should be 'psrp' or 'winrm'",),
        )
    )
    add(
        Case(
            "markup",
            "inventory",
            "scheme",
            inv(f"{{name: PC-1, address: 127.0.0.1, scheme: {q}}}"),
            (r"devices\[0\]\.scheme",),
        )
    )
    add(
        Case(
            "markup",
            "inventory",
            "auth",
            inv(f"{{name: PC-1, address: 127.0.0.1, auth: {q}}}"),
            (r"devices\[0\]\.auth",),
        )
    )
    add(
        Case(
            "markup",
            "inventory",
            "port",
            inv(f"{{name: PC-1, address: 127.0.0.1, port: {q}}}"),
            (r"devices\[0\]\.port",),
        )
    )
    add(
        Case(
            "markup",
            "inventory",
            "cert_validation",
            inv(f"{{name: PC-1, address: 127.0.0.1, cert_validation: {q}}}"),
            (r"devices\[0\]\.cert_validation",),
        )
    )
    add(
        Case(
            "markup",
            "inventory",
            "connect_timeout",
            inv(f"{{name: PC-1, address: 127.0.0.1, connect_timeout: {q}}}"),
            (r"devices\[0\]\.connect_timeout",),
        )
    )
    add(
        Case(
            "markup",
            "inventory",
            "unknown-key",
            inv(f"{{name: PC-1, address: 127.0.0.1, {q}: 1}}"),
            (r"unknown field",),
            m,
        )
    )
    add(Case("markup", "inventory", "top-key", _text(INVENTORY + f"{q}: 1\n"), (r"unknown field",), m))
    add(
        Case(
            "markup",
            "inventory",
            "defaults-transport",
            inv("{name: PC-1, address: 127.0.0.1}", f"defaults: {{transport: {q}}}\n"),
            (r"defaults\.transport",),
        )
    )
    add(
        Case(
            "markup",
            "inventory",
            "lab-control",
            inv("{name: PC-1, address: 127.0.0.1}", f"lab: {{control: {q}}}\n"),
            (r"lab\.control: the lab control endpoint",),
        )
    )
    add(
        Case(
            "markup",
            "inventory",
            "groups-map",
            inv("{name: PC-1, address: 127.0.0.1}", f"groups: {{pilot: {q}}}\n"),
            (r"groups\.pilot",),
        )
    )
    add(Case("markup", "inventory", "anchor-name", _text(f"a: &{m[1:4]} 1\nb: *{m}\n"), ("alias",)))
    add(Case("markup", "inventory", "yaml-error-value", _text(f"devices: [{q}\n"), ("invalid YAML",)))
    add(Case("markup", "inventory", "tag", _text(f"devices: !{m[1:4]} [1]\n"), (r"unsupported tag",)))
    add(Case("markup", "csv", "address", _text(CSV_HEAD + f"PC-1,{m},\n"), (r"line 2: address",), m))
    add(Case("markup", "csv", "group", _text(CSV_HEAD + f"PC-1,127.0.0.1,{m}\n"), (r"line 2: groups",), m))
    add(Case("markup", "csv", "name", _text(CSV_HEAD + f"{m},127.0.0.1,\n"), (r"line 2: name",)))
    add(Case("markup", "csv", "header", _text(f"name,address,{m}\nPC-1,127.0.0.1,x\n"), (r"unknown column",), m))
    add(
        Case(
            "markup",
            "playbook",
            "name-pattern",
            _text(PLAYBOOK.replace("name: p", f"name: {q}")),
            (r"name: String should match pattern '\^\[a-z0-9\]\[a-z0-9-\]\{0,62\}\$'",),
        )
    )
    add(
        Case(
            "markup",
            "playbook",
            "path",
            _text(PLAYBOOK.replace("path: key", f"path: {q}")),
            (r"path: Input should be",),
        )
    )
    add(Case("markup", "playbook", "step", _text(PLAYBOOK.replace("verify_cloud", q)), (r"unknown step",), m))
    add(Case("markup", "playbook", "users", _text(PLAYBOOK + f"users: {q}\n"), (r"users",)))
    add(Case("markup", "playbook", "channel", _text(PLAYBOOK + f"policy: {{channel: {q}}}\n"), (r"policy\.channel",)))
    add(
        Case(
            "markup",
            "playbook",
            "recheck",
            _text(PLAYBOOK + f"waits: {{recheck_every: {q}}}\n"),
            (r"waits\.recheck_every",),
            m,
        )
    )
    add(
        Case(
            "markup",
            "playbook",
            "prompt-seconds",
            _text(PLAYBOOK + f"prompt: {{seconds: {q}}}\n"),
            (r"prompt\.seconds",),
        )
    )
    add(
        Case(
            "markup",
            "playbook",
            "tenant",
            _text(PLAYBOOK + f"tenant_id: {q}\n"),
            (r"tenant_id: String should match pattern '\^\[0-9a-fA-F-\]\{36\}\$'",),
        )
    )
    add(Case("markup", "playbook", "unknown-key", _text(PLAYBOOK + f"{q}: 1\n"), (r"unknown field",), m))
    add(
        Case(
            "markup", "playbook", "retries", _text(PLAYBOOK + f"retries: {{attempts: {q}}}\n"), (r"retries\.attempts",)
        )
    )
    add(Case("markup", "faults", "kind", _text(f"faults:\n  - kind: {q}\n"), (r"faults\.0\.kind",), isolated=True))
    add(
        Case(
            "markup",
            "faults",
            "probability",
            _text(f"faults:\n  - kind: drop\n    probability: {q}\n"),
            (r"faults\.0\.probability",),
            isolated=True,
        )
    )
    add(
        Case(
            "markup",
            "faults",
            "unknown-key",
            _text(f"faults:\n  - kind: drop\n    {q}: 1\n"),
            (r"faults\.0\.",),
            m,
            True,
        )
    )
    add(Case("markup", "faults", "seed", _text(f"seed: {q}\n"), (r"seed",), isolated=True))
    add(
        Case(
            "markup",
            "fleet",
            "schema",
            _fleet(lambda t: t.replace("schema_version: 1", f"schema_version: {q}", 1)),
            (r"schema_version",),
            m,
            True,
        )
    )
    add(
        Case(
            "markup",
            "fleet",
            "device-name",
            _fleet(lambda t: t.replace("address: 127.20.0.1", "address: 127.20.0.1\n  colour: " + q, 1)),
            (r"devices\[0\]\.colour: unknown field",),
            isolated=True,
        )
    )

    # ---- bad types ---------------------------------------------------------------------------------------------
    for name, text, expect in (
        ("devices-text", "devices: PC-1\n", r"devices: Input should be a valid list"),
        ("devices-map", "devices: {PC-1: 1}\n", r"devices: Input should be a valid list"),
        ("device-list", "devices:\n  - [PC-1, 127.0.0.1]\n", r"devices\[0\]"),
        ("port-text", "devices:\n  - {name: PC-1, address: 127.0.0.1, port: https}\n", r"devices\[0\]\.port"),
        ("port-float", "devices:\n  - {name: PC-1, address: 127.0.0.1, port: 5986.5}\n", r"devices\[0\]\.port"),
        ("port-bool", "devices:\n  - {name: PC-1, address: 127.0.0.1, port: yes}\n", r"devices\[0\]\.port"),
        (
            "port-huge",
            "devices:\n  - {name: PC-1, address: 127.0.0.1, port: 99999999999999999999999}\n",
            r"devices\[0\]\.port",
        ),
        ("name-int", "devices:\n  - {name: 12, address: 127.0.0.1}\n", r"devices\[0\]\.name"),
        ("name-null", "devices:\n  - {name: ~, address: 127.0.0.1}\n", r"devices\[0\]\.name"),
        ("address-date", "devices:\n  - {name: PC-1, address: 2024-01-01}\n", r"devices\[0\]\.address"),
        ("groups-int", "devices:\n  - {name: PC-1, address: 127.0.0.1, groups: 5}\n", r"devices\[0\]\.groups"),
        (
            "timeout-negative",
            "devices:\n  - {name: PC-1, address: 127.0.0.1, connect_timeout: -1}\n",
            r"connect_timeout",
        ),
        ("timeout-inf", "devices:\n  - {name: PC-1, address: 127.0.0.1, read_timeout: .inf}\n", r"read_timeout"),
        ("top-list", "- devices\n", r"an inventory is a mapping"),
        ("top-scalar", "just text\n", r"an inventory is a mapping"),
        ("empty", "", r"an inventory is a mapping"),
        ("missing-devices", "defaults: {}\n", r"devices: field required"),
        ("missing-address", "devices:\n  - {name: PC-1}\n", r"devices\[0\]\.address: field required"),
        ("int-key", "devices: []\n1: 2\n", r"unknown field"),
    ):
        add(Case("bad type", "inventory", name, _text(text), (expect,)))
    for name, text, expect in (
        ("steps-text", "name: p\npath: key\nsteps: preflight\n", r"steps: Input should be a valid list"),
        ("waits-list", PLAYBOOK + "waits: [1]\n", r"waits"),
        (
            "recheck-zero",
            PLAYBOOK + "waits: {recheck_every: 0}\n",
            r"waits\.recheck_every: Input should be greater than 0",
        ),
        (
            "deadline-year",
            PLAYBOOK + "waits: {user_deadline: 400d}\n",
            r"waits\.user_deadline: Input should be less than",
        ),
        ("deadline-negative", PLAYBOOK + "waits: {dc_deadline: -5}\n", r"waits\.dc_deadline"),
        ("reminders-huge", PLAYBOOK + "prompt: {reminders: 1000000000}\n", r"prompt\.reminders"),
        ("attempts-negative", PLAYBOOK + "retries: {attempts: -1}\n", r"retries\.attempts"),
        ("reset-text", PLAYBOOK + "reset_key_trust_containers: maybe\n", r"reset_key_trust_containers"),
        ("top-list", "- name\n", r"a playbook is a mapping"),
        ("empty", "", r"a playbook is a mapping"),
    ):
        add(Case("bad type", "playbook", name, _text(text), (expect,)))
    for name, text, expect in (
        ("seed-text", "seed: many\n", r"seed"),
        ("faults-map", "faults: {kind: drop}\n", r"faults"),
        ("probability-2", "faults:\n  - kind: drop\n    probability: 2\n", r"faults\.0\.probability"),
        ("count-zero", "faults:\n  - kind: drop\n    count: 0\n", r"faults\.0\.count"),
        ("top-list", "- kind: drop\n", r"faults\.yaml:1"),
    ):
        add(Case("bad type", "faults", name, _text(text), (expect,), isolated=True))
    for name, edit, expect in (
        (
            "schema-text",
            lambda t: t.replace("schema_version: 1", "schema_version: one", 1),
            r"schema_version must be an integer",
        ),
        ("schema-future", lambda t: t.replace("schema_version: 1", "schema_version: 99", 1), r"newer migrator"),
        ("devices-text", lambda t: t.replace("devices:\n", "devices: none\nx_devices:\n", 1), r"devices"),
        ("top-list", lambda t: "- 1\n", r"expected a mapping at the top"),
    ):
        add(Case("bad type", "fleet", name, _fleet(edit), (expect,), isolated=True))

    # ---- bad enums ---------------------------------------------------------------------------------------------
    for field, value in (("transport", "ssh"), ("scheme", "ftp"), ("auth", "digest")):
        add(
            Case(
                "bad enum",
                "inventory",
                field,
                inv(f"{{name: PC-1, address: 127.0.0.1, {field}: {value}}}"),
                (rf"devices\[0\]\.{field}: Input should be",),
            )
        )
        add(
            Case(
                "bad enum",
                "csv",
                field,
                _text(f"name,address,{field}\nPC-1,127.0.0.1,{value}\n"),
                (rf"line 2: {field}: Input should be",),
            )
        )
    add(
        Case(
            "bad enum",
            "playbook",
            "path",
            _text(PLAYBOOK.replace("path: key", "path: sideways")),
            (r"line 2, column 1: path: Input should be",),
        )
    )
    add(Case("bad enum", "playbook", "users", _text(PLAYBOOK + "users: everyone\n"), (r"users: Input should be",)))
    add(
        Case(
            "bad enum",
            "playbook",
            "channel",
            _text(PLAYBOOK + "policy: {channel: pigeon}\n"),
            (r"policy\.channel: Input should be",),
        )
    )
    add(
        Case(
            "bad enum",
            "playbook",
            "step",
            _text(PLAYBOOK.replace("verify_cloud", "reboot_everything")),
            (r"unknown step 'reboot_everything'",),
        )
    )
    add(Case("bad enum", "faults", "kind", _text("faults:\n  - kind: meteor\n"), (r"faults\.0\.kind",), isolated=True))
    add(
        Case(
            "bad enum",
            "fleet",
            "join",
            _fleet(lambda t: t.replace("join_type: hybrid", "join_type: glued", 1)),
            (r"devices\[0\]\.join_type",),
            isolated=True,
        )
    )

    # ---- invalid UTF-8, byte order marks, NUL bytes and control characters ---------------------------------------
    bad_bytes = (("ff", b"\xff"), ("overlong", b"\xc0\xaf"), ("surrogate", b"\xed\xa0\x80"), ("truncated", b"\xe2\x82"))
    for label, raw in bad_bytes:
        add(
            Case(
                "invalid UTF-8",
                "inventory",
                label,
                INVENTORY.encode().replace(b"PC-1", b"PC-" + raw),
                (r"line 2, column 15: not UTF-8",),
            )
        )
    add(
        Case(
            "invalid UTF-8",
            "csv",
            "ff",
            CSV_HEAD.encode() + b"PC-1,127.0.0.1,\xff\n",
            (r"line 2, column 16: not UTF-8",),
        )
    )
    add(
        Case(
            "invalid UTF-8",
            "playbook",
            "ff",
            PLAYBOOK.encode() + b"description: \xff\n",
            (r"line 4, column 14: not UTF-8",),
        )
    )
    add(Case("invalid UTF-8", "faults", "ff", FAULTS.encode() + b"# \xfe\n", (r"not UTF-8",), isolated=True))
    add(
        Case(
            "invalid UTF-8",
            "fleet",
            "ff",
            _fleet_bytes(lambda b: b.replace(b"name: PC-0001", b"name: PC-\xff", 1)),
            (r"not UTF-8",),
            isolated=True,
        )
    )
    add(
        Case("invalid UTF-8", "fleet_json", "ff", b'{"schema_version": 1, "x": "\xff"}', (r"not UTF-8",), isolated=True)
    )
    boms = (
        ("utf16le", "inventory", "\ufeff" + INVENTORY, "utf-16-le", r"UTF-16 text: save it as UTF-8"),
        ("utf16be", "playbook", "\ufeff" + PLAYBOOK, "utf-16-be", r"UTF-16 text: save it as UTF-8"),
        ("utf32", "inventory", "\ufeff" + INVENTORY, "utf-32-le", r"UTF-32 text"),
        ("utf16-csv", "csv", "\ufeff" + CSV_HEAD, "utf-16-le", r"UTF-16 text"),
        ("utf16-faults", "faults", "\ufeff" + FAULTS, "utf-16-le", r"UTF-16 text"),
        ("utf8-then-bad", "inventory", "\ufeffdevices: [\n", "utf-8", r"invalid YAML"),
        ("bom-in-name", "inventory", INVENTORY.replace("PC-1", "PC-\ufeff1"), "utf-8", r"devices\[0\]\.name"),
        ("double-bom", "playbook", "\ufeff\ufeff" + PLAYBOOK + "colour: 1\n", "utf-8", r"colour|invalid YAML"),
        ("bom-csv-bad-port", "csv", "\ufeffname,address,port\nPC-1,127.0.0.1,x\n", "utf-8", r"line 2: port"),
    )
    for label, target, text, encoding, expect in boms:
        where = not label.startswith("utf16") and not label.startswith("utf32")
        add(Case("BOM", target, label, text.encode(encoding), (expect,), isolated=target == "faults", where=where))
    for target, raw in (
        ("inventory", INVENTORY.encode().replace(b"PC-1", b"PC-\x001")),
        ("inventory", b"\x00" + INVENTORY.encode()),
        ("csv", CSV_HEAD.encode() + b"PC-1,127.0.0.1,pi\x00lot\n"),
        ("playbook", PLAYBOOK.encode() + b"description: a\x00b\n"),
        ("faults", FAULTS.encode() + b"\x00"),
    ):
        label = "nul-first" if raw.startswith(b"\x00") else "nul"
        add(Case("NUL byte", target, label, raw, (r"a NUL byte is not allowed",), isolated=target == "faults"))
    add(
        Case(
            "NUL byte",
            "fleet",
            "nul",
            _fleet_bytes(lambda b: b.replace(b"seed: 1", b"seed: 1\x00", 1)),
            (r"NUL byte",),
            isolated=True,
        )
    )
    add(Case("NUL byte", "fleet_json", "nul", b'{"schema_version": 1\x00}', (r"NUL byte",), isolated=True, where=False))
    add(
        Case(
            "control character",
            "inventory",
            "escape-sequence",
            _text(INVENTORY.replace("PC-1", "PC-\x1b[31m1")),
            (r"control character U\+001B",),
        )
    )
    add(
        Case(
            "control character",
            "playbook",
            "bell",
            _text(PLAYBOOK + "description: \x07\n"),
            (r"control character U\+0007",),
        )
    )
    add(
        Case(
            "control character", "csv", "c1", _text(CSV_HEAD + "PC-1,127.0.0.1,\x9b\n"), (r"control character U\+009B",)
        )
    )

    # ---- CSV: quoting, sizes, columns ----------------------------------------------------------------------------
    for name, text, expect in (
        ("unterminated-quote", CSV_HEAD + 'PC-1,"127.0.0.1,\n', r"invalid CSV"),
        ("quote-in-field", CSV_HEAD + 'PC-1,127."0".0.1,\n', r"invalid CSV|address"),
        ("text-after-quote", CSV_HEAD + '"PC-1"x,127.0.0.1,\n', r"invalid CSV"),
        ("missing-column", "name,groups\nPC-1,pilot\n", r"missing column 'address'"),
        ("no-header-columns", "\n\n", r"missing column"),
        ("empty", "", r"missing column"),
        ("unknown-column", "name,address,colour\nPC-1,127.0.0.1,red\n", r"unknown column 'colour'"),
        ("fewer-fields", CSV_HEAD + "PC-1\n", r"line 2: row: 1 fields where the header has 3"),
        ("more-fields", CSV_HEAD + "PC-1,127.0.0.1,pilot,extra\n", r"line 2: row: 4 fields where the header has 3"),
        ("missing-name", CSV_HEAD + ",127.0.0.1,pilot\n", r"line 2: name: field required"),
        ("bad-port", "name,address,port\nPC-1,127.0.0.1,http\n", r"line 2: port"),
        ("bad-address-line-5", CSV_HEAD + "PC-1,127.0.0.1,\n\nPC-2,127.0.0.2,\nPC-3,not..valid,\n", r"line 5: address"),
        ("multiline-field", CSV_HEAD + 'PC-1,127.0.0.1,"a\nb"\nPC-2,bad..addr,\n', r"line 4: address"),
        (
            "huge-field",
            CSV_HEAD + "PC-1,127.0.0.1," + "g" * 70_000 + "\n",
            r"line 2: a field is over the 65,536 character limit",
        ),
        ("group-bad", CSV_HEAD + "PC-1,127.0.0.1,pi lot\n", r"line 2: groups"),
    ):
        add(Case("CSV", "csv", name, _text(text), (expect,)))

    # ---- other YAML abuse ----------------------------------------------------------------------------------------
    for target in ("inventory", "playbook", "faults", "fleet"):
        iso = target in LAB_TARGETS
        add(
            Case(
                "YAML",
                target,
                "two-documents",
                _text("a: 1\n---\nb: 2\n"),
                (r"more than one YAML document",),
                isolated=iso,
            )
        )
        add(
            Case(
                "YAML",
                target,
                "python-tag",
                _text("a: !!python/object/apply:os.system [id]\n"),
                (r"unsupported tag",),
                isolated=iso,
            )
        )
        add(Case("YAML", target, "binary-tag", _text("a: !!binary aGVsbG8=\n"), (r"unsupported tag",), isolated=iso))
        add(Case("YAML", target, "merge-key", _text("a: &a {x: 1}\nb:\n  <<: *a\n"), (r"merge keys",), isolated=iso))
        add(Case("YAML", target, "complex-key", _text("? [a, b]\n: 1\n"), (r"mapping key must be text",), isolated=iso))
        add(Case("YAML", target, "unclosed-quote", _text("a: 'open\n"), (r"invalid YAML",), isolated=iso))
        add(Case("YAML", target, "tab-indent", _text("a:\n\t- 1\n"), (r"invalid YAML",), isolated=iso))
        add(
            Case(
                "YAML",
                target,
                "bad-int-tag",
                _text("a: !!int twelve\n"),
                (r"'twelve' is not a valid int",),
                isolated=iso,
            )
        )
    return cases


CASES = _cases()


def _digest(path: Path) -> str:
    if not path.exists():
        return "absent"
    info = path.stat()
    if info.st_size > 16 * MiB:  # the huge sparse inputs: size and time, not content
        return f"{info.st_size}:{info.st_mtime_ns}"
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _command(case: Case, folder: Path, target_file: Path) -> list[str]:
    # `run` is given a --limit no inventory has: an input wrongly accepted ends there (exit 2 without a line,
    # which the case then fails on) instead of contacting a device.
    state = str(folder / "state")
    guard = ["--state", state, "--yes", "--limit", "hostile-guard"]
    if case.target in ("inventory", "csv"):
        return ["run", "-i", str(target_file), *guard]
    if case.target == "playbook":
        inventory = folder / "inventory.yaml"
        inventory.write_text(INVENTORY, encoding="utf-8")
        return ["run", "-i", str(inventory), "--playbook", str(target_file), *guard]
    lab = ["lab", "up", "--inventory", str(folder / "lab" / "inventory.yaml")]
    if case.target == "faults":
        return [*lab, "--devices", "1", "--fleet", str(folder / "lab" / "fleet.json"), "--faults", str(target_file)]
    return [*lab, "--fleet", str(target_file)]


def _in_child(args: list[str]) -> tuple[int, str, str | None]:
    context = forkserver_context("tests.hostile.child", "migrator.cli.wave_commands", "migrator.cli.lab_run")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=run_cli, args=(args, ENV, MEMORY_LIMIT, send))  # type: ignore[attr-defined]
    process.start()
    send.close()
    try:
        if not receive.poll(HANG_GUARD):
            process.kill()
            pytest.fail(f"hang guard: no answer within {HANG_GUARD:.0f} s for migrator {' '.join(args)}")
        result: tuple[int, str, str | None] = receive.recv()
    finally:
        process.join(10)
        if process.is_alive():
            process.kill()
    return result


def _in_process(args: list[str]) -> tuple[int, str, str | None]:
    result = CliRunner().invoke(app, args, env=ENV)
    error = None
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        error = repr(result.exception)
    return result.exit_code, result.output, error


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input_is_refused_clearly(tmp_path: Path, case: Case) -> None:
    """Exit 2, the file and line (and field or limit) named, no traceback, user values literal, store and file
    byte-identical."""
    file_name, where = TARGETS[case.target]
    target_file = tmp_path / file_name
    if isinstance(case.content, bytes):
        target_file.write_bytes(case.content)
    else:
        case.content(target_file)
    with Store.open(tmp_path / "state"):
        pass
    store_file = tmp_path / "state" / "migrator.db"
    before = (_digest(store_file), _digest(target_file))
    args = _command(case, tmp_path, target_file)
    try:
        code, output, error = (_in_child if case.isolated else _in_process)(args)
        after = (_digest(store_file), _digest(target_file))
    finally:
        target_file.unlink()  # up to 129 MiB each: pytest keeps the temporary folders of the last runs
    assert error is None, error
    assert "Traceback" not in output, output
    assert code == 2, output[:2000]
    flat = " ".join(output.split())
    assert file_name in flat, flat[:2000]
    if case.where:
        assert re.search(where, flat), flat[:2000]
    for pattern in case.expect:
        assert re.search(pattern, flat), f"{pattern!r} not in {flat[:2000]!r}"
    if case.literal is not None:
        assert case.literal in output, output[:2000]
    assert len(output) < 20_000, "a message must not echo a huge value"
    assert after == before


def test_the_suite_has_enough_cases_of_every_kind() -> None:
    """At least 150 table cases (plus the generated ones in test_generated.py), every kind of the issue."""
    kinds = {c.kind for c in CASES}
    assert len(CASES) >= 150 and len({c.id for c in CASES}) == len(CASES)
    assert {"deep nesting", "alias bomb", "huge file", "50 MB string", "duplicate", "markup", "bad type"} <= kinds
    assert {"bad enum", "invalid UTF-8", "BOM", "NUL byte", "CSV", "wide"} <= kinds


def table() -> str:
    """The cases by kind, for the closing note."""
    lines = []
    by_kind: dict[str, list[Case]] = {}
    for case in CASES:
        by_kind.setdefault(case.kind, []).append(case)
    for kind, cases in by_kind.items():
        lines.append(f"{kind} ({len(cases)}): " + ", ".join(c.id for c in cases))
    lines.append(f"total: {len(CASES)}")
    return "\n".join(lines)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    print(table())
