"""Where and how to read each AD domain's directory, resolved once from the inventory.

Per domain, the first that says: the domain's entry in the inventory's ``directory: domains:``, then the
``directory:`` section itself, then (for a lab inventory) the ``lab: domains:`` entry ``lab up`` wrote, then the
defaults: LDAPS (636) on the domain's DNS name (which resolves to its DCs), verified against the inventory's
``defaults.ca_bundle`` or the system's CAs, NTLM with the devices' credentials.

TLS follows :mod:`migrator.remote.tls`: verification is on unless the inventory writes
``ca_bundle: insecure-skip-verify``; a ``ca_bundle`` that reads like "off" (``false``, ``no``...) is refused.
Plain LDAP (``security: ldap``, 389) is only used with NTLM signing and sealing (ldap3's
``session_security=ENCRYPT``): a simple bind there would send the password in clear, and ldap3's SASL GSSAPI
negotiates no security layer, so ``auth: simple`` and ``auth: kerberos`` need LDAPS. ldap3 2.9.1, the latest
release, has no NTLM sealing either: there ``security: ldap`` is refused when the connection is opened
(:func:`~migrator.directory.client.ntlm_sealing_available`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import SecretStr

from migrator.errors import InputError
from migrator.inventory import DirectoryDomain, DirectoryOverrides, Inventory
from migrator.remote.credentials import Credentials, read_env_file
from migrator.remote.tls import _OFF_WORDS, HOW_TO_TURN_OFF, INSECURE_SKIP_VERIFY

DIRECTORY_USERNAME_VAR = "MIGRATOR_DIRECTORY_USERNAME"
DIRECTORY_PASSWORD_VAR = "MIGRATOR_DIRECTORY_PASSWORD"  # noqa: S105 - the variable's name, not a password
DEFAULT_PORTS = {"ldaps": 636, "ldap": 389}


@dataclass(frozen=True)
class DirectoryTarget:
    """The resolved settings to read one domain."""

    domain: str  # DNS name
    netbios: str
    server: str
    port: int
    security: Literal["ldaps", "ldap"]
    auth: Literal["ntlm", "simple", "kerberos"]
    verify: bool | Path  # True: system CAs; a path: this CA bundle; False: `insecure-skip-verify`
    credentials: Literal["devices", "directory"]
    connect_timeout: float = 10.0
    sasl_host: str | None = None  # the DC's host name for the ldap/<fqdn> SPN (Kerberos needs a name, not an IP)
    krb5_conf: Path | None = None  # the inventory's defaults.krb5_conf: the realms' Kerberos profile

    @property
    def base_dn(self) -> str:
        return domain_dn(self.domain)


def domain_dn(dns_name: str) -> str:
    """``corp.contoso.com`` → ``DC=corp,DC=contoso,DC=com``."""
    return ",".join(f"DC={label}" for label in dns_name.strip(".").split("."))


def _merge(*sources: DirectoryOverrides | None) -> dict[str, object]:
    merged: dict[str, object] = {}
    for source in sources:
        if source is None:
            continue
        for field in DirectoryOverrides.model_fields:
            value = getattr(source, field)
            if value is not None:
                merged[field] = value
    return merged


def directory_enabled(inventory: Inventory) -> bool:
    section = inventory.data.directory
    return section is None or section.read


def known_domains(inventory: Inventory, devices: Iterable[str] | None = None) -> list[str]:
    """The domains worth reading: the selected devices' (inventory ``domain``), the ``directory:`` section's and
    the lab's (an Entra joined device names no domain, its users do), in that order, each once."""
    names: list[str] = []
    chosen = inventory.devices if devices is None else [d for d in map(inventory.device, devices) if d is not None]
    for entry in chosen:
        if entry.domain:
            names.append(entry.domain)
    section = inventory.data.directory
    if section is not None:
        names.extend(d.name for d in section.domains)
    if inventory.lab is not None:
        names.extend(d.name for d in inventory.lab.domains)
    seen: set[str] = set()
    out = []
    for name in names:
        if "." not in name:
            continue  # a NetBIOS name: the directory is found by DNS name
        if name.casefold() not in seen:
            seen.add(name.casefold())
            out.append(name)
    return out


