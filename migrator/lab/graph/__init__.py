"""The lab's Entra ID tenant: Microsoft Graph v1.0 and the identity platform's token endpoint over HTTPS.

:mod:`~migrator.lab.graph.tenant` holds what the tenant knows and does (Hello methods, device objects, groups,
Intune check-ins), :mod:`~migrator.lab.graph.tokens` the client credentials flow and the token checks,
:mod:`~migrator.lab.graph.server` the HTTP surface (Starlette on uvicorn, with the lab CA's certificate).
"""

from migrator.lab.graph.server import GraphServer
from migrator.lab.graph.tenant import PROFILES, GraphTenant, normal_key_id
from migrator.lab.graph.tokens import DEFAULT_ROLES, GRAPH_DEFAULT_SCOPE

__all__ = ["DEFAULT_ROLES", "GRAPH_DEFAULT_SCOPE", "PROFILES", "GraphServer", "GraphTenant", "normal_key_id"]
