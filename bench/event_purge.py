"""One batch of the events purge, before and after 2026-12-07, on tables that have grown.

Finished events past their retention are deleted 1,000 at a time with their deliveries and
attempt log (gateway.events.repository.purge_finished). The statements before: the batch's
events picked with no order, then the attempt log deleted by ``event_id`` (no index serves it),
the deliveries by a list of event ids, the events. After: oldest first, the events deleted by
primary key, deliveries and attempts by the foreign keys' cascade. For each ``--rows`` size a
fresh PostgreSQL database holds that many events, deliveries and attempts
(tests/support/event_rows.py: 0.1% of events past retention); each way runs ``--repeat`` times
in a transaction rolled back, first on tables never analysed (autovacuum off), then after
``ANALYZE``. Median ms per batch.

    .venv/bin/python -m bench.event_purge [--rows 100000 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from datetime import timedelta

from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from bench.pgstats import analyze
from gateway.core.db import Database, utcnow
from gateway.core.migrate import upgrade
from gateway.events.repository import purge_finished
from gateway.resources.service import create_resource
from tests.support.event_rows import EVENT_TABLES, load_events
from tests.support.plans import autovacuum_off
from tests.support.postgres import throwaway_database
from tests.support.secrets_keys import TEST_SECRETS_KEYS

BATCH = 1000

_BEFORE = (
    "DELETE FROM event_delivery_attempts WHERE event_id = ANY(%(ids)s)",
    "DELETE FROM event_deliveries WHERE event_id = ANY(%(ids)s)",
    "DELETE FROM event_outbox WHERE id = ANY(%(ids)s)",
)
_BEFORE_PICK = (
    "SELECT e.id FROM event_outbox e WHERE e.dispatched_at IS NOT NULL AND e.dispatched_at < %(before)s"
    " AND NOT EXISTS (SELECT 1 FROM event_deliveries d WHERE d.event_id = e.id AND d.status = 'pending')"
    " LIMIT %(limit)s"
)


def load(database: Database, rows: int) -> None:
    with database.session() as session:
        resource_id = create_resource(session, "purge", "https://gateway.test/").id
    with database.engine.begin() as connection:
        autovacuum_off(connection, EVENT_TABLES)
        load_events(connection, rows, resource_id)


def _before(session: Session) -> int:
    connection = session.connection()
    cutoff = utcnow() - timedelta(days=30)
    ids = [row[0] for row in connection.exec_driver_sql(_BEFORE_PICK, {"before": cutoff, "limit": BATCH})]
    for statement in _BEFORE:
        connection.exec_driver_sql(statement, {"ids": ids})
    return len(ids)


def _after(session: Session) -> int:
    return purge_finished(session, utcnow() - timedelta(days=30), BATCH)


def _median_ms(database: Database, way: Callable[[Session], int], repeat: int) -> tuple[float, int]:
    times, count = [], 0
    for _ in range(repeat):
        with database.engine.connect() as connection:
            transaction = connection.begin()
            started = time.perf_counter()
            count = way(Session(bind=connection))
            times.append((time.perf_counter() - started) * 1000)
            transaction.rollback()
    return statistics.median(times), count


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("TRUNKLINE_SECRETS_KEYS", TEST_SECRETS_KEYS)
    console = Console()
    table = Table(title=f"median ms per purge batch of {BATCH:,} events (this process + PostgreSQL)")
    for column in ("events stored", "statistics", "before", "after", "events per batch"):
        table.add_column(column, justify="right")
    for rows in args.rows:
        with throwaway_database("trunkline_bench_purge") as url:
            database = Database(url)
            try:
                upgrade(database.engine)
                started = time.perf_counter()
                load(database, rows)
                took = time.perf_counter() - started
                console.print(f"{rows:,} events, deliveries and attempts loaded in {took:.1f} s")
                for analysed in (False, True):
                    if analysed:
                        analyze(url)
                    before, _ = _median_ms(database, _before, args.repeat)
                    after, count = _median_ms(database, _after, args.repeat)
                    label = "analysed" if analysed else "never analysed"
                    table.add_row(f"{rows:,}", label, f"{before:.1f}", f"{after:.1f}", f"{count:,}")
            finally:
                database.dispose()
    console.print(table)


if __name__ == "__main__":
    main()
