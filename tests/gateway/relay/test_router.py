"""POST /networkTraversal/:issueRelayConfiguration (2022-03-01-preview), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from gateway.core.settings import Settings
from gateway.relay.credentials import is_valid
from tests.support.acs import AcsClient, assert_acs_error

SECRET = "relay-secret-0123456789abcdefghij"
ANY_URLS = ["turn:turn.example:3478?transport=udp", "turns:turn.example:5349"]
NEAREST_URLS = ["turn:near.example:3478"]


@pytest.fixture
def relay_app(app: FastAPI, settings: Settings) -> FastAPI:
    app.state.settings = settings.model_copy(
        update={"turn_urls": ANY_URLS, "turn_nearest_urls": NEAREST_URLS, "turn_secret": SecretStr(SECRET)}
    )
    return app


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _check_servers(body: dict[str, Any], now: datetime) -> None:
    assert set(body) == {"expiresOn", "iceServers"}
    expires = _when(body["expiresOn"])
    for server in body["iceServers"]:
        assert set(server) == {"urls", "username", "credential", "routeType"}
        assert int(server["username"].split(":", 1)[0]) == int(expires.timestamp())
        assert is_valid(SECRET, server["username"], server["credential"], now)
        assert not is_valid("another-secret", server["username"], server["credential"], now)
        assert not is_valid(SECRET, server["username"], server["credential"], expires + timedelta(seconds=1))


def test_default_returns_one_server_per_route_type(relay_app: FastAPI, acs_a: AcsClient) -> None:
    for payload in (None, {}):
        now = datetime.now(UTC)
        response = acs_a.relay(payload)
        assert response.status_code == 200, response.text
        body = response.json()
        _check_servers(body, now)
        assert [(s["routeType"], s["urls"]) for s in body["iceServers"]] == [
            ("any", ANY_URLS),
            ("nearest", NEAREST_URLS),
        ]
        # The default (and maximum) lifetime is 48 hours.
        remaining = _when(body["expiresOn"]) - now
        assert timedelta(hours=48) - timedelta(seconds=5) < remaining <= timedelta(hours=48, seconds=1)


@pytest.mark.parametrize("route_type", ["any", "nearest"])
def test_route_type_filter(relay_app: FastAPI, acs_a: AcsClient, route_type: str) -> None:
    response = acs_a.relay({"routeType": route_type})
    assert response.status_code == 200, response.text
    servers = response.json()["iceServers"]
    assert [s["routeType"] for s in servers] == [route_type]
    assert servers[0]["urls"] == (ANY_URLS if route_type == "any" else NEAREST_URLS)


def test_nearest_falls_back_to_any_urls(relay_app: FastAPI, acs_a: AcsClient) -> None:
    relay_app.state.settings = relay_app.state.settings.model_copy(update={"turn_nearest_urls": []})
    servers = acs_a.relay({"routeType": "nearest"}).json()["iceServers"]
    assert servers[0]["urls"] == ANY_URLS


@pytest.mark.parametrize("ttl", [0, 1, 3600, 172800])
def test_ttl_is_honoured(relay_app: FastAPI, acs_a: AcsClient, ttl: int) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    response = acs_a.relay({"ttl": ttl})
    assert response.status_code == 200, response.text
    expires = _when(response.json()["expiresOn"])
    assert now + timedelta(seconds=ttl) <= expires <= datetime.now(UTC) + timedelta(seconds=ttl)
    if ttl:
        _check_servers(response.json(), now)


@pytest.mark.parametrize("ttl", [172801, 10**6, 2**31 - 1])
def test_ttl_above_maximum_is_clamped(relay_app: FastAPI, acs_a: AcsClient, ttl: int) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    response = acs_a.relay({"ttl": ttl})
    assert response.status_code == 200, response.text
    expires = _when(response.json()["expiresOn"])
    assert now + timedelta(seconds=172800) <= expires <= datetime.now(UTC) + timedelta(seconds=172800)


def test_operator_maximum_applies(relay_app: FastAPI, acs_a: AcsClient) -> None:
    relay_app.state.settings = relay_app.state.settings.model_copy(update={"turn_max_ttl_seconds": 600})
    for payload in ({}, {"ttl": 3600}):
        expires = _when(acs_a.relay(payload).json()["expiresOn"])
        assert expires <= datetime.now(UTC) + timedelta(seconds=600)
        assert expires >= datetime.now(UTC) + timedelta(seconds=590)


@pytest.mark.parametrize(
    ("payload", "target"),
    [({"ttl": -1}, "ttl"), ({"ttl": "long"}, "ttl"), ({"routeType": "fastest"}, "routeType")],
)
def test_invalid_requests(relay_app: FastAPI, acs_a: AcsClient, payload: dict[str, Any], target: str) -> None:
    assert_acs_error(acs_a.relay(payload), 400, target=target)


def test_identity_is_part_of_the_username(relay_app: FastAPI, acs_a: AcsClient) -> None:
    identity_id = acs_a.new_identity()
    now = datetime.now(UTC)
    response = acs_a.relay({"id": identity_id})
    assert response.status_code == 200, response.text
    body = response.json()
    _check_servers(body, now)
    for server in body["iceServers"]:
        assert server["username"].split(":", 1)[1] == identity_id.replace(":", "-")


def test_identity_of_another_resource_is_refused(
    relay_app: FastAPI, acs_a: AcsClient, acs_b: AcsClient
) -> None:
    identity_id = acs_a.new_identity()
    assert_acs_error(acs_b.relay({"id": identity_id}), 400, "InvalidIdentity", "id")
    assert_acs_error(acs_a.relay({"id": identity_id + "x"}), 400, "InvalidIdentity", "id")
    assert acs_a.relay({"id": identity_id}).status_code == 200


def test_not_configured(app: FastAPI, acs_a: AcsClient) -> None:
    assert_acs_error(acs_a.relay({}), 503, "RelayNotConfigured")


def test_needs_a_signature(relay_app: FastAPI, client: TestClient) -> None:
    response = client.post(
        "/networkTraversal/:issueRelayConfiguration?api-version=2022-03-01-preview", json={}
    )
    assert_acs_error(response, 401)