def resolve_target(inventory: Inventory, domain: str) -> DirectoryTarget:
    """How to read ``domain``'s directory (see the module's docstring); :class:`InputError` on a bad setting."""
    section = inventory.data.directory
    entry: DirectoryDomain | None = None
    if section is not None:
        entry = next((d for d in section.domains if d.name.casefold() == domain.casefold()), None)
    merged = _merge(section, entry)
    lab = None
    if inventory.lab is not None:
        lab = next((d for d in inventory.lab.domains if d.name.casefold() == domain.casefold()), None)
    security = str(merged.get("security", "ldaps"))
    auth = str(merged.get("auth", "ntlm"))
    where = f"{inventory.path}: directory ({domain})"
    if security == "ldap" and auth != "ntlm":
        raise InputError(
            f"{where}: auth {auth} over plain LDAP is refused (no signing and sealing): use security: ldaps, or "
            "auth: ntlm (sealed)"
        )
    server = merged.get("server")
    port = merged.get("port")
    sasl_host = None
    if lab is not None:
        server = server or lab.dc_address
        port = port or (lab.ldaps_port if security == "ldaps" else lab.ldap_port)
        sasl_host = lab.dc_hostname
    server = str(server or domain)
    port = int(port or DEFAULT_PORTS[security])  # type: ignore[call-overload]
    bundle = merged.get("ca_bundle", inventory.data.defaults.ca_bundle)
    verify: bool | Path = True
    if isinstance(bundle, str):
        if bundle == INSECURE_SKIP_VERIFY:
            verify = False
        elif bundle.strip().casefold() in _OFF_WORDS:
            raise InputError(f"{where}: ca_bundle: `{bundle}` is not a CA bundle file; {HOW_TO_TURN_OFF}")
        else:
            path = Path(bundle)
            verify = path if path.is_absolute() else (inventory.path.parent / path).resolve()
    netbios = entry.netbios if entry is not None and entry.netbios else domain.split(".", 1)[0].upper()
    return DirectoryTarget(
        domain=domain,
        netbios=netbios,
        server=server,
        port=port,
        security=security,  # type: ignore[arg-type]
        auth=auth,  # type: ignore[arg-type]
        verify=verify,
        credentials=merged.get("credentials", "devices"),  # type: ignore[arg-type]
        connect_timeout=float(merged.get("connect_timeout", 10.0)),  # type: ignore[arg-type]
        sasl_host=sasl_host or (server if not server.replace(".", "").isdigit() else None),
        krb5_conf=_krb5_conf(inventory),
    )


def _krb5_conf(inventory: Inventory) -> Path | None:
    """The inventory's ``defaults.krb5_conf`` (relative to the inventory), which Kerberos binds use too."""
    value = inventory.data.defaults.krb5_conf
    if value is None:
        return None
    path = Path(value)
    return path if path.is_absolute() else (inventory.path.parent / path).resolve()


def check_directory_settings(inventory: Inventory) -> None:
    """Resolve every domain's settings once: :class:`InputError` for the first bad one, before anything runs."""
    if directory_enabled(inventory):
        for domain in known_domains(inventory):
            resolve_target(inventory, domain)


def directory_credentials(
    target: DirectoryTarget,
    devices: Credentials,
    secrets_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Credentials:
    """The devices' credentials, or (``credentials: directory``) MIGRATOR_DIRECTORY_USERNAME/_PASSWORD from the
    secrets file or the environment."""
    if target.credentials == "devices":
        return devices
    env = os.environ if environ is None else environ
    source = read_env_file(secrets_file) if secrets_file is not None else {}
    username = source.get(DIRECTORY_USERNAME_VAR) or env.get(DIRECTORY_USERNAME_VAR)
    password = source.get(DIRECTORY_PASSWORD_VAR) or env.get(DIRECTORY_PASSWORD_VAR)
    if not username or not password:
        raise InputError(
            f"directory ({target.domain}): credentials: directory needs {DIRECTORY_USERNAME_VAR} and "
            f"{DIRECTORY_PASSWORD_VAR} in the secrets file or the environment"
        )
    return Credentials(username, SecretStr(password))
