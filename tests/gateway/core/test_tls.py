"""The local CA and server certificate, and a real TLS handshake verified against ca.pem."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from gateway.core.tls import ensure_local_tls, resolve_tls


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _sans(path: Path) -> tuple[set[str], set[str]]:
    san = _cert(path).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns = set(san.get_values_for_type(x509.DNSName))
    ips = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    return dns, ips


def test_generates_ca_and_server_certificate(tmp_path: Path) -> None:
    files = ensure_local_tls(tmp_path / "tls", ["gw.example.test", "10.1.2.3"])
    assert files.ca_file == tmp_path / "tls" / "ca.pem"
    dns, ips = _sans(files.cert_file)
    assert dns == {"localhost", "gw.example.test"}
    assert ips == {"127.0.0.1", "::1", "10.1.2.3"}
    ca, server = _cert(files.ca_file), _cert(files.cert_file)
    assert server.issuer == ca.subject
    server.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usage
    for private in (files.key_file, tmp_path / "tls" / "ca-key.pem"):
        assert private.stat().st_mode & 0o077 == 0


def test_bracketed_ipv6_host(tmp_path: Path) -> None:
    files = ensure_local_tls(tmp_path, ["[2001:db8::1]"])
    _, ips = _sans(files.cert_file)
    assert ipaddress.ip_address("2001:db8::1").compressed in ips


def test_reused_on_second_call(tmp_path: Path) -> None:
    first = ensure_local_tls(tmp_path, ["gw.example.test"])
    before = {p: p.read_bytes() for p in (first.cert_file, first.key_file, first.ca_file)}
    second = ensure_local_tls(tmp_path, ["gw.example.test"])
    assert second == first
    assert {p: p.read_bytes() for p in before} == before
    # A subset of the covered hosts needs no new certificate either.
    ensure_local_tls(tmp_path, [])
    assert first.cert_file.read_bytes() == before[first.cert_file]


def test_new_host_regenerates_server_certificate_only(tmp_path: Path) -> None:
    first = ensure_local_tls(tmp_path, ["a.example.test"])
    assert first.ca_file is not None
    ca_before, cert_before = first.ca_file.read_bytes(), first.cert_file.read_bytes()
    second = ensure_local_tls(tmp_path, ["b.example.test"])
    assert second.cert_file.read_bytes() != cert_before
    assert second.ca_file is not None
    assert second.ca_file.read_bytes() == ca_before
    dns, _ = _sans(second.cert_file)
    assert "b.example.test" in dns
    _cert(second.cert_file).verify_directly_issued_by(_cert(second.ca_file))


def test_operator_files_are_used_as_given(tmp_path: Path) -> None:
    generated = ensure_local_tls(tmp_path / "generated", [])
    files = resolve_tls(generated.cert_file, generated.key_file, tmp_path / "unused", [])
    assert (files.cert_file, files.key_file, files.ca_file) == (generated.cert_file, generated.key_file, None)
    assert not (tmp_path / "unused").exists()
    with pytest.raises(ValueError, match="both"):
        resolve_tls(generated.cert_file, None, tmp_path / "unused", [])
    with pytest.raises(FileNotFoundError):
        resolve_tls(tmp_path / "missing.pem", generated.key_file, tmp_path / "unused", [])
    assert resolve_tls(None, None, tmp_path / "local", []).ca_file == tmp_path / "local" / "ca.pem"


def _serve_once(listener: socket.socket, context: ssl.SSLContext, received: list[bytes]) -> None:
    connection, _ = listener.accept()
    try:
        with context.wrap_socket(connection, server_side=True) as tls:
            received.append(tls.recv(16))
            tls.sendall(b"pong")
    except (ssl.SSLError, OSError):
        pass  # the client refused the certificate
    finally:
        connection.close()


def _exchange(
    port: int, listener: socket.socket, server: ssl.SSLContext, client: ssl.SSLContext, name: str
) -> bytes:
    """One TLS connection to 127.0.0.1:port, verifying the server as ``name``; what the server got."""
    received: list[bytes] = []
    thread = threading.Thread(target=_serve_once, args=(listener, server, received), daemon=True)
    thread.start()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with client.wrap_socket(raw, server_hostname=name) as tls:
                assert tls.version() in ("TLSv1.2", "TLSv1.3")
                tls.sendall(b"ping")
                assert tls.recv(16) == b"pong"
    finally:
        thread.join(10)
    return received[0] if received else b""


def test_tls_handshake_verifies_against_ca(tmp_path: Path) -> None:
    files = ensure_local_tls(tmp_path / "tls", ["gw.example.test"])
    assert files.ca_file is not None
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(files.cert_file, files.key_file)
    trusting = ssl.create_default_context(cafile=str(files.ca_file))
    other = ensure_local_tls(tmp_path / "other", [])
    assert other.ca_file is not None
    untrusting = ssl.create_default_context(cafile=str(other.ca_file))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(10)
        port = listener.getsockname()[1]
        for name in ("localhost", "127.0.0.1", "gw.example.test"):
            assert _exchange(port, listener, server, trusting, name) == b"ping"
        with pytest.raises(ssl.SSLCertVerificationError, match="certificate"):
            _exchange(port, listener, server, untrusting, "localhost")
        with pytest.raises(ssl.SSLCertVerificationError, match="elsewhere"):
            _exchange(port, listener, server, trusting, "elsewhere.example.test")
