"""Per-request cost of a signed POST /sms (one recipient), in-process, on SQLite and PostgreSQL.

The app (``gateway.app.create_app``, every middleware, HMAC auth, the real database work) is
called as an ASGI application straight from an event loop, one request at a time, so the
figures are the server's own work per request without HTTP parsing or TLS. For each backend and
case it prints the median and mean wall time per request, the CPU time of this process per
request (the database server's CPU is not in it), and the database round trips per request by
kind (statements, commits, rollbacks, pool pre-pings), counted with engine events. On
PostgreSQL psycopg also sends a BEGIN of its own before each transaction's first statement (one
more round trip per transaction, two per request in any version here), not counted.

Quotas stay on (with limits far above what the run sends, so every request is accepted) and
``--recent`` messages of the same resource are inserted in the last minute first, so the
quota's cost at a realistic table is measured too: at 2,000 messages a second a minute holds
120,000 rows.

Cases: ``plain`` (no repeatability id) and ``repeatable`` (a new repeatabilityRequestId per
request). ``--baseline REF`` runs the same script against the tree of git revision REF (taken
with ``git archive`` into a temporary directory) first and prints both side by side.

    .venv/bin/python -m bench.sms_api [--requests 2000] [--recent 20000]
        [--backend sqlite postgresql] [--baseline main] [--show-sql] [--profile]
"""

from __future__ import annotations

# ruff: noqa: E402 - the sys.path fix below must run before the imports
import sys
from pathlib import Path

# This folder holds numbers.py and sms.py, which would shadow the stdlib's numbers (psycopg needs
# it) and the sms package: run from the repository root instead.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import cProfile
import json
import logging
import os
import pstats
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

from sqlalchemy import MetaData, Table, event, insert, inspect
from sqlalchemy.engine import Engine

from bench import use_secrets_key
from gateway.app import create_app
from gateway.core.db import Database
from gateway.core.hmac_auth import sign_request
from gateway.core.logging import configure_logging
from gateway.core.migrate import upgrade
from gateway.core.settings import Settings
from gateway.resources.service import create_resource
from gateway.sms.models import SmsMessage
from tests.gateway.sms.support import give_number
from tests.support.postgres import throwaway_database

HOST = "bench.example.net"
SENDER = "+14255550100"
TEXT = "Your verification code is 123456"
PATH = "/sms?api-version=2021-03-07"
CASES = ("plain", "repeatable")


