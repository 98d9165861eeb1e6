"""The KRB-ERROR token a Windows acceptor answers a refused AP-REQ with, for the lab's ``clock_skew`` fault.

When a computer's clock is more than the allowed 5 minutes away from the authenticator's time, its Kerberos SSP
refuses the AP-REQ with KRB_AP_ERR_SKEW and, the client having asked for mutual authentication, returns a KRB-ERROR
as the context token (RFC 4121 4.1: the error token, TOK_ID 03 00), inside a SPNEGO negTokenResp with negState
``reject`` when the client spoke SPNEGO (RFC 4178 4.2.2). WinRM sends it in the 401's ``WWW-Authenticate``. The
client's GSS-API library reads the error code from it: MIT's ``init_sec_context`` fails with "Clock skew too
great".

Encoded with pyasn1 (the lab's ASN.1 library) from the RFCs' definitions: KRB-ERROR (RFC 4120 5.9.1),
PrincipalName (5.2.2), KerberosTime (5.2.3), the GSS InitialContextToken framing (RFC 2743 3.1) and NegTokenResp.
"""

from __future__ import annotations

import datetime

from pyasn1.codec.der import encoder
from pyasn1.type import char, namedtype, tag, univ, useful

KRB5_OID = "1.2.840.113554.1.2.2"  # RFC 1964 / 4121
KRB5_ERROR_TOK_ID = b"\x03\x00"  # RFC 4121 4.1: KRB_ERROR
SPNEGO_OID_DER = bytes.fromhex("06062b0601050502")  # 1.3.6.1.5.5.2 (RFC 4178), as it appears in a client's token
KRB_AP_ERR_SKEW = 37  # RFC 4120 7.5.9
NT_SRV_INST = 2  # RFC 4120 6.2: a service and an instance (HTTP/host)
SPNEGO_REJECT = 2  # RFC 4178 4.2.2 negState
MAX_SKEW = 300.0  # seconds: Kerberos' default clock skew allowance (Windows: "Maximum tolerance ... 5 minutes")


def _ctx(number: int) -> tag.Tag:
    """A context tag [n]; pyasn1 makes an explicit tag constructed."""
    return tag.Tag(tag.tagClassContext, tag.tagFormatSimple, number)


class PrincipalName(univ.Sequence):  # type: ignore[misc]
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("name-type", univ.Integer().subtype(explicitTag=_ctx(0))),
        namedtype.NamedType(
            "name-string", univ.SequenceOf(componentType=char.GeneralString()).subtype(explicitTag=_ctx(1))
        ),
    )


class KrbError(univ.Sequence):  # type: ignore[misc]
    """KRB-ERROR ::= [APPLICATION 30] SEQUENCE { pvno [0], msg-type [1], stime [4], susec [5], error-code [6],
    realm [9], sname [10] } (the optional fields a skew error leaves out are omitted)."""

    tagSet = univ.Sequence.tagSet.tagExplicitly(tag.Tag(tag.tagClassApplication, tag.tagFormatConstructed, 30))
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("pvno", univ.Integer().subtype(explicitTag=_ctx(0))),
        namedtype.NamedType("msg-type", univ.Integer().subtype(explicitTag=_ctx(1))),
        namedtype.NamedType("stime", useful.GeneralizedTime().subtype(explicitTag=_ctx(4))),
        namedtype.NamedType("susec", univ.Integer().subtype(explicitTag=_ctx(5))),
        namedtype.NamedType("error-code", univ.Integer().subtype(explicitTag=_ctx(6))),
        namedtype.NamedType("realm", char.GeneralString().subtype(explicitTag=_ctx(9))),
        namedtype.NamedType("sname", PrincipalName().subtype(explicitTag=_ctx(10))),
    )


class InitialContextToken(univ.Sequence):  # type: ignore[misc]
    """RFC 2743 3.1: [APPLICATION 0] IMPLICIT SEQUENCE { thisMech OID, innerToken ANY } (the mechanism's bytes)."""

    tagSet = univ.Sequence.tagSet.tagImplicitly(tag.Tag(tag.tagClassApplication, tag.tagFormatConstructed, 0))
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("thisMech", univ.ObjectIdentifier()),
        namedtype.NamedType("innerToken", univ.Any()),
    )


class NegTokenResp(univ.Sequence):  # type: ignore[misc]
    """RFC 4178 4.2.2: negState [0] ENUMERATED, supportedMech [1] OID, responseToken [2] OCTET STRING; tagged [1],
    its alternative of the NegotiationToken CHOICE."""

    tagSet = univ.Sequence.tagSet.tagExplicitly(_ctx(1))
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("negState", univ.Enumerated().subtype(explicitTag=_ctx(0))),
        namedtype.NamedType("supportedMech", univ.ObjectIdentifier().subtype(explicitTag=_ctx(1))),
        namedtype.NamedType("responseToken", univ.OctetString().subtype(explicitTag=_ctx(2))),
    )


def skew_error_token(service: str, host: str, realm: str, device_time: datetime.datetime) -> bytes:
    """The GSS error token (RFC 4121 4.1) carrying KRB_AP_ERR_SKEW, the device's time as ``stime``."""
    error = KrbError()
    error["pvno"] = 5
    error["msg-type"] = 30
    error["stime"] = device_time.astimezone(datetime.UTC).strftime("%Y%m%d%H%M%SZ")
    error["susec"] = device_time.microsecond
    error["error-code"] = KRB_AP_ERR_SKEW
    error["realm"] = realm.upper()
    error["sname"]["name-type"] = NT_SRV_INST  # filled in place: the component carries its [10] tag
    error["sname"]["name-string"].extend([char.GeneralString(service), char.GeneralString(host.lower())])
    token = InitialContextToken()
    token["thisMech"] = univ.ObjectIdentifier(KRB5_OID)
    token["innerToken"] = univ.Any(KRB5_ERROR_TOK_ID + encoder.encode(error))
    return bytes(encoder.encode(token))


def spnego_reject(mech_token: bytes) -> bytes:
    """``mech_token`` in a negTokenResp with negState reject (RFC 4178 4.2.2), as a SPNEGO acceptor answers."""
    response = NegTokenResp()
    response["negState"] = SPNEGO_REJECT
    response["supportedMech"] = KRB5_OID
    response["responseToken"] = mech_token
    return bytes(encoder.encode(response))


def is_spnego(client_token: bytes) -> bool:
    """Whether the client's first token was SPNEGO (its mechanism OID), not a raw Kerberos AP-REQ."""
    return SPNEGO_OID_DER in client_token[:24]
