"""Rules for events: the publish seam, subscriptions, fan-out, claiming and recording deliveries.

Everything here takes a SQLAlchemy session; HTTP and Celery live in :mod:`gateway.events.tasks`.

The publish seam, for producers (SMS, voice)::

    from gateway.events.service import publish

    with database.session() as session:
        message.status = "delivered"           # the state change ...
        publish(                                # ... and its event, in the same transaction
            session,
            resource_id=message.resource_id,
            event_type="Microsoft.Communication.SMSDeliveryReportReceived",
            subject=phone_subject(message.to),
            data=sms_delivery_report_data(...),
        )

If the transaction rolls back, the event never existed; once it commits, it is delivered at
least once to every matching, validated subscription (same id on every retry).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import structlog
from sqlalchemy import Table, and_, bindparam, delete, insert, or_, select, update
from sqlalchemy.orm import Session

from gateway.core.db import UTCDateTime, new_uuid, utcnow
from gateway.core.errors import BadRequest, Conflict, NotFound
from gateway.events import builder, signing
from gateway.events.backoff import Backoff, Outcome, classify_status
from gateway.events.builder import DeliverySchema, Event
from gateway.events.models import Delivery, DeliveryAttempt, EventSubscription, OutboxEvent
from gateway.events.ssrf import DestinationRefused, Policy, Resolver, check_destination, system_resolver
from gateway.resources.models import Resource

log = structlog.get_logger("trunkline.events")

PENDING_VALIDATION = "pendingValidation"
ACTIVE = "active"
VALIDATION_FAILED = "validationFailed"

PENDING = "pending"
DELIVERED = "delivered"
DEAD_LETTERED = "deadLettered"

MAX_VALIDATION_ATTEMPTS = 8
# How long a manual validation (GET on validationUrl) stays possible.
MANUAL_VALIDATION_WINDOW = timedelta(hours=2)
MAX_STORED_RESPONSE = 4096


# Publishing -------------------------------------------------------------------------------------


def publish(
    session: Session,
    *,
    resource_id: str,
    event_type: str,
    subject: str,
    data: dict[str, Any],
    event_time: datetime | None = None,
    event_id: str | None = None,
) -> str:
    """Write an event to the outbox in the caller's transaction and return its id.

    ``data`` must be JSON-serialisable and already in the ACS shape for ``event_type`` (see
    :mod:`gateway.events.builder`). Nothing is sent until the caller commits.
    """
    if not event_type:
        raise ValueError("event_type is required")
    if event_time is not None and event_time.tzinfo is None:
        raise ValueError("event_time must be timezone-aware")
    json.dumps(data)  # fail in the producer, not in the worker
    event = OutboxEvent(
        id=event_id or new_uuid(),
        resource_id=resource_id,
        event_type=event_type,
        subject=subject,
        data=data,
        event_time=event_time or utcnow(),
        created_at=utcnow(),
    )
    # No flush: the row goes out with the caller's other writes (batched if there are many).
    session.add(event)
    return event.id


@dataclass(frozen=True, slots=True)
class NewEvent:
    """One event for :func:`publish_many`: what :func:`publish` takes, id and time required."""

    resource_id: str
    event_type: str
    subject: str
    data: dict[str, Any]
    event_time: datetime
    event_id: str


def publish_many(session: Session, events: Sequence[NewEvent]) -> None:
    """:func:`publish` for many events at once: one INSERT, no ORM objects (for hot paths)."""
    if not events:
        return
    now = utcnow()
    rows = []
    for event in events:
        if not event.event_type:
            raise ValueError("event_type is required")
        if event.event_time.tzinfo is None:
            raise ValueError("event_time must be timezone-aware")
        json.dumps(event.data)  # fail in the producer, not in the worker
        rows.append(
            {
                "id": event.event_id,
                "resource_id": event.resource_id,
                "event_type": event.event_type,
                "subject": event.subject,
                "data": event.data,
                "event_time": event.event_time,
                "created_at": now,
            }
        )
    outbox = OutboxEvent.__table__
    assert isinstance(outbox, Table)
    session.execute(insert(outbox), rows)


# Subscriptions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubscriptionSpec:
    endpoint_url: str
    event_types: Sequence[str]
    delivery_schema: DeliverySchema = DeliverySchema.EVENT_GRID
    subject_begins_with: str | None = None
    subject_ends_with: str | None = None
    max_delivery_attempts: int | None = None
    event_ttl_minutes: int | None = None


@dataclass(frozen=True)
class Limits:
    """Defaults and bounds from settings."""

    max_delivery_attempts: int = 30
    event_ttl_minutes: int = 1440
    rotation_overlap: timedelta = timedelta(hours=24)


def check_endpoint(url: str, policy: Policy, resolver: Resolver = system_resolver) -> None:
    try:
        check_destination(url, policy, resolver)
    except DestinationRefused as exc:
        raise BadRequest(
            f"The endpoint is not allowed: {exc.reason}.", "endpointUrl", code="InvalidEndpoint"
        ) from exc


def _check_types(event_types: Sequence[str]) -> list[str]:
    types = list(dict.fromkeys(event_types))
    if not types:
        raise BadRequest("includedEventTypes needs at least one event type.", "includedEventTypes")
    unknown = [t for t in types if t not in builder.KNOWN_EVENT_TYPES]
    if unknown:
        raise BadRequest(
            f"Unsupported event type(s): {', '.join(unknown)}. Supported: "
            f"{', '.join(builder.KNOWN_EVENT_TYPES)}.",
            "includedEventTypes",
            code="InvalidEventType",
        )
    return types


def create_subscription(
    session: Session,
    resource_id: str,
    spec: SubscriptionSpec,
    policy: Policy,
    limits: Limits,
    resolver: Resolver = system_resolver,
) -> EventSubscription:
    types = _check_types(spec.event_types)
    check_endpoint(spec.endpoint_url, policy, resolver)
    attempts = spec.max_delivery_attempts or limits.max_delivery_attempts
    ttl = spec.event_ttl_minutes or limits.event_ttl_minutes
    if not 1 <= attempts <= 30:
        raise BadRequest("maxDeliveryAttempts must be between 1 and 30.", "maxDeliveryAttempts")
    if not 1 <= ttl <= 1440:
        raise BadRequest("eventTimeToLiveInMinutes must be between 1 and 1440.", "eventTimeToLiveInMinutes")
    now = utcnow()
    subscription = EventSubscription(
        resource_id=resource_id,
        endpoint_url=spec.endpoint_url,
        event_types=types,
        subject_begins_with=spec.subject_begins_with or None,
        subject_ends_with=spec.subject_ends_with or None,
        delivery_schema=DeliverySchema(spec.delivery_schema).value,
        max_delivery_attempts=attempts,
        event_ttl_minutes=ttl,
        secret=signing.generate_secret(),
        status=PENDING_VALIDATION,
        status_detail="Waiting for the endpoint to answer the validation handshake.",
        validation_code=secrets.token_hex(16),
        validation_attempts=0,
        validation_next_at=now,
        created_at=now,
        updated_at=now,
    )
    session.add(subscription)
    session.flush()
    log.info(
        "event subscription created",
        subscription_id=subscription.id,
        resource_id=resource_id,
        endpoint=spec.endpoint_url,
    )
    return subscription


def list_subscriptions(session: Session, resource_id: str | None = None) -> list[EventSubscription]:
    query = select(EventSubscription).order_by(EventSubscription.created_at, EventSubscription.id)
    if resource_id is not None:
        query = query.where(EventSubscription.resource_id == resource_id)
    return list(session.scalars(query))


def get_subscription(
    session: Session, subscription_id: str, resource_id: str | None = None, *, for_update: bool = False
) -> EventSubscription:
    query = select(EventSubscription).where(EventSubscription.id == subscription_id)
    if resource_id is not None:
        query = query.where(EventSubscription.resource_id == resource_id)
    if for_update:
        query = query.with_for_update()
    subscription = session.scalar(query)
    if subscription is None:
        raise NotFound(
            f"No event subscription '{subscription_id}'.", "subscriptionId", code="SubscriptionNotFound"
        )
    return subscription


def delete_subscription(session: Session, subscription_id: str, resource_id: str | None = None) -> None:
    subscription = get_subscription(session, subscription_id, resource_id)
    session.execute(delete(EventSubscription).where(EventSubscription.id == subscription.id))
    log.info("event subscription deleted", subscription_id=subscription.id)


@dataclass(frozen=True)
class SubscriptionUpdate:
    """Fields to change; None leaves a field as it is ("" clears a subject filter)."""

    endpoint_url: str | None = None
    event_types: Sequence[str] | None = None
    delivery_schema: DeliverySchema | None = None
    subject_begins_with: str | None = None
    subject_ends_with: str | None = None
    max_delivery_attempts: int | None = None
    event_ttl_minutes: int | None = None


def update_subscription(
    session: Session,
    subscription_id: str,
    change: SubscriptionUpdate,
    policy: Policy,
    resource_id: str | None = None,
    resolver: Resolver = system_resolver,
) -> EventSubscription:
    """Change a subscription. A new endpoint or schema must pass the handshake again (nothing is
    delivered to it until then); deliveries already pending go to the new endpoint."""
    subscription = get_subscription(session, subscription_id, resource_id, for_update=True)
    revalidate_needed = False
    if change.event_types is not None:
        subscription.event_types = _check_types(change.event_types)
    if change.endpoint_url is not None and change.endpoint_url != subscription.endpoint_url:
        check_endpoint(change.endpoint_url, policy, resolver)
        subscription.endpoint_url = change.endpoint_url
        revalidate_needed = True
    if change.delivery_schema is not None and change.delivery_schema.value != subscription.delivery_schema:
        subscription.delivery_schema = DeliverySchema(change.delivery_schema).value
        revalidate_needed = True
    if change.subject_begins_with is not None:
        subscription.subject_begins_with = change.subject_begins_with or None
    if change.subject_ends_with is not None:
        subscription.subject_ends_with = change.subject_ends_with or None
    if change.max_delivery_attempts is not None:
        if not 1 <= change.max_delivery_attempts <= 30:
            raise BadRequest("maxDeliveryAttempts must be between 1 and 30.", "maxDeliveryAttempts")
        subscription.max_delivery_attempts = change.max_delivery_attempts
    if change.event_ttl_minutes is not None:
        if not 1 <= change.event_ttl_minutes <= 1440:
            raise BadRequest(
                "eventTimeToLiveInMinutes must be between 1 and 1440.", "eventTimeToLiveInMinutes"
            )
        subscription.event_ttl_minutes = change.event_ttl_minutes
    subscription.updated_at = utcnow()
    session.flush()
    if revalidate_needed:
        return revalidate(session, subscription.id, resource_id)
    return subscription


def rotate_secret(
    session: Session, subscription_id: str, limits: Limits, resource_id: str | None = None
) -> EventSubscription:
    """New secret; the old one keeps signing alongside it for ``limits.rotation_overlap``."""
    subscription = get_subscription(session, subscription_id, resource_id, for_update=True)
    now = utcnow()
    subscription.previous_secret = subscription.secret
    subscription.previous_secret_expires_at = now + limits.rotation_overlap
    subscription.secret = signing.generate_secret()
    subscription.updated_at = now
    session.flush()
    return subscription


def revalidate(session: Session, subscription_id: str, resource_id: str | None = None) -> EventSubscription:
    """Start the handshake again (after fixing the endpoint)."""
    subscription = get_subscription(session, subscription_id, resource_id, for_update=True)
    now = utcnow()
    subscription.status = PENDING_VALIDATION
    subscription.status_detail = "Waiting for the endpoint to answer the validation handshake."
    subscription.validation_code = secrets.token_hex(16)
    subscription.validation_attempts = 0
    subscription.validation_next_at = now
    subscription.updated_at = now
    session.flush()
    return subscription


def signing_secrets(subscription: EventSubscription, now: datetime) -> list[str]:
    found = [subscription.secret]
    expires = subscription.previous_secret_expires_at
    if subscription.previous_secret and expires is not None and expires > now:
        found.append(subscription.previous_secret)
    return found


# Validation handshake ---------------------------------------------------------------------------


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
    ids = list(
        session.scalars(
            select(EventSubscription.id)
            .where(
                EventSubscription.status == PENDING_VALIDATION,
                EventSubscription.validation_next_at.is_not(None),
                EventSubscription.validation_next_at <= now,
            )
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    if ids:
        session.execute(
            update(EventSubscription)
            .where(EventSubscription.id.in_(ids))
            .values(validation_next_at=now + lease)
        )
    return ids


def validation_work(session: Session, subscription_id: str, topic_of: TopicNamer) -> ValidationWork | None:
    row = session.execute(
        select(EventSubscription, Resource.name)
        .join(Resource, Resource.id == EventSubscription.resource_id)
        .where(EventSubscription.id == subscription_id)
    ).first()
    if row is None:
        return None
    subscription, resource_name = row
    if subscription.status != PENDING_VALIDATION:
        return None
    return ValidationWork(
        subscription_id=subscription.id,
        resource_id=subscription.resource_id,
        endpoint_url=subscription.endpoint_url,
        delivery_schema=DeliverySchema(subscription.delivery_schema),
        validation_code=subscription.validation_code,
        topic=topic_of(resource_name),
        secrets=signing_secrets(subscription, utcnow()),
    )


def record_validation(
    session: Session,
    work: ValidationWork,
    *,
    validated: bool,
    detail: str,
    status_code: int | None,
    latency_ms: int,
    manual_possible: bool = False,
) -> str:
    """Apply one handshake result; returns the subscription's new status."""
    subscription = session.get(EventSubscription, work.subscription_id, with_for_update=True)
    if subscription is None or subscription.status != PENDING_VALIDATION:
        return subscription.status if subscription else "deleted"
    if subscription.validation_code != work.validation_code:
        return subscription.status  # a newer handshake started meanwhile
    now = utcnow()
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
            outcome="validated" if validated else "validationFailed",
        )
    )
    if validated:
        _activate(subscription, now, detail)
    elif manual_possible:
        subscription.status_detail = detail
        subscription.validation_next_at = None
    elif subscription.validation_attempts >= MAX_VALIDATION_ATTEMPTS:
        subscription.status = VALIDATION_FAILED
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
    return subscription.status


