"""Revision 0002_events: applies, reverts and re-applies on both backends and matches the models."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import gateway.models  # noqa: F401 - every table on Base.metadata
from gateway.core.db import Base, make_engine
from gateway.core.migrate import alembic_config, current_revision, head_revision, upgrade
from tests.support.postgres import Postgres

EVENT_TABLES = {"event_subscriptions", "event_outbox", "event_deliveries", "event_delivery_attempts"}


def _round_trip(url: str) -> None:
    engine = make_engine(url, poolclass=sa.pool.NullPool)
    try:
        upgrade(engine)
        assert current_revision(engine) == head_revision()
        assert set(sa.inspect(engine).get_table_names()) >= EVENT_TABLES
        with engine.connect() as connection:
            diffs = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert diffs == []
        config = alembic_config(url)
        command.downgrade(config, "0001")
        assert not EVENT_TABLES & set(sa.inspect(engine).get_table_names())
        upgrade(engine)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_sqlite(tmp_path: Path) -> None:
    _round_trip(f"sqlite:///{tmp_path / 'm.db'}")


@pytest.mark.postgres
def test_postgres(postgres: Postgres) -> None:
    name = postgres.new_database()  # a copy of the migrated template; start from nothing instead
    engine = make_engine(name, poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP SCHEMA public CASCADE"))
        connection.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()
    _round_trip(name)
