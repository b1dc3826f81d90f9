"""Keeping PostgreSQL's statistics current during a benchmark, as autovacuum does in production.

Autovacuum may be off on a development machine (it is on the 2-core machine of issue 15): its
tables are then never analysed, the planner guesses from empty-table defaults, and a statement
psycopg prepared while a table was small keeps that table's plan for good (a prepared
statement is planned again only when something invalidates it, such as an ANALYZE). A
benchmark must not measure that, nor switch autovacuum on for a server others share (``ALTER
SYSTEM`` would), so it runs ``ANALYZE`` on its own database: once after each bulk load, and
every ``interval`` seconds while it runs, the tables autovacuum would analyse then (more rows
changed since their last analysis than ``autovacuum_analyze_threshold``, 50, plus
``autovacuum_analyze_scale_factor``, 0.1, of their rows).

Every 2 s is more often than autovacuum, which visits a database once a minute
(``autovacuum_naptime``). But a benchmark's tables grow from empty within its minute, the
state production is in only in its first minute: with one analysis a minute (tried,
2026-12-07), the plans prepared on empty tables were kept for the whole run and PostgreSQL cost
2.2 ms per message instead of 0.6. So the analyses stay frequent, on a connection of their own
whose backend (:attr:`StatisticsKeeper.pid`) a benchmark reports apart from the application's.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

ANALYZE_THRESHOLD = 50  # autovacuum_analyze_threshold
ANALYZE_SCALE_FACTOR = 0.1  # autovacuum_analyze_scale_factor

# The tables autovacuum would analyse now: changed rows past the threshold (reltuples is -1 for
# a table never analysed or vacuumed: counted as empty).
_DUE = sa.text(
    "SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid"
    " WHERE s.n_mod_since_analyze > :threshold + :scale * greatest(c.reltuples, 0)"
    " ORDER BY s.relname"
)


def analyze(url: str) -> None:
    """``ANALYZE`` the whole database at ``url`` (after a bulk load)."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("ANALYZE"))
    finally:
        engine.dispose()


class StatisticsKeeper:
    """A thread that, every ``interval`` seconds until stopped, analyses the tables of one
    database that autovacuum would analyse."""

    def __init__(self, url: str, interval: float = 2.0) -> None:
        self.url = url
        self.interval = interval
        self.analysed = 0  # tables analysed
        self.pid: int | None = None  # its backend's, once connected
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-analyze", daemon=True)

    def start(self) -> None:
        if self.interval > 0:
            self._thread.start()
            self._connected.wait(30)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(30)

    def _loop(self) -> None:
        engine = sa.create_engine(self.url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as connection:
                self.pid = connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
                self._connected.set()
                while not self._stop.wait(self.interval):
                    self.analysed += self._pass(connection)
        finally:
            self._connected.set()
            engine.dispose()

    @staticmethod
    def _pass(connection: sa.Connection) -> int:
        due = connection.execute(_DUE, {"threshold": ANALYZE_THRESHOLD, "scale": ANALYZE_SCALE_FACTOR})
        tables = list(due.scalars())
        for table in tables:
            connection.execute(sa.text(f'ANALYZE "{table}"'))
        return len(tables)


@contextmanager
def keep_statistics(url: str, interval: float = 2.0) -> Iterator[StatisticsKeeper | None]:
    """A :class:`StatisticsKeeper` for the block on PostgreSQL (SQLite has no autovacuum to
    stand in for: nothing)."""
    if not url.startswith("postgresql"):
        yield None
        return
    keeper = StatisticsKeeper(url, interval)
    keeper.start()
    try:
        yield keeper
    finally:
        keeper.stop()