def _activate(subscription: EventSubscription, now: datetime, detail: str) -> None:
    subscription.status = ACTIVE
    subscription.status_detail = detail
    subscription.validated_at = now
    subscription.validation_next_at = None


def validate_by_url(session: Session, subscription_id: str, code: str) -> EventSubscription:
    """The endpoint confirmed by GET on the ``validationUrl`` it was sent."""
    subscription = session.get(EventSubscription, subscription_id, with_for_update=True)
    if subscription is None or not secrets.compare_digest(subscription.validation_code, code):
        raise NotFound("No such validation request.", "code", code="ValidationNotFound")
    if subscription.status == ACTIVE:
        return subscription
    if (
        subscription.status != PENDING_VALIDATION
        or utcnow() - subscription.updated_at > MANUAL_VALIDATION_WINDOW
    ):
        raise Conflict("This validation request has expired; start a new one.", code="ValidationExpired")
    _activate(subscription, utcnow(), "Validated by a GET on validationUrl.")
    subscription.updated_at = utcnow()
    session.flush()
    return subscription


# Fan-out and scheduling -------------------------------------------------------------------------


@dataclass(frozen=True)
class Dispatched:
    deliveries: list[tuple[str, str]]  # (delivery id, subscription id)
    event_types: list[str]  # one entry per outbox row fanned out

    @property
    def delivery_ids(self) -> list[str]:
        return [d for d, _ in self.deliveries]


