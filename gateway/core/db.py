"""SQLAlchemy engine, sessions and the declarative base shared by every domain's models."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    DateTime,
    Dialect,
    Engine,
    MetaData,
    String,
    any_,
    bindparam,
    create_engine,
    event,
    literal_column,
    text,
    true,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection
from sqlalchemy.types import TypeDecorator

# Stable constraint names let Alembic alter tables on SQLite (batch mode) and PostgreSQL alike.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def one_of(column: ColumnElement[Any], name: str, *, postgres: bool) -> ColumnElement[bool]:
    """``column`` is one of the strings of the list parameter ``name``: one array parameter on
    PostgreSQL (``= ANY``), an expanding IN elsewhere. An expanding IN is rendered again, with a
    cast per element, at every execution: a few percent of a hot path's CPU. Check the plan
    (tests/gateway/sms/test_plans.py does for its users): the planner may pick another index
    for ``= ANY`` than for an IN list. POST /sms's per-request lookups once cost PostgreSQL
    +0.5 ms a request with ``= ANY`` (not explained then); its batch lookups use it now, with no
    difference measured in bench.sms part c."""
    if postgres:
        return column == any_(bindparam(name, type_=ARRAY(String)))
    return column.in_(bindparam(name, expanding=True))


def utcnow() -> datetime:
    return datetime.now(UTC)


def autovacuum_enabled(session: Session) -> bool | None:
    """Whether PostgreSQL's autovacuum is on (None on SQLite, which has none). Off, the tables
    are never analysed: a statement prepared while its table was small keeps that plan as the
    table grows (docs/sms.md, "Operator: statistics")."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    return bool(session.execute(text("SHOW autovacuum")).scalar_one() == "on")


def unindexed(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """``condition`` in a form no index serves: ``(condition) IS TRUE``, the same rows for a
    column that is never NULL. For a claim that must find its rows by the keys it is given: with
    the plain condition a planner may go in through an index on it (a queue's due index) and
    read every row it holds, a cost that grows with the backlog (tests/support/plans.py's
    check). ``gateway.core.bulk`` writes the same form into its own SQL."""
    return condition.is_(true())


def text_literal(value: str) -> ColumnElement[str]:
    """``value`` written into the SQL as a string literal, not bound. For a state a statement
    looks for: psycopg prepares a statement on its fifth run and PostgreSQL may then keep a
    generic plan, which, not seeing a bound value, plans for the average state (a scan of a table
    where the few queued or pending rows are an index's) and cannot use a partial index whose
    condition names the state (tests/support/plans.py)."""
    if "'" in value or "\\" in value:
        raise ValueError(f"not a plain literal: {value!r}")
    return literal_column(f"'{value}'", String)


def new_uuid() -> str:
    return str(uuid.uuid4())


def make_engine(url: str, **kwargs: Any) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            from pathlib import Path

            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    engine = create_engine(url, **kwargs)
    event.listen(engine, "checkin", _note_checkin)
    event.listen(engine, "checkout", partial(_ping_if_idle, engine.dialect))
    return engine


# A connection back in the pool within this many seconds is handed out without a ping. SQLAlchemy's
# pool_pre_ping pings on every checkout: a round trip per transaction, which was an eighth of the
# SMPP process's samples and two round trips per signed request in the API. A connection that
# sat idle longer (where a server restart or an idle timeout may have closed it) is still pinged.
PING_AFTER_IDLE_SECONDS = 2.0
_CHECKED_IN_AT = "trunkline_checked_in_at"


def _note_checkin(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    record.info[_CHECKED_IN_AT] = time.monotonic()


def _ping_if_idle(
    dialect: Dialect, dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
) -> None:
    checked_in_at = record.info.get(_CHECKED_IN_AT)
    if checked_in_at is None or time.monotonic() - checked_in_at < PING_AFTER_IDLE_SECONDS:
        return  # just opened, or back from work moments ago
    try:
        alive = dialect.do_ping(dbapi_connection)
    except Exception as exc:  # any failure means: not this connection
        alive = False
        reason = str(exc)
    else:
        reason = "ping failed"
    if not alive:
        # The pool discards this connection and checks out (or opens) another one.
        raise DisconnectionError(f"stale pooled connection: {reason}")


def _sqlite_on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # Let SQLAlchemy issue BEGIN itself (see _sqlite_on_begin): pysqlite's own transaction
    # handling defers BEGIN and breaks SAVEPOINT and write-lock ordering.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


READ_ONLY_OPTION = "trunkline_read_only"


def _sqlite_on_begin(connection: Any) -> None:
    # Writers take the write lock up front (IMMEDIATE), so two of them queue on busy_timeout
    # instead of one failing with "database is locked" when it upgrades a read lock. Read-only
    # sessions begin DEFERRED and run beside writers under WAL.
    read_only = connection.get_execution_options().get(READ_ONLY_OPTION, False)
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


class Database:
    """One engine and session factory per process (per URL)."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        self.read_sessionmaker = sessionmaker(
            self.engine.execution_options(**{READ_ONLY_OPTION: True}), expire_on_commit=False
        )

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on any error."""
        with self.sessionmaker() as session, session.begin():
            yield session

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A session for reads only; on SQLite it does not take the write lock."""
        with self.read_sessionmaker() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


def stored_length(attribute: Any) -> int:
    """The length of the String column an ORM attribute (``SmsMessage.tag``) is stored in: the
    ``max_length`` of a request field whose value goes there, so that an over-long value is a
    400, not a PostgreSQL error (SQLite would store it)."""
    length = attribute.property.columns[0].type.length
    if not isinstance(length, int):
        raise TypeError(f"{attribute} is not stored in a column of bounded length")
    return length
