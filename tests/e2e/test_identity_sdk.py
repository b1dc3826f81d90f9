"""azure-communication-identity 1.5.0 against a real ``trunkline api``, given only a connection string."""

from __future__ import annotations

import importlib.util
import json
import secrets
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import jwt
import pytest
from azure.communication.identity import (
    CommunicationIdentityClient,
    CommunicationTokenScope,
    CommunicationUserIdentifier,
)
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError

from tests.e2e.helpers import (
    IDENTITY_API,
    AcsHmacAuth,
    TrunklineServer,
    base_env,
    connection_string,
    parse_connection_string,
    random_key,
)

pytestmark = pytest.mark.e2e

ALL_SCOPES = list(CommunicationTokenScope)
# Leeway between the server's clock when it issues and ours when we check.
CLOCK_LEEWAY = timedelta(seconds=30)


def claims_of(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def expires_on(value: Any) -> datetime:
    """The SDK's AccessToken.expires_on: an ISO 8601 string in 1.5.0 (a datetime or epoch elsewhere)."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def verify(server: TrunklineServer, resource: dict[str, Any], token: str) -> httpx.Response:
    """POST /accessTokens:verify signed with the resource's key, as a trusted backend would."""
    _, key = parse_connection_string(resource["connectionString"])
    with server.http(auth=AcsHmacAuth(key)) as client:
        return client.post(f"/accessTokens:verify?api-version={IDENTITY_API}", json={"token": token})


def assert_lifetime(token: Any, minutes: int, issued_after: datetime) -> None:
    expiry = expires_on(token.expires_on)
    expected = issued_after + timedelta(minutes=minutes)
    assert expected - CLOCK_LEEWAY <= expiry <= expected + CLOCK_LEEWAY
    assert claims_of(token.token)["exp"] == int(expiry.timestamp())


# Users and tokens ----------------------------------------------------------------------------------


def test_create_user(identity_a: CommunicationIdentityClient, resource_a: dict[str, Any]) -> None:
    user = identity_a.create_user()
    other = identity_a.create_user()

    assert isinstance(user, CommunicationUserIdentifier)
    assert user.raw_id == user.properties["id"]
    assert user.raw_id.startswith(f"8:acs:{resource_a['id']}_")
    assert user.raw_id != other.raw_id


@pytest.mark.parametrize("scope", ALL_SCOPES, ids=lambda s: s.value)
def test_create_user_and_token_for_each_scope(
    scope: CommunicationTokenScope,
    identity_a: CommunicationIdentityClient,
    trunkline: TrunklineServer,
    resource_a: dict[str, Any],
) -> None:
    before = datetime.now(UTC)
    user, token = identity_a.create_user_and_token([scope])

    claims = claims_of(token.token)
    assert claims["sub"] == user.raw_id
    assert claims["acsScope"] == scope.value
    assert_lifetime(token, 1440, before)  # the default: 24 hours
    verified = verify(trunkline, resource_a, token.token)
    assert verified.status_code == 200, verified.text
    assert verified.json()["identity"] == {"id": user.raw_id}
    assert verified.json()["scopes"] == [scope.value]


@pytest.mark.parametrize(
    "scopes",
    [
        [CommunicationTokenScope.CHAT, CommunicationTokenScope.VOIP],
        [CommunicationTokenScope.CHAT_JOIN, CommunicationTokenScope.VOIP_JOIN],
        [CommunicationTokenScope.CHAT_JOIN_LIMITED, CommunicationTokenScope.VOIP_JOIN],
        ALL_SCOPES,
        ["chat", "voip"],  # plain strings, as the SDK also allows
    ],
    ids=["chat+voip", "join", "join-limited", "all", "strings"],
)
def test_create_user_and_token_with_several_scopes(
    scopes: list[Any],
    identity_a: CommunicationIdentityClient,
    trunkline: TrunklineServer,
    resource_a: dict[str, Any],
) -> None:
    user, token = identity_a.create_user_and_token(scopes)

    wanted = [str(getattr(s, "value", s)) for s in scopes]
    assert claims_of(token.token)["acsScope"].split(",") == wanted
    verified = verify(trunkline, resource_a, token.token)
    assert verified.status_code == 200, verified.text
    assert verified.json()["scopes"] == wanted
    # get_token with a different set gives a token with exactly that set.
    again = identity_a.get_token(user, [CommunicationTokenScope.VOIP])
    assert claims_of(again.token)["acsScope"] == "voip"


@pytest.mark.parametrize("minutes", [60, 1440])
def test_token_lifetime_bounds_are_accepted(minutes: int, identity_a: CommunicationIdentityClient) -> None:
    before = datetime.now(UTC)
    user, token = identity_a.create_user_and_token(
        [CommunicationTokenScope.CHAT], token_expires_in=timedelta(minutes=minutes)
    )
    assert_lifetime(token, minutes, before)

    before = datetime.now(UTC)
    again = identity_a.get_token(
        user, [CommunicationTokenScope.VOIP], token_expires_in=timedelta(minutes=minutes)
    )
    assert_lifetime(again, minutes, before)


@pytest.mark.parametrize("minutes", [59, 1441])
def test_token_lifetime_out_of_bounds_is_rejected(
    minutes: int, identity_a: CommunicationIdentityClient
) -> None:
    lifetime = timedelta(minutes=minutes)
    with pytest.raises(HttpResponseError) as created:
        identity_a.create_user_and_token([CommunicationTokenScope.CHAT], token_expires_in=lifetime)
    assert created.value.status_code == 400
    assert created.value.error is not None
    assert "expiresInMinutes" in created.value.error.message

    user = identity_a.create_user()
    with pytest.raises(HttpResponseError) as issued:
        identity_a.get_token(user, [CommunicationTokenScope.CHAT], token_expires_in=lifetime)
    assert issued.value.status_code == 400


def test_get_token(
    identity_a: CommunicationIdentityClient, trunkline: TrunklineServer, resource_a: dict[str, Any]
) -> None:
    user = identity_a.create_user()
    before = datetime.now(UTC)

    token = identity_a.get_token(user, [CommunicationTokenScope.CHAT, CommunicationTokenScope.VOIP])

    assert claims_of(token.token)["sub"] == user.raw_id
    assert_lifetime(token, 1440, before)
    assert verify(trunkline, resource_a, token.token).status_code == 200


def test_tokens_verify_offline_with_the_published_keys(
    identity_a: CommunicationIdentityClient, trunkline: TrunklineServer
) -> None:
    _, token = identity_a.create_user_and_token([CommunicationTokenScope.CHAT])
    _, other = identity_a.create_user_and_token([CommunicationTokenScope.VOIP])
    with trunkline.http() as client:
        jwks = client.get("/.well-known/jwks.json").json()

    kid = jwt.get_unverified_header(token.token)["kid"]
    key = next(jwt.PyJWK(k) for k in jwks["keys"] if k["kid"] == kid)
    claims = jwt.decode(token.token, key.key, algorithms=["ES256"], audience="acs")
    assert claims["acsScope"] == "chat"
    # Another token's claims under this token's signature do not verify.
    header, _, signature = token.token.split(".")
    forged = ".".join([header, other.token.split(".")[1], signature])
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(forged, key.key, algorithms=["ES256"], audience="acs")


def test_revoke_tokens(
    identity_a: CommunicationIdentityClient, trunkline: TrunklineServer, resource_a: dict[str, Any]
) -> None:
    user, old = identity_a.create_user_and_token([CommunicationTokenScope.CHAT])
    assert verify(trunkline, resource_a, old.token).status_code == 200

    identity_a.revoke_tokens(user)

    rejected = verify(trunkline, resource_a, old.token)
    assert rejected.status_code == 401
    assert rejected.json()["error"]["code"] == "InvalidAccessToken"
    new = identity_a.get_token(user, [CommunicationTokenScope.CHAT])
    assert verify(trunkline, resource_a, new.token).status_code == 200
    assert verify(trunkline, resource_a, old.token).status_code == 401


def test_delete_user(
    identity_a: CommunicationIdentityClient, trunkline: TrunklineServer, resource_a: dict[str, Any]
) -> None:
    user, token = identity_a.create_user_and_token([CommunicationTokenScope.VOIP])

    identity_a.delete_user(user)

    with pytest.raises(ResourceNotFoundError) as missing:
        identity_a.get_token(user, [CommunicationTokenScope.VOIP])
    assert missing.value.status_code == 404
    assert verify(trunkline, resource_a, token.token).status_code == 401
    with pytest.raises(ResourceNotFoundError):
        identity_a.delete_user(user)
    with pytest.raises(ResourceNotFoundError):
        identity_a.revoke_tokens(user)


def test_unknown_user_is_not_found(
    identity_a: CommunicationIdentityClient, resource_a: dict[str, Any]
) -> None:
    ghost = CommunicationUserIdentifier(f"8:acs:{resource_a['id']}_00000000-0000-0000-0000-000000000000")
    with pytest.raises(ResourceNotFoundError):
        identity_a.get_token(ghost, [CommunicationTokenScope.CHAT])


def test_teams_token_exchange_is_not_implemented(identity_a: CommunicationIdentityClient) -> None:
    with pytest.raises(HttpResponseError) as refused:
        identity_a.get_token_for_teams_user("aad-token", secrets.token_hex(8), secrets.token_hex(8))
    assert refused.value.status_code == 501
    assert refused.value.error is not None
    assert refused.value.error.code == "NotImplemented"


# Tenants and keys ----------------------------------------------------------------------------------


def test_another_resource_cannot_touch_the_user(
    identity_a: CommunicationIdentityClient,
    identity_b: CommunicationIdentityClient,
    trunkline: TrunklineServer,
    resource_a: dict[str, Any],
    resource_b: dict[str, Any],
) -> None:
    user, token = identity_a.create_user_and_token([CommunicationTokenScope.CHAT])

    with pytest.raises(ResourceNotFoundError):
        identity_b.get_token(user, [CommunicationTokenScope.CHAT])
    with pytest.raises(ResourceNotFoundError):
        identity_b.revoke_tokens(user)
    with pytest.raises(ResourceNotFoundError):
        identity_b.delete_user(user)
    # Nor verify its tokens.
    assert verify(trunkline, resource_b, token.token).status_code == 401

    # None of it had any effect for the owner.
    assert verify(trunkline, resource_a, token.token).status_code == 200
    identity_a.get_token(user, [CommunicationTokenScope.CHAT])


def test_wrong_key_is_rejected(resource_a: dict[str, Any]) -> None:
    endpoint, _ = parse_connection_string(resource_a["connectionString"])
    client = CommunicationIdentityClient.from_connection_string(connection_string(endpoint, random_key()))

    with pytest.raises(ClientAuthenticationError) as denied:
        client.create_user()
    assert denied.value.status_code == 401
    assert denied.value.error is not None
    assert denied.value.error.code == "Denied"


def test_secondary_key_works(resource_a: dict[str, Any]) -> None:
    client = CommunicationIdentityClient.from_connection_string(resource_a["secondaryConnectionString"])
    user = client.create_user()
    assert user.raw_id.startswith(f"8:acs:{resource_a['id']}_")


# Signing variants ----------------------------------------------------------------------------------


def test_percent_decoded_signature_is_accepted(
    identity_a: CommunicationIdentityClient, trunkline: TrunklineServer, resource_a: dict[str, Any]
) -> None:
    """The async SDK clients sign the percent-decoded URL (``/identities/8:acs:...``) while
    sending ``/identities/8%3Aacs%3A...``; the server takes both."""
    user = identity_a.create_user()
    _, key = parse_connection_string(resource_a["connectionString"])
    url = f"/identities/{quote(user.raw_id, safe='')}/:issueAccessToken?api-version={IDENTITY_API}"

    for decode_url in (False, True):
        with trunkline.http(auth=AcsHmacAuth(key, decode_url=decode_url)) as client:
            response = client.post(url, json={"scopes": ["chat"]})
        assert b"/identities/8%3Aacs%3A" in response.request.url.raw_path
        assert response.status_code == 200, (decode_url, response.text)
        assert claims_of(response.json()["token"])["sub"] == user.raw_id


ASYNC_SCRIPT = """
import asyncio, json, os
from azure.communication.identity import CommunicationTokenScope
from azure.communication.identity.aio import CommunicationIdentityClient

async def main():
    async with CommunicationIdentityClient.from_connection_string(os.environ["ACS_CONNECTION_STRING"]) as c:
        user = await c.create_user()
        token = await c.get_token(user, [CommunicationTokenScope.CHAT])
        print(json.dumps({"user": user.raw_id, "token": token.token}))

asyncio.run(main())
"""


@pytest.mark.skipif(
    importlib.util.find_spec("aiohttp") is None,
    reason="aiohttp is not installed: the async ACS clients (azure.communication.identity.aio) need "
    "it as their default transport; add aiohttp to the dev dependencies to run this test",
)
def test_async_client(trunkline: TrunklineServer, resource_a: dict[str, Any]) -> None:
    """The async client signs the percent-decoded URL. It runs in a fresh interpreter, as an
    app would: aiohttp reads SSL_CERT_FILE once per process, and this one has seen other CAs."""
    env = base_env() | {
        "SSL_CERT_FILE": str(trunkline.ca_file),
        "ACS_CONNECTION_STRING": resource_a["connectionString"],
    }
    result = subprocess.run(
        [sys.executable, "-c", ASYNC_SCRIPT],
        check=False,
        env=env,
        cwd=trunkline.workdir,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout)
    assert out["user"].startswith(f"8:acs:{resource_a['id']}_")
    assert claims_of(out["token"])["sub"] == out["user"]
