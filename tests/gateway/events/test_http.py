"""The webhook HTTP client (gateway.events.http): redirects, body caps, plain http, keep-alive."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.events.http import WebhookClient
from gateway.events.ssrf import Policy

from .harness import make_tls


def test_redirects_are_not_followed_and_bodies_are_capped(tmp_path: Path) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", "0")))
            if self.path == "/redirect":
                self.send_response(307)
                self.send_header("location", "http://127.0.0.1:1/elsewhere")
                self.send_header("content-length", "0")
                self.end_headers()
                return
            body = b"x" * 100_000
            self.send_response(500)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        client = WebhookClient(
            Policy(tuple(__import__("ipaddress").ip_network(n) for n in ["127.0.0.0/8"])),
            max_response_bytes=1000,
        )
        redirected = client.request("POST", f"http://127.0.0.1:{port}/redirect", {}, b"{}")
        assert redirected.status == 307
        big = client.request("POST", f"http://127.0.0.1:{port}/big", {}, b"{}")
        assert big.status == 500
        assert len(big.body) == 1000
        client.close()
    finally:
        server.shutdown()
        server.server_close()


def test_plain_http_outside_allowed_networks_is_refused_at_connect() -> None:
    client = WebhookClient(Policy(), resolver=lambda host, port: ["93.184.216.34"], connect_timeout=0.5)
    with pytest.raises(Exception, match="https"):
        client.request("POST", "http://hooks.example/x", {}, b"{}")
    client.close()


@pytest.mark.parametrize("peer_closes", [False, True])
@pytest.mark.parametrize("tls", [False, True])
def test_connections_are_kept_alive_and_replaced_when_the_peer_closed_them(
    tmp_path: Path, tls: bool, peer_closes: bool
) -> None:
    """Requests reuse one connection; if the receiver dropped it without saying so, the next
    request goes out on a fresh one."""
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from gateway.events.ssrf import parse_networks

    served: list[str] = []
    clients: set[Any] = set()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", "0")))
            served.append(self.path)
            clients.add(self.client_address)
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()
            self.close_connection = peer_closes  # without a "Connection: close" header

    files = make_tls(tmp_path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(files.cert_file), str(files.key_file))
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client = WebhookClient(Policy(parse_networks(["127.0.0.0/8"])), ca_bundle=files.ca_file, timeout=5)
    try:
        base = f"{'https' if tls else 'http'}://localhost:{server.server_address[1]}"
        for n in range(3):
            assert client.request("POST", f"{base}/{n}", {}, b"{}").status == 200
        assert served == ["/0", "/1", "/2"]
        assert len(clients) == (3 if peer_closes else 1)
    finally:
        client.close()
        server.shutdown()
        server.server_close()
