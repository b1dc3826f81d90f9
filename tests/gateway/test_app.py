"""The assembled application: routing, last-resort errors and request ids."""

from __future__ import annotations

import uuid

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.acs import IDENTITY_API, AcsClient, admin_headers, assert_acs_error


def test_unknown_route_is_an_acs_404(client: TestClient) -> None:
    for response in (
        client.get("/nowhere"),
        client.post("/identities/x/:frobnicate?api-version=2023-10-01"),
        client.get("/admin/nothing", headers=admin_headers()),
    ):
        assert_acs_error(response, 404, "NotFound")


def test_wrong_method_is_an_acs_405(client: TestClient) -> None:
    assert_acs_error(client.put("/health"), 405, "MethodNotAllowed")


def test_unhandled_exception_is_an_acs_500_without_details(app: FastAPI, client: TestClient) -> None:
    secret = f"internal detail {uuid.uuid4()}"

    def explode() -> None:
        raise RuntimeError(secret)

    async def explode_async() -> None:
        raise KeyError(secret)

    app.add_api_route("/test-only/explode", explode, methods=["GET"])
    app.add_api_route("/test-only/explode-async", explode_async, methods=["GET"])
    for path in ("/test-only/explode", "/test-only/explode-async"):
        response = client.get(path)
        error = assert_acs_error(response, 500, "InternalError")
        assert secret not in response.text
        assert "Traceback" not in response.text
        assert "RuntimeError" not in response.text
        assert "KeyError" not in response.text
        assert response.headers["x-ms-request-id"] in error["message"]
        assert response.headers["content-type"] == "application/json"
    assert client.get("/health").status_code == 200  # the app carries on


def test_request_ids(client: TestClient, acs_a: AcsClient) -> None:
    first, second = client.get("/health"), client.get("/health")
    ids = {first.headers["x-ms-request-id"], second.headers["x-ms-request-id"]}
    assert len(ids) == 2
    assert first.headers["x-request-id"] == first.headers["x-ms-request-id"]
    uuid.UUID(first.headers["x-ms-request-id"])
    # The SDKs ask for their own id back with x-ms-return-client-request-id.
    echoed = client.get(
        "/health", headers={"x-ms-client-request-id": "sdk-123", "x-ms-return-client-request-id": "true"}
    )
    assert echoed.headers["x-ms-client-request-id"] == "sdk-123"
    assert (
        "x-ms-client-request-id" not in client.get("/health", headers={"x-ms-client-request-id": "x"}).headers
    )
    # Errors carry the ids too.
    failed = acs_a.post(f"/identities?api-version={IDENTITY_API}", {"createTokenWithScopes": "chat"})
    assert_acs_error(failed, 400)
    assert failed.headers["x-ms-request-id"]


def test_validation_errors_are_never_422(client: TestClient, acs_a: AcsClient) -> None:
    for response in (
        acs_a.post(f"/identities?api-version={IDENTITY_API}", body=b"{not json"),
        acs_a.post(f"/identities?api-version={IDENTITY_API}", [1, 2]),
        acs_a.post(f"/identities/x/:issueAccessToken?api-version={IDENTITY_API}", {"scopes": "chat"}),
        client.post("/admin/resources", json={"name": ["list"]}, headers=admin_headers()),
    ):
        assert_acs_error(response, 400)


def test_openapi_lists_the_acs_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/identities",
        "/identities/{id}",
        "/identities/{id}/:revokeAccessTokens",
        "/identities/{id}/:issueAccessToken",
        "/teamsUser/:exchangeAccessToken",
        "/networkTraversal/:issueRelayConfiguration",
        "/sms",
    ):
        assert path in paths
    # POST /sms is a plain ASGI route, described by hand (gateway.sms.router.document_send)
    body = paths["/sms"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert set(schemas[body["$ref"].rsplit("/", 1)[1]]["properties"]) >= {"from", "smsRecipients", "message"}
