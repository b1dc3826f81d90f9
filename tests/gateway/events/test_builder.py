from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.messaging import CloudEvent
from azure.eventgrid import EventGridEvent, SystemEventNames
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.events import builder
from gateway.events.builder import DeliverySchema, Event

from .acs_spec import SPEC_DIR, validate_event_data

times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))
e164 = st.from_regex(r"\+[1-9][0-9]{7,14}", fullmatch=True)
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=200)
header_names = st.from_regex(r"X-MS-Custom-[A-Za-z0-9]{1,12}", fullmatch=True)


@st.composite
def sms_received(draw: st.DrawFn) -> tuple[str, str, dict[str, Any]]:
    to = draw(e164)
    data = builder.sms_received_data(
        draw(st.uuids()).hex, draw(e164), to, draw(text), draw(times), draw(st.integers(1, 255))
    )
    return builder.SMS_RECEIVED, builder.phone_subject(to), data


@st.composite
def delivery_report(draw: st.DrawFn) -> tuple[str, str, dict[str, Any]]:
    sender = draw(e164)
    attempts = draw(st.lists(st.tuples(times, st.integers(0, 10), st.integers(0, 10)), max_size=3))
    data = builder.sms_delivery_report_data(
        "Outgoing_" + draw(st.uuids()).hex,
        sender,
        draw(e164),
        draw(st.sampled_from(["Delivered", "Failed", "Expired"])),
        draw(text),
        draw(times),
        attempts,
        tag=draw(st.none() | text),
    )
    return builder.SMS_DELIVERY_REPORT_RECEIVED, builder.phone_subject(sender), data


@st.composite
def incoming_call(draw: st.DrawFn) -> tuple[str, str, dict[str, Any]]:
    caller = builder.phone_identifier(draw(e164))
    callee = builder.phone_identifier(draw(e164))
    data = builder.incoming_call_data(
        to=callee,
        from_=caller,
        server_call_id=draw(st.uuids()).hex,
        incoming_call_context=draw(st.text(min_size=1, max_size=100)),
        correlation_id=str(draw(st.uuids())),
        caller_display_name=draw(st.none() | text),
        sip_headers=draw(st.dictionaries(header_names, text, max_size=3)),
        voip_headers=draw(st.dictionaries(st.text(min_size=1, max_size=10), text, max_size=3)),
    )
    return builder.INCOMING_CALL, builder.incoming_call_subject(caller["rawId"], callee["rawId"]), data


any_event = st.one_of(sms_received(), delivery_report(), incoming_call())
TOPIC = builder.resource_topic("00000000-0000-0000-0000-000000000000", "trunkline", "my-app")


def _event(drawn: tuple[str, str, dict[str, Any]], event_id: str, when: datetime) -> Event:
    event_type, subject, data = drawn
    return Event(id=event_id, event_type=event_type, subject=subject, data=data, event_time=when)


@settings(max_examples=150, deadline=None)
@given(drawn=any_event, event_id=st.uuids(), when=times)
def test_eventgrid_payload_loads_with_the_sdk(drawn: Any, event_id: Any, when: datetime) -> None:
    event = _event(drawn, str(event_id), when)
    body, content_type = builder.render(DeliverySchema.EVENT_GRID, [event], TOPIC)
    assert content_type == "application/json"
    payload = json.loads(body)
    assert isinstance(payload, list)
    assert len(payload) == 1
    example = json.loads((SPEC_DIR / "examples/event-grid-schema/sms_received.json").read_text())
    assert set(payload[0]) == set(example)
    parsed = EventGridEvent.from_dict(payload[0])
    assert parsed.id == str(event_id)
    assert parsed.topic == TOPIC
    assert parsed.subject == event.subject
    assert parsed.event_type == event.event_type
    assert parsed.data == event.data
    assert parsed.data_version == "1.0"
    assert parsed.event_time == when
    validate_event_data(parsed.event_type, parsed.data)


@settings(max_examples=150, deadline=None)
@given(drawn=any_event, event_id=st.uuids(), when=times)
def test_cloudevent_payload_loads_with_the_sdk(drawn: Any, event_id: Any, when: datetime) -> None:
    event = _event(drawn, str(event_id), when)
    body, content_type = builder.render(DeliverySchema.CLOUD_EVENTS, [event], TOPIC)
    assert content_type.startswith("application/cloudevents+json")
    payload = json.loads(body)
    assert isinstance(payload, dict)
    example = json.loads((SPEC_DIR / "examples/cloud-events-schema/incoming_call.json").read_text())
    assert set(payload) == set(example)
    parsed = CloudEvent.from_dict(payload)
    assert parsed.id == str(event_id)
    assert parsed.source == TOPIC
    assert parsed.type == event.event_type
    assert parsed.subject == event.subject
    assert parsed.specversion == "1.0"
    assert parsed.time == when
    assert parsed.data == event.data
    validate_event_data(parsed.type, parsed.data)


