"""SQL of the per-second send counters (``sms_send_counters``) the quotas are counted in.

The statements are built once, with bind parameters: building a SQLAlchemy statement costs more
CPU than SQLite takes to run it, and a prebuilt one also keeps its cache key."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Insert, Table, bindparam, delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from gateway.sms.models import SmsSendCounter

# a counter's key: (resource id, scope)
CounterKey = tuple[str, str]

counters = cast(Table, SmsSendCounter.__table__)


def _counter_upsert(dialect: str) -> Insert:
    upsert = pg_insert(counters) if dialect == "postgresql" else sqlite_insert(counters)
    return upsert.on_conflict_do_update(
        index_elements=[counters.c.resource_id, counters.c.scope, counters.c.second],
        set_={"sent": counters.c.sent + upsert.excluded.sent},
    ).returning(counters.c.resource_id, counters.c.scope, counters.c.sent)


_COUNTER_UPSERTS = {dialect: _counter_upsert(dialect) for dialect in ("postgresql", "sqlite")}

_FORGET_OLD_COUNTERS = delete(counters).where(
    counters.c.resource_id == bindparam("resource_id"), counters.c.second <= bindparam("oldest")
)


def upsert_counters(session: Session, second: int, added: dict[CounterKey, int]) -> dict[CounterKey, int]:
    """Add ``added[(resource, scope)]`` messages to the counters of ``second``; their new
    values, by (resource, scope). Adding 0 locks a counter and reads it.

    Rows are written in (resource, scope) order so two transactions always lock them in the same
    order (no deadlock); each lock is held until the commit, which serialises the counting of a
    resource's concurrent requests in every API process."""
    connection = session.connection()
    rows = [
        {"resource_id": resource_id, "scope": scope, "second": second, "sent": count}
        for (resource_id, scope), count in sorted(added.items())
    ]
    # Rows as parameters (not .values()): several rows still go as one INSERT (insertmanyvalues).
    result = connection.execute(_COUNTER_UPSERTS[connection.dialect.name], rows)
    return {(row.resource_id, row.scope): row.sent for row in result}


def delete_counters_up_to(session: Session, resource_id: str, oldest: int) -> None:
    """Delete a resource's counters of ``oldest`` and the seconds before it."""
    session.connection().execute(_FORGET_OLD_COUNTERS, {"resource_id": resource_id, "oldest": oldest})
