"""The official SipRoutingClient (azure-communication-phonenumbers 1.4.0, SipRouting 2023-03-01)
against a real ``trunkline api`` over HTTPS: trunks and routes set, read back, changed and
deleted, and ACS's refusals; and the operator's SIP trunks made with the CLI, seen by the admin API."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from azure.communication.phonenumbers.siprouting import SipRoutingClient, SipTrunk, SipTrunkRoute
from azure.core.exceptions import HttpResponseError

from tests.e2e.helpers import TrunklineServer

pytestmark = pytest.mark.e2e

SBC1 = "sbc1.tenant.example"
SBC2 = "sbc2.tenant.example"
US = r"^\+1\d{10}$"


@pytest.fixture
def sip_client(new_resource: Callable[[str], dict[str, Any]]) -> Iterator[SipRoutingClient]:
    """A client of a fresh resource, built from its connection string alone."""
    resource = new_resource(f"sip-routing-{uuid.uuid4().hex[:12]}")
    with SipRoutingClient.from_connection_string(resource["connectionString"]) as client:
        yield client


def _trunks(client: SipRoutingClient) -> dict[str, int]:
    return {t.fqdn: t.sip_signaling_port for t in client.list_trunks()}


def _routes(client: SipRoutingClient) -> list[tuple[str, str, list[str], str | None]]:
    return [(r.name, r.number_pattern, list(r.trunks or []), r.description) for r in client.list_routes()]


def _refusal(call: Callable[[], None]) -> tuple[int, str, str]:
    with pytest.raises(HttpResponseError) as caught:
        call()
    error = caught.value
    body = json.loads(error.response.text())["error"]
    assert error.error is not None
    assert error.error.code == "UnprocessableConfiguration"
    return error.status_code or 0, body["innererror"]["code"], body["message"]


def test_sip_trunks_and_routes_round_trip(sip_client: SipRoutingClient) -> None:
    assert _trunks(sip_client) == {}
    assert _routes(sip_client) == []
    sip_client.set_trunks(
        [SipTrunk(fqdn=SBC1, sip_signaling_port=5061), SipTrunk(fqdn=SBC2, sip_signaling_port=5062)]
    )
    assert _trunks(sip_client) == {SBC1: 5061, SBC2: 5062}
    sip_client.set_routes(
        [
            SipTrunkRoute(name="us", number_pattern=US, trunks=[SBC2, SBC1], description="US numbers"),
            SipTrunkRoute(name="rest", number_pattern=r"^\+\d+$", trunks=[SBC1]),
        ]
    )
    assert _routes(sip_client) == [
        ("us", US, [SBC2, SBC1], "US numbers"),
        ("rest", r"^\+\d+$", [SBC1], None),
    ]
    # One trunk read and changed; the routes stay.
    assert sip_client.get_trunk(SBC2).sip_signaling_port == 5062
    sip_client.set_trunk(SipTrunk(fqdn=SBC2, sip_signaling_port=5070))
    assert _trunks(sip_client) == {SBC1: 5061, SBC2: 5070}
    with pytest.raises(KeyError):
        sip_client.get_trunk("nothere.tenant.example")
    # A trunk a route uses cannot go; once no route uses it, it can (twice: no error).
    status, inner, message = _refusal(lambda: sip_client.delete_trunk(SBC2))
    assert (status, inner) == (422, "MissingTrunk")
    assert SBC2 in message
    sip_client.set_routes([SipTrunkRoute(name="rest", number_pattern=r"^\+\d+$", trunks=[SBC1])])
    sip_client.delete_trunk(SBC2)
    sip_client.delete_trunk(SBC2)
    assert _trunks(sip_client) == {SBC1: 5061}
    # set_trunks replaces the list: what is not in it is deleted (here, after the routes).
    sip_client.set_routes([])
    sip_client.set_trunks([SipTrunk(fqdn=SBC2, sip_signaling_port=5080)])
    assert _trunks(sip_client) == {SBC2: 5080}
    assert _routes(sip_client) == []


def test_sip_routing_refusals(sip_client: SipRoutingClient) -> None:
    sip_client.set_trunks([SipTrunk(fqdn=SBC1, sip_signaling_port=5061)])
    cases: list[tuple[list[SipTrunkRoute], int, str]] = [
        (
            [SipTrunkRoute(name="r", number_pattern=US, trunks=["missing.tenant.example"])],
            422,
            "MissingTrunk",
        ),
        (
            [SipTrunkRoute(name="r", number_pattern=US), SipTrunkRoute(name="r", number_pattern=US)],
            400,
            "DuplicatedRoute",
        ),
        ([SipTrunkRoute(name="r", number_pattern=US, trunks=[SBC1, SBC1])], 400, "RouteWithDuplicatedTrunk"),
        ([SipTrunkRoute(name="r", number_pattern="^(\\+1")], 422, "InvalidRouteNumberPattern"),
        ([SipTrunkRoute(name="", number_pattern=US)], 422, "InvalidRouteName"),
    ]
    for routes, status, inner in cases:
        assert _refusal(lambda routes=routes: sip_client.set_routes(routes))[:2] == (status, inner)
    assert _refusal(lambda: sip_client.set_trunk(SipTrunk(fqdn="-1", sip_signaling_port=5061)))[:2] == (
        422,
        "InvalidTrunkFqdn",
    )
    bad_port = SipTrunk(fqdn=SBC2, sip_signaling_port=0)
    assert _refusal(lambda: sip_client.set_trunk(bad_port))[:2] == (422, "InvalidTrunkSipSignalingPort")
    # Nothing refused was kept.
    assert _trunks(sip_client) == {SBC1: 5061}
    assert _routes(sip_client) == []


def test_sip_configurations_are_per_resource(
    sip_client: SipRoutingClient, new_resource: Callable[[str], dict[str, Any]]
) -> None:
    sip_client.set_trunks([SipTrunk(fqdn=SBC1, sip_signaling_port=5061)])
    other = new_resource(f"sip-routing-other-{uuid.uuid4().hex[:12]}")
    with SipRoutingClient.from_connection_string(other["connectionString"]) as client:
        assert _trunks(client) == {}
        client.delete_trunk(SBC1)  # not theirs: nothing happens to ours
    assert _trunks(sip_client) == {SBC1: 5061}


def test_operator_sip_trunks_from_the_cli_in_the_admin_api(
    trunkline: TrunklineServer, admin: httpx.Client
) -> None:
    def cli(*args: str) -> str:
        result = trunkline.cli(*args)
        assert result.returncode == 0, result.stderr
        return result.stdout

    carrier = f"sip-carrier-{id(object())}"
    cli("carriers", "add", carrier, "--kind", "sip")
    name = f"trunk-{id(object())}"
    cli("sip", "trunk", "add", name, "--carrier", carrier, "--host", "127.0.0.1", "--port", "5080")
    cli("sip", "route", "add", "--prefix", "+999", "--trunk", name)
    trunks = {t["name"]: t for t in admin.get("/admin/sip/trunks").json()["value"]}
    assert (trunks[name]["host"], trunks[name]["port"], trunks[name]["carrier"]) == (
        "127.0.0.1",
        5080,
        carrier,
    )
    assert {"prefix": "+999", "trunks": [name]} in admin.get("/admin/sip/routes").json()["value"]
    refused = admin.post("/admin/sip/trunks", json={"name": name, "carrier": carrier, "host": "x y"})
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == "The host 'x y' is neither a host name nor an IP address."
    assert admin.delete(f"/admin/sip/trunks/{name}").status_code == 204
    assert admin.delete("/admin/sip/routes/+999").status_code == 404  # went with its only trunk
