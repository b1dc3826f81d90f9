"""The messages between a SIP worker process and its supervisor, and their wire form.

Commands go to a worker, events come back; both are frozen dataclasses that name calls by the
string call ids the platform uses, never by pjsua2 objects. On the wire each message is one
JSON object ``{"type": <tag>, ...fields}`` (UTF-8 bytes), sent as one message over the
worker's ``multiprocessing`` pipe. ``encode``/``decode`` are pure and round-trip exactly.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from dataclasses import dataclass
from typing import Any, Union

Headers = tuple[tuple[str, str], ...]


class CallState(enum.StrEnum):
    """Where a call stands, as the worker reports it."""

    CALLING = "calling"  # our INVITE is out (outbound)
    RINGING = "ringing"  # 180/183 sent (inbound) or received (outbound)
    CONNECTING = "connecting"  # 200 OK sent or received, ACK pending
    CONNECTED = "connected"  # confirmed dialog
    DISCONNECTED = "disconnected"  # over; the call id is free for the worker


# Commands (supervisor -> worker) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ring:
    """Send 180 Ringing for an incoming call."""

    call_id: str


@dataclass(frozen=True, slots=True)
class Answer:
    """Answer an incoming call: 200 OK with an SDP offering PCMU/PCMA."""

    call_id: str


@dataclass(frozen=True, slots=True)
class Reject:
    """Refuse an incoming call with a final status (4xx-6xx)."""

    call_id: str
    status: int
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Redirect:
    """Refuse an incoming call with 302 Moved Temporarily and ``target`` as its Contact."""

    call_id: str
    target: str


@dataclass(frozen=True, slots=True)
class Hangup:
    """End a call in any state: CANCEL or BYE, or 603 for an unanswered incoming call."""

    call_id: str


@dataclass(frozen=True, slots=True)
class MakeCall:
    """Place an outbound INVITE to ``target`` (a SIP URI) with ``from_uri`` as the caller id.

    ``call_id`` is chosen by the sender. ``username``/``password`` answer a digest challenge;
    ``headers`` are added to the INVITE (e.g. P-Asserted-Identity).
    """

    call_id: str
    target: str
    from_uri: str
    display_name: str = ""
    username: str | None = None
    password: str | None = None
    headers: Headers = ()


@dataclass(frozen=True, slots=True)
class QueryMedia:
    """Ask for a call's RTP counters; the worker answers with ``MediaStats``."""

    call_id: str


@dataclass(frozen=True, slots=True)
class Shutdown:
    """Hang up every call and stop the worker process."""


Command = Union[Ring, Answer, Reject, Redirect, Hangup, MakeCall, QueryMedia, Shutdown]  # noqa: UP007

# Events (worker -> supervisor) ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkerReady:
    """The worker's endpoint is up and listening."""

    worker: int
    sip_port: int
    pid: int


@dataclass(frozen=True, slots=True)
class IncomingCall:
    """A new INVITE; the call waits (100 Trying sent) for Ring/Answer/Reject/Redirect.

    ``source`` is ``host:port`` of the carrier: the packet's source, or the edge's
    ``X-Trunkline-Source`` header when the worker sits behind Kamailio.
    """

    call_id: str
    from_uri: str
    to_uri: str
    display_name: str
    source: str
    sip_call_id: str
    request_uri: str = ""
    headers: Headers = ()


@dataclass(frozen=True, slots=True)
class CallStateChanged:
    """A call changed state; ``status``/``reason`` are the last SIP status and its phrase."""

    call_id: str
    state: CallState
    status: int = 0
    reason: str = ""


@dataclass(frozen=True, slots=True)
class MediaActive:
    """The call's audio stream is up (and connected to the conference bridge)."""

    call_id: str
    codec: str


@dataclass(frozen=True, slots=True)
class MediaStats:
    """RTP packet counters of a call's audio stream, in answer to ``QueryMedia``."""

    call_id: str
    rx_packets: int
    tx_packets: int


@dataclass(frozen=True, slots=True)
class CommandFailed:
    """A command could not be carried out (unknown call, wrong state, pjsua2 error)."""

    call_id: str
    command: str
    reason: str


Event = Union[WorkerReady, IncomingCall, CallStateChanged, MediaActive, MediaStats, CommandFailed]  # noqa: UP007
Message = Union[Command, Event]  # noqa: UP007

_COMMANDS: tuple[type[Any], ...] = typing.get_args(Command)
_EVENTS: tuple[type[Any], ...] = typing.get_args(Event)
_TYPES: dict[str, type[Any]] = {cls.__name__: cls for cls in (*_COMMANDS, *_EVENTS)}


class MessageError(ValueError):
    """Bytes that are not a well-formed message."""


def encode(message: Message) -> bytes:
    """The wire form of a message: one JSON object tagged with its type."""
    body: dict[str, Any] = {"type": type(message).__name__}
    for field in dataclasses.fields(message):
        value = getattr(message, field.name)
        body[field.name] = [list(pair) for pair in value] if isinstance(value, tuple) else value
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def decode(data: bytes) -> Message:
    """The message that ``encode`` made these bytes from; ``MessageError`` otherwise."""
    try:
        body = json.loads(data)
        cls = _TYPES[body.pop("type")]
        hints = typing.get_type_hints(cls)
        values = {
            f.name: _coerce(hints[f.name], body.pop(f.name))
            for f in dataclasses.fields(cls)
            if f.name in body
        }
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise MessageError(f"not a worker message: {exc}") from exc
    if body:
        raise MessageError(f"unknown fields {sorted(body)}")
    try:
        message: Message = cls(**values)
    except TypeError as exc:
        raise MessageError(str(exc)) from exc
    return message


def is_command(message: Message) -> bool:
    return isinstance(message, _COMMANDS)


def _coerce(hint: Any, value: Any) -> Any:
    """JSON value -> the field's Python type (enums, header tuples, optional scalars)."""
    if value is None:
        if type(None) in typing.get_args(hint):
            return None
        raise TypeError("null for a required field")
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    if hint is Headers or typing.get_origin(hint) is tuple:
        return tuple((_text(name), _text(val)) for name, val in value)
    scalars = [a for a in typing.get_args(hint) if a is not type(None)] if _is_union(hint) else [hint]
    if scalars == [int] and (isinstance(value, bool) or not isinstance(value, int)):
        raise TypeError(f"expected an integer, got {value!r}")
    if scalars == [str]:
        return _text(value)
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (Union, types.UnionType)
