"""One LDAP v3 connection to a lab domain controller, sans I/O: bytes in, bytes out.

Encoding and decoding use ldap3's own pyasn1 definition of RFC 4511 (:mod:`ldap3.protocol.rfc4511`:
``LDAPMessage``, ``BindRequest``, ``SearchRequest``, ...), the RFC 2696 paged-results value of
:mod:`ldap3.protocol.rfc2696`, and pyasn1's BER codec (ldap3's encoder, which writes BOOLEAN TRUE as 0xFF as
LDAP requires); message framing uses ldap3's ``compute_ldap_message_size``. No BER is written by hand here.
Requests are decoded with :func:`~migrator.lab.directory.asn1.request_spec`: ldap3's classes with the recursion
of ``Filter`` tied so that a decoder can follow it (see that module).

Theory of operation
-------------------
:meth:`LdapSession.receive_data` buffers bytes, cuts whole ``LDAPMessage`` PDUs, and hands each to a
``_process_<operation>`` handler, which returns the response PDUs. The session's state is who is bound
(``identity``: an entry of the directory, or None for anonymous), the NTLM exchange in progress and the paged
searches' cookies. After an unbind, or a PDU that cannot be decoded (answered with AD's notice of
disconnection), :attr:`closed` is true and the transport closes the connection.

What a DC does, and the lab with it:

=====================  ===================================================================================
bind, simple           over TLS (LDAPS) only: on a connection without TLS AD refuses it with
                       strongerAuthRequired (8), "00002028 ... The server requires binds to turn on integrity
                       checking if SSL\\TLS are not already active", as a DC does when "Domain controller:
                       LDAP server signing requirements" is "Require signing" (KB 4520412, the setting
                       Microsoft asks for). An empty name and password is an anonymous bind.
bind, NTLM (sicily)    sicilyPackageDiscovery / sicilyNegotiate / sicilyResponse ([MS-ADTS] 5.1.1.1.3), as
                       ldap3's ``authentication=NTLM`` sends it, checked by pyspnego's NTLM acceptor (the one
                       the lab's WinRM listeners use). The NTLM exchange is checked; signing and sealing of
                       the messages after the bind are not modelled.
bind, SASL             GSSAPI (RFC 4752, as ldap3's ``sasl_mechanism=KERBEROS`` sends it: Kerberos, then the
                       security-layer offer and choice, wrapped) and GSS-SPNEGO, checked with the lab's keytab
                       when the lab runs its KDCs; only "no security layer" is modelled. Without the KDCs, and
                       for other mechanisms, authMethodNotSupported "not modelled by the lab".
search                 the rootDSE anonymously; anything else needs a bind, else operationsError (1),
                       "000004DC ... a successful bind must be completed", as AD. Scopes base/one/sub, AD's
                       filters (:mod:`.filters`), attribute selection, typesOnly, sizeLimit, MaxPageSize 1000
                       (sizeLimitExceeded past it without paging) and the paged-results control
                       (1.2.840.113556.1.4.319) with cookies. Bases in the configuration and schema
                       partitions, or in another domain (a referral on AD), are not modelled.
modify                 member add/delete on groups, by Domain Admins only (insufficientAccessRights, 50);
                       duplicates entryAlreadyExists (68), missing members unwillingToPerform (53). All
                       changes of one request apply, or none.
unbind, abandon        as RFC 4511 (no response).
extended               "Who am I?" (RFC 4532); anything else unwillingToPerform "not modelled by the lab".
add, delete, modDN,    unwillingToPerform, "not modelled by the lab".
compare
=====================  ===================================================================================
"""

from __future__ import annotations