def dispatch_pending(
    session: Session, now: datetime, enqueue_lease: timedelta, limit: int = 500
) -> Dispatched:
    """Turn undispatched outbox rows into deliveries (to enqueue right after the commit)."""
    events = list(
        session.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.dispatched_at.is_(None))
            .order_by(OutboxEvent.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    if not events:
        return Dispatched([], [])
    resource_ids = {e.resource_id for e in events}
    subscriptions: dict[str, list[EventSubscription]] = {}
    for subscription in session.scalars(
        select(EventSubscription).where(
            EventSubscription.resource_id.in_(resource_ids), EventSubscription.status == ACTIVE
        )
    ):
        subscriptions.setdefault(subscription.resource_id, []).append(subscription)
    rows: list[dict[str, Any]] = []
    for event in events:
        for subscription in subscriptions.get(event.resource_id, []):
            if event.event_type not in subscription.event_types or not builder.subject_matches(
                event.subject, subscription.subject_begins_with, subscription.subject_ends_with
            ):
                continue
            rows.append(
                {
                    "id": new_uuid(),
                    "event_id": event.id,
                    "subscription_id": subscription.id,
                    "resource_id": event.resource_id,
                    "status": PENDING,
                    "attempts": 0,
                    "replays": 0,
                    "next_attempt_at": now,
                    "enqueued_until": now + enqueue_lease,
                    "expires_at": event.created_at + timedelta(minutes=subscription.event_ttl_minutes),
                    "created_at": now,
                }
            )
    if rows:
        session.bulk_insert_mappings(Delivery.__mapper__, rows)
    session.execute(
        update(OutboxEvent).where(OutboxEvent.id.in_([e.id for e in events])).values(dispatched_at=now)
    )
    return Dispatched([(row["id"], row["subscription_id"]) for row in rows], [e.event_type for e in events])


def due_deliveries(
    session: Session, now: datetime, enqueue_lease: timedelta, limit: int = 500
) -> list[tuple[str, str]]:
    """Pending deliveries due now that no queued task is believed to cover (retries whose
    backoff ended, tasks lost with the broker, replays), as (delivery id, subscription id)."""
    rows = [
        (row[0], row[1])
        for row in session.execute(
            select(Delivery.id, Delivery.subscription_id)
            .where(
                Delivery.status == PENDING,
                Delivery.next_attempt_at <= now,
                or_(Delivery.enqueued_until.is_(None), Delivery.enqueued_until < now),
            )
            .order_by(Delivery.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
    ]
    if rows:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_([r[0] for r in rows]))
            .values(enqueued_until=now + enqueue_lease)
        )
    return rows


def release_enqueue(session: Session, delivery_ids: Sequence[str], retry_at: datetime) -> None:
    """Sending to the broker failed: let the scheduler try these again at ``retry_at``."""
    if delivery_ids:
        session.execute(
            update(Delivery).where(Delivery.id.in_(list(delivery_ids))).values(enqueued_until=retry_at)
        )


def purge_finished(session: Session, older_than: datetime, limit: int = 1000) -> int:
    """Delete events fanned out before ``older_than`` with no pending delivery (their
    deliveries and attempt logs go with them). Returns how many events were deleted."""
    still_pending = select(Delivery.id).where(Delivery.event_id == OutboxEvent.id, Delivery.status == PENDING)
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


def queue_depth(session: Session) -> tuple[int, int]:
    """(outbox rows not yet fanned out, deliveries pending)."""
    from sqlalchemy import func

    outbox = session.scalar(select(func.count()).where(OutboxEvent.dispatched_at.is_(None))) or 0
    pending = (
        session.scalar(select(func.count()).select_from(Delivery).where(Delivery.status == PENDING)) or 0
    )
    return int(outbox), int(pending)


# Claiming and recording -------------------------------------------------------------------------


class TopicNamer:
    def __init__(self, subscription_id: str, resource_group: str) -> None:
        self.subscription_id = subscription_id
        self.resource_group = resource_group

    def __call__(self, resource_name: str) -> str:
        return builder.resource_topic(self.subscription_id, self.resource_group, resource_name)


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
    attempt: int  # this attempt's number, from 1
    max_attempts: int
    expires_at: datetime
    next_attempt_at: datetime


def claim(
    session: Session, delivery_ids: Sequence[str], now: datetime, claim_for: timedelta, topic_of: TopicNamer
) -> list[DeliveryWork]:
    """Take the pending, due deliveries among ``delivery_ids`` for one attempt each.

    Those already finished, not yet due, or claimed by another worker are left out.
    """
    until = now + claim_for
    claimed = list(
        session.scalars(
            update(Delivery)
            .where(
                Delivery.id.in_(list(delivery_ids)),
                Delivery.status == PENDING,
                Delivery.next_attempt_at <= now + timedelta(seconds=1),
                or_(Delivery.claimed_until.is_(None), Delivery.claimed_until < now),
            )
            .values(claimed_until=until, enqueued_until=until)
            .returning(Delivery.id)
            .execution_options(synchronize_session=False)
        )
    )
    if not claimed:
        return []
    rows = session.execute(
        select(Delivery, OutboxEvent, EventSubscription, Resource.name)
        .join(OutboxEvent, OutboxEvent.id == Delivery.event_id)
        .join(EventSubscription, EventSubscription.id == Delivery.subscription_id)
        .join(Resource, Resource.id == Delivery.resource_id)
        .where(Delivery.id.in_(claimed))
        .order_by(OutboxEvent.created_at)
    ).all()
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
            attempt=delivery.attempts + 1,
            max_attempts=subscription.max_delivery_attempts,
            expires_at=delivery.expires_at,
            next_attempt_at=delivery.next_attempt_at,
        )
        for delivery, outbox, subscription, resource_name in rows
    ]


