"""The HTML report: one self-contained file a change manager opens from disk, without a server.

Inline CSS, no script, no external asset; a Content-Security-Policy meta tag forbids scripts and remote loads
anyway, so a value that slipped past escaping still could not run. Device names, user names, errors, events and
tickets come from devices and people: every value goes through :func:`esc` (or is an :class:`Html` fragment built
from escaped parts). Collapsible per-device timelines use ``<details>``, which needs no script.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from datetime import datetime

from migrator.cloud.spend import KINDS, DeviceSpend
from migrator.report.diagram import svg
from migrator.report.model import (
    DeletedContainer,
    DeviceReport,
    EntraFinding,
    Report,
    RollbackView,
    WaveSummary,
    iso,
)
from migrator.report.states import SUCCESS_STATES, attention, ordered_states


class Html(str):
    """Text that is already HTML (built from escaped parts): :func:`esc` passes it through unchanged."""

    __slots__ = ()

    def __add__(self, other: str) -> Html:
        # Concatenation keeps the type, and escapes a plain-text right-hand side.
        return Html(str.__add__(self, esc(other)))

    def __radd__(self, other: str) -> Html:
        return Html(str.__add__(esc(other), self))


def esc(value: object) -> Html:
    """``value`` as HTML text: escaped (quotes too), None as an em dash, datetimes as UTC ISO."""
    if isinstance(value, Html):
        return value
    if value is None:
        return Html("—")
    if isinstance(value, datetime):
        value = iso(value)
    if isinstance(value, bool):
        value = "yes" if value else "no"
    return Html(html.escape(str(value), quote=True))


def _join(parts: Iterable[object]) -> Html:
    return Html("".join(esc(p) for p in parts))


def _tag(name: str, content: object = "", css: str | None = None) -> Html:
    klass = f' class="{esc(css)}"' if css else ""
    return Html(f"<{name}{klass}>{esc(content)}</{name}>")


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]], css: str | None = None) -> Html:
    head = _join(_tag("th", h) for h in headers)
    body = _join(_tag("tr", _join(_tag("td", cell) for cell in row)) for row in rows)
    klass = f' class="{esc(css)}"' if css else ""
    return Html(f"<table{klass}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def _none(text: str) -> Html:
    return _tag("p", text, "none")


def _state(state: str) -> Html:
    kind = attention(state) or ("ok" if state in SUCCESS_STATES else "neutral")
    return _tag("span", state, f"state {kind}")


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d1d1f;background:#fff}
header,section{padding:0 28px}
header{background:#0b3d63;color:#fff;padding-top:14px;padding-bottom:12px}
header h1{margin:0 0 4px;font-size:22px}
header p{margin:2px 0;opacity:.9}
nav{padding:8px 28px;background:#eef3f7;border-bottom:1px solid #d3dde6}
nav a{margin-right:14px;color:#0b3d63}
h2{border-bottom:2px solid #0b3d63;padding-bottom:3px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0 14px;font-size:13px}
th,td{border:1px solid #ccd5dd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f1f5f8}
code,pre,.mono{font-family:ui-monospace,Consolas,monospace;font-size:12px}
pre{background:#f6f8fa;border:1px solid #d0d7de;padding:10px;overflow:auto}
.state{padding:1px 6px;border-radius:4px;white-space:nowrap}
.state.ok{background:#dff3e4;color:#135d2a}
.state.failed,.state.error{background:#fde2e1;color:#8a1c16}
.state.stalled{background:#fff1cc;color:#7a5200}
.state.waiting,.state.unreachable{background:#e5eefc;color:#1c427a}
.state.neutral{background:#eceff1}
.bar{display:inline-block;height:10px;background:#0b3d63;vertical-align:middle}
.none{color:#5f6b75;font-style:italic}
.warn{background:#fff4e5;border-left:4px solid #e08a00;padding:8px 12px}
.bad{background:#fde2e1;border-left:4px solid #b3261e;padding:8px 12px}
.good{background:#e3f4e8;border-left:4px solid #1e7b3a;padding:8px 12px}
details{margin:6px 0;border:1px solid #d3dde6;border-radius:4px;padding:4px 10px}
summary{cursor:pointer;font-weight:600}
svg.diagram{max-width:100%;height:auto;border:1px solid #d3dde6;background:#fcfdfe}
svg .node rect{fill:#eef3f7;stroke:#0b3d63}
svg .node.final rect{fill:#dff3e4;stroke:#1e7b3a}
svg .node text{font:12px ui-monospace,Consolas,monospace;fill:#1d1d1f}
svg .edge{fill:none;stroke:#555;stroke-width:1.2}
svg .edge.back{stroke-dasharray:4 3}
svg .pseudo{fill:#1d1d1f}
svg .pseudo-ring{fill:none;stroke:#1d1d1f}
@media print{nav{display:none}details{break-inside:avoid}}
"""

