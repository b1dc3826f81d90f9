"""SQL of the events domain: the outbox, subscriptions, deliveries and the attempt log.

Statements only; the rules that choose the values are in the service modules and, for a
delivery's state, in :mod:`gateway.events.lifecycle`. Rows that several workers may take are
taken with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite serialises writers).

The delivery attempts' statements (due deliveries, claims, batches, recording) are in
:mod:`gateway.events.repository.attempts`, re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Integer, Table, and_, bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from gateway.core.bulk import insert_rows
from gateway.core.db import text_literal
from gateway.events.lifecycle import DeliveryStatus
from gateway.events.models import (
    Delivery,
    DeliveryAttempt,
    EventSubscription,
    OutboxEvent,
    SubscriptionKind,
    SubscriptionStatus,
)
from gateway.events.repository.attempts import (
    insert_attempts as insert_attempts,
)
from gateway.events.repository.attempts import (
    insert_deliveries as insert_deliveries,
)
from gateway.events.repository.attempts import (
    lock_claimable as lock_claimable,
)
from gateway.events.repository.attempts import (
    mark_claimed as mark_claimed,
)
from gateway.events.repository.attempts import (
    release_claims as release_claims,
)
from gateway.events.repository.attempts import (
    set_enqueued_until as set_enqueued_until,
)
from gateway.events.repository.attempts import (
    take_due_deliveries as take_due_deliveries,
)
from gateway.events.repository.attempts import (
    update_deliveries as update_deliveries,
)
from gateway.events.repository.rows import ClaimedRow as ClaimedRow
from gateway.events.repository.rows import DeliveryRow as DeliveryRow
from gateway.events.repository.rows import EventBody as EventBody
from gateway.events.repository.rows import PendingEvent as PendingEvent
from gateway.events.repository.rows import QueuedDelivery as QueuedDelivery
from gateway.events.repository.rows import QueueDepth as QueueDepth
from gateway.events.repository.rows import SubscriptionRow as SubscriptionRow
from gateway.resources.models import Resource

# Outbox -----------------------------------------------------------------------------------------


def insert_events(session: Session, rows: list[dict[str, Any]]) -> None:
    """Outbox rows in one INSERT, no ORM objects (for hot paths)."""
    outbox = OutboxEvent.__table__
    assert isinstance(outbox, Table)
    # Not an executemany: psycopg runs that as a statement per row (the SMPP writer's report
    # events: one per message).
    insert_rows(session, outbox, rows)


_OUTBOX = cast(Table, OutboxEvent.__table__)
# Built once (its cache key too): the dispatcher runs it at every wake-up.
_TAKE_UNDISPATCHED = (
    update(_OUTBOX)
    .where(
        _OUTBOX.c.id.in_(
            select(_OUTBOX.c.id)
            .where(_OUTBOX.c.dispatched_at.is_(None))
            .order_by(_OUTBOX.c.created_at)
            .limit(bindparam("limit", type_=Integer()))
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
    )
    .values(dispatched_at=bindparam("now"))
    .returning(
        _OUTBOX.c.id,
        _OUTBOX.c.resource_id,
        _OUTBOX.c.event_type,
        _OUTBOX.c.subject,
        _OUTBOX.c.subscription_id,
        _OUTBOX.c.created_at,
    )
)


def take_undispatched(session: Session, limit: int, now: datetime) -> list[PendingEvent]:
    """The oldest outbox rows not yet fanned out, marked dispatched at ``now`` in one statement
    (others' locked rows are skipped), oldest first; without their data, which fan-out does not
    read (decoding it was a tenth of a dispatcher pass)."""
    rows = session.execute(_TAKE_UNDISPATCHED, {"limit": limit, "now": now}).all()
    return sorted((PendingEvent._make(row) for row in rows), key=lambda e: (e.created_at, e.id))


_EVENT_BODIES = (
    select(_OUTBOX.c.id, _OUTBOX.c.data, _OUTBOX.c.event_time, Resource.name)
    .join(Resource, Resource.id == _OUTBOX.c.resource_id)
    .where(_OUTBOX.c.id.in_(bindparam("ids", expanding=True)))
)


def event_bodies(session: Session, event_ids: Sequence[str]) -> dict[str, EventBody]:
    """The data, time and resource name of outbox rows, by id (one statement)."""
    rows = session.execute(_EVENT_BODIES, {"ids": list(event_ids)})
    return {row[0]: EventBody(row[1], row[2], row[3]) for row in rows}


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
            # Oldest first, in ix_event_outbox_pending's order: without statistics the planner
            # takes a third of the table for old and scans it whole to fill the LIMIT.
            .order_by(OutboxEvent.dispatched_at)
            .limit(limit)
        )
    )
    if ids:
        # Deliveries and their attempt log go by the foreign keys' ON DELETE CASCADE: an indexed
        # lookup per row. Deleted by a list of 1,000 event ids, a planner without statistics
        # read every delivery, and the log by event_id (no index) was read whole every time.
        session.execute(delete(OutboxEvent).where(OutboxEvent.id.in_(ids)))
    return len(ids)


def queue_depth(session: Session) -> QueueDepth:
    outbox = session.scalar(select(func.count()).where(OutboxEvent.dispatched_at.is_(None))) or 0
    pending = (
        session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(Delivery.status == text_literal(DeliveryStatus.PENDING.value))
        )
        or 0
    )
    return QueueDepth(int(outbox), int(pending))


def dead_lettered_count(session: Session) -> int:
    """Deliveries given up on (dead-lettered), waiting for an operator's replay."""
    dead = text_literal(DeliveryStatus.DEAD_LETTERED.value)
    query = select(func.count()).select_from(Delivery).where(Delivery.status == dead)
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


_ACTIVE_WEBHOOKS_OF = select(EventSubscription).where(
    EventSubscription.resource_id.in_(bindparam("resource_ids", expanding=True)),
    EventSubscription.status == SubscriptionStatus.ACTIVE,
    EventSubscription.kind == SubscriptionKind.WEBHOOK,
)
_ACTIVE_BY_ID = select(EventSubscription).where(
    EventSubscription.id.in_(bindparam("ids", expanding=True)),
    EventSubscription.status == SubscriptionStatus.ACTIVE,
)


def active_subscriptions(session: Session, resource_ids: set[str]) -> list[EventSubscription]:
    """The resources' active webhooks (the subscriptions events fan out to)."""
    return list(session.scalars(_ACTIVE_WEBHOOKS_OF, {"resource_ids": list(resource_ids)}))


def active_subscriptions_by_id(session: Session, subscription_ids: set[str]) -> list[EventSubscription]:
    """Active subscriptions by id, of any kind (the targets of addressed events)."""
    return list(session.scalars(_ACTIVE_BY_ID, {"ids": list(subscription_ids)}))


# Built once: every :answer and createCall looks its callback subscription up.
_CALLBACK_SUBSCRIPTION_ID = (
    select(EventSubscription.id)
    .where(
        EventSubscription.resource_id == bindparam("resource_id"),
        EventSubscription.kind == SubscriptionKind.CALLBACK.value,
        EventSubscription.endpoint_url == bindparam("url"),
    )
    .limit(1)
)


def find_callback_subscription(session: Session, resource_id: str, url: str) -> str | None:
    """The id of the resource's callback subscription to ``url`` (the id only: loading the whole
    row as an object was a tenth of :answer's CPU in the API)."""
    found: str | None = session.scalar(_CALLBACK_SUBSCRIPTION_ID, {"resource_id": resource_id, "url": url})
    return found


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
