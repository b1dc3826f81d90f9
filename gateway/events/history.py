"""A subscription's deliveries (the dead-letter store among them), its attempt log, and replay
of dead letters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog
from sqlalchemy.orm import Session

from gateway.core.db import utcnow
from gateway.events import lifecycle, repository
from gateway.events.models import DeliveryAttempt
from gateway.events.repository import DeliveryRow
from gateway.events.subscriptions import get_subscription

log = structlog.get_logger("trunkline.events")


def list_deliveries(
    session: Session,
    subscription_id: str,
    *,
    status: str | None = None,
    limit: int = 100,
) -> list[DeliveryRow]:
    """Newest first, each with its event; ``status`` deadLettered lists the dead-letter store."""
    return repository.list_deliveries(session, subscription_id, status, limit)


def list_attempts(
    session: Session, subscription_id: str, *, event_id: str | None = None, limit: int = 100
) -> list[DeliveryAttempt]:
    """Delivery attempts and handshakes, newest first."""
    return repository.list_attempts(session, subscription_id, event_id, limit)


def event_history(session: Session, event_ids: Sequence[str]) -> list[dict[str, Any]]:
    """These events (as far as the outbox still holds them), each with its deliveries to the
    subscriptions and their attempts: what another domain shows of what it published."""
    events = repository.events_by_ids(session, event_ids)
    deliveries: dict[str, list[dict[str, Any]]] = {}
    attempts: dict[str | None, list[dict[str, Any]]] = {}
    for attempt in repository.attempts_of_events(session, event_ids):
        attempts.setdefault(attempt.delivery_id, []).append(
            {
                "number": attempt.number,
                "at": attempt.started_at,
                "statusCode": attempt.status_code,
                "outcome": attempt.outcome,
                "error": attempt.error,
            }
        )
    for delivery in repository.deliveries_of_events(session, event_ids):
        deliveries.setdefault(delivery.event_id, []).append(
            {
                "id": delivery.id,
                "subscriptionId": delivery.subscription_id,
                "status": delivery.status,
                "attempts": delivery.attempts,
                "createdAt": delivery.created_at,
                "finishedAt": delivery.finished_at,
                "lastStatusCode": delivery.last_status_code,
                "lastError": delivery.last_error,
                "deadLetterReason": delivery.dead_letter_reason,
                "attemptLog": attempts.get(delivery.id, []),
            }
        )
    return [
        {
            "id": event.id,
            "type": event.event_type,
            "subject": event.subject,
            "eventTime": event.event_time,
            "createdAt": event.created_at,
            "dispatchedAt": event.dispatched_at,
            "deliveries": deliveries.get(event.id, []),
        }
        for event in events
    ]


def replay(session: Session, subscription_id: str, event_ids: Sequence[str] | None = None) -> list[str]:
    """Put dead-lettered deliveries of a subscription back to pending (all, or those events).

    Returns the replayed event ids. Each gets a fresh attempt budget and time to live; the event
    id is unchanged so receivers still deduplicate.
    """
    subscription = get_subscription(session, subscription_id)
    now = utcnow()
    rows = repository.lock_dead_letters(session, subscription.id, event_ids)
    change = lifecycle.replayed(now, subscription.event_ttl_minutes)
    for delivery in rows:
        delivery.status = change.status.value
        delivery.attempts = change.attempts
        delivery.next_attempt_at = change.next_attempt_at
        delivery.enqueued_until = None
        delivery.claimed_until = None
        delivery.finished_at = change.finished_at
        delivery.dead_letter_reason = change.dead_letter_reason
        delivery.expires_at = change.expires_at
        delivery.replays += 1
        # A replay is a new delivery: the events form new batches (a replay of a few events of a
        # dead-lettered batch would otherwise re-send a different body under the old webhook-id).
        delivery.batch_id = None
    session.flush()
    log.info("dead letters replayed", subscription_id=subscription.id, count=len(rows))
    return [d.event_id for d in rows]
