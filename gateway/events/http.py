"""Outbound HTTP for webhooks: SSRF-checked at connect time, no redirects, capped bodies.

Built on the standard library's ``http.client`` (about half the CPU per request of httpcore,
and it never follows redirects). Connecting is done here: the host name is resolved once,
every address is checked against the policy, and the socket is opened to a checked address, so
a DNS answer that changed since registration (rebinding) is caught at the address actually
used. TLS verifies the certificate against the system store plus an optional CA bundle, for the
URL's host name (SNI and hostname check), whatever address it resolved to.

Connections are kept alive per thread and per origin.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from gateway.events.lifecycle import FailureKind
from gateway.events.ssrf import DestinationRefused, Policy, Resolver, split_url, system_resolver

USER_AGENT = "Trunkline-Events/1.0"
# Errors that mean a kept-alive connection was closed by the peer before our request got a
# response; the request is then sent again once on a fresh connection.
STALE_CONNECTION_ERRORS = (
    http.client.RemoteDisconnected,
    BrokenPipeError,
    ConnectionResetError,
    ConnectionAbortedError,
    ssl.SSLEOFError,
    ssl.SSLZeroReturnError,
)


@dataclass(frozen=True)
class HttpResult:
    status: int
    headers: dict[str, str]
    body: bytes  # at most max_response_bytes
    latency_ms: int


class WebhookError(Exception):
    """No HTTP answer: refused destination, DNS, connect, TLS, timeout, protocol error."""

    def __init__(self, kind: FailureKind, message: str, latency_ms: int) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message
        self.latency_ms = latency_ms


def ssl_context(ca_bundle: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_bundle is not None:
        context.load_verify_locations(cafile=str(ca_bundle))
    return context


class GuardedConnection(http.client.HTTPConnection):
    """An HTTP(S) connection that connects only to addresses the policy allows."""

    def __init__(
        self,
        scheme: str,
        host: str,
        port: int,
        policy: Policy,
        resolver: Resolver,
        context: ssl.SSLContext,
        connect_timeout: float,
    ) -> None:
        super().__init__(host, port, timeout=connect_timeout)
        self.scheme = scheme
        self.policy = policy
        self.resolver = resolver
        self.context = context
        self.connect_timeout = connect_timeout

    def _send_output(self, message_body: object = None, encode_chunked: bool = False) -> None:
        # One write (one TLS record) for head and body instead of two.
        if isinstance(message_body, bytes) and not encode_chunked:
            self._buffer.extend((b"", b""))  # type: ignore[attr-defined]
            head = b"\r\n".join(self._buffer)  # type: ignore[attr-defined]
            del self._buffer[:]  # type: ignore[attr-defined]
            self.send(head + message_body)
            return
        super()._send_output(message_body, encode_chunked)  # type: ignore[misc]

    def connect(self) -> None:
        try:
            addresses = self.resolver(self.host, self.port)
        except OSError as exc:
            raise ConnectionError(f"cannot resolve {self.host}: {exc}") from exc
        if not addresses:
            raise ConnectionError(f"cannot resolve {self.host}")
        checked = [self.policy.check_address(a, self.scheme) for a in addresses]  # DestinationRefused
        last: OSError | None = None
        for address in checked:
            try:
                sock = socket.create_connection((str(address), self.port), timeout=self.connect_timeout)
                break
            except OSError as exc:
                last = exc
        else:
            assert last is not None
            raise last
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.scheme == "https":
            try:
                sock = self.context.wrap_socket(sock, server_hostname=self.host)
            except BaseException:
                sock.close()
                raise
        self.sock = sock


class WebhookClient:
    """Thread-safe; one per process. Each thread keeps its own connections."""

    def __init__(
        self,
        policy: Policy,
        *,
        ca_bundle: Path | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        max_response_bytes: int = 65536,
        resolver: Resolver = system_resolver,
        max_connections: int = 100,  # kept for callers; connections are per thread and origin
    ) -> None:
        self.policy = policy
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_response_bytes = max_response_bytes
        self.resolver = resolver
        self.context = ssl_context(ca_bundle)
        self._local = threading.local()
        self._all: list[GuardedConnection] = []
        self._lock = threading.Lock()

    def _connection(self, scheme: str, host: str, port: int, fresh: bool) -> GuardedConnection:
        pool: dict[tuple[str, str, int], GuardedConnection] = self._local.__dict__.setdefault("pool", {})
        key = (scheme, host, port)
        connection = pool.get(key)
        if connection is not None and fresh:
            connection.close()  # the same object connects again on its next request
        if connection is None:
            connection = GuardedConnection(
                scheme, host, port, self.policy, self.resolver, self.context, self.connect_timeout
            )
            pool[key] = connection
            with self._lock:
                self._all.append(connection)
        return connection

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes = b"",
        timeout: float | None = None,
    ) -> HttpResult:
        started = time.perf_counter()

        def elapsed() -> int:
            return int((time.perf_counter() - started) * 1000)

        try:
            scheme, host, port = split_url(url)
        except DestinationRefused as exc:
            raise WebhookError(FailureKind.DESTINATION_REFUSED, exc.reason, 0) from exc
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        sent = {"User-Agent": USER_AGENT, **dict(headers)}
        total = timeout or self.timeout
        deadline = time.monotonic() + total
        for fresh in (False, True):
            connection = self._connection(scheme, host, port, fresh)
            reused = connection.sock is not None
            try:
                if connection.sock is None:
                    connection.connect()
                connection.sock.settimeout(max(0.001, deadline - time.monotonic()))
                connection.request(
                    method, target, body=body if (body or method == "POST") else None, headers=sent
                )
                response = connection.getresponse()
                received = self._read(connection, response, deadline)
                if response.will_close or not response.isclosed():
                    connection.close()  # not reusable (closing, or body beyond the cap left unread)
                return HttpResult(
                    status=response.status,
                    headers={k.lower(): v for k, v in response.getheaders()},
                    body=received,
                    latency_ms=elapsed(),
                )
            except STALE_CONNECTION_ERRORS as exc:
                connection.close()
                if reused and not fresh:
                    continue  # the peer had closed the kept-alive connection: once more, fresh
                raise WebhookError(
                    FailureKind.CONNECTION, str(exc) or exc.__class__.__name__, elapsed()
                ) from exc
            except DestinationRefused as exc:
                connection.close()
                raise WebhookError(FailureKind.DESTINATION_REFUSED, exc.reason, elapsed()) from exc
            except TimeoutError as exc:
                connection.close()
                raise WebhookError(FailureKind.TIMEOUT, str(exc) or "timed out", elapsed()) from exc
            except (ssl.SSLError, ssl.CertificateError, http.client.HTTPException) as exc:
                connection.close()
                raise WebhookError(
                    FailureKind.PROTOCOL, str(exc) or exc.__class__.__name__, elapsed()
                ) from exc
            except OSError as exc:
                connection.close()
                raise WebhookError(
                    FailureKind.CONNECTION, str(exc) or exc.__class__.__name__, elapsed()
                ) from exc
        raise AssertionError("unreachable")

    def _read(
        self, connection: GuardedConnection, response: http.client.HTTPResponse, deadline: float
    ) -> bytes:
        """The body, up to the cap, within the deadline (one recv at a time, so a peer trickling
        bytes cannot stretch it)."""
        received = bytearray()
        while len(received) < self.max_response_bytes:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the response body took longer than the timeout")
            if connection.sock is not None:
                connection.sock.settimeout(remaining)
            chunk = response.read1(min(65536, self.max_response_bytes - len(received)))
            if not chunk:
                break
            received += chunk
        if response.length == 0:
            response.close()  # all of a Content-Length body was read: the connection is reusable
        return bytes(received)

    def close(self) -> None:
        with self._lock:
            connections, self._all = self._all, []
        for connection in connections:
            connection.close()
