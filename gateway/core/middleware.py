"""One ASGI middleware for request ids, log context, metrics and the last-resort error answer."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from random import getrandbits

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.core.errors import error_body
from gateway.core.metrics import HTTP_LATENCY, HTTP_REQUESTS
from gateway.core.text import url_text_problem

log = structlog.get_logger("trunkline.http")
# The stdlib logger behind ``log``: asked first, so a request's log line below the level costs
# nothing (structlog would build the event and run its level filter).
_http_log = logging.getLogger("trunkline.http")

_QUIET_PATHS = frozenset({"/health", "/metrics"})


async def send_error(send: Send, status: int, code: str, message: str, target: str | None = None) -> None:
    """A whole ACS-shaped error response, for answers given below the framework."""
    body = json.dumps(error_body(code, message, target)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class UrlTextMiddleware:
    """Answer 400 to a request whose path or query breaks the text rule (gateway.core.text: NUL,
    control characters, bytes that are not UTF-8), before any route, and so any database,
    sees it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
            found = url_text_problem(raw_path, scope.get("query_string", b""))
            if found is not None:
                await send_error(send, 400, "InvalidRequest", found.message(), found.where)
                return
        await self.app(scope, receive, send)


class BodyTooLarge(Exception):
    pass


class BodySizeLimitMiddleware:
    """Answer 413 to bodies over the limit, by Content-Length or while streaming (chunked).

    The operator API (``/admin/``) has its own, larger limit: inventory files are uploaded there.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, max_admin_bytes: int) -> None:
        self.app = app
        self.tenant_max_bytes = max_bytes
        self.admin_max_bytes = max_admin_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.admin_max_bytes if scope.get("path", "").startswith("/admin/") else self.tenant_max_bytes
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await self._reject(send, limit)
                return
        received = 0
        response_started = False
        rejected = False

        async def limited_receive() -> Message:
            nonlocal received, rejected
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Answer now: the framework turns any error while reading the body into its
                    # own 400, which tracking_send then drops.
                    if not response_started and not rejected:
                        rejected = True
                        await self._reject(send, limit)
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if rejected:
                return
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        with contextlib.suppress(BodyTooLarge):
            await self.app(scope, limited_receive, tracking_send)

    async def _reject(self, send: Send, limit: int) -> None:
        await send_error(send, 413, "PayloadTooLarge", f"The request body is larger than {limit} bytes.")


def new_request_id() -> str:
    """A random version-4 UUID, as ``str(uuid.uuid4())`` gives, from ``random``'s generator:
    ``uuid4`` reads ``os.urandom``, a system call that also lets go of the GIL, so on a busy
    API process the event loop waited for a thread to hand it back on every request. A request
    id correlates log lines; it protects nothing, so it needs no cryptographic source
    (``random`` reseeds itself in a forked child, so processes do not repeat each other)."""
    bits = getrandbits(128) & _UUID4_CLEAR | _UUID4_SET
    text = f"{bits:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


# The version (4) and variant (RFC 4122) bits of a random UUID.
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)

_CLIENT_REQUEST_ID = b"x-ms-client-request-id"
_RETURN_CLIENT_REQUEST_ID = b"x-ms-return-client-request-id"
_ID_HEADER_LENGTHS = frozenset({len(_CLIENT_REQUEST_ID), len(_RETURN_CLIENT_REQUEST_ID)})


class _RouteMetrics:
    """The request counter's and latency histogram's children of one (method, route, status),
    kept: ``labels()`` looks its child up under a lock each time, twice a request."""

    __slots__ = ("latency", "requests")

    def __init__(self, method: str, route: str, status: int) -> None:
        self.requests = HTTP_REQUESTS.labels(method, route, str(status))
        self.latency = HTTP_LATENCY.labels(method, route)


_route_metrics: dict[tuple[str, str, int], _RouteMetrics] = {}


class RequestContextMiddleware:
    """Each request's id (``x-ms-request-id``, ``x-request-id``; the client's own echoed when it
    asks), its log context and log line, its metrics, and the 500 answer to an error nothing
    else caught."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client_request_id, echo_client_id = _client_request_id(scope["headers"])
        request_id = new_request_id()
        encoded_id = request_id.encode()
        extra = [(b"x-ms-request-id", encoded_id), (b"x-request-id", encoded_id)]
        if echo_client_id and client_request_id:
            extra.append((b"x-ms-client-request-id", client_request_id.encode("latin-1")))
        structlog.contextvars.clear_contextvars()
        if client_request_id:
            structlog.contextvars.bind_contextvars(request_id=request_id, client_request_id=client_request_id)
        else:
            structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            log.exception("unhandled error")
            if not response_started:
                message = f"An internal error occurred (request id {request_id})."
                await send_error(send_wrapper, 500, "InternalError", message)
        finally:
            _record(scope, status, time.perf_counter() - started)
            structlog.contextvars.clear_contextvars()


def _client_request_id(headers: list[tuple[bytes, bytes]]) -> tuple[str | None, bool]:
    """``x-ms-client-request-id`` (its first 128 characters) and whether the client asked for it
    back (``x-ms-return-client-request-id: true``): found among the headers, not every header
    decoded."""
    client_request_id: str | None = None
    echo = False
    for name, value in headers:
        if len(name) not in _ID_HEADER_LENGTHS:  # neither, without a lower() call
            continue
        lowered = name.lower()
        if lowered == _CLIENT_REQUEST_ID:
            client_request_id = value.decode("latin-1")[:128]
        elif lowered == _RETURN_CLIENT_REQUEST_ID:
            echo = value.decode("latin-1").lower() == "true"
    return client_request_id, echo


def _record(scope: Scope, status: int, elapsed: float) -> None:
    """A finished request's metrics and its log line (not for /health and /metrics)."""
    route = scope.get("route")
    route_path = getattr(route, "path", None) or "unmatched"
    method = scope["method"]
    metrics = _route_metrics.get((method, route_path, status))
    if metrics is None:
        # Bounded: routes are the app's templates (or "unmatched"); methods and statuses are few.
        metrics = _route_metrics[method, route_path, status] = _RouteMetrics(method, route_path, status)
    metrics.requests.inc()
    metrics.latency.observe(elapsed)
    path = scope["path"]
    if path not in _QUIET_PATHS and _http_log.isEnabledFor(logging.INFO):
        log.info(
            "request",
            method=method,
            path=path,
            route=route_path,
            status=status,
            duration_ms=round(elapsed * 1000, 2),
        )
