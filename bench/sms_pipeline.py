"""Parts (b) and (c) of bench/sms.py: the SMPP process draining a queue, and end to end.

(b) ``queue``: N messages inserted as ``queued`` rows and their send jobs published after each
    commit, as POST /sms does (coalesced Celery tasks on a private redis-server), then one
    SmppProcess (the code ``trunkline smpp`` runs, in this process) consumes the jobs, claims
    their rows by id, segments, submits over one transceiver bind and records every
    submit_sm_resp: messages per second from start to the last resp stored. The grace period is
    set beyond the run, so the reconciler takes nothing: every message goes through its job.
(c) ``e2e``: a real ``trunkline api`` (HTTPS) and ``trunkline smpp`` as processes; client
    threads send HMAC-signed POST /sms with one recipient each and enableDeliveryReport; the
    SMSC answers every submit with a receipt at once; measured until every message is
    delivered and its SMSDeliveryReportReceived event is in the outbox (the webhook workers'
    own throughput is bench/events.py's subject).

Statistics (PostgreSQL): (b) runs ``ANALYZE`` after its bulk load; (c) analyses the tables past
autovacuum's threshold every 2 s while they grow, standing in for autovacuum, which may be off
on a development machine (bench/pgstats.py; docs/sms.md, "Operator: statistics").
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, insert, select

from bench import use_secrets_key
from bench.api import WRK_THREADS, run_wrk
from bench.pgstats import analyze, keep_statistics
from gateway.core.celery_app import create_celery
from gateway.core.db import Database
from gateway.core.hmac_auth import http_date, sign_request
from gateway.core.migrate import upgrade
from gateway.core.settings import Settings
from gateway.events.models import OutboxEvent
from gateway.resources.service import create_resource
from gateway.sms import connections
from gateway.sms.jobs import SendJobPublisher
from gateway.sms.models import SmsMessage
from gateway.sms.schemas import ConnectionCreate, RouteCreate
from sms.worker.process import SmppProcess
from tests.e2e.helpers import AcsHmacAuth, free_port, stop_process, strong_secret, trunkline_env
from tests.gateway.events.harness import RedisServer
from tests.gateway.sms.support import give_number
from tests.support.postgres import throwaway_database
from tests.support.smsc import SmscProcess

SENDER = "+14255550100"
TEXT = "Your verification code is 123456"
REPO = Path(__file__).resolve().parent.parent


@contextmanager
def prepared(backend: str, smsc: SmscProcess, window: int) -> Iterator[tuple[Database, str]]:
    use_secrets_key()
    with ExitStackLite() as stack:
        if backend == "postgresql":
            url = stack.enter(throwaway_database("trunkline_bench_sms"))
        else:
            tmp = stack.enter(TemporaryDirectory())
            url = f"sqlite:///{tmp}/bench.db"
        database = Database(url)
        upgrade(database.engine)
        with database.session() as session:
            resource_id = create_resource(session, "bench", "https://bench.test/").id
            connections.add_connection(
                session,
                ConnectionCreate(
                    name="smsc",
                    host=smsc.host,
                    port=smsc.port,
                    system_id=smsc.system_id,
                    password=smsc.password,
                    window_size=window,
                ),
            )
            connections.add_route(session, RouteCreate(prefix="+", connection="smsc"))
        give_number(database, resource_id, SENDER)
        try:
            yield database, resource_id
        finally:
            database.dispose()


class ExitStackLite:
    def __init__(self) -> None:
        self.managers: list[Any] = []

    def enter(self, manager: Any) -> Any:
        value = manager.__enter__()
        self.managers.append(manager)
        return value

    def __enter__(self) -> ExitStackLite:
        return self

    def __exit__(self, *exc: object) -> None:
        for manager in reversed(self.managers):
            manager.__exit__(None, None, None)


def queued_rows(resource_id: str, count: int, *, reports: bool) -> list[dict[str, Any]]:
    """``count`` one-segment messages queued for the SMPP process, with or without a report."""
    now = datetime.now(UTC)
    return [
        {
            "id": f"Outgoing_bench{index:08d}{uuid.uuid4()}",
            "resource_id": resource_id,
            "from_number": SENDER,
            "to_number": f"+1425{index:07d}",
            "country_code": "US",
            "text": TEXT,
            "segment_count": 1,
            "data_coding": 0,
            "enable_delivery_report": reports,
            "delivery_report_timeout_seconds": 3600,
            "state": "queued",
            "attempts": 0,
            "in_doubt": False,
            "possible_duplicates": 0,
            "next_attempt_at": now,
            "tried_connections": "",
            "concat_reference": 0,
            "created_at": now,
            "segments_succeeded": 0,
            "segments_failed": 0,
        }
        for index in range(count)
    ]


def load_queued(database: Database, settings: Settings, rows: list[dict[str, Any]], *, analyse: bool) -> None:
    """Store queued messages in chunks and publish each chunk's send job after its commit, as
    the API does; then ``ANALYZE`` (PostgreSQL), as autovacuum would after a bulk load."""
    publisher = SendJobPublisher(lambda: create_celery(settings), queue=settings.sms_job_queue)
    for offset in range(0, len(rows), 5000):
        chunk = rows[offset : offset + 5000]
        with database.session() as session:
            session.execute(insert(SmsMessage), chunk)
        publisher.publish([row["id"] for row in chunk])
    if not publisher.flush(60):
        raise TimeoutError("the send jobs were not published")
    publisher.close()
    if analyse:
        analyze(database.url)  # bench/pgstats.py


def resource_key(env: dict[str, str]) -> str:
    """The primary access key of the resource ``bench``, as ``trunkline resources show`` gives it."""
    shown = subprocess.run(
        [sys.executable, "-m", "gateway", "resources", "show", "bench"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return str(json.loads(shown.stdout)["primaryKey"])


def count_state(database: Database, *states: str) -> int:
    with database.read_session() as session:
        return int(
            session.scalar(select(func.count()).select_from(SmsMessage).where(SmsMessage.state.in_(states)))
            or 0
        )


def drain_queue(smsc: SmscProcess, count: int, window: int, backend: str) -> tuple[float, float]:
    """(b): messages per second from queued rows to stored submit_sm_resps, and the SMPP
    process's CPU milliseconds per message (its threads run in this process)."""
    smsc.configure(receipts="none", record=False)
    with prepared(backend, smsc, window) as (database, resource_id):
        rows = queued_rows(resource_id, count, reports=False)
        with TemporaryDirectory() as tmp:
            redis = RedisServer(Path(tmp))
            try:
                settings = Settings(
                    database_url=database.url,
                    data_dir=Path(tmp) / "data",
                    broker_url=redis.url,
                    sms_claim_batch=10000,
                    sms_job_grace_seconds=3600,  # the reconciler must not take first attempts
                )
                load_queued(database, settings, rows, analyse=backend == "postgresql")
                process = SmppProcess(settings, database)
                thread = threading.Thread(target=process.run, daemon=True)
                started = time.perf_counter()
                cpu_started = time.process_time()
                thread.start()
                deadline = started + 600
                while count_state(database, "submitted") < count:
                    if time.perf_counter() > deadline:
                        raise TimeoutError("the queue did not drain")
                    time.sleep(0.05)
                elapsed = time.perf_counter() - started
                cpu = time.process_time() - cpu_started  # the process's threads (+ this poll)
                process.stop()
                thread.join(30)
            finally:
                redis.stop()
        return count / elapsed, 1000 * cpu / count


