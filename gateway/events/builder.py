"""Pure construction of ACS system events in Event Grid and CloudEvents 1.0 schemas.

No I/O here: the delivery task and the tests call these with plain values. The envelopes follow
``EventGrid-Communication/2018-01-01`` and its examples; ``data`` is passed through as the
producer built it (the ``*_data`` helpers below build the three shapes Trunkline emits).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

SMS_RECEIVED = "Microsoft.Communication.SMSReceived"
SMS_DELIVERY_REPORT_RECEIVED = "Microsoft.Communication.SMSDeliveryReportReceived"
INCOMING_CALL = "Microsoft.Communication.IncomingCall"
SUBSCRIPTION_VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"

# The event types a subscription may include (what Trunkline publishes).
KNOWN_EVENT_TYPES = (SMS_RECEIVED, SMS_DELIVERY_REPORT_RECEIVED, INCOMING_CALL)

EVENTGRID_CONTENT_TYPE = "application/json"
CLOUDEVENT_CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
CLOUDEVENT_BATCH_CONTENT_TYPE = "application/cloudevents-batch+json; charset=utf-8"


class DeliverySchema(StrEnum):
    EVENT_GRID = "EventGridSchema"
    CLOUD_EVENTS = "CloudEventSchemaV1_0"


@dataclass(frozen=True)
class Event:
    """What the outbox stores: everything needed to render an event in either schema."""

    id: str
    event_type: str
    subject: str
    data: Mapping[str, Any]
    event_time: datetime


def resource_topic(subscription_id: str, resource_group: str, resource_name: str) -> str:
    """ACS's ARM id of a communication resource, used as Event Grid ``topic``/CloudEvents ``source``."""
    return (
        f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}"
        f"/providers/Microsoft.Communication/communicationServices/{resource_name}"
    )


class TopicNamer:
    """A resource's topic from its name, under the configured Azure subscription and group."""

    def __init__(self, subscription_id: str, resource_group: str) -> None:
        self.subscription_id = subscription_id
        self.resource_group = resource_group

    def __call__(self, resource_name: str) -> str:
        return resource_topic(self.subscription_id, self.resource_group, resource_name)


def format_time(value: datetime) -> str:
    """RFC 3339 UTC with 7 fractional digits when there is a fraction, as Event Grid writes it."""
    if value.tzinfo is None:
        raise ValueError("event times must be timezone-aware")
    value = value.astimezone(UTC)
    base = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        base += f".{value.microsecond:06d}0"
    return base + "Z"


def eventgrid_event(event: Event, topic: str) -> dict[str, Any]:
    return {
        "id": event.id,
        "topic": topic,
        "subject": event.subject,
        "data": dict(event.data),
        "eventType": event.event_type,
        "dataVersion": "1.0",
        "metadataVersion": "1",
        "eventTime": format_time(event.event_time),
    }


def cloud_event(event: Event, source: str) -> dict[str, Any]:
    return {
        "id": event.id,
        "source": source,
        "subject": event.subject,
        "data": dict(event.data),
        "type": event.event_type,
        "time": format_time(event.event_time),
        "specversion": "1.0",
    }


def render(schema: DeliverySchema, events: Sequence[Event], topic: str) -> tuple[bytes, str]:
    """(body, content type) of one HTTP delivery of ``events`` in ``schema``.

    Event Grid always posts a JSON array; CloudEvents posts one structured event, or a batch.
    """
    if not events:
        raise ValueError("nothing to render")
    if schema is DeliverySchema.EVENT_GRID:
        payload: Any = [eventgrid_event(e, topic) for e in events]
        content_type = EVENTGRID_CONTENT_TYPE
    elif len(events) == 1:
        payload = cloud_event(events[0], topic)
        content_type = CLOUDEVENT_CONTENT_TYPE
    else:
        payload = [cloud_event(e, topic) for e in events]
        content_type = CLOUDEVENT_BATCH_CONTENT_TYPE
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode(), content_type


def render_event(schema: DeliverySchema, event: Event, topic: str) -> bytes:
    """One event as a JSON element of a delivery (what :func:`batch_body` joins)."""
    payload = (
        eventgrid_event(event, topic) if schema is DeliverySchema.EVENT_GRID else cloud_event(event, topic)
    )
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def batch_body(schema: DeliverySchema, elements: Sequence[bytes], *, batching: bool) -> tuple[bytes, str]:
    """(body, content type) of one HTTP delivery of rendered ``elements``.

    Event Grid posts a JSON array. CloudEvents posts one structured event when the subscription
    does not batch, and an ``application/cloudevents-batch+json`` array when it does (even of one
    event, so a batching receiver sees one format).
    """
    if not elements:
        raise ValueError("nothing to render")
    if schema is DeliverySchema.CLOUD_EVENTS and not batching:
        if len(elements) != 1:
            raise ValueError("a CloudEvents subscription that does not batch posts one event")
        return elements[0], CLOUDEVENT_CONTENT_TYPE
    content_type = (
        EVENTGRID_CONTENT_TYPE if schema is DeliverySchema.EVENT_GRID else CLOUDEVENT_BATCH_CONTENT_TYPE
    )
    return b"[" + b",".join(elements) + b"]", content_type


