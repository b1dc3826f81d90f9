"""The wire form of ``sip.worker.messages``: each message one JSON object ``{"type": <tag>,
...fields}`` (UTF-8 bytes), sent as one message over a worker's ``multiprocessing`` pipe (and,
for commands, through a SIP process's queue). ``encode``/``decode`` are pure and round-trip
exactly; ``decode`` refuses anything else with ``MessageError``.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from typing import Any, Union

from sip.worker.messages import Command, Event, Headers, Message

_COMMANDS: tuple[type[Any], ...] = typing.get_args(Command)
_EVENTS: tuple[type[Any], ...] = typing.get_args(Event)
_TYPES: dict[str, type[Any]] = {cls.__name__: cls for cls in (*_COMMANDS, *_EVENTS)}


def _fields_of(cls: type[Any]) -> tuple[tuple[str, Any], ...]:
    hints = typing.get_type_hints(cls)
    return tuple((f.name, hints[f.name]) for f in dataclasses.fields(cls))


# Each message type's fields and type hints, resolved once: resolving them for every message
# was a tenth of the SIP controller's CPU.
_FIELDS = {name: _fields_of(cls) for name, cls in _TYPES.items()}


class MessageError(ValueError):
    """Bytes that are not a well-formed message."""


def encode(message: Message) -> bytes:
    """The wire form of a message: one JSON object tagged with its type."""
    body: dict[str, Any] = {"type": type(message).__name__}
    for field in dataclasses.fields(message):
        value = getattr(message, field.name)
        if isinstance(value, tuple):
            value = [list(item) if isinstance(item, tuple) else item for item in value]
        body[field.name] = value
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def decode(data: bytes) -> Message:
    """The message that ``encode`` made these bytes from; ``MessageError`` otherwise."""
    try:
        body = json.loads(data)
        name = body.pop("type")
        cls = _TYPES[name]
        values = {field: _coerce(hint, body.pop(field)) for field, hint in _FIELDS[name] if field in body}
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
    if hint == Headers:
        return tuple((_text(name), _text(val)) for name, val in value)
    if typing.get_origin(hint) is tuple:  # tuple[str, ...]
        return tuple(_text(item) for item in value)
    scalars = [a for a in typing.get_args(hint) if a is not type(None)] if _is_union(hint) else [hint]
    return _scalar(scalars, value)


def _scalar(scalars: list[Any], value: Any) -> Any:
    if scalars == [bool] and not isinstance(value, bool):
        raise TypeError(f"expected a boolean, got {value!r}")
    if scalars == [int] and (isinstance(value, bool) or not isinstance(value, int)):
        raise TypeError(f"expected an integer, got {value!r}")
    if scalars == [float]:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"expected a number, got {value!r}")
        return float(value)
    return _text(value) if scalars == [str] else value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (Union, types.UnionType)
