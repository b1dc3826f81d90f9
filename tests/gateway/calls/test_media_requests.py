"""Media requests on the SIP process's queue: they round-trip, garbage is refused, and the queue's
consumer hands them to the media controller rather than to the pool."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.calls import media_requests
from gateway.calls.media_requests import Action, MediaRequest, MediaRequestError
from sip.control.commands import CommandConsumer
from sip.dtmf_mode import DtmfMode
from sip.worker.messages import (
    Hangup,
)
from sip.worker.wire import encode

text = st.text(max_size=30)
source = st.fixed_dictionaries({"kind": st.just("file"), "file": st.fixed_dictionaries({"uri": text})})
requests = st.builds(
    MediaRequest,
    action=st.sampled_from(Action),
    call_id=text,
    leg_id=text,
    resource_id=text,
    server_call_id=text,
    correlation_id=text,
    operation_id=text,
    subscription_id=st.none() | text,
    operation_context=st.none() | text,
    sources=st.lists(source, max_size=3).map(tuple),
    loop=st.booleans(),
    interrupt=st.booleans(),
    interrupt_prompt=st.booleans(),
    max_tones=st.integers(1, 100),
    inter_tone_timeout=st.integers(1, 60).map(float),
    initial_silence_timeout=st.integers(0, 300).map(float),
    stop_tones=st.text("0123456789*#", max_size=3),
    tones=st.text("0123456789*#ABCD", max_size=18),
    dtmf_mode=st.sampled_from(["", *DtmfMode]),
)


@given(requests)
def test_a_media_request_round_trips(request: MediaRequest) -> None:
    wire = media_requests.encode(request)
    assert wire.startswith('{"type":"MediaRequest"')
    assert media_requests.decode(json.loads(wire)) == request


@pytest.mark.parametrize(
    "body",
    [
        {"type": "Hangup", "call_id": "x"},
        {"type": "MediaRequest", "action": "dance", "call_id": "x"},
        {"type": "MediaRequest", "action": "play"},
        {"type": "MediaRequest", "action": "play", "call_id": "c", "surprise": 1},
        {"type": "MediaRequest", "action": "recognize", "call_id": "c", "dtmf_mode": "tones"},
    ],
)
def test_garbage_is_refused(body: dict[str, Any]) -> None:
    with pytest.raises(MediaRequestError):
        media_requests.decode(body)


class Message:
    def __init__(self) -> None:
        self.acked = False

    def ack(self) -> None:
        self.acked = True


def test_the_consumer_sends_media_requests_to_media_and_commands_to_the_pool() -> None:
    commands: list[Any] = []
    media: list[MediaRequest] = []
    consumer = CommandConsumer(None, "p1", commands.append, media.append)  # type: ignore[arg-type]
    request = MediaRequest(Action.CANCEL_ALL, "c", "l", "r", "s", "corr", "op")
    for body in (media_requests.encode(request), encode(Hangup("l")).decode(), '{"type":"MediaRequest"}'):
        message = Message()
        consumer._on_message(body, message)
        assert message.acked
    assert media == [request]
    assert commands == [Hangup("l")]
