"""Helpers of the in-process tests (SQLite, one Runtime, no Celery): subscribe, publish,
fan out and deliver in the test's own thread."""

from __future__ import annotations

from typing import Any

from gateway.core.db import Database, utcnow
from gateway.core.settings import Settings
from gateway.events import builder, fanout, sender, service, subscriptions
from gateway.events.models import EventSubscription, SubscriptionStatus
from gateway.events.runtime import Runtime, limits_from_settings, policy_from_settings

LOOPBACK = "127.0.0.0/8,::1/128"


def subscribe(
    database: Database, settings: Settings, resource_id: str, url: str, **kwargs: Any
) -> EventSubscription:
    spec = subscriptions.SubscriptionSpec(
        endpoint_url=url, event_types=kwargs.pop("types", list(builder.KNOWN_EVENT_TYPES)), **kwargs
    )
    with database.session() as session:
        return subscriptions.create_subscription(
            session, resource_id, spec, policy_from_settings(settings), limits_from_settings(settings)
        )


def activate(database: Database, subscription_id: str) -> None:
    with database.session() as session:
        sub = session.get(EventSubscription, subscription_id)
        assert sub is not None
        sub.status = SubscriptionStatus.ACTIVE


def sms(database: Database, resource_id: str, to: str = "+15550001111", **kwargs: Any) -> str:
    with database.session() as session:
        return service.publish(
            session,
            resource_id=resource_id,
            event_type=builder.SMS_RECEIVED,
            subject=builder.phone_subject(to),
            data=builder.sms_received_data("m1", "+15550002222", to, "hello", utcnow()),
            **kwargs,
        )


def dispatch(rt: Runtime) -> list[str]:
    with rt.database.session() as session:
        return fanout.dispatch_pending(session, utcnow(), rt.enqueue_lease).delivery_ids


def deliver_all(rt: Runtime, ids: list[Any]) -> None:
    flat = [i if isinstance(i, str) else i[0] for i in ids]
    assert sender.deliver(rt, flat) == len(flat)
