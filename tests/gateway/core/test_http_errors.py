"""How ACS errors, validation errors and HTTP errors are answered over HTTP."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import FastAPI, HTTPException, Query
from fastapi.exceptions import RequestValidationError
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from gateway.core import http_errors
from gateway.core.errors import Conflict
from tests.support.acs import assert_acs_error


@pytest.mark.parametrize(
    ("loc", "expected"),
    [
        (("body", "createTokenWithScopes", 0), "createTokenWithScopes[0]"),
        (("body", "a", "b", 2, "c"), "a.b[2].c"),
        (("query", "api-version"), "api-version"),
        (("body",), "body"),
        ((), "request"),
    ],
)
def test_location(loc: tuple[Any, ...], expected: str) -> None:
    assert http_errors._location(loc) == expected


def test_validation_error_names_every_field() -> None:
    exc = RequestValidationError(
        [
            {"type": "missing", "loc": ("body", "scopes"), "msg": "Field required"},
            {"type": "int_parsing", "loc": ("body", "expiresInMinutes"), "msg": "bad"},
            {"type": "int_parsing", "loc": ("body", "scopes"), "msg": "again"},
        ]
    )
    response = http_errors.validation_error_response(exc)
    assert response.status_code == 400
    body = json.loads(bytes(response.body))
    assert body["error"]["code"] == "InvalidRequest"
    assert body["error"]["target"] == "scopes"
    assert "'scopes'" in body["error"]["message"]
    assert "Also invalid: expiresInMinutes." in body["error"]["message"]


# Through an app -------------------------------------------------------------------------------


class Item(BaseModel):
    name: str = Field(min_length=2)
    count: int = 1


@pytest.fixture
def small_app() -> TestClient:
    app = FastAPI()
    http_errors.install_error_handlers(app)

    @app.post("/items")
    def create(item: Item, limit: int = Query(default=1, ge=1)) -> dict[str, str]:
        return {"name": item.name}

    @app.get("/acs")
    def acs() -> None:
        raise Conflict("already there", "name", code="AlreadyThere")

    @app.get("/http/{status}")
    def http(status: int) -> None:
        raise HTTPException(status, headers={"Retry-After": "3"} if status == 429 else None)

    return TestClient(app)


def test_request_validation_is_400_naming_the_field(small_app: TestClient) -> None:
    error = assert_acs_error(small_app.post("/items", json={"name": "x"}), 400, "InvalidRequest", "name")
    assert "'name'" in error["message"]
    assert_acs_error(small_app.post("/items", json={"name": "xy", "count": "many"}), 400, target="count")
    assert_acs_error(small_app.post("/items?limit=0", json={"name": "xy"}), 400, target="limit")
    assert small_app.post("/items", json={"name": "xy"}).json() == {"name": "xy"}


def test_invalid_json_is_400(small_app: TestClient) -> None:
    response = small_app.post("/items", content=b"{not json", headers={"Content-Type": "application/json"})
    error = assert_acs_error(response, 400, "BadRequest")
    assert "JSON" in error["message"]


def test_acs_error_is_rendered(small_app: TestClient) -> None:
    assert_acs_error(small_app.get("/acs"), 409, "AlreadyThere", "name")


@pytest.mark.parametrize(
    ("status", "code"), [(400, "BadRequest"), (403, "Forbidden"), (429, "TooManyRequests"), (418, "Error")]
)
def test_http_exceptions_get_acs_codes(small_app: TestClient, status: int, code: str) -> None:
    response = small_app.get(f"/http/{status}")
    assert_acs_error(response, status, code)
    if status == 429:
        assert response.headers["retry-after"] == "3"


def test_unknown_route_and_method(small_app: TestClient) -> None:
    error = assert_acs_error(small_app.get("/nowhere"), 404, "NotFound")
    assert error["message"] == "No such resource or operation."
    assert_acs_error(small_app.delete("/items"), 405, "MethodNotAllowed")
