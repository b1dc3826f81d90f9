"""/health, /ready and /metrics, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from gateway.core.db import Database
from tests.support.acs import AcsClient

REDIS_URL = os.environ.get("TRUNKLINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def test_health(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize(("broker_url", "detail"), [(None, "filesystem"), (REDIS_URL, "redis")])
def test_ready(
    app: FastAPI, client: TestClient, db_backend: str, broker_url: str | None, detail: str
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"broker_url": broker_url})
    response = client.get("/ready")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "ready",
        "checks": {
            "database": {"ok": True, "detail": db_backend},
            "broker": {"ok": True, "detail": detail},
        },
    }


@pytest.mark.parametrize("broker_url", ["redis://127.0.0.1:1/0", "amqp://127.0.0.1:5672//"])
def test_not_ready_without_broker(app: FastAPI, client: TestClient, broker_url: str) -> None:
    app.state.settings = app.state.settings.model_copy(update={"broker_url": broker_url})
    response = client.get("/ready")
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["broker"]["detail"]


def test_not_ready_without_database(
    app: FastAPI, client: TestClient, tmp_path: Path, db_backend: str
) -> None:
    unreachable = (
        "postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2"
        if db_backend == "postgresql"
        else f"sqlite:///{tmp_path}"  # a directory: SQLite cannot open it
    )
    original, app.state.db = app.state.db, Database(unreachable)
    try:
        response = client.get("/ready")
    finally:
        app.state.db.dispose()
        app.state.db = original
    assert response.status_code == 503, response.text
    checks = response.json()["checks"]
    assert checks["database"]["ok"] is False
    assert checks["database"]["detail"].startswith("OperationalError")
    assert checks["broker"]["ok"] is True


def _requests_total(client: TestClient, method: str, route: str, status: str) -> float:
    text = client.get("/metrics").text
    for family in text_string_to_metric_families(text):
        if family.name != "trunkline_http_requests":
            continue
        for sample in family.samples:
            if sample.name == "trunkline_http_requests_total" and sample.labels == {
                "method": method,
                "route": route,
                "status": status,
            }:
                return sample.value
    return 0.0


def test_metrics_count_requests_by_route(client: TestClient, acs_a: AcsClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    route = "/identities/{id}/:issueAccessToken"
    before = _requests_total(client, "POST", route, "200")
    missing_before = _requests_total(client, "GET", "unmatched", "404")
    for _ in range(3):
        assert acs_a.issue_token(acs_a.new_identity(), ["chat"]).status_code == 200
    assert client.get("/no/such/route").status_code == 404
    assert _requests_total(client, "POST", route, "200") == before + 3
    assert _requests_total(client, "GET", "unmatched", "404") == missing_before + 1
    text = client.get("/metrics").text
    assert "trunkline_http_request_duration_seconds_bucket" in text
    assert "8:acs:" not in text  # identity ids never become label values


def _auth_failures(client: TestClient, kind: str) -> float:
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "trunkline_auth_failures_total" and sample.labels == {"kind": kind}:
                return sample.value
    return 0.0


def test_metrics_count_rejected_callers(client: TestClient) -> None:
    hmac_before = _auth_failures(client, "hmac")
    operator_before = _auth_failures(client, "operator")
    assert client.post("/identities?api-version=2023-10-01", json={}).status_code == 401
    assert client.get("/admin/resources", headers={"authorization": "Bearer wrong"}).status_code == 401
    assert _auth_failures(client, "hmac") == hmac_before + 1
    assert _auth_failures(client, "operator") == operator_before + 1
