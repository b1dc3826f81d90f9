"""The outbox's commit notification on PostgreSQL: NOTIFY from a publishing transaction, LISTEN
in the dispatcher. PostgreSQL delivers a notification only when its transaction commits, and
folds identical ones of one transaction into one, so a woken dispatcher always finds the rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    import psycopg
    from sqlalchemy.orm import Session

OUTBOX_CHANNEL = "trunkline_outbox"


def notify_on_commit(session: Session) -> None:
    """Wake the listening dispatchers when ``session``'s transaction commits (PostgreSQL only)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": OUTBOX_CHANNEL})


def listens(database_url: str) -> bool:
    """Whether the database can wake a dispatcher (SQLite cannot: its dispatcher polls)."""
    return make_url(database_url).get_backend_name() == "postgresql"


def listening_connection(database_url: str) -> psycopg.Connection[tuple[object, ...]]:
    """A connection of its own (autocommit), listening on the outbox channel."""
    import psycopg

    conninfo = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = psycopg.connect(conninfo, autocommit=True)
    connection.execute(f"LISTEN {OUTBOX_CHANNEL}")
    return connection
