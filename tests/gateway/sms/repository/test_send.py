"""Plans of POST /sms's hot lookups (gateway/sms/repository/send.py), on a new table (no
statistics yet, as after a deployment or while a table grows faster than autovacuum analyses it)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.core.db import Database
from gateway.sms.repository import send as repository


def _postgres_plan(database: Database, statement: Any, parameters: dict[str, Any]) -> str:
    with database.read_session() as session:
        connection = session.connection()
        compiled = statement.compile(dialect=connection.dialect)
        rows = connection.exec_driver_sql("EXPLAIN " + str(compiled), {**compiled.params, **parameters})
        return "\n".join(row[0] for row in rows)


@pytest.mark.parametrize("db_backend", [pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_the_repeatability_lookup_uses_its_unique_index(database: Database) -> None:
    parameters = {"resources": ["resource"], "request_ids": ["a", "b"]}
    plan = _postgres_plan(database, repository.FIND_REPEATED[True], parameters)
    # an index on resource_id alone (or leading) would filter every message of the resource
    assert "uq_sms_messages_repeatability_request_id" in plan, plan


@pytest.mark.parametrize("db_backend", [pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_the_batch_lookup_reads_by_primary_keys(database: Database) -> None:
    parameters = {
        "senders": ["+14255550100"],
        "recipients": ["+14255550123", "+14255550124"],
        "resources": ["resource"],
        "scopes": ["*", "US"],
        "second": 1_800_000_000,
        "window_start": 1_800_000_000 - 60,
    }
    plan = _postgres_plan(database, repository.LOOKUPS[(True, True)], parameters)
    for index in ("pk_purchased_numbers", "pk_sms_optouts", "pk_sms_send_counters"):
        assert index in plan, plan
    assert "Seq Scan" not in plan, plan
