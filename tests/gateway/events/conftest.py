from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from gateway.core.db import Database
from gateway.core.migrate import upgrade
from gateway.core.settings import Settings
from gateway.events.runtime import Runtime
from gateway.resources.service import create_resource
from tests.support.postgres import Postgres

from .harness import Stack, free_port, make_tls
from .inprocess import LOOPBACK

# The in-process tests (SQLite, one Runtime) ------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'events.db'}",
        webhook_allowed_networks=LOOPBACK,  # type: ignore[arg-type]
        webhook_ca_bundle=make_tls(tmp_path).ca_file,
        webhook_timeout_seconds=2,
        events_retry_base_seconds=0.01,
        events_retry_max_seconds=0.05,
        public_endpoint="https://gateway.test/",
    )


@pytest.fixture
def database(settings: Settings) -> Iterator[Database]:
    db = Database(settings.effective_database_url)
    upgrade(db.engine)
    yield db
    db.dispose()


@pytest.fixture
def rt(settings: Settings, database: Database) -> Iterator[Runtime]:
    runtime = Runtime.from_settings(settings, database)
    yield runtime
    runtime.client.close()


@pytest.fixture
def resource_id(database: Database) -> str:
    with database.session() as session:
        return create_resource(session, "app-one", "https://gateway.test/").id


# The pipeline tests (PostgreSQL, Redis, worker processes) ---------------------------------

# A DB number of its own per pytest-xdist worker (gw0 -> 5, gw1 -> 6): each flushes its own.
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
SHARED_REDIS = os.environ.get("TRUNKLINE_TEST_REDIS_URL", f"redis://127.0.0.1:6379/{5 + _WORKER}")


@pytest.fixture(scope="module")
def shared_stack(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One worker node on the shared Redis (a dedicated DB number, flushed first)."""
    client = redis.Redis.from_url(SHARED_REDIS)
    client.flushdb()
    tmp = tmp_path_factory.mktemp("stack")
    stack = Stack(postgres.new_database(), SHARED_REDIS, tmp, make_tls(tmp))
    stack.metrics_port = free_port()
    stack.start_worker(f"--metrics-port={stack.metrics_port}")
    try:
        yield stack
    finally:
        stack.stop_workers()
        client.flushdb()
        client.close()
