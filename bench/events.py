"""Event delivery benchmark: events/s from commit to a local https receiver, and commit->receipt lag.

Needs PostgreSQL and Redis (defaults: the test services). Creates and drops its own database and
uses one Redis DB number, which it flushes. Runs the receiver (uvicorn, TLS with a throw-away CA)
and ``trunkline worker`` processes on this machine ("one worker node"), publishes N events through
the publish seam in batches, and measures how long until the receiver has all of them.

    python -m bench.events --events 5000 --processes 2 --concurrency 16
    python -m bench.events --events 20000 --batch 1 10 100   # maxEventsPerBatch, side by side

Statistics: the database is analysed after the warm-up, and while events flow every
``--analyze-every`` seconds, the tables past autovacuum's threshold (bench/pgstats.py says why).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import sqlalchemy as sa

from bench import use_secrets_key

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

RECEIVER = r"""
import json, sys, time
import uvicorn

received = []


async def answer(send, status=200, headers=(), body=b""):
    await send({"type": "http.response.start", "status": status, "headers": list(headers)})
    await send({"type": "http.response.body", "body": body})


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    now = time.time()
    headers = dict(scope["headers"])
    if scope["method"] == "GET" and scope["path"] == "/dump":
        await answer(send, body=json.dumps(received).encode())
    elif scope["method"] == "OPTIONS":
        origin = headers.get(b"webhook-request-origin", b"")
        await answer(send, headers=[(b"webhook-allowed-origin", origin)])
    elif headers.get(b"aeg-event-type") == b"SubscriptionValidation":
        code = json.loads(body)[0]["data"]["validationCode"]
        await answer(send, body=json.dumps({"validationResponse": code}).encode())
    else:
        items = json.loads(body)
        for item in items if isinstance(items, list) else [items]:
            received.append((item["id"], now))
        await answer(send)


uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), ssl_certfile=sys.argv[2],
            ssl_keyfile=sys.argv[3], log_level="warning", access_log=False, backlog=2048)
"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its reaped children, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(f) for f in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    use_secrets_key()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument(
        "--batch",
        type=int,
        nargs="+",
        default=[1],
        help="the subscription's maxEventsPerBatch; several values run one after another, side by side",
    )
    parser.add_argument("--batch-kb", type=int, default=1024, help="preferredBatchSizeInKilobytes")
    parser.add_argument("--publish-batch", type=int, default=100, help="events per producer transaction")
    parser.add_argument(
        "--analyze-every", type=float, default=2.0, help="seconds between ANALYZEs while running; 0: never"
    )
    parser.add_argument(
        "--rate", type=float, default=0, help="target publish rate (events/s); 0 = as fast as possible"
    )
    parser.add_argument("--processes", type=int, default=2, help="trunkline worker processes on this node")
    parser.add_argument("--concurrency", type=int, default=8, help="delivery threads per worker process")
    parser.add_argument("--batch-size", type=int, default=50, help="TRUNKLINE_EVENTS_DELIVERY_BATCH_SIZE")
    parser.add_argument("--schema", choices=["eventgrid", "cloudevents"], default="eventgrid")
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "TRUNKLINE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument(
        "--redis", default=os.environ.get("TRUNKLINE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/6")
    )
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    results = [run(args, max_events) for max_events in args.batch]
    for result in results:
        print(json.dumps(result, indent=2))
    if len(results) > 1:
        print()
        columns = ("max_events_per_batch", "delivered_per_s", "lag_p50_s", "lag_p99_s")
        columns += ("worker_cpu_s_per_1000", "receiver_cpu_s_per_1000", "load_average_1m")
        print("| " + " | ".join(columns) + " |")
        print("|" + "---:|" * len(columns))
        for r in results:
            print("| " + " | ".join(str(r[c]) for c in columns) + " |")