API_COMMAND = (sys.executable, "-m", "gateway", "api", "--host", "127.0.0.1")


def send_body(number: int) -> dict[str, Any]:
    """One recipient, as azure-communication-sms 1.1.0's SmsClient.send sends it: every
    recipient with a new repeatability id and the time of its first sending."""
    return {
        "from": SENDER,
        "smsRecipients": [
            {
                "to": f"+1425555{number % 10000:04d}",
                "repeatabilityRequestId": str(uuid.uuid4()),
                "repeatabilityFirstSent": http_date(datetime.now(UTC)),
            }
        ],
        "message": TEXT,
        "smsSendOptions": {"enableDeliveryReport": True},
    }


def wrk_script(port: int, key: str, requests: int) -> str:
    """A wrk script cycling through ``requests`` signed POST /sms, one recipient each (distinct)."""
    host = f"127.0.0.1:{port}"
    path = "/sms?api-version=2021-03-07"
    # wrk's threads each run this script in a state of their own: thread n (setup numbers them)
    # sends requests n+1, n+1+WRK_THREADS, ..., so that no request goes twice (a repeated
    # repeatability id is answered from the stored message, not sent again).
    lines = [
        "local requests = {}",
        "local made = 0",
        "function setup(thread)",
        "  thread:set('offset', made)",
        "  made = made + 1",
        "end",
        "function init(args)",
        f"  index = offset + 1 - {WRK_THREADS}",
    ]
    for number in range(requests):
        body = json.dumps(send_body(number)).encode()
        headers = {
            **sign_request("POST", path, host, body, key, datetime.now(UTC)),
            "Content-Type": "application/json",
        }
        lua_headers = ", ".join(
            f"[{json.dumps(name)}] = {json.dumps(value)}" for name, value in headers.items()
        )
        lines.append(
            f"  requests[{number + 1}] = wrk.format('POST', {json.dumps(path)}, {{{lua_headers}}},"
            f" {json.dumps(body.decode())})"
        )
    lines += [
        "end",
        "function request()",
        f"  index = index + {WRK_THREADS}",
        "  return requests[(index - 1) % #requests + 1]",
        "end",
    ]
    return "\n".join(lines) + "\n"


