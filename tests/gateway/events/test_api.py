"""Subscription API: operator admin routes, the tenant's own HMAC routes, SSRF at registration."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.core.db import Database
from gateway.core.hmac_auth import sign_request
from gateway.core.migrate import upgrade
from gateway.core.settings import Settings
from gateway.events import service, subscriptions
from gateway.events.models import SubscriptionStatus
from gateway.resources.models import Resource
from gateway.resources.service import create_resource

TOKEN = "operator-token-for-tests-0123456789"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
PUBLIC_IP = "93.184.216.34"  # an IP literal resolves without DNS


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[TestClient, Database, Resource, Resource]]:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'api.db'}",
        operator_token=TOKEN,  # type: ignore[arg-type]
        webhook_allowed_networks=[],
    )
    database = Database(settings.effective_database_url)
    upgrade(database.engine)
    with database.session() as session:
        one = create_resource(session, "tenant-one", "https://testserver/")
        two = create_resource(session, "tenant-two", "https://testserver/")
    with TestClient(create_app(settings, database), base_url="https://testserver") as client:
        yield client, database, one, two
    database.dispose()


def body(url: str = f"https://{PUBLIC_IP}/hook", **extra: Any) -> dict[str, Any]:
    return {"endpointUrl": url, "includedEventTypes": ["Microsoft.Communication.SMSReceived"], **extra}


def tenant(client: TestClient, resource: Resource, method: str, path: str, payload: Any = None) -> Any:
    data = json.dumps(payload).encode() if payload is not None else b""
    headers = sign_request(method, path, "testserver", data, resource.primary_key, datetime.now(UTC))
    headers["content-type"] = "application/json"
    return client.request(method, path, content=data, headers=headers)


def test_admin_requires_the_operator_token(env: Any) -> None:
    client, *_ = env
    answer = client.get("/admin/eventSubscriptions")
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "Denied"


def test_admin_lifecycle(env: Any) -> None:
    client, database, one, _two = env
    created = client.post(
        "/admin/eventSubscriptions",
        json=body(resource="tenant-one", eventDeliverySchema="CloudEventSchemaV1_0", subjectEndsWith="0100"),
        headers=ADMIN,
    )
    assert created.status_code == 201, created.text
    sub = created.json()
    assert sub["resourceId"] == one.id
    assert sub["secret"].startswith("whsec_")
    assert sub["status"] == "pendingValidation"
    assert sub["statusDetail"]
    assert sub["maxDeliveryAttempts"] == 30
    assert sub["eventTimeToLiveInMinutes"] == 1440
    sid = sub["id"]
    assert client.get(f"/admin/eventSubscriptions/{sid}", headers=ADMIN).json()["id"] == sid
    listed = client.get("/admin/eventSubscriptions?resource=tenant-one", headers=ADMIN).json()["value"]
    assert [s["id"] for s in listed] == [sid]
    not_live = client.post(f"/admin/eventSubscriptions/{sid}:test", headers=ADMIN)
    assert not_live.status_code == 409
    assert not_live.json()["error"]["code"] == "SubscriptionNotActive"
    rotated = client.post(f"/admin/eventSubscriptions/{sid}:rotateSecret", headers=ADMIN).json()
    assert rotated["secret"] != sub["secret"]
    assert rotated["previousSecretExpiresAt"] is not None
    with database.session() as session:
        stored = subscriptions.get_subscription(session, sid)
        stored.status = SubscriptionStatus.ACTIVE
    accepted = client.post(f"/admin/eventSubscriptions/{sid}:test", json={}, headers=ADMIN)
    assert accepted.status_code == 202
    event_id = accepted.json()["eventId"]
    pending = client.get(f"/admin/eventSubscriptions/{sid}/deliveries?status=pending", headers=ADMIN).json()
    assert [d["eventId"] for d in pending["value"]] == [event_id]
    assert client.get(f"/admin/eventSubscriptions/{sid}/attempts", headers=ADMIN).json() == {"value": []}
    assert client.post(f"/admin/eventSubscriptions/{sid}:replay", headers=ADMIN).json() == {
        "replayedEventIds": []
    }
    revalidated = client.post(f"/admin/eventSubscriptions/{sid}:validate", headers=ADMIN).json()
    assert revalidated["status"] == "pendingValidation"
    assert client.delete(f"/admin/eventSubscriptions/{sid}", headers=ADMIN).status_code == 204
    gone = client.get(f"/admin/eventSubscriptions/{sid}", headers=ADMIN)
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "SubscriptionNotFound"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (body() | {"includedEventTypes": ["Microsoft.Storage.BlobCreated"]}, "InvalidEventType"),
        (body() | {"includedEventTypes": []}, "InvalidRequest"),
        (body() | {"eventDeliverySchema": "CustomInputSchema"}, "InvalidRequest"),
        (body() | {"maxDeliveryAttempts": 31}, "InvalidRequest"),
        (body() | {"eventTimeToLiveInMinutes": 0}, "InvalidRequest"),
        (body() | {"resource": "no-such-tenant"}, "ResourceNotFound"),
    ],
)
def test_admin_rejects_bad_input_in_acs_shape(env: Any, payload: dict[str, Any], code: str) -> None:
    client, *_ = env
    payload = {"resource": "tenant-one", **payload}
    answer = client.post("/admin/eventSubscriptions", json=payload, headers=ADMIN)
    assert answer.status_code in (400, 404)
    assert answer.json()["error"]["code"] == code


REFUSED_URLS = {
    "loopback": "https://127.0.0.1/hook",
    "loopback v6": "https://[::1]/hook",
    "localhost name": "https://localhost/hook",
    "private 10/8": "https://10.0.0.5/hook",
    "private 192.168": "https://192.168.1.20/hook",
    "private 172.16": "https://172.16.5.4/hook",
    "private v6 ula": "https://[fd12::1]/hook",
    "link-local": "https://169.254.10.10/hook",
    "link-local v6": "https://[fe80::1]/hook",
    "multicast": "https://224.0.0.251/hook",
    "multicast v6": "https://[ff02::1]/hook",
    "cloud metadata": "https://169.254.169.254/latest/meta-data",
    "cloud metadata v6": "https://[fd00:ec2::254]/",
    "azure wireserver": "https://168.63.129.16/",
    "mapped loopback": "https://[::ffff:127.0.0.1]/hook",
    "unspecified": "https://0.0.0.0/hook",
    "plain http to a public address": f"http://{PUBLIC_IP}/hook",
    "not http": "ftp://example.org/x",
}


@pytest.mark.parametrize("url", REFUSED_URLS.values(), ids=REFUSED_URLS.keys())
def test_ssrf_guard_at_registration(env: Any, url: str) -> None:
    client, _database, one, _two = env
    answer = client.post("/admin/eventSubscriptions", json=body(url, resource="tenant-one"), headers=ADMIN)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "InvalidEndpoint"
    assert answer.json()["error"]["target"] == "endpointUrl"
    via_tenant = tenant(client, one, "POST", "/eventSubscriptions", body(url))
    assert via_tenant.status_code == 400
    assert via_tenant.json()["error"]["code"] == "InvalidEndpoint"


def test_tenant_api_is_scoped_to_the_caller(env: Any) -> None:
    client, _database, one, two = env
    assert client.post("/eventSubscriptions", json=body()).status_code == 401
    mine = tenant(client, one, "POST", "/eventSubscriptions", body())
    assert mine.status_code == 201, mine.text
    assert mine.json()["resourceId"] == one.id
    theirs = tenant(client, two, "POST", "/eventSubscriptions", body(subjectBeginsWith="/phonenumber/1555"))
    assert theirs.status_code == 201
    listed = tenant(client, one, "GET", "/eventSubscriptions").json()["value"]
    assert [s["id"] for s in listed] == [mine.json()["id"]]
    other_id = theirs.json()["id"]
    for method, path in [
        ("GET", f"/eventSubscriptions/{other_id}"),
        ("DELETE", f"/eventSubscriptions/{other_id}"),
        ("POST", f"/eventSubscriptions/{other_id}:rotateSecret"),
        ("GET", f"/eventSubscriptions/{other_id}/attempts"),
        ("POST", f"/eventSubscriptions/{other_id}:replay"),
    ]:
        answer = tenant(client, one, method, path)
        assert answer.status_code == 404, (method, path)
        assert answer.json()["error"]["code"] == "SubscriptionNotFound"
    assert tenant(client, two, "GET", f"/eventSubscriptions/{other_id}").status_code == 200
    assert tenant(client, one, "DELETE", f"/eventSubscriptions/{mine.json()['id']}").status_code == 204
    everything = client.get("/admin/eventSubscriptions", headers=ADMIN).json()["value"]
    assert [s["id"] for s in everything] == [other_id]


def test_metrics_report_queue_depth_and_ready_covers_the_broker(env: Any) -> None:
    client, database, one, _two = env
    with database.session() as session:
        for n in range(3):
            service.publish(session, resource_id=one.id, event_type="t", subject=f"/s/{n}", data={})
    text = client.get("/metrics").text
    assert 'trunkline_event_queue_depth{stage="outbox"} 3.0' in text
    assert 'trunkline_event_queue_depth{stage="pending"} 0.0' in text
    ready = client.get("/ready").json()
    assert "broker" in ready["checks"]


def test_update_changes_filters_and_revalidates_a_new_endpoint(env: Any) -> None:
    client, database, one, two = env
    sid = tenant(client, one, "POST", "/eventSubscriptions", body()).json()["id"]
    with database.session() as session:
        subscriptions.get_subscription(session, sid).status = SubscriptionStatus.ACTIVE
    changed = tenant(
        client,
        one,
        "PATCH",
        f"/eventSubscriptions/{sid}",
        {
            "subjectEndsWith": "0100",
            "maxDeliveryAttempts": 5,
            "includedEventTypes": ["Microsoft.Communication.IncomingCall"],
        },
    )
    assert changed.status_code == 200, changed.text
    data = changed.json()
    assert (data["subjectEndsWith"], data["maxDeliveryAttempts"], data["status"]) == ("0100", 5, "active")
    assert data["includedEventTypes"] == ["Microsoft.Communication.IncomingCall"]
    cleared = tenant(client, one, "PATCH", f"/eventSubscriptions/{sid}", {"subjectEndsWith": ""}).json()
    assert cleared["subjectEndsWith"] is None
    refused = tenant(client, one, "PATCH", f"/eventSubscriptions/{sid}", {"endpointUrl": "https://10.1.1.1/"})
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "InvalidEndpoint"
    moved = tenant(
        client, one, "PATCH", f"/eventSubscriptions/{sid}", {"endpointUrl": f"https://{PUBLIC_IP}/new"}
    ).json()
    assert moved["endpointUrl"] == f"https://{PUBLIC_IP}/new"
    assert moved["status"] == "pendingValidation"
    assert (
        tenant(client, two, "PATCH", f"/eventSubscriptions/{sid}", {"maxDeliveryAttempts": 2}).status_code
        == 404
    )
    admin = client.patch(
        f"/admin/eventSubscriptions/{sid}",
        json={"eventDeliverySchema": "CloudEventSchemaV1_0"},
        headers=ADMIN,
    )
    assert admin.status_code == 200
    assert admin.json()["eventDeliverySchema"] == "CloudEventSchemaV1_0"


def test_batching_defaults_bounds_and_changes_on_both_apis(env: Any) -> None:
    client, _database, one, _two = env
    created = client.post("/admin/eventSubscriptions", json=body(resource="tenant-one"), headers=ADMIN)
    assert created.status_code == 201, created.text
    sub = created.json()
    # Event Grid's defaults: no batching, 64 KiB preferred.
    assert (sub["maxEventsPerBatch"], sub["preferredBatchSizeInKilobytes"]) == (1, 64)
    for field, value in (
        ("maxEventsPerBatch", 0),
        ("maxEventsPerBatch", 5001),
        ("preferredBatchSizeInKilobytes", 0),
        ("preferredBatchSizeInKilobytes", 1025),
    ):
        refused = client.post(
            "/admin/eventSubscriptions", json=body(resource="tenant-one", **{field: value}), headers=ADMIN
        )
        assert refused.status_code == 400, (field, value, refused.text)
        assert set(refused.json()["error"]) >= {"code", "message"}
        assert field in refused.text
    patched = client.patch(
        f"/admin/eventSubscriptions/{sub['id']}",
        json={"maxEventsPerBatch": 5000, "preferredBatchSizeInKilobytes": 1024},
        headers=ADMIN,
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["maxEventsPerBatch"], patched.json()["preferredBatchSizeInKilobytes"]) == (
        5000,
        1024,
    )
    # The tenant's own API (ACS HMAC) takes and shows the same fields.
    own = tenant(
        client,
        one,
        "POST",
        "/eventSubscriptions",
        body(maxEventsPerBatch=10, preferredBatchSizeInKilobytes=1),
    )
    assert own.status_code == 201, own.text
    assert (own.json()["maxEventsPerBatch"], own.json()["preferredBatchSizeInKilobytes"]) == (10, 1)
    changed = tenant(
        client, one, "PATCH", f"/eventSubscriptions/{own.json()['id']}", {"maxEventsPerBatch": 2}
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["maxEventsPerBatch"], changed.json()["preferredBatchSizeInKilobytes"]) == (2, 1)
    listed = tenant(client, one, "GET", "/eventSubscriptions")
    assert {s["id"]: s["maxEventsPerBatch"] for s in listed.json()["value"]} == {
        sub["id"]: 5000,
        own.json()["id"]: 2,
    }
