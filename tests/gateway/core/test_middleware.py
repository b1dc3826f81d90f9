"""The ASGI middlewares: the request body limit (request ids and the 500 answer: test_app.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.core.db import Database
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
