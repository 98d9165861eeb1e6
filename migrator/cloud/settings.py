"""Where the Entra ID tenant is and how migrator's app signs in: the inventory's ``entra:`` section, the lab's
``lab: graph:`` contract, and the app's secret from the secrets file or the environment.

Precedence, field by field: ``entra:`` in the inventory, then ``lab: graph:`` (a lab inventory), then the built-in
defaults (``https://login.microsoftonline.com/<tenant>``, ``https://graph.microsoft.com/v1.0``). The client id may
come from ``MIGRATOR_GRAPH_CLIENT_ID``; the secret only from ``MIGRATOR_GRAPH_CLIENT_SECRET`` (secrets file first,
then the environment) unless ``entra: certificate:`` names a PEM file with the app's certificate and key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr

from migrator.errors import InputError
from migrator.inventory import Inventory
from migrator.logs import register_secret
from migrator.remote.credentials import read_env_file

if TYPE_CHECKING:
    from migrator.cloud.client import GraphClient

CLIENT_ID_VAR = "MIGRATOR_GRAPH_CLIENT_ID"
CLIENT_SECRET_VAR = "MIGRATOR_GRAPH_CLIENT_SECRET"  # noqa: S105 - the variable's name, not a secret
PUBLIC_AUTHORITY = "https://login.microsoftonline.com"
PUBLIC_GRAPH = "https://graph.microsoft.com/v1.0"


@dataclass(frozen=True)
class GraphSettings:
    """Everything :class:`~migrator.cloud.client.GraphClient` needs; ``repr`` never shows the secret."""

    tenant_id: str
    client_id: str
    authority: str
    graph_url: str
    ca_bundle: Path | None  # None: the system's trust store
    secret: SecretStr | None = None
    certificate: Path | None = None  # PEM: the app's certificate and its private key

    def __post_init__(self) -> None:
        if (self.secret is None) == (self.certificate is None):
            raise InputError("Entra ID: give the app exactly one credential, a client secret or a certificate")


def graph_settings(
    inventory: Inventory, secrets_file: Path | None = None, environ: Mapping[str, str] | None = None
) -> GraphSettings | None:
    """The tenant and app of ``inventory`` (None when it has neither ``entra:`` nor ``lab: graph:``)."""
    section = inventory.entra
    lab = inventory.lab.graph if inventory.lab is not None else None
    if section is None and lab is None:
        return None
    env = os.environ if environ is None else environ
    source: Mapping[str, str] = read_env_file(secrets_file) if secrets_file is not None else {}
    where = f"{inventory.path}: entra"
    tenant_id = (section.tenant_id if section else None) or (lab.tenant_id if lab else None)
    if not tenant_id:
        raise InputError(f"{where}: tenant_id is missing (the tenant's GUID)")
    client_id = (section.client_id if section else None) or source.get(CLIENT_ID_VAR) or env.get(CLIENT_ID_VAR)
    if not client_id:
        raise InputError(f"{where}: client_id is missing (or set {CLIENT_ID_VAR})")
    authority = (section.authority if section else None) or (lab.authority if lab else None)
    graph_url = (section.graph_url if section else None) or (lab.url if lab else None)
    bundle_text = (section.ca_bundle if section else None) or (
        inventory.data.defaults.ca_bundle if lab is not None else None
    )
    ca_bundle = _relative(inventory, bundle_text)
    if ca_bundle is not None and not ca_bundle.is_file():
        raise InputError(f"{where}: ca_bundle {ca_bundle} is not a file")
    certificate = _relative(inventory, section.certificate if section else None)
    secret_text = source.get(CLIENT_SECRET_VAR) or env.get(CLIENT_SECRET_VAR)
    if certificate is not None:
        if not certificate.is_file():
            raise InputError(f"{where}: certificate {certificate} is not a file")
        secret_text = None  # a certificate, when configured, is the credential
    elif not secret_text:
        where_secret = f"{secrets_file} or " if secrets_file else ""
        raise InputError(
            f"{where}: no client secret: set {CLIENT_SECRET_VAR} in {where_secret}the environment, or give "
            "entra: certificate: (a PEM file with the app's certificate and key)"
        )
    return GraphSettings(
        tenant_id=tenant_id.lower(),
        client_id=client_id.lower(),
        authority=authority or f"{PUBLIC_AUTHORITY}/{tenant_id}",
        graph_url=graph_url or PUBLIC_GRAPH,
        ca_bundle=ca_bundle,
        secret=SecretStr(secret_text) if secret_text else None,
        certificate=certificate,
    )


def _relative(inventory: Inventory, text: str | None) -> Path | None:
    if not text:
        return None
    path = Path(text)
    return path if path.is_absolute() else inventory.path.parent / path


def open_graph(inventory: Inventory, secrets_file: Path | None, why: str) -> GraphClient:
    """A Graph client for ``inventory``'s tenant and app; :class:`InputError` naming ``why`` (what needs it) when
    the inventory or the secrets do not say which tenant and app."""
    settings = graph_settings(inventory, secrets_file)
    if settings is None:
        raise InputError(f"{why}, but {inventory.path} has no entra: section (tenant_id, client_id)")
    if settings.secret is not None:
        register_secret(settings.secret.get_secret_value())
    # msal and httpx (and the requests msal brings) are imported here, as the device adapters are in
    # migrator.remote: only a wave that reaches Graph pays for them, not `pause`, `status` or `approve`.
    from migrator.cloud.client import GraphClient  # noqa: PLC0415

    return GraphClient(settings)
