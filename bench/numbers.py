"""Benchmark of the numbers domain on PostgreSQL.

    python -m bench.numbers [--rows 1000000] [--searches 300] [--buyers 20] [--seconds 15]
                            [--admin-url postgresql+psycopg://postgres@127.0.0.1:5432/test]

Creates a throw-away database, imports ROWS valid US numbers from a generated CSV through the
importer (rows/s), measures search latency (the whole search operation: the request's
transaction, then the hold with SELECT ... FOR UPDATE SKIP LOCKED) for typical filters
(p50/p99), then purchase throughput with BUYERS concurrent buyer processes, each looping
search -> purchase. Drops the database at the end (unless --keep).
"""

# ruff: noqa: E402 - the sys.path fix below must run before the imports
from __future__ import annotations

import sys
from pathlib import Path

# Run as ``python bench/numbers.py``, this file's folder comes first on sys.path, where its name
# would shadow the standard library's ``numbers`` module (imported by decimal, statistics, ...).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import json
import multiprocessing
import secrets
import statistics
import tempfile
import time
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bench import use_secrets_key
from gateway.core.db import Database, utcnow
from gateway.core.migrate import upgrade
from gateway.core.settings import Settings
from gateway.numbers import browse, importer, inventory, operations, purchases, searches
from gateway.numbers.rules import NumberFilter
from gateway.numbers.sample import US_AREAS, sample_rows, to_csv, toll_free_rows
from gateway.resources import service as resources

FILTERS: dict[str, dict[str, Any]] = {
    "geographic, area code, calling+sms": {
        "phone_number_type": "geographic",
        "area_code": "425",
        "calling": "inbound+outbound",
        "sms": "inbound+outbound",
    },
    "geographic, area code, calling only": {
        "phone_number_type": "geographic",
        "area_code": "212",
        "calling": "inbound",
        "sms": "none",
    },
    "geographic, any area code": {
        "phone_number_type": "geographic",
        "area_code": None,
        "calling": "outbound",
        "sms": "none",
    },
    "toll-free": {"phone_number_type": "tollFree", "area_code": None, "calling": "inbound", "sms": "inbound"},
}

BROWSE: dict[str, NumberFilter] = {
    "geographic, prefix 1425": NumberFilter("US", "geographic", prefixes=("1425",)),
    "geographic, any": NumberFilter("US", "geographic", calling="outbound"),
    "toll-free, any": NumberFilter("US", "tollFree"),
}


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, round(q * (len(ordered) - 1)))
    return ordered[index]


def search_once(
    database: Database, settings: Settings, resource_id: str, spec: dict[str, Any]
) -> tuple[float, str | None]:
    started = time.perf_counter()
    request = searches.SearchRequest(
        spec["phone_number_type"], "application", spec["calling"], spec["sms"], spec["area_code"], 1
    )
    with database.session() as session:
        search, operation = searches.start_search(session, resource_id, "US", request, settings)
        search_id, operation_id = search.id, operation.id
    operations.execute(database, settings, operation_id)
    elapsed = time.perf_counter() - started
    return elapsed, search_id


def buyer(url: str, resource_id: str, seconds: float, barrier: Any, results: Any) -> None:
    database = Database(url, pool_size=2, max_overflow=0)
    settings = Settings()
    barrier.wait(timeout=120)
    deadline = time.monotonic() + seconds
    bought = failed = 0
    spec = FILTERS["geographic, area code, calling+sms"]
    while time.monotonic() < deadline:
        _, search_id = search_once(database, settings, resource_id, spec)
        with database.session() as session:
            try:
                purchase = purchases.start_purchase(session, resource_id, search_id, False, utcnow())
            except Exception:
                failed += 1
                continue
            purchase_id = purchase.id
        operations.execute(database, settings, purchase_id)
        bought += 1
    results.put((bought, failed))
    database.dispose()


