"""Test events: a realistic sample of an event type, delivered to one subscription only through
the normal delivery path (``:test`` in the API, ``trunkline events test``)."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from gateway.core.db import new_uuid, utcnow
from gateway.core.errors import BadRequest, Conflict
from gateway.events import builder, lifecycle
from gateway.events.models import Delivery, OutboxEvent, SubscriptionStatus
from gateway.events.subscriptions import get_subscription


class Sample(NamedTuple):
    subject: str
    data: dict[str, Any]


def sample_event(event_type: str, now: datetime) -> Sample:
    """A realistic sample of ``event_type``."""
    if event_type == builder.SMS_RECEIVED:
        return Sample(
            builder.phone_subject("+15555550100"),
            builder.sms_received_data(
                "Incoming_" + new_uuid(), "+15555550199", "+15555550100", "Test event from Trunkline", now
            ),
        )
    if event_type == builder.SMS_DELIVERY_REPORT_RECEIVED:
        return Sample(
            builder.phone_subject("+15555550100"),
            builder.sms_delivery_report_data(
                "Outgoing_" + new_uuid(),
                "+15555550100",
                "+15555550199",
                "Delivered",
                "No error.",
                now,
                attempts=[(now, 1, 0)],
            ),
        )
    if event_type == builder.INCOMING_CALL:
        caller, callee = builder.phone_identifier("+15555550199"), builder.phone_identifier("+15555550100")
        return Sample(
            builder.incoming_call_subject(caller["rawId"], callee["rawId"]),
            builder.incoming_call_data(
                to=callee,
                from_=caller,
                server_call_id=new_uuid(),
                incoming_call_context="test-" + secrets.token_urlsafe(16),
                correlation_id=new_uuid(),
                caller_display_name="Trunkline test",
            ),
        )
    raise BadRequest(f"No sample for event type {event_type}.", "eventType")


def send_test_event(
    session: Session, subscription_id: str, resource_id: str | None = None, event_type: str | None = None
) -> str:
    """A sample event delivered to this subscription only, through the normal delivery path."""
    subscription = get_subscription(session, subscription_id, resource_id)
    if subscription.status != SubscriptionStatus.ACTIVE:
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
    start = lifecycle.created(now, now, subscription.event_ttl_minutes)
    session.add(
        Delivery(
            event_id=event.id,
            subscription_id=subscription.id,
            resource_id=subscription.resource_id,
            status=start.status.value,
            attempts=start.attempts,
            replays=start.replays,
            next_attempt_at=start.next_attempt_at,
            enqueued_until=None,
            expires_at=start.expires_at,
            created_at=now,
        )
    )
    session.flush()
    return event.id
