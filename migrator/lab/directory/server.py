"""The lab's domain controllers on the wire: per domain, LDAP (389) and LDAPS (636) on its own 127.x address.

One asyncio server pair per domain, on the lab's event loop (the one the WinRM listeners use); each TCP
connection gets an :class:`~migrator.lab.directory.protocol.LdapSession` and this module only moves bytes.
LDAPS presents a certificate from the lab CA (:class:`~migrator.lab.server.certs.LabCA`, the CA of the WinRM
HTTPS listeners, so ``lab-ca.pem`` is the one trust anchor) whose names are the DC's host name and address.
Ports: the ones asked for (389/636 by default), 0 for a free one, or with ``free_if_taken`` a free one when
the asked port is taken or not allowed (below 1024 without privileges); read the choice back from
:attr:`DomainControllerRuntime.ldap_port` / ``ldaps_port``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from migrator.lab.directory.build import DomainDirectory
from migrator.lab.directory.dit import Entry
from migrator.lab.directory.protocol import DomainController, LdapSession
from migrator.lab.server.auth import AcceptorFiles, Account, DeviceAccounts, NtlmUserFiles
from migrator.lab.server.certs import LabCA

log = logging.getLogger(__name__)

LAB_DOMAIN = "LAB"  # the NetBIOS name the lab admin signs in with, trusted by every lab domain


def dc_address(index: int) -> str:
    """The default loopback address of the ``index``-th domain's DC: 127.19.0.1 upward, clear of the fleet
    (127.20.x.y), the demo (127.30.x.y) and the tests' blocks (127.100.0.0 and above)."""
    return f"127.19.0.{index + 1}"


@dataclass
class DomainControllerRuntime:
    directory: DomainDirectory
    address: str
    controller: DomainController
    ldap_port: int | None = None
    ldaps_port: int | None = None
    servers: list[asyncio.Server] = field(default_factory=list)
    connections: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def name(self) -> str:
        return self.directory.domain.dns_name


class DirectoryServer:
    """LDAP listeners of every lab domain."""

    def __init__(
        self,
        directories: dict[str, DomainDirectory],
        ca: LabCA,
        addresses: dict[str, str],
        *,
        ldap_port: int | None = 389,
        ldaps_port: int | None = 636,
        free_if_taken: bool = False,
    ) -> None:
        self.ca = ca
        self.free_if_taken = free_if_taken
        self._ports = (ldap_port, ldaps_port)
        self.ntlm_files = NtlmUserFiles()
        self.controllers: dict[str, DomainControllerRuntime] = {}
        for key, directory in directories.items():
            address = addresses[key]
            if not ipaddress.ip_address(address).is_loopback:
                raise ValueError(f"domain {key}: the lab listens on 127.0.0.0/8 only, not {address}")
            domain = directory.domain
            controller = DomainController(
                tree=directory.tree,
                dns_host_name=domain.dc_name,
                forest=domain.forest,
                site=domain.dc_site,
                ntlm_user_file=self.ntlm_files.write(key, DeviceAccounts(computer_name="DC01")),
            )
            self.controllers[key] = DomainControllerRuntime(directory, address, controller)

    def accept_kerberos(self, keytab_for: Callable[[list[str]], Path], krb5_config: Path) -> None:
        """The lab's KDCs run: SASL GSSAPI and GSS-SPNEGO binds are checked from now on, each DC with the keytab
        of its own SPNs (``keytab_for([dc fqdn])``)."""
        for runtime in self.controllers.values():
            keytab = keytab_for([runtime.controller.dns_host_name])
            runtime.controller.kerberos = AcceptorFiles(runtime.controller.ntlm_user_file, keytab, krb5_config)

    def controller(self, domain: str) -> DomainControllerRuntime:
        """A domain's DC by DNS or NetBIOS name (case-insensitive)."""
        wanted = domain.casefold()
        for key, runtime in self.controllers.items():
            if wanted in (key, runtime.directory.domain.netbios.casefold()):
                return runtime
        names = ", ".join(sorted(self.controllers))
        raise KeyError(f"no lab domain {domain!r} (the lab's domains: {names})")

    def set_password(self, entry: Entry, domain: str, password: str) -> None:
        """Let an account bind (simple over LDAPS, NTLM) with ``password``; the NTLM acceptor learns it too."""
        runtime = self.controller(domain)
        tree = runtime.directory.tree
        with tree.lock:
            tree.passwords[entry.key] = password
            accounts = []
            for key, secret in tree.passwords.items():
                account = tree.get(key)
                if account is None:
                    continue
                sam = account.text("sAMAccountName")
                accounts.append(Account(sam, secret, "", domain=tree.netbios, dns_domain=tree.dns_name))
                if tree.is_domain_admin(account.dn):  # admins sign in as LAB\\name in every domain (one forest)
                    accounts.append(Account(sam, secret, "", domain=LAB_DOMAIN))
            self.ntlm_files.write(runtime.name.casefold(), DeviceAccounts(computer_name="DC01", accounts=accounts))

    # ---- lifecycle --------------------------------------------------------------------------------------

    async def start(self) -> None:
        for runtime in self.controllers.values():
            try:
                await self._listen(runtime)
            except BaseException:
                await self.stop()
                raise

    async def _listen(self, runtime: DomainControllerRuntime) -> None:
        certificate = self.ca.issue(runtime.controller.dns_host_name.lower(), runtime.address)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certificate.cert_path, certificate.key_path)
        for tls, port in ((False, self._ports[0]), (True, self._ports[1])):
            if port is None:
                continue
            server = await self._open(runtime, port, context if tls else None)
            runtime.servers.append(server)
            chosen = int(server.sockets[0].getsockname()[1])
            if tls:
                runtime.ldaps_port = chosen
            else:
                runtime.ldap_port = chosen

    async def _open(
        self, runtime: DomainControllerRuntime, port: int, context: ssl.SSLContext | None
    ) -> asyncio.Server:
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._serve(runtime, reader, writer, tls=context is not None)

        try:
            return await asyncio.start_server(accept, host=runtime.address, port=port, ssl=context, reuse_address=True)
        except OSError as err:
            if port == 0 or not self.free_if_taken or err.errno not in (errno.EADDRINUSE, errno.EACCES):
                raise
            log.info("LDAP port %d is not available on %s: listening on a free port", port, runtime.address)
            return await asyncio.start_server(accept, host=runtime.address, port=0, ssl=context, reuse_address=True)

    @staticmethod
    async def _serve(
        runtime: DomainControllerRuntime, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, tls: bool
    ) -> None:
        session = LdapSession(runtime.controller, tls=tls)
        runtime.connections.add(writer)
        try:
            while not session.closed:
                data = await reader.read(65536)
                if not data:
                    break
                for pdu in session.receive_data(data):
                    writer.write(pdu)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        except Exception:
            # A bug in the lab, not the client's fault: log it, and drop the connection as a DC that failed would.
            log.exception("LDAP connection to %s failed", runtime.name)
        finally:
            runtime.connections.discard(writer)
            writer.close()

    async def stop(self) -> None:
        for runtime in self.controllers.values():
            servers, runtime.servers = runtime.servers, []
            for server in servers:
                server.close()
            for writer in list(runtime.connections):
                writer.transport.abort()
            for server in servers:
                with contextlib.suppress(Exception):
                    await server.wait_closed()
        self.ntlm_files.close()


def default_addresses(directories: dict[str, DomainDirectory]) -> dict[str, str]:
    return {key: dc_address(index) for index, key in enumerate(directories)}


__all__ = ["DirectoryServer", "DomainControllerRuntime", "dc_address", "default_addresses"]