def main() -> None:
    use_secrets_key()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--searches", type=int, default=300, help="searches per filter")
    parser.add_argument("--buyers", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=15.0, help="purchase phase duration")
    parser.add_argument("--admin-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()

    name = f"trunkline_bench_{secrets.token_hex(4)}"
    with psycopg.connect(libpq(args.admin_url), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_url(args.admin_url).set(database=name).render_as_string(hide_password=False)
    results: dict[str, Any] = {"rows": args.rows}
    try:
        database = Database(url, pool_size=5)
        upgrade(database.engine)
        with database.session() as session:
            inventory.create_carrier(session, "bench", "both")

        toll_free = args.rows // 20
        per_area = (args.rows - toll_free) // len(US_AREAS)
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "inventory.csv"
            with path.open("w") as handle:
                handle.write(to_csv(list(sample_rows(per_area, US_AREAS))))
                handle.write(
                    to_csv(list(toll_free_rows(args.rows - per_area * len(US_AREAS)))).split("\n", 1)[1]
                )
            print(f"generated {args.rows} rows in {time.perf_counter() - started:.1f}s", flush=True)
            report = importer.import_file(database, path, "bench")
        assert report.accepted, report.as_json()["errors"][:5]
        results["import"] = {
            "rows": report.rows,
            "seconds": round(report.seconds, 1),
            "rows_per_second": round(report.rows_per_second),
        }
        print(
            f"import: {report.rows} rows in {report.seconds:.1f}s = {report.rows_per_second:,.0f} rows/s",
            flush=True,
        )
        # What an operator does after a bulk load (autovacuum would do it a little later, in the
        # middle of the measurements).
        with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM (ANALYZE) inventory_numbers"))

        settings = Settings()
        with database.session() as session:
            searcher = resources.create_resource(session, "bench-searcher", "https://bench.test/").id
        results["search_ms"] = {}
        for label, spec in FILTERS.items():
            for _ in range(10):  # warm-up
                search_once(database, settings, searcher, spec)
            timings = [
                search_once(database, settings, searcher, spec)[0] * 1000 for _ in range(args.searches)
            ]
            summary = {
                "p50": round(statistics.median(timings), 2),
                "p99": round(percentile(timings, 0.99), 2),
                "max": round(max(timings), 2),
                "n": len(timings),
            }
            results["search_ms"][label] = summary
            print(f"search [{label}]: p50 {summary['p50']} ms, p99 {summary['p99']} ms", flush=True)

        results["browse_ms"] = {}
        for label, browse_filter in BROWSE.items():
            timings = []
            for _ in range(args.searches):
                started = time.perf_counter()
                with database.session() as session:
                    found = browse.browse(session, "US", browse_filter, settings, utcnow())
                timings.append((time.perf_counter() - started) * 1000)
                assert found
            summary = {
                "p50": round(statistics.median(timings), 2),
                "p99": round(percentile(timings, 0.99), 2),
            }
            results["browse_ms"][label] = summary
            print(f"browse [{label}]: p50 {summary['p50']} ms, p99 {summary['p99']} ms", flush=True)

        with database.session() as session:
            buyers = [
                resources.create_resource(session, f"bench-buyer-{i}", "https://bench.test/").id
                for i in range(args.buyers)
            ]
        database.dispose()
        context = multiprocessing.get_context("fork")
        barrier = context.Barrier(args.buyers)
        queue = context.Queue()
        processes = [
            context.Process(target=buyer, args=(url, rid, args.seconds, barrier, queue)) for rid in buyers
        ]
        for process in processes:
            process.start()
        outcomes = [queue.get(timeout=args.seconds + 180) for _ in processes]
        for process in processes:
            process.join(timeout=60)
        bought = sum(b for b, _ in outcomes)
        with Database(url).session() as session:
            duplicates = session.execute(
                text("SELECT count(*) - count(DISTINCT phone_number) FROM purchased_numbers")
            ).scalar()
        results["purchase"] = {
            "buyers": args.buyers,
            "seconds": args.seconds,
            "purchased": bought,
            "per_second": round(bought / args.seconds, 1),
            "failed_starts": sum(f for _, f in outcomes),
            "duplicates": duplicates,
        }
        print(
            f"purchase: {bought} numbers by {args.buyers} buyers in {args.seconds}s "
            f"= {bought / args.seconds:.1f}/s",
            flush=True,
        )
        print(json.dumps(results, indent=2))
    finally:
        if not args.keep:
            with psycopg.connect(libpq(args.admin_url), autocommit=True) as admin:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


if __name__ == "__main__":
    main()
