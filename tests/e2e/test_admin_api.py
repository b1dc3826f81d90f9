"""The operator API and the operational endpoints of a real ``trunkline api``, over HTTPS."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.communication.identity import CommunicationIdentityClient
from azure.core.exceptions import ClientAuthenticationError

from tests.e2e.helpers import (
    AcsHmacAuth,
    TrunklineServer,
    api_command,
    free_port,
    parse_connection_string,
    running_trunkline,
    strong_secret,
    trunkline_env,
)

pytestmark = pytest.mark.e2e

REFUSAL_TIMEOUT = 30.0


def unique_name() -> str:
    return f"admin-{secrets.token_hex(4)}"


# Operator authentication ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer wrong-token-0123456789abcdefghij", "Basic b3BlcmF0b3I6c2VjcmV0"],
    ids=["missing", "empty", "wrong", "basic"],
)
def test_admin_requires_the_operator_token(authorization: str | None, trunkline: TrunklineServer) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    with trunkline.http(headers=headers) as client:
        for method, path, body in (
            ("GET", "/admin/resources", None),
            ("POST", "/admin/resources", {"name": unique_name()}),
            ("POST", "/admin/resources/whatever:regenerateKey", {"keyType": "primary"}),
        ):
            response = client.request(method, path, json=body)
            assert response.status_code == 401, (method, path, response.text)
            error = response.json()["error"]
            assert error["code"] == "Denied"
            assert error["message"]
            assert response.headers["www-authenticate"].startswith("Bearer")


def test_data_plane_key_is_not_an_operator_token(
    trunkline: TrunklineServer, resource_a: dict[str, Any]
) -> None:
    with trunkline.http(headers={"Authorization": f"Bearer {resource_a['primaryKey']}"}) as client:
        assert client.get("/admin/resources").status_code == 401


# Resources ------------------------------------------------------------------------------------------


def test_create_list_show_delete(
    admin: httpx.Client, trunkline: TrunklineServer, resource_a: dict[str, Any]
) -> None:
    name = unique_name()

    created = admin.post("/admin/resources", json={"name": name})

    assert created.status_code == 201, created.text
    data = created.json()
    assert data["name"] == name
    assert data["endpoint"] == trunkline.endpoint
    assert data["connectionString"] == f"endpoint={trunkline.endpoint};accesskey={data['primaryKey']}"
    assert (
        data["secondaryConnectionString"] == f"endpoint={trunkline.endpoint};accesskey={data['secondaryKey']}"
    )
    assert data["primaryKey"] != data["secondaryKey"]
    # The connection string works with the SDK at once.
    CommunicationIdentityClient.from_connection_string(data["connectionString"]).create_user()

    listed = admin.get("/admin/resources")
    assert listed.status_code == 200
    names = {r["name"] for r in listed.json()["value"]}
    assert {name, resource_a["name"]} <= names  # the CLI-made resource is there too
    assert all("primaryKey" not in r for r in listed.json()["value"])
    shown = admin.get(f"/admin/resources/{name}")
    assert shown.status_code == 200
    assert shown.json()["primaryKey"] == data["primaryKey"]
    assert admin.get(f"/admin/resources/{data['id']}").json()["name"] == name

    assert admin.post("/admin/resources", json={"name": name}).status_code == 409
    assert admin.delete(f"/admin/resources/{name}").status_code == 204
    assert admin.get(f"/admin/resources/{name}").status_code == 404
    with pytest.raises(ClientAuthenticationError):
        CommunicationIdentityClient.from_connection_string(data["connectionString"]).create_user()


@pytest.mark.parametrize(
    "body", [{"name": "Not_Valid"}, {"name": ""}, {}, {"name": "x", "endpoint": "http://a/"}]
)
def test_create_rejects_bad_input(body: dict[str, Any], admin: httpx.Client) -> None:
    response = admin.post("/admin/resources", json=body)
    assert response.status_code == 400, response.text
    assert set(response.json()["error"]) >= {"code", "message"}


def test_regenerate_primary_key(admin: httpx.Client, new_resource: Callable[[str], dict[str, Any]]) -> None:
    resource = new_resource(unique_name())
    old_primary = CommunicationIdentityClient.from_connection_string(resource["primaryConnectionString"])
    secondary = CommunicationIdentityClient.from_connection_string(resource["secondaryConnectionString"])
    user = old_primary.create_user()

    response = admin.post(f"/admin/resources/{resource['name']}:regenerateKey", json={"keyType": "primary"})

    assert response.status_code == 200, response.text
    renewed = response.json()
    assert renewed["primaryKey"] != resource["primaryKey"]
    assert renewed["secondaryKey"] == resource["secondaryKey"]
    with pytest.raises(ClientAuthenticationError) as denied:
        old_primary.create_user()
    assert denied.value.status_code == 401
    new_primary = CommunicationIdentityClient.from_connection_string(renewed["primaryConnectionString"])
    new_primary.get_token(user, ["chat"])  # same resource, same users
    secondary.get_token(user, ["voip"])


def test_regenerate_secondary_key(admin: httpx.Client, new_resource: Callable[[str], dict[str, Any]]) -> None:
    resource = new_resource(unique_name())

    response = admin.post(f"/admin/resources/{resource['name']}:regenerateKey", json={"keyType": "secondary"})

    assert response.status_code == 200, response.text
    renewed = response.json()
    assert renewed["primaryKey"] == resource["primaryKey"]
    with pytest.raises(ClientAuthenticationError):
        CommunicationIdentityClient.from_connection_string(
            resource["secondaryConnectionString"]
        ).create_user()
    CommunicationIdentityClient.from_connection_string(renewed["secondaryConnectionString"]).create_user()
    CommunicationIdentityClient.from_connection_string(resource["primaryConnectionString"]).create_user()


def test_regenerate_key_errors(admin: httpx.Client, new_resource: Callable[[str], dict[str, Any]]) -> None:
    resource = new_resource(unique_name())
    bad = admin.post(f"/admin/resources/{resource['name']}:regenerateKey", json={"keyType": "tertiary"})
    assert bad.status_code == 400
    missing = admin.post(f"/admin/resources/{unique_name()}:regenerateKey", json={"keyType": "primary"})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "ResourceNotFound"


def test_cli_sees_api_changes(admin: httpx.Client, trunkline: TrunklineServer) -> None:
    """The CLI and the API share the database: what one writes, the other reads."""
    name = unique_name()
    assert admin.post("/admin/resources", json={"name": name}).status_code == 201

    listed = trunkline.cli("resources", "list", "--json")

    assert listed.returncode == 0, listed.stderr
    assert name in listed.stdout


# Operations -----------------------------------------------------------------------------------------


def test_health(trunkline: TrunklineServer) -> None:
    with trunkline.http() as client:
        response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready(trunkline: TrunklineServer) -> None:
    with trunkline.http() as client:
        response = client.get("/ready")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"] == {"ok": True, "detail": trunkline.backend}
    assert body["checks"]["broker"]["ok"] is True


def test_metrics(trunkline: TrunklineServer, identity_a: CommunicationIdentityClient) -> None:
    identity_a.create_user_and_token(["chat"])
    with trunkline.http() as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "trunkline_http_requests_total" in text
    assert "trunkline_access_tokens_issued_total" in text
    issued = next(
        line for line in text.splitlines() if line.startswith("trunkline_access_tokens_issued_total ")
    )
    assert float(issued.split()[1]) >= 1


def test_openapi_lists_the_admin_api(trunkline: TrunklineServer) -> None:
    with trunkline.http() as client:
        response = client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/admin/resources" in paths
    assert {"get", "post"} <= set(paths["/admin/resources"])
    assert "/admin/resources/{resource}:regenerateKey" in paths
    assert "/identities" in paths
    assert "/networkTraversal/:issueRelayConfiguration" in paths


def test_plain_http_is_not_served(trunkline: TrunklineServer) -> None:
    with pytest.raises(httpx.HTTPError), httpx.Client(timeout=5) as client:
        client.get(f"http://127.0.0.1:{trunkline.port}/health")


# Refusing to start ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "turn_secret"),
    [
        (None, None),
        ("", None),
        ("changeme", None),
        ("   ", None),
        ("short-token", None),
        ("trunkline", None),
        ("STRONG", "secret"),  # a strong operator token but a weak TURN secret
    ],
    ids=["unset", "empty", "changeme", "blank", "short", "product-name", "weak-turn-secret"],
)
def test_api_refuses_to_start_with_weak_secrets(
    token: str | None, turn_secret: str | None, tmp_path: Path
) -> None:
    port = free_port()
    operator_token = strong_secret() if token == "STRONG" else (token or "")
    env = trunkline_env(
        tmp_path / "data",
        port,
        operator_token,
        turn_urls=["turn:127.0.0.1:3478"] if turn_secret else None,
        turn_secret=turn_secret,
    )
    if token is None:
        del env["TRUNKLINE_OPERATOR_TOKEN"]

    # subprocess.run kills the child (by its PID) if it is still running at the timeout.
    result = subprocess.run(
        api_command(port),
        check=False,
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=REFUSAL_TIMEOUT,
    )

    assert result.returncode == 2, result.stderr
    message = " ".join(result.stderr.split())  # rich wraps long lines
    assert "refusing to start" in message
    assert ("TRUNKLINE_TURN_SECRET" if turn_secret else "TRUNKLINE_OPERATOR_TOKEN") in message
    if token == "STRONG":
        assert operator_token not in message  # a good secret is never echoed


# Several API processes --------------------------------------------------------------------------------


def test_api_workers_share_one_signing_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--workers 2`` (TRUNKLINE_API_WORKERS) runs two processes on one socket; a token issued
    by either verifies at either, so they made no signing key of their own."""
    with running_trunkline(tmp_path, extra_env={"TRUNKLINE_API_WORKERS": "2"}) as server:
        children = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read_text().split()
        # multiprocessing also starts its resource tracker; the workers are the spawned ones.
        commands = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in children]
        assert sum(b"spawn_main" in command for command in commands) == 2, commands
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.ca_file))
        monkeypatch.setenv("SSL_CERT_FILE", str(server.ca_file))
        resource = server.create_resource()
        _endpoint, key = parse_connection_string(resource["connectionString"])
        client = CommunicationIdentityClient.from_connection_string(resource["connectionString"])
        tokens = [client.create_user_and_token(["voip"])[1].token for _ in range(6)]
        # Fresh connections, so the kernel spreads them over both processes.
        for token in tokens * 2:
            with server.http(auth=AcsHmacAuth(key)) as http:
                answer = http.post("/accessTokens:verify?api-version=2023-10-01", json={"token": token})
            assert answer.status_code == 200, answer.text
        assert len(list((server.data_dir / "keys").glob("*.pem"))) == 1
