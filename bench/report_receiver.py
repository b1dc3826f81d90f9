"""The "app" of bench/sms_vs_kannel.py: one small HTTP(S) server counting delivery reports.

    python -m bench.report_receiver PORT [CERT KEY]

  GET  /dlr?...     one Kannel ``dlr-url`` callback: one report
  POST /hook        one Trunkline webhook delivery: an Event Grid array or CloudEvents batch
                    counts each item; a single CloudEvent counts one; Event Grid's
                    SubscriptionValidation is answered with its code
  OPTIONS /hook     the CloudEvents webhook handshake (allowed origin echoed)
  GET  /count       {"reports": N, "first": t, "last": t} (time.time() of the first and last)

The same server, in the same Python, receives both sides' reports, so the app's cost is alike.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import uvicorn

counted = {"reports": 0, "first": 0.0, "last": 0.0}


def _count(items: int) -> None:
    now = time.time()
    if not counted["reports"]:
        counted["first"] = now
    counted["reports"] += items
    counted["last"] = now


async def _answer(
    send: Any, status: int = 200, headers: list[tuple[bytes, bytes]] | None = None, body: bytes = b""
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers or []})
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    method, path = scope["method"], scope["path"]
    headers = dict(scope["headers"])
    if method == "GET" and path == "/dlr":
        _count(1)
        await _answer(send)
    elif method == "GET" and path == "/count":
        await _answer(send, body=json.dumps(counted).encode())
    elif method == "OPTIONS":
        await _answer(
            send, headers=[(b"webhook-allowed-origin", headers.get(b"webhook-request-origin", b"*"))]
        )
    elif headers.get(b"aeg-event-type") == b"SubscriptionValidation":
        code = json.loads(body)[0]["data"]["validationCode"]
        await _answer(send, body=json.dumps({"validationResponse": code}).encode())
    elif method == "POST":
        items = json.loads(body)
        _count(len(items) if isinstance(items, list) else 1)
        await _answer(send)
    else:
        await _answer(send, status=404)


if __name__ == "__main__":
    tls = {"ssl_certfile": sys.argv[2], "ssl_keyfile": sys.argv[3]} if len(sys.argv) > 3 else {}
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_level="warning",
        access_log=False,
        backlog=2048,
        **tls,  # type: ignore[arg-type]
    )