def end_to_end(
    smsc: SmscProcess,
    count: int,
    window: int,
    backend: str,
    clients: int,
    api_workers: int = 1,
    wrk_seconds: float = 0.0,
) -> dict[str, Any]:
    """(c): signed POST /sms (one recipient each) -> submit_sm -> receipt -> report event.

    The clients are ``clients`` Python threads (httpx) sending ``count`` requests, or, with
    ``wrk_seconds``, wrk on ``clients`` connections for that long, replaying ``count`` distinct
    pre-signed requests (a C client: the Python one costs the shared cores more than the server).
    """
    smsc.configure(receipts="immediate", record=False)
    with (
        prepared(backend, smsc, window) as (database, _resource_id),
        TemporaryDirectory() as tmp,
        # The tables grow from empty during the run: analysed every 2 s (bench/pgstats.py).
        keep_statistics(database.url),
    ):
        port = free_port()
        env = trunkline_env(Path(tmp) / "data", port, strong_secret(), database_url=database.url)
        # Send jobs through Celery on a Redis of its own, as in production (not the filesystem
        # queue of `trunkline up`).
        redis = RedisServer(Path(tmp))
        env.update(
            TRUNKLINE_BROKER_URL=redis.url,
            TRUNKLINE_LOG_LEVEL="WARNING",
            TRUNKLINE_SMS_QUOTA_PER_RESOURCE_PER_MINUTE="0",
            TRUNKLINE_SMS_QUOTA_PER_COUNTRY_PER_MINUTE="0",
        )
        log = (Path(tmp) / "procs.log").open("wb")
        api = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway",
                "api",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(api_workers),
            ],
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        smpp = subprocess.Popen(
            [sys.executable, "-m", "gateway", "smpp"], env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            key = resource_key(env)
            ca = Path(tmp) / "data" / "tls" / "ca.pem"
            deadline = time.monotonic() + 60
            while True:
                try:
                    if ca.exists():
                        with httpx.Client(verify=ssl.create_default_context(cafile=str(ca))) as probe:
                            if probe.get(f"https://127.0.0.1:{port}/health").status_code == 200:
                                break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError("the API did not come up")
                time.sleep(0.1)
            while not smsc.bound_sessions():
                time.sleep(0.05)
            meter = CpuMeter(
                {
                    "api": partial(tree_cpu_seconds, api.pid),
                    "smpp": partial(tree_cpu_seconds, smpp.pid),
                    "postgres": partial(postgres_cpu_seconds, database.engine.url.database or "")
                    if backend == "postgresql"
                    else lambda: 0.0,
                    "smsc": partial(tree_cpu_seconds, smsc.process.pid),
                    "client": client_cpu_seconds,
                }
            )
            if wrk_seconds:
                script = Path(tmp) / "sms.lua"
                script.write_text(wrk_script(port, key, count))
                started = time.perf_counter()
                meter.start()
                non_2xx = int(run_wrk(port, script, round(wrk_seconds), clients)["non_2xx"])
                accepted_at = time.perf_counter()
                accepted = count_state(database, "queued", "submitted", "delivered", "failed", "expired")
                return finish(
                    database, accepted, started, accepted_at, [f"{non_2xx} non-2xx"] if non_2xx else [], meter
                )
            context = ssl.create_default_context(cafile=str(ca))
            next_index = iter(range(count))
            lock = threading.Lock()
            failures: list[str] = []

            def client_loop() -> None:
                with httpx.Client(
                    base_url=f"https://127.0.0.1:{port}", verify=context, auth=AcsHmacAuth(key), timeout=60
                ) as http:
                    while True:
                        with lock:
                            index = next(next_index, None)
                        if index is None:
                            return
                        response = http.post(
                            "/sms", params={"api-version": "2021-03-07"}, json=send_body(index)
                        )
                        if response.status_code != 202 or not response.json()["value"][0]["successful"]:
                            failures.append(response.text[:200])

            started = time.perf_counter()
            meter.start()
            threads = [threading.Thread(target=client_loop) for _ in range(clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            accepted_at = time.perf_counter()
            return finish(database, count - len(failures), started, accepted_at, failures, meter)
        finally:
            stop_process(api)
            stop_process(smpp)
            redis.stop()
            log.close()


def finish(
    database: Database,
    accepted: int,
    started: float,
    accepted_at: float,
    failures: list[str],
    meter: CpuMeter,
) -> dict[str, Any]:
    """Wait until every accepted message is final; the rates from ``started``, CPU per message."""
    deadline = accepted_at + 600
    while count_state(database, "delivered", "failed", "expired") < accepted:
        if time.perf_counter() > deadline:
            raise TimeoutError("messages did not finish")
        time.sleep(0.05)
    finished = time.perf_counter()
    cpu = meter.used()
    with database.read_session() as session:
        events = session.scalar(select(func.count()).select_from(OutboxEvent)) or 0
    return {
        "accepted": accepted,
        "accepted_per_second": accepted / (accepted_at - started),
        "delivered_with_events_per_second": accepted / (finished - started),
        "failures": float(len(failures)),
        "events": float(events),
        "first_failure": failures[0] if failures else "",
        "cpu_ms_per_message": {part: 1000 * seconds / max(1, accepted) for part, seconds in cpu.items()},
    }


class CpuMeter:
    """CPU seconds the processes of a run used between ``start()`` and ``used()``, by part."""

    def __init__(self, parts: dict[str, Callable[[], float]]) -> None:
        self.parts = parts
        self.before: dict[str, float] = {}

    def start(self) -> None:
        self.before = {name: read() for name, read in self.parts.items()}

    def used(self) -> dict[str, float]:
        return {name: read() - self.before[name] for name, read in self.parts.items()}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc); 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0  # gone meanwhile
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


def tree_cpu_seconds(pid: int) -> float:
    """A process and its live descendants (``trunkline api --workers N`` forks its workers)."""
    return cpu_seconds(pid) + sum(tree_cpu_seconds(child) for child in _children(pid))


def postgres_cpu_seconds(database_name: str) -> float:
    """The PostgreSQL backends serving this database (their process title names it)."""
    total = 0.0
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            title = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if title.startswith("postgres: ") and f" {database_name} " in title:
                total += cpu_seconds(int(proc.name))
    return total


def client_cpu_seconds() -> float:
    """This process (the httpx client threads) and its finished children (wrk)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime
