"""TLS material of the emulated Windows hosts.

At start the WS-Management server makes a throw-away certification authority and one server
certificate for the loopback names (``127.0.0.1``, ``localhost`` and any extra bind address), so
clients can use ``server_cert_validation=validate`` with ``ca_trust_path`` pointing at the CA -
the same set-up an administrator uses with an internal CA in front of WinRM over https.

Keys are ECDSA P-256 (fast to generate; pywinrm, requests and requests_ntlm's channel-binding
code all handle them). Nothing here is secret beyond the lab: the CA key never touches the disk.
"""
from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
from dataclasses import dataclass
from typing import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_FILE = "ca.pem"
CERT_FILE = "server.pem"
KEY_FILE = "server.key"


@dataclass(frozen=True)
class LabCertificates:
    """Where the lab's TLS files are, plus what channel binding needs."""

    ca_path: str
    cert_path: str
    key_path: str
    cert_der: bytes

    @property
    def tls_server_end_point(self) -> bytes:
        """RFC 5929 ``tls-server-end-point`` hash of the server certificate (the certificate is
        signed with SHA-256, so the hash is SHA-256), as NTLM channel bindings carry it."""
        return hashlib.sha256(self.cert_der).digest()


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fix-xcon lab"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _write(path: str, data: bytes, private: bool = False) -> None:
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def make_lab_certificates(cert_dir: str, hosts: Iterable[str] = ()) -> LabCertificates:
    """Create a CA and a server certificate for loopback (plus ``hosts``) in ``cert_dir``.

    ``hosts`` may hold IP addresses or DNS names; ``127.0.0.1`` and ``localhost`` are always
    in the subject alternative names. Existing files are replaced: every start has fresh keys.
    """
    os.makedirs(cert_dir, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    not_before = now - datetime.timedelta(minutes=5)
    not_after = now + datetime.timedelta(days=30)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("fix-xcon lab CA")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    names: list = []
    for host in ["127.0.0.1", "localhost", *hosts]:
        try:
            entry = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            entry = x509.DNSName(host)
        if entry not in names:
            names.append(entry)

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost")).issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    paths = LabCertificates(
        ca_path=os.path.join(cert_dir, CA_FILE),
        cert_path=os.path.join(cert_dir, CERT_FILE),
        key_path=os.path.join(cert_dir, KEY_FILE),
        cert_der=cert.public_bytes(serialization.Encoding.DER),
    )
    _write(paths.ca_path, ca_cert.public_bytes(serialization.Encoding.PEM))
    _write(paths.cert_path, cert.public_bytes(serialization.Encoding.PEM))
    _write(paths.key_path, key.private_bytes(serialization.Encoding.PEM,
                                             serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()), private=True)
    return paths
