"""The lab's truth about its devices, as ``migrator lab inspect --json`` prints it.

Stable contract (more keys welcome, none removed)::

    {"devices": [{"name", "join_type", "os_build", "dc_reachable", "entra_kerberos",
                  "group_policy": null | {"groups", "gpos", "computer", "users", "gpos_at_next_refresh"},
                  "policy": {"gpo": {...}, "mdm": {...}, "effective": "cloud"|"cert"|"key"|"none"},
                  "users": [{"name", "signed_in", "container": null | {"trust", "key_id"},
                             "container_deletions", "provisionings"}],
                  "events": [...]}]}
"""

from __future__ import annotations

from typing import Any

from migrator.lab.model import Device, User
from migrator.lab.windows import Lab


def _user_truth(lab: Lab, device: Device, user: User) -> dict[str, Any]:
    session = device.session_of(user)
    container = user.container
    return {
        "name": user.qualified_name,
        "upn": user.upn,
        "sid": user.sid,
        "signed_in": session is not None,
        "session": None
        if session is None
        else {
            "id": session.session_id,
            "kind": session.kind,
            "state": session.state,
            "locked": session.locked,
            "logon_method": session.logon_method,
            "on_prem_tgt": session.on_prem_tgt,
            "partial_tgt": session.partial_tgt,
            "cloud_tgt": session.cloud_tgt,
            "messages": list(session.messages),
        },
        "container": None
        if container is None
        else {
            "trust": container.trust,
            "key_id": container.key_id,
            "created": container.created.isoformat(),
            "has_passkeys": container.has_passkeys,
        },
        "policy": lab.policy(device, user).effective,
        "behaviour": user.behaviour.compliance,
        "container_deletions": user.counters.container_deletions,
        "provisionings": user.counters.provisionings,
        "sign_ins": user.counters.sign_ins,
        "hello_sign_ins": user.counters.hello_sign_ins,
        "hello_sign_in_failures": user.counters.hello_sign_in_failures,
        "sign_outs": user.counters.sign_outs,
        "prompts_received": user.counters.prompts_received,
        "tasks_run": user.counters.tasks_run,
    }


def _group_policy_truth(lab: Lab, device: Device) -> dict[str, Any] | None:
    """The computer's groups in its domain now, the GPOs its last refresh applied and what it applied, and the
    GPOs the next refresh will apply (None without a directory, or for a device no domain knows)."""
    applied = lab.applied_policy.get(device.name)
    domain = lab.domain_of(device)
    if applied is None or lab.group_policy is None or domain is None:
        return None
    now = lab.group_policy.policy_for(device.name, domain.dns_name, tuple(u.sid for u in device.users))
    return {
        "groups": list(now.groups if now is not None else applied.groups),
        "gpos": list(applied.gpos),
        "computer": dict(applied.computer),
        "users": {sid: dict(values) for sid, values in applied.users.items()},
        "gpos_at_next_refresh": list(now.gpos) if now is not None else [],
    }


def device_truth(lab: Lab, device: Device, events: int = 20) -> dict[str, Any]:
    """Everything a test or an admin may want to check about one device, as JSON-ready data."""
    with device.lock:
        view = lab.policy(device)
        domain = lab.domain_of(device)
        user_domains = [lab.user_domain(u) for u in device.users]
        entra_kerberos = (
            domain.entra_kerberos
            if domain is not None
            else any(d.entra_kerberos for d in user_domains if d is not None)
        )
        return {
            "name": device.name,
            "address": device.address,
            "join_type": device.join_type,
            "domain": device.domain,
            "os_build": device.os.full_build,
            "os": device.os.caption,
            "supports_cloud_trust": device.os.supports_cloud_trust,
            "tpm": device.tpm.present and device.tpm.ready,
            "dc_reachable": device.dc_reachable,
            "vpn_only": device.vpn_only,
            "entra_kerberos": entra_kerberos,
            "mdm_enrolled": device.mdm_enrolled,
            "policy": {
                "gpo": dict(view.gpo),
                "mdm": dict(view.mdm),
                "effective": view.effective,
                "source": view.source,
                "cert_trust_any_source": view.cert_trust_any_source,
            },
            "users": [_user_truth(lab, device, u) for u in device.users],
            "tasks": [t.path + t.name for t in device.tasks],
            "events": [
                {
                    "id": e.event_id,
                    "time": e.time_created.isoformat(),
                    "level": e.level,
                    "user_sid": e.user_sid,
                    "message": e.message,
                }
                for e in device.events[-events:]
            ],
            "group_policy": _group_policy_truth(lab, device),
            "reboots": device.counters.reboots,
            "commands_run": len(device.counters.commands),
        }


def fleet_truth(lab: Lab, names: list[str] | None = None) -> dict[str, Any]:
    """``{"devices": [...]}`` for the named devices (all when ``names`` is empty)."""
    devices = [lab.device(n) for n in names] if names else lab.fleet.devices
    return {"clock": lab.clock.now().isoformat(), "devices": [device_truth(lab, d) for d in devices]}
