"""azure-communication-networktraversal 1.1.0b2 against a real ``trunkline api``."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.communication.identity import CommunicationIdentityClient, CommunicationUserIdentifier
from azure.communication.networktraversal import CommunicationRelayClient, RouteType
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

from tests.e2e.helpers import Coturn, connection_string, parse_connection_string, random_key

pytestmark = pytest.mark.e2e

MAX_TTL = 172800
CLOCK_LEEWAY = timedelta(seconds=30)


def turn_password(secret: str, username: str) -> str:
    """What coturn computes with --use-auth-secret: base64(HMAC-SHA1(secret, username))."""
    return base64.b64encode(hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()).decode()


def check_config(config: Any, coturn: Coturn, ttl: int, issued_after: datetime) -> str:
    """Common checks of a relay configuration; returns the user part of the username."""
    expected = issued_after + timedelta(seconds=ttl)
    assert expected - CLOCK_LEEWAY <= config.expires_on <= expected + CLOCK_LEEWAY
    usernames = {server.username for server in config.ice_servers}
    assert len(usernames) == 1
    expiry, sep, user = usernames.pop().partition(":")
    assert sep
    assert user
    assert ":" not in user  # coturn splits at the first ':'; the user part must not hold another
    assert int(expiry) == int(config.expires_on.timestamp())
    for server in config.ice_servers:
        assert server.urls == coturn.urls
        assert server.credential == turn_password(coturn.secret, server.username)
    return user


def test_default_configuration(relay_a: CommunicationRelayClient, coturn: Coturn) -> None:
    before = datetime.now(UTC)
    config = relay_a.get_relay_configuration()

    assert sorted(server.route_type for server in config.ice_servers) == ["any", "nearest"]
    check_config(config, coturn, MAX_TTL, before)


def test_anonymous_users_differ(relay_a: CommunicationRelayClient) -> None:
    first = relay_a.get_relay_configuration().ice_servers[0].username
    second = relay_a.get_relay_configuration().ice_servers[0].username
    assert first.partition(":")[2] != second.partition(":")[2]


def test_configuration_for_a_user(
    relay_a: CommunicationRelayClient, identity_a: CommunicationIdentityClient, coturn: Coturn
) -> None:
    user = identity_a.create_user()
    before = datetime.now(UTC)

    config = relay_a.get_relay_configuration(user=user)

    assert len(config.ice_servers) == 2
    assert check_config(config, coturn, MAX_TTL, before) == user.raw_id.replace(":", "-")


@pytest.mark.parametrize("route_type", [RouteType.ANY, RouteType.NEAREST, "any", "nearest"])
def test_route_type(route_type: Any, relay_a: CommunicationRelayClient, coturn: Coturn) -> None:
    before = datetime.now(UTC)
    config = relay_a.get_relay_configuration(route_type=route_type)

    assert [server.route_type for server in config.ice_servers] == [
        str(getattr(route_type, "value", route_type))
    ]
    check_config(config, coturn, MAX_TTL, before)


@pytest.mark.parametrize(
    ("ttl", "effective"), [(60, 60), (3600, 3600), (MAX_TTL, MAX_TTL), (MAX_TTL + 1, MAX_TTL)]
)
def test_ttl(ttl: int, effective: int, relay_a: CommunicationRelayClient, coturn: Coturn) -> None:
    before = datetime.now(UTC)
    config = relay_a.get_relay_configuration(ttl=ttl)
    check_config(config, coturn, effective, before)


def test_user_route_type_and_ttl_together(
    relay_a: CommunicationRelayClient, identity_a: CommunicationIdentityClient, coturn: Coturn
) -> None:
    user = identity_a.create_user()
    before = datetime.now(UTC)

    config = relay_a.get_relay_configuration(user=user, route_type=RouteType.NEAREST, ttl=600)

    assert [server.route_type for server in config.ice_servers] == ["nearest"]
    assert check_config(config, coturn, 600, before) == user.raw_id.replace(":", "-")


def test_user_of_another_resource_is_refused(
    relay_a: CommunicationRelayClient, identity_b: CommunicationIdentityClient
) -> None:
    foreign = identity_b.create_user()
    with pytest.raises(HttpResponseError) as refused:
        relay_a.get_relay_configuration(user=foreign)
    assert refused.value.status_code == 400

    with pytest.raises(HttpResponseError) as unknown:
        relay_a.get_relay_configuration(user=CommunicationUserIdentifier("8:acs:nobody_0000"))
    assert unknown.value.status_code == 400


def test_wrong_key_is_rejected(resource_a: dict[str, Any]) -> None:
    endpoint, _ = parse_connection_string(resource_a["connectionString"])
    client = CommunicationRelayClient.from_connection_string(connection_string(endpoint, random_key()))
    with pytest.raises(ClientAuthenticationError) as denied:
        client.get_relay_configuration()
    assert denied.value.status_code == 401
