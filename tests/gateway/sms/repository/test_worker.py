"""Plans of the SMPP worker's statements (gateway/sms/repository/worker.py) on a new table (no
statistics yet, as after a deployment or while a table grows faster than autovacuum analyses it)."""

from __future__ import annotations

from sqlalchemy import insert

from gateway.core.db import Database, utcnow
from gateway.resources.service import create_resource
from gateway.sms.lifecycle import SmsState
from gateway.sms.models import SmsMessage
from gateway.sms.repository import worker as repository


def _queue(database: Database, count: int) -> list[str]:
    now = utcnow()
    with database.session() as session:
        resource_id = create_resource(session, "plans", "https://plans.test/").id
        rows = [
            {
                "id": f"Outgoing_plan{index:06d}",
                "resource_id": resource_id,
                "from_number": "+14255550100",
                "to_number": "+14255550123",
                "country_code": "US",
                "text": "hi",
                "segment_count": 1,
                "data_coding": 0,
                "enable_delivery_report": False,
                "delivery_report_timeout_seconds": 3600,
                "state": SmsState.QUEUED,
                "next_attempt_at": now,
                "created_at": now,
            }
            for index in range(count)
        ]
        session.execute(insert(SmsMessage), rows)
    return [row["id"] for row in rows]


def test_a_claim_by_id_looks_each_id_up_by_primary_key(database: Database, db_backend: str) -> None:
    # 5,000 queued rows: the old claim read them all through the due index for every job.
    ids = _queue(database, 5000)[100:105]
    now = utcnow()
    with database.read_session() as session:
        connection = session.connection()
        if db_backend == "postgresql":
            compiled = repository.POSTGRES_CLAIMS[True].compile(dialect=connection.dialect)
            parameters = {**compiled.params, "now": now, "until": now, "room": 500, "ids": ids}
            plan = [row[0] for row in connection.exec_driver_sql("EXPLAIN " + str(compiled), parameters)]
        else:
            find, _ = repository.PORTABLE_CLAIMS[True]
            compiled = find.compile(dialect=connection.dialect)
            state = compiled.construct_expanded_state({"now": now, "room": 500, "ids": ids})
            positional = tuple(state.parameters[name] for name in state.positiontup or ())
            explained = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + state.statement, positional)
            plan = [str(row[-1]) for row in explained]
    text = "\n".join(plan)
    assert "ix_sms_messages_due" not in text, text
    assert ("pk_sms_messages" if db_backend == "postgresql" else "sqlite_autoindex_sms_messages") in text, (
        text
    )
