"""The published OpenAPI document (gateway/core/openapi.py) is complete: every route is in it,
with its api-version and its body, and its errors."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gateway.core.db import Database
from tests.support.acs import AcsClient, admin_headers
from tests.support.openapi import Operation, app_routes, operations

NOT_JSON = b"{not json"


@pytest.fixture
def document(client: TestClient) -> dict[str, Any]:
    data: dict[str, Any] = client.get("/openapi.json").json()
    return data


def _send(client: TestClient, acs: AcsClient, operation: Operation, url: str, body: bytes) -> Any:
    if operation.caller == "tenant":
        return acs.request(operation.method, url, body=body)
    headers = {**admin_headers(), "content-type": "application/json"}
    return client.request(operation.method, url, content=body, headers=headers)


def _url(operation: Operation, *, api_version: bool) -> str:
    path = operation.path
    for name in operation.path_params:
        path = path.replace("{" + name + "}", "US" if name == "countryCode" else "x")
    if api_version and operation.api_versions:
        path += f"?api-version={operation.api_versions[0]}"
    return path


def test_every_route_is_documented(app: FastAPI, document: dict[str, Any]) -> None:
    documented = {(o.method, o.path) for o in operations(document)}
    assert app_routes(app) == documented


def test_every_api_version_is_declared_required_with_its_values(
    client: TestClient, acs_a: AcsClient, database: Database, document: dict[str, Any]
) -> None:
    """A route declares api-version exactly when it answers MissingApiVersionParameter without one."""
    for operation in operations(document):
        if operation.caller == "public":
            continue
        answer = _send(client, acs_a, operation, _url(operation, api_version=False), b"")
        checks = answer.status_code == 400 and '"MissingApiVersionParameter"' in answer.text
        declared = [p for p in operation.query_params if p["name"] == "api-version"]
        assert bool(declared) == checks, f"{operation}: declared={declared}, answer={answer.text[:200]}"
        if declared:
            assert declared[0]["required"] is True, operation
            assert declared[0]["schema"]["enum"], operation


def test_every_body_a_route_reads_is_declared(
    client: TestClient, acs_a: AcsClient, database: Database, document: dict[str, Any]
) -> None:
    """A route that answers a body that is not JSON as such declares its body."""
    for operation in operations(document):
        if operation.method not in ("POST", "PUT", "PATCH") or operation.caller == "public":
            continue
        answer = _send(client, acs_a, operation, _url(operation, api_version=True), NOT_JSON)
        reads_json = answer.status_code == 400 and "not valid JSON" in answer.text
        if reads_json:
            assert "requestBody" in operation.spec, f"{operation} reads a JSON body it does not declare"
    named = {
        ("POST", "/sms"),
        ("POST", "/sms/optouts:add"),
        ("POST", "/sms/optouts:remove"),
        ("POST", "/sms/optouts:check"),
        ("POST", "/availablePhoneNumbers/:purchase"),
        ("POST", "/operatorInformation/:search"),
        ("POST", "/availablePhoneNumbers/countries/{countryCode}/:search"),
        ("PATCH", "/sip"),
    }
    with_body = {(o.method, o.path) for o in operations(document) if "requestBody" in o.spec}
    assert named <= with_body


def test_body_schemas_resolve_and_errors_are_declared(document: dict[str, Any]) -> None:
    components = document["components"]["schemas"]
    for operation in operations(document):
        for content in operation.spec.get("requestBody", {}).get("content", {}).values():
            ref = content["schema"].get("$ref")
            if ref:
                assert ref.rsplit("/", 1)[1] in components, operation
            assert "$defs" not in content["schema"], operation
        responses = operation.spec["responses"]
        assert "422" not in responses, operation
        assert responses["default"]["content"]["application/json"]["schema"]["$ref"].endswith(
            "CommunicationErrorResponse"
        )
    assert "HTTPValidationError" not in components
