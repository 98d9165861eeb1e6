"""The entra: section and the app's credentials: clear errors naming the file and field, the secret never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrator.cloud.settings import CLIENT_SECRET_VAR, PUBLIC_AUTHORITY, PUBLIC_GRAPH, graph_settings
from migrator.errors import InputError
from migrator.inventory import load_inventory
from migrator.yamlsource import InputFileError

TENANT = "8e2a1b4c-3f5d-4e6a-9b7c-1d2e3f4a5b6c"
CLIENT = "0b4e9c1f-6a2d-4c3b-9e8f-7a6b5c4d3e2f"


def _inventory(tmp_path: Path, entra: str) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(f"devices:\n  - {{name: PC-1, address: 127.0.0.1}}\n{entra}")
    return path


def test_public_defaults_and_the_secret_from_the_environment(tmp_path: Path) -> None:
    """tenant and client id are enough: Microsoft's authority and Graph by default; the secret is never in repr."""
    inventory = load_inventory(_inventory(tmp_path, f"entra: {{tenant_id: {TENANT.upper()}, client_id: {CLIENT}}}\n"))
    settings = graph_settings(inventory, environ={CLIENT_SECRET_VAR: "s3cret-value"})
    assert settings is not None
    assert settings.tenant_id == TENANT and settings.authority == f"{PUBLIC_AUTHORITY}/{TENANT}"
    assert settings.graph_url == PUBLIC_GRAPH and settings.ca_bundle is None
    assert "s3cret-value" not in repr(settings)


def test_no_entra_section_means_no_graph(tmp_path: Path) -> None:
    assert graph_settings(load_inventory(_inventory(tmp_path, "")), environ={}) is None


def test_a_tenant_that_is_not_a_guid_is_refused_with_its_line(tmp_path: Path) -> None:
    with pytest.raises(InputFileError) as caught:
        load_inventory(_inventory(tmp_path, "entra:\n  tenant_id: contoso.onmicrosoft.com\n"))
    assert "inventory.yaml, line 4" in str(caught.value) and "tenant_id" in str(caught.value)


@pytest.mark.parametrize(
    ("entra", "environ", "message"),
    [
        (f"entra: {{tenant_id: {TENANT}}}\n", {CLIENT_SECRET_VAR: "x"}, "client_id is missing"),
        (f"entra: {{tenant_id: {TENANT}, client_id: {CLIENT}}}\n", {}, "no client secret"),
        (f"entra: {{tenant_id: {TENANT}, client_id: {CLIENT}, certificate: app.pem}}\n", {}, "app.pem is not a file"),
    ],
)
def test_missing_pieces_are_named(tmp_path: Path, entra: str, environ: dict[str, str], message: str) -> None:
    inventory = load_inventory(_inventory(tmp_path, entra))
    with pytest.raises(InputError, match=message) as caught:
        graph_settings(inventory, environ=environ)
    assert "inventory.yaml: entra" in str(caught.value)