def release(session: Session, delivery_ids: Sequence[str]) -> None:
    """Give back claimed deliveries that were not attempted (the scheduler re-enqueues them)."""
    if delivery_ids:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(list(delivery_ids)), Delivery.status == PENDING)
            .values(claimed_until=None, enqueued_until=None)
            .execution_options(synchronize_session=False)
        )


@dataclass(frozen=True)
class AttemptResult:
    status_code: int | None
    latency_ms: int
    error: str | None = None
    error_kind: str | None = None
    response_body: bytes = b""
    retry_after: float | None = None  # seconds, from a 429/503 Retry-After header


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    retry_in: float | None = None
    dead_letter_reason: str | None = None


def decide(work: DeliveryWork, result: AttemptResult, now: datetime, backoff: Backoff) -> Decision:
    """What follows one attempt (pure)."""
    if result.error_kind == "DestinationRefused":
        return Decision(Outcome.DEAD_LETTER, dead_letter_reason="DestinationRefused")
    outcome = classify_status(result.status_code)
    if outcome is Outcome.DELIVERED:
        return Decision(outcome)
    if outcome is Outcome.DEAD_LETTER:
        return Decision(outcome, dead_letter_reason="NonRetryableStatusCode")
    if work.attempt >= work.max_attempts:
        return Decision(Outcome.DEAD_LETTER, dead_letter_reason="MaxDeliveryAttemptsExceeded")
    delay = backoff.delay(work.attempt)
    if result.retry_after is not None:
        delay = max(delay, min(result.retry_after, backoff.max_seconds))
    if now + timedelta(seconds=delay) >= work.expires_at:
        return Decision(Outcome.DEAD_LETTER, dead_letter_reason="TimeToLiveExceeded")
    return Decision(Outcome.RETRY, retry_in=delay)


