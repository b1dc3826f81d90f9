"""Event subscriptions: create, list, change, delete; secret rotation; restarting the handshake.

A subscription receives events only once its endpoint passed the validation handshake
(:mod:`gateway.events.validation`); a new endpoint or schema must pass it again.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy.orm import Session

from gateway.core.db import utcnow
from gateway.core.errors import BadRequest, NotFound
from gateway.events import builder, repository, signing
from gateway.events.builder import DeliverySchema
from gateway.events.models import EventSubscription, SubscriptionKind, SubscriptionStatus
from gateway.events.ssrf import DestinationRefused, Policy, Resolver, check_destination, system_resolver

log = structlog.get_logger("trunkline.events")

AWAITING_HANDSHAKE = "Waiting for the endpoint to answer the validation handshake."


@dataclass(frozen=True)
class SubscriptionSpec:
    endpoint_url: str
    event_types: Sequence[str]
    delivery_schema: DeliverySchema = DeliverySchema.EVENT_GRID
    subject_begins_with: str | None = None
    subject_ends_with: str | None = None
    max_delivery_attempts: int | None = None
    event_ttl_minutes: int | None = None
    max_events_per_batch: int | None = None
    preferred_batch_size_kb: int | None = None


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
    max_events_per_batch: int | None = None
    preferred_batch_size_kb: int | None = None


# Event Grid's bounds and defaults for batching.
MAX_EVENTS_PER_BATCH = 5000
DEFAULT_EVENTS_PER_BATCH = 1
MAX_PREFERRED_BATCH_KB = 1024
DEFAULT_PREFERRED_BATCH_KB = 64


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


def _check_attempts(value: int) -> None:
    if not 1 <= value <= 30:
        raise BadRequest("maxDeliveryAttempts must be between 1 and 30.", "maxDeliveryAttempts")


def _check_ttl(value: int) -> None:
    if not 1 <= value <= 1440:
        raise BadRequest("eventTimeToLiveInMinutes must be between 1 and 1440.", "eventTimeToLiveInMinutes")


def _check_batching(max_events: int, preferred_kb: int) -> None:
    if not 1 <= max_events <= MAX_EVENTS_PER_BATCH:
        raise BadRequest(
            f"maxEventsPerBatch must be between 1 and {MAX_EVENTS_PER_BATCH}.", "maxEventsPerBatch"
        )
    if not 1 <= preferred_kb <= MAX_PREFERRED_BATCH_KB:
        raise BadRequest(
            f"preferredBatchSizeInKilobytes must be between 1 and {MAX_PREFERRED_BATCH_KB}.",
            "preferredBatchSizeInKilobytes",
        )


def _start_handshake(subscription: EventSubscription, now: datetime) -> None:
    """Back to pendingValidation with a new code; the scheduler hands the handshake out now."""
    subscription.status = SubscriptionStatus.PENDING_VALIDATION.value
    subscription.status_detail = AWAITING_HANDSHAKE
    subscription.validation_code = secrets.token_hex(16)
    subscription.validation_attempts = 0
    subscription.validation_next_at = now
    subscription.updated_at = now


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
    _check_attempts(attempts)
    _check_ttl(ttl)
    max_events = spec.max_events_per_batch or DEFAULT_EVENTS_PER_BATCH
    preferred_kb = spec.preferred_batch_size_kb or DEFAULT_PREFERRED_BATCH_KB
    _check_batching(max_events, preferred_kb)
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
        max_events_per_batch=max_events,
        preferred_batch_size_kb=preferred_kb,
        secret=signing.generate_secret(),
        created_at=now,
    )
    _start_handshake(subscription, now)
    session.add(subscription)
    session.flush()
    log.info(
        "event subscription created",
        subscription_id=subscription.id,
        resource_id=resource_id,
        endpoint=spec.endpoint_url,
    )
    return subscription


def callback_subscription_id(
    session: Session,
    resource_id: str,
    url: str,
    policy: Policy,
    limits: Limits,
    resolver: Resolver = system_resolver,
) -> str:
    """The id of the subscription that carries a resource's callbacks to ``url`` (a call's
    callbackUri), made on first use: active at once (ACS does not validate callback URIs),
    CloudEvents, reached only by events addressed to it. The URL passes the same SSRF check as a
    webhook's."""
    found = repository.find_callback_subscription(session, resource_id, url)
    if found is not None:
        return found
    check_endpoint(url, policy, resolver)
    now = utcnow()
    subscription = EventSubscription(
        resource_id=resource_id,
        endpoint_url=url,
        kind=SubscriptionKind.CALLBACK.value,
        event_types=[],
        delivery_schema=DeliverySchema.CLOUD_EVENTS.value,
        max_delivery_attempts=limits.max_delivery_attempts,
        event_ttl_minutes=limits.event_ttl_minutes,
        # Callbacks are posted one event at a time, as ACS does.
        max_events_per_batch=1,
        preferred_batch_size_kb=DEFAULT_PREFERRED_BATCH_KB,
        secret=signing.generate_secret(),
        status=SubscriptionStatus.ACTIVE.value,
        validation_code="",
        validated_at=now,
        created_at=now,
        updated_at=now,
    )
    session.add(subscription)
    session.flush()
    return subscription.id


