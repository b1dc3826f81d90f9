"""Cost of identifying and verifying an ACS-signed request as resources sharing one host grow.

Side by side in one run, for N resources on SQLite (and PostgreSQL when reachable):
  naive   load every resource's keys from the database, then try each (what a stateless
          verifier does);
  index   gateway.resources.keys.ResourceKeyIndex (in-memory keys, hot tenants first, one
          primary-key read to confirm).
The signer is the resource created last (the naive scan's worst case) or, for "index, cold",
a different resource each request.

    .venv/bin/python -m bench.auth [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import base64
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import psycopg
from sqlalchemy import select

from bench import use_secrets_key
from gateway.core import hmac_auth
from gateway.core.db import Database
from gateway.core.migrate import upgrade
from gateway.resources.keys import ResourceKeyIndex
from gateway.resources.models import Resource
from gateway.resources.service import create_resource

HOST = "gateway.example.net"
BODY = b'{"createTokenWithScopes":["voip"]}'
PATH = "/identities?api-version=2023-10-01"


def signed_request(key_b64: str) -> hmac_auth.SignedRequest:
    now = datetime.now(UTC)
    headers = hmac_auth.sign_request("POST", PATH, HOST, BODY, key_b64, now)
    headers = {k.lower(): v for k, v in headers.items()} | {"host": HOST}
    path, _, query = PATH.partition("?")
    return hmac_auth.prepare("POST", path, query, headers, BODY, now, timedelta(minutes=15))


def naive_resolve(database: Database, signed: hmac_auth.SignedRequest) -> str | None:
    with database.read_session() as session:
        rows = session.execute(select(Resource.id, Resource.primary_key, Resource.secondary_key)).all()
    for row in rows:
        for key in (row.primary_key, row.secondary_key):
            if signed.matches(base64.b64decode(key)):
                return row.id
    return None


def timed(fn, repeat: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        assert fn() is not None
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def run(label: str, url: str, sizes: list[int]) -> None:
    database = Database(url)
    upgrade(database.engine)
    created = 0
    keys: list[str] = []
    print(f"\n{label}: ms per request (p50 / p99)")
    print(f"{'resources':>10} {'naive':>16} {'index, hot':>16} {'index, cold':>16}")
    for size in sizes:
        with database.session() as session:
            for _ in range(size - created):
                resource = create_resource(session, f"r-{uuid.uuid4().hex[:20]}", f"https://{HOST}/")
                keys.append(resource.primary_key)
        created = size
        last = signed_request(keys[-1])
        index = ResourceKeyIndex()
        repeat = 200 if size <= 1000 else 40
        step = max(1, len(keys) // repeat)
        cold_requests = iter([signed_request(keys[i]) for i in range(0, len(keys), step)] * 2)

        def resolve(index: ResourceKeyIndex, signed: hmac_auth.SignedRequest) -> str | None:
            with database.read_session() as session:
                return index.resolve(session, signed, HOST)

        def resolve_next(index: ResourceKeyIndex, requests: Iterator[hmac_auth.SignedRequest]) -> str | None:
            return resolve(index, next(requests))

        naive = timed(partial(naive_resolve, database, last), repeat)
        hot_t = timed(partial(resolve, index, last), repeat)
        cold_t = timed(partial(resolve_next, index, cold_requests), min(repeat, len(keys)))
        print(
            f"{size:>10} {naive[0]:>7.2f} / {naive[1]:>6.2f} {hot_t[0]:>7.2f} / {hot_t[1]:>6.2f} "
            f"{cold_t[0]:>7.2f} / {cold_t[1]:>6.2f}   naive/index-hot = {naive[0] / hot_t[0]:.0f}x"
        )
    database.dispose()


def main() -> None:
    use_secrets_key()
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--sizes", default="1,100,1000,10000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        run("SQLite", f"sqlite:///{Path(tmp) / 'bench.db'}", sizes)
    admin = args.postgres.replace("+psycopg", "")
    name = f"trunkline_bench_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        print(f"\nPostgreSQL skipped: {exc}")
        return
    try:
        run("PostgreSQL", args.postgres.rsplit("/", 1)[0] + f"/{name}", sizes)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