_SECTIONS = (
    ("waves", "Waves"),
    ("counts", "Devices per state"),
    ("attention", "Needs attention"),
    ("failures", "Failures"),
    ("rollback", "Rollback"),
    ("entra-keys", "Hello keys left in Entra ID"),
    ("entra-preflight", "Entra ID at preflight"),
    ("graph-requests", "Graph requests per device"),
    ("timelines", "Device timelines"),
    ("audit", "Audit log"),
    ("diagram", "State diagram"),
)


def render_html(report: Report) -> str:
    """The whole report as one HTML document."""
    scope = f"wave {report.wave}" if report.wave is not None else "all waves"
    nav = _join(Html(f'<a href="#{anchor}">{esc(title)}</a>') for anchor, title in _SECTIONS)
    parts = [
        Html('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'),
        # No script may run and nothing may load from elsewhere: the file is the whole report.
        Html(
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
            'img-src data:">'
        ),
        Html('<meta name="viewport" content="width=device-width, initial-scale=1">'),
        Html(f"<title>migrator report: {esc(scope)}</title><style>{_CSS}</style></head><body>"),
        Html("<header><h1>Windows Hello for Business: migration to cloud Kerberos trust</h1>"),
        _tag("p", f"Scope: {scope}. Generated {iso(report.generated_at)} from store {report.store}."),
        Html(f"</header><nav>{nav}</nav>"),
        _section("waves", "Waves", _waves(report.waves)),
        _section("counts", "Devices per state", _counts(report)),
        _section("attention", "Needs attention", _attention(report)),
        _section("failures", "Failures", _failures(report)),
        _section("rollback", "Rollback", _rollbacks(report.rollbacks)),
        _section("entra-keys", "Hello keys left in Entra ID", _entra_keys(report.deleted_containers)),
        _section("entra-preflight", "Entra ID at preflight", _entra_preflight(report.entra_preflight)),
        _section("graph-requests", "Graph requests per device", _graph_requests(report.graph_requests)),
        _section("timelines", "Device timelines", _timelines(report.devices)),
        _section("audit", "Audit log", _audit(report)),
        _section("diagram", "State diagram", _diagram(report)),
        Html("</body></html>\n"),
    ]
    return "\n".join(parts)


