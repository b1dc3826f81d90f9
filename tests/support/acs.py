"""Sign and send requests exactly as the ACS SDKs do, through ``gateway.core.hmac_auth.sign_request``.

The SDK's ``HMACCredentialsPolicy`` signs ``VERB\\n<path?query>\\n<x-ms-date>;<host>;<content hash>``
where the path and query are taken from the URL as sent (sync clients) or percent-decoded
(async clients, ``decode_url=True``); a request without a body is hashed as the empty string.
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx
from fastapi.testclient import TestClient

from gateway.core.hmac_auth import sign_request

BASE_URL = "https://testserver"
OPERATOR_TOKEN = "test-operator-token-0123456789abcdef"
IDENTITY_API = "2023-10-01"
RELAY_API = "2022-03-01-preview"


def sdk_headers(
    method: str,
    url: str,
    key_b64: str,
    body: bytes = b"",
    *,
    now: datetime | None = None,
    decode_url: bool = False,
) -> dict[str, str]:
    """The headers the ACS SDK's HMAC policy adds to a request for ``url``."""
    parts = urlsplit(url)
    path_and_query = parts.path + (f"?{parts.query}" if parts.query else "")
    if decode_url:
        path_and_query = unquote(path_and_query)
    headers = sign_request(method, path_and_query, parts.netloc, body, key_b64, now or datetime.now(UTC))
    headers["x-ms-return-client-request-id"] = "true"
    return headers


def encode_json(payload: Any) -> bytes:
    return jsonlib.dumps(payload).encode("utf-8")


@dataclass
class AcsClient:
    """Sends HMAC-signed data-plane requests with one resource's access key."""

    client: TestClient
    key: str

    def request(
        self,
        method: str,
        path_and_query: str,
        json: Any = None,
        *,
        body: bytes | None = None,
        now: datetime | None = None,
        decode_url: bool = False,
        sign_url: str | None = None,
        sign_body: bytes | None = None,
        key: str | None = None,
        tamper: Callable[[dict[str, str]], None] | None = None,
    ) -> httpx.Response:
        """``sign_url``/``sign_body``/``key`` sign something else than what is sent; ``tamper``
        edits the final headers. Both exist to build rejected requests."""
        content = body if body is not None else (encode_json(json) if json is not None else b"")
        url = f"{BASE_URL}{path_and_query}"
        headers = sdk_headers(
            method,
            sign_url or url,
            key or self.key,
            content if sign_body is None else sign_body,
            now=now,
            decode_url=decode_url,
        )
        if content:
            headers["Content-Type"] = "application/json"
        if tamper is not None:
            tamper(headers)
        return self.client.request(method, url, content=content or None, headers=headers)

    def post(self, path_and_query: str, json: Any = None, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path_and_query, json, **kwargs)

    def delete(self, path_and_query: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path_and_query, **kwargs)

    # Identity API shortcuts (ids are percent-encoded in paths, as the SDKs send them) ----------

    def create_identity(self, payload: Any = None) -> httpx.Response:
        return self.post(f"/identities?api-version={IDENTITY_API}", payload)

    def new_identity(self) -> str:
        response = self.create_identity()
        assert response.status_code == 201, response.text
        identity_id: str = response.json()["identity"]["id"]
        return identity_id

    def issue_token(self, identity_id: str, scopes: list[str], minutes: int | None = None) -> httpx.Response:
        payload: dict[str, Any] = {"scopes": scopes}
        if minutes is not None:
            payload["expiresInMinutes"] = minutes
        return self.post(
            f"{identity_path(identity_id)}/:issueAccessToken?api-version={IDENTITY_API}", payload
        )

    def token(self, identity_id: str, scopes: list[str] | None = None) -> str:
        response = self.issue_token(identity_id, scopes or ["chat"])
        assert response.status_code == 200, response.text
        token: str = response.json()["token"]
        return token

    def revoke(self, identity_id: str) -> httpx.Response:
        return self.post(f"{identity_path(identity_id)}/:revokeAccessTokens?api-version={IDENTITY_API}")

    def delete_identity(self, identity_id: str) -> httpx.Response:
        return self.delete(f"{identity_path(identity_id)}?api-version={IDENTITY_API}")

    def verify(self, token: str) -> httpx.Response:
        return self.post(f"/accessTokens:verify?api-version={IDENTITY_API}", {"token": token})

    def relay(self, payload: Any = None) -> httpx.Response:
        return self.post(f"/networkTraversal/:issueRelayConfiguration?api-version={RELAY_API}", payload)


def identity_path(identity_id: str) -> str:
    return f"/identities/{quote(identity_id, safe='')}"


def admin_headers(token: str = OPERATOR_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def create_resource(client: TestClient, name: str, **extra: Any) -> dict[str, Any]:
    response = client.post("/admin/resources", json={"name": name, **extra}, headers=admin_headers())
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


def assert_acs_error(
    response: httpx.Response, status: int, code: str | None = None, target: str | None = None
) -> Mapping[str, Any]:
    """The response has ``status`` and ACS's error body; returns the ``error`` object."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error: Mapping[str, Any] = body["error"]
    assert isinstance(error.get("code"), str), body
    assert error["code"], body
    assert isinstance(error.get("message"), str), body
    assert error["message"], body
    if code is not None:
        assert error["code"] == code, body
    if target is not None:
        assert error.get("target") == target, body
    return error
