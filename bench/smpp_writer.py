"""The SMPP process's database work per message: statements, its own CPU and PostgreSQL's.

N messages asking for a delivery report are inserted as ``queued`` rows and their send jobs
published (as POST /sms does, on a private redis-server); one SmppProcess (the code ``trunkline
smpp`` runs, in this process) claims them, submits them over one transceiver bind to the node-smpp
SMSC, which sends each receipt at once, and records the resps, the receipts and the report events.
Measured until every message is delivered: messages per second, the CPU of this process (the
SMPP process's threads, and the bench's poll every 0.1 s) and of the PostgreSQL backends of the
run's database per message, and
the statements the SMPP process sent per message, by kind.

Statements are counted as the server runs them: an ``executemany`` of n rows is n statements (so
psycopg's pipelined ``executemany`` counts per row, as it does on the server), on PostgreSQL at
psycopg's cursor (``gateway.core.bulk`` goes to it directly), on SQLite at SQLAlchemy's.

Statistics: one ``ANALYZE`` after the bulk load and none while the run goes on (the tables then
grow under stale statistics, the case the plans of the writer's statements must survive).

    .venv/bin/python -m bench.smpp_writer [--count 5000] [--backend postgresql|sqlite] [--runs 1]
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import psycopg
from sqlalchemy import event
from sqlalchemy.engine.url import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sms_pipeline import count_state, load_queued, postgres_cpu_seconds, prepared, queued_rows
from gateway.core.settings import Settings
from sms.worker.process import SmppProcess
from tests.gateway.events.harness import RedisServer
from tests.support.smsc import SmscProcess

_TABLE = re.compile(r"(?is)\b(?:from|into|update)\s+\"?(\w+)")


def kind(statement: str) -> str:
    """``VERB table`` (the first table named), as a statement's label in the counts."""
    verb = statement.lstrip().split(None, 1)[0].upper()
    table = _TABLE.search(statement)
    return f"{verb} {table.group(1) if table else ''}".strip()


class StatementCounter:
    """Statements sent from threads other than the main one (the bench polls from the main)."""

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()

    def add(self, statement: str, rows: int) -> None:
        if threading.current_thread() is threading.main_thread():
            return
        if statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "BEGIN", "COMMIT", "ROLLBACK")):
            return
        with self.lock:
            self.counts[kind(statement)] += rows

    @contextmanager
    def on_psycopg(self) -> Iterator[None]:
        execute, executemany = psycopg.Cursor.execute, psycopg.Cursor.executemany
        counter = self

        def counted_execute(cursor: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            counter.add(str(query), 1)
            return execute(cursor, query, *args, **kwargs)

        def counted_executemany(cursor: Any, query: Any, params_seq: Any, *args: Any, **kwargs: Any) -> Any:
            params = list(params_seq)
            counter.add(str(query), len(params))
            return executemany(cursor, query, params, *args, **kwargs)

        psycopg.Cursor.execute = counted_execute  # type: ignore[method-assign]
        psycopg.Cursor.executemany = counted_executemany  # type: ignore[method-assign]
        try:
            yield
        finally:
            psycopg.Cursor.execute = execute  # type: ignore[method-assign]
            psycopg.Cursor.executemany = executemany  # type: ignore[method-assign]

    @contextmanager
    def on_engine(self, engine: Any) -> Iterator[None]:
        def listener(
            conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
        ) -> None:
            self.add(statement, len(parameters) if many else 1)

        event.listen(engine, "before_cursor_execute", listener)
        try:
            yield
        finally:
            event.remove(engine, "before_cursor_execute", listener)


def run(smsc: SmscProcess, count: int, window: int, backend: str) -> dict[str, Any]:
    smsc.configure(receipts="immediate", record=False)
    counter = StatementCounter()
    with prepared(backend, smsc, window) as (database, resource_id), TemporaryDirectory() as tmp:
        rows = queued_rows(resource_id, count, reports=True)
        redis = RedisServer(Path(tmp))
        try:
            settings = Settings(
                database_url=database.url,
                data_dir=Path(tmp) / "data",
                broker_url=redis.url,
                sms_job_grace_seconds=3600,  # every message goes through its job
            )
            postgres = backend == "postgresql"
            name = make_url(database.url).database or ""
            load_queued(database, settings, rows, analyse=postgres)
            process = SmppProcess(settings, database)
            thread = threading.Thread(target=process.run, daemon=True)
            watch = counter.on_psycopg() if postgres else counter.on_engine(database.engine)
            with watch:
                started = time.perf_counter()
                cpu_started = time.process_time()
                pg_started = postgres_cpu_seconds(name) if postgres else 0.0
                thread.start()
                deadline = started + 600
                while count_state(database, "delivered") < count:
                    if time.perf_counter() > deadline:
                        raise TimeoutError("the messages were not delivered")
                    time.sleep(0.1)
                elapsed = time.perf_counter() - started
                cpu = time.process_time() - cpu_started
                pg_cpu = (postgres_cpu_seconds(name) - pg_started) if postgres else 0.0
                process.stop()
                thread.join(30)
        finally:
            redis.stop()
    return {
        "per_second": count / elapsed,
        "smpp_ms": 1000 * cpu / count,
        "postgres_ms": 1000 * pg_cpu / count,
        "statements": dict(counter.counts),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--backend", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    smsc = SmscProcess.start()
    try:
        for number in range(1, args.runs + 1):
            result = run(smsc, args.count, args.window, args.backend)
            statements = result["statements"]
            total = sum(statements.values())
            print(
                f"run {number} {args.backend} N={args.count}: {result['per_second']:,.0f} messages/s; "
                f"CPU ms/message: smpp {result['smpp_ms']:.3f}, postgres {result['postgres_ms']:.3f}; "
                f"statements/message {total / args.count:.2f}"
            )
            for label, seen in sorted(statements.items(), key=lambda item: -item[1]):
                print(f"    {seen / args.count:7.3f}  {label}")
    finally:
        smsc.stop()


if __name__ == "__main__":
    main()