import datetime
import hmac
import itertools
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ldap3.protocol.rfc2696 import RealSearchControlValue
from ldap3.protocol.rfc4511 import (
    LDAPDN,
    LDAPOID,
    AddResponse,
    AttributeValue,
    BindResponse,
    CompareResponse,
    Control,
    Controls,
    DelResponse,
    ExtendedResponse,
    LDAPMessage,
    LDAPString,
    ModifyDNResponse,
    ModifyResponse,
    PartialAttribute,
    PartialAttributeList,
    ProtocolOp,
    ResponseName,
    ResponseValue,
    ResultCode,
    SearchResultDone,
    SearchResultEntry,
    ServerSaslCreds,
    Vals,
)
from ldap3.strategy.base import BaseStrategy
from ldap3.utils.asn1 import encode
from pyasn1.codec.ber import decoder
from pyasn1.error import PyAsn1Error

from migrator.lab.directory.asn1 import request_spec
from migrator.lab.directory.dit import (
    AUTH_METHOD_NOT_SUPPORTED,
    INSUFFICIENT_ACCESS_RIGHTS,
    INVALID_CREDENTIALS,
    NO_SUCH_OBJECT,
    OPERATIONS_ERROR,
    PROTOCOL_ERROR,
    SIZE_LIMIT_EXCEEDED,
    STRONGER_AUTH_REQUIRED,
    SUCCESS,
    UNAVAILABLE_CRITICAL_EXTENSION,
    UNWILLING_TO_PERFORM,
    Directory,
    DirectoryError,
    Entry,
    Value,
    dn_key,
    dn_of_dns_name,
    split_dn,
)
from migrator.lab.directory.filters import FilterEvaluator
from migrator.lab.server.auth import AcceptorFiles, AuthenticationFailed, NegotiateAcceptor

SASL_BIND_IN_PROGRESS = 14
# RFC 4752 3.1: the security layers a server offers, as a bit mask in the first octet of its last challenge.
SASL_NO_LAYER, SASL_INTEGRITY, SASL_CONFIDENTIALITY = 1, 2, 4
# What AD offers (all three) and its maximum buffer: ldap3 refuses a server that offers "no layer" alone
# (it compares the buffer size bytes with a str), and AD never does.
_SASL_OFFER = bytes([SASL_NO_LAYER | SASL_INTEGRITY | SASL_CONFIDENTIALITY]) + (10 * 1024 * 1024).to_bytes(3, "big")

PAGED_RESULTS = "1.2.840.113556.1.4.319"
WHO_AM_I = "1.3.6.1.4.1.4203.1.11.3"
NOTICE_OF_DISCONNECTION = "1.3.6.1.4.1.1466.20036"
MAX_PAGE_SIZE = 1000  # AD's MaxPageSize default (LDAP policies, [MS-ADTS] 3.1.1.3.4.6)
MAX_PDU = 10 * 1024 * 1024  # AD's MaxReceiveBuffer is 10 MB
NOT_MODELLED = "not modelled by the lab"

# AD's diagnostic texts (the codes clients and admins search for).
_NEEDS_BIND = (
    "000004DC: LdapErr: DSID-0C090A5C, comment: In order to perform this operation a successful bind must be "
    "completed on the connection., data 0, v4563"
)
_NEEDS_INTEGRITY = (
    "00002028: LdapErr: DSID-0C090259, comment: The server requires binds to turn on integrity checking if "
    "SSL\\TLS are not already active on the connection, data 0, v4563"
)
_BAD_CREDENTIALS = "80090308: LdapErr: DSID-0C09041C, comment: AcceptSecurityContext error, data 52e, v4563"
_NO_RIGHTS = "00002098: SecErr: DSID-03150F94, problem 4003 (INSUFF_ACCESS_RIGHTS), data 0"


# Constructed attributes ([MS-ADTS] 3.1.1.4.5): AD computes them on read and returns them only when a search names
# them, never for "*" or an empty attribute list. The lab stores their value on the entry and applies that rule.
CONSTRUCTED = frozenset({"msds-keyversionnumber"})


