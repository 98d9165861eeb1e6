"""Parse the Windows Hello for Business provisioning events of ``User Device Registration/Admin``.

Events 358 (provisioning will be launched), 360 (will not be launched), 361 (MDM certificate prerequisites)
and 362 (enterprise certificate prerequisites) share one message shape (the provider's message templates, see
``event_templates_user_device_registration_358_360_361_362.txt``): a first line "Windows Hello for Business
provisioning will [not] be launched.", then ``<prerequisite>: Yes|No|Not Tested`` lines, "Machine is governed
by <method> policy." and a "See https://go.microsoft.com/fwlink/?linkid=832647" trailer. Builds with cloud
Kerberos trust add "Cloud trust for on premise auth policy is enabled" and "User account has Cloud TGT"
(Not Tested when cloud trust is not enforced or the device is Entra joined only: MS docs, cloud Kerberos
trust provisioning).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from migrator.parse._text import split_lines, yes_no_tested

__all__ = ["ProvisioningEvent", "parse_provisioning_event", "parse_provisioning_events"]

# Normalised label (casefolded, single spaces) -> attribute.
_BOOL_LABELS: dict[str, str] = {
    "device is aad joined ( aadj or dj++ )": "device_aad_joined",
    "user has logged on with aad credentials": "user_aad_logon",
    "windows hello for business policy is enabled": "policy_enabled",
    "windows hello for business post-logon provisioning is enabled": "post_logon_enabled",
    "local computer meets windows hello for business hardware requirements": "hardware_requirements_met",
    "user is not connected to the machine via remote desktop": "not_remote_desktop",
    "user certificate for on premise auth policy is enabled": "cert_auth_policy_enabled",
    "enterprise user logon certificate enrollment endpoint is ready": "enrollment_endpoint_ready",
    "enterprise user logon certificate template is": "cert_template_ready",
    "user has successfully authenticated to the enterprise sts": "sts_authenticated",
    "mdm user certificate enrollment is ready": "mdm_cert_enrollment_ready",
    "cloud trust for on premise auth policy is enabled": "cloud_trust_policy_enabled",
    "user account has cloud tgt": "has_cloud_tgt",
    # awakecoding.com quotes the line as "had"; accept both so a paraphrased capture still reads.
    "user account had cloud tgt": "has_cloud_tgt",
}
_TEXT_LABELS = {"certificate enrollment method": "cert_enrollment_method"}
# Lines of the Event Viewer "copy details" header that precede the message.
_HEADER_LABELS = frozenset(
    {"log name", "source", "date", "event id", "task category", "level", "keywords", "user", "computer"}
)

_LAUNCH = re.compile(r"^Windows Hello for Business provisioning will (?P<neg>not )?be launched", re.IGNORECASE)
_GOVERNED = re.compile(r"^Machine is governed by (?P<method>.+?) policy\.?$", re.IGNORECASE)
_EVENT_ID = re.compile(r"^Event ID:?\s*(?P<id>\d+)\s*$", re.IGNORECASE)
_TRAILER = re.compile(r"^See https?://go\.microsoft\.com/fwlink/", re.IGNORECASE)
_FIELD = re.compile(r"^(?P<key>[^:]+?)\s*:(?:\s+(?P<value>.*))?$")


@dataclass(frozen=True, slots=True)
class ProvisioningEvent:
    """One provisioning event message as typed facts; None = absent or "Not Tested"."""

    event_id: int | None
    launched: bool | None  # True: "will be launched", False: "will not be launched"
    governed_by: str | None  # "Machine is governed by <x> policy": "none", "enrollment authority", ...
    device_aad_joined: bool | None
    user_aad_logon: bool | None
    policy_enabled: bool | None
    post_logon_enabled: bool | None
    hardware_requirements_met: bool | None
    not_remote_desktop: bool | None
    cert_auth_policy_enabled: bool | None
    enrollment_endpoint_ready: bool | None
    cert_template_ready: bool | None
    sts_authenticated: bool | None
    mdm_cert_enrollment_ready: bool | None
    cloud_trust_policy_enabled: bool | None
    has_cloud_tgt: bool | None
    cert_enrollment_method: str | None
    facts: Mapping[str, bool | str | None]  # every "label: value" line of the message, label as printed
    header: Mapping[str, str]  # Event Viewer header fields (Log Name, Source, Level, ...), when copied
    unknown_fields: Mapping[str, str]
    unknown_lines: tuple[str, ...]

    @property
    def failed_prerequisites(self) -> tuple[str, ...]:
        """Labels of the prerequisite lines that say No, in message order."""
        return tuple(label for label, value in self.facts.items() if value is False)

    @property
    def is_empty(self) -> bool:
        """True when no provisioning line was found."""
        return self.launched is None and not self.facts and self.governed_by is None


def _normalise(label: str) -> str:
    return " ".join(label.split()).casefold()


def parse_provisioning_event(message: str) -> ProvisioningEvent:
    """Parse one event message (optionally with its Event Viewer header); never raises."""
    event_id: int | None = None
    launched: bool | None = None
    governed_by: str | None = None
    bools: dict[str, bool | None] = {}
    texts: dict[str, str] = {}
    facts: dict[str, bool | str | None] = {}
    header: dict[str, str] = {}
    unknown_fields: dict[str, str] = {}
    unknown_lines: list[str] = []
    ended = False  # after the fwlink trailer the message is over; later lines are not its facts
    for raw in split_lines(message):
        line = raw.strip()
        if not line or line.casefold() in {"description:", "user device registration"}:
            continue
        if match := _EVENT_ID.match(line):
            event_id = int(match.group("id"))
            continue
        if match := _LAUNCH.match(line):
            launched = match.group("neg") is None
            continue
        if _TRAILER.match(line):
            ended = True
            continue
        if ended:
            unknown_lines.append(line)
            continue
        if match := _GOVERNED.match(line):
            governed_by = match.group("method").strip()
            continue
        match = _FIELD.match(line)
        if not match:
            unknown_lines.append(line)
            continue
        label, value = match.group("key").strip(), (match.group("value") or "").strip()
        key = _normalise(label)
        if launched is None and key in _HEADER_LABELS:
            header[label] = value
            if key == "event id" and value.isdigit():
                event_id = int(value)
            continue
        as_bool = yes_no_tested(value)
        tested = as_bool is not None or value.casefold() == "not tested"
        facts[label] = as_bool if tested else value
        if key in _BOOL_LABELS:
            bools[_BOOL_LABELS[key]] = as_bool
        elif key in _TEXT_LABELS:
            texts[_TEXT_LABELS[key]] = value
        else:
            unknown_fields[label] = value
    return ProvisioningEvent(
        event_id=event_id,
        launched=launched,
        governed_by=governed_by,
        device_aad_joined=bools.get("device_aad_joined"),
        user_aad_logon=bools.get("user_aad_logon"),
        policy_enabled=bools.get("policy_enabled"),
        post_logon_enabled=bools.get("post_logon_enabled"),
        hardware_requirements_met=bools.get("hardware_requirements_met"),
        not_remote_desktop=bools.get("not_remote_desktop"),
        cert_auth_policy_enabled=bools.get("cert_auth_policy_enabled"),
        enrollment_endpoint_ready=bools.get("enrollment_endpoint_ready"),
        cert_template_ready=bools.get("cert_template_ready"),
        sts_authenticated=bools.get("sts_authenticated"),
        mdm_cert_enrollment_ready=bools.get("mdm_cert_enrollment_ready"),
        cloud_trust_policy_enabled=bools.get("cloud_trust_policy_enabled"),
        has_cloud_tgt=bools.get("has_cloud_tgt"),
        cert_enrollment_method=texts.get("cert_enrollment_method"),
        facts=facts,
        header=header,
        unknown_fields=unknown_fields,
        unknown_lines=tuple(unknown_lines),
    )


def parse_provisioning_events(text: str) -> tuple[ProvisioningEvent, ...]:
    """Split a capture holding several event messages and parse each.

    A new event starts at an ``Event ID`` / ``Log Name`` header line, or at a "provisioning will ... be
    launched" line when the current event already has one.
    """
    chunks: list[list[str]] = [[]]
    has_launch = False
    for raw in split_lines(text):
        line = raw.strip()
        starts_header = bool(_EVENT_ID.match(line)) or line.casefold().startswith("log name:")
        starts_message = bool(_LAUNCH.match(line))
        if has_launch and (starts_header or starts_message):
            chunks.append([])
            has_launch = False
        has_launch = has_launch or starts_message
        chunks[-1].append(raw)
    events = (parse_provisioning_event("\n".join(chunk)) for chunk in chunks)
    return tuple(event for event in events if not event.is_empty)
