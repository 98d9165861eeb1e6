"""The lab's certificate authority: one CA, one server certificate per device, a CA bundle for clients.

Every device's HTTPS listener (5986) presents a certificate whose subject alternative names are its host name
and its IP address, issued by the lab CA; clients trust the CA bundle (``ca_trust_path=`` for pywinrm,
``cert_validation=<path>`` for pypsrp). Keys are ECDSA P-256 and all device certificates share one key pair,
so issuing a thousand certificates takes well under a second; everything is cached in the lab directory and
reused while the CA and the names match.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = datetime.timedelta(days=3650)


@dataclass(frozen=True)
class DeviceCertificate:
    """Paths of one device's certificate chain and key, and the RFC 5929 channel-binding hash."""

    cert_path: Path
    key_path: Path
    cert_der: bytes

    @property
    def tls_server_end_point(self) -> bytes:
        """``tls-server-end-point`` application data for NTLM channel binding (SHA-256 for ECDSA-SHA256)."""
        return b"tls-server-end-point:" + hashlib.sha256(self.cert_der).digest()


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path} does not hold an EC private key")
    return key


class LabCA:
    """Creates (or reuses) the CA in ``directory`` and issues device certificates from it."""

    def __init__(self, directory: Path, common_name: str = "Migrator Lab Root CA") -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        (directory / "devices").mkdir(exist_ok=True, mode=0o700)
        ca_key_path = directory / "ca-key.pem"
        self.bundle_path = directory / "ca.pem"
        device_key_path = directory / "device-key.pem"
        now = datetime.datetime.now(datetime.UTC)
        if ca_key_path.exists() and self.bundle_path.exists():
            self._ca_key = _load_key(ca_key_path)
            self._ca_cert = x509.load_pem_x509_certificate(self.bundle_path.read_bytes())
        else:
            self._ca_key = ec.generate_private_key(ec.SECP256R1())
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
            self._ca_cert = (
                x509.CertificateBuilder()
                .subject_name(name)
                .issuer_name(name)
                .public_key(self._ca_key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + _VALIDITY)
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(
                    x509.KeyUsage(
                        digital_signature=True,
                        content_commitment=False,
                        key_encipherment=False,
                        data_encipherment=False,
                        key_agreement=False,
                        key_cert_sign=True,
                        crl_sign=True,
                        encipher_only=False,
                        decipher_only=False,
                    ),
                    critical=True,
                )
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._ca_key.public_key()), critical=False)
                .sign(self._ca_key, hashes.SHA256())
            )
            _write_private(
                ca_key_path,
                self._ca_key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                ),
            )
            self.bundle_path.write_bytes(self._ca_cert.public_bytes(serialization.Encoding.PEM))
            device_key_path.unlink(missing_ok=True)
        if device_key_path.exists():
            self._device_key = _load_key(device_key_path)
        else:
            self._device_key = ec.generate_private_key(ec.SECP256R1())
            _write_private(
                device_key_path,
                self._device_key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                ),
            )
        self._device_key_path = device_key_path
        self._ca_fingerprint = self._ca_cert.fingerprint(hashes.SHA256())

    def issue(self, hostname: str, address: str) -> DeviceCertificate:
        """The certificate for ``hostname``/``address``, from the cache when still valid for both names."""
        ip = ipaddress.ip_address(address)
        safe = "".join(c if c.isalnum() or c in "-." else "_" for c in hostname)
        cert_path = self.directory / "devices" / f"{safe}_{ip}.pem"
        if cert_path.exists():
            cached = self._cached(cert_path, hostname, ip)
            if cached is not None:
                return DeviceCertificate(cert_path, self._device_key_path, cached)
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
            .issuer_name(self._ca_cert.subject)
            .public_key(self._device_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + _VALIDITY)
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(hostname), x509.IPAddress(ip)]),
                critical=False,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._ca_key.public_key()), critical=False
            )
            .sign(self._ca_key, hashes.SHA256())
        )
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return DeviceCertificate(cert_path, self._device_key_path, cert.public_bytes(serialization.Encoding.DER))

    def _cached(self, path: Path, hostname: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bytes | None:
        try:
            cert = x509.load_pem_x509_certificate(path.read_bytes())
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        except (ValueError, x509.ExtensionNotFound):
            return None
        expected_aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(self._ca_key.public_key())
        if (
            san.get_values_for_type(x509.DNSName) != [hostname]
            or san.get_values_for_type(x509.IPAddress) != [ip]
            or aki.key_identifier != expected_aki.key_identifier
            or cert.public_key() != self._device_key.public_key()
            or cert.not_valid_after_utc < datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)
        ):
            return None
        return cert.public_bytes(serialization.Encoding.DER)
