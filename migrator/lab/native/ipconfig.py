"""``ipconfig``, ``ipconfig /all`` and ``ipconfig /flushdns`` for the lab's one network adapter.

Layout (``ipconfig /?``; learn.microsoft.com windows-commands/ipconfig; sample ``tests/lab/outputs/ipconfig_all.txt``):
"Windows IP Configuration", then per adapter ``Ethernet adapter <name>:`` and its fields as
``   Label . . . . : value``, the labels dotted out to one column.

What the adapter holds is the lab's network model: the address the device's WinRM listener answers on (its
IPv4 address, statically configured, no gateway: the lab routes nothing), the device's DNS suffix, and its
AD domain controller's address as DNS server (the address nltest prints). The MAC address and the link-local
address are derived from the device name. Other switches (``/release``, ``/renew``, ``/displaydns``,
``/registerdns``...) are refused as not modelled.
"""

from __future__ import annotations

import ipaddress

from migrator.lab import boundary
from migrator.lab.derived import derived_bytes
from migrator.lab.native._common import NativeContext, text
from migrator.lab.shell import NativeResult

ADAPTER = "Ethernet"
DESCRIPTION = "Intel(R) Ethernet Connection (16) I219-LM"
_LABEL_WIDTH = 33  # "Connection-specific DNS Suffix  ." and every other label are dotted out to this width


def label(name: str) -> str:
    """``IPv4 Address`` → ``   IPv4 Address. . . . . . . . . . . : `` (dots on the even columns, as ipconfig)."""
    out = name
    if len(out) % 2:
        out += " "
    else:
        out += "."
    while len(out) < _LABEL_WIDTH:
        out += " ." if len(out) % 2 else ". "
    return "   " + out[:_LABEL_WIDTH].rstrip(" ").ljust(_LABEL_WIDTH) + " : "


def run(ctx: NativeContext, args: list[str]) -> NativeResult:
    options = [a.casefold() for a in args]
    if options in ([], ["/all"]):
        return NativeResult(stdout=text(_configuration(ctx, detailed=bool(options))))
    if options == ["/flushdns"]:
        return NativeResult(
            stdout=text(["", "Windows IP Configuration", "", "Successfully flushed the DNS Resolver Cache."])
        )
    message = boundary.native_refusal("ipconfig " + " ".join(args), "lab/native/ipconfig")
    return NativeResult(stderr=text([message]), exit_code=boundary.EXIT_CODE)


def _mac(ctx: NativeContext) -> str:
    raw = bytearray(derived_bytes(6, "mac", ctx.device.name))
    raw[0] = (raw[0] & 0xFC) | 0x00  # a universally administered unicast address
    return "-".join(f"{b:02X}" for b in raw)


def _link_local(ctx: NativeContext) -> str:
    raw = derived_bytes(8, "link-local", ctx.device.name)
    groups = [f"{int.from_bytes(raw[i : i + 2], 'big'):x}" for i in range(0, 8, 2)]
    return "fe80::" + ":".join(groups) + "%12"


def _configuration(ctx: NativeContext, detailed: bool) -> list[str]:
    device = ctx.device
    domain = ctx.lab.domain_of(device)
    suffix = device.domain or ""
    address = ipaddress.ip_address(device.address)
    mask = "255.0.0.0" if address.is_loopback else "255.255.255.0"
    lines = ["", "Windows IP Configuration", ""]
    if detailed:
        lines += [
            label("Host Name") + device.name,
            label("Primary Dns Suffix ") + suffix,
            label("Node Type") + "Hybrid",
            label("IP Routing Enabled") + "No",
            label("WINS Proxy Enabled") + "No",
        ]
        if suffix:
            lines.append(label("DNS Suffix Search List") + suffix)
        lines.append("")
    lines += [f"{ADAPTER} adapter {ADAPTER}:", ""]
    lines.append(label("Connection-specific DNS Suffix ") + suffix)
    if detailed:
        lines += [
            label("Description") + DESCRIPTION,
            label("Physical Address") + _mac(ctx),
            label("DHCP Enabled") + "No",
            label("Autoconfiguration Enabled") + "Yes",
        ]
    lines.append(label("Link-local IPv6 Address") + _link_local(ctx) + ("(Preferred) " if detailed else ""))
    lines.append(label("IPv4 Address") + str(address) + ("(Preferred) " if detailed else ""))
    lines.append(label("Subnet Mask") + mask)
    lines.append(label("Default Gateway"))
    if detailed:
        dns = domain.dc_address if domain is not None and device.domain_joined else ""
        lines += [label("DNS Servers") + dns, label("NetBIOS over Tcpip") + "Enabled"]
    return lines
