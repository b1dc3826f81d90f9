"""End-to-end fixtures: a real coturn, a real ``trunkline api`` process over HTTPS, resources
made with the CLI, and the official ACS SDK clients built from nothing but a connection string.

The server runs once per database backend (SQLite, then a throw-away PostgreSQL database). The
SDKs trust the server's generated CA through REQUESTS_CA_BUNDLE/SSL_CERT_FILE, which is what an
operator tells a developer to export; they get no other configuration.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from azure.communication.identity import CommunicationIdentityClient
from azure.communication.networktraversal import CommunicationRelayClient

from tests.e2e.helpers import (
    Coturn,
    ProcessError,
    TrunklineServer,
    running_coturn,
    running_trunkline,
    throwaway_postgres_database,
)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    """Attach the tail of the server's log to every failed e2e test."""
    report = yield
    if report.failed:
        funcargs = getattr(item, "funcargs", {})
        for value in funcargs.values():
            if isinstance(value, TrunklineServer):
                report.sections.append((f"trunkline api log (tail, {value.backend})", value.log_tail(80)))
                break
    return report


@pytest.fixture(scope="session")
def coturn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coturn]:
    try:
        with running_coturn(tmp_path_factory.mktemp("coturn")) as server:
            yield server
    except ProcessError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(
    scope="session",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def trunkline(
    request: pytest.FixtureRequest, coturn: Coturn, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TrunklineServer]:
    backend: str = request.param
    with ExitStack() as stack:
        try:
            database_url = (
                stack.enter_context(throwaway_postgres_database()) if backend == "postgresql" else None
            )
            server = stack.enter_context(
                running_trunkline(
                    tmp_path_factory.mktemp(f"trunkline-{backend}"),
                    turn_urls=coturn.urls,
                    turn_secret=coturn.secret,
                    database_url=database_url,
                    backend=backend,
                )
            )
        except ProcessError as exc:
            pytest.fail(str(exc), pytrace=False)
        # The one thing a developer configures besides the connection string: trust in the CA.
        patch = stack.enter_context(pytest.MonkeyPatch.context())
        patch.setenv("REQUESTS_CA_BUNDLE", str(server.ca_file))
        patch.setenv("SSL_CERT_FILE", str(server.ca_file))
        yield server


@pytest.fixture(scope="session")
def resource_a(trunkline: TrunklineServer) -> dict[str, Any]:
    """A resource created with the CLI (a separate process on the same database) while the API runs."""
    return trunkline.create_resource()


@pytest.fixture(scope="session")
def resource_b(trunkline: TrunklineServer) -> dict[str, Any]:
    return trunkline.create_resource()


@pytest.fixture
def identity_a(resource_a: dict[str, Any]) -> CommunicationIdentityClient:
    return CommunicationIdentityClient.from_connection_string(resource_a["connectionString"])


@pytest.fixture
def identity_b(resource_b: dict[str, Any]) -> CommunicationIdentityClient:
    return CommunicationIdentityClient.from_connection_string(resource_b["connectionString"])


@pytest.fixture
def relay_a(resource_a: dict[str, Any]) -> CommunicationRelayClient:
    return CommunicationRelayClient.from_connection_string(resource_a["connectionString"])


@pytest.fixture
def admin(trunkline: TrunklineServer) -> Iterator[httpx.Client]:
    """The operator's client: real HTTPS, the generated CA, the bearer token."""
    with trunkline.http(headers={"Authorization": f"Bearer {trunkline.operator_token}"}) as client:
        yield client


@pytest.fixture
def new_resource(admin: httpx.Client) -> Callable[[str], dict[str, Any]]:
    """Create a resource through the admin API (for tests that change its keys)."""

    def create(name: str) -> dict[str, Any]:
        response = admin.post("/admin/resources", json={"name": name})
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()
        return data

    return create
