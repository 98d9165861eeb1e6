"""Microsoft Graph requests per device, added up from what the audit log recorded (for the report).

Theory of operation
-------------------
Graph requests are sent for a device in three kinds of work, each recorded in the audit log as it is done:

* **preflight reads** (:mod:`migrator.cloud.knowledge`): each ``entra-preflight`` finding carries
  ``graph_requests``, the device's share of the read that produced it (a wave-start read split evenly over the
  devices it served, a visit's own lookup whole); a lookup by name for devices first seen by a wave is a
  ``graph-requests`` entry (purpose ``entra-names``) split evenly over its devices;
* **stale key cleanup** (:mod:`migrator.cloud.cleanup`): a ``graph-requests`` entry per device cleaned up
  (purpose ``entra-cleanup``), in a wave or by ``migrator entra cleanup``;
* **the intune-group channel**: a ``graph-requests`` entry per batch (purpose ``intune-group``), split evenly over
  the devices it moved.

Shares are fractions (3 requests over 2 devices are 1.5 each), so the per-device figures add up to what was sent.
Nothing here reads Graph: a report is read-only. Requests not attributable to a device (the token endpoint) are
not counted, as :attr:`GraphClient.requests` does not count them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from migrator.cloud.knowledge import AUDIT_ACTION, SPEND_ACTION
from migrator.store import AuditRecord

PREFLIGHT = "preflight"
PURPOSES = {"entra-names": PREFLIGHT, "entra-cleanup": "entra_cleanup", "intune-group": "intune_group"}
KINDS = (PREFLIGHT, "entra_cleanup", "intune_group")


@dataclass
class DeviceSpend:
    """The Graph requests spent on one device, by kind of work (:data:`KINDS`)."""

    device: str
    requests: dict[str, float] = field(default_factory=lambda: dict.fromkeys(KINDS, 0.0))

    @property
    def total(self) -> float:
        return sum(self.requests.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "device": self.device,
            **{kind: round(value, 2) for kind, value in self.requests.items()},
            "total": round(self.total, 2),
        }


def graph_spend(audit_log: Iterable[AuditRecord], devices: Iterable[str]) -> dict[str, DeviceSpend]:
    """Per device of ``devices`` (casefolded name → its spend), from the audit log; a device Graph was never asked
    about is left out."""
    names = {d.casefold(): d for d in devices}
    spent: dict[str, DeviceSpend] = {}

    def add(device: str, kind: str, requests: float) -> None:
        key = device.casefold()
        if key not in names or requests <= 0:
            return
        spent.setdefault(key, DeviceSpend(names[key])).requests[kind] += requests

    for record in audit_log:
        after = record.after if isinstance(record.after, Mapping) else None
        if after is None:
            continue
        if record.action == AUDIT_ACTION and record.device is not None:
            add(record.device, PREFLIGHT, _number(after.get("graph_requests")))
        elif record.action == SPEND_ACTION:
            listed = after.get("devices")
            over = [str(d) for d in listed if d] if isinstance(listed, list) else []
            kind = PURPOSES.get(str(after.get("purpose")))
            if over and kind is not None:
                share = _number(after.get("requests")) / len(over)
                for device in over:
                    add(device, kind, share)
    return spent


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
