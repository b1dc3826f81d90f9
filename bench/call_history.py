"""What the calls domain's periodic and per-event statements cost as the calls table grows.

A gateway keeps every call it made (20 calls a second is 1.7 M a day); a handful are live. The
sweeper (``trunkline worker``, every second) and the SIP controller's timers (several times a
second) look for live calls; a leg event reads its call and legs. For each ``--rows`` size a
fresh PostgreSQL database is migrated and loaded (tests/support/call_rows.py: one call in
``--live-every`` live), then each statement group is run ``--repeat`` times, first on tables
never analysed (autovacuum off, as on the 2-core machines), then after ``ANALYZE``; the table
gives the median milliseconds per run (this process and PostgreSQL on the same machine).

    .venv/bin/python -m bench.call_history [--rows 10000 100000 1000000] [--repeat 15]
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
from sqlalchemy import update

from bench.pgstats import analyze
from gateway.calls import repository
from gateway.calls.lifecycle import CallState
from gateway.calls.models import SipProcess
from gateway.calls.sweeper import CallSweeper, SweepBounds
from gateway.core.db import Database, utcnow
from gateway.core.migrate import upgrade
from tests.support.call_rows import load_calls
from tests.support.postgres import throwaway_database
from tests.support.secrets_keys import TEST_SECRETS_KEYS

PROCESS = "sip-history"


def _median_ms(run: Callable[[], object], repeat: int) -> float:
    run()  # the first run may end what the load left due; the rest are the steady state
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _groups(database: Database, rows: int) -> dict[str, Callable[[], object]]:
    bounds = SweepBounds(
        place_timeout=timedelta(seconds=30),
        process_lost=timedelta(seconds=10),
        command_timeout=timedelta(seconds=30),
    )
    sweeper = CallSweeper(database, lambda process, command: None, bounds)
    middle = rows // 2 + 5

    def sweep() -> object:
        with database.session() as session:  # the SIP process is alive: nothing is lost
            session.execute(update(SipProcess).where(SipProcess.id == PROCESS).values(heartbeat_at=utcnow()))
        return sweeper.run_once()

    def timers() -> object:
        with database.read_session() as session:
            repository.rings_due(session, PROCESS, utcnow(), CallState.OFFERED.value)
            return repository.invitations_due(session, PROCESS, utcnow())

    def leg_event() -> object:
        with database.read_session() as session:
            call = repository.lock_call_of_leg(session, f"leg-{middle}")
            return repository.legs_of(session, call.id if call else "")

    return {
        "sweeper run (every second)": sweep,
        "controller timers: rings due + invitations due (every tick)": timers,
        "leg event: call by leg (locked) + its legs": leg_event,
    }


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--live-every", type=int, default=2000)
    args = parser.parse_args()
    os.environ.setdefault("TRUNKLINE_SECRETS_KEYS", TEST_SECRETS_KEYS)
    console = Console()
    table = Table(title="median ms per run (this process + PostgreSQL)")
    table.add_column("statements")
    table.add_column("calls stored", justify="right")
    table.add_column("never analysed", justify="right")
    table.add_column("analysed", justify="right")
    for rows in args.rows:
        with throwaway_database("trunkline_bench_history") as url:
            database = Database(url)
            try:
                upgrade(database.engine)
                started = time.perf_counter()
                load_calls(database, rows, PROCESS, args.live_every)
                console.print(f"{rows:,} calls loaded in {time.perf_counter() - started:.1f} s")
                groups = _groups(database, rows)
                never = {name: _median_ms(run, args.repeat) for name, run in groups.items()}
                analyze(url)
                analysed = {name: _median_ms(run, args.repeat) for name, run in groups.items()}
            finally:
                database.dispose()
        for name in groups:
            table.add_row(name, f"{rows:,}", f"{never[name]:.2f}", f"{analysed[name]:.2f}")
    console.print(table)


if __name__ == "__main__":
    main()
