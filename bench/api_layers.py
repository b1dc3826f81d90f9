"""Where an API request's CPU goes, layer by layer, in-process (no HTTP parsing, no TLS).

The same ASGI call, one request at a time, against:
  1. a bare FastAPI route that parses a JSON body and answers it (the framework's floor);
  2. a bare ASGI endpoint answering ``POST /sms``'s 202 (the floor without a framework);
  3. 2 inside the app's own middleware (gateway.core.middleware: request id, log context,
     metrics, URL text, body size);
  4. 2 as the app's first route (3 + Starlette's error middleware and FastAPI's router);
  5. the app's unauthenticated ``GET /health`` (the app's middleware, logging, routing);
  6. a signed ``GET /deliveryReports/{id}`` that finds nothing (5 + HMAC auth and one read);
  7. a signed ``POST /sms`` with one recipient (6 + the send's transaction).
Each difference is what a layer costs. Then JSON: ``POST /sms``'s body parsed and its answer
rendered by the standard library (what the app uses) and by orjson, when installed.
SQLite in a temporary folder; logs at WARNING unless --log-level INFO.

    .venv/bin/python -m bench.api_layers [--requests 300] [--log-level INFO]
"""

from __future__ import annotations

# ruff: noqa: E402 - the sys.path fix below must run before the imports
import sys
from pathlib import Path

# This folder holds numbers.py and sms.py, which would shadow the stdlib's numbers and the sms
# package: run from the repository root instead.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.routing import Route

from bench import use_secrets_key
from bench.sms_api import asgi_request, call
from gateway.app import create_app
from gateway.core.db import Database
from gateway.core.hmac_auth import sign_request
from gateway.core.logging import configure_logging
from gateway.core.middleware import BodySizeLimitMiddleware, RequestContextMiddleware, UrlTextMiddleware
from gateway.core.migrate import upgrade
from gateway.core.settings import Settings
from gateway.resources.service import create_resource
from tests.gateway.sms.support import give_number

HOST = "bench.test"
SENDER = "+14255550100"


def bare_app() -> FastAPI:
    app = FastAPI()

    @app.post("/sms")
    async def send(request: Request) -> JSONResponse:
        body = await request.json()
        return JSONResponse({"value": [{"to": body["smsRecipients"][0]["to"]}]}, status_code=202)

    return app


SMS_ANSWER = {
    "value": [
        {
            "to": "+14255550123",
            "messageId": "Outgoing_20261206221500c0ffee00000000000000000000000000",
            "httpStatusCode": 202,
            "repeatabilityResult": "accepted",
            "successful": True,
        }
    ]
}


class BareEndpoint:
    """``POST /sms``'s 202 as a constant, straight to ASGI (a class: Starlette's Route takes a
    function for a request handler)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await receive()
        body = json.dumps(SMS_ANSWER).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 202, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def app_middleware(endpoint: Any, settings: Settings) -> Any:
    """``endpoint`` inside the app's own middleware, in create_app's order."""
    inner = BodySizeLimitMiddleware(
        endpoint, max_bytes=settings.max_request_bytes, max_admin_bytes=settings.max_admin_request_bytes
    )
    return RequestContextMiddleware(UrlTextMiddleware(inner))


def json_costs(body: bytes, count: int = 20_000) -> list[tuple[str, float]]:
    """Microseconds per parse of ``body`` and per rendering of POST /sms's answer, as Starlette's
    JSONResponse renders (compact, not ASCII-escaped), by json and by orjson."""

    def per_call(work: Callable[[], object]) -> float:
        started = time.process_time()
        for _ in range(count):
            work()
        return 1e6 * (time.process_time() - started) / count

    def dumps() -> bytes:
        return json.dumps(SMS_ANSWER, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()

    costs = [
        ("json.loads(body)", per_call(lambda: json.loads(body))),
        ("json.dumps(answer)", per_call(dumps)),
    ]
    try:
        import orjson
    except ImportError:
        return [*costs, ("orjson", float("nan"))]
    return [
        *costs,
        ("orjson.loads(body)", per_call(lambda: orjson.loads(body))),
        ("orjson.dumps(answer)", per_call(lambda: orjson.dumps(SMS_ANSWER))),
    ]


async def measure(
    app: Any, make: Callable[[], tuple[dict[str, Any], bytes]], count: int
) -> tuple[int, float]:
    """The status of the last answer and CPU milliseconds per request (after a warm-up)."""
    for _ in range(20):
        await call(app, *make())
    status = 0
    started = time.process_time()
    for _ in range(count):
        status, _ = await call(app, *make())
    return status, 1000 * (time.process_time() - started) / count


def main() -> None:
    use_secrets_key()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--log-level", default="WARNING", help="INFO adds the per-request log line")
    args = parser.parse_args()
    configure_logging(args.log_level)
    with tempfile.TemporaryDirectory() as tmp:
        database = Database(f"sqlite:///{tmp}/bench.db")
        upgrade(database.engine)
        with database.session() as session:
            resource = create_resource(session, "bench", f"https://{HOST}/")
            resource_id, key = resource.id, resource.primary_key
        give_number(database, resource_id, SENDER)
        settings = Settings(
            database_url=database.url,
            data_dir=Path(tmp) / "data",
            api_host=HOST,
            api_port=443,
            log_level="WARNING",
        )
        app = create_app(settings, database)
        body = json.dumps(
            {"from": SENDER, "smsRecipients": [{"to": "+14255550123"}], "message": "hi"}
        ).encode()

        def signed(method: str, path_and_query: str, payload: bytes) -> tuple[dict[str, Any], bytes]:
            headers = sign_request(method, path_and_query, HOST, payload, key, datetime.now(UTC))
            return asgi_request(payload, headers, method=method, path_and_query=path_and_query, host=HOST)

        first_route_app = create_app(settings, database)
        first_route_app.router.routes.insert(0, Route("/sms", BareEndpoint(), methods=["POST"]))
        sms_request = partial(asgi_request, body, {}, path_and_query="/sms?api-version=2021-03-07", host=HOST)
        cases: list[tuple[str, Any, Callable[[], tuple[dict[str, Any], bytes]]]] = [
            (
                "bare FastAPI POST (the floor)",
                bare_app(),
                lambda: asgi_request(body, {}, path_and_query="/sms", host=HOST),
            ),
            ("bare ASGI endpoint POST /sms", BareEndpoint(), sms_request),
            ("  in the app's middleware", app_middleware(BareEndpoint(), settings), sms_request),
            ("  as the app's first route", first_route_app, sms_request),
            (
                "app GET /health",
                app,
                lambda: asgi_request(b"", {}, method="GET", path_and_query="/health", host=HOST),
            ),
            (
                "app signed GET /deliveryReports/x (404)",
                app,
                lambda: signed("GET", "/deliveryReports/x?api-version=2026-01-23", b""),
            ),
            ("app signed POST /sms", app, lambda: signed("POST", "/sms?api-version=2021-03-07", body)),
        ]
        print(f"in-process ASGI, {args.requests} requests per case, SQLite, CPU ms per request")
        for name, target, make in cases:
            status, cpu = asyncio.run(measure(target, make, args.requests))
            print(f"  {name:42s} {status:4d} {cpu:8.3f}")
        print("JSON, microseconds per call")
        for name, micros in json_costs(body):
            print(f"  {name:42s}      {micros:8.2f}")
        database.dispose()


if __name__ == "__main__":
    main()
