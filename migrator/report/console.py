"""Rich renderings of the status view: counts per state and per wave, and the devices that need attention.

Names and errors come from devices: they are given to Rich as :class:`rich.text.Text`, never as markup, so a
device called ``[bold]x`` prints as it is called.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from migrator.report.model import StatusView, gpo_overwritten_devices, iso
from migrator.report.states import SUCCESS_STATES, attention
from migrator.store import LeaseRow

ATTENTION_ROWS = 50  # the table stays readable on a terminal; --json lists every device

_STYLE = {"error": "bold red", "failed": "bold red", "stalled": "yellow", "unreachable": "magenta", "waiting": "cyan"}


def state_text(state: str) -> Text:
    kind = attention(state)
    if kind is not None:
        return Text(state, style=_STYLE[kind])
    return Text(state, style="green" if state in SUCCESS_STATES else "")


def age(since: datetime, now: datetime) -> str:
    """How long ago, coarsely: ``3d 4h``, ``2h 5m``, ``40s``."""
    seconds = max(0, int((now - since) / timedelta(seconds=1)))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {seconds}s"
    return f"{seconds}s"


def counts_table(view: StatusView) -> Table:
    """Rows: states; columns: each wave, then the total."""
    table = Table(title="Devices per state", title_justify="left", header_style="bold")
    table.add_column("state", no_wrap=True)
    for wave in view.waves:
        ticket = f"\n{wave.wave.change_ticket}" if wave.wave.change_ticket else ""
        table.add_column(Text(f"{wave.wave.name}{ticket}\n({wave.wave.state})"), justify="right")
    table.add_column("total", justify="right", style="bold")
    for state in view.states:
        cells = [Text(str(w.counts.get(state, 0) or "")) for w in view.waves]
        table.add_row(state_text(state), *cells, Text(str(view.counts[state])))
    table.add_section()
    table.add_row(
        Text("all", style="bold"),
        *(Text(str(w.devices)) for w in view.waves),
        Text(str(sum(view.counts.values()))),
    )
    return table


def attention_table(view: StatusView) -> Table | Text:
    needing = view.attention
    if not needing:
        return Text("No device is in error, failed, stalled, unreachable or waiting.", style="green")
    table = Table(title=f"Needs attention ({len(needing)})", title_justify="left", header_style="bold")
    for column in ("device", "wave", "state", "since", "reason"):
        table.add_column(column, overflow="fold", no_wrap=column in ("device", "state"))
    for device in needing[:ATTENTION_ROWS]:
        d = device.device
        since = f"{iso(device.since)} ({age(device.since, view.taken_at)} ago)"
        table.add_row(Text(d.name), Text(d.wave), state_text(d.state), Text(since), Text(device.reason))
    if len(needing) > ATTENTION_ROWS:
        table.caption = f"... and {len(needing) - ATTENTION_ROWS} more (migrator status --json lists all)"
    return table


_LIVENESS = {
    "alive": "its process runs on this host",
    "dead": "its process is gone: the next worker takes it over at once",
    "other_host": "another host: free when it expires",
    "unchecked": "an owner that cannot be checked: free when it expires",
}


def lease_line(lease: LeaseRow) -> str:
    """One leased device for people: ``PC-0003 leased by host h pid 123 until 12:01:02 UTC (...)``."""
    holder = f"host {lease.host} pid {lease.pid}" if lease.host is not None else lease.owner
    until = lease.expires_at.astimezone(UTC).strftime("%H:%M:%S")
    return f"{lease.device} leased by {holder} until {until} UTC ({_LIVENESS[lease.liveness]})"


def leases_text(view: StatusView) -> Text:
    lines = Text(f"Leased now ({len(view.leases)})", style="bold")
    for lease in view.leases:
        lines.append(f"\n{lease_line(lease)}", style="dim" if lease.liveness == "dead" else "")
    return lines


def status_renderable(view: StatusView, *, note: str = "") -> RenderableType:
    """The whole status screen (one frame of ``--watch``)."""
    scope = f"wave {view.wave}" if view.wave is not None else "all waves"
    header = Text(f"{scope} · {sum(view.counts.values())} devices · {iso(view.taken_at)} · {view.store}", style="dim")
    parts: list[RenderableType] = [header]
    if not view.waves:
        parts.append(Text("No wave is recorded in this store yet."))
    else:
        parts += [counts_table(view), attention_table(view)]
    for wave in view.waves:
        if wave.insecure_devices:
            names = ", ".join(wave.insecure_devices[:10]) + (" …" if len(wave.insecure_devices) > 10 else "")
            parts.append(
                Text(
                    f"INSECURE TRANSPORT: wave {wave.wave.name} reached {len(wave.insecure_devices)} device(s) "
                    f"without TLS certificate verification (ca_bundle: insecure-skip-verify): {names}",
                    style="bold red",
                )
            )
        overwritten = gpo_overwritten_devices(wave.wave)
        if overwritten:
            names = ", ".join(overwritten[:10]) + (" …" if len(overwritten) > 10 else "")
            parts.append(
                Text(
                    f"GPO-MANAGED: wave {wave.wave.name}: a GPO will undo the local policy writes on "
                    f"{len(overwritten)} device(s) at its next refresh (use the ad-group channel): {names}",
                    style="bold yellow",
                )
            )
    if view.leases:
        parts.append(leases_text(view))
    for unserved in view.unserved:
        parts.append(Text(unserved.line(), style="bold yellow"))
    if note:
        parts.append(Text(note, style="yellow"))
    return Group(*parts)
