"""Callback and IncomingCall shapes, and the callback body the events pipeline posts."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from azure.core.messaging import CloudEvent
from hypothesis import given
from hypothesis import strategies as st

from gateway.calls import callbacks
from gateway.calls.lifecycle import Callback
from gateway.events import builder

IDS = callbacks.CallIds("c0ffee", "c2VydmVy", "corr")


@given(st.sampled_from(Callback), st.none() | st.text(max_size=20), st.integers(0, 699))
def test_callbacks_render_as_a_json_array_of_cloud_events(
    kind: Callback, context: str | None, code: int
) -> None:
    result = callbacks.result_information(code, 0, "m", code if code >= 300 else None)
    data = callbacks.callback_data(IDS, context, result)
    event = builder.Event(
        "id1", callbacks.callback_type(kind), callbacks.callback_subject(IDS.call_connection_id), data,
        datetime(2026, 1, 1, tzinfo=UTC),
    )  # fmt: skip
    body, content_type = builder.render_callbacks([event])
    assert content_type == "application/json"
    items = json.loads(body)
    parsed = CloudEvent.from_dict(items[0])
    assert parsed.type == f"Microsoft.Communication.{kind.value}"
    assert parsed.source == parsed.subject == "calling/callConnections/c0ffee"
    assert parsed.data["callConnectionId"] == "c0ffee"
    assert parsed.data["resultInformation"]["code"] == code
    assert ("operationContext" in parsed.data) == (context is not None)


def test_incoming_call_event_has_the_acs_shape() -> None:
    subject, data = callbacks.incoming_call_event(IDS, "+15551230000", "+14255550123", "Bob", "ctx")
    assert subject == "/caller/4:+15551230000/recipient/4:+14255550123"
    assert set(data) >= {
        "to",
        "from",
        "serverCallId",
        "callerDisplayName",
        "incomingCallContext",
        "correlationId",
    }
    assert data["to"]["phoneNumber"]["value"] == "+14255550123"
