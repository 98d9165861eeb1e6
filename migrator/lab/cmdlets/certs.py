"""The certificate stores a lab device has, and the ``Cert:`` drive over them (Microsoft.PowerShell.Security's
Certificate provider, about_Certificate_Provider).

Modelled stores (what the Hello for Business / cloud trust migration looks at, windows-facts §3):

- ``CurrentUser\\My`` of whoever runs the script: a signed-in user's WHfB authentication certificates
  (certificate trust enrols them with the Hello container's key, in the Microsoft Passport Key Storage
  Provider); the WinRM admin's own store is empty (a network logon of an account without a profile's
  certificates);
- ``LocalMachine\\My``: the Entra device certificate (``CN=<device id>``, issued by MS-Organization-Access)
  of an Entra or hybrid joined device, its key in the TPM (Microsoft Platform Crypto Provider).

Every other store (``Root``, ``CA``, ``TrustedPeople``...) and location is refused as not modelled, never shown
empty. :func:`store_certificates` is the one source for the drive and ``certutil -store``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from migrator.lab.boundary import NotModelledByLab
from migrator.lab.cmdlets._base import DeviceBinding, as_str_list, binding, error_record
from migrator.lab.derived import derived_guid, derived_thumbprint
from migrator.lab.model import Device
from migrator.lab.shell import CmdletContext, Principal, PrincipalKind, PSObject
from migrator.lab.windows import Lab

PROVIDER = "Microsoft.PowerShell.Security\\Certificate"
CERT_TYPES = (
    "System.Security.Cryptography.X509Certificates.X509Certificate2",
    "System.Security.Cryptography.X509Certificates.X509Certificate",
    "System.Object",
)
STORE_TYPES = ("System.Security.Cryptography.X509Certificates.X509Store", "System.Object")
LOCATION_TYPES = ("Microsoft.PowerShell.Commands.X509StoreLocation", "System.Object")
LOCATIONS = ("CurrentUser", "LocalMachine")
MODELLED_STORES = ("My",)
# The fixed OU of every certificate MS-Organization-Access issues (the Entra device registration service).
ORGANIZATION_ACCESS_ISSUER = "CN=MS-Organization-Access, OU=82dbaca4-3e81-46ca-9c73-0950c1eaca97, DC=windows, DC=net"
DEVICE_CERT_LIFETIME = timedelta(days=3652)  # the Entra device certificate: 10 years
_WHFB_USAGES = ("Smart Card Logon (1.3.6.1.4.1.311.20.2.2)", "Client Authentication (1.3.6.1.5.5.7.3.2)")
PASSPORT_KSP = "Microsoft Passport Key Storage Provider"
PLATFORM_KSP = "Microsoft Platform Crypto Provider"
_CERT_PATH = re.compile(r"^(?:cert:|microsoft\.powershell\.security\\certificate::|certificate::)", re.IGNORECASE)


@dataclass(frozen=True)
class StoredCertificate:
    """One certificate as the stores show it."""

    thumbprint: str
    subject: str
    issuer: str
    serial_number: str
    not_before: datetime
    not_after: datetime
    template: str  # "" when the certificate names none
    key_provider: str
    key_container: str
    enhanced_key_usage: tuple[str, ...]  # "Client Authentication (1.3.6.1.5.5.7.3.2)"
    has_private_key: bool = True  # False once the Hello container holding its key was deleted


def store_certificates(
    lab: Lab, device: Device, principal: Principal, location: str, store: str
) -> list[StoredCertificate]:
    """The certificates of ``location\\store`` as ``principal`` sees them (only ``My`` is modelled)."""
    if store.casefold() != "my":
        raise NotModelledByLab(f"The certificate store {location}\\{store}")
    if location.casefold() == "localmachine":
        return _machine_certificates(lab, device)
    if principal.kind is not PrincipalKind.USER:
        return []  # the admin's network logon and SYSTEM have no WHfB certificates in their own store
    user = device.user(principal.sid)
    if user is None:
        return []
    return [
        StoredCertificate(
            thumbprint=cert.thumbprint.upper(),
            subject=cert.subject,
            issuer=cert.issuer,
            serial_number=_serial(cert.thumbprint),
            not_before=cert.not_before,
            not_after=cert.not_after,
            template=cert.template,
            key_provider=cert.key_provider,
            key_container=cert.hello_key_id or "",
            enhanced_key_usage=(
                "Smart Card Logon (1.3.6.1.4.1.311.20.2.2)",
                "Client Authentication (1.3.6.1.5.5.7.3.2)",
            ),
            has_private_key=user.container is not None and user.container.key_id == cert.hello_key_id,
        )
        for cert in user.certificates
    ]


def entra_device_id(device: Device) -> str:
    """The Entra device id dsregcmd prints and the device certificate names (derived when the fleet has none)."""
    return device.device_id or derived_guid("device-id", device.name)


def entra_device_thumbprint(device: Device) -> str:
    return device.device_cert_thumbprint or derived_thumbprint("device-cert", entra_device_id(device))


def _machine_certificates(lab: Lab, device: Device) -> list[StoredCertificate]:
    if not device.azure_ad_joined:
        return []
    thumbprint = entra_device_thumbprint(device).upper()
    issued = device.os.install_date or lab.fleet.created
    tpm = device.tpm.present and device.tpm.ready
    return [
        StoredCertificate(
            thumbprint=thumbprint,
            subject=f"CN={entra_device_id(device)}",
            issuer=ORGANIZATION_ACCESS_ISSUER,
            serial_number=_serial(thumbprint),
            not_before=issued,
            not_after=issued + DEVICE_CERT_LIFETIME,
            template="",
            key_provider=PLATFORM_KSP if tpm else "Microsoft Software Key Storage Provider",
            key_container=derived_guid("device-key-container", entra_device_id(device)),
            enhanced_key_usage=("Client Authentication (1.3.6.1.5.5.7.3.2)",),
        )
    ]


def _serial(thumbprint: str) -> str:
    return thumbprint[-32:].lower()


# ---- the Cert: drive ---------------------------------------------------------------------------------------


def is_cert_path(path: str) -> bool:
    return bool(_CERT_PATH.match(path.strip()))


def _parts(path: str) -> list[str]:
    rest = _CERT_PATH.sub("", path.strip(), count=1)
    return [part for part in rest.replace("/", "\\").split("\\") if part]


def _ps_path(parts: list[str]) -> str:
    return f"{PROVIDER}::" + "\\".join(parts)


def certificate_object(cert: StoredCertificate, location: str, store: str) -> PSObject:
    parent = [location, store]
    return PSObject(
        [
            ("PSPath", _ps_path([*parent, cert.thumbprint])),
            ("PSParentPath", _ps_path(parent)),
            ("PSChildName", cert.thumbprint),
            ("PSDrive", "Cert"),
            ("PSProvider", PROVIDER),
            ("PSIsContainer", False),
            ("EnhancedKeyUsageList", list(cert.enhanced_key_usage)),
            ("FriendlyName", ""),
            ("HasPrivateKey", cert.has_private_key),
            ("Issuer", cert.issuer),
            ("NotAfter", cert.not_after),
            ("NotBefore", cert.not_before),
            ("SerialNumber", cert.serial_number.upper()),
            ("Subject", cert.subject),
            ("Thumbprint", cert.thumbprint),
            ("Version", 3),
        ],
        CERT_TYPES,
        to_string=f"[Subject]\r\n  {cert.subject}\r\n\r\n[Issuer]\r\n  {cert.issuer}\r\n\r\n"
        f"[Serial Number]\r\n  {cert.serial_number.upper()}\r\n\r\n[Thumbprint]\r\n  {cert.thumbprint}\r\n",
    )


def _store_object(location: str, store: str) -> PSObject:
    return PSObject(
        [
            ("PSPath", _ps_path([location, store])),
            ("PSParentPath", _ps_path([location])),
            ("PSChildName", store),
            ("PSIsContainer", True),
            ("Name", store),
            ("Location", location),
        ],
        STORE_TYPES,
        to_string=store,
    )


def _location_object(location: str) -> PSObject:
    return PSObject(
        [("PSPath", _ps_path([location])), ("PSChildName", location), ("PSIsContainer", True), ("Location", location)],
        LOCATION_TYPES,
        to_string=location,
    )


def _canonical(name: str, choices: tuple[str, ...]) -> str | None:
    return next((c for c in choices if c.casefold() == name.casefold()), None)


def get_items(ctx: CmdletContext, path: str, children: bool) -> Iterator[Any]:
    """Get-Item (``children`` False) or Get-ChildItem over one ``Cert:`` path (-Recurse on a store is the same:
    certificates have no children)."""
    b = binding(ctx)
    parts = _parts(path)
    if any(c in part for part in parts for c in "*?["):
        raise NotModelledByLab("Wildcards in Cert: paths", module="lab/cmdlets/certs")
    if not parts:
        # Cert:\ lists X509StoreLocation objects whose StoreNames name every store: not modelled.
        raise NotModelledByLab("Get-Item/Get-ChildItem Cert:\\ (the store locations)", module="lab/cmdlets/certs")
    location = _canonical(parts[0], LOCATIONS)
    if location is None:
        ctx.write_error(_not_found(ctx, path))
        return
    if len(parts) == 1:
        if not children:
            yield _location_object(location)
            return
        raise NotModelledByLab(
            f"Listing the certificate stores of {location} (only Cert:\\{location}\\My is modelled)",
            module="lab/cmdlets/certs",
        )
    store = parts[1]
    certificates = store_certificates(b.lab, b.device, b.principal, location, store)
    store = "My"
    if len(parts) == 2:
        if children:
            yield from (certificate_object(c, location, store) for c in certificates)
        else:
            yield _store_object(location, store)
        return
    wanted = parts[2].upper()
    found = [c for c in certificates if c.thumbprint == wanted]
    if len(parts) > 3 or not found:
        ctx.write_error(_not_found(ctx, path))
        return
    yield certificate_object(found[0], location, store)


def test_path(ctx: CmdletContext, path: str) -> bool:
    b = binding(ctx)
    parts = _parts(path)
    if not parts:
        return True
    found = _canonical(parts[0], LOCATIONS)
    if found is None:
        return False
    if len(parts) == 1:
        return True
    certificates = store_certificates(b.lab, b.device, b.principal, found, parts[1])
    return len(parts) == 2 or (len(parts) == 3 and any(c.thumbprint == parts[2].upper() for c in certificates))


def _not_found(ctx: CmdletContext, path: str) -> Any:
    return error_record(
        ctx.command_name,
        f"Cannot find path '{path}' because it does not exist.",
        "PathNotFound",
        "ObjectNotFound",
        "System.Management.Automation.ItemNotFoundException",
        path,
    )


def cert_paths(args: Mapping[str, Any]) -> list[str] | None:
    """The -Path/-LiteralPath values when they all name Cert: items (None: not a Cert: request)."""
    paths = as_str_list(args.get("LiteralPath")) or as_str_list(args.get("Path"))
    if paths and all(is_cert_path(p) for p in paths):
        return paths
    return None


__all__ = [
    "DeviceBinding",
    "StoredCertificate",
    "cert_paths",
    "certificate_object",
    "entra_device_id",
    "entra_device_thumbprint",
    "get_items",
    "is_cert_path",
    "store_certificates",
    "test_path",
]