@settings(max_examples=30, deadline=None)
@given(events=st.lists(any_event, min_size=2, max_size=5), when=times)
def test_cloudevents_batch_is_an_array_of_structured_events(events: list[Any], when: datetime) -> None:
    built = [_event(drawn, f"id-{i}", when) for i, drawn in enumerate(events)]
    body, content_type = builder.render(DeliverySchema.CLOUD_EVENTS, built, TOPIC)
    assert content_type.startswith("application/cloudevents-batch+json")
    parsed = [CloudEvent.from_dict(item) for item in json.loads(body)]
    assert [p.id for p in parsed] == [e.id for e in built]


def test_event_type_names_match_the_sdk() -> None:
    assert SystemEventNames.AcsSmsReceivedEventName == builder.SMS_RECEIVED
    assert SystemEventNames.AcsSmsDeliveryReportReceivedEventName == builder.SMS_DELIVERY_REPORT_RECEIVED
    assert SystemEventNames.AcsIncomingCallEventName == builder.INCOMING_CALL
    assert SystemEventNames.EventGridSubscriptionValidationEventName == builder.SUBSCRIPTION_VALIDATION


@pytest.mark.parametrize("path", sorted(SPEC_DIR.glob("examples/*/*.json")), ids=lambda p: p.name)
def test_spec_examples_pass_the_validator(path: Any) -> None:
    example = json.loads(path.read_text())
    validate_event_data(example.get("eventType") or example["type"], example["data"])


def test_the_validator_rejects_wrong_shapes() -> None:
    good = builder.sms_received_data("m", "+1555", "+1556", "hi", datetime.now(UTC))
    validate_event_data(builder.SMS_RECEIVED, good)
    for broken in (
        {k: v for k, v in good.items() if k != "message"},
        {**good, "segmentCount": "1"},
        {**good, "unexpected": 1},
        {**good, "receivedTimestamp": "yesterday"},
    ):
        with pytest.raises((AssertionError, ValueError)):
            validate_event_data(builder.SMS_RECEIVED, broken)


def test_example_shape_is_reproduced() -> None:
    """Our SMSReceived has the spec example's fields (camelCase, as the definitions spell them)."""
    example = json.loads((SPEC_DIR / "examples/event-grid-schema/sms_received.json").read_text())
    ours = builder.sms_received_data(
        "x", "15555555555", "15555555555", "m", datetime(2020, 9, 18, 0, 27, 45, 320000, tzinfo=UTC)
    )
    assert [k.lower() for k in ours] == [k.lower() for k in example["data"]]
    assert list(ours) == ["messageId", "from", "to", "message", "receivedTimestamp", "segmentCount"]
    assert ours["receivedTimestamp"] == "2020-09-18T00:27:45.3200000Z"


@given(when=times)
def test_format_time_round_trips(when: datetime) -> None:
    rendered = builder.format_time(when)
    assert rendered.endswith("Z")
    seconds, _, fraction = rendered[:-1].partition(".")
    assert len(fraction) in (0, 7)
    parsed = datetime.fromisoformat(seconds + (f".{fraction[:6]}" if fraction else "") + "+00:00")
    assert parsed == when


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError):
        builder.format_time(datetime(2020, 1, 1))


def test_validation_event_shape() -> None:
    now = datetime.now(UTC)
    event = builder.validation_event("vid", TOPIC, "CODE", "https://x/validate?code=CODE", now)
    parsed = EventGridEvent.from_dict(event)
    assert parsed.event_type == "Microsoft.EventGrid.SubscriptionValidationEvent"
    assert parsed.data == {"validationCode": "CODE", "validationUrl": "https://x/validate?code=CODE"}


ascii_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20)


@given(subject=ascii_text, prefix=ascii_text, suffix=ascii_text)
def test_subject_filter(subject: str, prefix: str, suffix: str) -> None:
    whole = prefix + subject + suffix
    assert builder.subject_matches(whole, None, None)
    assert builder.subject_matches(whole, prefix or None, suffix or None)
    assert builder.subject_matches(whole.upper(), prefix.lower() or None, suffix.lower() or None)
    if prefix and not subject.lower().startswith(prefix.lower()):
        assert not builder.subject_matches(subject, prefix, None)
    if suffix and not subject.lower().endswith(suffix.lower()):
        assert not builder.subject_matches(subject, None, suffix)


def test_time_delta_helper_sanity() -> None:
    assert builder.format_time(datetime(2020, 1, 1, tzinfo=UTC) + timedelta(microseconds=1)) == (
        "2020-01-01T00:00:00.0000010Z"
    )
