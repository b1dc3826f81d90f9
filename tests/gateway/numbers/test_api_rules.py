"""The spec's error codes, tenant isolation, hold expiry (lazy) and the operation runner."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from gateway.core.db import Database, utcnow
from gateway.core.settings import Settings
from gateway.numbers import operations, searches
from gateway.numbers.acs import API_VERSION
from gateway.numbers.models import InventoryNumber, NumberOperation, NumberSearch
from tests.gateway.numbers.conftest import Tenant
from tests.gateway.numbers.support import SEARCH, search_body, searched
from tests.gateway.numbers.test_api_flow import poll

# Fixed, not drawn at collection: pytest-xdist needs every worker to collect the same ids.
UNKNOWN_ID = "4a90b159-c960-4ef0-bc4e-3517312faba7"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("POST", "/availablePhoneNumbers/countries/XX/:search", search_body(), 400, "InvalidCountryCode"),
        ("POST", "/availablePhoneNumbers/countries/USA/:search", search_body(), 400, "InvalidCountryCode"),
        ("GET", "/availablePhoneNumbers/countries/QQ/offerings", None, 400, "InvalidCountryCode"),
        ("POST", SEARCH, search_body(quantity=0), 400, "InvalidRequest"),
        ("POST", SEARCH, search_body(quantity=-3), 400, "InvalidRequest"),
        ("POST", SEARCH, search_body(quantity=2**31), 400, "InvalidRequest"),
        ("POST", SEARCH, search_body(quantity=1001), 400, "InvalidQuantity"),
        ("POST", SEARCH, search_body(phoneNumberType="satellite"), 400, "InvalidRequest"),
        ("POST", SEARCH, {"phoneNumberType": "geographic"}, 400, "InvalidRequest"),
        ("GET", "/availablePhoneNumbers/searchResults/nope", None, 404, "NotFound"),
        ("POST", "/availablePhoneNumbers/:purchase", {"searchId": UNKNOWN_ID}, 404, "SearchNotFound"),
        ("GET", "/phoneNumbers/operations/search_nope", None, 404, "NotFound"),
        ("DELETE", "/phoneNumbers/operations/search_nope", None, 404, "NotFound"),
        ("GET", "/phoneNumbers/+14255550123", None, 404, "PhoneNumberNotFound"),
        ("GET", "/phoneNumbers/not-a-number", None, 400, "InvalidPhoneNumber"),
        ("GET", "/phoneNumbers/+1425555abc", None, 400, "InvalidPhoneNumber"),
        ("DELETE", "/phoneNumbers/+0123", None, 400, "InvalidPhoneNumber"),
        ("PATCH", "/phoneNumbers/12345678901234567/capabilities", {"sms": "none"}, 400, "InvalidPhoneNumber"),
        ("GET", "/availablePhoneNumbers/reservations/not-a-uuid", None, 400, "InvalidReservationId"),
        ("GET", f"/availablePhoneNumbers/reservations/{UNKNOWN_ID}", None, 404, "ReservationNotFound"),
        ("DELETE", f"/availablePhoneNumbers/reservations/{UNKNOWN_ID}", None, 404, "ReservationNotFound"),
        (
            "POST",
            f"/availablePhoneNumbers/reservations/{UNKNOWN_ID}/:purchase",
            {},
            404,
            "ReservationNotFound",
        ),
        (
            "GET",
            "/availablePhoneNumbers/countries/US/areaCodes?phoneNumberType=geographic",
            None,
            400,
            "MissingLocality",
        ),
        ("POST", "/operatorInformation/:search", {"phoneNumbers": ["+1"]}, 400, "InvalidPhoneNumber"),
    ],
)
def test_error_codes(
    client: TestClient,
    make_tenant: Callable[[str], Tenant],
    method: str,
    path: str,
    body: Any,
    status: int,
    code: str,
) -> None:
    tenant = make_tenant("errors")
    params = None
    if "?" in path:
        path, query = path.split("?")
        params = dict(pair.split("=") for pair in query.split("&"))
    response = tenant.request(method, path, body, params=params)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_missing_api_version_and_bad_signature(
    client: TestClient, make_tenant: Callable[[str], Tenant]
) -> None:
    tenant = make_tenant("auth")
    assert tenant.request("GET", "/phoneNumbers", params={"api-version": "2022-12-01"}).status_code == 400
    assert client.get("/phoneNumbers?api-version=2025-06-01").status_code == 401


def test_nothing_half_written_on_rejected_search(
    client: TestClient, make_tenant: Callable[[str], Tenant], database: Database
) -> None:
    tenant = make_tenant("atomic")
    assert tenant.request("POST", SEARCH, search_body(quantity=5000)).status_code == 400
    with database.session() as session:
        assert session.scalars(select(NumberSearch)).all() == []
        assert session.scalars(select(NumberOperation)).all() == []


def test_tenant_isolation(
    client: TestClient, make_tenant: Callable[[str], Tenant], stock: Callable[..., Any]
) -> None:
    stock(per_area=3)
    alice, mallory = make_tenant("alice"), make_tenant("mallory")
    search_id, operation = searched(alice)
    assert operation["status"] == "succeeded"
    operation_path = f"/phoneNumbers/operations/{operation['id']}"
    assert mallory.request("GET", operation_path).status_code == 404
    assert mallory.request("DELETE", operation_path).status_code == 404
    assert mallory.request("GET", f"/availablePhoneNumbers/searchResults/{search_id}").status_code == 404
    assert (
        mallory.request("POST", "/availablePhoneNumbers/:purchase", {"searchId": search_id}).status_code
        == 404
    )
    purchase = alice.request("POST", "/availablePhoneNumbers/:purchase", {"searchId": search_id})
    assert poll(alice, purchase.headers["Operation-Location"])["status"] == "succeeded"
    number = alice.request("GET", f"/availablePhoneNumbers/searchResults/{search_id}").json()["phoneNumbers"][
        0
    ]
    assert mallory.request("GET", "/phoneNumbers").json()["phoneNumbers"] == []
    assert mallory.request("GET", f"/phoneNumbers/{number}").status_code == 404
    assert mallory.request("DELETE", f"/phoneNumbers/{number}").status_code == 404
    assert (
        mallory.request("PATCH", f"/phoneNumbers/{number}/capabilities", {"sms": "none"}).status_code == 404
    )
    reservation = f"/availablePhoneNumbers/reservations/{uuid.uuid4()}"
    assert alice.request("PATCH", reservation, {"phoneNumbers": {}}).status_code == 201
    assert mallory.request("GET", reservation).status_code == 404
    assert mallory.request("PATCH", reservation, {"phoneNumbers": {}}).status_code == 404
    assert mallory.request("DELETE", reservation).status_code == 404
    assert mallory.request("GET", "/availablePhoneNumbers/reservations").json()["reservations"] == []
    # Held or owned numbers are invisible to everyone else's browse.
    browsed = mallory.request(
        "POST", "/availablePhoneNumbers/countries/US/:browse", {"phoneNumberType": "geographic"}
    ).json()["phoneNumbers"]
    assert number not in {n["phoneNumber"] for n in browsed}


def test_purchase_of_expired_search_fails_and_hold_lapses_lazily(
    client: TestClient, make_tenant: Callable[[str], Tenant], stock: Callable[..., Any], database: Database
) -> None:
    stock(per_area=1)  # exactly one 425 number
    alice, bob = make_tenant("alice"), make_tenant("bob")
    search_id, operation = searched(alice)
    assert operation["status"] == "succeeded"
    _, second = searched(bob)
    assert second["status"] == "failed"
    assert second["error"]["code"] == "OutOfStock"
    # Time passes: the hold's end moves into the past (nothing runs; expiry is lazy).
    past = utcnow() - timedelta(seconds=1)
    with database.session() as session:
        session.execute(update(NumberSearch).where(NumberSearch.id == search_id).values(expires_at=past))
        session.execute(
            update(InventoryNumber).where(InventoryNumber.search_id == search_id).values(free_at=past)
        )
    expired = alice.request("POST", "/availablePhoneNumbers/:purchase", {"searchId": search_id})
    assert expired.status_code == 400
    assert expired.json()["error"]["code"] == "ReservationExpired"
    bob_search, third = searched(bob)
    assert third["status"] == "succeeded"
    same = bob.request("GET", f"/availablePhoneNumbers/searchResults/{bob_search}").json()["phoneNumbers"]
    assert (
        same
        == alice.request("GET", f"/availablePhoneNumbers/searchResults/{search_id}").json()["phoneNumbers"]
    )


def test_cancel_search_releases_hold_and_not_resell(
    client: TestClient, make_tenant: Callable[[str], Tenant], stock: Callable[..., Any], settings: Settings
) -> None:
    stock(per_area=1)
    alice, bob = make_tenant("alice"), make_tenant("bob")
    _search_id, operation = searched(alice)
    assert alice.request("DELETE", f"/phoneNumbers/operations/{operation['id']}").status_code == 204
    _, again = searched(bob)
    assert again["status"] == "succeeded"
    settings.numbers_not_resell_countries = ["US"]
    carol = make_tenant("carol")
    carol_search, _ = searched(carol, areaCode="206")
    result = carol.request("GET", f"/availablePhoneNumbers/searchResults/{carol_search}").json()
    assert result["isAgreementToNotResellRequired"] is True
    refused = carol.request("POST", "/availablePhoneNumbers/:purchase", {"searchId": carol_search})
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "AgreementToNotResellRequired"
    agreed = carol.request(
        "POST", "/availablePhoneNumbers/:purchase", {"searchId": carol_search, "agreeToNotResell": True}
    )
    assert poll(carol, agreed.headers["Operation-Location"])["status"] == "succeeded"


def test_capabilities_cannot_exceed_inventory(
    client: TestClient, make_tenant: Callable[[str], Tenant], stock: Callable[..., Any]
) -> None:
    stock(per_area=1, sms="inbound")
    alice = make_tenant("alice")
    search_id, _ = searched(alice, capabilities={"calling": "inbound", "sms": "inbound"})
    purchase = alice.request("POST", "/availablePhoneNumbers/:purchase", {"searchId": search_id})
    assert poll(alice, purchase.headers["Operation-Location"])["status"] == "succeeded"
    number = alice.request("GET", "/phoneNumbers").json()["phoneNumbers"][0]["phoneNumber"]
    refused = alice.request("PATCH", f"/phoneNumbers/{number}/capabilities", {"sms": "outbound"})
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "CapabilityNotSupported"
    twice = alice.request("POST", "/availablePhoneNumbers/:purchase", {"searchId": search_id})
    assert twice.status_code == 409


def test_pagination(
    client: TestClient, make_tenant: Callable[[str], Tenant], stock: Callable[..., Any]
) -> None:
    stock(per_area=3)
    alice = make_tenant("alice")
    localities = alice.request(
        "GET", "/availablePhoneNumbers/countries/US/localities", params={"maxPageSize": 1}
    )
    assert [loc["localizedName"] for loc in localities.json()["phoneNumberLocalities"]] == ["Redmond"]
    second = alice.request("GET", localities.json()["nextLink"]).json()
    assert [loc["localizedName"] for loc in second["phoneNumberLocalities"]] == ["Seattle"]
    search_id, _ = searched(alice, quantity=3)
    purchase = alice.request("POST", "/availablePhoneNumbers/:purchase", {"searchId": search_id})
    poll(alice, purchase.headers["Operation-Location"])
    page = alice.request("GET", "/phoneNumbers", params={"top": 2}).json()
    assert len(page["phoneNumbers"]) == 2
    rest = alice.request("GET", page["nextLink"]).json()
    assert len(rest["phoneNumbers"]) == 1
    assert "nextLink" not in rest
    # The catalogue reflects what is available: Redmond (425) is sold out now.
    after = alice.request("GET", "/availablePhoneNumbers/countries/US/localities").json()
    assert [loc["localizedName"] for loc in after["phoneNumberLocalities"]] == ["Seattle"]


def test_abandoned_operation_is_finished_by_get(
    client: TestClient,
    make_tenant: Callable[[str], Tenant],
    stock: Callable[..., Any],
    database: Database,
    settings: Settings,
) -> None:
    """An operation whose runner died (here: never ran) is run by GET once it is stale."""
    stock(per_area=2)
    alice = make_tenant("alice")
    with database.session() as session:
        _, operation = searches.start_search(
            session,
            alice.resource_id,
            "US",
            searches.SearchRequest("geographic", "application", "none", "none", "425", 1),
            settings,
        )
        operation_id = operation.id
    path = f"/phoneNumbers/operations/{operation_id}"
    assert alice.request("GET", path).json()["status"] == "notStarted"  # not stale yet
    with database.session() as session:
        session.execute(
            update(NumberOperation)
            .where(NumberOperation.id == operation_id)
            .values(status="running", last_action_at=utcnow() - timedelta(minutes=5))
        )
    assert alice.request("GET", path).json()["status"] == "succeeded"
    # Running it again is harmless: the claim fails and nothing changes.
    operations.execute(database, settings, operation_id)
    with database.session() as session:
        assert (
            len(session.scalars(select(InventoryNumber).where(InventoryNumber.status == "reserved")).all())
            == 1
        )


def test_cancel_not_started_operation(
    client: TestClient,
    make_tenant: Callable[[str], Tenant],
    stock: Callable[..., Any],
    database: Database,
    settings: Settings,
) -> None:
    stock(per_area=1)
    alice = make_tenant("alice")
    with database.session() as session:
        _, operation = searches.start_search(
            session,
            alice.resource_id,
            "US",
            searches.SearchRequest("geographic", "application", "none", "none", "425", 1),
            settings,
        )
        operation_id = operation.id
    assert alice.request("DELETE", f"/phoneNumbers/operations/{operation_id}").status_code == 204
    body = alice.request("GET", f"/phoneNumbers/operations/{operation_id}").json()
    assert body["status"] == "failed"
    assert body["error"]["code"] == "OperationCanceled"
    operations.execute(database, settings, operation_id)  # a late runner does nothing
    with database.session() as session:
        assert (
            session.scalars(select(InventoryNumber).where(InventoryNumber.status == "reserved")).all() == []
        )


def test_search_may_hold_fewer_than_asked(
    client: TestClient, make_tenant: Callable[[str], Tenant], stock: Callable[..., Any]
) -> None:
    stock(per_area=2)
    alice = make_tenant("alice")
    search_id, operation = searched(alice, quantity=5)
    assert operation["status"] == "succeeded"
    result = alice.request("GET", f"/availablePhoneNumbers/searchResults/{search_id}").json()
    assert len(result["phoneNumbers"]) == 2


def test_operation_states_are_visible(
    client: TestClient,
    make_tenant: Callable[[str], Tenant],
    stock: Callable[..., Any],
    database: Database,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """notStarted -> running -> succeeded, each state committed and visible to GET."""
    import threading
    import time

    if database.engine.dialect.name == "sqlite":
        pytest.skip("SQLite runs every transaction BEGIN IMMEDIATE: a GET waits for the work to commit")
    stock(per_area=1)
    alice = make_tenant("alice")
    release = threading.Event()
    original = operations.HANDLERS["search"]

    def slow(*args: Any) -> None:
        assert release.wait(timeout=20)
        original(*args)

    monkeypatch.setitem(operations.HANDLERS, "search", slow)
    with database.session() as session:
        _, operation = searches.start_search(
            session,
            alice.resource_id,
            "US",
            searches.SearchRequest("geographic", "application", "none", "none", "425", 1),
            settings,
        )
        path = f"/phoneNumbers/operations/{operation.id}"
        operation_id = operation.id
    assert alice.request("GET", path).json()["status"] == "notStarted"
    runner = threading.Thread(target=operations.execute, args=(database, settings, operation_id))
    runner.start()
    try:
        deadline = time.monotonic() + 20
        while alice.request("GET", path).json()["status"] != "running":
            assert time.monotonic() < deadline, "never saw running"
            time.sleep(0.02)
    finally:
        release.set()
        runner.join(timeout=20)
    body = alice.request("GET", path).json()
    assert body["status"] == "succeeded"
    assert body["resourceLocation"].endswith(f"?api-version={API_VERSION}")
