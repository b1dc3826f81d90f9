"""SQL of the delivery attempts: deliveries due for the broker, claims (whole batches),
batch ids, and recording the attempts and the deliveries' new states."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Connection, Select, Table, bindparam, or_, select, update
from sqlalchemy.orm import Session

from gateway.core.bulk import insert_rows, update_rows
from gateway.core.db import UTCDateTime, one_of, unindexed
from gateway.events.lifecycle import DeliveryChange, DeliveryStatus
from gateway.events.models import (
    Delivery,
    DeliveryAttempt,
    EventSubscription,
    OutboxEvent,
)
from gateway.events.repository.rows import ClaimedRow, QueuedDelivery
from gateway.resources.models import Resource


def insert_deliveries(session: Session, rows: list[dict[str, Any]]) -> None:
    """One statement (gateway.core.bulk); each row names every column without a server default."""
    insert_rows(session, cast(Table, Delivery.__table__), rows)


def take_due_deliveries(
    session: Session, now: datetime, enqueue_lease: timedelta, limit: int
) -> list[QueuedDelivery]:
    """Pending deliveries due now that no queued task is believed to cover, leased for
    ``enqueue_lease`` (others' locked rows skipped)."""
    rows = [
        QueuedDelivery(row[0], row[1], row[2])
        for row in session.execute(
            select(Delivery.id, Delivery.subscription_id, EventSubscription.max_events_per_batch)
            .join(EventSubscription, EventSubscription.id == Delivery.subscription_id)
            .where(
                Delivery.status == DeliveryStatus.PENDING,
                Delivery.next_attempt_at <= now,
                or_(Delivery.enqueued_until.is_(None), Delivery.enqueued_until < now),
            )
            .order_by(Delivery.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True, of=Delivery)
        ).all()
    ]
    if rows:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_([r.delivery_id for r in rows]))
            .values(enqueued_until=now + enqueue_lease)
        )
    return rows


def set_enqueued_until(session: Session, delivery_ids: Sequence[str], at: datetime) -> None:
    session.execute(update(Delivery).where(Delivery.id.in_(list(delivery_ids))).values(enqueued_until=at))


_DELIVERIES = cast(Table, Delivery.__table__)


def _claimable() -> list[ColumnElement[bool]]:
    """Pending, due (``:due``, a second ahead of now) and not claimed at ``:now``; the state
    ``unindexed``, so the claim finds its rows by the ids or batch ids it is given (through the
    due index it read every pending delivery and filtered the ids out of them)."""
    d = _DELIVERIES.c
    return [
        unindexed(d.status == DeliveryStatus.PENDING.value),
        d.next_attempt_at <= bindparam("due", type_=UTCDateTime()),
        or_(d.claimed_until.is_(None), d.claimed_until < bindparam("now", type_=UTCDateTime())),
    ]


def _core(session: Session) -> tuple[Connection, bool]:
    """The session's connection (Core statements on it skip the ORM's compile and bulk-update
    paths, a third of the events worker's time) and whether it is PostgreSQL's."""
    connection = session.connection()
    return connection, connection.dialect.name == "postgresql"


def _claimable_rows(*keys: ColumnElement[bool]) -> Select[*tuple[Any, ...]]:
    """Claimable deliveries matching ``keys``, with their event, subscription and resource
    name, locked for the transaction (rows another claim holds are skipped)."""
    return (
        select(
            Delivery.id,
            Delivery.subscription_id,
            Delivery.resource_id,
            Delivery.attempts,
            Delivery.expires_at,
            Delivery.next_attempt_at,
            Delivery.batch_id,
            OutboxEvent.id,
            OutboxEvent.event_type,
            OutboxEvent.subject,
            OutboxEvent.data,
            OutboxEvent.event_time,
            OutboxEvent.created_at,
            EventSubscription.endpoint_url,
            EventSubscription.delivery_schema,
            EventSubscription.kind,
            EventSubscription.max_delivery_attempts,
            EventSubscription.max_events_per_batch,
            EventSubscription.preferred_batch_size_kb,
            EventSubscription.secret,
            EventSubscription.previous_secret,
            EventSubscription.previous_secret_expires_at,
            Resource.name,
        )
        .join(OutboxEvent, OutboxEvent.id == Delivery.event_id)
        .join(EventSubscription, EventSubscription.id == Delivery.subscription_id)
        .join(Resource, Resource.id == EventSubscription.resource_id)
        .where(*keys, *_claimable())
        .with_for_update(of=_DELIVERIES, skip_locked=True)
    )


# Built once per dialect: building a statement and its cache key was a sixth of the events
# worker's CPU. The lists are one array parameter on PostgreSQL (``one_of``): an expanding IN of
# a hundred ids (a batch) made a new SQL text each time, which psycopg converted again (it caches
# statements of at most 4 kB) and PostgreSQL parsed and planned again.
_LOCK_BY_ID = {
    postgres: _claimable_rows(one_of(_DELIVERIES.c.id, "ids", postgres=postgres))
    for postgres in (False, True)
}
_LOCK_BY_BATCH = {
    postgres: _claimable_rows(
        one_of(_DELIVERIES.c.batch_id, "batch_ids", postgres=postgres),
        _DELIVERIES.c.batch_id.is_not(None),
    )
    for postgres in (False, True)
}


