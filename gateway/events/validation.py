"""The validation handshake's rules: which handshakes are due, what one needs, what its result
does to the subscription, and the endpoint's confirmation by GET on the ``validationUrl``.

The HTTP exchange itself is :mod:`gateway.events.handshake`.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import structlog
from sqlalchemy.orm import Session

from gateway.core.db import utcnow
from gateway.core.errors import Conflict, NotFound
from gateway.events import repository
from gateway.events.builder import DeliverySchema, TopicNamer
from gateway.events.models import DeliveryAttempt, EventSubscription, SubscriptionStatus
from gateway.events.subscriptions import signing_secrets

log = structlog.get_logger("trunkline.events")

MAX_VALIDATION_ATTEMPTS = 8
# How long a manual validation (GET on validationUrl) stays possible.
MANUAL_VALIDATION_WINDOW = timedelta(hours=2)


class HandshakeResult(StrEnum):
    """What one handshake showed (also the label of the validations metric)."""

    VALIDATED = "validated"
    MANUAL = "pending"  # accepted without echoing the code: waiting for a GET on validationUrl
    FAILED = "failed"


class HandshakeOutcome(StrEnum):
    """A handshake's ``outcome`` in the attempt log."""

    VALIDATED = "validated"
    FAILED = "validationFailed"


# A handshake the worker's own SSRF guard refused waits (it is no fault of the endpoint's):
# its status detail starts with this, and a worker starting hands it out again
# (resume_refused_validations), as `trunkline events validate ID` does.
REFUSED_BY_WORKER = "This worker refused to contact the endpoint:"


@dataclass(frozen=True)
class Verdict:
    result: HandshakeResult
    detail: str
    # The worker's policy refused the destination: the handshake waits instead of failing.
    refused: bool = False


@dataclass(frozen=True)
class ValidationWork:
    subscription_id: str
    resource_id: str
    endpoint_url: str
    delivery_schema: DeliverySchema
    validation_code: str
    topic: str
    secrets: list[str]


def due_validations(session: Session, now: datetime, lease: timedelta, limit: int = 50) -> list[str]:
    """Subscriptions whose handshake is due, leased for ``lease`` while a worker runs it."""
    return repository.take_due_validations(session, now, lease, limit)


def retry_validations_soon(session: Session, subscription_ids: Sequence[str], now: datetime) -> None:
    """Their tasks could not be sent to the broker: hand them out again in a second."""
    repository.set_validation_next_at(session, subscription_ids, now + timedelta(seconds=1))


def validation_work(session: Session, subscription_id: str, topic_of: TopicNamer) -> ValidationWork | None:
    """What a handshake needs, or None if the subscription is gone or no longer pending."""
    row = repository.subscription_with_resource_name(session, subscription_id)
    if row is None:
        return None
    subscription = row.subscription
    if subscription.status != SubscriptionStatus.PENDING_VALIDATION:
        return None
    return ValidationWork(
        subscription_id=subscription.id,
        resource_id=subscription.resource_id,
        endpoint_url=subscription.endpoint_url,
        delivery_schema=DeliverySchema(subscription.delivery_schema),
        validation_code=subscription.validation_code,
        topic=topic_of(row.resource_name),
        secrets=signing_secrets(subscription, utcnow()),
    )


def record_validation(
    session: Session, work: ValidationWork, verdict: Verdict, *, status_code: int | None, latency_ms: int
) -> SubscriptionStatus | None:
    """Apply one handshake's verdict; returns the subscription's new status (None: deleted)."""
    subscription = repository.lock_subscription(session, work.subscription_id)
    if subscription is None:
        return None
    if subscription.status != SubscriptionStatus.PENDING_VALIDATION:
        return SubscriptionStatus(subscription.status)
    if subscription.validation_code != work.validation_code:
        return SubscriptionStatus(subscription.status)  # a newer handshake started meanwhile
    now = utcnow()
    validated = verdict.result is HandshakeResult.VALIDATED
    detail = verdict.detail
    subscription.validation_attempts += 1
    session.add(
        DeliveryAttempt(
            subscription_id=subscription.id,
            delivery_id=None,
            event_id=None,
            number=subscription.validation_attempts,
            started_at=now - timedelta(milliseconds=latency_ms),
            status_code=status_code,
            latency_ms=latency_ms,
            error=None if validated else detail,
            outcome=(HandshakeOutcome.VALIDATED if validated else HandshakeOutcome.FAILED).value,
        )
    )
    if validated:
        _activate(subscription, now, detail)
    elif verdict.result is HandshakeResult.MANUAL:
        subscription.status_detail = detail
        subscription.validation_next_at = None
    elif verdict.refused:
        subscription.status_detail = (
            f"{REFUSED_BY_WORKER} {detail}. The handshake waits: it is tried again when a worker starts "
            f"(start it with that setting), or run `trunkline events validate {subscription.id}`."
        )
        subscription.validation_next_at = None
    elif subscription.validation_attempts >= MAX_VALIDATION_ATTEMPTS:
        subscription.status = SubscriptionStatus.VALIDATION_FAILED.value
        subscription.status_detail = (
            f"Validation failed after {subscription.validation_attempts} tries: {detail}"
        )
        subscription.validation_next_at = None
    else:
        delay = min(60.0, 2.0**subscription.validation_attempts)
        subscription.status_detail = (
            f"Validation not yet successful (try {subscription.validation_attempts}): {detail}"
        )
        subscription.validation_next_at = now + timedelta(seconds=delay)
    subscription.updated_at = now
    session.flush()
    log.info(
        "validation handshake",
        subscription_id=subscription.id,
        status=subscription.status,
        detail=subscription.status_detail,
    )
    return SubscriptionStatus(subscription.status)


def resume_refused_validations(session: Session, now: datetime) -> int:
    """Hand out now every handshake a worker's SSRF guard refused (a starting worker may have
    been given the setting that allows it); how many."""
    return repository.resume_parked_validations(session, REFUSED_BY_WORKER, now)


def _activate(subscription: EventSubscription, now: datetime, detail: str) -> None:
    subscription.status = SubscriptionStatus.ACTIVE.value
    subscription.status_detail = detail
    subscription.validated_at = now
    subscription.validation_next_at = None


def validate_by_url(session: Session, subscription_id: str, code: str) -> EventSubscription:
    """The endpoint confirmed by GET on the ``validationUrl`` it was sent."""
    subscription = repository.lock_subscription(session, subscription_id)
    if subscription is None or not secrets.compare_digest(subscription.validation_code, code):
        raise NotFound("No such validation request.", "code", code="ValidationNotFound")
    if subscription.status == SubscriptionStatus.ACTIVE:
        return subscription
    if (
        subscription.status != SubscriptionStatus.PENDING_VALIDATION
        or utcnow() - subscription.updated_at > MANUAL_VALIDATION_WINDOW
    ):
        raise Conflict("This validation request has expired; start a new one.", code="ValidationExpired")
    _activate(subscription, utcnow(), "Validated by a GET on validationUrl.")
    subscription.updated_at = utcnow()
    session.flush()
    return subscription
