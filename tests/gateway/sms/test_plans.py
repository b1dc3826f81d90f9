"""PostgreSQL plans of the per-request lookups, on a new table (no statistics yet, as after a
deployment or while a resource's history grows faster than autovacuum analyses it)."""

from __future__ import annotations

import pytest
from sqlalchemy.dialects import postgresql

from gateway.core.db import Database
from gateway.sms import service


@pytest.mark.parametrize("db_backend", [pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_the_repeatability_lookup_uses_its_unique_index(database: Database) -> None:
    statement = service._FIND_REPEATED.params(resource_id="resource", request_ids=["a", "b"])
    sql = str(statement.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))  # type: ignore[no-untyped-call]
    with database.read_session() as session:
        plan = "\n".join(row[0] for row in session.connection().exec_driver_sql("EXPLAIN " + sql))
    # an index on resource_id alone (or leading) would filter every message of the resource
    assert "uq_sms_messages_resource_id" in plan, plan