class RoundTrips:
    """Counts what an engine sends to its database, by kind, while ``active``."""

    def __init__(self, engine: Engine) -> None:
        self.counts: Counter[str] = Counter()
        self.statements: list[str] = []
        self.active = False
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", self._commit)
        event.listen(engine, "rollback", self._rollback)
        dialect = engine.dialect
        ping = dialect.do_ping

        def counted_ping(dbapi_connection: Any) -> bool:
            if self.active:
                self.counts["pre-ping"] += 1
                self.statements.append("(pool pre-ping)")
            return bool(ping(dbapi_connection))

        dialect.do_ping = counted_ping  # type: ignore[method-assign]

    def _statement(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if self.active:
            verb = statement.split(None, 1)[0].upper()
            self.counts[verb.lower()] += 1
            self.statements.append(" ".join(statement.split()))

    def _commit(self, _conn: Any) -> None:
        if self.active:
            self.counts["commit"] += 1
            self.statements.append("COMMIT")

    def _rollback(self, _conn: Any) -> None:
        if self.active:
            self.counts["rollback"] += 1
            self.statements.append("ROLLBACK")


def asgi_request(
    body: bytes,
    headers: dict[str, str],
    *,
    method: str = "POST",
    path_and_query: str = PATH,
    host: str = HOST,
) -> tuple[dict[str, Any], bytes]:
    """An HTTPS request's ASGI scope (and its body), as uvicorn would hand it to the app."""
    path, _, query = path_and_query.partition("?")
    raw_headers = [(b"host", host.encode()), (b"content-type", b"application/json")]
    raw_headers += [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    raw_headers.append((b"content-length", str(len(body)).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": raw_headers,
        "client": ("127.0.0.1", 50000),
        "server": (host, 443),
    }
    return scope, body


async def call(app: Any, scope: dict[str, Any], body: bytes) -> tuple[int, bytes]:
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(dict(scope), receive, send)
    return status, b"".join(chunks)


async def timed_requests(
    app: Any, requests: list[tuple[dict[str, Any], bytes]], profiler: cProfile.Profile | None
) -> list[float]:
    timings: list[float] = []
    for scope, body in requests:
        started = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        status, answer = await call(app, scope, body)
        if profiler is not None:
            profiler.disable()
        timings.append(time.perf_counter() - started)
        if status != 202 or not json.loads(answer)["value"][0]["successful"]:
            raise RuntimeError(f"request failed: {status} {answer[:300]!r}")
    return timings


async def all_requests(app: Any, requests: list[tuple[dict[str, Any], bytes]]) -> None:
    for scope, body in requests:
        status, answer = await call(app, scope, body)
        assert status == 202, answer


def signed_bodies(case: str, count: int, key: str) -> list[tuple[dict[str, Any], bytes]]:
    now = datetime.now(UTC)
    first_sent = format_datetime(now, usegmt=True)
    requests = []
    for index in range(count):
        recipient: dict[str, Any] = {"to": f"+1425555{index % 10000:04d}"}
        if case == "repeatable":
            recipient |= {"repeatabilityRequestId": str(uuid.uuid4()), "repeatabilityFirstSent": first_sent}
        body = json.dumps(
            {
                "from": SENDER,
                "smsRecipients": [recipient],
                "message": TEXT,
                "smsSendOptions": {"enableDeliveryReport": True},
            }
        ).encode()
        requests.append(asgi_request(body, sign_request("POST", PATH, HOST, body, key, now)))
    return requests


def fill_recent(database: Database, resource_id: str, count: int) -> None:
    """``count`` messages of the resource created within the last minute (what the quota counts)."""
    now = datetime.now(UTC)
    rows = [
        {
            "id": f"Outgoing_recent{index:08d}{uuid.uuid4()}",
            "resource_id": resource_id,
            "from_number": SENDER,
            "to_number": f"+1425{index % 10_000_000:07d}",
            "country_code": "US",
            "text": TEXT,
            "segment_count": 1,
            "data_coding": 0,
            "delivery_report_timeout_seconds": 3600,
            "state": "delivered",
            "next_attempt_at": now,
            "created_at": now - timedelta(seconds=20) + timedelta(microseconds=index),
        }
        for index in range(count)
    ]
    with database.session() as session:
        for offset in range(0, count, 5000):
            session.execute(insert(SmsMessage), rows[offset : offset + 5000])
        if count and "sms_send_counters" in inspect(session.connection()).get_table_names():
            # Code that counts its quotas per second (0005_sms_send_counters) finds the same
            # minute there: one row a second, in all and for the destination country.
            counters = Table("sms_send_counters", MetaData(), autoload_with=session.connection())
            second = int(now.timestamp())
            session.execute(
                insert(counters),
                [
                    {"resource_id": resource_id, "scope": scope, "second": second - age, "sent": count // 60}
                    for scope in ("*", "US")
                    for age in range(60)
                ],
            )


@contextmanager
def database_for(backend: str) -> Iterator[str]:
    if backend == "postgresql":
        with throwaway_database("trunkline_bench_sms_api") as url:
            yield url
    else:
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.db"


def measure(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with ExitStack() as stack:
        url = stack.enter_context(database_for(backend))
        data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        database = Database(url)
        stack.callback(database.dispose)
        upgrade(database.engine)
        with database.session() as session:
            resource = create_resource(session, "bench", f"https://{HOST}/")
            resource_id, key = resource.id, resource.primary_key
        give_number(database, resource_id, SENDER)
        fill_recent(database, resource_id, args.recent)
        # Limits far above this run's traffic: every request is accepted, every check still runs.
        settings = Settings(
            data_dir=data_dir,
            database_url=url,
            operator_token="bench-operator-token-0123456789abcdef",
            sms_quota_per_resource_per_minute=10_000_000,
            sms_quota_per_country_per_minute=10_000_000,
        )
        configure_logging(args.log_level)
        devnull = stack.enter_context(open(os.devnull, "w"))
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(devnull)
        app = create_app(settings, database)
        # What the app's lifespan does on shutdown, before the data folder (its local broker) goes.
        stack.callback(app.state.sms_jobs.close)
        stack.callback(app.state.sms_admission.close)
        trips = RoundTrips(database.engine)
        loop = asyncio.new_event_loop()
        stack.callback(loop.close)
        for case in CASES:
            warmup = signed_bodies(case, 100, key)
            loop.run_until_complete(all_requests(app, warmup))
            requests = signed_bodies(case, args.requests, key)
            trips.counts.clear()
            trips.statements.clear()
            trips.active = True
            scope, body = requests[0]
            loop.run_until_complete(call(app, scope, body))
            trips.active = False
            one_request = list(trips.statements)
            per_request = dict(trips.counts)
            profiler = cProfile.Profile() if args.profile else None
            cpu_started = time.process_time()
            wall_started = time.perf_counter()
            # One coroutine for the whole run, as under uvicorn: the thread pool's workers live
            # as long as the task that started them.
            timings = loop.run_until_complete(timed_requests(app, requests[1:], profiler))
            wall = time.perf_counter() - wall_started
            cpu = time.process_time() - cpu_started
            results[case] = {
                "median_ms": statistics.median(timings) * 1000,
                "mean_ms": wall / len(timings) * 1000,
                "cpu_ms": cpu / len(timings) * 1000,
                "round_trips": per_request,
                "statements": one_request,
            }
            if profiler is not None:
                print(f"\n--- {backend} {case}: cProfile, cumulative ---", file=sys.stderr)
                pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(45)
                print(f"\n--- {backend} {case}: cProfile, own time ---", file=sys.stderr)
                pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(30)
    return results


def trips_text(figures: dict[str, Any]) -> str:
    counts: dict[str, int] = figures["round_trips"]
    parts = ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items()))
    return f"{sum(counts.values()):2d} ({parts})"


def run_baseline(ref: str, argv: list[str]) -> dict[str, Any]:
    """This script's figures for the tree of git revision ``ref`` (a temporary export)."""
    repo = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "archive", ref], cwd=repo, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        shutil.copyfile(__file__, Path(tmp) / "bench" / "sms_api.py")
        env = dict(os.environ, PYTHONPATH=tmp)
        output = subprocess.run(
            [sys.executable, "-m", "bench.sms_api", "--json", *argv],
            cwd=tmp,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    result: dict[str, Any] = json.loads(output)
    return result


def main() -> None:
    use_secrets_key()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--recent", type=int, default=20_000, help="messages already sent in the last minute")
    parser.add_argument(
        "--backend", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite", "postgresql"]
    )
    parser.add_argument("--log-level", default="INFO", help="as TRUNKLINE_LOG_LEVEL (lines go to /dev/null)")
    parser.add_argument("--baseline", metavar="REF", help="also measure git revision REF, first")
    parser.add_argument("--show-sql", action="store_true", help="print the statements of one request")
    parser.add_argument("--profile", action="store_true", help="cProfile the timed requests (to stderr)")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    passed = ["--requests", str(args.requests), "--recent", str(args.recent), "--log-level", args.log_level]
    passed += ["--backend", *args.backend]
    runs: dict[str, dict[str, Any]] = {}
    if args.baseline:
        runs[args.baseline] = run_baseline(args.baseline, passed)
    current = {backend: measure(backend, args) for backend in args.backend}
    if args.json:
        print(json.dumps(current))
        return
    runs["this tree"] = current
    print(
        f"signed POST /sms, one recipient, in-process ASGI, {args.requests} requests per case, "
        f"{args.recent} messages already in the last minute, log level {args.log_level} "
        f"({os.cpu_count()} cores)"
    )
    print(
        f"{'code':>12} {'backend':>10} {'case':>10} {'median ms':>10} {'mean ms':>8} {'cpu ms':>7}"
        "  statements per request (SQLAlchemy's view)"
    )
    for label, by_backend in runs.items():
        for backend, by_case in by_backend.items():
            for case, figures in by_case.items():
                print(
                    f"{label:>12} {backend:>10} {case:>10} {figures['median_ms']:>10.3f} "
                    f"{figures['mean_ms']:>8.3f} {figures['cpu_ms']:>7.3f}  {trips_text(figures)}"
                )
    if args.show_sql:
        for label, by_backend in runs.items():
            for backend, by_case in by_backend.items():
                for case, figures in by_case.items():
                    print(f"\n{label}, {backend}, {case}: one request's round trips")
                    for statement in figures["statements"]:
                        print(f"  {statement[:160]}")


if __name__ == "__main__":
    main()
