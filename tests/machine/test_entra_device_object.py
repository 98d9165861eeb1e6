"""What Entra ID says about the device object, handed to the path decision as data: a device whose object is
missing or disabled has no Primary Refresh Token, so it is ineligible at preflight, before anything changes."""

from __future__ import annotations

from migrator.facts import path
from tests.machine.transcript import SETTINGS, Transcript

DEVICE_ID = "0F0E0D0C-0B0A-4909-8807-060504030201"


def test_a_missing_or_disabled_device_object_makes_the_device_ineligible() -> None:
    facts = Transcript().device.facts().model_copy(update={"device_id": DEVICE_ID})
    assert path(facts, SETTINGS).path != "ineligible"
    present = SETTINGS.model_copy(update={"entra_devices": {DEVICE_ID.casefold(): "present"}})
    assert path(facts, present).path != "ineligible"
    missing = path(facts, SETTINGS.model_copy(update={"entra_devices": {DEVICE_ID.casefold(): "missing"}}))
    assert missing.path == "ineligible"
    assert any(f"no device object with deviceId {DEVICE_ID}" in r and "Primary" in r for r in missing.reasons)
    disabled = path(facts, SETTINGS.model_copy(update={"entra_devices": {DEVICE_ID.casefold(): "disabled"}}))
    assert disabled.path == "ineligible" and any("is disabled" in r for r in disabled.reasons)
    unknown = path(facts.model_copy(update={"device_id": None}), SETTINGS.model_copy(update={"entra_devices": {}}))
    assert unknown.path != "ineligible"


def test_the_machine_stops_such_a_device_at_preflight_before_any_change() -> None:
    """The preflight's own decision: ineligible, and no snapshot or policy write is ever asked for."""
    settings = SETTINGS.model_copy(update={"entra_devices": {DEVICE_ID.casefold(): "missing"}})
    t = Transcript(settings=settings)
    t.expect("facts")
    t.answer(t.device.facts().model_copy(update={"device_id": DEVICE_ID}))
    t.next()
    assert t.state_now == "ineligible", t.triggers()
    assert "snapshot" not in t.asked and "set_policy" not in t.asked
    last = t.funnel.changes[-1]
    assert last.last_error is not None and "no device object" in last.last_error
