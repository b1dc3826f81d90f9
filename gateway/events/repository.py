"""SQL of the events domain: the outbox, subscriptions, deliveries and the attempt log.

Statements only; the rules that choose the values are in the service modules and, for a
delivery's state, in :mod:`gateway.events.lifecycle`. Rows that several workers may take are
taken with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite serialises writers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple, cast

from sqlalchemy import ColumnElement, Table, and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from gateway.core.db import UTCDateTime
from gateway.events.lifecycle import DeliveryChange, DeliveryStatus
from gateway.events.models import (
    Delivery,
    DeliveryAttempt,
    EventSubscription,
    OutboxEvent,
    SubscriptionKind,
    SubscriptionStatus,
)
from gateway.resources.models import Resource


class QueuedDelivery(NamedTuple):
    """A delivery to send to the broker, with the subscription its task is grouped by and that
    subscription's events per batch (a task carries at least one full batch)."""

    delivery_id: str
    subscription_id: str
    max_events_per_batch: int = 1


class DeliveryRow(NamedTuple):
    delivery: Delivery
    event: OutboxEvent


class ClaimedRow(NamedTuple):
    """A claimed delivery with its event, as plain columns (no ORM object per row: the claim of
    a batch of hundreds spent a third of its time building them)."""

    delivery_id: str
    subscription_id: str
    resource_id: str
    attempts: int
    expires_at: datetime
    next_attempt_at: datetime
    batch_id: str | None
    event_id: str
    event_type: str
    subject: str
    data: dict[str, Any]
    event_time: datetime
    event_created_at: datetime


class SubscriptionRow(NamedTuple):
    subscription: EventSubscription
    resource_name: str


class QueueDepth(NamedTuple):
    outbox: int  # outbox rows not yet fanned out
    pending: int  # deliveries pending


# Outbox -----------------------------------------------------------------------------------------


def insert_events(session: Session, rows: list[dict[str, Any]]) -> None:
    """Outbox rows in one INSERT, no ORM objects (for hot paths)."""
    outbox = OutboxEvent.__table__
    assert isinstance(outbox, Table)
    session.execute(insert(outbox), rows)


def lock_undispatched(session: Session, limit: int) -> list[OutboxEvent]:
    """The oldest outbox rows not yet fanned out, locked (others' locked rows are skipped)."""
    return list(
        session.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.dispatched_at.is_(None))
            .order_by(OutboxEvent.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )


def mark_dispatched(session: Session, event_ids: Sequence[str], now: datetime) -> None:
    session.execute(update(OutboxEvent).where(OutboxEvent.id.in_(list(event_ids))).values(dispatched_at=now))


def purge_finished(session: Session, older_than: datetime, limit: int) -> int:
    """Delete events fanned out before ``older_than`` with no pending delivery, their deliveries
    and attempt logs. Returns how many events were deleted."""
    still_pending = select(Delivery.id).where(
        Delivery.event_id == OutboxEvent.id, Delivery.status == DeliveryStatus.PENDING
    )
    ids = list(
        session.scalars(
            select(OutboxEvent.id)
            .where(
                OutboxEvent.dispatched_at.is_not(None),
                OutboxEvent.dispatched_at < older_than,
                ~still_pending.exists(),
            )
            .limit(limit)
        )
    )
    if ids:
        session.execute(delete(DeliveryAttempt).where(DeliveryAttempt.event_id.in_(ids)))
        session.execute(delete(Delivery).where(Delivery.event_id.in_(ids)))
        session.execute(delete(OutboxEvent).where(OutboxEvent.id.in_(ids)))
    return len(ids)


def queue_depth(session: Session) -> QueueDepth:
    outbox = session.scalar(select(func.count()).where(OutboxEvent.dispatched_at.is_(None))) or 0
    pending = (
        session.scalar(
            select(func.count()).select_from(Delivery).where(Delivery.status == DeliveryStatus.PENDING)
        )
        or 0
    )
    return QueueDepth(int(outbox), int(pending))


def dead_lettered_count(session: Session) -> int:
    """Deliveries given up on (dead-lettered), waiting for an operator's replay."""
    query = select(func.count()).select_from(Delivery).where(Delivery.status == DeliveryStatus.DEAD_LETTERED)
    return int(session.scalar(query) or 0)


# Subscriptions ----------------------------------------------------------------------------------