def lock_claimable(session: Session, delivery_ids: Sequence[str], now: datetime) -> list[ClaimedRow]:
    """The pending, due, unclaimed deliveries among ``delivery_ids``, with every other such
    delivery of the batches they belong to (a batch is sent whole, even when two tasks carry
    halves of it), locked for this transaction and read with their event, subscription and
    resource name; oldest event first (the event id breaks ties, so a batch's order is the same
    on every retry). :func:`mark_claimed` then claims them.

    Two statements, each by its own index (the ids by primary key, their batches' other rows by
    the partial batch index), rather than one with ``id IN ... OR batch_id IN (subquery)``, for
    which the planner read the table through its due index or sequentially
    (tests/gateway/sms/test_plans.py). The second runs only for deliveries already in a batch
    (retries of batching subscriptions)."""
    connection, postgres = _core(session)
    values = {"now": now, "due": now + timedelta(seconds=1)}
    rows = [
        ClaimedRow._make(row)
        for row in connection.execute(_LOCK_BY_ID[postgres], {"ids": list(delivery_ids), **values})
    ]
    batch_ids = list({row.batch_id for row in rows if row.batch_id is not None})
    if batch_ids:
        found = {row.delivery_id for row in rows}
        siblings = connection.execute(_LOCK_BY_BATCH[postgres], {"batch_ids": batch_ids, **values})
        rows += [row for row in map(ClaimedRow._make, siblings) if row.delivery_id not in found]
    rows.sort(key=lambda row: (row.event_created_at, row.event_id))
    return rows


def mark_claimed(session: Session, batch_of: Mapping[str, str | None], until: datetime) -> None:
    """Claim these locked deliveries until ``until``, each with its batch id (None: sent alone),
    in one statement: the claim and the batch are one new version of each row, not two."""
    rows = [{"id": delivery_id, "batch_id": batch_id} for delivery_id, batch_id in batch_of.items()]
    update_rows(session, _DELIVERIES, rows, constants={"claimed_until": until, "enqueued_until": until})


def release_claims(session: Session, delivery_ids: Sequence[str]) -> None:
    session.execute(
        update(Delivery)
        .where(Delivery.id.in_(list(delivery_ids)), Delivery.status == DeliveryStatus.PENDING)
        .values(claimed_until=None, enqueued_until=None)
        .execution_options(synchronize_session=False)
    )


def insert_attempts(session: Session, rows: list[dict[str, Any]]) -> None:
    """One statement (gateway.core.bulk): the ORM's bulk insert was a tenth of the events
    worker's time in the media benchmark."""
    insert_rows(session, cast(Table, DeliveryAttempt.__table__), rows)


# A delivery's outcome (the parameters of _change_values), its claim and enqueue leases cleared.
_OUTCOME = {
    "status": bindparam("b_status"),
    "attempts": bindparam("b_attempts"),
    "next_attempt_at": bindparam("b_next", type_=UTCDateTime()),
    "finished_at": bindparam("b_finished", type_=UTCDateTime()),
    "dead_letter_reason": bindparam("b_reason"),
    "last_status_code": bindparam("b_code"),
    "last_error": bindparam("b_error"),
    "last_response": bindparam("b_response"),
    "claimed_until": None,
    "enqueued_until": None,
}
_UPDATE_ALIKE = {
    postgres: update(_DELIVERIES).where(one_of(_DELIVERIES.c.id, "ids", postgres=postgres)).values(_OUTCOME)
    for postgres in (False, True)
}
_UPDATE_EACH = update(_DELIVERIES).where(_DELIVERIES.c.id == bindparam("b_id")).values(_OUTCOME)


def update_deliveries(session: Session, changes: Mapping[str, DeliveryChange]) -> None:
    """Deliveries' new states by id; claim and enqueue leases are cleared. Deliveries that change
    alike (a batch's) are updated by one statement over their ids; the rest in one executemany
    UPDATE."""
    by_change: dict[DeliveryChange, list[str]] = {}
    for delivery_id, change in changes.items():
        by_change.setdefault(change, []).append(delivery_id)
    singles = {ids[0]: change for change, ids in by_change.items() if len(ids) == 1}
    connection, postgres = _core(session)
    for change, ids in by_change.items():
        if len(ids) > 1:
            connection.execute(_UPDATE_ALIKE[postgres], {"ids": ids, **_change_values(change)})
    if singles:
        rows = [{"b_id": delivery_id, **_change_values(change)} for delivery_id, change in singles.items()]
        connection.execute(_UPDATE_EACH, rows)


def _change_values(change: DeliveryChange) -> dict[str, Any]:
    return {
        "b_status": change.status.value,
        "b_attempts": change.attempts,
        "b_next": change.next_attempt_at,
        "b_finished": change.finished_at,
        "b_reason": change.dead_letter_reason.value if change.dead_letter_reason else None,
        "b_code": change.last_status_code,
        "b_error": change.last_error,
        "b_response": change.last_response,
    }
