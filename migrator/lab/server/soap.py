"""SOAP envelopes of WS-Management as Windows' WinRM service writes them: parse a request, build a response.

Sans-IO: bytes in, :class:`WSManRequest` out; elements in, bytes out. Faults are exceptions
(:class:`WSManFault`) carrying everything needed to render the SOAP 1.2 fault Windows returns
([MS-WSMV] 2.2.4.12 WSManFault, DSP0226 section 14), including the Windows error code that pywinrm and
pypsrp read from ``wsmanfault:WSManFault/@Code``.
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "p": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
    "x": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "f": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
    "e": "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/MSFT_WmiError",
    "cim": "http://schemas.dmtf.org/wbem/wscim/1/common",
    "xml": "http://www.w3.org/XML/1998/namespace",
    "pwsh": "http://schemas.microsoft.com/powershell",
}
for _prefix, _uri in NS.items():
    if _prefix != "xml":
        ET.register_namespace(_prefix, _uri)

ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
FAULT_ACTION = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
ADDRESSING_FAULT_ACTION = "http://schemas.xmlsoap.org/ws/2004/08/addressing/fault"

# Windows' defaults ([MS-WSMV] 2.2.4.41 / `winrm get winrm/config`): MaxEnvelopeSizekb=500, MaxTimeoutms=60000.
DEFAULT_MAX_ENVELOPE_SIZE = 512000
DEFAULT_OPERATION_TIMEOUT = 60.0

# Windows error codes (wsmerror.h) that clients look at.
ERROR_WSMAN_OPERATION_TIMEDOUT = 0x80338029  # pywinrm/pypsrp retry Receive on exactly this code
ERROR_WSMAN_INVALID_SELECTORS = 0x8033805B  # "the shell was not found on the server"
ERROR_WSMAN_QUOTA_MAX_OPERATIONS = 0x803381A6  # MaxConcurrentOperationsPerUser exceeded
ERROR_WSMAN_ACTION_NOT_SUPPORTED = 0x80338011
ERROR_WSMAN_DESTINATION_UNREACHABLE = 0x80338010  # unknown resource URI / plugin
ERROR_WSMAN_BAD_REQUEST = 0x803380E7  # malformed envelope ("The WS-Management service cannot process ...")
E_FAIL = 0x80004005

_DURATION = re.compile(r"^PT(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?$")


def _q(prefix: str, local: str) -> str:
    return f"{{{NS[prefix]}}}{local}"


class WSManFault(Exception):
    """A SOAP fault to return to the client (HTTP 500 unless ``http_status`` says otherwise).

    ``reason`` is the public text Windows puts in ``s:Reason`` and ``f:Message``; it never holds secrets.
    """

    def __init__(
        self,
        subcode: str,
        code: int,
        reason: str,
        *,
        soap_code: str = "s:Receiver",
        detail: str | None = None,
        wmi_error: bool = False,
        http_status: int = 500,
        action: str = FAULT_ACTION,
    ) -> None:
        super().__init__(f"{subcode} ({code:#x}): {reason}")
        self.subcode = subcode
        self.code = code
        self.reason = reason
        self.soap_code = soap_code
        self.detail = detail  # a wsman fault detail URI (w:FaultDetail), e.g. .../FaultDetail/InvalidValue
        self.wmi_error = wmi_error  # also emit an MSFT_WmiError detail (quota faults carry one on Windows)
        self.http_status = http_status
        self.action = action


def operation_timed_out() -> WSManFault:
    """The fault Windows answers a Receive with when nothing arrived within OperationTimeout."""
    return WSManFault(
        "w:TimedOut",
        ERROR_WSMAN_OPERATION_TIMEDOUT,
        "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.",
    )


def shell_not_found(shell_id: str) -> WSManFault:
    return WSManFault(
        "w:InvalidSelectors",
        ERROR_WSMAN_INVALID_SELECTORS,
        f"The request for the Windows Remote Shell with ShellId {shell_id} failed because the shell was not found "
        "on the server. Possible causes are: the specified ShellId is incorrect or the shell no longer exists on "
        "the server. Provide the correct ShellId or create a new shell and retry the operation.",
        soap_code="s:Sender",
        detail="http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/UnexpectedSelectors",
    )


def quota_max_operations(limit: int = 1500) -> WSManFault:
    return WSManFault(
        "w:QuotaLimit",
        ERROR_WSMAN_QUOTA_MAX_OPERATIONS,
        f"The WS-Management service cannot process the request. This user is allowed a maximum number of {limit} "
        "concurrent operations, which has been exceeded. Close existing operations for this user, or raise the "
        "quota for this user.",
        wmi_error=True,
    )


def internal_error(
    code: int = E_FAIL, reason: str = "The WS-Management service cannot process the request."
) -> WSManFault:
    return WSManFault("w:InternalError", code, reason)


def bad_request(reason: str) -> WSManFault:
    return WSManFault(
        "w:SchemaValidationError" if "schema" in reason.lower() else "w:InvalidMessageInformationHeader",
        ERROR_WSMAN_BAD_REQUEST,
        reason,
        soap_code="s:Sender",
    )


def action_not_supported(action: str) -> WSManFault:
    return WSManFault(
        "a:ActionNotSupported",
        ERROR_WSMAN_ACTION_NOT_SUPPORTED,
        f"The WS-Management service cannot process the request because the action {action!r} is not supported.",
        soap_code="s:Sender",
        action=ADDRESSING_FAULT_ACTION,
    )


def destination_unreachable(resource_uri: str) -> WSManFault:
    return WSManFault(
        "w:DestinationUnreachable",
        ERROR_WSMAN_DESTINATION_UNREACHABLE,
        f"The WS-Management service cannot process the request. The resource URI ({resource_uri}) was not found "
        "in the WS-Management catalog.",
        soap_code="s:Sender",
    )


def parse_duration(text: str | None, default: float) -> float:
    """An xs:duration of the PTnHnMnS form (what WinRM clients send) in seconds."""
    if not text:
        return default
    match = _DURATION.match(text.strip())
    if not match or not any(match.groupdict().values()):
        raise bad_request(f"The OperationTimeout value {text!r} is not a valid xs:duration.")
    hours, minutes, seconds = (float(match.group(g) or 0) for g in ("h", "m", "s"))
    return hours * 3600 + minutes * 60 + seconds


@dataclass
class WSManRequest:
    """One parsed WS-Man request: the addressing headers the server acts on and the body element."""

    action: str
    resource_uri: str
    message_id: str
    to: str = ""
    selectors: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    max_envelope_size: int = DEFAULT_MAX_ENVELOPE_SIZE
    operation_timeout: float = DEFAULT_OPERATION_TIMEOUT
    locale: str = "en-US"
    body: ET.Element | None = None

    @property
    def action_name(self) -> str:
        """The last path segment of the action URI (``Create``, ``Receive``, ...)."""
        return self.action.rsplit("/", 1)[-1]


def parse_request(data: bytes) -> WSManRequest:
    """Parse a SOAP envelope; a malformed one raises the fault Windows would send."""
    try:
        # The payload comes from an authenticated admin only; ElementTree expands no external entities.
        root = ET.fromstring(data)  # noqa: S314
    except ET.ParseError as err:
        raise bad_request(
            f"The WS-Management service cannot process the request because the XML is invalid: {err}"
        ) from None
    if root.tag != _q("s", "Envelope"):
        raise bad_request(
            "The WS-Management service cannot process the request: the root element is not a SOAP 1.2 Envelope."
        )
    header = root.find("s:Header", NS)
    if header is None:
        raise bad_request("The WS-Management service cannot process the request: the SOAP Header is missing.")

    def text(path: str) -> str | None:
        node = header.find(path, NS)
        return node.text.strip() if node is not None and node.text else None

    action = text("a:Action")
    message_id = text("a:MessageID")
    if not action or not message_id:
        raise bad_request(
            "The WS-Management service cannot process the request: wsa:Action or wsa:MessageID is missing."
        )
    request = WSManRequest(
        action=action,
        resource_uri=text("w:ResourceURI") or "",
        message_id=message_id,
        to=text("a:To") or "",
    )
    size = text("w:MaxEnvelopeSize")
    if size:
        try:
            request.max_envelope_size = int(size)
        except ValueError:
            raise bad_request(f"The MaxEnvelopeSize value {size!r} is not a valid integer.") from None
    request.operation_timeout = parse_duration(text("w:OperationTimeout"), DEFAULT_OPERATION_TIMEOUT)
    locale = header.find("w:Locale", NS)
    if locale is not None:
        request.locale = locale.get(_q("xml", "lang"), "en-US")
    for selector in header.findall("w:SelectorSet/w:Selector", NS):
        request.selectors[selector.get("Name", "")] = (selector.text or "").strip()
    for option in header.findall("w:OptionSet/w:Option", NS):
        request.options[option.get("Name", "")] = (option.text or "").strip()
    body = root.find("s:Body", NS)
    if body is not None and len(body):
        request.body = body[0]
    return request


def _envelope(action: str, relates_to: str) -> tuple[ET.Element, ET.Element]:
    envelope = ET.Element(_q("s", "Envelope"))
    header = ET.SubElement(envelope, _q("s", "Header"))
    ET.SubElement(header, _q("a", "Action")).text = action
    ET.SubElement(header, _q("a", "MessageID")).text = f"uuid:{str(uuid.uuid4()).upper()}"
    ET.SubElement(header, _q("a", "To")).text = ANONYMOUS
    ET.SubElement(header, _q("a", "RelatesTo")).text = relates_to
    body = ET.SubElement(envelope, _q("s", "Body"))
    return envelope, body


def build_response(request: WSManRequest, *body_children: ET.Element) -> bytes:
    """The ``<Action>Response`` envelope for ``request`` with the given body children."""
    envelope, body = _envelope(request.action + "Response", request.message_id)
    for child in body_children:
        body.append(child)
    data: bytes = ET.tostring(envelope, encoding="utf-8", xml_declaration=False)
    return data


def build_fault(fault: WSManFault, relates_to: str, machine: str) -> bytes:
    """Render ``fault`` like WinRM: SOAP code/subcode, reason, and a ``wsmanfault:WSManFault`` detail."""
    envelope, body = _envelope(fault.action, relates_to or f"uuid:{uuid.UUID(int=0)}")
    fault_el = ET.SubElement(body, _q("s", "Fault"))
    code = ET.SubElement(fault_el, _q("s", "Code"))
    ET.SubElement(code, _q("s", "Value")).text = fault.soap_code
    subcode = ET.SubElement(code, _q("s", "Subcode"))
    ET.SubElement(subcode, _q("s", "Value")).text = fault.subcode
    reason = ET.SubElement(fault_el, _q("s", "Reason"))
    ET.SubElement(reason, _q("s", "Text"), {_q("xml", "lang"): "en-US"}).text = fault.reason + " "
    detail = ET.SubElement(fault_el, _q("s", "Detail"))
    if fault.detail:
        ET.SubElement(detail, _q("w", "FaultDetail")).text = fault.detail
    wsman_fault = ET.SubElement(detail, _q("f", "WSManFault"), {"Code": str(fault.code), "Machine": machine})
    ET.SubElement(wsman_fault, _q("f", "Message")).text = fault.reason + " "
    if fault.wmi_error:
        # Quota faults carry an MSFT_WmiError whose error_Code clients such as Ansible's winrm plugin test.
        wmi = ET.SubElement(detail, _q("e", "MSFT_WmiError"))
        ET.SubElement(wmi, _q("e", "Message")).text = fault.reason
        ET.SubElement(wmi, _q("e", "error_Code")).text = str(fault.code)
        ET.SubElement(wmi, _q("e", "error_Type")).text = "HRESULT"
        ET.SubElement(wmi, _q("e", "error_Category")).text = "30"
    data: bytes = ET.tostring(envelope, encoding="utf-8", xml_declaration=False)
    return data


def element(prefix: str, local: str, text: str | None = None, **attrib: str) -> ET.Element:
    """A namespaced element with optional text and plain attributes."""
    node = ET.Element(_q(prefix, local), attrib)
    if text is not None:
        node.text = text
    return node


def sub(parent: ET.Element, prefix: str, local: str, text: str | None = None, **attrib: str) -> ET.Element:
    node = ET.SubElement(parent, _q(prefix, local), attrib)
    if text is not None:
        node.text = text
    return node


def qname(prefix: str, local: str) -> str:
    return _q(prefix, local)
