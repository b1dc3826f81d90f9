"""createCall's request checks and how a route plan's destination is kept on the call row."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.calls import outbound
from gateway.calls.routing import Destination, RouteSource, Transport
from gateway.core.errors import BadRequest

PSTN = {"kind": "phoneNumber", "phoneNumber": {"value": "+15550001111"}}


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        (None, "targets is required"),
        ([], "targets is required"),
        ([PSTN, PSTN], "Only one target"),
        ([{"kind": "communicationUser", "communicationUser": {"id": "8:acs:x"}}], "PSTN phone number"),
    ],
)
def test_create_call_takes_exactly_one_pstn_target(targets: Any, message: str) -> None:
    with pytest.raises(BadRequest) as refused:
        outbound.call_target({"targets": targets})
    assert refused.value.status_code == 400
    assert message in refused.value.message
    assert refused.value.target == "targets"


def test_a_raw_id_names_a_pstn_target() -> None:
    assert outbound.call_target({"targets": [{"rawId": "4:+15550001111"}]}) == "+15550001111"
    assert outbound.call_target({"targets": [PSTN]}) == "+15550001111"


@pytest.mark.parametrize("caller", [None, {}, {"value": ""}, {"value": "alice"}, "+15550001111"])
def test_the_caller_id_is_required_and_e164(caller: Any) -> None:
    with pytest.raises(BadRequest) as refused:
        outbound.caller_id({"sourceCallerIdNumber": caller} if caller is not None else {})
    assert refused.value.target == "sourceCallerIdNumber"
    assert outbound.caller_id({"sourceCallerIdNumber": {"value": "+14255550123"}}) == "+14255550123"


def test_a_destination_keeps_no_password() -> None:
    destination = Destination(RouteSource.OPERATOR, "+1", "carrier-a", "10.0.0.1", 5060, Transport.UDP)
    assert outbound.destination_json(destination, "user") == {
        "source": "operator",
        "route": "+1",
        "trunk": "carrier-a",
        "host": "10.0.0.1",
        "port": 5060,
        "transport": "udp",
        "username": "user",
    }
    assert "username" not in outbound.destination_json(destination, None)


def test_a_caller_id_without_outbound_calling_is_403_in_acs_shape() -> None:
    body = outbound.CallerIdNotAllowed("+14255550100").body()
    assert body["error"]["code"] == "Forbidden"
    assert body["error"]["target"] == "sourceCallerIdNumber"
