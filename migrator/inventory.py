"""Devices and groups to migrate, from a YAML or CSV inventory (the lab writes the same format).

YAML::

    defaults: {transport: psrp, scheme: https, port: 5986, auth: ntlm, ca_bundle: lab-ca.pem}
    devices:
      - {name: PC-0001, address: 127.20.0.1, domain: corp.contoso.com, groups: [pilot], site: paris}
    lab: {control: "http://127.0.0.1:PORT", graph: {url: ..., authority: ..., tenant_id: ...}}
    entra: {tenant_id: GUID, client_id: GUID}   # optional: Entra ID / Intune through Graph (see migrator.cloud)
    directory:                       # optional: how to read each AD domain (see migrator.directory)
      auth: ntlm                     # ntlm (default), simple (LDAPS only) or kerberos (SASL GSSAPI)
      domains: [{name: corp.contoso.com, server: dc01.corp.contoso.com, port: 636, security: ldaps}]

Kerberos (``auth: kerberos``, or ``negotiate``): ``spn_service`` (default HTTP) and ``spn_hostname`` (default the
device's ``fqdn``) name the SPN, ``krb5_conf`` the realms' profile (default ``KRB5_CONFIG``), per device or in
``defaults``; see :mod:`migrator.remote.kerberos`.

CSV: a header row with ``name,address`` and optionally ``fqdn,domain,groups,site,transport,scheme,port,auth,
spn_service,spn_hostname`` (groups separated by ``;``). Relative paths (``ca_bundle``) are relative to the
inventory file. Errors name the file, the line and the field; no secret ever lives in an inventory (credentials
come from the environment, a secrets file or a prompt).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from migrator.errors import InputError
from migrator.yamlsource import (
    INPUT_LIMIT,
    InputFileError,
    Mark,
    Problem,
    clip,
    gc_paused,
    load_yaml,
    read_csv,
    validate,
    validate_data,
)

Transport = Literal["psrp", "winrm"]
Scheme = Literal["http", "https"]
Auth = Literal["ntlm", "negotiate", "kerberos", "credssp", "certificate", "basic"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_IPV4 = re.compile(r"^(?:0|[1-9][0-9]{0,2})(?:\.(?:0|[1-9][0-9]{0,2})){3}$")
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_GROUP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_SPN_SERVICE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_SITE = _GROUP  # a site name is spelled like a group name (it is a word on the command line: --site NAME)
DEFAULT_PORTS = {"http": 5985, "https": 5986}


def _is_dns_name(value: str) -> bool:
    labels = value.rstrip(".").split(".")
    return len(value) <= 253 and all(_HOST_LABEL.match(label) for label in labels) and not labels[-1].isdigit()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _not_a_bool(value: object) -> object:
    # pydantic reads true as 1: `port: yes` would be port 1
    if isinstance(value, bool):
        raise ValueError("a number is needed here, not yes/no")
    return value


NotBool = BeforeValidator(_not_a_bool)


def _bundle_not_a_bool(value: object) -> object:
    # `ca_bundle: false` is how other tools turn verification off; here that takes the explicit marker (the
    # marker's text is migrator.remote.tls.INSECURE_SKIP_VERIFY, which checks it again at the adapters)
    if isinstance(value, bool):
        raise ValueError(
            "a CA bundle file is needed here, not yes/no; to turn TLS certificate verification off on purpose "
            "(a lab you trust), write `ca_bundle: insecure-skip-verify`"
        )
    return value


class ConnectionOverrides(_Strict):
    """Connection settings; every field optional so a device can override only what differs."""

    transport: Transport | None = None
    scheme: Scheme | None = None
    port: Annotated[int | None, NotBool] = Field(default=None, ge=1, le=65535)
    auth: Auth | None = None
    ca_bundle: Annotated[str | None, BeforeValidator(_bundle_not_a_bool)] = None
    cert_validation: bool | None = None  # false is refused: verification goes off only with the explicit marker
    connect_timeout: Annotated[float | None, NotBool] = Field(default=None, gt=0, le=600)
    operation_timeout: Annotated[int | None, NotBool] = Field(default=None, gt=0, le=3600)
    read_timeout: Annotated[float | None, NotBool] = Field(default=None, gt=0, le=3600)
    certificate_pem: str | None = None  # auth: certificate (client certificate mapping)
    certificate_key_pem: str | None = None
    # Kerberos (auth: kerberos or negotiate): the SPN <spn_service>/<spn_hostname> asked of the KDC, and the
    # krb5.conf naming the realms' KDCs (default: KRB5_CONFIG, else /etc/krb5.conf). See migrator.remote.kerberos.
    spn_service: str | None = None  # default HTTP (WinRM's SPN); WSMAN where only that is registered
    spn_hostname: str | None = None  # default: the device's fqdn, else its address when that is a DNS name
    krb5_conf: str | None = None

    @field_validator("spn_service")
    @classmethod
    def _valid_spn_service(cls, value: str | None) -> str | None:
        if value is not None and not _SPN_SERVICE.match(value):
            raise ValueError(
                f"{clip(value)!r} is not an SPN service class: write one word such as HTTP or WSMAN (the part "
                "before the '/', without host name or realm)"
            )
        return value

    @field_validator("spn_hostname")
    @classmethod
    def _valid_spn_hostname(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            ipaddress.ip_address(value)
        except ValueError:
            pass
        else:
            raise ValueError(
                f"{clip(value)!r} is an IP address; an SPN names the device by its DNS host name (pc-0001.corp.example)"
            )
        if not _is_dns_name(value):
            raise ValueError(f"{clip(value)!r} is not a DNS host name (the host part of the device's SPN)")
        return value


class Connection(_Strict):
    """The resolved settings to reach one device."""

    transport: Transport = "psrp"
    scheme: Scheme = "https"
    port: int = 5986
    auth: Auth = "ntlm"
    ca_bundle: Path | None = None
    cert_validation: bool = True
    connect_timeout: float = 30.0
    operation_timeout: int = 20
    read_timeout: float = 30.0
    certificate_pem: Path | None = None
    certificate_key_pem: Path | None = None
    spn_service: str | None = None
    spn_hostname: str | None = None
    krb5_conf: Path | None = None


class DeviceEntry(ConnectionOverrides):
    name: str
    address: str
    fqdn: str | None = None  # the name its SPNs use (the lab writes it)
    domain: str | None = None
    groups: tuple[str, ...] = ()
    # Where the device is reached from: `migrator worker --site NAME` serves only its sites' devices (WinRM is
    # usually open only from a management host in the device's own site or network segment).
    site: str | None = None

    @field_validator("site")
    @classmethod
    def _valid_site(cls, value: str | None) -> str | None:
        if value is not None and not _SITE.match(value):
            raise ValueError(SITE_RULE.format(site=clip(value)))
        return value

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(
                "not a valid computer name (letters, digits, '.', '_' and '-', at most 63 characters, "
                "starting with a letter or digit)"
            )
        return value

    @field_validator("address")
    @classmethod
    def _valid_address(cls, value: str) -> str:
        if _IPV4.match(value) and all(int(octet) <= 255 for octet in value.split(".")):
            return value  # the common case, without ipaddress's slower parser
        try:
            ipaddress.ip_address(value)
            return value
        except ValueError:
            pass
        if not _is_dns_name(value):
            raise ValueError(f"{clip(value)!r} is neither an IP address nor a DNS host name")
        return value

    @field_validator("groups", mode="before")
    @classmethod
    def _groups(cls, value: object) -> object:
        if isinstance(value, str):
            value = [g for g in (part.strip() for part in value.split(";")) if g]
        if isinstance(value, list | tuple):
            for group in value:
                if not isinstance(group, str) or not _GROUP.match(group):
                    raise ValueError(f"{clip(group)!r} is not a valid group name")
        return value


SITE_RULE = (
    "{site!r} is not a valid site name (letters, digits, '.', '_' and '-', at most 63 characters, starting with a "
    "letter or digit)"
)


def check_site(name: str) -> str:
    """A site name as ``--site`` gives it, spelled as the inventory's ``site:`` must be (InputError if not)."""
    if not _SITE.match(name):
        raise InputError(f"--site: {SITE_RULE.format(site=clip(name))}")
    return name


