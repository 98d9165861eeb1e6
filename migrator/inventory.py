"""Devices and groups to migrate, from a YAML or CSV inventory (the lab writes the same format).

YAML::

    defaults: {transport: psrp, scheme: https, port: 5986, auth: ntlm, ca_bundle: lab-ca.pem}
    devices:
      - {name: PC-0001, address: 127.20.0.1, domain: corp.contoso.com, groups: [pilot]}
    lab: {control: "http://127.0.0.1:PORT"}

CSV: a header row with ``name,address`` and optionally ``domain,groups,transport,scheme,port,auth`` (groups
separated by ``;``). Relative paths (``ca_bundle``) are relative to the inventory file. Errors name the file,
the line and the field; no secret ever lives in an inventory (credentials come from the environment, a
secrets file or a prompt).
"""

from __future__ import annotations

import csv
import ipaddress
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from migrator.yamlsource import InputFileError, Problem, YamlDocument, load_yaml, validate

Transport = Literal["psrp", "winrm"]
Scheme = Literal["http", "https"]
Auth = Literal["ntlm", "negotiate", "kerberos", "credssp", "certificate", "basic"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_GROUP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
DEFAULT_PORTS = {"http": 5985, "https": 5986}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConnectionOverrides(_Strict):
    """Connection settings; every field optional so a device can override only what differs."""

    transport: Transport | None = None
    scheme: Scheme | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    auth: Auth | None = None
    ca_bundle: str | None = None
    cert_validation: bool | None = None  # False only for a lab you trust; never the default
    connect_timeout: float | None = Field(default=None, gt=0, le=600)
    operation_timeout: int | None = Field(default=None, gt=0, le=3600)
    read_timeout: float | None = Field(default=None, gt=0, le=3600)
    certificate_pem: str | None = None  # auth: certificate (client certificate mapping)
    certificate_key_pem: str | None = None


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


class DeviceEntry(ConnectionOverrides):
    name: str
    address: str
    fqdn: str | None = None  # the name its SPNs use (the lab writes it)
    domain: str | None = None
    groups: tuple[str, ...] = ()

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
        try:
            ipaddress.ip_address(value)
            return value
        except ValueError:
            pass
        labels = value.rstrip(".").split(".")
        if len(value) > 253 or not all(_HOST_LABEL.match(label) for label in labels) or labels[-1].isdigit():
            raise ValueError(f"{value!r} is neither an IP address nor a DNS host name")
        return value

    @field_validator("groups", mode="before")
    @classmethod
    def _groups(cls, value: object) -> object:
        if isinstance(value, str):
            value = [g for g in (part.strip() for part in value.split(";")) if g]
        if isinstance(value, list | tuple):
            for group in value:
                if not isinstance(group, str) or not _GROUP.match(group):
                    raise ValueError(f"{group!r} is not a valid group name")
        return value


class LabDomain(_Strict):
    """Where a lab domain's DC listens (``lab up`` writes these; ``kdc_port`` is null without a KDC)."""

    name: str
    realm: str
    dc_address: str
    dc_hostname: str | None = None
    ldap_port: int | None = Field(default=None, ge=1, le=65535)
    ldaps_port: int | None = Field(default=None, ge=1, le=65535)
    kdc_port: int | None = Field(default=None, ge=1, le=65535)


class LabRef(_Strict):
    control: str
    domains: list[LabDomain] = Field(default_factory=list)

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


class InventoryFile(_Strict):
    defaults: ConnectionOverrides = ConnectionOverrides()
    devices: list[DeviceEntry]
    groups: dict[str, list[str]] = Field(default_factory=dict)  # extra groups: name -> device names
    lab: LabRef | None = None

    @model_validator(mode="after")
    def _unique_names(self) -> InventoryFile:
        seen: dict[str, int] = {}
        for index, device in enumerate(self.devices):
            key = device.name.casefold()
            if key in seen:
                raise ValueError(f"duplicate device name {device.name!r} (devices[{seen[key]}] and devices[{index}])")
            seen[key] = index
        return self


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
        for field in ("ca_bundle", "certificate_pem", "certificate_key_pem"):
            if field in merged:
                path = Path(str(merged[field]))
                merged[field] = path if path.is_absolute() else (self.path.parent / path).resolve()
        return Connection.model_validate(merged)


def _check_connections(inventory: Inventory, doc: YamlDocument | None) -> None:
    """Secure by default: Basic authentication over plain HTTP is refused before anything is sent."""
    problems = []
    for index, device in enumerate(inventory.data.devices):
        conn = inventory.connection(device)
        if conn.auth == "basic" and conn.scheme == "http":
            line = doc.line_of(["devices", index]) if doc else None
            problems.append(
                Problem(
                    str(inventory.path),
                    line,
                    f"devices[{index}].auth",
                    "Basic authentication over plain HTTP would send the password in clear: use https",
                )
            )
    if problems:
        raise InputFileError(problems)


def load_inventory(path: str | Path) -> Inventory:
    """Load and validate an inventory (YAML, or CSV by extension); errors name file, line and field."""
    path = Path(path)
    if path.suffix.casefold() == ".csv":
        inventory = _load_csv(path)
        _check_connections(inventory, None)
        return inventory
    doc = load_yaml(path, "inventory")
    if not isinstance(doc.data, dict):
        raise InputFileError([Problem(str(path), 1, "", "an inventory is a mapping with a 'devices' list")])
    data = validate(doc, InventoryFile)
    inventory = Inventory(path, data)
    _check_connections(inventory, doc)
    return inventory


_CSV_FIELDS = {"name", "address", "domain", "groups", "transport", "scheme", "port", "auth", "ca_bundle"}


def _load_csv(path: Path) -> Inventory:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as err:
        raise InputFileError([Problem(str(path), None, "", f"cannot read inventory: {err}")]) from None
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = {"name", "address"} - set(header)
    unknown = set(header) - _CSV_FIELDS
    if missing or unknown:
        detail = "; ".join(
            [f"missing column {m!r}" for m in sorted(missing)] + [f"unknown column {u!r}" for u in sorted(unknown)]
        )
        raise InputFileError([Problem(str(path), 1, "header", detail)])
    devices: list[dict[str, object]] = []
    lines: list[int] = []
    for row in reader:
        entry = {k.strip(): v.strip() for k, v in row.items() if k and v is not None and v.strip() != ""}
        devices.append(entry)
        lines.append(reader.line_num)
    try:
        data = InventoryFile.model_validate({"devices": devices})
    except ValidationError as err:
        problems = []
        for error in err.errors():
            loc = [p for p in error["loc"] if isinstance(p, str | int)]
            line = lines[loc[1]] if len(loc) > 1 and isinstance(loc[1], int) and loc[1] < len(lines) else None
            field = ".".join(str(p) for p in loc[2:]) or "row"
            problems.append(Problem(str(path), line, field, error["msg"]))
        raise InputFileError(problems) from None
    return Inventory(path, data)
