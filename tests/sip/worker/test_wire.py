"""sip/worker/wire.py: every worker message round-trips through encode/decode; garbage is refused."""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import typing

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sip.worker import messages, wire
from sip.worker.messages import (
    CallState,
    CallStateChanged,
    Command,
    DtmfMethod,
    Event,
    MakeCall,
    Message,
    Shutdown,
)
from sip.worker.wire import MessageError, decode, encode, is_command

text = st.text(max_size=40)
headers = st.lists(st.tuples(text, text), max_size=4).map(tuple)


def strategy_for(cls: type) -> st.SearchStrategy[Message]:
    hints = typing.get_type_hints(cls)
    fields: dict[str, st.SearchStrategy[object]] = {}
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            fields[field.name] = st.sampled_from(hint)
        elif hint is bool:
            fields[field.name] = st.booleans()
        elif hint is int:
            fields[field.name] = st.integers(-(2**31), 2**31)
        elif hint is float:
            fields[field.name] = st.floats(allow_nan=False, allow_infinity=False)
        elif hint is str:
            fields[field.name] = text
        elif hint == (str | None):
            fields[field.name] = st.none() | text
        elif hint == tuple[str, ...]:
            fields[field.name] = st.lists(text, max_size=4).map(tuple)
        else:
            fields[field.name] = headers
    return st.builds(cls, **fields)


every_message = st.one_of([strategy_for(cls) for cls in (*typing.get_args(Command), *typing.get_args(Event))])


@given(every_message)
def test_every_message_round_trips(message: Message) -> None:
    assert decode(encode(message)) == message


@given(every_message)
def test_commands_and_events_are_told_apart(message: Message) -> None:
    assert is_command(message) == isinstance(message, typing.get_args(Command))


def test_wire_form_is_one_tagged_json_object() -> None:
    event = CallStateChanged("c1", CallState.DISCONNECTED, 487, "Request Terminated")
    assert encode(event) == (
        b'{"type":"CallStateChanged","call_id":"c1","state":"disconnected","status":487,'
        b'"reason":"Request Terminated"}'
    )
    call = MakeCall("o1", "sip:+1@h", "sip:+2@t", headers=(("P-Asserted-Identity", "<sip:+2@t>"),))
    assert b'"headers":[["P-Asserted-Identity","<sip:+2@t>"]]' in encode(call)
    assert decode(b'{"type":"Shutdown"}') == Shutdown()
    play = messages.Play("c1", "op1", ("/a.wav", "/b.wav"), loop=True)
    assert b'"files":["/a.wav","/b.wav"],"loop":true' in encode(play)
    assert (
        decode(encode(messages.SendDtmf("c1", "op", "12#", DtmfMethod.SIP_INFO))).method
        is DtmfMethod.SIP_INFO
    )


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"[]",
        b'{"type":"Nope"}',
        b'{"call_id":"x"}',
        b'{"type":"Answer"}',
        b'{"type":"Answer","call_id":1}',
        b'{"type":"Answer","call_id":"x","extra":1}',
        b'{"type":"Reject","call_id":"x","status":"486"}',
        b'{"type":"Reject","call_id":"x","status":true}',
        b'{"type":"CallStateChanged","call_id":"x","state":"gone"}',
        b'{"type":"MakeCall","call_id":"x","target":"t","from_uri":"f","headers":[["a"]]}',
        b'{"type":"MakeCall","call_id":"x","target":null,"from_uri":"f"}',
        b'{"type":"Play","call_id":"x","operation_id":"o","files":[1]}',
        b'{"type":"Play","call_id":"x","operation_id":"o","files":["a"],"loop":1}',
        b'{"type":"SendDtmf","call_id":"x","operation_id":"o","tones":"1","method":"morse"}',
        b'{"type":"DtmfReceived","call_id":"x","digit":"1","method":"rfc2833","received_at":"1.5"}',
        b'{"type":"DtmfReceived","call_id":"x","digit":"1","method":"rfc2833","received_at":false}',
        b"\xff",
    ],
)
def test_malformed_messages_are_refused(data: bytes) -> None:
    with pytest.raises(MessageError):
        decode(data)


@given(st.binary(max_size=64))
def test_decode_never_raises_anything_but_message_error(data: bytes) -> None:
    with contextlib.suppress(MessageError):
        decode(data)


def test_every_message_type_is_registered() -> None:
    names = {cls.__name__ for cls in (*typing.get_args(Command), *typing.get_args(Event))}
    assert names == set(wire._TYPES)
