"""Parse ``dsregcmd /status`` into :class:`DsregStatus`.

Theory of operation
-------------------
``dsregcmd /status`` prints boxed sections (``+----+`` borders around ``| Title |``) holding right-aligned
``Name : value`` lines (learn.microsoft.com, "Troubleshoot devices by using the dsregcmd command"). Builds
differ in which sections and fields they print, and captures differ in how they were mangled, so the
parser is a single pass that:

- ignores borders, blank lines and annotations, and strips every line (forum copies lose the alignment of
  the first line of a block; the Microsoft support wiki indents whole blocks);
- opens a section at each ``| Title |`` line, closing ``|`` optional (truncated captures);
- reads ``Name : value`` lines, where the separator is the first ``:`` followed by a space or the line end,
  so URLs and times in values stay whole (``https://...``, ``14:30:51``);
- re-joins a value that the console wrapped at its width onto the next, unindented line;
- keeps any other line (``Waiting for Diagnostics Task to complete...``) as a note of its section.

Nothing is fatal. Fields the parser does not know, and every field of a section whose title it cannot read
(a localised build, a newer section), land in :attr:`DsregStatus.unknown_fields`. The derived facts read a
field from its own section; only when that section is missing altogether do they fall back to sections the
parser could not identify, so a localised header still yields ``AzureAdJoined`` but a ``Work Account 1``
``NgcSet`` is never mistaken for the signed-in user's.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from migrator.parse._text import split_lines, yes_no

__all__ = [
    "DEVICE_DETAILS",
    "DEVICE_STATE",
    "DIAGNOSTIC_DATA",
    "NGC_PREREQUISITE_CHECK",
    "NO_SECTION",
    "SSO_STATE",
    "TENANT_DETAILS",
    "USER_STATE",
    "DsregSection",
    "DsregStatus",
    "JoinType",
    "parse_dsregcmd",
]

DEVICE_STATE = "Device State"
DEVICE_DETAILS = "Device Details"
TENANT_DETAILS = "Tenant Details"
USER_STATE = "User State"
SSO_STATE = "SSO State"
DIAGNOSTIC_DATA = "Diagnostic Data"
NGC_PREREQUISITE_CHECK = "Ngc Prerequisite Check"
NO_SECTION = "(no section)"  # the title given to lines before the first box (a pasted fragment, a prompt)

_PROXY_FIELDS = frozenset({"Auto Detect Settings", "Auto-Configuration URL", "Proxy Server List", "Proxy Bypass List"})

# Fields each section is documented (MS docs, troubleshoot-device-dsregcmd) or observed to print.
_KNOWN_FIELDS: dict[str, frozenset[str]] = {
    DEVICE_STATE: frozenset(
        {"AzureAdJoined", "EnterpriseJoined", "DomainJoined", "DomainName", "Device Name", "Virtual Desktop"}
    ),
    DEVICE_DETAILS: frozenset(
        {
            "DeviceId",
            "Thumbprint",
            "DeviceCertificateValidity",
            "KeyContainerId",
            "KeyProvider",
            "TpmProtected",
            "DeviceAuthStatus",
        }
    ),
    TENANT_DETAILS: frozenset(
        {
            "TenantName",
            "TenantId",
            "Idp",
            "AuthCodeUrl",
            "AccessTokenUrl",
            "MdmUrl",
            "MdmTouUrl",
            "MdmComplianceUrl",
            "SettingsUrl",
            "JoinSrvVersion",
            "JoinSrvUrl",
            "JoinSrvId",
            "KeySrvVersion",
            "KeySrvUrl",
            "KeySrvId",
            "WebAuthNSrvVersion",
            "WebAuthNSrvUrl",
            "WebAuthNSrvId",
            "DeviceManagementSrvVer",
            "DeviceManagementSrvUrl",
            "DeviceManagementSrvId",
        }
    ),
    USER_STATE: frozenset(
        {
            "NgcSet",
            "NgcKeyId",
            "CanReset",
            "WorkplaceJoined",
            "WorkAccountCount",
            "WamDefaultSet",
            "WamDefaultAuthority",
            "WamDefaultId",
            "WamDefaultGUID",
        }
    ),
    SSO_STATE: frozenset(
        {
            "AzureAdPrt",
            "AzureAdPrtUpdateTime",
            "AzureAdPrtExpiryTime",
            "AzureAdPrtAuthority",
            "EnterprisePrt",
            "EnterprisePrtUpdateTime",
            "EnterprisePrtExpiryTime",
            "EnterprisePrtAuthority",
            "OnPremTgt",
            "CloudTgt",
            "KerbTopLevelNames",
            "AcquirePrtDiagnostics",
            "Previous Prt Attempt",
            "Attempt Status",
            "User Identity",
            "Credential Type",
            "Correlation ID",
            "Endpoint URI",
            "HTTP Method",
            "HTTP Error",
            "HTTP status",
            "Server Error Code",
            "Server Error Description",
        }
    ),
    DIAGNOSTIC_DATA: frozenset(
        {
            "AadRecoveryEnabled",
            "Executing Account Name",
            "KeySignTest",
            "DisplayNameUpdated",
            "OsVersionUpdated",
            "HostNameUpdated",
            "Last HostName Update",
            "Diagnostics Reference",
            "User Context",
            "Client Time",
            "AD Connectivity Test",
            "AD Configuration Test",
            "DRS Discovery Test",
            "DRS Connectivity Test",
            "Token acquisition Test",
            "Fallback to Sync-Join",
            "Previous Registration",
            "Registration Type",
            "Error Phase",
            "Client ErrorCode",
            "Server ErrorCode",
            "Server Message",
            "Https Status",
            "Request Id",
        }
    ),
    "IE Proxy Config for Current User": _PROXY_FIELDS,
    "IE Proxy Config for System Account": _PROXY_FIELDS,
    "URL Specific Proxy Config": frozenset({"Auto Detect PAC Status", "Executing Account Name"}),
    "WinHttp Default Proxy Config": frozenset({"Access Type", "Proxy Server List", "Proxy Bypass List"}),
    NGC_PREREQUISITE_CHECK: frozenset(
        {
            "IsDeviceJoined",
            "IsUserAzureAD",
            "PolicyEnabled",
            "PostLogonEnabled",
            "DeviceEligible",
            "SessionIsNotRemote",
            "CertEnrollment",
            "AdfsRefreshToken",
            "AdfsRaIsReady",
            "LogonCertTemplateReady",
            "AadRecoveryNeeded",
            # Builds before Windows 11 23H2 called the partial-TGT prerequisite CloudTGT, later OnPremTGT.
            "CloudTGT",
            "OnPremTGT",
            "PreReqResult",
        }
    ),
}
# "Work Account 1", "Work Account 2", ...: one per Entra-registered (workplace joined) work account.
_WORK_ACCOUNT = re.compile(r"^Work Account \d+$", re.IGNORECASE)
_WORK_ACCOUNT_FIELDS = frozenset(
    {
        "WorkplaceDeviceId",
        "WorkplaceThumbprint",
        "DeviceCertificateValidity",
        "KeyContainerId",
        "KeyProvider",
        "TpmProtected",
        "WorkplaceTenantId",
        "WorkplaceTenantName",
        "WorkplaceMdmUrl",
        "WorkplaceSettingsUrl",
        "NgcSet",
        "NgcKeyId",
    }
)
_CANONICAL_TITLES = {title.casefold(): title for title in _KNOWN_FIELDS}

_BORDER = re.compile(r"^\+-{3,}\+?$")
_HEADER = re.compile(r"^\|\s*(?P<title>.*?)\s*\|?$")
# "Name : value" / "Name: value" / "Name :" - the name holds no colon, the colon is followed by a blank or
# the end of the line (so "visit https://..." is not a field).
_FIELD = re.compile(r"^(?P<key>[^:]*[^\s:])\s*:(?:\s+(?P<value>.*))?$")
# A console wraps a long line at its width (80 to 120 columns in practice); the rest starts in column 0.
_WRAP_WIDTH = 80


class JoinType(enum.StrEnum):
    """How the device is joined, from AzureAdJoined and DomainJoined (MS docs: device state table)."""

    HYBRID = "hybrid"  # AzureAdJoined YES + DomainJoined YES: Microsoft Entra hybrid joined
    ENTRA = "entra"  # AzureAdJoined YES only: Microsoft Entra joined
    DOMAIN = "domain"  # DomainJoined YES only: on-premises AD only
    WORKGROUP = "workgroup"  # neither


@dataclass(frozen=True, slots=True)
class DsregSection:
    """One boxed section as printed: its title, its ``Name : value`` fields in order, other lines."""

    title: str
    fields: Mapping[str, str]
    notes: tuple[str, ...] = ()

    @property
    def known(self) -> bool:
        """True when the parser knows this section's title."""
        return _known_fields(self.title) is not None

    def get(self, key: str) -> str | None:
        """The value of ``key`` (case-insensitive), or None when absent."""
        folded = key.casefold()
        for name, value in self.fields.items():
            if name.casefold() == folded:
                return value
        return None


