"""The rows the events repository returns (named tuples of columns and ORM objects)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from gateway.events.models import Delivery, EventSubscription, OutboxEvent


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
