"""Downloading a FileSource: httpx behind the webhook SSRF guard, bounded in size and time.

The guard is the events pipeline's (:mod:`gateway.events.ssrf`), applied where webhooks apply
it: at connect time, to every address the host resolves to, and the socket goes to an address
that passed (no second lookup a rebinding DNS answer could change). So private, loopback,
link-local and metadata addresses are refused unless ``TRUNKLINE_WEBHOOK_ALLOWED_NETWORKS``
allows them, and plain http:// is fetched only inside that allow-list. TLS is verified for the
URL's host name against the system store plus ``TRUNKLINE_WEBHOOK_CA_BUNDLE``. Redirects are
followed a few times, each hop checked the same way.
"""

from __future__ import annotations

import ssl
import time
import typing
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import httpcore
import httpx

from gateway.events.http import ssl_context
from gateway.events.ssrf import DestinationRefused, Policy, Resolver, split_url, system_resolver

USER_AGENT = "Trunkline-Play/1.0"
MAX_REDIRECTS = 3


class FetchFailed(Exception):
    """The file could not be downloaded; the message is safe to show to the app."""


@dataclass(frozen=True, slots=True)
class FetchLimits:
    timeout_seconds: float  # the whole download, redirects included
    connect_timeout_seconds: float
    max_bytes: int


class _CheckedBackend(httpcore.SyncBackend):
    """Connects only to addresses the policy allows for ``scheme``."""

    def __init__(self, policy: Policy, scheme: str, resolver: Resolver) -> None:
        self.policy = policy
        self.scheme = scheme
        self.resolver = resolver

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = self.resolver(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"the host {host} does not resolve") from exc
        if not addresses:
            raise httpcore.ConnectError(f"the host {host} does not resolve")
        checked = [self.policy.check_address(a, self.scheme) for a in addresses]  # DestinationRefused
        failure: Exception | None = None
        for address in checked:
            try:
                return super().connect_tcp(str(address), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure


class _CheckedTransport(httpx.HTTPTransport):
    def __init__(self, backend: _CheckedBackend, context: ssl.SSLContext) -> None:
        super().__init__(verify=context, trust_env=False)
        # httpx builds its pool without a way to name the network backend; this one checks.
        self._pool = httpcore.ConnectionPool(ssl_context=context, max_connections=1, network_backend=backend)


class FileFetcher:
    """Thread-safe: each fetch has its own connection."""

    def __init__(
        self,
        policy: Policy,
        limits: FetchLimits,
        *,
        ca_bundle: Path | None = None,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.policy = policy
        self.limits = limits
        self.resolver = resolver
        self.context = ssl_context(ca_bundle)

    def fetch(self, url: str) -> bytes:
        """The body of ``url`` (2xx), or FetchFailed saying why not."""
        deadline = time.monotonic() + self.limits.timeout_seconds
        for _ in range(MAX_REDIRECTS + 1):
            location = self._fetch_once(url, deadline)
            if isinstance(location, bytes):
                return location
            url = location
        raise FetchFailed(f"more than {MAX_REDIRECTS} redirects")

    def _fetch_once(self, url: str, deadline: float) -> bytes | str:
        try:
            scheme, _, _ = split_url(url)
        except DestinationRefused as exc:
            raise FetchFailed(exc.reason) from None
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchFailed(f"the download took longer than {self.limits.timeout_seconds:g} s")
        timeout = httpx.Timeout(remaining, connect=min(remaining, self.limits.connect_timeout_seconds))
        transport = _CheckedTransport(_CheckedBackend(self.policy, scheme, self.resolver), self.context)
        headers = {"User-Agent": USER_AGENT, "Accept": "audio/wav, audio/mpeg, audio/*;q=0.9, */*;q=0.1"}
        try:
            with (
                httpx.Client(transport=transport, timeout=timeout, follow_redirects=False) as client,
                client.stream("GET", url, headers=headers) as response,
            ):
                if response.is_redirect and "location" in response.headers:
                    return urljoin(url, response.headers["location"])
                if response.status_code != 200:
                    raise FetchFailed(f"the server answered {response.status_code}")
                return self._body(response, deadline)
        except DestinationRefused as exc:
            raise FetchFailed(exc.reason) from None
        except httpx.TimeoutException:
            raise FetchFailed(f"the download took longer than {self.limits.timeout_seconds:g} s") from None
        except httpx.HTTPError as exc:
            raise FetchFailed(f"{exc.__class__.__name__}: {exc}") from None

    def _body(self, response: httpx.Response, deadline: float) -> bytes:
        cap = self.limits.max_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise FetchFailed(f"the file is {int(declared)} bytes, more than the {cap} bytes allowed")
        body = bytearray()
        for chunk in response.iter_bytes(65536):  # decoded: the cap counts what is kept
            body += chunk
            if len(body) > cap:
                raise FetchFailed(f"the file is more than the {cap} bytes allowed")
            if time.monotonic() > deadline:
                raise FetchFailed(f"the download took longer than {self.limits.timeout_seconds:g} s")
        return bytes(body)
