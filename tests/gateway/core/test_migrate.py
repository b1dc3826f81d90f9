"""Alembic migrations on SQLite and PostgreSQL: upgrade, idempotence, and no drift from the models."""

from __future__ import annotations

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
