"""Data-plane HMAC auth, api-version and operator bearer auth, through the API."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from gateway.core import hmac_auth
from gateway.core.db import Database
from gateway.core.hmac_auth import content_hash
from gateway.identity.models import Identity
from gateway.resources.service import generate_access_key
from tests.support.acs import (
    BASE_URL,
    IDENTITY_API,
    OPERATOR_TOKEN,
    RELAY_API,
    AcsClient,
    admin_headers,
    assert_acs_error,
    sdk_headers,
)

CREATE = f"/identities?api-version={IDENTITY_API}"
PAYLOAD = {"createTokenWithScopes": ["chat"]}
OTHER_PAYLOAD = {"createTokenWithScopes": ["voip"]}


def _drop(name: str) -> Callable[[dict[str, str]], None]:
    def tamper(headers: dict[str, str]) -> None:
        del headers[name]

    return tamper


def _set(name: str, value: str) -> Callable[[dict[str, str]], None]:
    def tamper(headers: dict[str, str]) -> None:
        headers[name] = value

    return tamper


def _encoded(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def _rewrite_hash_for_sent_body(headers: dict[str, str]) -> None:
    headers["x-ms-content-sha256"] = content_hash(_encoded(PAYLOAD))


# Each case sends PAYLOAD to CREATE with resource A's key, with one thing wrong.
REJECTED: dict[str, dict[str, Any]] = {
    "wrong key": {"key": generate_access_key()},
    "hash and signature of another body": {"sign_body": _encoded(OTHER_PAYLOAD)},
    "body changed after signing, hash rewritten": {
        "sign_body": _encoded(OTHER_PAYLOAD),
        "tamper": _rewrite_hash_for_sent_body,
    },
    "changed path": {"sign_url": f"{BASE_URL}/identitiez?api-version={IDENTITY_API}"},
    "changed query": {"sign_url": f"{BASE_URL}/identities?api-version=2021-03-07"},
    "query dropped from signature": {"sign_url": f"{BASE_URL}/identities"},
    "other host": {"sign_url": f"https://elsewhere.example{CREATE}"},
    "stale date": {"clock_offset": -timedelta(minutes=15, seconds=30)},
    "future date": {"clock_offset": timedelta(minutes=15, seconds=30)},
    "missing x-ms-date": {"tamper": _drop("x-ms-date")},
    "unparseable x-ms-date": {"tamper": _set("x-ms-date", "yesterday")},
    "missing x-ms-content-sha256": {"tamper": _drop("x-ms-content-sha256")},
    "missing Authorization": {"tamper": _drop("Authorization")},
    "garbage Authorization": {"tamper": _set("Authorization", "garbage")},
    "bearer Authorization": {"tamper": _set("Authorization", f"Bearer {OPERATOR_TOKEN}")},
    "signature not base64": {
        "tamper": _set(
            "Authorization", "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=!!"
        )
    },
    "unsigned host": {
        "tamper": lambda h: h.__setitem__(
            "Authorization", h["Authorization"].replace("x-ms-date;host;", "x-ms-date;")
        )
    },
}


def _identity_count(database: Database) -> int:
    with database.session() as session:
        return session.scalar(select(func.count()).select_from(Identity)) or 0


@pytest.mark.parametrize("case", list(REJECTED))
def test_rejected_signatures(acs_a: AcsClient, database: Database, case: str) -> None:
    options = dict(REJECTED[case])
    if "clock_offset" in options:
        options["now"] = datetime.now(UTC) + options.pop("clock_offset")
    response = acs_a.request("POST", CREATE, PAYLOAD, **options)
    error = assert_acs_error(response, 401, "Denied")
    assert "Traceback" not in error["message"]
    assert _identity_count(database) == 0  # nothing happened


def test_properly_signed_variants_are_accepted(acs_a: AcsClient, resource_a: dict[str, str]) -> None:
    """The controls for the cases above: the same request, signed right, in every accepted form."""
    assert acs_a.request("POST", CREATE, PAYLOAD).status_code == 201
    assert acs_a.request("POST", CREATE, PAYLOAD, key=resource_a["secondaryKey"]).status_code == 201
    assert acs_a.request("POST", CREATE, PAYLOAD, decode_url=True).status_code == 201
    almost_stale = datetime.now(UTC) - timedelta(minutes=14, seconds=30)
    assert acs_a.request("POST", CREATE, PAYLOAD, now=almost_stale).status_code == 201


def test_date_header_instead_of_x_ms_date(client: TestClient, acs_a: AcsClient) -> None:
    body = _encoded(PAYLOAD)
    now = datetime.now(UTC)
    date, digest = hmac_auth.http_date(now), content_hash(body)
    to_sign = hmac_auth.string_to_sign("POST", CREATE, (date, "testserver", digest))
    signature = base64.b64encode(hmac_auth.signature(base64.b64decode(acs_a.key), to_sign)).decode()
    headers = {
        "Date": date,
        "x-ms-content-sha256": digest,
        "Content-Type": "application/json",
        "Authorization": f"HMAC-SHA256 SignedHeaders=date;host;x-ms-content-sha256&Signature={signature}",
    }
    assert client.post(CREATE, content=body, headers=headers).status_code == 201


def test_other_resources_key_acts_as_that_resource(acs_a: AcsClient, acs_b: AcsClient) -> None:
    """B's valid key against A's identity authenticates as B, which cannot see the identity."""
    identity_id = acs_a.new_identity()
    response = AcsClient(acs_a.client, acs_b.key).issue_token(identity_id, ["chat"])
    assert_acs_error(response, 404, "IdentityNotFound")


# api-version -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "version"),
    [("/identities", IDENTITY_API), ("/networkTraversal/:issueRelayConfiguration", RELAY_API)],
)
def test_api_version(acs_a: AcsClient, path: str, version: str) -> None:
    error = assert_acs_error(acs_a.post(path, {}), 400, "MissingApiVersionParameter", "api-version")
    assert version in error["message"]
    error = assert_acs_error(
        acs_a.post(f"{path}?api-version=2020-01-01", {}), 400, "UnsupportedApiVersion", "api-version"
    )
    assert "2020-01-01" in error["message"]
    assert version in error["message"]
    other = RELAY_API if version == IDENTITY_API else IDENTITY_API
    assert_acs_error(acs_a.post(f"{path}?api-version={other}", {}), 400, "UnsupportedApiVersion")


# Key regeneration --------------------------------------------------------------------------------


@pytest.mark.parametrize(("key_type", "other"), [("primary", "secondary"), ("secondary", "primary")])
def test_regenerated_key_stops_working_at_once(
    client: TestClient, resource_a: dict[str, str], key_type: str, other: str
) -> None:
    old = AcsClient(client, resource_a[f"{key_type}Key"])
    assert old.create_identity().status_code == 201  # warms any key cache
    response = client.post(
        f"/admin/resources/{resource_a['name']}:regenerateKey",
        json={"keyType": key_type},
        headers=admin_headers(),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body[f"{key_type}Key"] != resource_a[f"{key_type}Key"]
    assert body[f"{other}Key"] == resource_a[f"{other}Key"]
    assert body[f"{key_type}ConnectionString"].endswith(f"accesskey={body[f'{key_type}Key']}")
    assert_acs_error(old.create_identity(), 401, "Denied")
    assert AcsClient(client, body[f"{key_type}Key"]).create_identity().status_code == 201
    assert AcsClient(client, resource_a[f"{other}Key"]).create_identity().status_code == 201


def test_deleted_resource_key_stops_working(client: TestClient, acs_a: AcsClient) -> None:
    assert acs_a.create_identity().status_code == 201
    response = client.delete("/admin/resources/tenant-a", headers=admin_headers())
    assert response.status_code == 204
    assert_acs_error(acs_a.create_identity(), 401, "Denied")


# Operator bearer -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {OPERATOR_TOKEN}x"},
        {"Authorization": f"Basic {OPERATOR_TOKEN}"},
        {"Authorization": OPERATOR_TOKEN},
        {"Authorization": "Bearer "},
    ],
)
def test_admin_needs_the_operator_token(client: TestClient, headers: dict[str, str]) -> None:
    for response in (
        client.get("/admin/resources", headers=headers),
        client.post("/admin/resources", json={"name": "x"}, headers=headers),
        client.delete("/admin/resources/x", headers=headers),
    ):
        assert_acs_error(response, 401, "Denied")
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert client.get("/admin/resources", headers=admin_headers()).json() == {"value": []}


def test_bearer_scheme_is_case_insensitive(client: TestClient) -> None:
    assert (
        client.get("/admin/resources", headers={"Authorization": f"bearer {OPERATOR_TOKEN}"}).status_code
        == 200
    )


def test_admin_is_closed_without_an_operator_token(app: FastAPI, client: TestClient) -> None:
    app.state.settings = app.state.settings.model_copy(update={"operator_token": None})
    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer None"}):
        assert_acs_error(client.get("/admin/resources", headers=headers), 401)


def test_operator_token_is_not_a_data_plane_credential(
    client: TestClient, resource_a: dict[str, str]
) -> None:
    response: httpx.Response = client.post(CREATE, json={}, headers=admin_headers())
    assert_acs_error(response, 401, "Denied")


def test_data_plane_key_is_not_an_operator_credential(client: TestClient, resource_a: dict[str, str]) -> None:
    headers = sdk_headers("GET", f"{BASE_URL}/admin/resources", resource_a["primaryKey"])
    assert_acs_error(client.get("/admin/resources", headers=headers), 401, "Denied")


# Duplicate headers (issue 16): sent as raw header lists, each copy on the wire.

_JUNK = {
    "authorization": "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=AAAA",
    "x-ms-date": "Mon, 01 Jan 2001 00:00:00 GMT",
    "x-ms-content-sha256": content_hash(b"junk"),
    "host": "elsewhere.example",
}


@pytest.mark.parametrize("name", sorted(_JUNK))
@pytest.mark.parametrize("junk_first", [True, False], ids=["junk-first", "junk-last"])
def test_a_signature_header_given_twice_is_refused(
    client: TestClient, resource_a: dict[str, str], name: str, junk_first: bool
) -> None:
    body = _encoded(PAYLOAD)
    signed = sdk_headers("POST", f"{BASE_URL}{CREATE}", resource_a["primaryKey"], body)
    signed = {k.lower(): v for k, v in signed.items()} | {"host": "testserver"}
    headers: list[tuple[str, str]] = []
    for key, value in signed.items():
        pair = [(key, value), (key, _JUNK[name])] if key == name else [(key, value)]
        headers.extend(reversed(pair) if junk_first else pair)
    headers.append(("content-type", "application/json"))
    assert [k for k, _ in headers].count(name) == 2
    response = client.post(CREATE, content=body, headers=headers)
    error = assert_acs_error(response, 401, "Denied")
    assert name in error["message"]
    # The same request with one copy of each is accepted.
    single = [(k, v) for k, v in signed.items()] + [("content-type", "application/json")]
    assert client.post(CREATE, content=body, headers=single).status_code == 201


def test_post_sms_refuses_a_repeated_authorization(client: TestClient, resource_a: dict[str, str]) -> None:
    body = _encoded({"from": "+14255550100", "smsRecipients": [{"to": "+14255550123"}], "message": "hi"})
    url = f"{BASE_URL}/sms?api-version=2021-03-07"
    signed = sdk_headers("POST", url, resource_a["primaryKey"], body)
    headers = [("authorization", _JUNK["authorization"]), *signed.items()]
    assert_acs_error(client.post(url, content=body, headers=headers), 401, "Denied")


@pytest.mark.parametrize(
    "headers",
    [
        [("authorization", "Bearer junk"), ("authorization", f"Bearer {OPERATOR_TOKEN}")],
        [("authorization", f"Bearer {OPERATOR_TOKEN}"), ("authorization", "Bearer junk")],
        [("authorization", f"Bearer {OPERATOR_TOKEN}"), ("authorization", f"Bearer {OPERATOR_TOKEN}")],
        [("authorization", f"Bearer {OPERATOR_TOKEN}"), ("host", "testserver"), ("host", "other")],
    ],
    ids=["junk-first", "junk-last", "same-twice", "two-hosts"],
)
def test_operator_token_given_twice_is_refused(
    client: TestClient, database: Database, headers: list[tuple[str, str]]
) -> None:
    assert_acs_error(client.get("/admin/resources", headers=headers), 401, "Denied")
    assert client.get("/admin/resources", headers=admin_headers()).status_code == 200
