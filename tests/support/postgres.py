"""Throw-away PostgreSQL databases on the real server (127.0.0.1:5432 unless overridden)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

import gateway.models  # noqa: F401 - every table on Base.metadata
from gateway.core.db import Base, Database

DEFAULT_POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
POSTGRES_URL_ENV = "TRUNKLINE_TEST_POSTGRES_URL"


class PostgresUnavailable(RuntimeError):
    pass


def admin_url() -> str:
    return os.environ.get(POSTGRES_URL_ENV, DEFAULT_POSTGRES_ADMIN_URL)


def _libpq_url(sqlalchemy_url: str) -> str:
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def throwaway_database(prefix: str) -> Iterator[str]:
    """A new, empty database ``<prefix>_<hex>`` (SQLAlchemy URL), dropped WITH (FORCE) afterwards."""
    admin = admin_url()
    name = f"{prefix}_{secrets.token_hex(6)}"
    try:
        connection = psycopg.connect(_libpq_url(admin), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL at {admin} ({POSTGRES_URL_ENV}) is unreachable: {exc}"
        raise PostgresUnavailable(message) from exc
    with connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    finally:
        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        with psycopg.connect(_libpq_url(admin), autocommit=True, connect_timeout=5) as connection:
            connection.execute(drop)


def empty_all_tables(database: Database) -> None:
    """Delete every row, children first: a per-run database reused by the next test."""
    with database.engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())
