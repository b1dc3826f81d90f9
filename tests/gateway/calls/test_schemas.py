"""calls.schemas: trunk and route specs normalise their input and say in sentences what is wrong."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from gateway.calls.schemas import RouteSpec, TrunkSpec, describe


def _words(model: type[TrunkSpec] | type[RouteSpec], data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return describe(caught.value)


def test_specs_are_normalised() -> None:
    spec = TrunkSpec.model_validate(
        {
            "name": "t",
            "carrier": "c",
            "host": "SIP.Example.NET.",
            "allow": ["10.1.2.3/8", "10.0.0.0/8", "::1"],
        }
    )
    assert spec.host == "sip.example.net"
    assert spec.allow == ["10.0.0.0/8", "::1/128"]
    assert spec.codecs == ["PCMU", "PCMA"]
    assert (
        TrunkSpec.model_validate({"name": "t", "carrier": "c", "host": "[2001:db8::1]"}).host == "2001:db8::1"
    )
    assert RouteSpec(prefix=" +44 ", trunks=["a"]).prefix == "+44"


def test_sentences() -> None:
    assert _words(RouteSpec, {"prefix": "+1", "trunks": []}) == "The trunks must not be empty."
    assert _words(RouteSpec, {"prefix": "+1", "trunks": ["a", "a"]}) == "The trunk 'a' is listed twice."
    assert (
        _words(TrunkSpec, {"name": "t", "carrier": "", "host": "h.example"})
        == "The carrier must not be empty."
    )
    assert _words(TrunkSpec, {"name": "t", "carrier": "c", "host": "h.example", "port": "x"}).startswith(
        "The port must be a valid integer"
    )
    assert _words(TrunkSpec, {}) == "The name is required. The carrier is required. The host is required."
