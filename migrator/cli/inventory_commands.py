"""``migrator inventory from-ad``: an inventory from the computer objects of an AD domain, grouped by OU.

Theory of operation
-------------------
One bound connection to the domain's directory (settings as for a wave: :mod:`migrator.directory.settings`, from
``--inventory`` when given, e.g. the lab's, then the options), one paged search for the computers under
``--base`` (default the domain) that are neither domain controllers nor RODCs (nor the AzureADKerberos object),
ANDed with ``--filter``. Each enabled computer with a ``dNSHostName`` becomes a device (address and fqdn: its
DNS name; domain; one group per OU, named from the OU path: ``OU=Paris,OU=Workstations`` → ``Workstations-Paris``).
The file is written next to its target and loaded with the product's own inventory loader before it replaces
anything; an existing ``--out`` is refused without ``--force``.

Exit codes: 0 written; 2 bad input, an existing file without --force, or a directory that cannot be read.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.markup import escape

from migrator.directory.client import DirectoryClient
from migrator.directory.reader import Computer, read_computers, split_dn
from migrator.directory.settings import directory_credentials, domain_dn, resolve_target
from migrator.errors import DirectoryError, InputError
from migrator.inventory import DirectorySection, Inventory, InventoryFile, load_inventory
from migrator.remote.credentials import load_credentials
from migrator.yamlsource import InputFileError

commands = typer.Typer()
inventory_app = typer.Typer(
    name="inventory", help="Build inventories (from Active Directory).", no_args_is_help=True, add_completion=False
)
commands.add_typer(inventory_app, name="inventory")
err_console = Console(stderr=True)

# Not devices to migrate: domain controllers (SERVER_TRUST_ACCOUNT, 0x2000) and RODCs, which the AzureADKerberos
# object also is (PARTIAL_SECRETS_ACCOUNT, 0x4000000): LDAP_MATCHING_RULE_BIT_AND ([MS-ADTS] 3.1.1.3.4.4.1).
NOT_DCS = "(!(userAccountControl:1.2.840.113556.1.4.803:=8192))(!(userAccountControl:1.2.840.113556.1.4.803:=67108864))"
_GROUP_CHAR = re.compile(r"[^A-Za-z0-9._-]+")


def ou_group(ou_dn: str, domain: str) -> str:
    """A group name for an OU: its OU/CN names from the top down, joined by ``-`` (the inventory's group syntax)."""
    base = domain_dn(domain).casefold()
    parts = []
    for rdn in split_dn(ou_dn):
        if rdn.casefold() in base.split(","):
            continue
        _, _, value = rdn.partition("=")
        parts.append(_GROUP_CHAR.sub("_", value.replace("\\", "")).strip("_.-"))
    name = "-".join(p for p in reversed(parts) if p) or domain.split(".", 1)[0]
    return name[:63].lstrip("_.-") or "domain"


def inventory_document(
    domain: str, computers: list[Computer], defaults: dict[str, Any], directory: dict[str, Any] | None
) -> tuple[dict[str, Any], dict[str, str], Counter[str]]:
    """The inventory (as YAML data), the groups (name → OU DN) and what was skipped (reason → count)."""
    devices: list[dict[str, Any]] = []
    groups: dict[str, str] = {}
    skipped: Counter[str] = Counter()
    for computer in sorted(computers, key=lambda c: (c.ou.casefold(), c.name.casefold())):
        if computer.disabled:
            skipped["disabled"] += 1
            continue
        if not computer.dns_host_name:
            skipped["no dNSHostName"] += 1
            continue
        group = ou_group(computer.ou, domain)
        groups.setdefault(group, computer.ou)
        devices.append(
            {
                "name": computer.name,
                "address": computer.dns_host_name,
                "fqdn": computer.dns_host_name,
                "domain": domain,
                "groups": [group],
            }
        )
    data: dict[str, Any] = {"defaults": defaults, "devices": devices}
    if directory is not None:
        data["directory"] = directory
    return data, groups, skipped


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    return typer.Exit(2)


def _defaults_from(source: Inventory | None, out: Path) -> dict[str, Any]:
    """Connection defaults for the new file: the source inventory's (paths made absolute), else psrp/https/ntlm."""
    if source is None:
        return {"transport": "psrp", "scheme": "https", "auth": "ntlm"}
    defaults = source.data.defaults.model_dump(exclude_none=True)
    for field in ("ca_bundle", "certificate_pem", "certificate_key_pem"):
        value = defaults.get(field)
        if isinstance(value, str) and value != "insecure-skip-verify" and not Path(value).is_absolute():
            defaults[field] = str((source.path.parent / value).resolve())
    return defaults


@inventory_app.command("from-ad")
def from_ad(
    domain: Annotated[str, typer.Option("--domain", help="The AD domain's DNS name, e.g. corp.contoso.com.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The inventory file to write (YAML).")],
    base: Annotated[
        str | None, typer.Option("--base", help="Only computers under this DN (an OU); default: the whole domain.")
    ] = None,
    search_filter: Annotated[
        str | None, typer.Option("--filter", help="An LDAP filter ANDed with the computer filter.")
    ] = None,
    inventory: Annotated[
        Path | None,
        typer.Option("--inventory", "-i", help="Read the directory settings (directory:, lab: domains) from it."),
    ] = None,
    server: Annotated[str | None, typer.Option(help="The DC (default: the inventory's, else the domain).")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535)] = None,
    security: Annotated[str | None, typer.Option(help="ldaps (default) or ldap (NTLM sealed).")] = None,
    auth: Annotated[str | None, typer.Option(help="ntlm (default), simple (LDAPS) or kerberos.")] = None,
    ca_bundle: Annotated[str | None, typer.Option(help="CA bundle for LDAPS (or insecure-skip-verify).")] = None,
    secrets: Annotated[
        Path | None, typer.Option("--secrets", help="KEY=value file with MIGRATOR_USERNAME/MIGRATOR_PASSWORD.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --out file.")] = False,
) -> None:
    """Write an inventory of the domain's computers (dNSHostName as the address), one group per OU.

    Example: migrator inventory from-ad --domain corp.contoso.com --base "OU=Workstations,DC=corp,DC=contoso,DC=com"
    --out pilot.yaml -i state/lab/inventory.yaml --secrets state/lab/lab-secrets.env
    """
    if out.exists() and not force:
        raise _fail(f"{out} exists: pass --force to replace it")
    try:
        source = load_inventory(inventory) if inventory is not None else None
        overrides = {
            k: v
            for k, v in {
                "server": server,
                "port": port,
                "security": security,
                "auth": auth,
                "ca_bundle": ca_bundle,
            }.items()
            if v is not None
        }
        target = resolve_target(_with_directory(source, out, domain, overrides), domain)
        credentials = directory_credentials(target, load_credentials(secrets), secrets)
    except (InputError, InputFileError) as err:
        raise _fail(str(err)) from None
    try:
        with DirectoryClient(target, credentials) as client:
            computers = list(read_computers(client, base, _and(NOT_DCS, search_filter)))
            requests = client.requests
    except DirectoryError as err:
        raise _fail(f"{err} ({err.action})") from None
    directory: dict[str, Any] = {
        "domains": [
            {"name": domain, "server": target.server, "port": target.port, "security": target.security}
            | ({"auth": target.auth} if target.auth != "ntlm" else {})
            | ({"ca_bundle": str(target.verify)} if not isinstance(target.verify, bool) else {})
        ]
    }
    if target.verify is False:
        directory["domains"][0]["ca_bundle"] = "insecure-skip-verify"
    data, groups, skipped = inventory_document(domain, computers, _defaults_from(source, out), directory)
    if not data["devices"]:
        raise _fail(f"no computer found under {base or domain_dn(domain)} (filter {search_filter or 'none'})")
    header = (
        f"# Written by `migrator inventory from-ad --domain {domain}` at {datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}"
        f" from {target.server}:{target.port}\n# groups (one per OU):\n"
        + "".join(f"#   {name}: {ou}\n" for name, ou in sorted(groups.items()))
    )
    try:
        _write_checked(out, header + yaml.safe_dump(data, sort_keys=False, width=200))
    except (InputError, InputFileError) as err:
        raise _fail(f"the inventory built from the directory does not load: {err}") from None
    note = ", ".join(f"{count} {why}" for why, count in sorted(skipped.items()))
    err_console.print(
        f"{out}: {len(data['devices'])} devices in {len(groups)} groups from {domain} "
        f"({requests} LDAP requests{'; skipped ' + note if note else ''})",
        markup=False,
        highlight=False,
    )


