"""Alembic migrations on SQLite and PostgreSQL: upgrade, idempotence, and no drift from the models."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

import gateway.models  # noqa: F401 - registers every table on Base.metadata
from gateway.core.db import Base, Database
from gateway.core.migrate import alembic_config, current_revision, head_revision, upgrade


def _downgrade_to_base(engine: Engine) -> None:
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")


def _schema_diff(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def test_upgrade_from_empty_is_idempotent_and_matches_models(database_url: str, db_backend: str) -> None:
    database = Database(database_url)
    try:
        engine = database.engine
        # The fixture's database is already migrated; take it back to nothing first.
        _downgrade_to_base(engine)
        assert _tables(engine) == set()
        assert current_revision(engine) is None

        upgrade(engine)
        assert current_revision(engine) == head_revision()
        assert _tables(engine) == set(Base.metadata.tables)
        assert _schema_diff(engine) == []

        upgrade(engine)  # nothing left to do, and nothing breaks
        assert current_revision(engine) == head_revision()
        assert _schema_diff(engine) == []
        assert engine.dialect.name == db_backend
    finally:
        upgrade(database.engine)  # leave the shared PostgreSQL database migrated
        database.dispose()


def test_diff_would_be_noticed(database_url: str) -> None:
    """The drift check is live: a column missing from the database shows up in the diff."""
    database = Database(database_url)
    try:
        with database.engine.begin() as connection:
            connection.exec_driver_sql("ALTER TABLE identities DROP COLUMN tokens_revoked_at")
        diff = _schema_diff(database.engine)
        assert any(entry[0] == "add_column" and entry[3].name == "tokens_revoked_at" for entry in diff), diff
    finally:
        with database.engine.begin() as connection:
            connection.exec_driver_sql("ALTER TABLE identities ADD COLUMN tokens_revoked_at TIMESTAMP")
        if database.engine.dialect.name == "postgresql":
            with database.engine.begin() as connection:
                connection.exec_driver_sql(
                    "ALTER TABLE identities ALTER COLUMN tokens_revoked_at TYPE TIMESTAMP WITH TIME ZONE"
                )
        database.dispose()


def test_fresh_sqlite_file(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'nested' / 'dir' / 'fresh.db'}")
    try:
        upgrade(database.engine)
        assert (tmp_path / "nested" / "dir" / "fresh.db").is_file()
        assert _schema_diff(database.engine) == []
    finally:
        database.dispose()


def test_the_chain_has_one_head() -> None:
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    assert heads == [head_revision()]


def _insert_minimal_row(connection: Any, table: Any, values: dict[str, Any]) -> None:
    """A row of ``table`` with ``values`` and a plain value for every other required column."""
    from sqlalchemy import Boolean, DateTime, Float, Integer, Numeric

    row = dict(values)
    for column in table.columns:
        if column.name in row or column.nullable or column.server_default is not None:
            continue
        if isinstance(column.type, Boolean):
            row[column.name] = False
        elif isinstance(column.type, Integer | Float | Numeric):
            row[column.name] = 1
        elif isinstance(column.type, DateTime):
            row[column.name] = datetime(2026, 1, 1, tzinfo=UTC)
        else:
            row[column.name] = "x"
    connection.execute(table.insert().values(row))


def test_sqlite_table_rebuilds_keep_the_rows_that_reference_them(tmp_path: Path) -> None:
    """0006 rebuilds sms_messages on SQLite (batch_alter_table); with foreign keys on, dropping
    the old table would cascade-delete every sms_segments row of an upgraded database."""
    from sqlalchemy import MetaData, func, select

    database = Database(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        upgrade(database.engine, "0005_sms_send_counters")
        tables = MetaData()
        tables.reflect(database.engine)
        with database.engine.begin() as connection:
            _insert_minimal_row(connection, tables.tables["resources"], {"id": "r1", "name": "old"})
            _insert_minimal_row(connection, tables.tables["sms_messages"], {"id": "m1", "resource_id": "r1"})
            _insert_minimal_row(connection, tables.tables["sms_segments"], {"message_id": "m1"})
        upgrade(database.engine)
        with database.engine.connect() as connection:
            segments = connection.execute(select(func.count()).select_from(tables.tables["sms_segments"]))
            assert segments.scalar_one() == 1
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
    finally:
        database.dispose()
