"""The server's TLS certificate: a self-signed one made at ``init``, and the
SHA-256 fingerprint clients pin."""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import socket

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def fingerprint_der(der: bytes) -> str:
    return "SHA256:" + hashlib.sha256(der).hexdigest()


def fingerprint_file(cert_path: str) -> str:
    with open(cert_path, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    return fingerprint_der(cert.public_bytes(serialization.Encoding.DER))


def make_self_signed(cert_path: str, key_path: str, hostnames: list[str]) -> str:
    """Write a new P-256 key and a 10-year self-signed certificate valid for
    localhost, the loopback addresses, this host's name and ``hostnames``;
    returns its fingerprint."""
    key = ec.generate_private_key(ec.SECP256R1())
    names = ["localhost", socket.gethostname(), *hostnames]
    alt: list[x509.GeneralName] = []
    for n in dict.fromkeys(names):
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            alt.append(x509.DNSName(n))
    alt += [x509.IPAddress(ipaddress.ip_address(a)) for a in ("127.0.0.1", "::1") if a not in names]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "neostore-server")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return fingerprint_der(cert.public_bytes(serialization.Encoding.DER))