@dataclass(frozen=True, slots=True)
class DsregStatus:
    """The facts of one ``dsregcmd /status`` capture; None means the field was not printed."""

    sections: tuple[DsregSection, ...]
    unknown_fields: Mapping[str, Mapping[str, str]]
    azure_ad_joined: bool | None
    enterprise_joined: bool | None
    domain_joined: bool | None
    domain_name: str | None
    device_name: str | None
    device_id: str | None
    device_auth_status: str | None
    tpm_protected: bool | None
    tenant_id: str | None
    tenant_name: str | None
    ngc_set: bool | None
    ngc_key_id: str | None
    can_reset: str | None
    workplace_joined: bool | None
    azure_ad_prt: bool | None
    enterprise_prt: bool | None
    on_prem_tgt: bool | None
    cloud_tgt: bool | None
    kerb_top_level_names: tuple[str, ...] | None
    prerequisites: Mapping[str, bool | str]
    user_context: str | None
    executing_account: str | None
    error_phase: str | None
    client_error_code: str | None
    server_error_code: str | None
    prt_attempt_status: str | None
    notes: tuple[str, ...] = field(default=())

    @property
    def join_type(self) -> JoinType | None:
        """hybrid / entra / domain / workgroup, or None when either join field is missing."""
        if self.azure_ad_joined is None or self.domain_joined is None:
            return None
        if self.azure_ad_joined:
            return JoinType.HYBRID if self.domain_joined else JoinType.ENTRA
        return JoinType.DOMAIN if self.domain_joined else JoinType.WORKGROUP

    @property
    def cert_enrollment(self) -> str | None:
        """``none``, ``enrollment authority`` (cert trust, AD FS RA) or ``mobile device management``."""
        value = self.prerequisites.get("CertEnrollment")
        return value if isinstance(value, str) else None

    @property
    def pre_req_result(self) -> str | None:
        """``WillProvision`` or ``WillNotProvision`` from the Ngc Prerequisite Check."""
        value = self.prerequisites.get("PreReqResult")
        return value if isinstance(value, str) else None

    @property
    def is_empty(self) -> bool:
        """True when nothing that looks like dsregcmd output was found."""
        return not any(section.fields for section in self.sections)

    def section(self, title: str) -> DsregSection | None:
        """The first section titled ``title`` (case-insensitive), or None."""
        folded = title.casefold()
        return next((s for s in self.sections if s.title.casefold() == folded), None)

    def get(self, section: str, key: str) -> str | None:
        """The value of ``key`` in ``section`` exactly as printed (stripped), or None."""
        found = self.section(section)
        return found.get(key) if found else None

    def flag(self, section: str, key: str) -> bool | None:
        """``key`` in ``section`` as a bool (YES/NO), None when absent or neither YES nor NO."""
        return yes_no(self.get(section, key))


