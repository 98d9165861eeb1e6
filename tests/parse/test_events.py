"""Tests of the provisioning-event parser on the published event 360/362 texts and the templates."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from migrator.parse import parse_provisioning_event, parse_provisioning_events
from tests.parse._samples import sample


def test_qa_360_and_362_cert_trust() -> None:
    """The Q&A capture holds a 360 with the cloud-trust lines and a 362 for AD FS cert trust."""
    first, second = parse_provisioning_events(sample("event_360_362_certtrust_adfs_qa591928.txt"))
    assert first.event_id == 360
    assert first.launched is False
    assert first.device_aad_joined is True
    assert first.user_aad_logon is True
    assert first.policy_enabled is True
    assert first.post_logon_enabled is True
    assert first.hardware_requirements_met is True
    assert first.not_remote_desktop is True
    assert first.cert_auth_policy_enabled is True
    assert first.governed_by == "enrollment authority"
    assert first.cloud_trust_policy_enabled is False
    assert first.has_cloud_tgt is None  # "Not Tested"
    assert first.facts["User account has Cloud TGT"] is None
    assert first.failed_prerequisites == ("Cloud trust for on premise auth policy is enabled",)
    assert first.unknown_fields == {}

    assert second.event_id == 362
    assert second.launched is False
    assert second.enrollment_endpoint_ready is True
    assert second.cert_template_ready is True
    assert second.sts_authenticated is False
    assert second.cert_enrollment_method == "enrollment authority"
    assert second.failed_prerequisites == ("User has successfully authenticated to the enterprise STS",)
    # The AAD error dump after the message's fwlink trailer is not part of the event's facts.
    assert "OAuth response error: invalid_grant" in second.unknown_lines
    assert second.unknown_fields == {}


def test_single_360_key_trust_policy_disabled() -> None:
    """The support-wiki 360: policy off, no AAD logon, governed by none."""
    event = parse_provisioning_event(sample("event_360_keytrust_policy_disabled_msft_supportwiki.txt"))
    assert event.event_id is None
    assert event.launched is False
    assert event.device_aad_joined is True
    assert event.user_aad_logon is False
    assert event.policy_enabled is False
    assert event.post_logon_enabled is None  # line absent on that build
    assert event.hardware_requirements_met is True
    assert event.not_remote_desktop is True
    assert event.cert_auth_policy_enabled is False
    assert event.governed_by == "none"
    assert event.failed_prerequisites == (
        "User has logged on with AAD credentials",
        "Windows Hello for Business policy is enabled",
        "User certificate for on premise auth policy is enabled",
    )


def test_event_viewer_copy_of_362_with_header() -> None:
    """The Event Viewer copy of 362 keeps its header apart from the message facts."""
    event = parse_provisioning_event(sample("event_362_keytrust_with_cert_policy_set_msft_supportwiki.txt"))
    assert event.event_id == 362
    assert event.header["Log Name"] == "Microsoft-Windows-User Device Registration/Admin"
    assert event.header["Level"] == "Warning"
    assert event.header["Keywords"] == ""
    assert event.launched is False
    assert event.cert_auth_policy_enabled is True
    assert event.enrollment_endpoint_ready is False
    assert event.cert_template_ready is None  # "Not Tested"
    assert event.sts_authenticated is False
    assert event.cert_enrollment_method == "enrollment authority"
    assert "Log Name" not in event.facts
    assert event.unknown_fields == {}


def _templates() -> dict[int, str]:
    text = sample("event_templates_user_device_registration_358_360_361_362.txt")
    found: dict[int, str] = {}
    for match in re.finditer(r"^(35[89]|36[012]):\n(.*?)(?=^\d{3}:|^Other WHfB|\Z)", text, re.S | re.M):
        found[int(match.group(1))] = match.group(2)
    return found


def _render(template: str, values: dict[int, str]) -> str:
    return re.sub(r"%(\d+)", lambda m: values[int(m.group(1))], template)


def test_rendered_358_template_is_launched() -> None:
    """The 358 template filled with real insertion strings reads as launched, governed by none."""
    values = {1: "Windows Hello for Business provisioning will be launched.", 9: "none"}
    values.update(dict.fromkeys(range(2, 9), "Yes"))
    event = parse_provisioning_event(_render(_templates()[358], values))
    assert event.launched is True
    assert event.governed_by == "none"
    assert event.device_aad_joined is True
    assert event.post_logon_enabled is True
    assert event.not_remote_desktop is True
    assert event.failed_prerequisites == ()
    assert event.unknown_fields == {}


def test_rendered_358_with_cloud_trust_lines() -> None:
    """A newer-build 358 with the cloud-trust lines gives the cloud TGT fact."""
    values = {1: "Windows Hello for Business provisioning will be launched.", 9: "none"}
    values.update(dict.fromkeys(range(2, 8), "Yes"))
    values[8] = "No"
    template = _templates()[358].replace(
        "See https://",
        "Cloud trust for on premise auth policy is enabled: Yes \nUser account has Cloud TGT: Yes \nSee https://",
    )
    event = parse_provisioning_event(_render(template, values))
    assert event.launched is True
    assert event.cert_auth_policy_enabled is False
    assert event.cloud_trust_policy_enabled is True
    assert event.has_cloud_tgt is True


def test_rendered_361_template() -> None:
    """The MDM variant 361 yields the MDM enrolment readiness and method."""
    values = {1: "Windows Hello for Business provisioning will not be launched.", 10: "mobile device management"}
    values.update(dict.fromkeys(range(2, 9), "Yes"))
    values[9] = "No"
    event = parse_provisioning_event(_render(_templates()[361], values))
    assert event.launched is False
    assert event.mdm_cert_enrollment_ready is False
    assert event.cert_enrollment_method == "mobile device management"


def test_unknown_line_kept() -> None:
    """A label the parser does not know is kept, with its Yes/No value converted in facts."""
    event = parse_provisioning_event(
        "Windows Hello for Business provisioning will be launched.\nSome new prerequisite: No\n"
    )
    assert event.launched is True
    assert event.unknown_fields == {"Some new prerequisite": "No"}
    assert event.facts == {"Some new prerequisite": False}


@settings(max_examples=150, deadline=None)
@given(st.text())
def test_never_raises(text: str) -> None:
    """Any text at all parses without an exception."""
    parse_provisioning_event(text)
    parse_provisioning_events(text)