def _section(anchor: str, title: str, body: Html) -> Html:
    return Html(f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{body}</section>')


def _waves(waves: Sequence[WaveSummary]) -> Html:
    if not waves:
        return _none("No wave is recorded in this store.")
    rows = []
    for w in waves:
        wave = w.status.wave
        approvals = (
            _join(
                _tag("div", f"{iso(a.at)} {a.actor} ({a.action})" + (f": {a.detail}" if a.detail != "null" else ""))
                for a in w.approvals
            )
            if w.approvals
            else Html("none recorded")
        )
        rows.append(
            [
                wave.name,
                wave.change_ticket,
                wave.playbook_name,
                _tag("code", wave.playbook_hash),
                _state(wave.state),
                w.started_at,
                w.ended_at,
                w.status.devices,
                approvals,
                _tag("code", wave.audit_head.anchor) if wave.audit_head is not None else None,
            ]
        )
    headers = ["wave", "change ticket", "playbook", "playbook SHA-256", "state", "started", "ended", "devices"]
    table = _table([*headers, "approvals", "audit head (last change)"], rows)
    warnings = [
        _tag(
            "p",
            f"INSECURE TRANSPORT: wave {w.status.wave.name} reached {len(w.status.insecure_devices)} device(s) with "
            f"TLS certificate verification turned off (ca_bundle: insecure-skip-verify): "
            + ", ".join(w.status.insecure_devices),
            "bad",
        )
        for w in waves
        if w.status.insecure_devices
    ]
    return Html(_join(warnings) + table) if warnings else table


def _counts(report: Report) -> Html:
    if not report.counts:
        return _none("No device is enrolled.")
    total = sum(report.counts.values())
    rows = [
        [_state(state), n, Html(f'<span class="bar" style="width:{max(1, round(200 * n / total))}px"></span>')]
        for state, n in report.counts.items()
    ]
    overall = _table(["state", "devices", ""], [*rows, ["total", total, ""]])
    if len(report.waves) < 2:
        return overall
    states = ordered_states(report.counts)
    matrix = [
        [w.status.wave.name, *(w.status.counts.get(s, 0) for s in states), w.status.devices] for w in report.waves
    ]
    return Html(overall + _tag("h3", "Per wave") + _table(["wave", *states, "total"], matrix))


def _attention(report: Report) -> Html:
    if not report.attention:
        return _none("No device is in error, failed, stalled, unreachable or waiting.")
    rows = [[d.name, d.device.wave, _state(d.device.state), d.since, d.reason] for d in report.attention]
    return _table(["device", "wave", "state", "since", "reason"], rows)


def _failures(report: Report) -> Html:
    if not report.failures:
        return _none("No device or user failed.")
    rows = [[f.device, f.wave, f.user, _state(f.state), f.at, f.reason] for f in report.failures]
    return _table(["device", "wave", "user", "state", "failed at", "reason"], rows)


def _rollbacks(rollbacks: Sequence[RollbackView]) -> Html:
    if not rollbacks:
        return _none("No device was rolled back.")
    parts = [
        _tag(
            "p",
            "Rollback writes back the policy values recorded before migration (values that did not exist are "
            "removed). A deleted Hello container cannot be restored: its user re-provisions Windows Hello under "
            "the restored policy at the next sign-in.",
        )
    ]
    for view in rollbacks:
        heading = Html(f"{esc(view.device)} (wave {esc(view.wave)}) ") + _state(view.state)
        parts.append(_tag("h3", heading))
        if view.restored:
            rows = [
                [
                    _tag("span", v.key, "mono"),
                    v.name or "(Default)",
                    _value(v.existed, v.type, v.data),
                    v.action or "not reported",
                ]
                for v in view.restored
            ]
            parts.append(_table(["registry key", "value", "restored to", "action"], rows))
        else:
            parts.append(_none("No policy value was recorded before migration: nothing to restore."))
        for gone in view.not_restorable:
            parts.append(
                _tag(
                    "p",
                    f"Not restorable: the Hello container of {gone.user} was deleted"
                    f"{' at ' + str(iso(gone.deleted_at)) if gone.deleted_at else ''}; "
                    "the user re-provisions under the restored policy.",
                    "warn",
                )
            )
        for problem in view.problems:
            parts.append(_tag("p", problem, "bad"))
    return _join(parts)


def _value(existed: bool, kind: str | None, data: object) -> str:
    if not existed:
        return "absent (the value is removed)"
    shown = data if isinstance(data, str) else json.dumps(data)
    return f"{shown} ({kind or 'unknown type'})"


def _entra_keys(deleted: Sequence[DeletedContainer]) -> Html:
    if not deleted:
        return _none("No Hello container was deleted.")
    left = [c for c in deleted if c.entra_key_remains]
    removed = len(deleted) - len(left)
    intro = _tag(
        "p",
        "Deleting a Windows Hello for Business container on the device does not remove the user's key from "
        "Microsoft Entra ID: the old Hello key stays registered in Entra ID (the user's authentication methods) "
        "until an admin removes it. With the playbook's entra: remove_stale_hello_keys (or `migrator entra cleanup "
        "--wave W`) migrator removes exactly that key, identified by the NgcKeyId recorded before the container "
        f"was deleted, once the user is verified on the new one. {removed} removed, {len(left)} left in Entra ID.",
        "warn" if left else "none",
    )
    rows = []
    for c in deleted:
        warning = _tag("span", f"WARNING: {c.delete_warning}", "state failed") if c.delete_warning else "not recorded"
        label = c.entra_key.replace("_", " ")
        key_cell = _tag(
            "span",
            f"{label}: {c.entra_detail}" if c.entra_detail else label,
            "state failed" if c.entra_key in ("failed", "in_doubt") else None,
        )
        rows.append([c.device, c.wave, c.user, c.sid, _tag("span", c.key_id, "mono"), c.deleted_at, key_cell, warning])
    table = _table(
        ["device", "wave", "user", "SID", "NgcKeyId", "container deleted", "key in Entra ID", "passkeys"], rows
    )
    passkey_note = _tag(
        "p",
        "Windows 11 keeps device-bound passkeys in the Hello container, so deleting the container deletes them; "
        "they must be registered again with each site. The device does not tell whether a container holds any: "
        "on Windows 11 migrator records a warning with every delete. 'not recorded' means no warning was recorded "
        "with that delete.",
        "none",
    )
    return Html(intro + table + passkey_note)


def _graph_requests(spent: Sequence[DeviceSpend]) -> Html:
    if not spent:
        return _none("No Microsoft Graph request was recorded for these devices.")
    total = sum(g.total for g in spent)
    intro = _tag(
        "p",
        f"Microsoft Graph requests sent for each device ({total:.0f} in all, {total / len(spent):.2f} per device): "
        "its preflight reads (a shared read split evenly over the devices it served), the removal of its users' "
        "stale Hello keys, and its Intune group changes (split evenly over the devices of the batch). Token "
        "requests are not counted.",
        "none",
    )
    rows = [
        [g.device, *(f"{g.requests[kind]:.2f}" for kind in KINDS), f"{g.total:.2f}"]
        for g in sorted(spent, key=lambda g: g.device.casefold())
    ]
    table = _table(["device", "preflight reads", "stale key cleanup", "Intune groups", "total"], rows)
    return Html(intro + table)


def _entra_preflight(findings: Sequence[EntraFinding]) -> Html:
    if not findings:
        return _none("Entra ID was not read at preflight (no Graph settings, or no device preflighted yet).")
    flagged = [f for f in findings if f.problem]
    intro = _tag(
        "p",
        "What Microsoft Entra ID held for each device when it was preflighted: its device object (a device without "
        "an enabled one gets no Primary Refresh Token, so no cloud Kerberos ticket) and its users' Windows Hello "
        f"for Business keys. {len(flagged)} of {len(findings)} devices have a device object to look at.",
        "warn" if flagged else "none",
    )
    rows = []
    for f in findings:
        state = f.device_object.replace("_", " ")
        device_cell = _tag(
            "span", f"{state}: {f.problem}" if f.problem else state, "state failed" if f.problem else None
        )
        users = f.finding.get("users") if isinstance(f.finding.get("users"), dict) else {}
        lines = []
        for sid, user in (users or {}).items():
            if not isinstance(user, dict) or not user.get("read"):
                error = user.get("error", "") if isinstance(user, dict) else ""
                lines.append(_tag("div", f"{sid}: not read ({error})", "state failed"))
                continue
            methods = user.get("hello_methods") or []
            keys = "; ".join(f"{m.get('key_id')} (created {m.get('created')})" for m in methods if isinstance(m, dict))
            lines.append(_tag("div", f"{user.get('upn') or sid}: {len(methods)} key(s){': ' + keys if keys else ''}"))
        rows.append([f.device, f.finding.get("device_id"), device_cell, _join(lines), f.recorded_at])
    table = _table(["device", "Entra deviceId", "device object", "users' Hello keys in Entra ID", "read at"], rows)
    latest = max(findings, key=lambda f: f.recorded_at)
    policy = latest.finding.get("enrollment_policy")
    failures = latest.finding.get("failures") or {}
    if isinstance(policy, dict):
        text = (
            f"Windows Hello for Business enrollment policy ({policy.get('display_name')}): {policy.get('state')}. "
            f"It is applied only when a device enrolls in Intune: {policy.get('at_reenrollment')}."
        )
    elif isinstance(failures, dict) and "enrollment" in failures:
        text = f"The Windows Hello for Business enrollment policy could not be read: {failures['enrollment']}"
    else:
        text = "The tenant has no Windows Hello for Business enrollment policy."
    return Html(intro + table + _tag("p", text, "none"))


def _timelines(devices: Sequence[DeviceReport]) -> Html:
    if not devices:
        return _none("No device is enrolled.")
    return _join(_device(d) for d in devices)


def _device(report: DeviceReport) -> Html:
    status = report.status
    d = status.device
    summary = Html(
        f"{esc(d.name)} ({esc(d.wave)}): "
        + _state(d.state)
        + esc(f" path {d.path or 'unknown'}; users {status.users_migrated}/{len(status.users)} migrated")
    )
    deleted = {c.user.casefold(): c for c in report.deleted}
    users = _table(
        ["user", "SID", "state", "container at preflight", "NgcKeyId", "container deleted", "last error"],
        [
            [
                u.name,
                u.sid,
                _state(u.state),
                u.container_trust,
                _tag("span", u.key_id, "mono"),
                _deleted_cell(deleted.get(u.name.casefold())),
                u.last_error,
            ]
            for u in status.users
        ],
    )
    facts = _tag("p", f"Last change {iso(status.last_change)}. Last error: {d.last_error or 'none'}.")
    if status.unreachable_since is not None:
        facts += _tag("p", f"No answer since {iso(status.unreachable_since)}.")
    if status.traceback:
        facts += _tag("p", "The unexpected exception (migrator resume retries the device once it is fixed):")
        facts += _tag("pre", status.traceback)
    events = (
        _table(
            ["time", "kind", "user", "what", "event / status", "finished", "detail"],
            [[e.at, e.kind, e.user, e.what, e.status, e.finished_at, e.detail] for e in report.timeline],
            "timeline",
        )
        if report.timeline
        else _none("Nothing happened to this device yet.")
    )
    open_attr = " open" if attention(d.state) in ("failed", "error") else ""
    body = facts + (users if status.users else _none("No user recorded.")) + events
    return Html(f"<details{open_attr}><summary>{summary}</summary>{body}</details>")


def _deleted_cell(gone: DeletedContainer | None) -> object:
    if gone is None:
        return False
    return gone.deleted_at or True


def _audit(report: Report) -> Html:
    audit = report.audit
    if audit.ok:
        verdict = _tag(
            "p",
            f"The hash chain of all {audit.entries} audit entries verifies: no entry was edited or removed.",
            "good",
        )
    else:
        verdict = _tag("p", f"The audit hash chain does NOT verify ({len(audit.problems)} problems).", "bad")
    head = _tag(
        "p",
        Html(
            "Head of the chain (paste this line into the change ticket: `migrator audit verify --anchor` checks "
            "the store against it later): "
        )
        + _tag("code", audit.head.anchor),
    )
    problems = (
        _table(["entry", "problem", "detail"], [[p.entry_id, p.kind, p.detail] for p in audit.problems])
        if audit.problems
        else Html("")
    )
    return Html(verdict + head + problems)


def _diagram(report: Report) -> Html:
    diagram = report.diagram
    rows = f"the rows of playbook {diagram.playbook}" if diagram.playbook else "every legal transition"
    origin = _tag("p", f"Drawn from the state machine's transition table ({rows}).")
    if not diagram.graphs:
        return Html(origin + _none("The transition table has no row to draw."))
    pictures = _join(
        Html(_tag("h3", graph.title) + Html(svg(graph.edges, title=graph.title))) for graph in diagram.graphs
    )
    legend = _tag("p", "Dashed arrows go back to an earlier state (retries, resumes, rechecks).", "none")
    return Html(origin + pictures + legend + _tag("h3", "Mermaid source") + _tag("pre", diagram.mermaid))
