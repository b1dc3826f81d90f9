"""Slow and malformed clients against a real uvicorn server running the app with
GuardedHttpToolsProtocol (gateway/core/http_protocol.py), on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from gateway.core.http_protocol import ConnectionLimits, GuardedHttpToolsProtocol

HEADER_TIMEOUT = 0.5
BODY_TIMEOUT = 0.5
PER_CLIENT = 4
MARGIN = 5.0  # generous: the machine is shared; the point is "closed", not "how fast"


@pytest.fixture
def server(app: FastAPI) -> Iterator[tuple[str, int]]:
    with running(app, ConnectionLimits(HEADER_TIMEOUT, BODY_TIMEOUT, PER_CLIENT)) as address:
        yield address


@pytest.fixture
def patient_server(app: FastAPI) -> Iterator[tuple[str, int]]:
    """Timeouts long enough for the connections a test holds to stay open."""
    with running(app, ConnectionLimits(60, 60, PER_CLIENT)) as address:
        yield address


@contextmanager
def running(app: FastAPI, limits: ConnectionLimits) -> Iterator[tuple[str, int]]:
    GuardedHttpToolsProtocol.configure(limits)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, http=GuardedHttpToolsProtocol, log_config=None, access_log=False, lifespan="off"
    )
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not instance.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield "127.0.0.1", port
    finally:
        instance.should_exit = True
        thread.join(timeout=15)
        sock.close()
        GuardedHttpToolsProtocol.configure(ConnectionLimits())


def _connect(address: tuple[str, int]) -> socket.socket:
    return socket.create_connection(address, timeout=MARGIN + HEADER_TIMEOUT)


def _read_until_closed(conn: socket.socket, limit: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and how long that took; fails past ``limit``."""
    started = time.monotonic()
    received = b""
    conn.settimeout(limit)
    while True:
        try:
            chunk = conn.recv(65536)
        except TimeoutError:
            pytest.fail(f"the server kept the connection open for {limit} s")
        except ConnectionResetError:
            break
        if not chunk:
            break
        received += chunk
    return received, time.monotonic() - started


def _status_and_json(response: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = response.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"content-type: application/json" in head.lower(), head
    return status, json.loads(body)


def test_headers_dribbled_are_cut_off_with_a_408(server: tuple[str, int]) -> None:
    with closing(_connect(server)) as conn:
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # the headers never end
        response, took = _read_until_closed(conn, HEADER_TIMEOUT + MARGIN)
    status, body = _status_and_json(response)
    assert status == 408
    assert body["error"]["code"] == "RequestTimeout"  # type: ignore[index]
    assert took < HEADER_TIMEOUT + MARGIN


def test_a_silent_connection_is_closed(server: tuple[str, int]) -> None:
    with closing(_connect(server)) as conn:
        response, _ = _read_until_closed(conn, HEADER_TIMEOUT + MARGIN)
    assert response.startswith(b"HTTP/1.1 408")


def test_a_body_shorter_than_its_content_length_is_cut_off(server: tuple[str, int]) -> None:
    with closing(_connect(server)) as conn:
        conn.sendall(
            b"POST /admin/resources HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n" + b"0123456789"
        )
        _, took = _read_until_closed(conn, BODY_TIMEOUT + MARGIN)
    assert took < BODY_TIMEOUT + MARGIN


def test_a_normal_client_is_unaffected(server: tuple[str, int]) -> None:
    host, port = server
    with httpx.Client(base_url=f"http://{host}:{port}") as client:
        for _ in range(3):  # one keep-alive connection, several requests
            assert client.get("/health").status_code == 200
        time.sleep(HEADER_TIMEOUT * 2)  # idle between requests is the keep-alive timeout's business
        assert client.get("/health").status_code == 200
        big = client.post("/admin/resources", content=b"x" * 200_000, headers={"content-type": "text/plain"})
        assert big.status_code in (400, 401)


def test_connections_past_the_per_client_cap_are_refused(patient_server: tuple[str, int]) -> None:
    server = patient_server
    held = [_connect(server) for _ in range(PER_CLIENT)]
    try:
        for conn in held:  # a request begun and never finished
            conn.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        with closing(_connect(server)) as extra:
            response, _ = _read_until_closed(extra, MARGIN)
        status, body = _status_and_json(response)
        assert status == 429
        assert body["error"]["code"] == "TooManyConnections"  # type: ignore[index]
    finally:
        for conn in held:
            conn.close()
    # Once they are gone, the client may connect again.
    deadline = time.monotonic() + MARGIN
    while True:
        with httpx.Client(base_url=f"http://{server[0]}:{server[1]}") as client:
            try:
                if client.get("/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.mark.parametrize(
    "request_head",
    [
        b"POST /admin/resources HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        b"POST /admin/resources HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
        b"POST /admin/resources HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    ],
    ids=["two-content-lengths", "same-content-length-twice", "content-length-and-chunked", "bad-header"],
)
def test_malformed_framing_is_a_400_in_acs_shape(server: tuple[str, int], request_head: bytes) -> None:
    with closing(_connect(server)) as conn:
        conn.sendall(request_head)
        response, _ = _read_until_closed(conn, MARGIN)
    status, body = _status_and_json(response)
    assert status == 400
    assert body["error"]["code"] == "BadRequest"  # type: ignore[index]
