"""The operator's admin API for resources, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from tests.support.acs import admin_headers, assert_acs_error, create_resource


def test_create(client: TestClient) -> None:
    before = datetime.now(UTC)
    body = create_resource(client, "tenant")
    assert body["name"] == "tenant"
    assert body["endpoint"] == "https://testserver:443/"  # the gateway's public endpoint
    for which in ("primary", "secondary"):
        key = body[f"{which}Key"]
        assert len(base64.b64decode(key, validate=True)) == 32
        assert body[f"{which}ConnectionString"] == f"endpoint={body['endpoint']};accesskey={key}"
    assert body["connectionString"] == body["primaryConnectionString"]
    assert body["primaryKey"] != body["secondaryKey"]
    created = datetime.fromisoformat(body["createdAt"].replace("Z", "+00:00"))
    assert before - timedelta(seconds=1) <= created <= datetime.now(UTC)


def test_create_with_endpoint(client: TestClient) -> None:
    body = create_resource(client, "tenant", endpoint="https://sms.example.com/ignored/path")
    assert body["endpoint"] == "https://sms.example.com/"
    assert body["connectionString"].startswith("endpoint=https://sms.example.com/;accesskey=")


def test_list_get_delete(client: TestClient) -> None:
    first, second = create_resource(client, "first"), create_resource(client, "second")
    listing = client.get("/admin/resources", headers=admin_headers())
    assert listing.status_code == 200
    values = listing.json()["value"]
    assert [r["name"] for r in values] == ["first", "second"]
    assert all("primaryKey" not in r and "connectionString" not in r for r in values)
    for ref in ("first", first["id"]):
        got = client.get(f"/admin/resources/{ref}", headers=admin_headers())
        assert got.status_code == 200
        assert got.json() == first
    response = client.delete("/admin/resources/first", headers=admin_headers())
    assert response.status_code == 204
    assert response.content == b""
    assert_acs_error(client.get("/admin/resources/first", headers=admin_headers()), 404, "ResourceNotFound")
    assert_acs_error(client.delete(f"/admin/resources/{first['id']}", headers=admin_headers()), 404)
    remaining = client.get("/admin/resources", headers=admin_headers()).json()["value"]
    assert [r["id"] for r in remaining] == [second["id"]]


def test_duplicate_name(client: TestClient) -> None:
    create_resource(client, "tenant")
    response = client.post("/admin/resources", json={"name": "tenant"}, headers=admin_headers())
    assert_acs_error(response, 409, "ResourceAlreadyExists", "name")


@pytest.mark.parametrize("name", ["Tenant", "-x", "x-", "a_b", "a" * 64, "has space"])
def test_bad_name(client: TestClient, name: str) -> None:
    response = client.post("/admin/resources", json={"name": name}, headers=admin_headers())
    error = assert_acs_error(response, 400, target="name")
    assert "name" in error["message"]


@pytest.mark.parametrize(
    ("payload", "target"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": 42}, "name"),
        ({"name": "ok", "endpoint": "http://plain.example/"}, "endpoint"),
        ({"name": "ok", "endpoint": 7}, "endpoint"),
        ({"name": "ok", "colour": "blue"}, "colour"),
    ],
)
def test_validation_errors_are_400_naming_the_field(
    client: TestClient, payload: dict[str, object], target: str
) -> None:
    response = client.post("/admin/resources", json=payload, headers=admin_headers())
    assert_acs_error(response, 400, target=target)


@pytest.mark.parametrize("content", [b"", b"{", b"[]", b'"name"'])
def test_malformed_bodies_are_400(client: TestClient, content: bytes) -> None:
    response = client.post(
        "/admin/resources",
        content=content,
        headers={**admin_headers(), "Content-Type": "application/json"},
    )
    assert_acs_error(response, 400)


@pytest.mark.parametrize(("payload", "target"), [({}, "keyType"), ({"keyType": "tertiary"}, "keyType")])
def test_regenerate_validation(client: TestClient, payload: dict[str, str], target: str) -> None:
    create_resource(client, "tenant")
    response = client.post("/admin/resources/tenant:regenerateKey", json=payload, headers=admin_headers())
    assert_acs_error(response, 400, target=target)


def test_regenerate_unknown_resource(client: TestClient) -> None:
    response = client.post(
        "/admin/resources/ghost:regenerateKey", json={"keyType": "primary"}, headers=admin_headers()
    )
    assert_acs_error(response, 404, "ResourceNotFound")


def test_regenerate_by_id(client: TestClient) -> None:
    created = create_resource(client, "tenant")
    response = client.post(
        f"/admin/resources/{created['id']}:regenerateKey",
        json={"keyType": "secondary"},
        headers=admin_headers(),
    )
    assert response.status_code == 200
    body = response.json()
    assert body["secondaryKey"] != created["secondaryKey"]
    assert body["primaryKey"] == created["primaryKey"]
    assert (
        client.get("/admin/resources/tenant", headers=admin_headers()).json()["secondaryKey"]
        == (body["secondaryKey"])
    )
