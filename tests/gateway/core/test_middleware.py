"""The ASGI middlewares: the request body limit, request ids, metrics (the ids through the app and the
500 answer: test_app.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from gateway.app import create_app
from gateway.core.db import Database
from gateway.core.middleware import _client_request_id, new_request_id
from gateway.core.settings import Settings
from tests.support.acs import BASE_URL, IDENTITY_API, AcsClient, admin_headers, assert_acs_error

LIMIT = 2048


@pytest.fixture
def small_limit_client(settings: Settings, database: Database) -> Iterator[TestClient]:
    limits = {"max_request_bytes": LIMIT, "max_admin_request_bytes": LIMIT}
    app = create_app(settings.model_copy(update=limits), database)
    with TestClient(app, base_url=BASE_URL) as client:
        yield client


def test_operator_api_has_its_own_larger_limit(settings: Settings, database: Database) -> None:
    limits = {"max_request_bytes": LIMIT, "max_admin_request_bytes": 4 * LIMIT}
    app = create_app(settings.model_copy(update=limits), database)
    padding = " " * (2 * LIMIT)
    with TestClient(app, base_url=BASE_URL) as client:
        created = client.post(
            "/admin/resources",
            content=f'{{"name": "roomy"}}{padding}'.encode(),
            headers={**admin_headers(), "Content-Type": "application/json"},
        )
        assert created.status_code == 201, created.text
        acs = AcsClient(client, created.json()["primaryKey"])
        tenant = acs.post(f"/identities?api-version={IDENTITY_API}", body=b"{}" + padding.encode())
        assert_acs_error(tenant, 413, "PayloadTooLarge")


def _chunks(total: int, size: int = 512) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        chunk = b" " * min(size, total - sent)
        sent += len(chunk)
        yield chunk


def test_body_over_the_limit_is_413(small_limit_client: TestClient) -> None:
    name_padding = " " * LIMIT
    response = small_limit_client.post(
        "/admin/resources",
        content=f'{{"name": "big"}}{name_padding}'.encode(),
        headers={**admin_headers(), "Content-Type": "application/json"},
    )
    error = assert_acs_error(response, 413, "PayloadTooLarge")
    assert str(LIMIT) in error["message"]
    assert response.headers["x-ms-request-id"]
    assert small_limit_client.get("/admin/resources", headers=admin_headers()).json() == {"value": []}


def test_chunked_body_over_the_limit_is_413(small_limit_client: TestClient) -> None:
    response = small_limit_client.post(
        "/admin/resources",
        content=_chunks(LIMIT * 3),
        headers={**admin_headers(), "Content-Type": "application/json"},
    )
    assert "content-length" not in {k.lower() for k in response.request.headers}
    assert_acs_error(response, 413, "PayloadTooLarge")


def test_signed_request_over_the_limit_is_413(small_limit_client: TestClient) -> None:
    key = small_limit_client.post("/admin/resources", json={"name": "t"}, headers=admin_headers()).json()[
        "primaryKey"
    ]
    acs = AcsClient(small_limit_client, key)
    big = {"createTokenWithScopes": ["chat"], "padding": "x" * LIMIT}
    assert_acs_error(acs.create_identity(big), 413, "PayloadTooLarge")
    small = {"createTokenWithScopes": ["chat"], "padding": "x" * (LIMIT // 2)}
    assert acs.create_identity(small).status_code == 201
    assert (
        acs.post(f"/identities?api-version={IDENTITY_API}", body=b"{}" + b" " * (LIMIT - 2)).status_code
        == 201
    )


def test_default_limit_allows_ordinary_requests(app: FastAPI, client: TestClient) -> None:
    assert app.state.settings.max_request_bytes >= 64 * 1024
    response = client.post(
        "/admin/resources",
        content=b'{"name": "ok"}' + b" " * 60_000,
        headers={**admin_headers(), "Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.text


def test_request_ids_are_random_version_4_uuids() -> None:
    ids = [new_request_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for text in ids[:200]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_client_request_id_is_found_among_the_headers() -> None:
    headers = [
        (b"host", b"example.test"),
        (b"x-ms-client-request-id", b"sdk-1" + b"x" * 200),
        (b"x-ms-return-client-request-id", b"True"),
        (b"x-ms-content-sha256", b"abc"),
    ]
    assert _client_request_id(headers) == ("sdk-1" + "x" * 123, True)
    assert _client_request_id([(b"x-ms-return-client-request-id", b"false")]) == (None, False)
    assert _client_request_id([]) == (None, False)


def test_metrics_count_each_route_and_status(client: TestClient) -> None:
    def count(status: str) -> float:
        value = REGISTRY.get_sample_value(
            "trunkline_http_requests_total", {"method": "PUT", "route": "/health", "status": status}
        )
        return value or 0.0

    before = count("405")
    for _ in range(3):
        client.put("/health")
    assert count("405") == before + 3