class LabDomain(_Strict):
    """Where a lab domain's DC listens (``lab up`` writes these; ``kdc_port`` is null without a KDC)."""

    name: str
    realm: str
    dc_address: str
    dc_hostname: str | None = None
    ldap_port: int | None = Field(default=None, ge=1, le=65535)
    ldaps_port: int | None = Field(default=None, ge=1, le=65535)
    kdc_port: int | None = Field(default=None, ge=1, le=65535)


class LabGraph(_Strict):
    """Where the lab tenant serves Graph and its authority (``lab up`` writes it)."""

    url: str
    authority: str
    tenant_id: str


_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _https_url(value: str | None) -> str | None:
    if value is not None and (urlsplit(value).scheme != "https" or not urlsplit(value).hostname):
        raise ValueError(f"{clip(value)!r} is not an https:// URL")
    return value.rstrip("/") if value is not None else None


class EntraSection(_Strict):
    """The Entra ID tenant and app registration migrator uses through Microsoft Graph (:mod:`migrator.cloud`).

    Every field may be left out in a lab inventory (``lab: graph:`` gives tenant, authority and Graph's URL); the
    client id may also come from ``MIGRATOR_GRAPH_CLIENT_ID``. The app's secret never lives here:
    ``MIGRATOR_GRAPH_CLIENT_SECRET`` in the environment or the secrets file, or a certificate file."""

    tenant_id: str | None = None
    client_id: str | None = None
    authority: str | None = None  # default https://login.microsoftonline.com/<tenant_id>
    graph_url: str | None = None  # default https://graph.microsoft.com/v1.0
    ca_bundle: str | None = None  # default: the inventory's defaults.ca_bundle when Graph is the lab's
    certificate: str | None = None  # PEM file with the app certificate and its private key: certificate credentials

    @field_validator("tenant_id", "client_id")
    @classmethod
    def _guid(cls, value: str | None) -> str | None:
        if value is not None and not _GUID.match(value):
            raise ValueError(f"{clip(value)!r} is not a GUID (the tenant id and the app's client id are GUIDs)")
        return value.lower() if value is not None else None

    @field_validator("authority", "graph_url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        return _https_url(value)


class LabRef(_Strict):
    control: str
    domains: list[LabDomain] = Field(default_factory=list)
    graph: LabGraph | None = None

    @field_validator("control")
    @classmethod
    def _loopback_only(cls, value: str) -> str:
        parts = urlsplit(value)
        host = parts.hostname or ""
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if parts.scheme not in ("http", "https") or not loopback or parts.port is None:
            raise ValueError("the lab control endpoint must be an http(s) URL on a loopback address with a port")
        return value


DirectoryAuth = Literal["ntlm", "simple", "kerberos"]
DirectorySecurity = Literal["ldaps", "ldap"]  # ldap: 389 with NTLM (or Kerberos) signing and sealing
DirectoryCredentialsSource = Literal["devices", "directory"]  # directory: MIGRATOR_DIRECTORY_USERNAME/_PASSWORD


class DirectoryOverrides(_Strict):
    """How to reach a domain's directory; every field optional (the section's values, then built-in defaults)."""

    server: str | None = None  # default: the lab's DC address for a lab domain, else the domain's DNS name
    port: Annotated[int | None, NotBool] = Field(default=None, ge=1, le=65535)
    security: DirectorySecurity | None = None
    auth: DirectoryAuth | None = None
    ca_bundle: str | None = None  # default: the inventory's defaults.ca_bundle; `insecure-skip-verify` to turn off
    credentials: DirectoryCredentialsSource | None = None
    connect_timeout: Annotated[float | None, NotBool] = Field(default=None, gt=0, le=600)


class DirectoryDomain(DirectoryOverrides):
    name: str  # the domain's DNS name
    netbios: str | None = None  # default: its first label, upper-cased (CORP for corp.contoso.com)


class DirectorySection(DirectoryOverrides):
    read: bool = True  # false: never read the directory (the old behaviour: --entra-kerberos only)
    domains: list[DirectoryDomain] = Field(default_factory=list)


class InventoryFile(_Strict):
    defaults: ConnectionOverrides = ConnectionOverrides()
    devices: list[DeviceEntry]
    groups: dict[str, list[str]] = Field(default_factory=dict)  # extra groups: name -> device names
    lab: LabRef | None = None
    directory: DirectorySection | None = None
    entra: EntraSection | None = None

    @model_validator(mode="after")
    def _unique_names(self) -> InventoryFile:
        # The loaders report duplicates first, with their lines (_check_unique); this guards other callers.
        duplicates = _duplicates(self.devices)
        if duplicates:
            first, index = duplicates[0]
            name = self.devices[index].name
            raise ValueError(f"duplicate device name {name!r} (devices[{first}] and devices[{index}])")
        return self


def _duplicates(devices: Sequence[DeviceEntry]) -> list[tuple[int, int]]:
    """(first index, duplicate index) of every device whose name (case-insensitively) came before."""
    seen: dict[str, int] = {}
    out = []
    for index, device in enumerate(devices):
        key = device.name.casefold()
        if key in seen:
            out.append((seen[key], index))
        else:
            seen[key] = index
    return out


class Inventory:
    """A validated inventory and where it came from."""

    def __init__(self, path: Path, data: InventoryFile) -> None:
        self.path = path
        self.data = data
        self._by_name = {d.name.casefold(): d for d in data.devices}

    @property
    def devices(self) -> list[DeviceEntry]:
        return list(self.data.devices)

    @property
    def lab(self) -> LabRef | None:
        return self.data.lab

    @property
    def entra(self) -> EntraSection | None:
        return self.data.entra

    def device(self, name: str) -> DeviceEntry | None:
        return self._by_name.get(name.casefold())

    def groups(self) -> dict[str, list[str]]:
        """Every group (from devices' ``groups`` and the top-level ``groups``) with its device names."""
        out: dict[str, list[str]] = {}
        for device in self.data.devices:
            for group in device.groups:
                out.setdefault(group, []).append(device.name)
        for group, names in self.data.groups.items():
            members = out.setdefault(group, [])
            members.extend(n for n in names if n not in members)
        return out

    def select(self, limit: str | Iterable[str] | None) -> list[DeviceEntry]:
        """Devices named by ``--limit`` (group or device names, comma-separated), in inventory order."""
        if limit is None:
            return self.devices
        terms = [t.strip() for t in (limit.split(",") if isinstance(limit, str) else limit) if t.strip()]
        groups = {g.casefold(): names for g, names in self.groups().items()}
        wanted: set[str] = set()
        unknown: list[str] = []
        for term in terms:
            key = term.casefold()
            if key in groups:
                wanted.update(n.casefold() for n in groups[key])
            elif key in self._by_name:
                wanted.add(key)
            else:
                unknown.append(term)
        if unknown:
            raise InputFileError(
                [Problem(str(self.path), None, "--limit", f"unknown group or device {u!r}") for u in unknown]
            )
        return [d for d in self.data.devices if d.name.casefold() in wanted]

    def connection(self, device: DeviceEntry) -> Connection:
        """Resolve a device's connection: defaults, then the device's own settings; paths made absolute."""
        merged: dict[str, object] = {}
        for source in (self.data.defaults, device):
            for field in ConnectionOverrides.model_fields:
                value = getattr(source, field)
                if value is not None:
                    merged[field] = value
        if "port" not in merged:
            merged["port"] = DEFAULT_PORTS[str(merged.get("scheme", "https"))]
        for field in ("ca_bundle", "certificate_pem", "certificate_key_pem", "krb5_conf"):
            if field in merged:
                path = Path(str(merged[field]))
                merged[field] = path if path.is_absolute() else (self.path.parent / path).resolve()
        return Connection.model_validate(merged)


MarkOf = Callable[[Sequence[str | int]], Mark | None]


def _check_connections(inventory: Inventory, mark_of: MarkOf) -> None:
    """Secure by default: Basic authentication over plain HTTP is refused before anything is sent. Kerberos
    needs a host name for the device's SPN, and a ``krb5_conf`` that exists."""
    problems = []
    defaults = inventory.data.defaults

    def problem(loc: list[str | int], field: str, message: str) -> None:
        mark = mark_of(loc)
        problems.append(
            Problem(str(inventory.path), mark[0] if mark else None, field, message, mark[1] if mark else None)
        )

    sources: list[tuple[ConnectionOverrides, list[str | int], str]] = [(defaults, ["defaults"], "defaults.krb5_conf")]
    sources += [
        (device, ["devices", index], f"devices[{index}].krb5_conf") for index, device in enumerate(inventory.devices)
    ]
    for source, loc, field in sources:
        if source.krb5_conf is not None:
            path = Path(source.krb5_conf)
            path = path if path.is_absolute() else inventory.path.parent / path
            if not path.is_file():
                problem(loc, field, f"no krb5.conf at {path} (the realms' Kerberos profile; lab up writes one)")
    for index, device in enumerate(inventory.data.devices):
        # the settings that matter, merged as connection() merges them (without building a Connection)
        auth = device.auth or defaults.auth or "ntlm"
        scheme = device.scheme or defaults.scheme or "https"
        if auth == "basic" and scheme == "http":
            problem(
                ["devices", index],
                f"devices[{index}].auth",
                "Basic authentication over plain HTTP would send the password in clear: use https",
            )
        named = device.spn_hostname or defaults.spn_hostname or device.fqdn or not is_ip_address(device.address)
        if auth == "kerberos" and not named:
            problem(
                ["devices", index],
                f"devices[{index}].auth",
                f"auth: kerberos needs the device's DNS host name for its SPN (HTTP/<name>), and its address "
                f"{device.address} is an IP address: set fqdn or spn_hostname",
            )
    if problems:
        raise InputFileError(problems)


def is_ip_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _check_unique(path: Path, devices: object, mark_of: MarkOf, *, csv: bool = False) -> None:
    """Duplicate device names (case-insensitive), each with its line and the line of the first, before the
    devices are validated one by one."""
    if not isinstance(devices, list):
        return
    seen: dict[str, int] = {}
    problems = []
    for index, device in enumerate(devices):
        name = device.get("name") if isinstance(device, dict) else None
        if not isinstance(name, str):
            continue
        key = name.casefold()
        if key not in seen:
            seen[key] = index
            continue
        first = mark_of(["devices", seen[key], "name"])
        mark = mark_of(["devices", index, "name"])
        where = f"line {first[0]}" if first else f"devices[{seen[key]}]"
        problems.append(
            Problem(
                str(path),
                mark[0] if mark else None,
                "name" if csv else f"devices[{index}].name",
                f"duplicate device name {clip(name)!r} (first at {where}"
                + (")" if csv else f", devices[{seen[key]}])"),
                None if csv else mark[1] if mark else None,
            )
        )
    if problems:
        raise InputFileError(problems)


def load_inventory(path: str | Path) -> Inventory:
    """Load and validate an inventory (YAML, or CSV by extension) of at most :data:`INPUT_LIMIT` bytes; errors
    name file, line and field."""
    path = Path(path)
    if path.suffix.casefold() == ".csv":
        return _load_csv(path)
    doc = load_yaml(path, "inventory", INPUT_LIMIT)
    if not isinstance(doc.data, dict):
        raise InputFileError([Problem(str(path), 1, "", "an inventory is a mapping with a 'devices' list")])
    _check_unique(path, doc.data.get("devices"), doc.mark_of)
    with gc_paused():  # thousands of small models: the cyclic collector would rescan them again and again
        data = validate(doc, InventoryFile)
    inventory = Inventory(path, data)
    _check_connections(inventory, doc.mark_of)
    return inventory


_CSV_FIELDS = {
    "name",
    "address",
    "fqdn",
    "domain",
    "groups",
    "site",
    "transport",
    "scheme",
    "port",
    "auth",
    "ca_bundle",
    "spn_service",
    "spn_hostname",
}


def _load_csv(path: Path) -> Inventory:
    header, rows = read_csv(path, "inventory", INPUT_LIMIT)
    missing = {"name", "address"} - set(header)
    unknown = set(header) - _CSV_FIELDS
    repeated = sorted({h for h in header if header.count(h) > 1})
    if missing or unknown or repeated:
        detail = "; ".join(
            [f"missing column {m!r}" for m in sorted(missing)]
            + [f"unknown column {clip(u, 60)!r}" for u in sorted(unknown)]
            + [f"column {clip(r, 60)!r} given twice" for r in repeated]
        )
        raise InputFileError([Problem(str(path), 1, "header", detail)])
    devices = [{k: v.strip() for k, v in row.values.items() if v.strip() != ""} for row in rows]
    lines = [row.line for row in rows]

    def mark_of(loc: Sequence[str | int]) -> Mark | None:
        index = loc[1] if len(loc) > 1 else None
        return (lines[index], 1) if isinstance(index, int) and 0 <= index < len(lines) else None

    _check_unique(path, devices, mark_of, csv=True)
    try:
        with gc_paused():
            data = validate_data(InventoryFile, {"devices": devices}, path, mark_of)
    except InputFileError as err:
        problems = [
            Problem(p.file, p.line, p.field.split(".", 1)[1] if "." in p.field else "row", p.message) if p.field else p
            for p in err.problems
        ]
        raise InputFileError(problems) from None
    inventory = Inventory(path, data)
    _check_connections(inventory, mark_of)
    return inventory
