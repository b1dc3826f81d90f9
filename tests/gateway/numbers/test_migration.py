"""Migration 0002_numbers: matches the models and goes down and up again, on both databases."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import gateway.models  # noqa: F401
from gateway.core.db import Base, Database
from gateway.core.migrate import alembic_config, current_revision, head_revision


def test_migration_matches_models_and_downgrades(database: Database) -> None:
    assert current_revision(database.engine) == head_revision()
    with database.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    config = alembic_config(database.engine.url.render_as_string(hide_password=False))
    for revision, step in (("0001", command.downgrade), ("head", command.upgrade)):
        with database.engine.begin() as connection:
            config.attributes["connection"] = connection
            step(config, revision)
    assert current_revision(database.engine) == head_revision()
