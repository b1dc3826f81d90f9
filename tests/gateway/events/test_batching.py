"""Forming Event Grid batches by count and size (pure), and the body they become."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gateway.events import batching, builder
from gateway.events.builder import DeliverySchema, Event
from gateway.events.deliveries import DeliveryWork, _group
from gateway.events.models import SubscriptionKind

sizes_st = st.lists(st.integers(min_value=2, max_value=3000), max_size=200)
max_events_st = st.integers(min_value=1, max_value=60)
max_bytes_st = st.integers(min_value=1, max_value=20_000)


@given(sizes_st, max_events_st, max_bytes_st)
def test_batches_keep_every_event_once_in_order(sizes: list[int], max_events: int, max_bytes: int) -> None:
    packed = batching.pack(sizes, max_events, max_bytes)
    assert [i for part in packed for i in part] == list(range(len(sizes)))
    assert all(len(part) >= 1 for part in packed)


@given(sizes_st, max_events_st, max_bytes_st)
def test_batches_respect_count_and_size_unless_one_event_is_larger(
    sizes: list[int], max_events: int, max_bytes: int
) -> None:
    for part in batching.pack(sizes, max_events, max_bytes):
        assert len(part) <= max_events
        batch_bytes = batching.array_size([sizes[i] for i in part])
        assert batch_bytes <= max_bytes or len(part) == 1


@given(sizes_st, max_events_st, max_bytes_st)
def test_batches_are_as_full_as_allowed(sizes: list[int], max_events: int, max_bytes: int) -> None:
    """Greedy: the first event of each batch could not have joined the one before."""
    packed = batching.pack(sizes, max_events, max_bytes)
    for before, after in itertools.pairwise(packed):
        grown = [sizes[i] for i in before] + [sizes[after.start]]
        assert len(grown) > max_events or batching.array_size(grown) > max_bytes


def test_a_large_event_goes_alone_between_small_ones() -> None:
    assert batching.pack([10, 5000, 10, 10], 10, 100) == [range(0, 1), range(1, 2), range(2, 4)]
    assert batching.pack([], 10, 100) == []


def _event(number: int) -> Event:
    return Event(
        id=f"ev-{number}",
        event_type="Microsoft.Communication.SMSReceived",
        subject="/phonenumbers/+15550100",
        data={"message": "x" * number},
        event_time=datetime(2026, 12, 6, 12, 0, number % 60, tzinfo=UTC),
    )


@given(
    st.lists(st.integers(min_value=0, max_value=400), min_size=1, max_size=30),
    st.sampled_from(list(DeliverySchema)),
)
def test_a_batch_body_is_the_json_array_of_its_events_and_its_size_is_known(
    numbers: list[int], schema: DeliverySchema
) -> None:
    events = [_event(n) for n in numbers]
    elements = [builder.render_event(schema, e, "topic") for e in events]
    body, content_type = builder.batch_body(schema, elements, batching=True)
    assert len(body) == batching.array_size([len(e) for e in elements])
    parsed = json.loads(body)
    assert [item["id"] for item in parsed] == [e.id for e in events]
    if schema is DeliverySchema.EVENT_GRID:
        assert content_type == "application/json"
        assert body == builder.render(schema, events, "topic")[0]  # as before batching
    else:
        assert content_type.startswith("application/cloudevents-batch+json")


def test_a_cloudevents_subscription_that_does_not_batch_posts_one_structured_event() -> None:
    element = builder.render_event(DeliverySchema.CLOUD_EVENTS, _event(3), "topic")
    body, content_type = builder.batch_body(DeliverySchema.CLOUD_EVENTS, [element], batching=False)
    assert content_type.startswith("application/cloudevents+json")
    assert (body, content_type) == builder.render(DeliverySchema.CLOUD_EVENTS, [_event(3)], "topic")
    assert json.loads(body)["id"] == "ev-3"


def _work(number: int, **kwargs: Any) -> DeliveryWork:
    now = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    fields: dict[str, Any] = {
        "delivery_id": f"d-{number}",
        "subscription_id": "sub",
        "resource_id": "res",
        "event": _event(number),
        "event_created_at": now,
        "endpoint_url": "https://hooks.example.test/",
        "delivery_schema": DeliverySchema.CLOUD_EVENTS,
        "topic": "topic",
        "secrets": ["whsec_AAAA"],
        "kind": SubscriptionKind.WEBHOOK,
        "attempt": 1,
        "max_attempts": 3,
        "expires_at": now + timedelta(minutes=number),
        "next_attempt_at": now,
    }
    return DeliveryWork(**(fields | kwargs))


def test_claimed_deliveries_group_into_stored_new_and_single_batches() -> None:
    stored = [_work(n, batch_id="stored-1", attempt=3) for n in (1, 2)]
    fresh = [_work(n, max_events_per_batch=2) for n in (3, 4, 5)]
    callback = _work(6, kind=SubscriptionKind.CALLBACK, subscription_id="cb")
    batches = _group([*stored, *fresh, callback])
    assert [[w.delivery_id for w in b.works] for b in batches] == [
        ["d-1", "d-2"],
        ["d-3", "d-4"],
        ["d-5"],
        ["d-6"],
    ]
    kept, first_new, second_new, alone = batches
    assert (kept.batch_id, kept.as_batch, kept.message_id) == ("stored-1", True, "stored-1")
    assert (kept.attempt, kept.expires_at) == (3, stored[0].expires_at)  # the oldest event's
    assert None not in (first_new.batch_id, second_new.batch_id)
    assert first_new.batch_id != second_new.batch_id
    assert first_new.message_id == first_new.batch_id
    # One event: its id is the webhook-id (stable too); its batch id keeps it alone on retries.
    assert (second_new.message_id, second_new.as_batch) == ("ev-5", True)
    assert (alone.batch_id, alone.as_batch, alone.elements, alone.message_id) == (None, False, [], "ev-6")
    # A stored batch stays an array even once its subscription no longer batches.
    body, content_type = builder.batch_body(
        DeliverySchema.CLOUD_EVENTS, kept.elements, batching=kept.as_batch
    )
    assert content_type.startswith("application/cloudevents-batch+json")
    assert [item["id"] for item in json.loads(body)] == ["ev-1", "ev-2"]
