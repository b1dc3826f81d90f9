"""One ASGI middleware for request ids, log context, metrics and the last-resort error answer."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.core.errors import error_body
from gateway.core.metrics import HTTP_LATENCY, HTTP_REQUESTS
from gateway.core.text import url_text_problem

log = structlog.get_logger("trunkline.http")

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


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        request_id = str(uuid.uuid4())
        client_request_id = headers.get("x-ms-client-request-id")
        echo_client_id = headers.get("x-ms-return-client-request-id", "").lower() == "true"
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        if client_request_id:
            structlog.contextvars.bind_contextvars(client_request_id=client_request_id[:128])
        started = time.perf_counter()
        status_holder: dict[str, Any] = {"status": 500, "started": False}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = True
                extra = [(b"x-ms-request-id", request_id.encode()), (b"x-request-id", request_id.encode())]
                if echo_client_id and client_request_id:
                    extra.append((b"x-ms-client-request-id", client_request_id[:128].encode("latin-1")))
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            log.exception("unhandled error")
            if not status_holder["started"]:
                message = f"An internal error occurred (request id {request_id})."
                await send_error(send_wrapper, 500, "InternalError", message)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            route_path = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            status = status_holder["status"]
            HTTP_REQUESTS.labels(method, route_path, str(status)).inc()
            HTTP_LATENCY.labels(method, route_path).observe(elapsed)
            if scope.get("path") not in _QUIET_PATHS:
                log.info(
                    "request",
                    method=method,
                    path=scope.get("path"),
                    route=route_path,
                    status=status,
                    duration_ms=round(elapsed * 1000, 2),
                )
            structlog.contextvars.clear_contextvars()
