"""``trunkline api`` itself (serve_api) cuts off slow clients and answers malformed framing in
ACS's shape: the settings reach the server's protocol (gateway/core/http_protocol.py)."""

from __future__ import annotations

import json
import socket
import ssl
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from tests.e2e.helpers import ProcessError, TrunklineServer, running_trunkline

HEADER_TIMEOUT = 1.0
MARGIN = 10.0


@pytest.fixture(scope="module")
def impatient_trunkline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrunklineServer]:
    env = {
        "TRUNKLINE_API_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT),
        "TRUNKLINE_API_BODY_TIMEOUT_SECONDS": str(HEADER_TIMEOUT),
    }
    try:
        with running_trunkline(Path(tmp_path_factory.mktemp("impatient")), extra_env=env) as server:
            yield server
    except ProcessError as exc:
        pytest.fail(str(exc), pytrace=False)


def _tls(server: TrunklineServer) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=MARGIN)
    return server.ssl_context().wrap_socket(raw, server_hostname="127.0.0.1")


def _until_closed(conn: ssl.SSLSocket) -> tuple[bytes, float]:
    started = time.monotonic()
    received = b""
    conn.settimeout(HEADER_TIMEOUT + MARGIN)
    while True:
        try:
            chunk = conn.recv(65536)
        except TimeoutError:
            pytest.fail("the server kept the connection open")
        except (ConnectionResetError, ssl.SSLError):
            break
        if not chunk:
            break
        received += chunk
    return received, time.monotonic() - started


def test_dribbled_headers_are_cut_off(impatient_trunkline: TrunklineServer) -> None:
    with closing(_tls(impatient_trunkline)) as conn:
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        response, took = _until_closed(conn)
    assert response.startswith(b"HTTP/1.1 408"), response
    assert took < HEADER_TIMEOUT + MARGIN


def test_short_body_is_cut_off_and_normal_clients_are_served(impatient_trunkline: TrunklineServer) -> None:
    with closing(_tls(impatient_trunkline)) as conn:
        conn.sendall(
            b"POST /admin/resources HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n0123456789"
        )
        _, took = _until_closed(conn)
    assert took < HEADER_TIMEOUT + MARGIN
    with impatient_trunkline.http() as client:
        assert client.get("/health").status_code == 200


def test_duplicate_content_length_is_an_acs_400(impatient_trunkline: TrunklineServer) -> None:
    with closing(_tls(impatient_trunkline)) as conn:
        conn.sendall(
            b"POST /admin/resources HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}"
        )
        response, _ = _until_closed(conn)
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), head
    assert json.loads(body)["error"]["code"] == "BadRequest"
