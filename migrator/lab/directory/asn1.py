"""ldap3's pyasn1 definition of RFC 4511, made usable for *decoding* requests on the server side.

ldap3 defines the recursive ``Filter`` by assigning ``And.componentType = Filter()`` (and the same for ``Or``
and ``Not``) after the classes exist. pyasn1 copies ``componentType`` into each instance when it is created,
and the ``And()``/``Or()``/``Not()`` instances inside ``Filter`` were created before that assignment, so a decoder
given ``LDAPMessage()`` as its spec meets an ``and`` whose members have no type: it guesses, and loses the
filter's content (pyasn1 0.4) or fails ("Read 3 bytes instead of expected 6", pyasn1 0.5+). ldap3's client never
notices: it only encodes filters.

This module subclasses exactly those three types so that their member type is a ``Filter`` whose alternatives are
read when the decoder asks for them (a property, which wins over the copy pyasn1 keeps), and rebuilds the chain of
specs that contains them (``Filter`` → ``SearchRequest`` → ``ProtocolOp`` → ``LDAPMessage``). Every tag, name and
constraint stays ldap3's: only the recursion is tied. Use :data:`REQUEST_SPEC` to decode what a client sends.
"""

from __future__ import annotations

from typing import Any

from ldap3.protocol import rfc4511
from pyasn1.type.namedtype import NamedType, NamedTypes

_SPECS: dict[str, Any] = {}


def _replace(named_types: Any, replacements: dict[str, Any]) -> NamedTypes:
    """A copy of ``named_types`` with some components' types replaced, keeping each one's kind (optional, ...)."""
    return NamedTypes(*(type(nt)(nt.name, replacements.get(nt.name, nt.asn1Object)) for nt in named_types.namedTypes))


class _LateFilter(rfc4511.Filter):  # type: ignore[misc]
    """A Filter whose alternatives are looked up when the decoder needs them (after :class:`_Filter` exists)."""

    @property
    def componentType(self) -> Any:
        spec = _SPECS.get("filter")
        return spec.componentType if spec is not None else rfc4511.Filter.componentType


class _And(rfc4511.And):  # type: ignore[misc]
    componentType = _LateFilter()


class _Or(rfc4511.Or):  # type: ignore[misc]
    componentType = _LateFilter()


class _Not(rfc4511.Not):  # type: ignore[misc]
    componentType = NamedTypes(NamedType("innerNotFilter", _LateFilter()))


class _Filter(rfc4511.Filter):  # type: ignore[misc]
    componentType = _replace(rfc4511.Filter.componentType, {"and": _And(), "or": _Or(), "notFilter": _Not()})


_SPECS["filter"] = _Filter()


class _SearchRequest(rfc4511.SearchRequest):  # type: ignore[misc]
    componentType = _replace(rfc4511.SearchRequest.componentType, {"filter": _Filter()})


class _ProtocolOp(rfc4511.ProtocolOp):  # type: ignore[misc]
    componentType = _replace(rfc4511.ProtocolOp.componentType, {"searchRequest": _SearchRequest()})


class _LDAPMessage(rfc4511.LDAPMessage):  # type: ignore[misc]
    componentType = _replace(rfc4511.LDAPMessage.componentType, {"protocolOp": _ProtocolOp()})


def request_spec() -> Any:
    """A fresh spec to decode one ``LDAPMessage`` from a client."""
    return _LDAPMessage()
