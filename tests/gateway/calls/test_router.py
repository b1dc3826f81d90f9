"""The SipRouting API (GET/PATCH /sip, 2023-03-01) and the operator's /admin/sip API, on SQLite
and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.support.acs import AcsClient, admin_headers, assert_acs_error

SIP = "/sip?api-version=2023-03-01"
MERGE_PATCH = "application/merge-patch+json"


def patch(acs: AcsClient, body: Any, media_type: str = MERGE_PATCH) -> httpx.Response:
    def content_type(headers: dict[str, str]) -> None:
        headers["Content-Type"] = media_type

    return acs.request("PATCH", SIP, body, tamper=content_type)


def get(acs: AcsClient) -> httpx.Response:
    return acs.request("GET", SIP)


def refused(response: httpx.Response, status: int, inner: str, target: str | None = None) -> str:
    error = assert_acs_error(response, status, "UnprocessableConfiguration", target)
    assert error["innererror"]["code"] == inner, error
    message: str = error["message"]
    return message


def test_a_new_resource_has_an_empty_configuration(acs_a: AcsClient) -> None:
    response = get(acs_a)
    assert response.status_code == 200, response.text
    assert response.json() == {"trunks": {}, "routes": []}


def test_the_spec_example_round_trips(acs_a: AcsClient) -> None:
    body = {
        "trunks": {"vendor.xyz.biz": {"sipSignalingPort": 5061}},
        "routes": [
            {
                "name": "VendorXYZ",
                "description": "External route XYZ",
                "numberPattern": "^\\+?\\d+$",
                "trunks": ["vendor.xyz.biz"],
            }
        ],
    }
    response = patch(acs_a, body)
    assert response.status_code == 200, response.text
    assert response.json() == body
    assert get(acs_a).json() == body


def test_merge_patch_semantics(acs_a: AcsClient, acs_b: AcsClient) -> None:
    trunks = {"a.example.com": {"sipSignalingPort": 5061}, "b.example.com": {"sipSignalingPort": 5062}}
    assert patch(acs_a, {"trunks": trunks}).status_code == 200
    routes: list[dict[str, Any]] = [
        {"name": "us", "numberPattern": "^\\+1\\d{10}$", "trunks": ["b.example.com", "a.example.com"]},
        {"name": "all", "numberPattern": "^\\+\\d+$"},
    ]
    after = patch(acs_a, {"routes": routes}).json()
    assert after["trunks"] == trunks  # routes alone leave the trunks
    assert after["routes"] == [routes[0], {**routes[1], "trunks": []}]
    # A trunk's port changes; a route keeps using it; plain JSON is taken too.
    changed = patch(acs_a, {"trunks": {"a.example.com": {"sipSignalingPort": 6000}}}, "application/json")
    assert changed.json()["trunks"]["a.example.com"] == {"sipSignalingPort": 6000}
    assert changed.json()["routes"] == after["routes"]
    # Routes are replaced as a whole; then the unused trunk can go (and a missing one is no error).
    assert patch(acs_a, {"routes": [routes[1]]}).status_code == 200
    gone = patch(acs_a, {"trunks": {"b.example.com": None, "nothere.example.com": None}})
    assert gone.status_code == 200, gone.text
    assert gone.json() == {
        "trunks": {"a.example.com": {"sipSignalingPort": 6000}},
        "routes": [routes[1] | {"trunks": []}],
    }
    # Each resource has its own configuration.
    assert get(acs_b).json() == {"trunks": {}, "routes": []}


def test_refusals_in_acs_shape(acs_a: AcsClient) -> None:
    assert patch(acs_a, {"trunks": {"a.example.com": {"sipSignalingPort": 5061}}}).status_code == 200
    route = {"name": "r", "numberPattern": "^\\+1\\d+$", "trunks": ["a.example.com"]}
    assert patch(acs_a, {"routes": [route]}).status_code == 200

    message = refused(patch(acs_a, {"trunks": {"a.example.com": None}}), 422, "MissingTrunk")
    assert "'a.example.com'" in message
    assert "'r'" in message
    missing = {"routes": [{**route, "trunks": ["other.example.com"]}]}
    refused(patch(acs_a, missing), 422, "MissingTrunk", "routes[0].trunks[0]")
    refused(patch(acs_a, {"routes": [route, route]}), 400, "DuplicatedRoute", "routes[1].name")
    twice = {"routes": [{**route, "trunks": ["a.example.com", "a.example.com"]}]}
    refused(patch(acs_a, twice), 400, "RouteWithDuplicatedTrunk")
    bad_pattern = {"routes": [{**route, "numberPattern": "^(\\+1"}]}
    assert "not a valid regular expression" in refused(
        patch(acs_a, bad_pattern), 422, "InvalidRouteNumberPattern"
    )
    refused(patch(acs_a, {"routes": [{**route, "name": ""}]}), 422, "InvalidRouteName")
    refused(patch(acs_a, {"trunks": {"-1": {"sipSignalingPort": 8239}}}), 422, "InvalidTrunkFqdn")
    refused(
        patch(acs_a, {"trunks": {"n.example.com": {"sipSignalingPort": 0}}}),
        422,
        "InvalidTrunkSipSignalingPort",
    )
    refused(patch(acs_a, {"trunks": {}}), 422, "EmptyPatch")
    refused(patch(acs_a, ["not", "an", "object"]), 400, "InvalidRequestBody")
    # Nothing of the refused patches was kept.
    assert get(acs_a).json() == {"trunks": {"a.example.com": {"sipSignalingPort": 5061}}, "routes": [route]}


def test_body_media_type_and_json(acs_a: AcsClient) -> None:
    assert_acs_error(patch(acs_a, {"routes": []}, "text/plain"), 415, "UnsupportedMediaType")

    def merge_patch(headers: dict[str, str]) -> None:
        headers["Content-Type"] = MERGE_PATCH

    not_json = acs_a.request("PATCH", SIP, body=b"{nope", tamper=merge_patch)
    assert_acs_error(not_json, 400)


def test_api_version_and_authentication(acs_a: AcsClient, client: TestClient) -> None:
    assert_acs_error(acs_a.request("GET", "/sip"), 400, "MissingApiVersionParameter")
    assert_acs_error(
        acs_a.request("GET", "/sip?api-version=2021-05-01-preview"), 400, "UnsupportedApiVersion"
    )
    assert_acs_error(client.get(SIP), 401)
    assert_acs_error(acs_a.request("GET", SIP, key="AAAA" + acs_a.key[4:]), 401)


# Operator ---------------------------------------------------------------------------------------------


@pytest.fixture
def admin(client: TestClient) -> TestClient:
    client.headers.update(admin_headers())
    for name, kind in (("acme", "sip"), ("texts", "smpp")):
        assert client.post("/admin/carriers", json={"name": name, "kind": kind}).status_code == 201
    return client


TRUNK = {"name": "t1", "carrier": "acme", "host": "192.0.2.10"}


def test_operator_trunks(admin: TestClient) -> None:
    assert admin.post("/admin/sip/trunks", json=TRUNK, headers={"Authorization": ""}).status_code == 401
    created = admin.post(
        "/admin/sip/trunks",
        json={**TRUNK, "allow": ["198.51.100.7/24"], "username": "u", "password": "p", "register": True},
    )
    assert created.status_code == 201, created.text
    data = created.json()
    assert {
        k: data[k]
        for k in ("name", "carrier", "host", "port", "transport", "allow", "codecs", "srtp", "dtmf")
    } == {
        "name": "t1",
        "carrier": "acme",
        "host": "192.0.2.10",
        "port": 5060,
        "transport": "udp",
        "allow": ["198.51.100.0/24"],
        "codecs": ["PCMU", "PCMA"],
        "srtp": "off",
        "dtmf": "auto",
    }
    assert data["register"] is True
    assert data["hasPassword"] is True
    assert "password" not in data
    assert_acs_error(admin.post("/admin/sip/trunks", json=TRUNK), 409)
    assert_acs_error(admin.post("/admin/sip/trunks", json={**TRUNK, "name": "t2", "carrier": "nope"}), 404)
    assert_acs_error(admin.post("/admin/sip/trunks", json={**TRUNK, "name": "t2", "carrier": "texts"}), 409)
    assert [t["name"] for t in admin.get("/admin/sip/trunks").json()["value"]] == ["t1"]
    assert admin.delete("/admin/sip/trunks/t1").status_code == 204
    assert_acs_error(admin.delete("/admin/sip/trunks/t1"), 404)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"port": 0}, "The port must be greater than or equal to 1 (got 0)."),
        ({"transport": "sctp"}, "The transport must be one of 'udp', 'tcp' or 'tls', not 'sctp'."),
        ({"allow": ["10.0.0.0/33"]}, "'10.0.0.0/33' is not a network in CIDR notation"),
        ({"username": "u"}, "Digest credentials need both a username and a password."),
        ({"register": True}, "Registering with the carrier (--register) needs a username and a password."),
        ({"codecs": ["PCMU", "G729"]}, "'G729' is not a codec the SIP side offers"),
        ({"srtp": "yes"}, "The SRTP setting must be one of 'off', 'optional' or 'mandatory', not 'yes'."),
        ({"dtmf": "tones"}, "The DTMF mode must be one of 'auto', 'rfc2833', 'info' or 'inband', not 'tone"),
        ({"name": "a b"}, "The trunk name 'a b' must be 1-63 letters"),
        ({"host": "not a host"}, "The host 'not a host' is neither a host name nor an IP address."),
        ({"colour": "red"}, "'colour' is not a setting of this object."),
    ],
)
def test_operator_trunk_validation_reads_as_sentences(
    admin: TestClient, change: dict[str, Any], words: str
) -> None:
    error = assert_acs_error(admin.post("/admin/sip/trunks", json={**TRUNK, **change}), 400, "InvalidRequest")
    assert error["message"].startswith(words), error


def test_operator_routes(admin: TestClient) -> None:
    for name in ("t1", "t2", "t3"):
        assert admin.post("/admin/sip/trunks", json={**TRUNK, "name": name}).status_code == 201
    first = admin.post("/admin/sip/routes", json={"prefix": "+1", "trunks": ["t2", "t1"]})
    assert first.status_code == 201, first.text
    assert first.json() == {"prefix": "+1", "trunks": ["t2", "t1"]}
    assert admin.post("/admin/sip/routes", json={"prefix": "+1", "trunks": ["t3"]}).json()["trunks"] == [
        "t2",
        "t1",
        "t3",
    ]
    assert admin.post("/admin/sip/routes", json={"prefix": "+", "trunks": ["t3"]}).status_code == 201
    assert_acs_error(admin.post("/admin/sip/routes", json={"prefix": "+1", "trunks": ["t1"]}), 409)
    assert_acs_error(admin.post("/admin/sip/routes", json={"prefix": "+1", "trunks": ["zz"]}), 404)
    bad = assert_acs_error(admin.post("/admin/sip/routes", json={"prefix": "1", "trunks": ["t1"]}), 400)
    assert bad["message"].startswith("The prefix '1' must be '+' followed by up to 15 digits")
    assert admin.get("/admin/sip/routes").json()["value"] == [
        {"prefix": "+", "trunks": ["t3"]},
        {"prefix": "+1", "trunks": ["t2", "t1", "t3"]},
    ]
    assert admin.delete("/admin/sip/routes/+1?trunk=t1").status_code == 204
    assert admin.delete("/admin/sip/trunks/t3").status_code == 204  # leaves every route it was in
    assert admin.get("/admin/sip/routes").json()["value"] == [{"prefix": "+1", "trunks": ["t2"]}]
    assert admin.delete("/admin/sip/routes/+1").status_code == 204
    assert_acs_error(admin.delete("/admin/sip/routes/+1"), 404)
    assert admin.get("/admin/sip/routes").json()["value"] == []
