"""A running lab: the fleet's behaviour, its WinRM listeners and its control endpoint, started and stopped as one.

``migrator lab up`` and ``migrator demo`` use :class:`LabRuntime`; so do integration tests (in-process, on free
ports: ``LabPorts(http=0, https=0)``). Starting it:

1. wraps the fleet in a :class:`~migrator.lab.windows.Lab` on a :class:`~migrator.lab.clock.ScaledClock`
   (virtual time runs ``speed`` times real time), wired to its executor by :func:`new_lab` (the only place that
   wiring is done: tests build their labs with it too), and starts the fleet's background life;
2. gives every device its listeners (HTTP and HTTPS on its own 127.x address, the same two ports for the whole
   fleet: the ones asked for, or free ones for 0 or, with ``free_if_taken``, for a port another program holds)
   through :class:`~migrator.lab.server.LabServer`, on one event loop thread;
3. gives every lab domain a domain controller (:mod:`migrator.lab.directory`): its directory generated from
   the fleet and its seed, LDAP and LDAPS (lab CA) on its own 127.x address (127.19.0.1 upward by default),
   where the admin account binds with the same password as on the devices;
4. starts the lab tenant (:mod:`migrator.lab.graph`): the token endpoint and Microsoft Graph v1.0 over HTTPS
   (lab CA) on its own address (127.18.0.1 by default) and a free port, Intune check-ins on the lab's clock;
5. starts the control endpoint on 127.0.0.1;
6. writes, atomically and only once everything listens: the inventory (with the ports chosen, each device's
   ``fqdn`` and the ``lab: domains:`` contract: ``name``, ``realm``, ``dc_address``, ``ldap_port``,
   ``ldaps_port``, ``kdc_port``, which stays null until the lab has a KDC; and ``lab: graph:`` ``url``,
   ``authority``, ``tenant_id``), ``lab-ca.pem`` and ``lab-secrets.env`` (mode 0600: the admin account's user
   name and password, the control token, and the tenant app's ``MIGRATOR_GRAPH_CLIENT_ID`` and
   ``MIGRATOR_GRAPH_CLIENT_SECRET``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from migrator.errors import InputError
from migrator.lab.clock import ScaledClock, SimClock
from migrator.lab.control import ControlServer
from migrator.lab.directory.accounts import DirectoryAccounts
from migrator.lab.directory.build import build_directories, group_policy_engine
from migrator.lab.directory.kdc import KdcError, KdcSet, Realm, install_hint, missing_tools
from migrator.lab.directory.server import DirectoryServer, default_addresses
from migrator.lab.executor import LabExecutor
from migrator.lab.graph import GraphServer, GraphTenant
from migrator.lab.model import Fleet
from migrator.lab.server import Account, BackgroundLab, FaultPlan, LabServer
from migrator.lab.windows import ADMIN_SID, Lab
from migrator.remote.credentials import read_env_file

SECRETS_NAME = "lab-secrets.env"
CA_NAME = "lab-ca.pem"
KRB5_CONF_NAME = "krb5.conf"


def new_lab(fleet: Fleet, clock: SimClock, seed: int | None = None) -> Lab:
    """A lab whose devices run scripts and command lines: the one place the device behaviour
    (:mod:`migrator.lab.windows`) is wired to its executor (:class:`~migrator.lab.executor.LabExecutor`: the
    interpreter of :mod:`migrator.lab.ps`, the device cmdlets and the native commands). Below this module the
    two know each other only through the :class:`~migrator.lab.shell.Executor` contract."""
    return Lab(fleet, clock, seed, executor=LabExecutor)


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    """Write a file so readers see the old or the new content, never a part (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_lab_secrets(inventory: Path) -> dict[str, str]:
    """The ``lab-secrets.env`` beside an inventory (for ``lab inspect`` / ``lab user``)."""
    path = inventory.parent / SECRETS_NAME
    if not path.exists():
        raise InputError(f"{path}: not found; it is written by `migrator lab up` beside its inventory")
    return read_env_file(path)


@dataclass(frozen=True)
class LabPorts:
    """Ports of the fleet's listeners (None: no such listener; 0: a free one) and of the control endpoint."""

    http: int | None = 5985
    https: int | None = 5986
    control: int = 0  # 0 = any free port
    free_if_taken: bool = False  # a device port another program holds is replaced by a free one, not an error
    ldap: int | None = 389  # every domain controller's LDAP port (None: no such listener; 0: a free one)
    ldaps: int | None = 636
    ldap_free_if_taken: bool = True  # a DC port that is taken (or privileged) is replaced by a free one
    graph: int = 0  # the lab tenant's HTTPS port (0: a free one)


class LabRuntime:
    """Start/stop a whole lab around a fleet."""

    def __init__(
        self,
        fleet: Fleet,
        work_dir: Path,
        *,
        speed: float = 60.0,
        ports: LabPorts = LabPorts(),
        faults: FaultPlan | None = None,
        password: str | None = None,
        dc_addresses: dict[str, str] | None = None,
        gpo_refresh: bool = True,
        kerberos: bool | None = False,
        graph_address: str | None = None,
        intune_check_ins: bool = False,
    ) -> None:
        """``dc_addresses``: the loopback address of each domain's DC by DNS name (default 127.19.0.1 upward).
        ``gpo_refresh``: devices refresh Group Policy in the background every 90 + 0-30 virtual minutes, as
        Windows does (on by default: a local registry write to a GPO-managed value is then overwritten, which the
        product's ``ad-group`` channel avoids and its ``local`` channel warns about; False turns it off, as
        ``lab up --no-gpo-refresh``); gpupdate and boot apply it either way.
        ``kerberos``: True starts a KDC per realm or fails (:class:`InputError` saying what to install), False
        runs NTLM only (the default, for tests and the demo), None (``lab up``'s default) starts the KDCs where MIT
        Kerberos is installed.
        ``graph_address``: the lab tenant's loopback address (default 127.18.0.1).
        ``intune_check_ins``: Intune-enrolled devices check in every ~8 virtual hours and get their groups'
        profiles, as Intune does (off by default for the same reason as ``gpo_refresh``: a check-in overwrites
        the product's local writes to the MDM policy key); ``syncDevice`` applies them either way."""
        self.fleet = fleet
        self.work_dir = work_dir
        self.ports = ports
        self.clock = ScaledClock(start=fleet.clock, speed=speed)
        self.lab = new_lab(fleet, self.clock)
        self.password = password or secrets.token_urlsafe(18)
        self.token = secrets.token_urlsafe(24)
        self.server = LabServer(
            self.lab.executor,
            work_dir,
            http_port=ports.http,
            https_port=ports.https,
            faults=faults or FaultPlan(),
            free_if_taken=ports.free_if_taken,
        )
        self.background = BackgroundLab(self.server)
        self.directories = build_directories(fleet)
        addresses = default_addresses(self.directories)
        addresses.update({k.casefold(): v for k, v in (dc_addresses or {}).items()})
        self.directory = DirectoryServer(
            self.directories,
            self.server.ca,
            addresses,
            ldap_port=ports.ldap,
            ldaps_port=ports.ldaps,
            free_if_taken=ports.ldap_free_if_taken,
        )
        self.group_policy = group_policy_engine(self.directories, fleet.directory_changes)
        self.lab.group_policy = self.group_policy
        self.lab.accounts = DirectoryAccounts(
            {k: d.tree for k, d in self.directories.items()}, {k: d.domain.sid for k, d in self.directories.items()}
        )
        self.lab.gpo_background_refresh = gpo_refresh
        for device in fleet.devices:
            self.lab.remember_group_policy(device)
        admin = fleet.admin
        for key, directory in self.directories.items():
            entry = directory.tree.find_account(admin.username)
            if entry is not None:
                self.directory.set_password(entry, key, self.password)
        self.kerberos_missing = missing_tools() if kerberos is not False else []
        if kerberos and self.kerberos_missing:
            missing = ", ".join(self.kerberos_missing)
            raise InputError(f"--kerberos: {missing} not found on PATH; {install_hint()}")
        self.kdc: KdcSet | None = None
        if kerberos is not False and not self.kerberos_missing:
            self.kdc = KdcSet(work_dir, self._realms(addresses), admin.username, self.password)
        self.tenant = GraphTenant(self.lab, check_ins=intune_check_ins)
        graph_options = {"address": graph_address} if graph_address else {}
        self.graph = GraphServer(
            self.tenant, self.server.ca, port=ports.graph, faults=self.server.faults, **graph_options
        )
        self.control = ControlServer(self.lab, self.token, self._power, self.directory, self.group_policy)
        self.control_url = ""
        self._started = False

    def _realms(self, addresses: dict[str, str]) -> list[Realm]:
        """One realm per lab domain, named as AD names them (the DNS name in capitals), with its principals."""
        realms: dict[str, Realm] = {}
        for key, directory in self.directories.items():
            domain = directory.domain
            users = [
                entry.text("sAMAccountName")
                for entry in directory.tree.subtree(directory.tree.base_dn)
                if entry.is_a("user") and not entry.is_a("computer") and entry.text("sAMAccountName")
            ]
            # krbtgt and krbtgt_AzureAD are the KDCs' own accounts: MIT names its TGS krbtgt/REALM instead.
            users = [user for user in users if not user.casefold().startswith("krbtgt")]
            realms[key] = Realm(
                name=domain.dns_name.upper(),
                dns_domain=domain.dns_name.lower(),
                address=addresses[key],
                users=users,
                dc_hosts=[domain.dc_name],
            )
        first = next(iter(realms.values()), None)
        for device in self.fleet.devices:
            realm = realms.get((device.domain or "").casefold(), first)
            if realm is not None:  # a device outside every domain is named in the first realm
                realm.hosts += [device.name, device.fqdn]
        return list(realms.values())

    @property
    def admin_account(self) -> Account:
        admin = self.fleet.admin
        return Account(username=admin.username, password=self.password, sid=ADMIN_SID, domain=admin.domain)

    async def _power(self, device: str, action: str, duration: float | None) -> None:
        await power(self.lab, self.server, self.background, device, action, duration)

    def start(self) -> None:
        """Listen for every device and the control API; raise :class:`InputError` if an address is taken."""
        kdc_thread: threading.Thread | None = None
        kdc_failure: list[BaseException] = []
        if self.kdc is not None:
            kdc = self.kdc

            def start_kdc() -> None:
                try:
                    kdc.prepare()
                except BaseException as err:  # reported on the starting thread below
                    kdc_failure.append(err)

            # The realms are built while the listeners start: most of a KDC's start is kadmin.local's work.
            kdc_thread = threading.Thread(target=start_kdc, name="migrator-lab-kdc", daemon=True)
            kdc_thread.start()
        try:
            self._start_listeners()
        finally:
            if kdc_thread is not None:
                kdc_thread.join()
        if self.kdc is not None and not kdc_failure:
            try:
                self.kdc.launch()  # on this thread: the KDCs die with the thread that started them
            except KdcError as err:
                kdc_failure.append(err)
        if kdc_failure:
            self.stop()
            raise InputError(f"cannot start the lab's Kerberos KDC: {kdc_failure[0]}") from None
        if self.kdc is not None:
            self._accept_kerberos()
            self.directory.accept_kerberos(self.kdc.keytab_for, self.kdc.krb5_conf_path)

    def _add_devices(self) -> None:
        """Give every device its listeners (a lab in several processes gives them to its shards instead)."""
        account = self.admin_account
        for device in self.fleet.devices:
            self.server.add_device(
                device.name, device.address, [account], computer_name=device.name, hostname=device.fqdn
            )

    def _start_life(self) -> None:
        """Start the fleet's background life and the clock, once everything listens."""
        self.lab.start_simulation()
        self.clock.start()

    def _start_listeners(self) -> None:
        self._add_devices()
        try:
            self.background.start()
        except OSError as err:
            self._abort()
            if err.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL):
                raise InputError(f"cannot listen: {err.strerror} ({err}); is another lab running?") from None
            raise
        try:
            self.background.call(self.directory.start())
        except OSError as err:
            self._abort()
            raise InputError(f"cannot listen for the domain controllers: {err.strerror} ({err})") from None
        for domain in self.fleet.domains:
            # nltest /dsgetdc prints the address the domain's DC really answers on.
            domain.dc_address = self.directory.controller(domain.dns_name).address
        try:
            self.graph.start()
        except OSError as err:
            self._abort()
            raise InputError(
                f"cannot listen for the lab tenant at {self.graph.address}: {err.strerror} ({err})"
            ) from None
        port = self.background.call(self.control.start(self.ports.control))
        self.control_url = f"http://127.0.0.1:{port}"
        self._start_life()
        self._started = True

    def _accept_kerberos(self) -> None:
        """The device listeners accept Kerberos: each computer with its own keys only."""
        assert self.kdc is not None
        for device in self.fleet.devices:
            self.server.keytabs[device.name] = self.kdc.keytab_for([device.name, device.fqdn])
        self.server.krb5_config = self.kdc.krb5_conf_path

    @property
    def executions(self) -> int:
        """Commands and pipelines the devices have started."""
        return self.server.executions

    def _abort(self) -> None:
        with contextlib.suppress(Exception):
            self.graph.stop()
        with contextlib.suppress(Exception):
            self.background.stop()

    def write_inventory(self, inventory: Path) -> None:
        """Write lab-ca.pem, lab-secrets.env (0600) and then the inventory, each atomically."""
        folder = inventory.parent
        folder.mkdir(parents=True, exist_ok=True)
        ca_target = folder / CA_NAME
        tmp_ca = folder / f".{CA_NAME}.tmp"
        shutil.copyfile(self.server.ca_bundle_path, tmp_ca)
        os.replace(tmp_ca, ca_target)
        admin = self.fleet.admin
        principal = ""
        if self.kdc is not None and self.kerberos_ready:  # the admin as user@REALM, in its first realm
            principal = f"MIGRATOR_PRINCIPAL={admin.username}@{self.kdc.realms[0].name}\n"
        write_atomic(
            folder / SECRETS_NAME,
            "# Written by `migrator lab up`: the lab's admin account and control token. Keep private.\n"
            f"MIGRATOR_USERNAME={admin.domain}\\{admin.username}\n"
            f"MIGRATOR_PASSWORD={self.password}\n"
            f"{principal}"
            f"MIGRATOR_LAB_TOKEN={self.token}\n"
            f"MIGRATOR_GRAPH_CLIENT_ID={self.graph.client_id}\n"
            f"MIGRATOR_GRAPH_CLIENT_SECRET={self.graph.client_secret}\n",
            mode=0o600,
        )
        if self.kdc is not None and self.kerberos_ready:
            write_atomic(folder / KRB5_CONF_NAME, self.kdc.krb5_conf_path.read_text(encoding="utf-8"))
        write_atomic(inventory, yaml.safe_dump(self.inventory_data(), sort_keys=False, width=200))

    @property
    def kerberos_ready(self) -> bool:
        """The KDCs run: the listeners accept Kerberos."""
        return self.kdc is not None and bool(self.kdc.processes)

    def inventory_data(self) -> dict[str, Any]:
        defaults: dict[str, Any] = {"transport": "psrp", "auth": "ntlm", "ca_bundle": CA_NAME}
        if self.kerberos_ready:
            # The realms' profile beside the inventory: `auth: kerberos` is then all an inventory needs.
            defaults["krb5_conf"] = KRB5_CONF_NAME
        if self.server.https_port is not None:  # the ports listened on: free ones are chosen at start
            defaults.update(scheme="https", port=self.server.https_port)
        else:
            defaults.update(scheme="http", port=self.server.http_port)
        devices = []
        for device in self.fleet.devices:
            entry: dict[str, Any] = {"name": device.name, "address": device.address, "fqdn": device.fqdn}
            if device.domain:
                entry["domain"] = device.domain
            if device.groups:
                entry["groups"] = list(device.groups)
            devices.append(entry)
        return {
            "defaults": defaults,
            "devices": devices,
            "lab": {"control": self.control_url, "domains": self.domains_data(), "graph": self.graph_data()},
        }

    def graph_data(self) -> dict[str, str]:
        """The ``lab: graph:`` contract: where the lab tenant's Graph and authority are, and the tenant id."""
        return {"url": self.graph.url, "authority": self.graph.authority, "tenant_id": self.tenant.tenant_id}

    def domains_data(self) -> list[dict[str, Any]]:
        """The ``lab: domains:`` contract: where each domain's DC listens (ports as chosen at start)."""
        return [
            {
                "name": dc.directory.domain.dns_name,
                "realm": dc.directory.domain.dns_name.upper(),
                "dc_address": dc.address,
                "dc_hostname": dc.controller.dns_host_name.lower(),
                "ldap_port": dc.ldap_port,
                "ldaps_port": dc.ldaps_port,
                "kdc_port": self.kdc.port_of(dc.directory.domain.dns_name.upper()) if self.kdc else None,
            }
            for dc in self.directory.controllers.values()
        ]

    def stop(self) -> Fleet:
        """Stop listening and the clock; the fleet keeps its state and the virtual time reached."""
        if self._started:
            self.clock.stop()
            with contextlib.suppress(Exception):
                self.background.call(self.control.stop())
            with contextlib.suppress(Exception):
                self.background.call(self.directory.stop())
            self.graph.stop()
            self.background.stop()
            self._started = False
        if self.kdc is not None:
            self.kdc.stop()
        self.fleet.clock = self.clock.now()
        return self.fleet


async def power(
    lab: Lab, server: LabServer, background: BackgroundLab, device: str, action: str, duration: float | None
) -> None:
    """The control API's power action on one device this process serves: ``offline`` (back online after
    ``duration`` seconds when given), ``online``, or a reboot (its listener away for ``duration`` seconds)."""
    if action == "offline":
        await server.take_offline(device)
        if duration:
            background.loop.call_later(duration, lambda: background.loop.create_task(server.bring_online(device)))
    elif action == "online":
        await server.bring_online(device)
    else:
        lab.reboot(lab.device(device))
        await server.reboot(device, duration or 0.0)