def list_subscriptions(session: Session, resource_id: str | None) -> list[EventSubscription]:
    query = (
        select(EventSubscription)
        .where(EventSubscription.kind == SubscriptionKind.WEBHOOK)
        .order_by(EventSubscription.created_at, EventSubscription.id)
    )
    if resource_id is not None:
        query = query.where(EventSubscription.resource_id == resource_id)
    return list(session.scalars(query))


def find_subscription(
    session: Session, subscription_id: str, resource_id: str | None, *, for_update: bool
) -> EventSubscription | None:
    query = select(EventSubscription).where(
        EventSubscription.id == subscription_id, EventSubscription.kind == SubscriptionKind.WEBHOOK
    )
    if resource_id is not None:
        query = query.where(EventSubscription.resource_id == resource_id)
    if for_update:
        query = query.with_for_update()
    return session.scalar(query)


def lock_subscription(session: Session, subscription_id: str) -> EventSubscription | None:
    return session.get(EventSubscription, subscription_id, with_for_update=True)


def delete_subscription(session: Session, subscription_id: str) -> None:
    session.execute(delete(EventSubscription).where(EventSubscription.id == subscription_id))


def active_subscriptions(session: Session, resource_ids: set[str]) -> list[EventSubscription]:
    """The resources' active webhooks (the subscriptions events fan out to)."""
    return list(
        session.scalars(
            select(EventSubscription).where(
                EventSubscription.resource_id.in_(resource_ids),
                EventSubscription.status == SubscriptionStatus.ACTIVE,
                EventSubscription.kind == SubscriptionKind.WEBHOOK,
            )
        )
    )


def active_subscriptions_by_id(session: Session, subscription_ids: set[str]) -> list[EventSubscription]:
    """Active subscriptions by id, of any kind (the targets of addressed events)."""
    return list(
        session.scalars(
            select(EventSubscription).where(
                EventSubscription.id.in_(subscription_ids),
                EventSubscription.status == SubscriptionStatus.ACTIVE,
            )
        )
    )


def find_callback_subscription(session: Session, resource_id: str, url: str) -> EventSubscription | None:
    return session.scalar(
        select(EventSubscription)
        .where(
            EventSubscription.resource_id == resource_id,
            EventSubscription.kind == SubscriptionKind.CALLBACK,
            EventSubscription.endpoint_url == url,
        )
        .limit(1)
    )


