"""The API server's HTTP/1.1 connections: uvicorn's httptools protocol with what it lacks.

- A header read timeout: a request's headers must be complete ``header_timeout`` seconds after
  its first byte (after the connection opened, for the first); a slow-headers client is answered
  408 and closed. uvicorn has none: its keep-alive timeout only covers the idle time between
  requests.
- A body read timeout: no byte of a request's body for ``body_timeout`` seconds closes the
  connection (``Content-Length: 1000`` and 10 bytes held it forever).
- A cap on the connections open at once from one client address; the one over it is answered
  429 and closed.
- Requests the parser refuses (duplicate ``Content-Length``, ``Content-Length`` with
  ``Transfer-Encoding: chunked``, a malformed request line or header) are answered 400 in ACS's
  shape, not uvicorn's plain text.

Answers given here go straight to the transport, below the application: no request id, no log
line from the request middleware; each is logged here.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass
from typing import ClassVar

import structlog
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.core.errors import error_body
from gateway.core.settings import Settings

log = structlog.get_logger("trunkline.http")

_REASONS = {400: b"Bad Request", 408: b"Request Timeout", 429: b"Too Many Requests"}


@dataclass(frozen=True)
class ConnectionLimits:
    """``TRUNKLINE_API_HEADER_TIMEOUT_SECONDS``, ``TRUNKLINE_API_BODY_TIMEOUT_SECONDS`` and
    ``TRUNKLINE_API_MAX_CONNECTIONS_PER_CLIENT`` (0: no cap)."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections_per_client: int = 100

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        return cls(
            header_timeout=settings.api_header_timeout_seconds,
            body_timeout=settings.api_body_timeout_seconds,
            max_connections_per_client=settings.api_max_connections_per_client,
        )


def error_response(status: int, code: str, message: str) -> bytes:
    """A whole HTTP/1.1 response carrying an ACS error, that closes the connection."""
    body = json.dumps(error_body(code, message)).encode()
    head = (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
        % (status, _REASONS[status], len(body))
    )
    return head + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's ``HttpToolsProtocol`` with read timeouts, a per-client cap and ACS-shaped 400s
    (``uvicorn.Config(http=GuardedHttpToolsProtocol)``). ``limits`` is set once per process
    (``configure``) before the server starts."""

    limits: ClassVar[ConnectionLimits] = ConnectionLimits()
    # Connections open now, by client address (one event loop per process: no lock needed).
    open_by_client: ClassVar[Counter[str]] = Counter()

    # One timer a connection, moved lazily: re-arming only moves the deadline, and the timer,
    # when it fires early, waits again for what is left (a timer a parser callback costs more
    # than the rest of the guard).
    _timer: asyncio.TimerHandle | None = None
    _deadline: float | None = None  # loop time the current read must end by; None: none awaited
    _counted_as: str | None = None
    _reading_headers = False

    @classmethod
    def configure(cls, limits: ConnectionLimits) -> None:
        cls.limits = limits

    # Connections -----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        address = self.client[0] if self.client else ""
        cap = self.limits.max_connections_per_client
        if cap and self.open_by_client[address] >= cap:
            log.warning("connection refused: too many from one client", client=address, limit=cap)
            message = f"More than {cap} connections at once from one client address."
            self._refuse(429, "TooManyConnections", message)
            return
        self.open_by_client[address] += 1
        self._counted_as = address
        self._reading_headers = True
        self._arm(self.limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        if self._counted_as is not None:
            self.open_by_client[self._counted_as] -= 1
            if self.open_by_client[self._counted_as] <= 0:
                del self.open_by_client[self._counted_as]
            self._counted_as = None
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        """The parser refused the request (framing, request line, headers): ACS's 400."""
        self._cancel()
        self._refuse(400, "BadRequest", f"{msg} The request is not well-formed HTTP/1.1.")

    # Parser callbacks: the timers follow the request -------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._reading_headers:  # a later request of the connection: its first byte
            self._reading_headers = True
            self._arm(self.limits.header_timeout)

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        super().on_headers_complete()
        self._arm(self.limits.body_timeout)

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        self._arm(self.limits.body_timeout)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    # Timers -----------------------------------------------------------------------------------

    def _arm(self, seconds: float) -> None:
        """The current read must end within ``seconds`` from now."""
        deadline = self.loop.time() + seconds
        self._deadline = deadline
        timer = self._timer
        if timer is None or timer.when() > deadline:
            if timer is not None:
                timer.cancel()
            self._timer = self.loop.call_at(deadline, self._check_deadline)

    def _disarm(self) -> None:
        """No read is awaited (the timer, if it fires, finds nothing to do)."""
        self._deadline = None

    def _cancel(self) -> None:
        self._deadline = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check_deadline(self) -> None:
        self._timer = None
        deadline = self._deadline
        if deadline is None:
            return
        if deadline > self.loop.time():  # moved on since the timer was set
            self._timer = self.loop.call_at(deadline, self._check_deadline)
            return
        self._deadline = None
        self._timed_out()

    def _timed_out(self) -> None:
        if self.transport.is_closing():
            return
        client = self.client[0] if self.client else ""
        if self._reading_headers:
            log.info("connection closed: headers not read in time", client=client)
            message = f"The request headers were not received within {self.limits.header_timeout:g} s."
            self._refuse(408, "RequestTimeout", message)
        elif self.flow.read_paused:
            # Reading is paused because the application has not taken what came: not the
            # client's stall.
            self._arm(self.limits.body_timeout)
        else:
            # The application may be reading the body: it sees the client disconnect.
            log.info("connection closed: request body stalled", client=client)
            self.transport.close()

    def _refuse(self, status: int, code: str, message: str) -> None:
        self.transport.write(error_response(status, code, message))
        self.transport.close()
