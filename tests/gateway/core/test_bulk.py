"""gateway.core.bulk on SQLite and PostgreSQL: update_rows (one statement per batch, joined by
key, and its plan on a queue the statistics know nothing of) and insert_rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import patch

import pytest
from sqlalchemy import Table, insert, select
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect
from sqlalchemy.exc import DBAPIError

from gateway.core.bulk import insert_rows, postgres_update, sqlite_updates, update_rows
from gateway.core.db import Database
from gateway.events.models import OutboxEvent
from gateway.resources.service import create_resource
from gateway.sms.models import SmsMessage, SmsSegment

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def _messages(database: Database, count: int) -> tuple[Table, list[str]]:
    table = SmsMessage.__table__
    assert isinstance(table, Table)
    ids = [f"Outgoing_{index}" for index in range(count)]
    with database.session() as session:
        resource_id = create_resource(session, "bulk", "https://bulk.test/").id
        session.execute(
            insert(table),
            [
                {
                    "id": message_id,
                    "resource_id": resource_id,
                    "from_number": "+14255550100",
                    "to_number": "+14255550101",
                    "text": "hi",
                    "segment_count": 1,
                    "data_coding": 0,
                    "delivery_report_timeout_seconds": 60,
                    "state": "queued" if index != 1 else "failed",
                    "next_attempt_at": NOW,
                    "claimed_until": NOW,
                    "created_at": NOW,
                }
                for index, message_id in enumerate(ids)
            ],
        )
    return table, ids


def test_sets_each_rows_values_where_the_condition_holds(database: Database, db_backend: str) -> None:
    table, ids = _messages(database, 3)
    rows: list[dict[str, Any]] = [
        {"id": ids[0], "state": "submitted", "error": None, "submitted_at": NOW + timedelta(seconds=1)},
        {"id": ids[1], "state": "submitted", "error": "x", "submitted_at": NOW + timedelta(seconds=2)},
        {"id": ids[2], "state": "delivered", "error": 'it\'s "quoted"', "submitted_at": NOW},
    ]
    with database.session() as session:
        updated = update_rows(
            session, table, rows, where={"state": "queued"}, constants={"claimed_until": None, "attempts": 7}
        )
    assert updated == {ids[0], ids[2]}
    with database.read_session() as session:
        stored = {row.id: row for row in session.execute(select(table))}
    first, finished, third = (stored[message_id] for message_id in ids)
    assert (first.state, first.error, first.submitted_at) == ("submitted", None, NOW + timedelta(seconds=1))
    assert (first.claimed_until, first.attempts) == (None, 7)
    assert (third.state, third.error, third.submitted_at) == ("delivered", 'it\'s "quoted"', NOW)
    # not queued: left alone
    assert (finished.state, finished.error, finished.submitted_at) == ("failed", None, None)
    assert finished.claimed_until == NOW


def test_no_rows_is_a_no_op(database: Database) -> None:
    table, _ = _messages(database, 1)
    with database.session() as session:
        assert update_rows(session, table, [], where={"state": "queued"}) == set()


def test_constants_only(database: Database, db_backend: str) -> None:
    table, ids = _messages(database, 3)
    with database.session() as session:
        updated = update_rows(
            session,
            table,
            [{"id": ids[0]}, {"id": ids[1]}],
            where={"state": "queued"},
            constants={"error": "e"},
        )
    assert updated == {ids[0]}
    with database.read_session() as session:
        stored = {row.id: row.error for row in session.execute(select(table))}
    assert stored == {ids[0]: "e", ids[1]: None, ids[2]: None}


def test_another_key_and_none_in_every_row(database: Database, db_backend: str) -> None:
    _, ids = _messages(database, 2)
    segments = SmsSegment.__table__
    assert isinstance(segments, Table)
    with database.session() as session:
        session.execute(
            insert(segments),
            [{"message_id": ids[0], "sequence": s, "submit_state": "accepted"} for s in (1, 2)]
            + [{"message_id": ids[1], "sequence": 1, "submit_state": "accepted"}],
        )
    rows = [{"message_id": message_id, "receipt_state": 2, "receipt_error": None} for message_id in ids]
    with database.session() as session:
        updated = update_rows(
            session, segments, rows, key="message_id", where={"sequence": 1}, constants={"receipt_at": NOW}
        )
    assert updated == set(ids)
    with database.read_session() as session:
        stored = {(row.message_id, row.sequence): row for row in session.execute(select(segments))}
    assert (stored[(ids[0], 1)].receipt_state, stored[(ids[0], 1)].receipt_at) == (2, NOW)
    assert (stored[(ids[1], 1)].receipt_state, stored[(ids[1], 1)].receipt_error) == (2, None)
    assert stored[(ids[0], 2)].receipt_state is None  # another sequence: left alone


def test_sqlite_splits_a_batch_at_its_variable_limit(database: Database, db_backend: str) -> None:
    table, ids = _messages(database, 25)
    rows = [{"id": message_id, "segment_count": index} for index, message_id in enumerate(ids)]
    if db_backend == "sqlite":
        statements = sqlite_updates(table, rows, sqlite_dialect(), 10, where={"state": "queued"})
        # 4 rows of 2 variables and the condition's 1 a statement
        assert [len(params) for _, params in statements] == [9] * 6 + [3]
    with patch("gateway.core.bulk._sqlite_variables", return_value=10), database.session() as session:
        assert update_rows(session, table, rows, where={"state": "queued"}) == set(ids) - {ids[1]}
    with database.read_session() as session:
        stored = {row.id: row.segment_count for row in session.execute(select(table))}
    assert stored == {message_id: 1 if index == 1 else index for index, message_id in enumerate(ids)}


def test_a_key_given_twice_is_refused(database: Database) -> None:
    table, ids = _messages(database, 1)
    with database.session() as session, pytest.raises(ValueError, match="twice"):
        update_rows(session, table, [{"id": ids[0], "error": "a"}, {"id": ids[0], "error": "b"}])


def test_a_burst_of_queued_rows_is_updated_by_primary_key(database: Database, db_backend: str) -> None:
    """5,000 rows queued since the statistics were taken (or with none, as SQLite has): the
    writer's queued -> submitted update must look its rows up by key, not walk the due index
    through every queued row (a batch of 50 at 10,000 and 1,000,000 rows:
    tests/gateway/sms/test_plans.py; here a few, where the key beats a scan of 5,000)."""
    table, ids = _messages(database, 5000)
    rows = [{"id": message_id, "segment_count": 1, "data_coding": 0} for message_id in ids[100:105]]
    where, constants = {"state": "queued"}, {"state": "submitted", "submitted_at": NOW, "claimed_until": None}
    with database.read_session() as session:
        connection = session.connection()
        if db_backend == "postgresql":
            sql, params = postgres_update(table, rows, where=where, constants=constants)
            explained = connection.exec_driver_sql("EXPLAIN " + sql, tuple(params))
            plan = "\n".join(row[0] for row in explained)
            expected = "pk_sms_messages"
        else:
            ((sql, params),) = sqlite_updates(
                table, rows, connection.dialect, 999, where=where, constants=constants
            )
            explained = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)
            plan = "\n".join(str(row[-1]) for row in explained)
            expected = "sqlite_autoindex_sms_messages"
    assert "ix_sms_messages_due" not in plan, plan
    assert expected in plan, plan
    assert "Seq Scan on sms_messages" not in plan, plan
    assert "SCAN sms_messages" not in plan, plan


def test_insert_rows_stores_every_row_as_given(database: Database, db_backend: str) -> None:
    """JSON, aware datetimes and NULLs, converted as SQLAlchemy converts them; on SQLite in
    statements of at most the variable limit."""
    outbox = OutboxEvent.__table__
    assert isinstance(outbox, Table)
    with database.session() as session:
        resource_id = create_resource(session, "bulk", "https://bulk.test/").id
    rows = [
        {
            "id": f"ev-{index}",
            "resource_id": resource_id,
            "event_type": "T",
            "subject": f"/s/{index}",
            "subscription_id": None,
            "data": {"n": index, "text": 'it\'s "quoted"', "list": [1, None]},
            "event_time": NOW + timedelta(seconds=index),
            "created_at": NOW,
        }
        for index in range(7)
    ]
    with patch("gateway.core.bulk._sqlite_variables", return_value=20), database.session() as session:
        insert_rows(session, outbox, rows)  # SQLite: 2 rows of 8 columns a statement
    with database.read_session() as session:
        stored = {row.id: row for row in session.execute(select(outbox))}
    assert len(stored) == 7
    for row in rows:
        found = stored[row["id"]]
        assert (found.subject, found.data, found.event_time) == (
            row["subject"],
            row["data"],
            row["event_time"],
        )
        assert (found.subscription_id, found.dispatched_at) == (None, None)


def test_insert_rows_of_nothing_is_a_no_op(database: Database) -> None:
    outbox = OutboxEvent.__table__
    assert isinstance(outbox, Table)
    with database.session() as session:
        insert_rows(session, outbox, [])


def test_insert_rows_gives_left_out_columns_their_constant_defaults(
    database: Database, db_backend: str
) -> None:
    """As the ORM would: sms_messages' counters, flags and lists start at their defaults, on
    every row, whichever columns the rows name; a unique violation is SQLAlchemy's error."""
    table = SmsMessage.__table__
    assert isinstance(table, Table)
    with database.session() as session:
        resource_id = create_resource(session, "defaults", "https://defaults.test/").id
    rows = [
        {
            "id": f"Outgoing_d{index}",
            "resource_id": resource_id,
            "from_number": "+14255550100",
            "to_number": "+14255550101",
            "text": "hi",
            "segment_count": 1,
            "data_coding": 0,
            "delivery_report_timeout_seconds": 60,
            "state": "queued",
            "next_attempt_at": NOW,
            "created_at": NOW,
        }
        for index in range(3)
    ]
    with database.session() as session:
        insert_rows(session, table, rows)
    with database.read_session() as session:
        stored = list(session.scalars(select(SmsMessage).order_by(SmsMessage.id)))
    assert [message.id for message in stored] == ["Outgoing_d0", "Outgoing_d1", "Outgoing_d2"]
    for message in stored:
        assert (message.attempts, message.in_doubt, message.possible_duplicates) == (0, False, 0)
        assert (message.tried_connections, message.concat_reference, message.country_code) == ("", 0, "")
        assert (message.segments_succeeded, message.segments_failed, message.waiting_for_bind) == (
            0,
            0,
            False,
        )
        assert message.enable_delivery_report is False
    with pytest.raises(DBAPIError), database.session() as session:
        insert_rows(session, table, rows[:1])
