"""The lab's Kerberos: one MIT Kerberos KDC (Debian ``krb5-kdc``) per lab realm, on loopback, in the state folder.

Theory of operation
-------------------
:meth:`KdcSet.start` builds every realm from scratch in ``<state>/kdc/<REALM>/`` (a fresh database each start:
the keys are random, so nothing of a previous run is trusted) and starts one ``krb5kdc`` per realm on the
realm's DC address (UDP and TCP on the same free port). Nothing under ``/etc`` is read or written: the KDC
tools run with ``KRB5_CONFIG`` (the lab's ``krb5.conf``) and ``KRB5_KDC_PROFILE`` (the realm's ``kdc.conf``)
pointing at files there.

- **Principals** ([MS-KILE] names): every user (``sam@REALM``, random key: the lab's users do not type
  passwords), the lab admin (``migrator-admin@REALM`` in *every* realm with the lab's password, as one forest
  whose admin is known everywhere), every device (``HTTP/`` and ``host/`` for its name and FQDN) and every DC
  (``ldap/`` and ``host/`` for its FQDN).
- **Trust**: the realms trust each other directly, as the domains of one forest do: ``krbtgt/B@A`` and
  ``krbtgt/A@B`` for each pair, with ``[capaths]`` saying the path is direct (the realms are not a DNS
  hierarchy, so the default hierarchical path would name a realm that does not exist).
- **Keytabs**: the acceptor principals (``HTTP/``, ``host/``, ``ldap/``) of every realm in one keytab,
  ``<state>/kdc/lab.keytab`` (0600), split by :meth:`KdcSet.keytab_for` into one keytab per computer in
  ``<state>/kdc/keytabs/``: each listener accepts with its own computer's keys only, as on Windows.
- **krb5.conf**: realms with ``kdc = 127.x.y.z:PORT``, ``domain_realm`` for the device FQDNs, no DNS
  lookups, ``rdns = false``; written to the state folder and, by the runtime, beside the inventory.

Each ``krb5kdc`` is a child process asked to die with its parent (``PR_SET_PDEATHSIG``) and stopped by
:meth:`KdcSet.stop` (SIGTERM, then SIGKILL), so a lab never leaves a KDC behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

KDC_PACKAGES = "krb5-kdc krb5-admin-server krb5-user"
KDC_TOOLS = ("krb5kdc", "kdb5_util", "kadmin.local")
ACCEPTOR_SERVICES = ("HTTP", "host", "ldap")
_PR_SET_PDEATHSIG = 1


class KdcUnavailable(Exception):
    """The MIT KDC tools are not installed (the message says what to install)."""


class KdcError(Exception):
    """A KDC tool failed or the KDC did not come up (the message carries the tool's own words)."""


def missing_tools() -> list[str]:
    """The MIT Kerberos programs the lab needs and cannot find on ``PATH``."""
    return [tool for tool in KDC_TOOLS if shutil.which(tool) is None]


def install_hint() -> str:
    return f"install MIT Kerberos: apt-get install {KDC_PACKAGES} (Debian/Ubuntu)"


@dataclass
class Realm:
    """One lab realm: its name, the DNS domain it serves, where its KDC listens, and who it knows."""

    name: str  # CORP.EXAMPLE
    dns_domain: str  # corp.example
    address: str  # the DC's 127.x address; the KDC listens there
    users: list[str] = field(default_factory=list)  # sAMAccountNames
    hosts: list[str] = field(default_factory=list)  # computer names and FQDNs; HTTP/ and host/ for each
    dc_hosts: list[str] = field(default_factory=list)  # DC FQDNs; ldap/ and host/ for each
    port: int = 0  # chosen at start

    def acceptor_principals(self) -> list[str]:
        # Host names in lowercase: MIT clients lowercase the host of a host-based service name
        # (krb5_sname_to_principal), and AD matches SPNs without regard to case.
        names = [f"{svc}/{host.lower()}" for host in _unique(self.hosts) for svc in ("HTTP", "host")]
        names += [f"{svc}/{host.lower()}" for host in _unique(self.dc_hosts) for svc in ("ldap", "host")]
        return list(_unique(names))


def _unique(items: Iterable[str]) -> Iterable[str]:
    seen: set[str] = set()
    for item in items:
        if item.casefold() not in seen:
            seen.add(item.casefold())
            yield item


def free_port(address: str) -> int:
    """A port free for both UDP and TCP on ``address`` (the KDC listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((address, 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((address, port))
                except OSError:
                    continue
        return port
    raise KdcError(f"no port free for both UDP and TCP on {address}")


def krb5_conf(realms: Sequence[Realm], default_realm: str) -> str:
    """The client (and KDC) profile: static KDC addresses, no DNS, direct trust paths between the realms."""
    lines = [
        "# Written by `migrator lab up`: the lab's Kerberos realms. Use it as KRB5_CONFIG.",
        "[libdefaults]",
        f"  default_realm = {default_realm}",
        "  dns_lookup_kdc = false",
        "  dns_lookup_realm = false",
        "  dns_canonicalize_hostname = false",
        "  rdns = false",
        "  forwardable = true",
        "",
        "[realms]",
    ]
    for realm in realms:
        lines += [f"  {realm.name} = {{", f"    kdc = {realm.address}:{realm.port}", "  }"]
    lines += ["", "[domain_realm]"]
    for realm in realms:
        lines += [f"  .{realm.dns_domain} = {realm.name}", f"  {realm.dns_domain} = {realm.name}"]
    if len(realms) > 1:
        lines += ["", "[capaths]"]
        for client in realms:
            lines.append(f"  {client.name} = {{")
            lines += [f"    {server.name} = ." for server in realms if server is not client]
            lines.append("  }")
    return "\n".join(lines) + "\n"


def kdc_conf(realm: Realm, folder: Path) -> str:
    return "\n".join(
        [
            "[kdcdefaults]",
            f"  kdc_listen = {realm.address}:{realm.port}",
            f"  kdc_tcp_listen = {realm.address}:{realm.port}",
            "",
            "[realms]",
            f"  {realm.name} = {{",
            f"    database_name = {folder / 'principal'}",
            f"    key_stash_file = {folder / 'stash'}",
            f"    acl_file = {folder / 'kadm5.acl'}",
            f"    kdc_listen = {realm.address}:{realm.port}",
            f"    kdc_tcp_listen = {realm.address}:{realm.port}",
            "    max_life = 10h 0m 0s",
            "    max_renewable_life = 7d 0h 0m 0s",
            # AES-256 only: what Windows asks for first, and one key per principal halves the keytab's cost.
            "    supported_enctypes = aes256-cts-hmac-sha1-96:normal",
            "  }",
            "",
            "[logging]",
            f"  kdc = FILE:{folder / 'kdc.log'}",
            "",
        ]
    )


def _scratch_folder() -> Path | None:
    """A private (0700) folder on tmpfs (/dev/shm), or None where there is none."""
    shm = Path("/dev/shm")  # noqa: S108 - only as mkdtemp's parent: the folder is unique and 0700
    if not shm.is_dir() or not os.access(shm, os.W_OK):
        return None
    try:
        return Path(tempfile.mkdtemp(prefix="migrator-lab-kdc-", dir=shm))
    except OSError:
        return None


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: the KDC gets SIGTERM when the process that started it dies,
    # so a SIGKILLed lab (or test run) leaves no KDC behind. Linux only; elsewhere a no-op.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class KdcProcess:
    realm: Realm
    process: subprocess.Popen[bytes]


class KdcSet:
    """Every lab realm's KDC (see the module docstring)."""

    def __init__(self, state_dir: Path, realms: Sequence[Realm], admin: str, password: str) -> None:
        self.folder = state_dir / "kdc"
        self.realms = list(realms)
        self.admin = admin
        self._password = password
        self.krb5_conf_path = self.folder / "krb5.conf"
        self.keytab = self.folder / "lab.keytab"
        self.processes: list[KdcProcess] = []
        self.start_seconds = 0.0
        self._build = self.folder  # where the realms are being built (see prepare)
        self._parsed: dict[str, list[bytes]] | None = None

    def env(self, realm: Realm | None = None) -> dict[str, str]:
        env = dict(os.environ, KRB5_CONFIG=str(self.krb5_conf_path))
        if realm is not None:
            env["KRB5_KDC_PROFILE"] = str(self._build / realm.name / "kdc.conf")
        return env

    def start(self) -> None:
        """Create every realm and start its KDC; raise :class:`KdcUnavailable` or :class:`KdcError`."""
        self.prepare()
        self.launch()

    def prepare(self) -> None:
        """Create every realm's database, principals and the keytab (no process is left running)."""
        missing = missing_tools()
        if missing:
            raise KdcUnavailable(f"{', '.join(missing)} not found; {install_hint()}")
        started = time.monotonic()
        if self.folder.exists():
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True, mode=0o700)
        for realm in self.realms:
            realm.port = free_port(realm.address)
        self.krb5_conf_path.write_text(krb5_conf(self.realms, self.realms[0].name), encoding="utf-8")
        trust = {(a.name, b.name): secrets.token_urlsafe(24) for a in self.realms for b in self.realms if a is not b}
        # kadmin.local syncs the database (and ktadd the keytab) after every principal: on a disk that is most
        # of the time. The realms are built in a private folder on tmpfs when there is one, then moved into
        # the state folder, where the KDCs run from.
        scratch = _scratch_folder()
        self._build = scratch or self.folder
        try:
            jobs = [self._create(realm, trust) for realm in self.realms]
            for realm, job in zip(self.realms, jobs, strict=True):
                self._finish(realm, job)
            if scratch is not None:
                for realm in self.realms:
                    shutil.copytree(scratch / realm.name, self.folder / realm.name)
                    final = self.folder / realm.name
                    (final / "kdc.conf").write_text(kdc_conf(realm, final), encoding="utf-8")
            self._build = self.folder
            self._merge_keytabs()
        except BaseException:
            self.stop()
            raise
        finally:
            self._build = self.folder
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
        self.start_seconds = time.monotonic() - started

    def launch(self) -> None:
        """Start every realm's ``krb5kdc`` and wait until each listens. Call it on a thread that lives as long
        as the lab: the KDCs are asked to die with the thread that started them (``PR_SET_PDEATHSIG``)."""
        started = time.monotonic()
        try:
            for realm in self.realms:
                self._launch(realm)
            for kdc in self.processes:
                self._wait_listening(kdc)
        except BaseException:
            self.stop()
            raise
        self.start_seconds += time.monotonic() - started

    def _create(self, realm: Realm, trust: dict[tuple[str, str], str]) -> subprocess.Popen[bytes]:
        """kdb5_util create, then one kadmin.local session (commands on stdin) for every principal."""
        folder = self._build / realm.name
        folder.mkdir(mode=0o700)
        (folder / "kdc.conf").write_text(kdc_conf(realm, folder), encoding="utf-8")
        (folder / "kadm5.acl").write_text("", encoding="utf-8")
        _run(
            ["kdb5_util", "-r", realm.name, "create", "-s", "-P", secrets.token_urlsafe(24)],
            self.env(realm),
            "kdb5_util create",
        )
        commands = [f"addprinc -pw {self._password} {self.admin}@{realm.name}"]
        commands += [
            f"addprinc -randkey {user}@{realm.name}"
            for user in _unique(realm.users)
            if user.casefold() != self.admin.casefold()
        ]
        for (client, server), secret in trust.items():
            if realm.name in (client, server):
                # krbtgt/SERVER@CLIENT: tickets CLIENT's KDC issues for SERVER's realm; same key in both.
                commands.append(f"addprinc -pw {secret} krbtgt/{server}@{client}")
        acceptors = realm.acceptor_principals()
        commands += [f"addprinc -randkey {name}@{realm.name}" for name in acceptors]
        return self._kadmin(realm, "principals", commands)

    def _kadmin(self, realm: Realm, name: str, commands: list[str]) -> subprocess.Popen[bytes]:
        """Run ``commands`` in one kadmin.local session (commands on stdin, never on a command line)."""
        folder = self._build / realm.name
        script = folder / f"{name}.kadmin"
        fd = os.open(script, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it may hold passwords
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("\n".join(commands) + "\nquit\n")
        # Files, not pipes: kadmin.local writes a line per principal and would block on a full pipe. Its
        # stdout echoes each command (passwords included), so only stderr, its diagnostics, is kept.
        with script.open("rb") as stdin, (folder / f"{name}.log").open("wb") as log:
            return subprocess.Popen(
                ["kadmin.local", "-r", realm.name],
                stdin=stdin,
                stdout=subprocess.DEVNULL,
                stderr=log,
                env=self.env(realm),
            )

    def _keytab_jobs(self, realm: Realm) -> list[subprocess.Popen[bytes]]:
        """Two kadmin.local sessions (they only read the database) writing the acceptors' keys in files of 25:
        ktadd rereads its keytab for each entry and syncs after each, so small files cost least."""
        folder = self._build / realm.name
        names = [f"{name}@{realm.name}" for name in realm.acceptor_principals()]
        chunks = [names[index : index + 25] for index in range(0, len(names), 25)]
        halves: list[list[str]] = [[], []]
        for part, chunk in enumerate(chunks):
            keytab = folder / f"acceptors-{part:05d}.keytab"
            halves[part % 2].append(f"ktadd -k {keytab} -norandkey -q {' '.join(chunk)}")
        return [self._kadmin(realm, f"keytab{index}", half) for index, half in enumerate(halves) if half]

    def _finish(self, realm: Realm, process: subprocess.Popen[bytes]) -> None:
        self._check(realm, "principals", process)
        for index, job in enumerate(self._keytab_jobs(realm)):
            self._check(realm, f"keytab{index}", job)

    def _check(self, realm: Realm, name: str, process: subprocess.Popen[bytes]) -> None:
        code = process.wait()
        folder = self._build / realm.name
        (folder / f"{name}.kadmin").unlink(missing_ok=True)
        output = (folder / f"{name}.log").read_text(encoding="utf-8", errors="replace")
        problems = [line for line in output.splitlines() if "error" in line.lower() or "failed" in line.lower()]
        if code != 0 or problems:
            raise KdcError(f"kadmin.local for {realm.name} failed: {' / '.join(problems)[-500:]}")

    def keytab_for(self, hosts: Iterable[str]) -> Path:
        """A keytab (0600) with only the keys of the SPNs naming ``hosts``: one computer's keys, so that its
        listener refuses a ticket for another computer as Windows does (one key per computer account)."""
        wanted = {host.casefold() for host in hosts}
        name = sorted(wanted)[0] if wanted else "none"
        path = self.folder / "keytabs" / f"{name}.keytab"
        path.parent.mkdir(mode=0o700, exist_ok=True)
        by_host = self._entries()
        entries = [entry for host in sorted(wanted) for entry in by_host.get(host, [])]
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(b"\x05\x02" + b"".join(entries))
        return path

    def _entries(self) -> dict[str, list[bytes]]:
        """The lab keytab's entries (whole records) by host component, casefolded. MIT keytab format 0x502:
        int32 record length, then the principal: int16 component count, counted realm, counted components."""
        if self._parsed is None:
            data = self.keytab.read_bytes()
            entries: dict[str, list[bytes]] = {}
            offset = 2
            while offset + 4 <= len(data):
                (size,) = struct.unpack_from(">i", data, offset)
                record = data[offset : offset + 4 + abs(size)]
                offset += 4 + abs(size)
                if size <= 0:
                    continue  # a hole left by a deleted entry
                body = record[4:]
                (count,) = struct.unpack_from(">H", body, 0)
                position = 2
                (realm_length,) = struct.unpack_from(">H", body, position)
                position += 2 + realm_length
                components = []
                for _ in range(count):
                    (length,) = struct.unpack_from(">H", body, position)
                    components.append(body[position + 2 : position + 2 + length].decode("utf-8", "replace"))
                    position += 2 + length
                host = components[1].casefold() if len(components) == 2 else ""
                entries.setdefault(host, []).append(record)
            self._parsed = entries
        return self._parsed

    def _merge_keytabs(self) -> None:
        # A keytab is a 2-byte version (0x0502) and then entries: several are joined by dropping the later
        # headers, so one file holds every realm's acceptors.
        data = b"\x05\x02"
        for realm in self.realms:
            for part in sorted((self._build / realm.name).glob("acceptors-*.keytab")):
                data += part.read_bytes()[2:]
                part.unlink()
        fd = os.open(self.keytab, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)

    def _launch(self, realm: Realm) -> None:
        process = subprocess.Popen(
            ["krb5kdc", "-n", "-r", realm.name, "-P", str(self._build / realm.name / "krb5kdc.pid")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=self.env(realm),
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - only prctl, async-signal-safe enough for Linux
        )
        self.processes.append(KdcProcess(realm, process))

    def _wait_listening(self, kdc: KdcProcess, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if kdc.process.poll() is not None:
                stderr = kdc.process.stderr.read().decode(errors="replace") if kdc.process.stderr else ""
                raise KdcError(f"krb5kdc for {kdc.realm.name} exited ({kdc.process.returncode}): {stderr.strip()}")
            with contextlib.suppress(OSError), socket.create_connection((kdc.realm.address, kdc.realm.port), 0.2):
                return
            time.sleep(0.02)
        raise KdcError(f"krb5kdc for {kdc.realm.name} did not listen on {kdc.realm.address}:{kdc.realm.port}")

    def port_of(self, realm_name: str) -> int | None:
        for realm in self.realms:
            if realm.name == realm_name and self.processes:
                return realm.port
        return None

    def rss_kib(self) -> int:
        """The KDCs' resident memory, from /proc (0 where it cannot be read)."""
        total = 0
        for kdc in self.processes:
            with contextlib.suppress(OSError, ValueError):
                for line in Path(f"/proc/{kdc.process.pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        return total

    def stop(self) -> None:
        for kdc in self.processes:
            if kdc.process.poll() is None:
                kdc.process.terminate()
        for kdc in self.processes:
            try:
                kdc.process.wait(3)
            except subprocess.TimeoutExpired:
                kdc.process.kill()
                kdc.process.wait()
            if kdc.process.stderr is not None:
                kdc.process.stderr.close()
        self.processes.clear()


def _run(argv: list[str], env: dict[str, str], what: str) -> None:
    result = subprocess.run(argv, env=env, capture_output=True, check=False)
    if result.returncode != 0:
        raise KdcError(f"{what} failed: {result.stderr.decode(errors='replace').strip()[-500:]}")
