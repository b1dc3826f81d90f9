"""gateway.core.bulk.update_rows on SQLite and PostgreSQL (arrays and unnest there)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, insert, select

from gateway.core.bulk import update_rows
from gateway.core.db import Database
from gateway.resources.service import create_resource
from gateway.sms.models import SmsMessage

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
    if db_backend == "postgresql":
        assert updated == {ids[0], ids[2]}
    else:
        assert updated == set(ids)  # serialised writers: the caller knows (see the docstring)
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
