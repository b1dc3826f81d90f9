from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.core.db import Database
from gateway.core.migrate import upgrade
from gateway.core.settings import Settings
from gateway.events.runtime import Runtime
from gateway.resources.service import create_resource

from .harness import make_tls
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