def take_due_validations(session: Session, now: datetime, lease: timedelta, limit: int) -> list[str]:
    """Subscriptions whose handshake is due, leased for ``lease`` (others' locked rows skipped)."""
    ids = list(
        session.scalars(
            select(EventSubscription.id)
            .where(
                EventSubscription.status == SubscriptionStatus.PENDING_VALIDATION,
                EventSubscription.validation_next_at.is_not(None),
                EventSubscription.validation_next_at <= now,
            )
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    if ids:
        set_validation_next_at(session, ids, now + lease)
    return ids


def set_validation_next_at(session: Session, subscription_ids: Sequence[str], at: datetime) -> None:
    session.execute(
        update(EventSubscription)
        .where(EventSubscription.id.in_(list(subscription_ids)))
        .values(validation_next_at=at)
    )


def resume_parked_validations(session: Session, detail_prefix: str, now: datetime) -> int:
    """Hand out now the pending handshakes parked with a status detail starting ``detail_prefix``."""
    result = session.execute(
        update(EventSubscription)
        .where(
            EventSubscription.status == SubscriptionStatus.PENDING_VALIDATION,
            EventSubscription.validation_next_at.is_(None),
            EventSubscription.status_detail.startswith(detail_prefix, autoescape=True),
        )
        .values(validation_next_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def subscription_with_resource_name(session: Session, subscription_id: str) -> SubscriptionRow | None:
    row = session.execute(
        select(EventSubscription, Resource.name)
        .join(Resource, Resource.id == EventSubscription.resource_id)
        .where(EventSubscription.id == subscription_id)
    ).first()
    return None if row is None else SubscriptionRow(row[0], row[1])


# Deliveries -------------------------------------------------------------------------------------


def insert_deliveries(session: Session, rows: list[dict[str, Any]]) -> None:
    session.bulk_insert_mappings(Delivery.__mapper__, rows)


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


def _claimable(now: datetime) -> list[ColumnElement[bool]]:
    return [
        Delivery.status == DeliveryStatus.PENDING,
        Delivery.next_attempt_at <= now + timedelta(seconds=1),
        or_(Delivery.claimed_until.is_(None), Delivery.claimed_until < now),
    ]


def claim(session: Session, delivery_ids: Sequence[str], now: datetime, until: datetime) -> list[str]:
    """Mark the pending, due, unclaimed deliveries among ``delivery_ids`` claimed until ``until``,
    with every other delivery of the batches they belong to (a batch is sent whole, even when two
    tasks carry halves of it); returns their ids.

    Two statements, each by its own index (the ids by primary key, their batches' other rows by
    the partial batch index), rather than one with ``id IN ... OR batch_id IN (subquery)``, for
    which the planner read the table through its due index or sequentially
    (tests/gateway/sms/test_plans.py). The second runs only for deliveries already in a batch
    (retries of batching subscriptions)."""
    values = {"claimed_until": until, "enqueued_until": until}
    claimed = session.execute(
        update(Delivery)
        .where(Delivery.id.in_(list(delivery_ids)), *_claimable(now))
        .values(**values)
        .returning(Delivery.id, Delivery.batch_id)
        .execution_options(synchronize_session=False)
    ).all()
    ids = [row[0] for row in claimed]
    batch_ids = list({row[1] for row in claimed if row[1] is not None})
    if batch_ids:
        ids += session.scalars(
            update(Delivery)
            .where(Delivery.batch_id.in_(batch_ids), Delivery.batch_id.is_not(None), *_claimable(now))
            .values(**values)
            .returning(Delivery.id)
            .execution_options(synchronize_session=False)
        )
    return ids


def set_batch_ids(session: Session, batches: Mapping[str, Sequence[str]]) -> None:
    """Fix the batch of these deliveries (batch id -> delivery ids), one UPDATE per batch."""
    for batch_id, delivery_ids in batches.items():
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(list(delivery_ids)))
            .values(batch_id=batch_id)
            .execution_options(synchronize_session=False)
        )


def claimed_rows(session: Session, delivery_ids: list[str]) -> list[ClaimedRow]:
    """Claimed deliveries with their event, oldest event first (the event id breaks ties, so a
    batch's order is the same on every retry)."""
    d, e = Delivery, OutboxEvent
    rows = session.execute(
        select(
            d.id,
            d.subscription_id,
            d.resource_id,
            d.attempts,
            d.expires_at,
            d.next_attempt_at,
            d.batch_id,
            e.id,
            e.event_type,
            e.subject,
            e.data,
            e.event_time,
            e.created_at,
        )
        .join(e, e.id == d.event_id)
        .where(d.id.in_(delivery_ids))
        .order_by(e.created_at, e.id)
    ).all()
    return [ClaimedRow._make(row) for row in rows]


def subscriptions_with_resource_names(
    session: Session, subscription_ids: set[str]
) -> dict[str, SubscriptionRow]:
    """These subscriptions with their resource's name, by id."""
    rows = session.execute(
        select(EventSubscription, Resource.name)
        .join(Resource, Resource.id == EventSubscription.resource_id)
        .where(EventSubscription.id.in_(subscription_ids))
    ).all()
    return {row[0].id: SubscriptionRow(row[0], row[1]) for row in rows}


def release_claims(session: Session, delivery_ids: Sequence[str]) -> None:
    session.execute(
        update(Delivery)
        .where(Delivery.id.in_(list(delivery_ids)), Delivery.status == DeliveryStatus.PENDING)
        .values(claimed_until=None, enqueued_until=None)
        .execution_options(synchronize_session=False)
    )


def insert_attempts(session: Session, rows: list[dict[str, Any]]) -> None:
    session.execute(insert(DeliveryAttempt), rows)


def update_deliveries(session: Session, changes: Mapping[str, DeliveryChange]) -> None:
    """Deliveries' new states by id; claim and enqueue leases are cleared. Deliveries that change
    alike (a batch's) are updated by one statement over their ids; the rest in one executemany
    UPDATE."""
    by_change: dict[DeliveryChange, list[str]] = {}
    for delivery_id, change in changes.items():
        by_change.setdefault(change, []).append(delivery_id)
    singles = {ids[0]: change for change, ids in by_change.items() if len(ids) == 1}
    for change, ids in by_change.items():
        if len(ids) > 1:
            session.execute(
                update(Delivery)
                .where(Delivery.id.in_(ids))
                .values(
                    status=change.status.value,
                    attempts=change.attempts,
                    next_attempt_at=change.next_attempt_at,
                    finished_at=change.finished_at,
                    dead_letter_reason=change.dead_letter_reason.value if change.dead_letter_reason else None,
                    last_status_code=change.last_status_code,
                    last_error=change.last_error,
                    last_response=change.last_response,
                    claimed_until=None,
                    enqueued_until=None,
                )
                .execution_options(synchronize_session=False)
            )
    if singles:
        _update_each(session, singles)


def _update_each(session: Session, changes: Mapping[str, DeliveryChange]) -> None:
    table = cast(Table, Delivery.__table__)
    rows = [
        {
            "b_id": delivery_id,
            "b_status": change.status.value,
            "b_attempts": change.attempts,
            "b_next": change.next_attempt_at,
            "b_finished": change.finished_at,
            "b_reason": change.dead_letter_reason.value if change.dead_letter_reason else None,
            "b_code": change.last_status_code,
            "b_error": change.last_error,
            "b_response": change.last_response,
        }
        for delivery_id, change in changes.items()
    ]
    session.execute(
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values(
            status=bindparam("b_status"),
            attempts=bindparam("b_attempts"),
            next_attempt_at=bindparam("b_next", type_=UTCDateTime()),
            finished_at=bindparam("b_finished", type_=UTCDateTime()),
            dead_letter_reason=bindparam("b_reason"),
            last_status_code=bindparam("b_code"),
            last_error=bindparam("b_error"),
            last_response=bindparam("b_response"),
            claimed_until=None,
            enqueued_until=None,
        ),
        rows,
    )


def list_deliveries(
    session: Session, subscription_id: str, status: str | None, limit: int
) -> list[DeliveryRow]:
    query = (
        select(Delivery, OutboxEvent)
        .join(OutboxEvent, OutboxEvent.id == Delivery.event_id)
        .where(Delivery.subscription_id == subscription_id)
        .order_by(Delivery.created_at.desc(), Delivery.id)
        .limit(limit)
    )
    if status:
        query = query.where(Delivery.status == status)
    return [DeliveryRow(row[0], row[1]) for row in session.execute(query).all()]


def list_attempts(
    session: Session, subscription_id: str, event_id: str | None, limit: int
) -> list[DeliveryAttempt]:
    query = (
        select(DeliveryAttempt)
        .where(DeliveryAttempt.subscription_id == subscription_id)
        .order_by(DeliveryAttempt.started_at.desc(), DeliveryAttempt.number.desc())
        .limit(limit)
    )
    if event_id:
        query = query.where(DeliveryAttempt.event_id == event_id)
    return list(session.scalars(query))


def lock_dead_letters(
    session: Session, subscription_id: str, event_ids: Sequence[str] | None
) -> list[Delivery]:
    """A subscription's dead-lettered deliveries (all, or those of ``event_ids``), locked."""
    conditions = [
        Delivery.subscription_id == subscription_id,
        Delivery.status == DeliveryStatus.DEAD_LETTERED,
    ]
    if event_ids is not None:
        conditions.append(Delivery.event_id.in_(list(event_ids)))
    return list(session.scalars(select(Delivery).where(and_(*conditions)).with_for_update()))


def events_by_ids(session: Session, event_ids: Sequence[str]) -> list[OutboxEvent]:
    """The outbox events of these ids, oldest first."""
    if not event_ids:
        return []
    query = select(OutboxEvent).where(OutboxEvent.id.in_(event_ids)).order_by(OutboxEvent.created_at)
    return list(session.scalars(query))


def deliveries_of_events(session: Session, event_ids: Sequence[str]) -> list[Delivery]:
    """Every subscription's delivery of these events, oldest first."""
    if not event_ids:
        return []
    query = (
        select(Delivery).where(Delivery.event_id.in_(event_ids)).order_by(Delivery.created_at, Delivery.id)
    )
    return list(session.scalars(query))


def attempts_of_events(session: Session, event_ids: Sequence[str]) -> list[DeliveryAttempt]:
    """The delivery attempts of these events, oldest first."""
    if not event_ids:
        return []
    query = (
        select(DeliveryAttempt)
        .where(DeliveryAttempt.event_id.in_(event_ids))
        .order_by(DeliveryAttempt.started_at, DeliveryAttempt.number)
    )
    return list(session.scalars(query))
