"""A subscription's deliveries (the dead-letter store among them), its attempt log, and replay
of dead letters."""

from __future__ import annotations

from collections.abc import Sequence

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
    session.flush()
    log.info("dead letters replayed", subscription_id=subscription.id, count=len(rows))
    return [d.event_id for d in rows]