@dataclass(frozen=True)
class Finished:
    """One finished attempt (or an expiry before any attempt), ready to be recorded."""

    work: DeliveryWork
    result: AttemptResult | None  # None: expired before it could be attempted
    decision: Decision
    started_at: datetime
    finished_at: datetime


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
        session.execute(insert(DeliveryAttempt), attempts)
    statuses = {Outcome.DELIVERED: DELIVERED, Outcome.DEAD_LETTER: DEAD_LETTERED, Outcome.RETRY: PENDING}
    updates = []
    for o in outcomes:
        result = o.result
        retry = o.decision.outcome is Outcome.RETRY
        body = result.response_body[:MAX_STORED_RESPONSE].decode("utf-8", "replace") if result else ""
        updates.append(
            {
                "b_id": o.work.delivery_id,
                "b_status": statuses[o.decision.outcome],
                "b_attempts": o.work.attempt if result is not None else o.work.attempt - 1,
                "b_next": (
                    o.finished_at + timedelta(seconds=o.decision.retry_in or 0)
                    if retry
                    else o.work.next_attempt_at
                ),
                "b_finished": None if retry else o.finished_at,
                "b_reason": o.decision.dead_letter_reason,
                "b_code": result.status_code if result else None,
                "b_error": result.error if result else None,
                "b_response": body or None,
            }
        )
    table = cast(Table, Delivery.__table__)
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
        updates,
    )


