"""Throwaway TLS files for tests: a CA of the test's own, and a server
certificate it signed for 127.0.0.1 and localhost (tests/stores use it for
a TLS redis-server and a TLS Redis Cluster)."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from redis_server import TlsFiles


def make_certificates(directory: Path) -> TlsFiles:
    """A CA, and a certificate it signed for 127.0.0.1 and localhost (PEM files)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(text: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def certificate(subject: str, public: object, ca: bool) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name("wasi-map test CA"))
            .public_key(public)  # type: ignore[arg-type]
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )

    ca = certificate("wasi-map test CA", ca_key.public_key(), True).sign(ca_key, hashes.SHA256())
    alt = x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    cert = (
        certificate("localhost", key.public_key(), False)
        .add_extension(alt, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(directory / "server.pem", directory / "server.key", directory / "ca.pem")
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files
