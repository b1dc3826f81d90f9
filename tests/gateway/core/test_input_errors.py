"""gateway.core.input_errors: what is wrong with the input, in sentences about it."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, Field, ValidationError

from gateway.core.input_errors import describe, describe_errors, location, request_sentence
from gateway.sms.schemas import ConnectionCreate, RouteCreate, SendMessageRequest

NO_DUMP = ("validation error", "errors.pydantic.dev", "after validation", "Input should", "^")


def _errors(model: type[BaseModel], data: dict[str, Any]) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return caught.value


def _clean(text: str) -> str:
    for fragment in NO_DUMP:
        assert fragment not in text, text
    return text


def test_smpp_connection_port_and_bind_mode() -> None:
    exc = _errors(
        ConnectionCreate,
        {"name": "c", "host": "h", "port": 99999, "system_id": "s", "password": "p", "bind_mode": "bogus"},
    )
    assert _clean(describe(exc)) == (
        "The port must be less than or equal to 65535 (got 99999). "
        "The bind mode must be one of 'transceiver' or 'transmitter+receiver', not 'bogus'."
    )


def test_route_prefix_is_explained_not_a_regex() -> None:
    words = _clean(describe(_errors(RouteCreate, {"prefix": "1", "connection": "c"})))
    assert words.startswith("The prefix '1' must be '+' followed by up to 15 digits")
    assert "[0-9]" not in words


def test_connection_name_is_explained_not_a_regex() -> None:
    words = _clean(
        describe(
            _errors(
                ConnectionCreate, {"name": "-x", "host": "h", "port": 1, "system_id": "s", "password": ""}
            )
        )
    )
    assert words.startswith("The connection name '-x' must be letters, digits")


def test_too_many_recipients_names_the_field_and_counts() -> None:
    exc = _errors(SendMessageRequest, {"from": "+1", "smsRecipients": [{"to": "+1"}] * 101, "message": "x"})
    words = [_clean(request_sentence({**e, "loc": ("body", *e["loc"])})) for e in exc.errors()]
    assert words == ["The value of 'smsRecipients' must have at most 100 entries; it has 101."]


class Sample(BaseModel):
    name: str = Field(min_length=1)
    tags: list[str] = Field(default_factory=list, max_length=2)
    count: int = 0
    ratio: float = Field(default=0.5, gt=0)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, "The name is required."),
        ({"name": ""}, "The name must not be empty."),
        ({"name": "n", "tags": ["a", "b", "c"]}, "The tags must have at most 2 entries; it has 3."),
        ({"name": "n", "count": "many"}, "The count must be a valid integer (got 'many')."),
        ({"name": "n", "ratio": 0}, "The ratio must be greater than 0.0 (got 0)."),
    ],
)
def test_sentences(data: dict[str, Any], expected: str) -> None:
    assert _clean(describe(_errors(Sample, data))) == expected


def test_labels_and_repeated_errors() -> None:
    exc = _errors(Sample, {})
    assert describe(exc, {"name": "tenant name"}) == "The tenant name is required."
    errors = [{"type": "missing", "loc": ("a",), "msg": "Field required"}] * 2
    assert describe_errors(errors) == "The a is required."
    assert describe_errors([]) == "The input is invalid."


def test_location() -> None:
    assert location(("body", "smsRecipients", 0, "to")) == "smsRecipients[0].to"
    assert location(()) == "request"