def _known_fields(title: str) -> frozenset[str] | None:
    canonical = _CANONICAL_TITLES.get(title.casefold())
    if canonical is not None:
        return _KNOWN_FIELDS[canonical]
    if _WORK_ACCOUNT.match(title):
        return _WORK_ACCOUNT_FIELDS
    return None


class _Builder:
    """Collects sections line by line; a small mutable helper behind the pure :func:`parse_dsregcmd`."""

    def __init__(self) -> None:
        self.sections: list[DsregSection] = []
        self.title = NO_SECTION
        self.fields: dict[str, str] = {}
        self.notes: list[str] = []
        self.last_key: str | None = None
        self.last_raw_len = 0

    def close(self) -> None:
        if self.fields or self.notes or self.title != NO_SECTION:
            self.sections.append(DsregSection(self.title, dict(self.fields), tuple(self.notes)))
        self.fields, self.notes, self.last_key = {}, [], None

    def open(self, title: str) -> None:
        self.close()
        self.title = _CANONICAL_TITLES.get(title.casefold(), title)

    def feed(self, raw: str) -> None:
        line = raw.strip()
        if not line:
            return  # blank lines (or a lone space) separate nothing that matters
        if _BORDER.match(line):
            self.last_key = None
            return
        if line.startswith("|"):
            header = _HEADER.match(line)
            self.open(header.group("title") if header else line.strip("| "))
            return
        match = _FIELD.match(line)
        if self.last_key is not None and self._continues_wrapped_value(raw, line, match):
            # The console cut the previous value at its width: glue the rest back on, without a space,
            # because the cut falls mid-word ("... script u" / "sing WPAD").
            self.fields[self.last_key] += line
            self.last_raw_len = 0
            return
        self.last_raw_len = 0
        if match:
            key = match.group("key").strip()
            self.fields[key] = (match.group("value") or "").strip()
            self.last_key = key
            self.last_raw_len = len(raw)
            return
        self.notes.append(line)
        self.last_key = None

    def _continues_wrapped_value(self, raw: str, line: str, match: re.Match[str] | None) -> bool:
        """True for the rest of a value the console wrapped: the previous field line filled the console
        width, this line starts in column 0, is not a field this section prints, and lacks dsregcmd's
        `` : `` separator (a copy may have put a blank line in between)."""
        if self.last_raw_len < _WRAP_WIDTH or raw[:1].isspace():
            return False
        known = _known_fields(self.title) or frozenset()
        return not (match and match.group("key").strip() in known) and " : " not in line


