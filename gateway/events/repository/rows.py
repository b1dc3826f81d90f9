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


class PendingEvent(NamedTuple):
    """An outbox row as fan-out reads it (no data)."""

    id: str
    resource_id: str
    event_type: str
    subject: str
    subscription_id: str | None
    created_at: datetime


class EventBody(NamedTuple):
    """What fan-out leaves out of an outbox row, for the deliveries it claims at once."""

    data: dict[str, Any]
    event_time: datetime
    resource_name: str


class ClaimedRow(NamedTuple):
    """A claimed delivery with its event and subscription, as plain columns (no ORM object per
    row: the claim of a batch of hundreds spent a third of its time building them)."""

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
    # its subscription and resource (the same on every row of one subscription)
    endpoint_url: str
    delivery_schema: str
    kind: str
    max_delivery_attempts: int
    max_events_per_batch: int
    preferred_batch_size_kb: int
    secret: str
    previous_secret: str | None
    previous_secret_expires_at: datetime | None
    resource_name: str


class SubscriptionRow(NamedTuple):
    subscription: EventSubscription
    resource_name: str


class QueueDepth(NamedTuple):
    outbox: int  # outbox rows not yet fanned out
    pending: int  # deliveries pending