def _and(*filters: str | None) -> str | None:
    parts = []
    for item in filters:
        if item and item.strip():
            text = item.strip()
            parts.append(text if text.startswith("(") else f"({text})")
    return "".join(parts) if parts else None


def _with_directory(source: Inventory | None, out: Path, domain: str, overrides: dict[str, Any]) -> Inventory:
    """The source inventory (or an empty one) with the command's options as the domain's ``directory:`` entry."""
    if source is None:
        data = InventoryFile(devices=[])
        path = out
    else:
        data, path = source.data, source.path
    if overrides:
        section = data.directory.model_dump(exclude_none=True) if data.directory is not None else {}
        domains = [d for d in section.get("domains", []) if str(d.get("name", "")).casefold() != domain.casefold()]
        section["domains"] = [*domains, {"name": domain, **overrides}]
        try:
            data = data.model_copy(update={"directory": DirectorySection.model_validate(section)})
        except ValueError as err:
            raise InputError(f"directory options: {err}") from None
    return Inventory(path, data)


def _write_checked(out: Path, text: str) -> None:
    """Write ``text`` next to ``out``, load it with the inventory loader, then move it into place."""
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".yaml", dir=out.parent)
    temp = Path(name)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        load_inventory(temp)
        os.replace(temp, out)
    finally:
        temp.unlink(missing_ok=True)