def has_subscriber(session: Session, resource_id: str, event_type: str, subject: str) -> bool:
    """Whether an event of ``event_type`` and ``subject`` would reach any active webhook of the
    resource (an IncomingCall nobody would hear of is refused at once)."""
    return any(
        event_type in s.event_types
        and builder.subject_matches(subject, s.subject_begins_with, s.subject_ends_with)
        for s in repository.active_subscriptions(session, {resource_id})
    )


def list_subscriptions(session: Session, resource_id: str | None = None) -> list[EventSubscription]:
    return repository.list_subscriptions(session, resource_id)


def get_subscription(
    session: Session, subscription_id: str, resource_id: str | None = None, *, for_update: bool = False
) -> EventSubscription:
    subscription = repository.find_subscription(session, subscription_id, resource_id, for_update=for_update)
    if subscription is None:
        raise NotFound(
            f"No event subscription '{subscription_id}'.", "subscriptionId", code="SubscriptionNotFound"
        )
    return subscription


def delete_subscription(session: Session, subscription_id: str, resource_id: str | None = None) -> None:
    subscription = get_subscription(session, subscription_id, resource_id)
    repository.delete_subscription(session, subscription.id)
    log.info("event subscription deleted", subscription_id=subscription.id)


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
        _check_attempts(change.max_delivery_attempts)
        subscription.max_delivery_attempts = change.max_delivery_attempts
    if change.event_ttl_minutes is not None:
        _check_ttl(change.event_ttl_minutes)
        subscription.event_ttl_minutes = change.event_ttl_minutes
    if change.max_events_per_batch is not None or change.preferred_batch_size_kb is not None:
        max_events = change.max_events_per_batch or subscription.max_events_per_batch
        preferred_kb = change.preferred_batch_size_kb or subscription.preferred_batch_size_kb
        _check_batching(max_events, preferred_kb)
        subscription.max_events_per_batch = max_events
        subscription.preferred_batch_size_kb = preferred_kb
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
    _start_handshake(subscription, utcnow())
    session.flush()
    return subscription


def signing_secrets(subscription: EventSubscription, now: datetime) -> list[str]:
    """The secrets a request is signed with: the current one, and the previous one while its
    rotation overlap lasts."""
    return secrets_in_use(
        subscription.secret, subscription.previous_secret, subscription.previous_secret_expires_at, now
    )


def secrets_in_use(
    secret: str, previous: str | None, previous_expires_at: datetime | None, now: datetime
) -> list[str]:
    """:func:`signing_secrets` from the subscription's columns (the delivery claim reads no
    ORM object)."""
    found = [secret]
    if previous and previous_expires_at is not None and previous_expires_at > now:
        found.append(previous)
    return found
