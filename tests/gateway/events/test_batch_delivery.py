"""Event Grid batches through the whole pipeline: real PostgreSQL, Redis and ``trunkline worker``.

Bodies are parsed element by element with the Event Grid SDK's own classes
(``EventGridEvent.from_dict``, ``CloudEvent.from_dict``) and every request's Standard Webhooks
signature is verified over the whole body (the receiver in harness.py does both).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from gateway.core.db import utcnow
from gateway.events import builder, samples, service
from gateway.events.lifecycle import DeadLetterReason, DeliveryStatus

from .harness import Receiver, Stack, running_receiver, wait_until
from .test_pipeline import App

pytestmark = pytest.mark.postgres


@pytest.fixture
def app(shared_stack: Stack) -> Iterator[App]:
    made = App(shared_stack, f"batches-{uuid.uuid4().hex[:12]}")
    yield made
    made.close()


def publish_together(app: App, n: int) -> list[str]:
    """``n`` SMSReceived events in one transaction, so one dispatcher pass fans them all out."""
    ids = []
    with app.database.session() as session:
        for i in range(n):
            subject, data = samples.sample_event(builder.SMS_RECEIVED, utcnow())
            ids.append(
                service.publish(
                    session,
                    resource_id=app.resource_id,
                    event_type=builder.SMS_RECEIVED,
                    subject=subject,
                    data=data,
                    event_id=f"{app.name}-{i}",
                )
            )
    return ids


def publish_later(app: App, n: int) -> list[str]:
    with app.database.session() as session:
        return [
            service.publish(
                session,
                resource_id=app.resource_id,
                event_type=builder.SMS_RECEIVED,
                subject=samples.sample_event(builder.SMS_RECEIVED, utcnow())[0],
                data=samples.sample_event(builder.SMS_RECEIVED, utcnow())[1],
                event_id=f"{app.name}-{i}-later",
            )
            for i in range(n)
        ]


def events_of(request: tuple[dict[str, str], bytes]) -> list[str]:
    items: Any = json.loads(request[1])
    return [item["id"] for item in (items if isinstance(items, list) else [items])]


def settled(app: App, subscription_id: str, n: int) -> bool:
    rows = app.deliveries(subscription_id)
    return len(rows) == n and all(d.status != DeliveryStatus.PENDING for d in rows)


def test_eventgrid_batches_by_count_in_order_signed_whole(shared_stack: Stack, app: App) -> None:
    with running_receiver(shared_stack.tls) as receiver:
        sub = app.subscribe(receiver, types=[builder.SMS_RECEIVED], max_events_per_batch=10)
        app.wait_active(sub)
        published = publish_together(app, 25)
        wait_until(lambda: settled(app, sub, 25), 20, what="25 events in batches")
        assert not receiver.errors
        assert [events_of(r) for r in receiver.requests] == [published[:10], published[10:20], published[20:]]
        webhook_ids = [headers["webhook-id"] for headers, _ in receiver.requests]
        assert len(set(webhook_ids)) == 3
        assert all(headers["content-type"] == "application/json" for headers, _ in receiver.requests)
        assert all(headers["aeg-delivery-count"] == "0" for headers, _ in receiver.requests)
        rows = app.deliveries(sub)
        assert {d.status for d in rows} == {DeliveryStatus.DELIVERED}
        assert {d.attempts for d in rows} == {1}


def test_batches_stay_within_the_preferred_size(shared_stack: Stack, app: App) -> None:
    with running_receiver(shared_stack.tls) as receiver:
        sub = app.subscribe(
            receiver, types=[builder.SMS_RECEIVED], max_events_per_batch=100, preferred_batch_size_kb=2
        )
        app.wait_active(sub)
        published = publish_together(app, 12)
        wait_until(lambda: settled(app, sub, 12), 20, what="12 events")
        assert not receiver.errors
        sizes = [(len(body), len(events_of((h, body)))) for h, body in receiver.requests]
        # These events are ~590 bytes each: three fit in 2 KiB, four do not.
        assert all(size <= 2048 for size, _ in sizes), sizes
        assert [count for _, count in sizes] == [3, 3, 3, 3], sizes
        assert [e for r in receiver.requests for e in events_of(r)] == published


def test_cloudevents_batches_use_the_batch_content_type(shared_stack: Stack, app: App) -> None:
    with running_receiver(shared_stack.tls, schema="CloudEventSchemaV1_0") as receiver:
        sub = app.subscribe(receiver, types=[builder.SMS_RECEIVED], max_events_per_batch=5)
        app.wait_active(sub)
        published = publish_together(app, 7)
        wait_until(lambda: settled(app, sub, 7), 20, what="7 CloudEvents")
        assert not receiver.errors
        assert [events_of(r) for r in receiver.requests] == [published[:5], published[5:]]
        for headers, _ in receiver.requests:
            assert headers["content-type"].startswith("application/cloudevents-batch+json")


def _verify_all(receiver: Receiver) -> None:
    for headers, body in receiver.requests:
        Webhook(receiver.secrets[0]).verify(body, headers, json_parse=False)


def test_a_failed_batch_is_retried_as_that_batch_under_one_webhook_id(
    shared_stack: Stack,
    app: App,
) -> None:
    with running_receiver(shared_stack.tls, mode="status:500") as receiver:
        sub = app.subscribe(receiver, types=[builder.SMS_RECEIVED], max_events_per_batch=10)
        app.wait_active(sub)
        published = publish_together(app, 6)
        wait_until(lambda: receiver.hits >= 2, 20, what="two failed attempts")
        # Events published meanwhile form a batch of their own: they do not join the failed one.
        later = publish_later(app, 2)
        wait_until(lambda: receiver.hits >= 4, 20, what="more failed attempts")
        receiver.mode = "ok"
        wait_until(lambda: settled(app, sub, 8), 20, what="the batches delivered")
        _verify_all(receiver)
        by_id: dict[str, list[tuple[dict[str, str], bytes]]] = {}
        for request in receiver.requests:
            by_id.setdefault(request[0]["webhook-id"], []).append(request)
        assert len(by_id) == 2
        first, second = sorted(by_id.values(), key=lambda rs: events_of(rs[0]) != published)
        for batch, events in ((first, published), (second, later)):
            assert len({body for _, body in batch}) == 1  # the very same batch every time
            assert events_of(batch[0]) == events
            counts = [int(h["aeg-delivery-count"]) for h, _ in batch]
            assert counts == list(range(len(batch)))
        rows = app.deliveries(sub)
        assert {d.status for d in rows} == {DeliveryStatus.DELIVERED}
        attempts = {d.event_id: d.attempts for d in rows}
        assert {attempts[e] for e in published} == {len(first)}
        assert {attempts[e] for e in later} == {len(second)}


@pytest.mark.parametrize(
    ("mode", "attempts", "reason"),
    [
        ("status:400", 1, DeadLetterReason.NON_RETRYABLE_STATUS),
        ("status:503", 2, DeadLetterReason.MAX_ATTEMPTS),
    ],
)
def test_a_batch_is_dead_lettered_as_one(
    shared_stack: Stack,
    app: App,
    mode: str,
    attempts: int,
    reason: DeadLetterReason,
) -> None:
    with running_receiver(shared_stack.tls, mode=mode) as receiver:
        sub = app.subscribe(
            receiver, types=[builder.SMS_RECEIVED], max_events_per_batch=50, max_delivery_attempts=2
        )
        app.wait_active(sub)
        publish_together(app, 8)
        wait_until(lambda: settled(app, sub, 8), 20, what="the batch dead-lettered")
        _verify_all(receiver)
        assert receiver.hits == attempts
        assert len({body for _, body in receiver.requests}) == 1
        rows = app.deliveries(sub)
        assert {(d.status, d.dead_letter_reason, d.attempts) for d in rows} == {
            (DeliveryStatus.DEAD_LETTERED, reason.value, attempts)
        }