@dataclass
class DomainController:
    """What a session needs to know about its DC: the tree, its names, and the NTLM acceptor's user file."""

    tree: Directory
    dns_host_name: str  # DC01.corp.contoso.com
    forest: str
    site: str
    ntlm_user_file: Path
    # Set once the lab's KDCs run (:meth:`DirectoryServer.accept_kerberos`): SASL GSSAPI and GSS-SPNEGO binds
    # are then checked against the keytab holding ldap/<dc fqdn>.
    kerberos: AcceptorFiles | None = None
    clock: Callable[[], datetime.datetime] = field(default=lambda: datetime.datetime.now(datetime.UTC))

    def root_dse(self) -> Entry:
        base = self.tree.base_dn
        forest = dn_of_dns_name(self.forest)
        config = f"CN=Configuration,{forest}"
        short = self.dns_host_name.split(".", 1)[0]
        server = f"CN={short},CN=Servers,CN={self.site},CN=Sites,{config}"
        return Entry(
            "",
            {
                "currentTime": self.clock().strftime("%Y%m%d%H%M%S.0Z"),
                "subschemaSubentry": f"CN=Aggregate,CN=Schema,{config}",
                "dsServiceName": f"CN=NTDS Settings,{server}",
                "namingContexts": [base, config, f"CN=Schema,{config}", f"DC=DomainDnsZones,{base}"],
                "defaultNamingContext": base,
                "rootDomainNamingContext": forest,
                "configurationNamingContext": config,
                "schemaNamingContext": f"CN=Schema,{config}",
                "serverName": server,
                "dnsHostName": self.dns_host_name.lower(),
                "ldapServiceName": f"{self.tree.dns_name}:{short.lower()}$@{self.tree.dns_name.upper()}",
                # Only the control the lab implements is listed: a client must not be told of others.
                "supportedControl": [PAGED_RESULTS],
                "supportedExtension": [WHO_AM_I],
                "supportedLDAPVersion": ["3", "2"],
                "supportedLDAPPolicies": ["MaxPageSize", "MaxReceiveBuffer"],
                # What AD lists; GSSAPI/GSS-SPNEGO binds are refused until the lab has a KDC.
                "supportedSASLMechanisms": ["GSSAPI", "GSS-SPNEGO", "EXTERNAL", "DIGEST-MD5"],
                "supportedCapabilities": [
                    "1.2.840.113556.1.4.800",
                    "1.2.840.113556.1.4.1670",
                    "1.2.840.113556.1.4.1791",
                    "1.2.840.113556.1.4.1935",
                    "1.2.840.113556.1.4.2080",
                    "1.2.840.113556.1.4.2237",
                ],
                "isSynchronized": "TRUE",
                "isGlobalCatalogReady": "TRUE",
                "domainFunctionality": "7",
                "forestFunctionality": "7",
                "domainControllerFunctionality": "7",
            },
        )


@dataclass
class _Page:
    keys: list[str]
    offset: int
    attributes: list[str]
    types_only: bool


def _text(value: Any) -> str:
    return bytes(value).decode("utf-8", errors="replace")


def _result(cls: Any, code: int, message: str = "", matched: str | bytes = "") -> Any:
    response = cls()
    response["resultCode"] = ResultCode(code)
    response["matchedDN"] = LDAPDN(matched)
    response["diagnosticMessage"] = LDAPString(message)
    return response


@dataclass
class _SaslBind:
    mechanism: str
    acceptor: NegotiateAcceptor
    offered: bool = False  # GSSAPI: the security-layer offer was sent


