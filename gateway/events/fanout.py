"""Fan-out and scheduling: outbox rows become one delivery per matching, active subscription;
deliveries due again (retries, lost tasks, replays) are found for the broker; old finished
events are purged.

Each function runs in one transaction of the dispatcher (:mod:`gateway.events.dispatcher`),
which sends the deliveries it returns to the broker right after the commit.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from gateway.core.db import Database, new_uuid
from gateway.events import builder, lifecycle, repository
from gateway.events.models import EventSubscription, SubscriptionKind
from gateway.events.repository import ClaimedRow, PendingEvent, QueuedDelivery


@dataclass(frozen=True)
class Dispatched:
    deliveries: list[QueuedDelivery]
    event_types: list[str]  # one entry per outbox row fanned out
    claimed: list[ClaimedRow] = field(default_factory=list)  # taken for an attempt already

    @property
    def delivery_ids(self) -> list[str]:
        return [d.delivery_id for d in self.deliveries]


def dispatch_pending(
    session: Session,
    now: datetime,
    enqueue_lease: timedelta,
    limit: int = 500,
    claim_for: timedelta | None = None,
) -> Dispatched:
    """Turn undispatched outbox rows into deliveries (to enqueue right after the commit).

    With ``claim_for`` (the dispatcher hands its work to its own process's threads), the
    deliveries of subscriptions that do not batch (callbacks, Event Grid's default) are written
    claimed for their first attempt and returned with everything the attempt needs: the thread
    that sends them skips a claim's transaction (two statements, and the wait for a connection
    on a busy database). A batching subscription's deliveries are packed by their claim, as
    before."""
    events = repository.take_undispatched(session, limit, now)
    if not events:
        return Dispatched([], [])
    subscriptions: dict[str, list[EventSubscription]] = {}
    broadcast = {e.resource_id for e in events if e.subscription_id is None}
    for subscription in repository.active_subscriptions(session, broadcast) if broadcast else ():
        subscriptions.setdefault(subscription.resource_id, []).append(subscription)
    addressed_ids = {e.subscription_id for e in events if e.subscription_id is not None}
    addressed = {
        s.id: s
        for s in (repository.active_subscriptions_by_id(session, addressed_ids) if addressed_ids else ())
    }
    enqueued_until = now + enqueue_lease
    rows: list[dict[str, Any]] = []
    to_claim: list[tuple[dict[str, Any], PendingEvent, EventSubscription]] = []
    per_batch: dict[str, int] = {}
    for event in events:
        if event.subscription_id is not None:
            target = addressed.get(event.subscription_id)
            targets = [target] if target is not None and target.resource_id == event.resource_id else []
        else:
            targets = subscriptions.get(event.resource_id, [])
        for subscription in targets:
            if event.subscription_id is None and not _wants(subscription, event):
                continue
            start = lifecycle.created(now, event.created_at, subscription.event_ttl_minutes)
            row = {
                "id": new_uuid(),
                "event_id": event.id,
                "subscription_id": subscription.id,
                "resource_id": event.resource_id,
                "status": start.status.value,
                "attempts": start.attempts,
                "replays": start.replays,
                "next_attempt_at": start.next_attempt_at,
                "enqueued_until": enqueued_until,
                "claimed_until": None,
                "expires_at": start.expires_at,
                "created_at": now,
            }
            if claim_for is not None and not _batches(subscription):
                row["claimed_until"] = row["enqueued_until"] = now + claim_for
                to_claim.append((row, event, subscription))
            rows.append(row)
            per_batch[subscription.id] = subscription.max_events_per_batch
    if rows:
        repository.insert_deliveries(session, rows)
    claimed = _claimed_rows(session, to_claim)
    return Dispatched(
        [
            QueuedDelivery(row["id"], row["subscription_id"], per_batch[row["subscription_id"]])
            for row in rows
            if row["claimed_until"] is None
        ],
        [e.event_type for e in events],
        claimed,
    )


def _batches(subscription: EventSubscription) -> bool:
    return subscription.kind == SubscriptionKind.WEBHOOK and subscription.max_events_per_batch > 1


def _claimed_rows(
    session: Session, claimed: Sequence[tuple[dict[str, Any], PendingEvent, EventSubscription]]
) -> list[ClaimedRow]:
    """The claimed deliveries as a claim returns them (their events' data read in one statement)."""
    if not claimed:
        return []
    bodies = repository.event_bodies(session, list({event.id for _, event, _ in claimed}))
    return [
        ClaimedRow(
            delivery_id=row["id"],
            subscription_id=subscription.id,
            resource_id=event.resource_id,
            attempts=row["attempts"],
            expires_at=row["expires_at"],
            next_attempt_at=row["next_attempt_at"],
            batch_id=None,
            event_id=event.id,
            event_type=event.event_type,
            subject=event.subject,
            data=bodies[event.id].data,
            event_time=bodies[event.id].event_time,
            event_created_at=event.created_at,
            endpoint_url=subscription.endpoint_url,
            delivery_schema=subscription.delivery_schema,
            kind=subscription.kind,
            max_delivery_attempts=subscription.max_delivery_attempts,
            max_events_per_batch=subscription.max_events_per_batch,
            preferred_batch_size_kb=subscription.preferred_batch_size_kb,
            secret=subscription.secret,
            previous_secret=subscription.previous_secret,
            previous_secret_expires_at=subscription.previous_secret_expires_at,
            resource_name=bodies[event.id].resource_name,
        )
        for row, event, subscription in claimed
    ]


def _wants(subscription: EventSubscription, event: PendingEvent) -> bool:
    """A webhook's filters: event type and subject (addressed events skip them)."""
    return event.event_type in subscription.event_types and builder.subject_matches(
        event.subject, subscription.subject_begins_with, subscription.subject_ends_with
    )


def due_deliveries(
    session: Session, now: datetime, enqueue_lease: timedelta, limit: int = 500
) -> list[QueuedDelivery]:
    """Pending deliveries due now that no queued task is believed to cover (retries whose
    backoff ended, tasks lost with the broker, replays)."""
    return repository.take_due_deliveries(session, now, enqueue_lease, limit)


def release_enqueue(session: Session, delivery_ids: Sequence[str], retry_at: datetime) -> None:
    """Sending to the broker failed: let the scheduler try these again at ``retry_at``."""
    if delivery_ids:
        repository.set_enqueued_until(session, delivery_ids, retry_at)


def release_claims(session: Session, delivery_ids: Sequence[str]) -> None:
    """Deliveries claimed at fan-out that no thread attempted: the scheduler sends them soon."""
    if delivery_ids:
        repository.release_claims(session, delivery_ids)


def purge_finished(session: Session, older_than: datetime, limit: int = 1000) -> int:
    """Delete events fanned out before ``older_than`` with no pending delivery (their
    deliveries and attempt logs go with them). Returns how many events were deleted."""
    return repository.purge_finished(session, older_than, limit)


@dataclass(frozen=True)
class Purge:
    purged: int
    more: bool  # the budget ran out with old events left: purge again soon


def purge_finished_within(
    database: Database, older_than: datetime, budget_seconds: float, limit: int = 1000
) -> Purge:
    """:func:`purge_finished` batch after batch, each in its own transaction (short locks),
    until none is left or ``budget_seconds`` are spent. One batch a minute could never keep up
    with a gateway's events (a call makes three or four; an SMS with a report two)."""
    deadline = time.monotonic() + budget_seconds
    purged = 0
    while True:
        with database.session() as session:
            count = purge_finished(session, older_than, limit)
        purged += count
        if count < limit:
            return Purge(purged, more=False)
        if time.monotonic() >= deadline:
            return Purge(purged, more=True)
