"""Throw-away PostgreSQL databases on the real server (127.0.0.1:5432 unless overridden).

The one PostgreSQL harness of the tests: ``throwaway_database`` for one empty database (the
shared ``postgres_url`` of tests/conftest.py, the e2e servers, benchmarks), ``Postgres`` for a
database per test copied from a migrated template (tests whose worker processes share one), and
``empty_all_tables`` for reusing a database between tests.
"""

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


def _admin_connection(admin: str) -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(_libpq_url(admin), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL at {admin} ({POSTGRES_URL_ENV}) is unreachable: {exc}"
        raise PostgresUnavailable(message) from exc


def _create_database(admin: str, name: str, template: str | None = None) -> str:
    """CREATE DATABASE ``name`` (a copy of ``template`` if given); its SQLAlchemy URL."""
    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    with _admin_connection(admin) as connection:
        connection.execute(statement)
    return make_url(admin).set(database=name).render_as_string(hide_password=False)


def _drop_database(admin: str, name: str) -> None:
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with _admin_connection(admin) as connection:
        connection.execute(drop)


@contextmanager
def throwaway_database(prefix: str) -> Iterator[str]:
    """A new, empty database ``<prefix>_<hex>`` (SQLAlchemy URL), dropped WITH (FORCE) afterwards."""
    admin = admin_url()
    name = f"{prefix}_{secrets.token_hex(6)}"
    url = _create_database(admin, name)
    try:
        yield url
    finally:
        _drop_database(admin, name)


class Postgres:
    """A migrated template database and throw-away copies of it (``CREATE DATABASE ... TEMPLATE``
    takes a fraction of a migration): one fresh, migrated database per test."""

    def __init__(self, prefix: str = "tl_test") -> None:
        from gateway.core.migrate import upgrade

        self.admin = admin_url()
        self.prefix = prefix
        self.created: list[str] = []
        self.template = f"{prefix}_tmpl_{secrets.token_hex(4)}"
        database = Database(self._create(self.template))
        try:
            upgrade(database.engine)
        finally:
            database.dispose()

    def _create(self, name: str, template: str | None = None) -> str:
        url = _create_database(self.admin, name, template)
        self.created.append(name)
        return url

    def new_database(self) -> str:
        """A new database migrated to the newest revision (SQLAlchemy URL)."""
        return self._create(f"{self.prefix}_{secrets.token_hex(5)}", self.template)

    def drop_all(self) -> None:
        failed = []
        for name in reversed(self.created):
            try:
                _drop_database(self.admin, name)
            except psycopg.Error as exc:
                failed.append(f"{name}: {exc}")
        self.created.clear()
        assert not failed, f"could not drop test databases: {failed}"


def empty_all_tables(database: Database) -> None:
    """Delete every row, children first: a per-run database reused by the next test."""
    with database.engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())
