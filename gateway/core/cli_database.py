"""The database as a one-shot ``trunkline`` command uses it.

Every command that reads or writes the store opens it the same way: migrated to the schema's
head first (a command may be the first thing run after an upgrade), one transaction, an ACS
refusal printed as ``error: <message>`` with the command's exit code, the engine disposed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from gateway.core.cli_output import fail
from gateway.core.errors import AcsError
from gateway.core.settings import get_settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from gateway.core.db import Database


def migrated_database(url: str | None = None) -> Database:
    """The database at ``url`` (the settings' by default), its schema at head."""
    # Imported here: a command that never opens the store (--help, status) skips SQLAlchemy
    # and Alembic at start-up.
    from gateway.core.db import Database
    from gateway.core.migrate import upgrade

    database = Database(url or get_settings().effective_database_url)
    upgrade(database.engine)
    return database


@contextmanager
def command_session(url: str | None = None, *, error_code: int = 1) -> Iterator[Session]:
    """One transaction on the migrated database; an ``AcsError`` inside exits with ``error_code``."""
    database = migrated_database(url)
    try:
        with database.session() as session:
            yield session
    except AcsError as exc:
        raise fail(exc.message, error_code) from exc
    finally:
        database.dispose()
