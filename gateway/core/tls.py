"""TLS material for ``trunkline api``/``up``: the operator's pair, or a local CA and server cert.

The ACS SDKs only speak https, so a fresh install makes its own CA (``tls/ca.pem``) and a server
certificate for localhost, 127.0.0.1, ::1 and the configured host; clients trust it through
``REQUESTS_CA_BUNDLE``/``SSL_CERT_FILE``. The CA key never leaves the data dir.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_LIFETIME = timedelta(days=3650)
SERVER_LIFETIME = timedelta(days=397)
RENEW_BEFORE = timedelta(days=30)


@dataclass(frozen=True)
class TlsFiles:
    cert_file: Path
    key_file: Path
    ca_file: Path | None  # set when Trunkline generated the chain


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    tmp.replace(path)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _san_entries(hosts: list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(h.strip("[]") for h in hosts if h):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _ensure_ca(tls_dir: Path, now: datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_file, ca_key_file = tls_dir / "ca.pem", tls_dir / "ca-key.pem"
    if ca_file.exists() and ca_key_file.exists():
        cert = x509.load_pem_x509_certificate(ca_file.read_bytes())
        key = serialization.load_pem_private_key(ca_key_file.read_bytes(), password=None)
        if isinstance(key, ec.EllipticCurvePrivateKey) and cert.not_valid_after_utc - now > RENEW_BEFORE:
            return cert, key
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Trunkline local CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(ca_key_file, _key_pem(key))
    _write_public(ca_file, cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _server_cert_ok(cert_file: Path, ca: x509.Certificate, hosts: list[str], now: datetime) -> bool:
    if not cert_file.exists():
        return False
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    if cert.issuer != ca.subject or cert.not_valid_after_utc - now < RENEW_BEFORE:
        return False
    try:
        present = set(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return False
    return set(_san_entries(hosts)) <= present


def ensure_local_tls(tls_dir: Path, hosts: list[str]) -> TlsFiles:
    """Create (or renew) the local CA and a server certificate covering ``hosts``."""
    tls_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    now = datetime.now(UTC)
    hosts = ["localhost", "127.0.0.1", "::1", *hosts]
    ca, ca_key = _ensure_ca(tls_dir, now)
    cert_file, key_file = tls_dir / "server.pem", tls_dir / "server-key.pem"
    if not (_server_cert_ok(cert_file, ca, hosts, now) and key_file.exists()):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + SERVER_LIFETIME)
            .add_extension(x509.SubjectAlternativeName(_san_entries(hosts)), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        _write_private(key_file, _key_pem(key))
        _write_public(cert_file, cert.public_bytes(serialization.Encoding.PEM))
    return TlsFiles(cert_file=cert_file, key_file=key_file, ca_file=tls_dir / "ca.pem")


def resolve_tls(cert_file: Path | None, key_file: Path | None, tls_dir: Path, hosts: list[str]) -> TlsFiles:
    if cert_file or key_file:
        if not (cert_file and key_file):
            raise ValueError("give both TRUNKLINE_TLS_CERT_FILE and TRUNKLINE_TLS_KEY_FILE, or neither")
        for path in (cert_file, key_file):
            if not path.is_file():
                raise FileNotFoundError(f"TLS file {path} does not exist")
        return TlsFiles(cert_file=cert_file, key_file=key_file, ca_file=None)
    return ensure_local_tls(tls_dir, hosts)
