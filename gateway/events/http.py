"""Outbound HTTP for webhooks: SSRF-checked at connect time, no redirects, capped bodies.

httpcore (under httpx) is used directly: it never follows redirects, and its network backend is
the one place where a host name becomes an address, so the check there sees exactly the address
that is then connected to (a DNS answer that changed since registration is caught here).
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpcore

from gateway.events.ssrf import DestinationRefused, Policy, Resolver, split_url, system_resolver

USER_AGENT = "Trunkline-Events/1.0"


class GuardedBackend(httpcore.SyncBackend):
    """Resolves, checks every address against the policy, then connects to a checked address."""

    def __init__(self, policy: Policy, scheme: str, resolver: Resolver = system_resolver) -> None:
        self.policy = policy
        self.scheme = scheme
        self.resolver = resolver

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = self.resolver(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        if not addresses:
            raise httpcore.ConnectError(f"cannot resolve {host}")
        checked = [self.policy.check_address(a, self.scheme) for a in addresses]
        last: Exception | None = None
        for address in checked:
            try:
                return super().connect_tcp(str(address), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last


@dataclass(frozen=True)
class HttpResult:
    status: int
    headers: dict[str, str]
    body: bytes  # at most max_response_bytes
    latency_ms: int


class WebhookError(Exception):
    """No HTTP answer: refused destination, DNS, connect, TLS, timeout, protocol error."""

    def __init__(self, kind: str, message: str, latency_ms: int) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message
        self.latency_ms = latency_ms


def ssl_context(ca_bundle: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_bundle is not None:
        context.load_verify_locations(cafile=str(ca_bundle))
    return context


class WebhookClient:
    """Thread-safe; one per process."""

    def __init__(
        self,
        policy: Policy,
        *,
        ca_bundle: Path | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        max_response_bytes: int = 65536,
        resolver: Resolver = system_resolver,
        max_connections: int = 100,
    ) -> None:
        self.policy = policy
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_response_bytes = max_response_bytes
        self._pools = {
            scheme: httpcore.ConnectionPool(
                ssl_context=ssl_context(ca_bundle),
                max_connections=max_connections,
                max_keepalive_connections=max_connections,
                keepalive_expiry=30.0,
                network_backend=GuardedBackend(policy, scheme, resolver),
            )
            for scheme in ("http", "https")
        }

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
            scheme, _host, _port = split_url(url)
        except DestinationRefused as exc:
            raise WebhookError("DestinationRefused", exc.reason, 0) from exc
        total = timeout or self.timeout
        sent = {"user-agent": USER_AGENT, **{k.lower(): v for k, v in headers.items()}}
        if body or method == "POST":
            sent["content-length"] = str(len(body))
        deadline = time.monotonic() + total
        try:
            with self._pools[scheme].stream(
                method,
                url,
                headers=list(sent.items()),
                content=body,
                extensions={
                    "timeout": {
                        "connect": min(self.connect_timeout, total),
                        "read": total,
                        "write": total,
                        "pool": total,
                    }
                },
            ) as response:
                received = bytearray()
                for chunk in response.iter_stream():
                    if len(received) < self.max_response_bytes:
                        received += chunk[: self.max_response_bytes - len(received)]
                    if time.monotonic() > deadline:
                        raise httpcore.ReadTimeout("response body took longer than the timeout")
                    if len(received) >= self.max_response_bytes:
                        break
                return HttpResult(
                    status=response.status,
                    headers={k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.headers},
                    body=bytes(received),
                    latency_ms=elapsed(),
                )
        except DestinationRefused as exc:
            raise WebhookError("DestinationRefused", exc.reason, elapsed()) from exc
        except httpcore.TimeoutException as exc:
            raise WebhookError("Timeout", str(exc) or exc.__class__.__name__, elapsed()) from exc
        except (httpcore.ConnectError, httpcore.NetworkError) as exc:
            raise WebhookError("ConnectionError", str(exc) or exc.__class__.__name__, elapsed()) from exc
        except (httpcore.ProtocolError, httpcore.UnsupportedProtocol, ssl.SSLError) as exc:
            raise WebhookError("ProtocolError", str(exc) or exc.__class__.__name__, elapsed()) from exc
        except OSError as exc:
            raise WebhookError("ConnectionError", str(exc) or exc.__class__.__name__, elapsed()) from exc

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
