"""The Identity API (2023-10-01) in process, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from gateway.identity.tokens import ALGORITHM, AUDIENCE
from tests.support.acs import IDENTITY_API, AcsClient, assert_acs_error, identity_path


def _claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def _expires_on(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_create_identity_without_body(acs_a: AcsClient, resource_a: dict[str, str]) -> None:
    for payload in (None, {}):
        response = acs_a.create_identity(payload)
        assert response.status_code == 201, response.text
        body = response.json()
        assert set(body) == {"identity"}
        assert body["identity"]["id"].startswith(f"8:acs:{resource_a['id']}_")


@pytest.mark.parametrize("minutes", [60, 61, 1440, None])
def test_create_identity_with_token(acs_a: AcsClient, minutes: int | None) -> None:
    payload: dict[str, object] = {"createTokenWithScopes": ["chat", "voip"]}
    if minutes is not None:
        payload["expiresInMinutes"] = minutes
    before = datetime.now(UTC).replace(microsecond=0)
    response = acs_a.create_identity(payload)
    assert response.status_code == 201, response.text
    body = response.json()
    token = body["accessToken"]["token"]
    claims = _claims(token)
    expires_on = _expires_on(body["accessToken"]["expiresOn"])
    assert claims["sub"] == body["identity"]["id"]
    assert claims["acsScope"] == "chat,voip"
    assert claims["exp"] == int(expires_on.timestamp())
    assert claims["exp"] - claims["iat"] == (minutes or 1440) * 60
    assert before + timedelta(minutes=minutes or 1440) <= expires_on
    assert expires_on <= datetime.now(UTC) + timedelta(minutes=minutes or 1440)


@pytest.mark.parametrize("minutes", [59, 1441, 0, -1, "soon"])
def test_create_identity_with_bad_lifetime(acs_a: AcsClient, minutes: object) -> None:
    response = acs_a.create_identity({"createTokenWithScopes": ["chat"], "expiresInMinutes": minutes})
    assert_acs_error(response, 400, target="expiresInMinutes")


@pytest.mark.parametrize("minutes", [59, 1441])
def test_issue_token_with_bad_lifetime(acs_a: AcsClient, minutes: int) -> None:
    response = acs_a.issue_token(acs_a.new_identity(), ["chat"], minutes)
    assert_acs_error(response, 400, target="expiresInMinutes")


def test_unknown_scope(acs_a: AcsClient) -> None:
    assert_acs_error(
        acs_a.create_identity({"createTokenWithScopes": ["chat", "admin"]}),
        400,
        target="createTokenWithScopes[1]",
    )
    identity_id = acs_a.new_identity()
    assert_acs_error(acs_a.issue_token(identity_id, ["telepathy"]), 400, target="scopes[0]")
    assert_acs_error(acs_a.issue_token(identity_id, []), 400, target="scopes")


def test_issue_token(acs_a: AcsClient) -> None:
    identity_id = acs_a.new_identity()
    response = acs_a.issue_token(identity_id, ["voip", "chat.join"], 120)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"token", "expiresOn"}
    claims = _claims(body["token"])
    assert (claims["sub"], claims["acsScope"]) == (identity_id, "voip,chat.join")
    assert claims["exp"] == int(_expires_on(body["expiresOn"]).timestamp())
    assert claims["exp"] - claims["iat"] == 7200


def test_issue_token_for_unknown_identity(acs_a: AcsClient, resource_a: dict[str, str]) -> None:
    response = acs_a.issue_token(f"8:acs:{resource_a['id']}_00000000-0000-0000-0000-000000000000", ["chat"])
    assert_acs_error(response, 404, "IdentityNotFound")


def test_async_sdk_signing_of_the_decoded_path(acs_a: AcsClient) -> None:
    identity_id = acs_a.new_identity()
    path = f"{identity_path(identity_id)}/:issueAccessToken?api-version={IDENTITY_API}"
    assert "%3A" in path
    response = acs_a.post(path, {"scopes": ["chat"]}, decode_url=True)
    assert response.status_code == 200, response.text


def test_verify(acs_a: AcsClient, resource_a: dict[str, str]) -> None:
    identity_id = acs_a.new_identity()
    response = acs_a.issue_token(identity_id, ["chat", "voip"])
    response = acs_a.verify(response.json()["token"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["identity"] == {"id": identity_id}
    assert body["resourceId"] == resource_a["id"]
    assert body["scopes"] == ["chat", "voip"]
    assert _expires_on(body["expiresOn"]) > datetime.now(UTC) + timedelta(hours=23)


@pytest.mark.parametrize("payload", [{"token": "not-a-token"}, {"token": ""}, {}])
def test_verify_garbage(acs_a: AcsClient, payload: dict[str, str]) -> None:
    response = acs_a.post(f"/accessTokens:verify?api-version={IDENTITY_API}", payload)
    if payload.get("token"):
        assert_acs_error(response, 401, "InvalidAccessToken")
    else:
        assert_acs_error(response, 400, target="token")


def test_revoke(acs_a: AcsClient) -> None:
    identity_id = acs_a.new_identity()
    earlier = acs_a.token(identity_id)
    assert acs_a.verify(earlier).status_code == 200
    response = acs_a.revoke(identity_id)
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert_acs_error(acs_a.verify(earlier), 401, "InvalidAccessToken")
    later = acs_a.token(identity_id)
    assert acs_a.verify(later).status_code == 200
    assert_acs_error(acs_a.verify(earlier), 401, "InvalidAccessToken")


def test_delete(acs_a: AcsClient) -> None:
    identity_id = acs_a.new_identity()
    token = acs_a.token(identity_id)
    response = acs_a.delete_identity(identity_id)
    assert response.status_code == 204, response.text
    assert_acs_error(acs_a.verify(token), 401, "InvalidAccessToken")
    assert_acs_error(acs_a.delete_identity(identity_id), 404, "IdentityNotFound")
    assert_acs_error(acs_a.issue_token(identity_id, ["chat"]), 404, "IdentityNotFound")
    assert_acs_error(acs_a.revoke(identity_id), 404, "IdentityNotFound")


def test_teams_exchange_is_not_implemented(acs_a: AcsClient) -> None:
    response = acs_a.post(
        f"/teamsUser/:exchangeAccessToken?api-version={IDENTITY_API}",
        {"token": "aad-token", "appId": "app", "userId": "user"},
    )
    assert_acs_error(response, 501, "NotImplemented")


def test_jwks_verifies_tokens(client: TestClient, acs_a: AcsClient) -> None:
    token = acs_a.token(acs_a.new_identity())
    response = client.get("/.well-known/jwks.json")  # public: no signature needed
    assert response.status_code == 200
    assert "max-age" in response.headers["cache-control"]
    jwks = jwt.PyJWKSet.from_dict(response.json())
    key = jwks[jwt.get_unverified_header(token)["kid"]]
    claims = jwt.decode(token, key.key, algorithms=[ALGORITHM], audience=AUDIENCE, issuer="trunkline")
    assert claims["acsScope"] == "chat"
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(tampered, key.key, algorithms=[ALGORITHM], audience=AUDIENCE, issuer="trunkline")


# Tenant isolation -------------------------------------------------------------------------------


def test_other_resource_cannot_touch_identities(acs_a: AcsClient, acs_b: AcsClient) -> None:
    identity_id = acs_a.new_identity()
    token = acs_a.token(identity_id)
    assert_acs_error(acs_b.issue_token(identity_id, ["chat"]), 404, "IdentityNotFound")
    assert_acs_error(acs_b.revoke(identity_id), 404, "IdentityNotFound")
    assert_acs_error(acs_b.delete_identity(identity_id), 404, "IdentityNotFound")
    assert_acs_error(acs_b.verify(token), 401, "InvalidAccessToken")
    # A's identity and token are untouched.
    assert acs_a.verify(token).status_code == 200
    assert acs_a.issue_token(identity_id, ["chat"]).status_code == 200
    # And the reverse holds too.
    b_token = acs_b.token(acs_b.new_identity())
    assert_acs_error(acs_a.verify(b_token), 401, "InvalidAccessToken")
    assert acs_b.verify(b_token).status_code == 200


def test_unknown_and_unknown_to_tenant_look_alike(acs_a: AcsClient, acs_b: AcsClient) -> None:
    a_identity = acs_a.new_identity()
    foreign = acs_b.issue_token(a_identity, ["chat"]).json()
    missing = acs_b.issue_token(a_identity.replace("-", "0"), ["chat"]).json()
    assert foreign["error"]["code"] == missing["error"]["code"]
    assert foreign["error"]["message"].replace(a_identity, "X") == missing["error"]["message"].replace(
        a_identity.replace("-", "0"), "X"
    )
