"""Plans of the statements a code path sends to PostgreSQL, for the plan tests
(tests/gateway/sms/test_plans.py, tests/gateway/calls/test_plans.py).

A path is run as the gateway runs it, inside a transaction that is rolled back; its statements
and parameters are caught at the driver and each is explained twice: as a one-off statement
(PostgreSQL plans it for the values given) and as the generic plan of a prepared statement. The
second is what a hot statement runs with: psycopg prepares a statement on its fifth execution,
and after five custom plans PostgreSQL keeps a generic one when it looks no dearer. A generic
plan knows no parameter's value, so it can use a partial index only when the statement spells
the index's condition out in literals.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

_PLACEHOLDER = re.compile(r"%\((\w+)\)[sbt]")
_POSITIONAL = re.compile(r"%[sbt]")


@contextmanager
def caught(engine: sa.Engine) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def listener(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        seen.append((statement, parameters[0] if many else parameters))

    event.listen(engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", listener)


def explain(engine: sa.Engine, statement: str, parameters: Any, *, generic: bool = False) -> dict[str, Any]:
    """The plan of ``statement`` (psycopg's ``%(name)s`` or ``%s`` placeholders) for
    ``parameters``; with ``generic``, the plan a prepared statement falls back to."""
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cursor:
            if generic:
                plan = _generic_plan(raw.driver_connection, statement, parameters)
            else:
                cursor.execute("EXPLAIN (FORMAT JSON) " + statement, parameters)
                plan = cursor.fetchone()[0][0]["Plan"]
        raw.rollback()
        return plan
    finally:
        raw.close()


def _generic_plan(connection: Any, statement: str, parameters: Any) -> dict[str, Any]:
    """PREPARE the statement with ``$n`` placeholders, force the generic plan and explain an
    EXECUTE of it (the values are inlined into EXECUTE's arguments by a client-side cursor)."""
    values: list[Any] = []
    if isinstance(parameters, dict):
        order: dict[str, int] = {}

        def number(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in order:
                order[name] = len(order) + 1
                values.append(parameters[name])
            return f"${order[name]}"

        prepared = _PLACEHOLDER.sub(number, statement)
    else:
        values = list(parameters or ())
        numbers = iter(range(1, len(values) + 1))
        prepared = _POSITIONAL.sub(lambda _: f"${next(numbers)}", statement)
    prepared = prepared.replace("%%", "%")
    assert isinstance(connection, psycopg.Connection)
    with psycopg.ClientCursor(connection) as cursor:
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cursor.execute("PREPARE plan_probe AS " + prepared)
        try:
            arguments = f"({', '.join(['%s'] * len(values))})" if values else ""
            cursor.execute(f"EXPLAIN (FORMAT JSON) EXECUTE plan_probe{arguments}", values)
            row = cursor.fetchone()
        except Exception:
            connection.rollback()  # so that the statement can still be deallocated
            raise
        finally:
            cursor.execute("DEALLOCATE plan_probe")
        assert row is not None
        plan: dict[str, Any] = row[0][0]["Plan"]
    return plan


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def statements_of(engine: sa.Engine, run: Callable[[Session], object]) -> list[tuple[str, Any]]:
    """Run ``run`` in a transaction rolled back; the statements it sent to the database."""
    with engine.connect() as connection, caught(engine) as seen:
        transaction = connection.begin()
        try:
            run(Session(bind=connection))
        finally:
            transaction.rollback()
    statements = [(s, p) for s, p in seen if not s.lstrip().upper().startswith(("SAVEPOINT", "RELEASE"))]
    assert statements, "the statement under test sent nothing"
    return statements


def plans_of(
    engine: sa.Engine, run: Callable[[Session], object], *, generic: bool = False
) -> list[tuple[str, dict[str, Any]]]:
    return [(s, explain(engine, s, p, generic=generic)) for s, p in statements_of(engine, run)]


def _keys_filtered(node: dict[str, Any]) -> bool:
    """A scan that filters its rows by a list of keys (``= ANY``) while its index conditions
    (the node's own, or its bitmap's) look up no list at all."""
    if "ANY (" not in node.get("Filter", ""):
        return False
    conditions = [n.get(k, "") for n in nodes(node) for k in ("Index Cond", "Recheck Cond")]
    return not any("ANY (" in condition for condition in conditions)


def check(plans: list[tuple[str, dict[str, Any]]], index: str, big_tables: tuple[str, ...]) -> None:
    """No sequential scan of a big table; ``index`` (or one of ``a|b``; "": any) used; and no
    list of keys (``= ANY``) filtered out of a big table's rows rather than looked up: an index
    used on its other, weaker condition (a connection or resource most rows share) reads rows in
    proportion to the table."""
    used = set()
    for statement, plan in plans:
        for node in nodes(plan):
            relation = node.get("Relation Name")
            assert not (node["Node Type"] == "Seq Scan" and relation in big_tables), (
                f"sequential scan of {relation} in:\n{statement}\n{plan}"
            )
            assert not (relation in big_tables and _keys_filtered(node)), (
                f"keys filtered out of {relation}'s rows, not looked up, in:\n{statement}\n{plan}"
            )
            if "Index Name" in node:
                used.add(node["Index Name"])
    if index:
        assert used & set(index.split("|")), f"{index} not used ({sorted(used)}) by:\n{plans}"


def failures_of(
    engine: sa.Engine,
    paths: dict[str, tuple[Callable[[Session], object], str]],
    big_tables: tuple[str, ...],
) -> list[str]:
    """:func:`check` for each named path (what it runs, the index it must use), both its
    one-off and its generic plans; a line per failure."""
    failures = []
    for name, (run, index) in paths.items():
        for generic in (False, True):
            try:
                check(plans_of(engine, run, generic=generic), index, big_tables)
            except AssertionError as exc:
                failures.append(f"{name} ({'generic' if generic else 'one-off'} plan): {exc}")
    return failures


def autovacuum_off(connection: sa.Connection, tables: tuple[str, ...]) -> None:
    """Nothing analyses ``tables`` but the test itself (as on a machine with autovacuum off)."""
    for table in tables:
        connection.exec_driver_sql(
            f"ALTER TABLE {table} SET (autovacuum_enabled = off, toast.autovacuum_enabled = off)"
        )


def analyse(engine: sa.Engine) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("ANALYZE")


def analysed_rows(engine: sa.Engine, table: str) -> int:
    """How many column statistics ``table`` has (0: never analysed)."""
    with engine.connect() as connection:
        count = connection.exec_driver_sql(
            "SELECT count(*) FROM pg_stats WHERE tablename = %(table)s", {"table": table}
        ).scalar()
    return int(count or 0)