# Dead letters, replay, attempt log, test events ------------------------------------------------


def list_deliveries(
    session: Session,
    subscription_id: str,
    *,
    status: str | None = None,
    limit: int = 100,
) -> list[tuple[Delivery, OutboxEvent]]:
    query = (
        select(Delivery, OutboxEvent)
        .join(OutboxEvent, OutboxEvent.id == Delivery.event_id)
        .where(Delivery.subscription_id == subscription_id)
        .order_by(Delivery.created_at.desc(), Delivery.id)
        .limit(limit)
    )
    if status:
        query = query.where(Delivery.status == status)
    return [(row[0], row[1]) for row in session.execute(query).all()]


def list_attempts(
    session: Session, subscription_id: str, *, event_id: str | None = None, limit: int = 100
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


def replay(session: Session, subscription_id: str, event_ids: Sequence[str] | None = None) -> list[str]:
    """Put dead-lettered deliveries of a subscription back to pending (all, or those events).

    Returns the replayed event ids. Each gets a fresh attempt budget and time to live; the event
    id is unchanged so receivers still deduplicate.
    """
    subscription = get_subscription(session, subscription_id)
    now = utcnow()
    conditions = [Delivery.subscription_id == subscription.id, Delivery.status == DEAD_LETTERED]
    if event_ids is not None:
        conditions.append(Delivery.event_id.in_(list(event_ids)))
    rows = list(session.scalars(select(Delivery).where(and_(*conditions)).with_for_update()))
    for delivery in rows:
        delivery.status = PENDING
        delivery.attempts = 0
        delivery.next_attempt_at = now
        delivery.enqueued_until = None
        delivery.claimed_until = None
        delivery.finished_at = None
        delivery.dead_letter_reason = None
        delivery.expires_at = now + timedelta(minutes=subscription.event_ttl_minutes)
        delivery.replays += 1
    session.flush()
    log.info("dead letters replayed", subscription_id=subscription.id, count=len(rows))
    return [d.event_id for d in rows]


def sample_event(event_type: str, now: datetime) -> tuple[str, dict[str, Any]]:
    """(subject, data) of a realistic sample of ``event_type``."""
    if event_type == builder.SMS_RECEIVED:
        return builder.phone_subject("+15555550100"), builder.sms_received_data(
            "Incoming_" + new_uuid(), "+15555550199", "+15555550100", "Test event from Trunkline", now
        )
    if event_type == builder.SMS_DELIVERY_REPORT_RECEIVED:
        return builder.phone_subject("+15555550100"), builder.sms_delivery_report_data(
            "Outgoing_" + new_uuid(),
            "+15555550100",
            "+15555550199",
            "Delivered",
            "No error.",
            now,
            attempts=[(now, 1, 0)],
        )
    if event_type == builder.INCOMING_CALL:
        caller, callee = builder.phone_identifier("+15555550199"), builder.phone_identifier("+15555550100")
        return builder.incoming_call_subject(caller["rawId"], callee["rawId"]), builder.incoming_call_data(
            to=callee,
            from_=caller,
            server_call_id=new_uuid(),
            incoming_call_context="test-" + secrets.token_urlsafe(16),
            correlation_id=new_uuid(),
            caller_display_name="Trunkline test",
        )
    raise BadRequest(f"No sample for event type {event_type}.", "eventType")


def send_test_event(
    session: Session, subscription_id: str, resource_id: str | None = None, event_type: str | None = None
) -> str:
    """A sample event delivered to this subscription only, through the normal delivery path."""
    subscription = get_subscription(session, subscription_id, resource_id)
    if subscription.status != ACTIVE:
        raise Conflict(
            f"The subscription is {subscription.status}: {subscription.status_detail}",
            code="SubscriptionNotActive",
        )
    chosen = event_type or subscription.event_types[0]
    if chosen not in subscription.event_types:
        raise BadRequest(f"The subscription does not include {chosen}.", "eventType")
    now = utcnow()
    subject, data = sample_event(chosen, now)
    event = OutboxEvent(
        id=new_uuid(),
        resource_id=subscription.resource_id,
        event_type=chosen,
        subject=subject,
        data=data,
        event_time=now,
        created_at=now,
        dispatched_at=now,
    )
    session.add(event)
    session.flush()
    session.add(
        Delivery(
            event_id=event.id,
            subscription_id=subscription.id,
            resource_id=subscription.resource_id,
            status=PENDING,
            attempts=0,
            replays=0,
            next_attempt_at=now,
            enqueued_until=None,
            expires_at=now + timedelta(minutes=subscription.event_ttl_minutes),
            created_at=now,
        )
    )
    session.flush()
    return event.id