def render_callbacks(events: Sequence[Event]) -> tuple[bytes, str]:
    """(body, content type) of a call-automation callback: a JSON array of CloudEvents whose
    ``source`` is their subject (``calling/callConnections/{id}``), posted as application/json."""
    if not events:
        raise ValueError("nothing to render")
    payload = [{**cloud_event(e, e.subject), "datacontenttype": "application/json"} for e in events]
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode(), EVENTGRID_CONTENT_TYPE


def validation_event(
    event_id: str, topic: str, validation_code: str, validation_url: str | None, now: datetime
) -> dict[str, Any]:
    """Event Grid's ``SubscriptionValidationEvent`` (posted as a one-element array)."""
    data: dict[str, Any] = {"validationCode": validation_code}
    if validation_url:
        data["validationUrl"] = validation_url
    return {
        "id": event_id,
        "topic": topic,
        "subject": "",
        "data": data,
        "eventType": SUBSCRIPTION_VALIDATION,
        "eventTime": format_time(now),
        "metadataVersion": "1",
        "dataVersion": "2",
    }


# Data shapes ------------------------------------------------------------------------------------


def sms_received_data(
    message_id: str, from_: str, to: str, message: str, received: datetime, segment_count: int = 1
) -> dict[str, Any]:
    """``SMSReceived`` data with the swagger's camelCase keys.

    The spec's example (and older ACS docs) show PascalCase keys; the definitions every SDK model
    is generated from, and the .NET SDK's case-sensitive reader, use camelCase, so camelCase
    is what both case-sensitive and case-insensitive consumers read.
    """
    return {
        "messageId": message_id,
        "from": from_,
        "to": to,
        "message": message,
        "receivedTimestamp": format_time(received),
        "segmentCount": segment_count,
    }


def sms_delivery_report_data(
    message_id: str,
    from_: str,
    to: str,
    delivery_status: str,
    delivery_status_details: str,
    received: datetime,
    attempts: Sequence[tuple[datetime, int, int]] = (),
    tag: str | None = None,
) -> dict[str, Any]:
    """``SMSDeliveryReportReceived`` data; ``attempts`` are (time, segments ok, segments failed)."""
    data: dict[str, Any] = {
        "messageId": message_id,
        "from": from_,
        "to": to,
        "deliveryStatus": delivery_status,
        "deliveryStatusDetails": delivery_status_details,
        "receivedTimestamp": format_time(received),
        "deliveryAttempts": [
            {"timestamp": format_time(at), "segmentsSucceeded": ok, "segmentsFailed": failed}
            for at, ok, failed in attempts
        ],
    }
    if tag is not None:
        data["tag"] = tag
    return data


def phone_identifier(number: str) -> dict[str, Any]:
    """A ``CommunicationIdentifierModel`` for a phone number (E.164)."""
    return {"kind": "phoneNumber", "rawId": f"4:{number}", "phoneNumber": {"value": number}}


def incoming_call_data(
    to: Mapping[str, Any],
    from_: Mapping[str, Any],
    server_call_id: str,
    incoming_call_context: str,
    correlation_id: str,
    caller_display_name: str | None = None,
    sip_headers: Mapping[str, str] | None = None,
    voip_headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "to": dict(to),
        "from": dict(from_),
        "serverCallId": server_call_id,
        "callerDisplayName": caller_display_name or "",
        "customContext": {"sipHeaders": dict(sip_headers or {}), "voipHeaders": dict(voip_headers or {})},
        "incomingCallContext": incoming_call_context,
        "correlationId": correlation_id,
    }
    return data


def incoming_call_subject(from_raw_id: str, to_raw_id: str) -> str:
    return f"/caller/{from_raw_id}/recipient/{to_raw_id}"


def phone_subject(number: str) -> str:
    """``/phonenumber/15555555555``: the subject ACS gives SMS events (digits, no plus)."""
    return "/phonenumber/" + number.lstrip("+")


def subject_matches(subject: str, begins_with: str | None, ends_with: str | None) -> bool:
    """Event Grid's subject filter (case-insensitive, as Event Grid's default)."""
    lowered = subject.lower()
    if begins_with and not lowered.startswith(begins_with.lower()):
        return False
    return not (ends_with and not lowered.endswith(ends_with.lower()))
