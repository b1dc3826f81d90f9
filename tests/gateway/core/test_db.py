"""gateway.core.db: pooled PostgreSQL connections are pinged only after sitting idle."""

from __future__ import annotations

import pytest
from sqlalchemy import literal_column, select, text
from sqlalchemy.exc import DBAPIError

from gateway.core import db
from gateway.core.db import Database, text_literal


def _backend_pid(database: Database) -> int:
    with database.session() as session:
        return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(database: Database, pid: int) -> None:
    with database.session() as session:
        assert session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()


def test_an_idle_connection_closed_by_the_server_is_replaced(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)
    database = Database(postgres_url, pool_size=1, max_overflow=0)
    killer = Database(postgres_url, pool_size=1, max_overflow=0)
    try:
        first = _backend_pid(database)
        _terminate(killer, first)
        # the one pooled connection is dead; the checkout's ping finds out and opens another
        assert _backend_pid(database) != first
    finally:
        database.dispose()
        killer.dispose()


def test_a_recently_used_connection_is_not_pinged(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 3600.0)
    database = Database(postgres_url, pool_size=1, max_overflow=0)
    killer = Database(postgres_url, pool_size=1, max_overflow=0)
    try:
        _terminate(killer, _backend_pid(database))
        # no ping within the idle time: the dead connection is handed out and the statement fails
        # (SQLAlchemy invalidates it; the next checkout connects again)
        with pytest.raises(DBAPIError):
            _backend_pid(database)
        assert _backend_pid(database) > 0
    finally:
        database.dispose()
        killer.dispose()


def test_a_text_literal_is_written_into_the_sql_and_refuses_quotes() -> None:
    statement = select(literal_column("1")).where(text_literal("pending") == literal_column("'pending'"))
    assert "'pending' = 'pending'" in str(statement.compile(compile_kwargs={"literal_binds": False}))
    for unsafe in ("it's", "back\\slash"):
        with pytest.raises(ValueError):
            text_literal(unsafe)
