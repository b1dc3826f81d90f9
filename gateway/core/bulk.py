"""Bulk UPDATE by key, one statement for a whole batch, for hot paths that change hundreds of rows
per transaction (the SMPP process's writer).

Each row's own values travel as one array per column and are joined to the table by key
(PostgreSQL: ``UPDATE ... FROM unnest(arrays)``; SQLite: ``WITH u AS (VALUES ...) UPDATE ...
FROM u``); values every row shares are plain parameters. One statement per batch instead of one
per row: the server parses, plans and locks once, and the client adapts one parameter per column.

The plan must not rest on statistics, which are stale by nature on a queue table (a burst
arrives between two ANALYZEs): an earlier ``UPDATE ... FROM unnest`` was joined through the due
index and scanned every queued row for each batch. So the rows are found by key only: the key
is also bound as ``key = ANY(keys)`` (an index condition of the primary key whatever the
statistics say), and the extra conditions on other columns are written ``(column = value) IS
TRUE`` (the same rows, since NULL IS TRUE is false, but a form no index serves), which leaves the
primary key the only way in. tests/gateway/sms/test_plans.py and tests/gateway/core/test_bulk.py hold the
plans.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql.schema import ScalarElementColumnDefault

_PG = postgresql.dialect()  # type: ignore[no-untyped-call]  # for compiling column types only
_quote = _PG.identifier_preparer.quote  # the same quoting rules as SQLite's for plain names

# The fewest variables a SQLite build allows in one statement (SQLITE_MAX_VARIABLE_NUMBER before
# 3.32), when the connection cannot say.
_SQLITE_MIN_VARIABLES = 999


def update_rows(
    session: Session,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    key: str = "id",
    where: Mapping[str, Any] | None = None,
    constants: Mapping[str, Any] | None = None,
) -> set[Any]:
    """``UPDATE table SET <each row's columns> WHERE key = row[key] AND <where>`` for every row.

    Every row has the same columns: ``key`` (distinct from row to row) and the columns to set.
    ``where`` adds equality conditions on the stored row (a row that no longer matches is left
    alone); ``constants`` sets the same value on every row. Datetimes must be timezone-aware.

    Returns the keys of the rows updated.
    """
    if not rows:
        return set()
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        sql, params = postgres_update(table, rows, key=key, where=where, constants=constants)
        driver = connection.connection.driver_connection
        assert driver is not None
        # psycopg directly: SQLAlchemy's parameter processing would cost more than the statement
        with driver.cursor() as cursor:
            cursor.execute(sql, params)
            return {found for (found,) in cursor.fetchall()}
    updated: set[Any] = set()
    variables = _sqlite_variables(connection.connection.driver_connection)
    for sql, positional in sqlite_updates(
        table, rows, connection.dialect, variables, key=key, where=where, constants=constants
    ):
        updated.update(found for (found,) in connection.exec_driver_sql(sql, positional))
    return updated


def postgres_update(
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    key: str = "id",
    where: Mapping[str, Any] | None = None,
    constants: Mapping[str, Any] | None = None,
) -> tuple[str, list[Any]]:
    """The statement :func:`update_rows` runs on PostgreSQL, and its parameters."""
    where = where or {}
    constants = constants or {}
    columns = _columns(rows, key)
    keys = [row[key] for row in rows]
    # in the order of the text: SET's constants, unnest's arrays (key first), ANY's keys, WHERE's
    params: list[Any] = list(constants.values())
    if columns:
        params += [keys, *([row[name] for row in rows] for name in columns)]
    params += [keys, *where.values()]
    return postgres_update_sql(table, key, columns, tuple(where), tuple(constants)), params


def sqlite_updates(
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    dialect: Dialect,
    variables: int,
    *,
    key: str = "id",
    where: Mapping[str, Any] | None = None,
    constants: Mapping[str, Any] | None = None,
) -> list[tuple[str, tuple[Any, ...]]]:
    """The statements :func:`update_rows` runs on SQLite (one per ``variables`` parameters'
    worth of rows), and their parameters, converted by the columns' types as SQLAlchemy does."""
    where = where or {}
    constants = constants or {}
    columns = _columns(rows, key)
    convert = {name: _bind_processor(table, name, dialect) for name in (key, *columns, *where, *constants)}
    fixed = [convert[name](value) for name, value in constants.items()]
    conditions = [convert[name](value) for name, value in where.items()]
    page = max(1, (variables - len(fixed) - len(conditions)) // (1 + len(columns)))
    statements = []
    for start in range(0, len(rows), page):
        chunk = rows[start : start + page]
        own: list[Any] = []
        for row in chunk:
            own += [convert[name](row[name]) for name in (key, *columns)]
        # in the order of the text: VALUES then SET's constants, or SET's constants then IN's keys
        params = (*own, *fixed, *conditions) if columns else (*fixed, *own, *conditions)
        statements.append(
            (_sqlite_update_sql(table, key, columns, tuple(where), tuple(constants), len(chunk)), params)
        )
    return statements


def _columns(rows: Sequence[Mapping[str, Any]], key: str) -> tuple[str, ...]:
    keys = [row[key] for row in rows]
    if len(set(keys)) != len(keys):
        raise ValueError("update_rows: a key given twice")  # the join would take either row
    return tuple(name for name in rows[0] if name != key)


@functools.cache
def postgres_update_sql(
    table: Table, key: str, columns: tuple[str, ...], where: tuple[str, ...], constants: tuple[str, ...]
) -> str:
    """The statement :func:`update_rows` runs on PostgreSQL (its plan is checked by
    tests/gateway/sms/test_plans.py), with parameters in this order: the values of
    ``constants``; with ``columns``, an array of keys and one per column; the array of keys; the
    values of ``where``."""

    def sql_type(name: str) -> str:
        return str(table.c[name].type.compile(dialect=_PG))

    assignments = [f"{_quote(name)} = u.{_quote(name)}" for name in columns]
    assignments += [f"{_quote(name)} = %s" for name in constants]
    sql = f"UPDATE {_quote(table.name)} AS t SET {', '.join(assignments)}"  # noqa: S608 - names from the schema
    # Arrays in binary (%b): psycopg dumps them several times faster than as text.
    conditions = [f"t.{_quote(key)} = ANY(CAST(%b AS {sql_type(key)}[]))"]
    if columns:
        arrays = ", ".join(f"CAST(%b AS {sql_type(name)}[])" for name in (key, *columns))
        aliases = ", ".join(_quote(name) for name in (key, *columns))
        sql += f" FROM unnest({arrays}) AS u({aliases})"
        conditions.append(f"t.{_quote(key)} = u.{_quote(key)}")
    conditions += [_condition(table, f"t.{_quote(name)}", name, "%s") for name in where]
    return f"{sql} WHERE {' AND '.join(conditions)} RETURNING t.{_quote(key)}"


@functools.lru_cache(maxsize=256)
def _sqlite_update_sql(
    table: Table,
    key: str,
    columns: tuple[str, ...],
    where: tuple[str, ...],
    constants: tuple[str, ...],
    count: int,
) -> str:
    """SQLite's statement for ``count`` rows: their values as a VALUES list (a CTE: SQLite names
    a VALUES subquery's columns column1, column2...), joined by key."""
    # No alias for the table: SQLite's RETURNING refuses one (t.id: "no such column").
    name = _quote(table.name)
    assignments = [f"{_quote(column)} = u.{_quote(column)}" for column in columns]
    assignments += [f"{_quote(column)} = ?" for column in constants]
    conditions = [_condition(table, f"{name}.{_quote(column)}", column, "?") for column in where]
    if columns:
        aliases = ", ".join(_quote(column) for column in (key, *columns))
        row = "(" + ", ".join("?" * (1 + len(columns))) + ")"
        head = f"WITH u({aliases}) AS (VALUES {', '.join([row] * count)}) "
        head += f"UPDATE {name} SET {', '.join(assignments)} FROM u"  # noqa: S608 - schema names
        conditions.insert(0, f"{name}.{_quote(key)} = u.{_quote(key)}")
    else:
        head = f"UPDATE {name} SET {', '.join(assignments)}"  # noqa: S608 - schema names
        conditions.insert(0, f"{name}.{_quote(key)} IN ({', '.join('?' * count)})")
    return f"{head} WHERE {' AND '.join(conditions)} RETURNING {_quote(key)}"


def _condition(table: Table, qualified: str, column: str, placeholder: str) -> str:
    """A ``where`` condition: plain on a column of the primary key (with the key it makes the
    index's whole key, one row per value: ``message_id = ANY(...)`` alone on sms_segments'
    (message_id, sequence) was estimated at a quarter of a table never analysed, and scanned);
    in a form no index serves on any other column."""
    if column in table.primary_key.columns:
        return f"{qualified} = {placeholder}"
    return f"({qualified} = {placeholder}) IS TRUE"


def _bind_processor(table: Table, name: str, dialect: Dialect) -> Callable[[Any], Any]:
    """The column type's conversion of a Python value for the driver (UTCDateTime's UTC string
    on SQLite), as SQLAlchemy applies it to a bound parameter."""
    processor = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
    return processor if processor is not None else _same


def _same(value: Any) -> Any:
    return value


def _sqlite_variables(driver: Any) -> int:
    try:
        return int(driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
    except AttributeError:  # Python before 3.11
        return _SQLITE_MIN_VARIABLES


def insert_rows(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """``INSERT INTO table`` every row, in one statement (SQLite: one per variable limit's worth).

    Every row has the same columns. The columns it leaves out take their Python-side default
    where that is a constant; a callable default (an id, a time) is not applied, so a row names
    every such column that needs a value. PostgreSQL: ``INSERT ... SELECT FROM unnest(arrays)``,
    an array per column, one SQL text whatever the number of rows (psycopg's ``executemany``
    would run a statement per row, and SQLAlchemy's multi-row VALUES costs twice its CPU in
    Python and is a new statement for PostgreSQL to parse and plan at each batch size); SQLite:
    a multi-row VALUES.
    """
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    given = tuple(rows[0])
    defaults = _constant_defaults(table, given)
    columns = given + tuple(defaults)
    convert = [_bind_processor(table, name, dialect) for name in columns]
    if dialect.name == "postgresql":
        arrays = [
            [to_driver(defaults[name])] * len(rows)
            if name in defaults
            else [to_driver(row[name]) for row in rows]
            for name, to_driver in zip(columns, convert, strict=True)
        ]
        # SQLAlchemy hands the text and the arrays to psycopg as they are, and wraps its errors
        # (a unique violation is a DBAPIError, as for any statement)
        connection.exec_driver_sql(postgres_insert_sql(table, columns), tuple(arrays))
        return
    page = max(1, _sqlite_variables(connection.connection.driver_connection) // len(columns))
    for start in range(0, len(rows), page):
        chunk = rows[start : start + page]
        params = [
            to_driver(defaults[name] if name in defaults else row[name])
            for row in chunk
            for name, to_driver in zip(columns, convert, strict=True)
        ]
        connection.exec_driver_sql(_sqlite_insert_sql(table, columns, len(chunk)), tuple(params))


@functools.lru_cache(maxsize=64)
def _constant_defaults_of(table: Table, given: tuple[str, ...]) -> tuple[tuple[str, Any], ...]:
    return tuple(
        (column.name, column.default.arg)
        for column in table.columns
        if column.name not in given and isinstance(column.default, ScalarElementColumnDefault)
    )


def _constant_defaults(table: Table, given: tuple[str, ...]) -> dict[str, Any]:
    """The constant Python-side defaults of the columns not in ``given``, by name."""
    return dict(_constant_defaults_of(table, given))


@functools.cache
def postgres_insert_sql(table: Table, columns: tuple[str, ...]) -> str:
    """:func:`insert_rows`'s statement on PostgreSQL: one array parameter per column."""
    names = ", ".join(_quote(name) for name in columns)
    # in binary (%b): psycopg dumps arrays several times faster than as text
    arrays = ", ".join(f"CAST(%b AS {table.c[name].type.compile(dialect=_PG)}[])" for name in columns)
    return f"INSERT INTO {_quote(table.name)} ({names}) SELECT * FROM unnest({arrays})"  # noqa: S608 - schema names


@functools.lru_cache(maxsize=64)
def _sqlite_insert_sql(table: Table, columns: tuple[str, ...], count: int) -> str:
    names = ", ".join(_quote(name) for name in columns)
    row = "(" + ", ".join("?" * len(columns)) + ")"
    return f"INSERT INTO {_quote(table.name)} ({names}) VALUES {', '.join([row] * count)}"  # noqa: S608 - schema names