def parse_dsregcmd(text: str) -> DsregStatus:
    """Parse the text of ``dsregcmd /status``; never raises, missing fields become None."""
    builder = _Builder()
    for raw in split_lines(text):
        builder.feed(raw)
    builder.close()
    sections = tuple(s for s in builder.sections if s.fields or s.notes)

    unknown: dict[str, dict[str, str]] = {}
    for section in sections:
        known = _known_fields(section.title)
        for key, value in section.fields.items():
            if known is None or key not in known:
                unknown.setdefault(section.title, {})[key] = value
    fallback = [s for s in sections if not s.known]

    def lookup(title: str, key: str) -> str | None:
        own = [s for s in sections if s.title == title]
        for section in own or fallback:
            found = section.get(key)
            if found is not None:
                return found
        return None

    def text_value(title: str, key: str) -> str | None:
        found = lookup(title, key)
        return found if found else None

    def flag(title: str, key: str) -> bool | None:
        return yes_no(lookup(title, key))

    names = text_value(SSO_STATE, "KerbTopLevelNames")
    ngc_section = [s for s in sections if s.title == NGC_PREREQUISITE_CHECK]
    prerequisites: dict[str, bool | str] = {}
    for section in ngc_section:
        for key, raw_value in section.fields.items():
            as_bool = yes_no(raw_value)
            prerequisites[key] = raw_value if as_bool is None else as_bool

    return DsregStatus(
        sections=sections,
        unknown_fields=unknown,
        azure_ad_joined=flag(DEVICE_STATE, "AzureAdJoined"),
        enterprise_joined=flag(DEVICE_STATE, "EnterpriseJoined"),
        domain_joined=flag(DEVICE_STATE, "DomainJoined"),
        domain_name=text_value(DEVICE_STATE, "DomainName"),
        device_name=text_value(DEVICE_STATE, "Device Name"),
        device_id=text_value(DEVICE_DETAILS, "DeviceId"),
        device_auth_status=text_value(DEVICE_DETAILS, "DeviceAuthStatus"),
        tpm_protected=flag(DEVICE_DETAILS, "TpmProtected"),
        tenant_id=text_value(TENANT_DETAILS, "TenantId"),
        tenant_name=text_value(TENANT_DETAILS, "TenantName"),
        ngc_set=flag(USER_STATE, "NgcSet"),
        ngc_key_id=text_value(USER_STATE, "NgcKeyId"),
        can_reset=text_value(USER_STATE, "CanReset"),
        workplace_joined=flag(USER_STATE, "WorkplaceJoined"),
        azure_ad_prt=flag(SSO_STATE, "AzureAdPrt"),
        enterprise_prt=flag(SSO_STATE, "EnterprisePrt"),
        on_prem_tgt=flag(SSO_STATE, "OnPremTgt"),
        cloud_tgt=flag(SSO_STATE, "CloudTgt"),
        kerb_top_level_names=(tuple(name.strip() for name in names.split(",") if name.strip()) if names else None),
        prerequisites=prerequisites,
        user_context=text_value(DIAGNOSTIC_DATA, "User Context"),
        executing_account=text_value(DIAGNOSTIC_DATA, "Executing Account Name"),
        error_phase=text_value(DIAGNOSTIC_DATA, "Error Phase"),
        client_error_code=text_value(DIAGNOSTIC_DATA, "Client ErrorCode"),
        server_error_code=text_value(DIAGNOSTIC_DATA, "Server ErrorCode"),
        prt_attempt_status=text_value(SSO_STATE, "Attempt Status"),
        notes=tuple(note for s in sections for note in s.notes),
    )
