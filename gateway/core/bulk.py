"""Bulk UPDATE by key: one statement over arrays on PostgreSQL, executemany elsewhere.

For hot paths that change hundreds of rows per transaction (the SMPP process's writer).
``executemany`` through SQLAlchemy and psycopg costs tens of microseconds a row in Python
(parameter processing, one pipeline step per row); ``UPDATE ... FROM unnest(...)`` with one array
per column costs a few. On SQLite, executemany is a C loop in the same process and is kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table, bindparam, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

_PG = postgresql.dialect()  # type: ignore[no-untyped-call]  # for compiling column types only


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

    Every row has the same columns: ``key`` and the columns to set. ``where`` adds equality
    conditions on the stored row (a row that no longer matches is left alone); ``constants``
    sets the same value on every row. Datetimes must be timezone-aware.

    Returns the keys of the rows updated. On PostgreSQL that is what the statement returned; on
    SQLite, where writers are serialised (``BEGIN IMMEDIATE``), it is every key given: a caller
    that read the rows earlier in the same transaction knows which ones match ``where``.
    """
    if not rows:
        return set()
    where = where or {}
    constants = constants or {}
    columns = [name for name in rows[0] if name != key]
    if session.get_bind().dialect.name == "postgresql":
        statement, params = _postgres_statement(table, rows, key, columns, where, constants)
        return set(session.execute(statement, params).scalars())
    condition = [table.c[key] == bindparam("k_" + key)]
    condition += [table.c[name] == value for name, value in where.items()]
    values: dict[str, Any] = {name: bindparam("v_" + name) for name in columns}
    values.update(constants)
    session.execute(
        update(table).where(*condition).values(values),
        [{"k_" + key: row[key], **{"v_" + name: row[name] for name in columns}} for row in rows],
    )
    return {row[key] for row in rows}


def _postgres_statement(
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    key: str,
    columns: list[str],
    where: Mapping[str, Any],
    constants: Mapping[str, Any],
) -> tuple[Any, dict[str, Any]]:
    quote = _PG.identifier_preparer.quote

    def sql_type(name: str) -> str:
        return str(table.c[name].type.compile(dialect=_PG))

    unnested = [key, *columns]
    params: dict[str, Any] = {f"a{index}": [row[name] for row in rows] for index, name in enumerate(unnested)}
    arrays = ", ".join(f"CAST(:a{index} AS {sql_type(name)}[])" for index, name in enumerate(unnested))
    aliases = ", ".join(quote(name) for name in unnested)
    assignments = [f"{quote(name)} = u.{quote(name)}" for name in columns]
    for index, (name, value) in enumerate(constants.items()):
        assignments.append(f"{quote(name)} = CAST(:c{index} AS {sql_type(name)})")
        params[f"c{index}"] = value
    conditions = [f"t.{quote(key)} = u.{quote(key)}"]
    for index, (name, value) in enumerate(where.items()):
        conditions.append(f"t.{quote(name)} = CAST(:w{index} AS {sql_type(name)})")
        params[f"w{index}"] = value
    sql = (
        f"UPDATE {quote(table.name)} AS t SET {', '.join(assignments)} "  # noqa: S608 - names from the schema
        f"FROM unnest({arrays}) AS u({aliases}) WHERE {' AND '.join(conditions)} RETURNING t.{quote(key)}"
    )
    return text(sql), params