class LdapSession:
    """One client connection (see the module docstring)."""

    def __init__(self, dc: DomainController, *, tls: bool) -> None:
        self.dc = dc
        self.tls = tls
        self.identity: Entry | None = None
        self.closed = False
        self._buffer = b""
        self._ntlm: NegotiateAcceptor | None = None
        self._sasl: _SaslBind | None = None
        self._pages: dict[bytes, _Page] = {}

    # ---- framing ----------------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[bytes]:
        """Feed bytes from the client; return the bytes to send back (whole PDUs)."""
        self._buffer += data
        out: list[bytes] = []
        while self._buffer and not self.closed:
            size = BaseStrategy.compute_ldap_message_size(self._buffer)
            if size == -1 and len(self._buffer) < 16:
                break
            if size == -1 or size > MAX_PDU:
                out.append(self._disconnect("the PDU is too large or malformed"))
                break
            if len(self._buffer) < size:
                break
            pdu, self._buffer = self._buffer[:size], self._buffer[size:]
            try:
                message, _ = decoder.decode(pdu, asn1Spec=request_spec())
            except (PyAsn1Error, ValueError, TypeError):
                out.append(self._disconnect("the PDU could not be decoded"))
                break
            out.extend(self._process(message))
        return out

    def _disconnect(self, why: str) -> bytes:
        """RFC 4511 4.4.1 notice of disconnection (AD sends it for undecodable PDUs), then close."""
        self.closed = True
        response = _result(ExtendedResponse, PROTOCOL_ERROR, f"00000057: LdapErr: DSID-0C090D8A, {why}")
        response["responseName"] = ResponseName(NOTICE_OF_DISCONNECTION)
        return self._pdu(0, "extendedResp", response)

    @staticmethod
    def _pdu(message_id: int, name: str, op: Any, controls: Controls | None = None) -> bytes:
        message = LDAPMessage()
        message["messageID"] = message_id
        choice = ProtocolOp()
        choice.setComponentByName(name, op)
        message["protocolOp"] = choice
        if controls is not None:
            message["controls"] = controls
        return bytes(encode(message))

    def _process(self, message: Any) -> list[bytes]:
        message_id = int(message["messageID"])
        op = message["protocolOp"]
        name = op.getName()
        request = op.getComponent()
        controls = message["controls"] if message["controls"].hasValue() else []
        handler = getattr(self, f"_process_{name}", None)
        if handler is None:
            return self._not_modelled(message_id, name)
        result: list[bytes] = handler(message_id, request, controls)
        return result

    def _not_modelled(self, message_id: int, name: str) -> list[bytes]:
        responses = {
            "addRequest": ("addResponse", AddResponse),
            "delRequest": ("delResponse", DelResponse),
            "modDNRequest": ("modDNResponse", ModifyDNResponse),
            "compareRequest": ("compareResponse", CompareResponse),
            "extendedReq": ("extendedResp", ExtendedResponse),
        }
        if name not in responses:
            return [self._disconnect(f"unexpected {name}")]
        reply, cls = responses[name]
        return [self._pdu(message_id, reply, _result(cls, UNWILLING_TO_PERFORM, f"{name}: {NOT_MODELLED}"))]

    # ---- bind -------------------------------------------------------------------------------------------

    def _bind_reply(
        self, message_id: int, code: int, message: str = "", matched: bytes | str = "", creds: bytes | None = None
    ) -> list[bytes]:
        response = _result(BindResponse, code, message, matched)
        if creds is not None:
            response["serverSaslCreds"] = ServerSaslCreds(creds)
        return [self._pdu(message_id, "bindResponse", response)]

    def _process_bindRequest(self, message_id: int, request: Any, _controls: Any) -> list[bytes]:
        auth = request["authentication"]
        kind = auth.getName()
        name = _text(request["name"])
        if kind not in {"sicilyResponse", "sicilyNegotiate"}:
            self.identity = None  # a new bind starts anonymous (RFC 4511 4.2.1)
        if kind == "simple":
            return self._simple_bind(message_id, name, bytes(auth.getComponent()))
        if kind == "sicilyPackageDiscovery":
            return self._bind_reply(message_id, SUCCESS, matched=b"NTLM")
        if kind == "sicilyNegotiate":
            self.identity = None
            self._ntlm = NegotiateAcceptor(self.dc.ntlm_user_file, None)
            try:
                challenge = self._ntlm.step(bytes(auth.getComponent())) or b""
            except AuthenticationFailed:
                self._ntlm = None
                return self._bind_reply(message_id, INVALID_CREDENTIALS, _BAD_CREDENTIALS)
            return self._bind_reply(message_id, SUCCESS, matched=challenge)
        if kind == "sicilyResponse":
            return self._ntlm_response(message_id, bytes(auth.getComponent()))
        sasl = auth.getComponent()
        mechanism = _text(sasl["mechanism"]).upper()
        credentials = bytes(sasl["credentials"]) if sasl["credentials"].hasValue() else b""
        if mechanism in ("GSSAPI", "GSS-SPNEGO") and self.dc.kerberos is not None:
            return self._sasl_step(message_id, mechanism, credentials)
        self._sasl = None
        reason = (
            "the lab was started without its Kerberos KDC"
            if mechanism in ("GSSAPI", "GSS-SPNEGO")
            else "only simple, NTLM, GSSAPI and GSS-SPNEGO binds are"
        )
        return self._bind_reply(
            message_id, AUTH_METHOD_NOT_SUPPORTED, f"SASL {mechanism} bind is {NOT_MODELLED}: {reason}"
        )

    def _sasl_step(self, message_id: int, mechanism: str, token: bytes) -> list[bytes]:
        """One round of a SASL bind with Kerberos.

        GSSAPI (RFC 4752): the Kerberos exchange (AP-REQ, AP-REP), then the server's wrapped offer of security
        layers and the client's wrapped choice; only "no security layer" is modelled (the messages after the
        bind are neither signed nor sealed), so a client choosing integrity or confidentiality is refused.
        GSS-SPNEGO ([MS-ADTS] 5.1.1.1.2): SPNEGO tokens until the context is complete, and no layer negotiation.
        """
        assert self.dc.kerberos is not None
        bind = self._sasl
        if bind is None or bind.mechanism != mechanism:
            protocol = "kerberos" if mechanism == "GSSAPI" else "negotiate"
            bind = self._sasl = _SaslBind(mechanism, NegotiateAcceptor(self.dc.kerberos, None, protocol=protocol))
        acceptor = bind.acceptor
        try:
            if not acceptor.complete:
                out = acceptor.step(token) or b""
                if not acceptor.complete:
                    return self._bind_reply(message_id, SASL_BIND_IN_PROGRESS, creds=out)
                if mechanism == "GSS-SPNEGO":
                    return self._sasl_done(message_id, acceptor, out)
                if out:  # the AP-REP of mutual authentication: the client answers with an empty token
                    return self._bind_reply(message_id, SASL_BIND_IN_PROGRESS, creds=out)
            if not bind.offered:
                bind.offered = True
                offer = acceptor.context.wrap(_SASL_OFFER, encrypt=False).data
                return self._bind_reply(message_id, SASL_BIND_IN_PROGRESS, creds=offer)
            choice = acceptor.context.unwrap(token).data
        except Exception as err:  # AuthenticationFailed, or pyspnego's own tree from wrap/unwrap: bad credentials
            self._sasl = None
            return self._bind_reply(message_id, INVALID_CREDENTIALS, f"{_BAD_CREDENTIALS} ({type(err).__name__})")
        if len(choice) < 4 or choice[0] != SASL_NO_LAYER:
            self._sasl = None
            return self._bind_reply(
                message_id, AUTH_METHOD_NOT_SUPPORTED, f"a SASL security layer other than none is {NOT_MODELLED}"
            )
        return self._sasl_done(message_id, acceptor, None)

    def _sasl_done(self, message_id: int, acceptor: NegotiateAcceptor, out: bytes | None) -> list[bytes]:
        self._sasl = None
        user = acceptor.kerberos_user
        entry = self.dc.tree.find_account(user) if user else None
        if entry is None:
            return self._bind_reply(message_id, INVALID_CREDENTIALS, _BAD_CREDENTIALS)
        self.identity = entry
        return self._bind_reply(message_id, SUCCESS, creds=out)

    def _simple_bind(self, message_id: int, name: str, password: bytes) -> list[bytes]:
        if not name and not password:
            return self._bind_reply(message_id, SUCCESS)  # anonymous
        if not self.tls:
            return self._bind_reply(message_id, STRONGER_AUTH_REQUIRED, _NEEDS_INTEGRITY)
        entry = self.dc.tree.find_account(name)
        stored = self.dc.tree.passwords.get(entry.key) if entry is not None else None
        if entry is None or stored is None or not hmac.compare_digest(stored.encode(), password):
            return self._bind_reply(message_id, INVALID_CREDENTIALS, _BAD_CREDENTIALS)
        self.identity = entry
        return self._bind_reply(message_id, SUCCESS)

    def _ntlm_response(self, message_id: int, token: bytes) -> list[bytes]:
        acceptor, self._ntlm = self._ntlm, None
        if acceptor is None:
            return self._bind_reply(message_id, OPERATIONS_ERROR, "sicilyResponse without sicilyNegotiate")
        try:
            acceptor.step(token)
        except AuthenticationFailed:
            return self._bind_reply(message_id, INVALID_CREDENTIALS, _BAD_CREDENTIALS)
        domain, user = acceptor.client_user()
        entry = self.dc.tree.find_account(f"{domain}\\{user}" if domain else user)
        if not acceptor.complete or entry is None:
            return self._bind_reply(message_id, INVALID_CREDENTIALS, _BAD_CREDENTIALS)
        self.identity = entry
        return self._bind_reply(message_id, SUCCESS)

    # ---- unbind, abandon, extended ----------------------------------------------------------------------

    def _process_unbindRequest(self, _message_id: int, _request: Any, _controls: Any) -> list[bytes]:
        self.closed = True
        return []

    def _process_abandonRequest(self, _message_id: int, _request: Any, _controls: Any) -> list[bytes]:
        return []  # every operation completes before the next PDU is read: nothing is left to abandon

    def _process_extendedReq(self, message_id: int, request: Any, _controls: Any) -> list[bytes]:
        name = _text(request["requestName"])
        if name != WHO_AM_I:
            return self._not_modelled(message_id, "extendedReq")
        response = _result(ExtendedResponse, SUCCESS)
        if self.identity is not None:
            sam = self.identity.text("sAMAccountName")
            response["responseValue"] = ResponseValue(f"u:{self.dc.tree.netbios}\\{sam}".encode())
        return [self._pdu(message_id, "extendedResp", response)]

    # ---- search -----------------------------------------------------------------------------------------

    def _done(self, message_id: int, code: int, message: str = "", matched: str = "", controls: Any = None) -> bytes:
        return self._pdu(message_id, "searchResDone", _result(SearchResultDone, code, message, matched), controls)

    def _process_searchRequest(self, message_id: int, request: Any, controls: Any) -> list[bytes]:
        base = _text(request["baseObject"])
        scope = int(request["scope"])
        attributes = [_text(a) for a in request["attributes"]]
        types_only = bool(request["typesOnly"])
        paging: tuple[int, bytes] | None = None
        for control in controls:
            oid = _text(control["controlType"])
            if oid == PAGED_RESULTS:
                try:
                    value, _ = decoder.decode(bytes(control["controlValue"]), asn1Spec=RealSearchControlValue())
                    paging = (int(value["size"]), bytes(value["cookie"]))
                except (PyAsn1Error, ValueError, TypeError):
                    return [self._done(message_id, PROTOCOL_ERROR, "the paged results control value is malformed")]
            elif bool(control["criticality"]):
                return [self._done(message_id, UNAVAILABLE_CRITICAL_EXTENSION, f"control {oid} is {NOT_MODELLED}")]
        if not base and scope == 0:
            root = self.dc.root_dse()
            try:
                matched = FilterEvaluator(self.dc.tree).matches(root, request["filter"])
            except DirectoryError as err:
                return [self._done(message_id, err.code, err.message)]
            entries = [self._entry_pdu(message_id, root, attributes, types_only)] if matched else []
            return [*entries, self._done(message_id, SUCCESS)]
        if self.identity is None:
            return [self._done(message_id, OPERATIONS_ERROR, _NEEDS_BIND)]
        tree = self.dc.tree
        with tree.lock:
            if paging is not None and paging[1]:
                page = self._pages.pop(paging[1], None)
                if page is None:
                    return [
                        self._done(message_id, UNWILLING_TO_PERFORM, "00002024: the paged search cookie is unknown")
                    ]
                keys = page.keys
                offset = page.offset
            else:
                outside = self._outside_naming_context(base)
                if outside:
                    return [self._done(message_id, UNWILLING_TO_PERFORM, outside)]
                root_entry = tree.get(base)
                if root_entry is None:
                    return [self._done(message_id, NO_SUCH_OBJECT, self._no_object(base), self._best_match(base))]
                evaluator = FilterEvaluator(tree)
                pinned = evaluator.indexed(request["filter"]) if scope == 2 else None
                if scope == 0:
                    candidates = [root_entry]
                elif scope == 1:
                    candidates = tree.children(base)
                elif pinned is not None:  # sAMAccountName pinned: its index, within the base
                    under = dn_key(base)
                    candidates = [e for e in pinned if e.key == under or e.key.endswith("," + under)]
                else:
                    candidates = list(tree.subtree(base))
                try:
                    keys = [e.key for e in candidates if evaluator.matches(e, request["filter"])]
                except DirectoryError as err:
                    return [self._done(message_id, err.code, err.message)]
                offset = 0
            size_limit = int(request["sizeLimit"])
            if paging is None:
                limit = MAX_PAGE_SIZE if not size_limit else min(size_limit, MAX_PAGE_SIZE)
                chosen = keys[:limit]
                out = self._entries(message_id, chosen, attributes, types_only)
                if len(keys) > limit:
                    message = "" if size_limit and size_limit <= MAX_PAGE_SIZE else "MaxPageSize exceeded"
                    return [*out, self._done(message_id, SIZE_LIMIT_EXCEEDED, message)]
                return [*out, self._done(message_id, SUCCESS)]
            page_size = min(max(paging[0], 1), MAX_PAGE_SIZE)
            chosen = keys[offset : offset + page_size]
            out = self._entries(message_id, chosen, attributes, types_only)
            cookie = b""
            if offset + page_size < len(keys):
                cookie = secrets.token_bytes(12)
                self._pages[cookie] = _Page(keys, offset + page_size, attributes, types_only)
            return [*out, self._done(message_id, SUCCESS, controls=self._paged_control(cookie))]

    @staticmethod
    def _paged_control(cookie: bytes) -> Controls:
        value = RealSearchControlValue()
        value["size"] = 0  # AD does not estimate the result size
        value["cookie"] = cookie
        control = Control()
        control["controlType"] = LDAPOID(PAGED_RESULTS)
        control["controlValue"] = bytes(encode(value))
        controls = Controls()
        controls.setComponentByPosition(0, control)
        return controls

    def _outside_naming_context(self, base: str) -> str:
        """Why a base outside the domain naming context is refused ("" when it is inside): the configuration and
        schema partitions and referrals to other domains are not modelled."""
        key = dn_key(base)
        domain = dn_key(self.dc.tree.base_dn)
        forest = dn_key(dn_of_dns_name(self.dc.forest))
        if key.endswith("cn=configuration," + forest) or key == "cn=configuration," + forest:
            return f"the configuration and schema naming contexts are {NOT_MODELLED}"
        if key == domain or key.endswith("," + domain):
            if key.endswith("dc=domaindnszones," + domain) or key == "dc=domaindnszones," + domain:
                return f"the DomainDnsZones naming context is {NOT_MODELLED}"
            return ""
        return f"{base!r} is outside {self.dc.tree.base_dn}: referrals to other domains are {NOT_MODELLED}"

    def _no_object(self, base: str) -> str:
        return (
            f"0000208D: NameErr: DSID-0310028B, problem 2001 (NO_OBJECT), data 0, best match of:\n"
            f"\t'{self._best_match(base)}'\n"
        )

    def _best_match(self, dn: str) -> str:
        rdns = split_dn(dn)
        for start in range(1, len(rdns) + 1):
            candidate = self.dc.tree.get(",".join(rdns[start:]))
            if candidate is not None:
                return candidate.dn
        return ""

    def _entries(self, message_id: int, keys: list[str], attributes: list[str], types_only: bool) -> list[bytes]:
        out = []
        for key in keys:
            entry = self.dc.tree.get(key)
            if entry is not None:
                out.append(self._entry_pdu(message_id, entry, attributes, types_only))
        return out

    def _entry_pdu(self, message_id: int, entry: Entry, attributes: list[str], types_only: bool) -> bytes:
        wanted = {a.casefold() for a in attributes}
        everything = not wanted or "*" in wanted
        listing = PartialAttributeList()
        position = itertools.count()
        for attribute in entry.attributes():
            name = attribute.name.casefold()
            if name not in wanted and (not everything or name in CONSTRUCTED):
                continue
            partial = PartialAttribute()
            partial["type"] = attribute.name
            vals = Vals()
            if not types_only:
                for index, value in enumerate(attribute.values):
                    vals.setComponentByPosition(index, AttributeValue(_bytes(value)))
            partial["vals"] = vals
            listing.setComponentByPosition(next(position), partial)
        response = SearchResultEntry()
        response["object"] = LDAPDN(entry.dn)
        response["attributes"] = listing
        return self._pdu(message_id, "searchResEntry", response)

    # ---- modify -----------------------------------------------------------------------------------------

    def _process_modifyRequest(self, message_id: int, request: Any, _controls: Any) -> list[bytes]:
        def reply(code: int, message: str = "", matched: str = "") -> list[bytes]:
            return [self._pdu(message_id, "modifyResponse", _result(ModifyResponse, code, message, matched))]

        if self.identity is None:
            return reply(OPERATIONS_ERROR, _NEEDS_BIND)
        tree = self.dc.tree
        target_dn = _text(request["object"])
        with tree.lock:
            target = tree.get(target_dn)
            if target is None:
                return reply(NO_SUCH_OBJECT, self._no_object(target_dn), self._best_match(target_dn))
            if not tree.is_domain_admin(self.identity.dn):
                return reply(INSUFFICIENT_ACCESS_RIGHTS, _NO_RIGHTS)
            done: list[tuple[str, str]] = []
            try:
                for change in request["changes"]:
                    operation = int(change["operation"])  # 0 add, 1 delete, 2 replace
                    attribute = _text(change["modification"]["type"])
                    values = [_text(v) for v in change["modification"]["vals"]]
                    if attribute.casefold() != "member" or not target.is_a("group") or operation == 2 or not values:
                        raise DirectoryError(
                            UNWILLING_TO_PERFORM,
                            f"modify of {attribute!r} ({['add', 'delete', 'replace'][operation]}) is {NOT_MODELLED}: "
                            "only adding and deleting group members is",
                        )
                    for value in values:
                        if operation == 0:
                            tree.add_member(target, value)
                            done.append(("add", value))
                        else:
                            tree.remove_member(target, value)
                            done.append(("delete", value))
            except DirectoryError as err:
                for action, value in reversed(done):  # one modify is atomic in AD
                    if action == "add":
                        tree.remove_member(target, value)
                    else:
                        tree.add_member(target, value)
                return reply(err.code, err.message)
        return reply(SUCCESS)


def _bytes(value: Value) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")