def run(args: argparse.Namespace, max_events: int) -> dict[str, object]:
    """One run with the subscription batching ``max_events`` events: its figures."""
    import redis

    from bench.pgstats import StatisticsKeeper, analyze
    from gateway.core.logging import configure_logging

    configure_logging("WARNING")

    from gateway.core.db import Database
    from gateway.core.migrate import upgrade
    from gateway.core.settings import Settings
    from gateway.core.tls import ensure_local_tls
    from gateway.events import builder, service, subscriptions
    from gateway.events.models import SubscriptionStatus
    from gateway.events.runtime import limits_from_settings, policy_from_settings
    from gateway.resources.service import create_resource

    tmp = Path(tempfile.mkdtemp(prefix="tl-bench-"))
    tls = ensure_local_tls(tmp / "tls", ["localhost"])
    admin_url = sa.engine.make_url(args.postgres)
    name = f"tl_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    db_url = admin_url.set(database=name).render_as_string(hide_password=False)
    broker = redis.Redis.from_url(args.redis)
    broker.flushdb()
    processes: list[subprocess.Popen[bytes]] = []
    database = Database(db_url, pool_size=2)
    try:
        upgrade(database.engine)
        port = free_port()
        receiver = subprocess.Popen(
            [sys.executable, "-c", RECEIVER, str(port), str(tls.cert_file), str(tls.key_file)]
        )
        processes.append(receiver)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRUNKLINE_")}
        env.update(
            TRUNKLINE_DATA_DIR=str(tmp / "data"),
            TRUNKLINE_DATABASE_URL=db_url,
            TRUNKLINE_BROKER_URL=args.redis,
            TRUNKLINE_WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8",
            TRUNKLINE_WEBHOOK_CA_BUNDLE=str(tls.ca_file),
            TRUNKLINE_EVENTS_DISPATCH_INTERVAL_SECONDS="0.02",
            TRUNKLINE_EVENTS_DELIVERY_BATCH_SIZE=str(args.batch_size),
            TRUNKLINE_LOG_LEVEL="WARNING",
            TRUNKLINE_SECRETS_KEYS=os.environ["TRUNKLINE_SECRETS_KEYS"],
        )
        for n in range(args.processes):
            log = (tmp / f"worker{n}.log").open("wb")
            processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "gateway",
                        "worker",
                        f"--concurrency={args.concurrency}",
                        f"--hostname=bench{n}@%h",
                    ]
                    + ([] if n == 0 else ["--no-dispatcher"]),
                    env=env,
                    cwd=str(REPO),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        settings = Settings(webhook_allowed_networks=["127.0.0.0/8"])  # type: ignore[arg-type]
        with database.session() as session:
            resource_id = create_resource(session, "bench", "https://localhost/").id
            sub = subscriptions.create_subscription(
                session,
                resource_id,
                subscriptions.SubscriptionSpec(
                    f"https://localhost:{port}/hook",
                    [builder.SMS_RECEIVED],
                    delivery_schema=builder.DeliverySchema(
                        "EventGridSchema" if args.schema == "eventgrid" else "CloudEventSchemaV1_0"
                    ),
                    max_events_per_batch=max_events,
                    preferred_batch_size_kb=args.batch_kb,
                ),
                policy_from_settings(settings),
                limits_from_settings(settings),
            )
        deadline = time.monotonic() + 60
        while True:
            with database.session() as session:
                if subscriptions.get_subscription(session, sub.id).status == SubscriptionStatus.ACTIVE:
                    break
            if time.monotonic() > deadline:
                raise SystemExit("the subscription did not validate; see worker logs in " + str(tmp))
            time.sleep(0.1)
        # Warm up connections and the code path.
        with database.session() as session:
            for i in range(20):
                service.publish(
                    session,
                    resource_id=resource_id,
                    event_type=builder.SMS_RECEIVED,
                    subject="/phonenumber/15550000000",
                    data=builder.sms_received_data("w", "+1555", "+1556", "warm", builder_now()),
                    event_id=f"warm-{i}",
                )
        time.sleep(2)
        analyze(db_url)

        keeper = StatisticsKeeper(db_url, args.analyze_every)
        keeper.start()
        cpu_before = {p.pid: cpu_seconds(p.pid) for p in processes}
        committed: dict[str, float] = {}
        started = time.time()
        sent = 0
        while sent < args.events:
            with database.session() as session:
                ids = []
                for _ in range(min(args.publish_batch, args.events - sent)):
                    event_id = f"bench-{sent}"
                    service.publish(
                        session,
                        resource_id=resource_id,
                        event_type=builder.SMS_RECEIVED,
                        subject="/phonenumber/15550000000",
                        data=builder.sms_received_data(
                            event_id, "+15550000001", "+15550000000", "benchmark message", builder_now()
                        ),
                        event_id=event_id,
                    )
                    ids.append(event_id)
                    sent += 1
            at = time.time()
            for event_id in ids:
                committed[event_id] = at
            if args.rate:
                ahead = sent / args.rate - (time.time() - started)
                if ahead > 0:
                    time.sleep(ahead)
        publish_seconds = time.time() - started

        def dump() -> list[tuple[str, float]]:
            with urllib.request.urlopen(
                urllib.request.Request(f"https://localhost:{port}/dump"),
                context=__import__("ssl").create_default_context(cafile=str(tls.ca_file)),
                timeout=30,
            ) as answer:
                return [tuple(x) for x in json.loads(answer.read())]

        deadline = time.monotonic() + args.timeout
        while True:
            got = {i: t for i, t in dump() if i.startswith("bench-")}
            if len(got) >= args.events or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        cpu_used = {pid: cpu_seconds(pid) - before for pid, before in cpu_before.items()}
        keeper.stop()
        first_commit = min(committed.values())
        last_receipt = max(got.values()) if got else float("nan")
        lags = sorted(got[i] - committed[i] for i in got)
        elapsed = last_receipt - first_commit
        q = statistics.quantiles(lags, n=100) if len(lags) >= 2 else [float("nan")] * 99
        return {
            "events": args.events,
            "delivered": len(got),
            "schema": args.schema,
            "max_events_per_batch": max_events,
            "preferred_batch_kb": args.batch_kb,
            "tables_analysed": keeper.analysed,
            "worker_processes": args.processes,
            "threads_per_process": args.concurrency,
            "delivery_batch_size": args.batch_size,
            "target_rate_per_s": args.rate or None,
            "publish_rate_per_s": round(args.events / publish_seconds, 1),
            "delivered_per_s": round(len(got) / elapsed, 1) if got else 0,
            "lag_p50_s": round(q[49], 3),
            "lag_p99_s": round(q[98], 3),
            "lag_max_s": round(lags[-1], 3) if lags else None,
            # CPU seconds per 1,000 delivered events: the workers (dispatcher included), and the
            # receiver, which shares the machine in this benchmark.
            "worker_cpu_s_per_1000": round(
                sum(cpu_used[p.pid] for p in processes[1:]) * 1000 / max(1, len(got)), 3
            ),
            "receiver_cpu_s_per_1000": round(cpu_used[receiver.pid] * 1000 / max(1, len(got)), 3),
            "load_average_1m": round(os.getloadavg()[0], 2),
        }
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        database.dispose()
        broker.flushdb()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def builder_now():  # type: ignore[no-untyped-def]
    from gateway.core.db import utcnow

    return utcnow()


if __name__ == "__main__":
    main()
