"""Fan-out and scheduling: outbox rows become one delivery per matching, active subscription;
deliveries due again (retries, lost tasks, replays) are found for the broker; old finished
events are purged.

Each function runs in one transaction of the dispatcher (:mod:`gateway.events.dispatcher`),
which sends the deliveries it returns to the broker right after the commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from gateway.core.db import new_uuid
from gateway.events import builder, lifecycle, repository
from gateway.events.models import EventSubscription
from gateway.events.repository import PendingEvent, QueuedDelivery


@dataclass(frozen=True)
class Dispatched:
    deliveries: list[QueuedDelivery]
    event_types: list[str]  # one entry per outbox row fanned out

    @property
    def delivery_ids(self) -> list[str]:
        return [d.delivery_id for d in self.deliveries]


def dispatch_pending(
    session: Session, now: datetime, enqueue_lease: timedelta, limit: int = 500
) -> Dispatched:
    """Turn undispatched outbox rows into deliveries (to enqueue right after the commit)."""
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
            rows.append(
                {
                    "id": new_uuid(),
                    "event_id": event.id,
                    "subscription_id": subscription.id,
                    "resource_id": event.resource_id,
                    "status": start.status.value,
                    "attempts": start.attempts,
                    "replays": start.replays,
                    "next_attempt_at": start.next_attempt_at,
                    "enqueued_until": enqueued_until,
                    "expires_at": start.expires_at,
                    "created_at": now,
                }
            )
            per_batch[subscription.id] = subscription.max_events_per_batch
    if rows:
        repository.insert_deliveries(session, rows)
    return Dispatched(
        [
            QueuedDelivery(row["id"], row["subscription_id"], per_batch[row["subscription_id"]])
            for row in rows
        ],
        [e.event_type for e in events],
    )


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


def purge_finished(session: Session, older_than: datetime, limit: int = 1000) -> int:
    """Delete events fanned out before ``older_than`` with no pending delivery (their
    deliveries and attempt logs go with them). Returns how many events were deleted."""
    return repository.purge_finished(session, older_than, limit)
