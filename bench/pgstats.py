"""Keeping PostgreSQL's statistics current during a benchmark, as autovacuum does in production.

Autovacuum may be off on a development machine (it is on the 2-core machine of issue 15): its
tables are then never analysed, the planner guesses from empty-table defaults and the cost per
row grows with the table. A benchmark must not measure that, nor switch autovacuum on for a
server others share (``ALTER SYSTEM`` would), so it runs ``ANALYZE`` on its own database: once
after each bulk load, and every ``interval`` seconds while it runs (autovacuum's analyze
threshold, 10% of a table's rows changed, is crossed every few seconds at benchmark rates).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa


def analyze(url: str) -> None:
    """``ANALYZE`` the whole database at ``url`` (after a bulk load)."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("ANALYZE"))
    finally:
        engine.dispose()


class StatisticsKeeper:
    """A thread that runs ``ANALYZE`` on one database every ``interval`` seconds until stopped."""

    def __init__(self, url: str, interval: float = 2.0) -> None:
        self.url = url
        self.interval = interval
        self.runs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-analyze", daemon=True)

    def start(self) -> None:
        if self.interval > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(30)

    def _loop(self) -> None:
        engine = sa.create_engine(self.url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        try:
            while not self._stop.wait(self.interval):
                with engine.connect() as connection:
                    connection.execute(sa.text("ANALYZE"))
                self.runs += 1
        finally:
            engine.dispose()


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
