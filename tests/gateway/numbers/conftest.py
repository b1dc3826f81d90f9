"""Fixtures of the numbers tests: the app, signed tenant clients, stock.

``database`` comes from the root conftest (SQLite per test, the run's PostgreSQL database).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from fastapi.testclient import TestClient

import gateway.models  # noqa: F401
from gateway.app import create_app
from gateway.core import hmac_auth
from gateway.core.db import Database
from gateway.core.settings import Settings
from gateway.numbers import importer, inventory
from gateway.numbers.sample import sample_rows, toll_free_rows
from gateway.resources import service as resources

OPERATOR_TOKEN = "numbers-test-operator-token-" + secrets.token_hex(8)
BASE_URL = "https://numbers.test"
API = "2025-06-01"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        operator_token=OPERATOR_TOKEN,
        public_endpoint=BASE_URL,
        numbers_release_quarantine_minutes=0,
    )


@pytest.fixture
def client(settings: Settings, database: Database) -> Iterator[TestClient]:
    app = create_app(settings, database)
    with TestClient(app, base_url=BASE_URL) as test_client:
        yield test_client


@dataclass
class Tenant:
    """A resource and a client that signs its requests like the ACS SDKs do."""

    resource_id: str
    key: str
    http: TestClient

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, Any] | None = None,
        **headers: str,
    ) -> Any:
        query = {**(params or {})}
        query.setdefault("api-version", API)
        if path.startswith("http"):
            parts = urlsplit(path)
            path_and_query = parts.path + ("?" + parts.query if parts.query else "")
        else:
            path_and_query = f"{path}?{urlencode(query)}"
        data = b"" if body is None else json.dumps(body).encode()
        signed = hmac_auth.sign_request(
            method, path_and_query, urlsplit(BASE_URL).netloc, data, self.key, datetime.now(UTC)
        )
        all_headers = {**signed, **headers}
        if body is not None:
            all_headers.setdefault("content-type", "application/json")
        return self.http.request(method, path_and_query, content=data, headers=all_headers)


@pytest.fixture
def make_tenant(client: TestClient, database: Database) -> Callable[[str], Tenant]:
    def make(name: str) -> Tenant:
        with database.session() as session:
            resource = resources.create_resource(session, name, BASE_URL)
            return Tenant(resource.id, resource.primary_key, client)

    return make


@pytest.fixture
def stock(database: Database) -> Callable[..., importer.ImportReport]:
    """Import sample inventory: ``stock(per_area, areas=..., toll_free=0, **row_options)``."""

    def add(
        per_area: int = 20, toll_free: int = 0, carrier: str = "acme", **options: Any
    ) -> importer.ImportReport:
        with database.session() as session:
            if carrier not in {c.name for c, _ in inventory.list_carriers(session)}:
                inventory.create_carrier(session, carrier, "both")
        rows: list[dict[str, Any]] = list(sample_rows(per_area, carrier=carrier, **options))
        rows += list(toll_free_rows(toll_free, carrier=carrier))
        report = importer.import_records(database, enumerate(rows, start=2))
        assert report.accepted, report.as_json()
        return report

    return add


def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
