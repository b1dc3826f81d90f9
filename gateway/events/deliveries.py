"""Claiming deliveries for an attempt, giving back those not attempted, recording the results.

A claim is a lease (``claimed_until``) on pending, due rows, so a delivery is attempted by one
worker at a time; results are written in one statement of each kind, with the row changes
chosen by :mod:`gateway.events.lifecycle`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from gateway.core.db import new_uuid
from gateway.events import lifecycle, repository
from gateway.events.builder import DeliverySchema, Event, TopicNamer
from gateway.events.lifecycle import AttemptResult, Decision
from gateway.events.models import SubscriptionKind
from gateway.events.subscriptions import signing_secrets


@dataclass(frozen=True)
class DeliveryWork:
    delivery_id: str
    subscription_id: str
    resource_id: str
    event: Event
    event_created_at: datetime
    endpoint_url: str
    delivery_schema: DeliverySchema
    topic: str
    secrets: list[str]
    kind: SubscriptionKind
    attempt: int  # this attempt's number, from 1
    max_attempts: int
    expires_at: datetime
    next_attempt_at: datetime


@dataclass(frozen=True)
class Finished:
    """One finished attempt (or an expiry before any attempt), ready to be recorded."""

    work: DeliveryWork
    result: AttemptResult | None  # None: expired before it could be attempted
    decision: Decision
    started_at: datetime
    finished_at: datetime


def claim(
    session: Session, delivery_ids: Sequence[str], now: datetime, claim_for: timedelta, topic_of: TopicNamer
) -> list[DeliveryWork]:
    """Take the pending, due deliveries among ``delivery_ids`` for one attempt each.

    Those already finished, not yet due, or claimed by another worker are left out.
    """
    claimed = repository.claim(session, delivery_ids, now, now + claim_for)
    if not claimed:
        return []
    return [
        DeliveryWork(
            delivery_id=delivery.id,
            subscription_id=subscription.id,
            resource_id=delivery.resource_id,
            event=Event(
                id=outbox.id,
                event_type=outbox.event_type,
                subject=outbox.subject,
                data=outbox.data,
                event_time=outbox.event_time,
            ),
            event_created_at=outbox.created_at,
            endpoint_url=subscription.endpoint_url,
            delivery_schema=DeliverySchema(subscription.delivery_schema),
            topic=topic_of(resource_name),
            secrets=signing_secrets(subscription, now),
            kind=SubscriptionKind(subscription.kind),
            attempt=delivery.attempts + 1,
            max_attempts=subscription.max_delivery_attempts,
            expires_at=delivery.expires_at,
            next_attempt_at=delivery.next_attempt_at,
        )
        for delivery, outbox, subscription, resource_name in repository.claimed_rows(session, claimed)
    ]


def release(session: Session, delivery_ids: Sequence[str]) -> None:
    """Give back claimed deliveries that were not attempted (the scheduler re-enqueues them)."""
    if delivery_ids:
        repository.release_claims(session, delivery_ids)


def record(session: Session, outcomes: Sequence[Finished]) -> None:
    """Store the attempts and the deliveries' new states, one statement of each kind."""
    if not outcomes:
        return
    attempts = [
        {
            "id": new_uuid(),
            "delivery_id": o.work.delivery_id,
            "subscription_id": o.work.subscription_id,
            "event_id": o.work.event.id,
            "number": o.work.attempt,
            "started_at": o.started_at,
            "status_code": o.result.status_code,
            "latency_ms": o.result.latency_ms,
            "error": o.result.error,
            "outcome": o.decision.outcome.value,
        }
        for o in outcomes
        if o.result is not None
    ]
    if attempts:
        repository.insert_attempts(session, attempts)
    changes = {
        o.work.delivery_id: lifecycle.after_attempt(o.work, o.result, o.decision, o.finished_at)
        for o in outcomes
    }
    repository.update_deliveries(session, changes)
