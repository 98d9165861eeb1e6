"""TLS certificate verification: on by default, off only when an inventory says so in words, and then loudly.

HTTPS verifies the device's certificate against the system's CAs, or against ``ca_bundle`` (a private CA). The
one way to turn verification off is ``ca_bundle: insecure-skip-verify`` (:data:`INSECURE_SKIP_VERIFY`), for a
lab you trust. A plain ``cert_validation: false``, or a ``ca_bundle`` of ``false``/``off``/``no``/``none``,
is refused with a message saying what to write: a setting that reads like a typo must not silently drop the
protection against a man in the middle (who would get the NTLM exchange and every script's output).

When verification is off for some devices, every command that connects to them calls :func:`announce`: a
warning on standard error and a ``tls verification off`` record in the JSON log, each naming the devices; a
wave records them in its settings (:data:`INSECURE_TRANSPORT`), whence the reports show them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from migrator.errors import ConfigurationError, InputError
from migrator.logs import get_logger

if TYPE_CHECKING:
    from migrator.inventory import Connection, DeviceEntry, Inventory

INSECURE_SKIP_VERIFY = "insecure-skip-verify"
INSECURE_TRANSPORT = "insecure_transport"  # the key of a wave's settings: devices reached without verification
_OFF_WORDS = frozenset({"false", "off", "no", "none", "0", "ignore", "disabled", "skip", "insecure"})
HOW_TO_TURN_OFF = (
    f"to turn TLS certificate verification off on purpose (a lab you trust), write `ca_bundle: {INSECURE_SKIP_VERIFY}`"
)


class InsecureSetting(InputError):
    """An inventory turns verification off without saying so in words; ``problems``: (field, message) pairs."""

    def __init__(self, path: str, problems: Sequence[tuple[str, str]]) -> None:
        self.path = path
        self.problems = list(problems)
        super().__init__("\n".join(f"{path}: {field}: {message}" for field, message in self.problems))


def verification_off(connection: Connection) -> bool:
    """True when the inventory wrote ``ca_bundle: insecure-skip-verify`` for this device (over HTTPS)."""
    return (
        connection.scheme == "https"
        and connection.ca_bundle is not None
        and connection.ca_bundle.name == INSECURE_SKIP_VERIFY
    )


def tls_verify(device: str, connection: Connection) -> bool | str:
    """What the client library's ``verify`` takes: True (system CAs), a CA bundle path, or False (marked off).

    A ``cert_validation: false`` that reached here without the marker (an inventory that was not checked with
    :func:`insecure_devices`) is refused, never obeyed."""
    if verification_off(connection):
        return False
    if not connection.cert_validation:
        raise ConfigurationError(device, f"cert_validation: false is refused; {HOW_TO_TURN_OFF}")
    return str(connection.ca_bundle) if connection.ca_bundle is not None else True


def _raw_off(source: object) -> list[tuple[str, str]]:
    """(field, message) for each setting of one inventory entry that turns verification off without the marker."""
    found: list[tuple[str, str]] = []
    if getattr(source, "cert_validation", None) is False:
        found.append(("cert_validation", f"`cert_validation: false` is no longer accepted; {HOW_TO_TURN_OFF}"))
    bundle = getattr(source, "ca_bundle", None)
    if isinstance(bundle, str) and bundle.strip().casefold() in _OFF_WORDS:
        found.append(("ca_bundle", f"`ca_bundle: {bundle}` is not a CA bundle file; {HOW_TO_TURN_OFF}"))
    return found


def insecure_devices(inventory: Inventory, devices: Iterable[DeviceEntry] | None = None) -> list[str]:
    """The devices (of ``devices``, default all) reached without certificate verification; :class:`InsecureSetting`
    if the inventory anywhere turns verification off without ``ca_bundle: insecure-skip-verify``."""
    problems = [(f"defaults.{field}", message) for field, message in _raw_off(inventory.data.defaults)]
    for index, entry in enumerate(inventory.devices):
        problems += [(f"devices[{index}].{field}", message) for field, message in _raw_off(entry)]
    if problems:
        raise InsecureSetting(str(inventory.path), problems)
    chosen = inventory.devices if devices is None else list(devices)
    return [entry.name for entry in chosen if verification_off(inventory.connection(entry))]


def announce(devices: Sequence[str], *, command: str, wave: str | None = None, say: Callable[[str], None]) -> None:
    """Warn that ``devices`` are reached without certificate verification: ``say`` it (standard error) and log
    it. Nothing when the list is empty."""
    if not devices:
        return
    shown = ", ".join(devices[:10]) + (f" and {len(devices) - 10} more" if len(devices) > 10 else "")
    say(
        f"WARNING: TLS certificate verification is OFF for {len(devices)} device(s) ({shown}): the inventory says "
        f"`ca_bundle: {INSECURE_SKIP_VERIFY}`. Anyone on the path can pose as these devices."
    )
    get_logger("remote.tls").warning(
        "tls verification off", command=command, wave=wave, devices=list(devices), count=len(devices)
    )
